"""Find label issues with confident learning, report them per group, and protect minority groups.

Everything here is a pure function of ``(labels, pred_probs)`` and, for the group pieces,
``groups``. ``pred_probs`` must be out-of-sample (see :mod:`robustml.cleaning.oof`).

Typical use::

    issues = find_label_issues(labels, pred_probs, groups=groups, num_groups=4)
    mask = apply_group_cap(issues.is_issue, issues.quality, groups, num_groups=4,
                           max_fraction=0.1, protect_groups=[2])
    report = per_group_report(mask, groups, num_groups=4, before=issues.is_issue)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from cleanlab.filter import find_label_issues as _cleanlab_find_label_issues
from cleanlab.rank import get_label_quality_scores

from robustml.cleaning.ranking import label_posterior, lowest
from robustml.validation import check_ids

CLEANLAB_FILTERS = (
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_normalized_margin",
    "low_self_confidence",
)
RANKED_FILTERS = ("lowest_label_posterior", "lowest_quality")
FILTER_BY = CLEANLAB_FILTERS + RANKED_FILTERS
"""Filters of :func:`find_label_issues`: cleanlab's ``filter_by`` options and the two ranked
ones of :mod:`robustml.cleaning.ranking`."""
QUALITY_METHODS = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")
ROW_SUM_TOL = 1e-4


@dataclass(frozen=True)
class LabelIssues:
    """Result of :func:`find_label_issues`.

    Attributes:
        is_issue: Shape ``(N,)`` bool, True where the given label is likely wrong.
        quality: Shape ``(N,)`` label-quality scores in ``[0, 1]``; lower = more likely wrong.
        suggested: Shape ``(N,)`` int64, ``argmax`` of ``pred_probs`` (the label to relabel to).
        per_group: :func:`per_group_report` rows when ``groups`` was given, else ``None``.
    """

    is_issue: np.ndarray
    quality: np.ndarray
    suggested: np.ndarray
    per_group: list[dict] | None = None


def validate_labels(labels, *, num_classes: int | None = None, name: str = "labels") -> np.ndarray:
    """Check that labels are a 1-D integer array in ``[0, num_classes)`` and return it as int64.

    Args:
        labels: Shape ``(N,)`` integer class ids (numpy array, list, or CPU tensor).
        num_classes: Upper bound (exclusive); ``None`` skips the upper check.
        name: Argument name used in error messages.

    Returns:
        The labels as an int64 numpy array of shape ``(N,)``.

    Raises:
        TypeError: If the values are not integers.
        ValueError: If the array is not 1-D or a value is out of range.
    """
    array = check_ids(name, labels, num_classes, any_int=True, array_like=True)
    if isinstance(array, torch.Tensor):
        array = array.cpu().numpy()
    return array.astype(np.int64, copy=False)


def validate_pred_probs(labels, pred_probs) -> tuple[np.ndarray, np.ndarray]:
    """Check labels and predicted probabilities before confident learning.

    Args:
        labels: Shape ``(N,)`` integer labels in ``[0, C)``.
        pred_probs: Shape ``(N, C)`` out-of-sample probabilities; finite, in ``[0, 1]``, rows sum
            to 1 within ``1e-4``.

    Returns:
        ``(labels, pred_probs)`` as numpy arrays (int64 and float64).

    Raises:
        TypeError: If labels are not integers.
        ValueError: Naming what is wrong and what to do (shape, non-finite, not normalized).
    """
    probs = np.asarray(pred_probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(
            f"pred_probs must have shape (N, C) with C >= 2 classes, got shape {probs.shape}"
        )
    labels = validate_labels(labels, num_classes=probs.shape[1])
    if probs.shape[0] != labels.shape[0]:
        raise ValueError(
            f"pred_probs must have one row per label: expected {labels.shape[0]} rows, got "
            f"{probs.shape[0]}"
        )
    if not np.isfinite(probs).all():
        bad = int(np.flatnonzero(~np.isfinite(probs).all(axis=1))[0])
        raise ValueError(f"pred_probs must be finite, row {bad} is {probs[bad].tolist()}")
    if probs.size and (probs.min() < 0.0 or probs.max() > 1.0):
        raise ValueError(
            f"pred_probs must lie in [0, 1], got values in [{probs.min():.4g}, {probs.max():.4g}]; "
            "if these are logits, apply softmax over the class axis first"
        )
    sums = probs.sum(axis=1)
    off = np.abs(sums - 1.0) > ROW_SUM_TOL
    if off.any():
        bad = int(np.flatnonzero(off)[0])
        raise ValueError(
            f"pred_probs rows must sum to 1 (within {ROW_SUM_TOL}); {int(off.sum())} rows do not, "
            f"e.g. row {bad} sums to {sums[bad]:.6g}; apply softmax to logits (or divide each row "
            "by its sum)"
        )
    return labels, probs


def find_label_issues(
    labels,
    pred_probs,
    *,
    filter_by: str = "lowest_label_posterior",
    quality_method: str = "self_confidence",
    groups=None,
    num_groups: int | None = None,
    n_jobs: int = 1,
) -> LabelIssues:
    """Flag likely label errors with confident learning (Northcutt et al., JAIR 2021).

    Calls ``cleanlab.filter.find_label_issues`` (confident joint, Sec. 3.1, Eq. 1; pruning
    methods of Sec. 3.2) and ``cleanlab.rank.get_label_quality_scores``.

    Args:
        labels: Shape ``(N,)`` given (possibly noisy) labels in ``[0, C)``.
        pred_probs: Shape ``(N, C)`` out-of-sample predicted probabilities.
        filter_by: One of :data:`FILTER_BY`: cleanlab's ``filter_by`` options, or
            one of :data:`RANKED_FILTERS` (:mod:`robustml.cleaning.ranking`): as many examples as
            ``prune_by_noise_rate`` flags, ranked across classes by the estimated probability
            that the given label is true (``"lowest_label_posterior"``, the default) or by the
            ``quality_method`` score (``"lowest_quality"``).
        quality_method: One of :data:`QUALITY_METHODS`; ``"self_confidence"`` scores an example by
            ``pred_probs[i, labels[i]]``.
        groups: Optional shape ``(N,)`` group ids in ``[0, num_groups)`` for a per-group report.
        num_groups: Number of groups; required with ``groups``.
        n_jobs: Processes cleanlab may use (1 avoids forking a process that holds torch).

    Returns:
        A :class:`LabelIssues`.

    Raises:
        ValueError: For invalid inputs or options (see :func:`validate_pred_probs`).
    """
    if filter_by not in FILTER_BY:
        raise ValueError(f"filter_by must be one of {FILTER_BY}, got {filter_by!r}")
    if quality_method not in QUALITY_METHODS:
        raise ValueError(f"quality_method must be one of {QUALITY_METHODS}, got {quality_method!r}")
    labels, probs = validate_pred_probs(labels, pred_probs)
    if np.unique(labels).shape[0] < 2:
        raise ValueError(
            f"labels must contain at least 2 distinct classes to find label issues, got "
            f"{np.unique(labels).tolist()}"
        )
    if groups is not None:
        groups = _check_groups(groups, labels.shape[0], num_groups)
    quality = get_label_quality_scores(labels, probs, method=quality_method)
    cleanlab_filter = "prune_by_noise_rate" if filter_by in RANKED_FILTERS else filter_by
    is_issue = _cleanlab_find_label_issues(labels, probs, filter_by=cleanlab_filter, n_jobs=n_jobs)
    if filter_by in RANKED_FILTERS:
        scores = label_posterior(labels, probs) if filter_by == RANKED_FILTERS[0] else quality
        is_issue = lowest(scores, int(np.count_nonzero(is_issue)))
    report = None if groups is None else per_group_report(is_issue, groups, num_groups=num_groups)
    return LabelIssues(
        is_issue=np.asarray(is_issue, dtype=bool),
        quality=np.asarray(quality, dtype=np.float64),
        suggested=probs.argmax(axis=1).astype(np.int64),
        per_group=report,
    )


def per_group_report(is_issue, groups, *, num_groups: int, before=None) -> list[dict]:
    """Count flagged examples per group.

    Args:
        is_issue: Shape ``(N,)`` bool mask of flagged examples.
        groups: Shape ``(N,)`` group ids in ``[0, num_groups)``.
        num_groups: Number of groups; every group gets a row, empty ones included.
        before: Optional shape ``(N,)`` mask before a guard (:func:`apply_group_cap`); adds
            ``flagged_before`` to every row.

    Returns:
        One dict per group: ``group``, ``count``, ``flagged``, ``flagged_rate`` (``flagged /
        count``, 0.0 for an empty group) and, with ``before``, ``flagged_before``.
    """
    groups = _check_groups(groups, None, num_groups)
    is_issue = _check_mask(is_issue, groups.shape[0], "is_issue")
    counts = np.bincount(groups, minlength=num_groups)
    flagged = np.bincount(groups, weights=is_issue, minlength=num_groups).astype(np.int64)
    if before is not None:
        before = _check_mask(before, groups.shape[0], "before")
        flagged_before = np.bincount(groups, weights=before, minlength=num_groups).astype(np.int64)
    rows = []
    for g in range(num_groups):
        row = {
            "group": g,
            "count": int(counts[g]),
            "flagged": int(flagged[g]),
            "flagged_rate": float(flagged[g] / counts[g]) if counts[g] else 0.0,
        }
        if before is not None:
            row["flagged_before"] = int(flagged_before[g])
        rows.append(row)
    return rows


def apply_group_cap(
    is_issue,
    quality,
    groups,
    *,
    num_groups: int,
    max_fraction: float = 1.0,
    protect_groups: Sequence[int] = (),
) -> np.ndarray:
    """Limit how many examples of each group stay flagged.

    Minority-group examples (those that contradict a shortcut) look like label errors to a model
    that learned the shortcut, so unguarded cleaning removes exactly the data that robust training
    needs. Within group ``g`` of size ``n_g`` at most ``floor(max_fraction * n_g)`` examples stay
    flagged: those with the lowest ``quality`` (ties broken by index); groups in
    ``protect_groups`` get a cap of 0. Use :func:`per_group_report` with ``before=`` to report the
    counts before and after.

    Args:
        is_issue: Shape ``(N,)`` bool mask of flagged examples.
        quality: Shape ``(N,)`` label-quality scores (lower = more likely wrong).
        groups: Shape ``(N,)`` group ids in ``[0, num_groups)``.
        num_groups: Number of groups.
        max_fraction: Largest flagged fraction kept per group, in ``[0, 1]``.
        protect_groups: Group ids whose examples are never flagged.

    Returns:
        A new shape ``(N,)`` bool mask, a subset of ``is_issue``.
    """
    groups = _check_groups(groups, None, num_groups)
    is_issue = _check_mask(is_issue, groups.shape[0], "is_issue")
    quality = np.asarray(quality, dtype=np.float64)
    if quality.shape != groups.shape or not np.isfinite(quality).all():
        raise ValueError(
            f"quality must be finite with shape {groups.shape}, got shape {quality.shape}"
        )
    if not 0.0 <= max_fraction <= 1.0:
        raise ValueError(f"max_fraction must lie in [0, 1], got {max_fraction}")
    protect = [int(g) for g in protect_groups]
    if any(g < 0 or g >= num_groups for g in protect):
        raise ValueError(f"protect_groups must hold ids in [0, {num_groups}), got {protect}")
    counts = np.bincount(groups, minlength=num_groups)
    caps = np.floor(max_fraction * counts + 1e-9).astype(np.int64)  # 0.29 * 100 -> 29, not 28
    caps[protect] = 0
    flagged = np.flatnonzero(is_issue)
    # Sort flagged examples by group, then lowest quality first, then index.
    order = flagged[np.lexsort((flagged, quality[flagged], groups[flagged]))]
    sorted_groups = groups[order]
    rank_in_group = np.arange(order.shape[0]) - np.searchsorted(sorted_groups, sorted_groups)
    out = np.zeros_like(is_issue)
    out[order] = rank_in_group < caps[sorted_groups]
    return out


def _check_groups(groups, n: int | None, num_groups: int | None) -> np.ndarray:
    if num_groups is None:
        raise ValueError("num_groups is required when groups are given")
    groups = validate_labels(groups, num_classes=num_groups, name="groups")
    if n is not None and groups.shape[0] != n:
        raise ValueError(f"groups must have shape ({n},) to match labels, got {groups.shape}")
    return groups


def _check_mask(mask, n: int, name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"{name} must be a bool mask, got dtype {mask.dtype}")
    if mask.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {mask.shape}")
    return mask
