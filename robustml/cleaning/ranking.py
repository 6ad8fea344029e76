"""Flag label issues by one ranking across classes, with confident learning's count.

cleanlab's ``prune_by_noise_rate`` estimates how many labels are wrong for each pair of given
and true class from the calibrated confident joint (Northcutt, Jiang, Chuang, JAIR 2021, Sec.
3.1-3.2, Eq. 1-3) and flags, within each pair, the examples with the largest margin. The
filters here keep its total count ``n`` and flag the ``n`` examples ranked lowest over all
classes by the estimated probability that the given label is the true one,

    P(y* = y~ | x, y~) = T[y~, y~] p(y~ | x) / sum_j T[y~, j] p(j | x),

where ``T[i, j] = P(given = i | true = j)`` is cleanlab's noise matrix (estimated from the same
confident joint) and the out-of-sample probabilities ``p(. | x)`` stand in for the true-label
posterior. With symmetric noise ``T`` has one value on its diagonal and one off it, so the order
is that of the self-confidence ``p(y~ | x)``; with noise from class ``c`` into ``c + 1`` only the
classes that can produce the given label enter the denominator. ``filter_by="lowest_quality"``
ranks by cleanlab's label-quality score instead (the self-confidence ``p(y~ | x)`` by default).
"""

from __future__ import annotations

import numpy as np
from cleanlab.count import estimate_py_and_noise_matrices_from_probabilities


def label_posterior(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """Return ``P(y* = y~ | x, y~)`` per example (module docstring), shape ``(N,)``.

    Args:
        labels: Shape ``(N,)`` int64 given labels in ``[0, C)`` (validated by the caller).
        pred_probs: Shape ``(N, C)`` out-of-sample probabilities, float64 (validated).
    """
    _, noise_matrix, _, _ = estimate_py_and_noise_matrices_from_probabilities(labels, pred_probs)
    weighted = np.asarray(noise_matrix)[labels] * pred_probs  # P(given=y_i | true=j) p(j | x_i)
    total = weighted.sum(axis=1)
    given = weighted[np.arange(labels.shape[0]), labels]
    return np.divide(given, total, out=np.zeros_like(given), where=total > 0)


def lowest(scores: np.ndarray, count: int) -> np.ndarray:
    """Return the ``(N,)`` bool mask of the ``count`` lowest ``scores`` (ties by position)."""
    mask = np.zeros(scores.shape[0], dtype=bool)
    mask[np.argsort(scores, kind="stable")[:count]] = True
    return mask
