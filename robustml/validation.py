"""Checks of arguments shared by every package: one message format, naming the argument.

``check_int("max_steps", "abc", minimum=1)`` raises ``TypeError: max_steps must be an integer
>= 1, got 'abc' (str)``. Booleans are refused where numbers are expected (``True`` is an
``int`` to Python, never a count to a user), and so are floats with a fractional part and numeric
strings: ``"4"`` from a YAML file or ``2.5`` on a command line is a mistake to report, not to round.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch


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


def check_ids(name: str, ids: Any, upper: int | None = None, *, size: int | None = None,
              match: str | None = None, nonempty: bool = False, any_int: bool = False,
              array_like: bool = False) -> Any:
    """Return ``ids`` after checking that it is a 1-D array of integer ids in ``[0, upper)``.

    The one check of every id array of the package (class labels, groups, environments,
    attributes): losses, metrics, samplers, augmentation, the data contract and cleaning call it,
    so a wrong id array gets the same message everywhere. ``check_ids("groups", g, 4, size=8,
    match="logits")`` raises ``ValueError: groups must lie in [0, 4), got values in [0, 5]``.
    Meta tensors (shapes only) skip the value check.

    Args:
        name: Argument name for the messages.
        ids: The ids, a ``torch.Tensor`` of shape ``(N,)`` (int64 unless ``any_int``).
        upper: Exclusive upper bound of the ids; ``None`` checks only ``>= 0``.
        size: Required length ``N``; ``None`` accepts any length.
        match: Name of the argument that fixes ``size``, for the message ("to match logits").
        nonempty: Refuse ``N = 0``.
        any_int: Accept every integer dtype, not only int64 (bool and floating point never).
        array_like: Also accept numpy arrays, lists and tuples (converted with ``numpy.asarray``).

    Returns:
        ``ids`` unchanged (an array-like as a numpy array).

    Raises:
        TypeError: If ``ids`` is not a tensor (or array-like, with ``array_like``) of integers.
        ValueError: If the shape is wrong, ``N = 0`` with ``nonempty``, or an id is out of range.
    """
    shape = "(N,)" if size is None else f"({size},)"
    kind = "integer" if any_int else "int64"
    listed = False
    if not isinstance(ids, torch.Tensor):
        if not array_like or isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__"):
            hint = "" if array_like else f"; convert it with torch.as_tensor({name})"
            raise TypeError(f"{name} must be an {kind} tensor of shape {shape}, got "
                            f"{type(ids).__name__}{hint}")
        listed = isinstance(ids, (list, tuple))
        try:
            ids = np.asarray(ids)
        except ValueError as err:  # a ragged nested sequence
            raise ValueError(f"{name} must be a flat sequence of shape {shape}, got a nested "
                             f"sequence of uneven lengths ({err})") from None
    if ids.ndim != 1 or (size is not None and ids.shape[0] != size):
        suffix = f" to match {match}" if match and size is not None else ""
        raise ValueError(f"{name} must have shape {shape}{suffix}, got {tuple(ids.shape)}")
    if nonempty and ids.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one id, got none (shape (0,))")
    if isinstance(ids, torch.Tensor):
        integral = not (ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool)
        ok = ids.dtype == torch.int64 or (any_int and integral)
    else:
        integral = np.issubdtype(ids.dtype, np.integer)
        # An empty Python list has no dtype (numpy makes it float); an empty float array does.
        ok = (listed and ids.size == 0) or (integral and (any_int or ids.dtype == np.int64))
    if not ok:
        expected = "have an integer dtype" if any_int else "be int64"
        hint = " (convert it with .long())" if isinstance(ids, torch.Tensor) else ""
        raise TypeError(f"{name} must {expected}, got dtype {ids.dtype}{hint}")
    if ids.shape[0] == 0 or (isinstance(ids, torch.Tensor) and ids.is_meta):
        return ids
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or (upper is not None and high >= upper):
        bound = "inf" if upper is None else upper
        raise ValueError(f"{name} must lie in [0, {bound}), got values in [{low}, {high}]")
    return ids
