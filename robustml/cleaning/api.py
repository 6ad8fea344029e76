"""Find label issues in your own arrays: one call, no trainer, no config, no dataset object.

Example::

    from robustml.cleaning import GroupGuard, detect_label_issues

    report = detect_label_issues(x, labels)                       # x: (N, D) table or (N, ...) images
    report.is_issue, report.quality                               # cleanlab's mask, label quality
    report = detect_label_issues(x, labels, groups=groups,        # per-group report, guarded
                                 guard=GroupGuard(max_fraction=0.2))

Pipeline: out-of-sample probabilities (:func:`robustml.cleaning.methods.out_of_sample_probs`:
gradient boosting for 2-D inputs, cross-fitted networks otherwise, or the model given), then
:func:`robustml.cleaning.find_label_issues` (cleanlab's confident learning, Northcutt, Jiang,
Chuang, JAIR 2021, Sec. 3; by default as many flags as its ``prune_by_noise_rate``, chosen by
the lowest estimated probability that the given label is true, across classes:
:mod:`robustml.cleaning.ranking`), then the group guard
(:func:`robustml.cleaning.apply_group_cap`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from robustml.cleaning.actions import write_label_issues_csv
from robustml.cleaning.issues import (apply_group_cap, find_label_issues, per_group_report,
                                      validate_labels)
from robustml.cleaning.methods import AUTO, out_of_sample_probs
from robustml.validation import check_int

#: Shipped defaults of the pipeline (``configs/cleaning/confident_learning.yaml`` holds the same).
NUM_FOLDS = 5
FILTER_BY = "lowest_label_posterior"
QUALITY_METHOD = "self_confidence"
GUARDED = "guarded"  # label_issues.csv action of a row the group guard kept


@dataclass(frozen=True)
class GroupGuard:
    """Cap the share of each group that may be flagged (minority groups look like label errors).

    Args:
        max_fraction: At most this fraction of each group stays flagged (1.0 = no cap).
        protect_groups: Group ids never flagged.
    """

    max_fraction: float = 1.0
    protect_groups: Sequence[int] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.max_fraction, (int, float)) or not 0 <= self.max_fraction <= 1:
            raise ValueError(f"guard.max_fraction must lie in [0, 1], got {self.max_fraction!r}")


@dataclass(frozen=True)
class IssueReport:
    """What :func:`detect_label_issues` found.

    Attributes:
        is_issue: Shape ``(N,)`` bool: flagged after the guard (cleanlab's mask without one).
        is_issue_before_guard: Shape ``(N,)`` bool: cleanlab's mask.
        quality: Shape ``(N,)`` label-quality scores in ``[0, 1]``; lower = more likely wrong.
        suggested: Shape ``(N,)`` int64 ``argmax`` of ``pred_probs``.
        pred_probs: Shape ``(N, C)`` out-of-sample probabilities, float64.
        per_group: With groups, one row per group (``group, count, flagged, flagged_rate,
            flagged_before``), else ``None``.
    """

    is_issue: np.ndarray
    is_issue_before_guard: np.ndarray
    quality: np.ndarray
    suggested: np.ndarray
    pred_probs: np.ndarray
    per_group: list[dict] | None


def as_inputs(x, num_rows: int, *, name: str = "x") -> torch.Tensor:
    """Return ``x`` as a floating tensor with ``num_rows`` finite rows, or raise naming ``name``."""
    if isinstance(x, torch.Tensor):
        tensor = x.detach()
        if not tensor.is_floating_point():
            tensor = tensor.float()
    else:
        array = np.asarray(x)
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
                or array.dtype == np.bool_):
            raise TypeError(f"{name} must be a numeric array, got dtype {array.dtype}")
        tensor = torch.as_tensor(array, dtype=torch.float32)
    if tensor.ndim < 2:
        raise ValueError(f"{name} must have shape (N, D) or (N, *input_shape), got shape "
                         f"{tuple(tensor.shape)}")
    if tensor.shape[0] != num_rows:
        raise ValueError(f"{name} must have one row per label ({num_rows} rows), got "
                         f"{tensor.shape[0]} rows")
    bad = ~torch.isfinite(tensor.flatten(1)).all(dim=1)
    if bad.any():
        raise ValueError(f"{name} must be finite, got NaN or inf in {int(bad.sum())} of {num_rows} "
                         f"rows (first: row {int(bad.nonzero()[0, 0])}); impute or drop them")
    return tensor


def check_class_counts(labels: np.ndarray, num_folds: int) -> None:
    """Raise ``ValueError`` naming ``labels`` when a class has fewer than ``num_folds`` examples."""
    counts = np.bincount(labels)
    small = [(c, int(n)) for c, n in enumerate(counts) if 0 < n < num_folds]
    if small:
        single = [c for c, n in small if n == 1]
        what = f"class {single[0]} has a single example" if single else \
            f"(class, count) {small} have fewer than num_folds={num_folds} examples"
        raise ValueError(f"labels: {what}; out-of-sample probabilities need every class in every "
                         f"one of the num_folds={num_folds} folds, so each class needs at least "
                         f"{num_folds} examples (classes with too few: {small}). Drop or merge "
                         f"those classes" + ("" if single else f", or set num_folds="
                                             f"{min(n for _, n in small)}"))


def detect_label_issues(
    x,
    labels,
    *,
    model=AUTO,
    groups=None,
    num_groups: int | None = None,
    guard: GroupGuard | None = None,
    num_classes: int | None = None,
    num_folds: int = NUM_FOLDS,
    filter_by: str = FILTER_BY,
    quality_method: str = QUALITY_METHOD,
    seed: int = 0,
    csv_path: str | os.PathLike | None = None,
    progress: bool = False,
) -> IssueReport:
    """Flag likely label errors in ``(x, labels)`` with out-of-sample confident learning.

    Args:
        x: Inputs or features, shape ``(N, D)`` or ``(N, *input_shape)``, finite: a numpy array
            (used as float32) or a floating tensor (a tensor on a GPU trains there).
        labels: Shape ``(N,)`` integer labels; every class needs ``num_folds`` examples.
        model: ``"auto"`` (``HistGradientBoostingClassifier`` for 2-D ``x``, the cross-fitted
            MLP fast path otherwise), a scikit-learn classifier, a
            :class:`~robustml.cleaning.CrossFitNetwork` / :class:`~robustml.cleaning.KFoldNetwork`
            (with your ``build_model``), :class:`~robustml.cleaning.LinearHeads` (``x`` are
            features from a model trained on other data), or ``fit_predict(train_idx, eval_idx)
            -> probs`` (your training; it must fit on ``train_idx`` only).
        groups: Optional shape ``(N,)`` group ids; needs ``guard``.
        num_groups: Number of groups; default ``groups.max() + 1``.
        guard: A :class:`GroupGuard` (``GroupGuard()`` caps nothing); needs ``groups``.
        num_classes: Number of classes; default ``labels.max() + 1``.
        num_folds: Folds ``K >= 2``.
        filter_by: One of :data:`robustml.cleaning.FILTER_BY` (cleanlab's ``filter_by`` options
            and the ranked ones, see :func:`~robustml.cleaning.find_label_issues`).
        quality_method: cleanlab's label-quality score.
        seed: Seed of the folds, the parts and the default models.
        csv_path: If given, write the flagged rows there (:func:`write_label_issues_csv`).
        progress: Show progress bars.

    Returns:
        An :class:`IssueReport`.

    Raises:
        ValueError: Non-finite rows in ``x`` (with their count), row counts that differ, a class
            with too few examples, groups without a guard or a guard without groups.
        TypeError: A model of another kind, or a network without ``features(x)`` for the fast path.
    """
    for name, value in (("num_classes", num_classes), ("num_groups", num_groups)):
        if value is not None:
            check_int(name, value, minimum=1)
    labels = validate_labels(labels, num_classes=num_classes)
    if labels.size == 0:
        raise ValueError("labels must hold at least one label, got none (shape (0,))")
    check_int("num_folds", num_folds, minimum=2)
    num_classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    if groups is not None and guard is None:
        raise ValueError("groups were given without a guard: pass guard=GroupGuard(max_fraction=..., "
                         "protect_groups=...) (GroupGuard() keeps every flag and only reports "
                         "per group)")
    if guard is not None and groups is None:
        raise ValueError("guard was given without groups: pass groups=<(N,) group ids> with it")
    if guard is not None and not isinstance(guard, GroupGuard):
        raise TypeError(f"guard must be a GroupGuard, got {type(guard).__name__}")
    if groups is not None:
        groups = validate_labels(groups, name="groups")
        if groups.shape != labels.shape:
            raise ValueError(f"groups must have one entry per label: expected {labels.shape[0]}, "
                             f"got {groups.shape[0]}")
        num_groups = int(groups.max()) + 1 if num_groups is None else num_groups
    inputs = as_inputs(x, labels.shape[0])
    check_class_counts(labels, num_folds)
    probs = out_of_sample_probs(inputs, labels, model=model, num_classes=num_classes,
                                num_folds=num_folds, seed=seed, progress=progress)
    issues = find_label_issues(labels, probs, filter_by=filter_by, quality_method=quality_method)
    flagged, per_group = issues.is_issue, None
    if groups is not None:
        flagged = apply_group_cap(issues.is_issue, issues.quality, groups, num_groups=num_groups,
                                  max_fraction=guard.max_fraction,
                                  protect_groups=list(guard.protect_groups))
        per_group = per_group_report(flagged, groups, num_groups=num_groups,
                                     before=issues.is_issue)
    if csv_path is not None:
        action = np.where(flagged, "flagged", np.where(issues.is_issue, GUARDED, "keep"))
        write_label_issues_csv(csv_path, given=labels, suggested=issues.suggested,
                               quality=issues.quality, action=action, groups=groups)
    return IssueReport(is_issue=flagged, is_issue_before_guard=issues.is_issue,
                       quality=issues.quality, suggested=issues.suggested, pred_probs=probs,
                       per_group=per_group)
