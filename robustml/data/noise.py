"""Synthetic label noise with a known noise matrix, for cleaning experiments.

The generator lives with the data (the datasets' ``label_noise_rate`` options call it through
:mod:`robustml.data.datasets.noisy`); :mod:`robustml.cleaning` re-exports it for its users.

Convention (the same as cleanlab's): ``noise_matrix[i, j] = P(noisy label = i | true label = j)``,
so every *column* sums to 1 and the diagonal holds the probability that a label is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from robustml.validation import check_ids, check_int, check_real

KINDS = ("symmetric", "asymmetric")


@dataclass(frozen=True)
class NoisyLabels:
    """Labels after synthetic corruption.

    Attributes:
        labels: The noisy labels, shape ``(N,)``, int64.
        noise_matrix: The matrix the noise was drawn from, shape ``(C, C)``,
            ``noise_matrix[i, j] = P(noisy = i | true = j)``; columns sum to 1. It is the generating
            distribution, not the realized counts.
        corrupted: Sorted indices whose label changed, shape ``(K,)``, int64.
        rate: The requested flip probability.
        kind: ``"symmetric"`` or ``"asymmetric"``.
    """

    labels: np.ndarray
    noise_matrix: np.ndarray
    corrupted: np.ndarray
    rate: float
    kind: str


def noise_matrix(*, num_classes: int, rate: float, kind: str = "symmetric") -> np.ndarray:
    """Build the column-stochastic noise matrix ``P(noisy = i | true = j)``.

    Args:
        num_classes: Number of classes ``C >= 2``.
        rate: Probability that a label is changed, in ``[0, 1)``.
        kind: ``"symmetric"``: a changed label becomes each other class with probability
            ``rate / (C - 1)``. ``"asymmetric"`` (class-conditional): label ``j`` becomes
            ``(j + 1) mod C`` with probability ``rate``.

    Returns:
        Array of shape ``(C, C)``; every column sums to 1.
    """
    _check_options(num_classes, rate, kind)
    matrix = np.zeros((num_classes, num_classes))
    if kind == "symmetric":
        matrix[:] = rate / (num_classes - 1)
    else:
        true = np.arange(num_classes)
        matrix[(true + 1) % num_classes, true] = rate
    np.fill_diagonal(matrix, 1.0 - rate)
    return matrix


def add_label_noise(
    labels: np.ndarray,
    *,
    num_classes: int,
    rate: float,
    kind: str = "symmetric",
    seed: int = 0,
) -> NoisyLabels:
    """Corrupt labels with a known noise process (Northcutt et al., JAIR 2021, Sec. 2).

    Each label is changed independently with probability ``rate`` (so the realized flip rate is
    close to ``rate`` for every class). A changed label always becomes a *different* class:
    ``"symmetric"`` picks it uniformly among the other ``C - 1`` classes; ``"asymmetric"``
    (class-conditional) maps ``j -> (j + 1) mod C``. See :func:`noise_matrix` for the matrix.

    Args:
        labels: True labels, shape ``(N,)``, integers in ``[0, num_classes)``.
        num_classes: Number of classes ``C >= 2``.
        rate: Flip probability in ``[0, 1)``.
        kind: ``"symmetric"`` or ``"asymmetric"``.
        seed: Seed of the numpy generator; the same seed gives the same noisy labels.

    Returns:
        A :class:`NoisyLabels` with the new labels, the noise matrix and the changed indices.

    Raises:
        TypeError: If ``labels`` is not an integer array.
        ValueError: If ``labels`` is not 1-D or out of range, or an option is invalid.
    """
    _check_options(num_classes, rate, kind)
    labels = check_ids("labels", labels, num_classes, any_int=True, array_like=True)
    if isinstance(labels, torch.Tensor):
        labels = labels.cpu().numpy()
    rng = np.random.default_rng(seed)
    labels = labels.astype(np.int64)
    flip = rng.random(labels.shape[0]) < rate
    if kind == "symmetric":
        shift = rng.integers(1, num_classes, size=labels.shape[0])
    else:
        shift = np.ones_like(labels)
    noisy = np.where(flip, (labels + shift) % num_classes, labels)
    return NoisyLabels(
        labels=noisy,
        noise_matrix=noise_matrix(num_classes=num_classes, rate=rate, kind=kind),
        corrupted=np.flatnonzero(noisy != labels),
        rate=float(rate),
        kind=kind,
    )


def _check_options(num_classes: int, rate: float, kind: str) -> None:
    check_int("num_classes", num_classes, minimum=2)
    check_real("rate", rate, minimum=0.0)
    if not rate < 1.0:
        raise ValueError(f"rate must lie in [0, 1), got {rate}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
