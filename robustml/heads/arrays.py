"""Input checks shared by the last-layer heads (DFR, AFR, DPE): one place that says what a head
refuses, naming the argument, the expected and the received value."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def check_split(features: np.ndarray, target: np.ndarray, groups: np.ndarray | None,
                name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Return ``(features float64 (N, D), target int64 (N,), groups int64 (N,) or None)``.

    Raises:
        ValueError: ``features`` is not 2-D, holds NaN or infinite values, or the labels do not
            have one entry per row.
        TypeError: labels or groups are not integer arrays.
    """
    features = np.asarray(features, dtype=np.float64)
    target = np.asarray(target)
    if features.ndim != 2:
        raise ValueError(f"{name} features must have shape (N, D), got {features.shape}")
    bad = ~np.isfinite(features)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise ValueError(f"{name} features hold {int(bad.sum())} NaN or infinite values (rows "
                         f"{rows[:5].tolist()}{' ...' if rows.size > 5 else ''}): a head cannot fit "
                         f"or predict on them; check the base model (a diverged run gives NaN "
                         f"features) or the feature cache")
    shapes = [target.shape] + ([] if groups is None else [np.asarray(groups).shape])
    if any(shape != (features.shape[0],) for shape in shapes):
        raise ValueError(f"{name} labels and groups must have shape ({features.shape[0]},), got "
                         f"{' and '.join(str(s) for s in shapes)}")
    arrays = [target] + ([] if groups is None else [np.asarray(groups)])
    if any(not np.issubdtype(a.dtype, np.integer) for a in arrays):
        raise TypeError(f"{name} labels and groups must be integer arrays, got "
                        f"{' and '.join(str(a.dtype) for a in arrays)}")
    return (features, target.astype(np.int64),
            None if groups is None else np.asarray(groups).astype(np.int64))


def check_grid(name: str, values: Sequence[float], *, minimum: float = 0.0,
               inclusive: bool = True) -> list[float]:
    """Return ``values`` as floats; raise naming ``name`` unless a non-empty list of finite numbers
    at least (or, ``inclusive=False``, above) ``minimum``."""
    values = [float(v) for v in values]
    low = (lambda v: v < minimum) if inclusive else (lambda v: v <= minimum)
    if not values or any(not np.isfinite(v) or low(v) for v in values):
        bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
        raise ValueError(f"{name} must be a non-empty list of finite numbers {bound}, got {values}")
    return values


def require_per_part(parts: np.ndarray, num_parts: int, minimum: int, *, what: str, setting: str,
                     names: Sequence[str] | None = None) -> None:
    """Raise naming ``setting`` unless every part in ``[0, num_parts)`` has ``minimum`` rows.

    Args:
        parts: Part id (class or group) of each row, shape ``(N,)``.
        num_parts: Number of parts.
        minimum: Rows each part needs.
        what: The rows and the part kind, for the message (``"AFR's held-out rows per class"``).
        setting: The setting a user changes to get more rows.
        names: Optional part names.
    """
    counts = np.bincount(parts, minlength=num_parts)[:num_parts]
    short = [p for p in range(num_parts) if counts[p] < minimum]
    if short:
        label = ", ".join(f"{p}" + (f" ({names[p]})" if names is not None else "") + f": {counts[p]}"
                          for p in short)
        raise ValueError(f"{what} need at least {minimum} each, got {label}; {setting}")
