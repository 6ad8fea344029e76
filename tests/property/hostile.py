"""Shared pieces of the hostile-input property tests: settings, devices and the error contract.

The contract (DESIGN.md, "Conventions"): a malformed argument raises ``ValueError`` or
``TypeError`` whose message names the argument, says what was expected ("must ...") and what was
received ("got ..." or "found ..."); a well-formed one never raises. Any other exception (a
``RuntimeError`` or ``IndexError`` from deep inside torch) fails the test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: Few examples, no deadline (the machine is shared), no example database written into the
#: repository, and the same examples on every run so that the default suite is reproducible.
FAST = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine"))]

FLOAT_DTYPES = (torch.float32, torch.float64, torch.bfloat16)


def assert_names(error: BaseException, argument: str) -> None:
    """Assert that ``error`` is a ValueError/TypeError naming ``argument``, expected and received."""
    message = str(error)
    assert isinstance(error, (ValueError, TypeError)), f"{type(error).__name__}: {message}"
    assert argument in message, f"the message does not name {argument!r}: {message}"
    assert "must" in message or "expected" in message, f"no expectation stated: {message}"
    assert "got" in message or "found" in message, f"the received value is not stated: {message}"


def outcome(fn: Callable[..., Any], *args: Any, bad: str | None, **kwargs: Any) -> Any:
    """Call ``fn``; return its result when ``bad`` is ``None``, else require an error naming ``bad``.

    Args:
        fn: The function under test.
        bad: Name of the argument the test corrupted, or ``None`` for well-formed input.
    """
    try:
        result = fn(*args, **kwargs)
    except (ValueError, TypeError) as error:
        if bad is None:
            raise AssertionError(f"well-formed input raised {type(error).__name__}: {error}") \
                from error
        assert_names(error, bad)
        return None
    assert bad is None, f"{bad} was malformed, but the call returned {result!r}"
    return result


@st.composite
def id_lists(draw: st.DrawFn, n: int, upper: int) -> list[int]:
    """Draw ``n`` ids in ``[0, upper)`` laid out as all in one id, a few ids, or any ids."""
    layout = draw(st.sampled_from(["one", "few", "any"]))
    if layout == "one":
        return [draw(st.integers(0, upper - 1))] * n
    pool = draw(st.lists(st.integers(0, upper - 1), min_size=1, max_size=2, unique=True)) \
        if layout == "few" else list(range(upper))
    return draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))


def seeded_normal(seed: int, shape: tuple[int, ...], *, scale: float = 1.0,
                  dtype: torch.dtype = torch.float32, device: str = "cpu") -> torch.Tensor:
    """Return ``scale * N(0, 1)`` values of ``shape`` from a generator seeded by ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(shape, generator=generator)).to(dtype=dtype, device=device)
