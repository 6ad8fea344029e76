"""Checks of scalar arguments shared by every package: one message format, naming the argument.

``check_int("trainer.max_steps", "abc", minimum=1)`` raises ``TypeError: trainer.max_steps must be
an integer >= 1, got 'abc' (str)``. Booleans are refused where numbers are expected (``True`` is an
``int`` to Python, never a count to a user), and so are floats with a fractional part and numeric
strings: ``"4"`` from a YAML file or ``2.5`` on a command line is a mistake to report, not to round.
"""

from __future__ import annotations

import math
import numbers
from typing import Any


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Return ``value`` as an ``int``; raise naming ``name`` unless it is an integer ``>= minimum``.

    Integral floats (``3.0``) are accepted as the integer they hold.

    Raises:
        TypeError: If ``value`` is a bool, a string, a float with a fractional part or another type.
        ValueError: If ``value`` is below ``minimum``.
    """
    bound = "" if minimum is None else f" >= {minimum}"
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)) \
            and math.isfinite(float(value)) and float(value).is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer{bound}, got {_describe(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer{bound}, got {value}")
    return int(value)


def check_real(name: str, value: Any, *, minimum: float | None = None) -> float:
    """Return ``value`` as a finite ``float``; raise naming ``name`` unless it is ``>= minimum``.

    Raises:
        TypeError: If ``value`` is a bool, a string or not a real number.
        ValueError: If ``value`` is NaN, infinite or below ``minimum``.
    """
    bound = "" if minimum is None else f" >= {minimum:g}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite number{bound}, got {_describe(value)}")
    value = float(value)
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise ValueError(f"{name} must be a finite number{bound}, got {value}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return ``value``; raise ``TypeError`` naming ``name`` unless it is ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be true or false, got {_describe(value)}")
    return value
