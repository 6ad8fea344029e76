"""Turn flagged label issues into a cleaned training set, and write the issues to a CSV.

Three actions (Northcutt et al., JAIR 2021, Sec. 3.2 prunes; relabeling and down-weighting are the
common alternatives):

- ``"prune"``: drop flagged rows.
- ``"relabel"``: keep every row; flagged rows take the suggested label (``argmax pred_probs``).
- ``"reweight"``: keep every row with its given label; a flagged row gets weight equal to its
  label-quality score (e.g. self-confidence ``P(given label | x)``), unflagged rows weight 1.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np

from robustml.cleaning.issues import validate_labels
from robustml.report.tables import atomic_path

ACTIONS = ("prune", "relabel", "reweight")
CSV_COLUMNS = ("index", "given_label", "suggested_label", "quality", "group", "action")


@dataclass(frozen=True)
class CleaningResult:
    """A cleaned training set, described by indices into the original one.

    Attributes:
        keep_idx: Shape ``(M,)`` int64 indices of the rows kept, ascending.
        labels: Shape ``(M,)`` int64 labels of the kept rows (after relabeling).
        weights: Shape ``(M,)`` float64 per-example weights of the kept rows.
        action: Shape ``(N,)`` strings, one per original row: ``"keep"``, ``"prune"``,
            ``"relabel"`` or ``"reweight"``.
    """

    keep_idx: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    action: np.ndarray


def apply_action(
    action: str,
    *,
    labels,
    is_issue,
    suggested,
    quality,
    normalize_weights: bool = False,
) -> CleaningResult:
    """Apply one cleaning action to the flagged rows.

    Args:
        action: ``"prune"``, ``"relabel"`` or ``"reweight"``.
        labels: Shape ``(N,)`` given labels.
        is_issue: Shape ``(N,)`` bool mask of flagged rows.
        suggested: Shape ``(N,)`` suggested labels (used by ``"relabel"``).
        quality: Shape ``(N,)`` label-quality scores in ``[0, 1]`` (used by ``"reweight"``).
        normalize_weights: For ``"reweight"``, rescale the weights to mean 1 over kept rows.

    Returns:
        A :class:`CleaningResult`. A flagged row is marked ``"relabel"`` even when its suggested
        label equals the given one.

    Raises:
        ValueError: For an unknown action, mismatched shapes, or quality outside ``[0, 1]``.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
    labels = validate_labels(labels)
    n = labels.shape[0]
    suggested = validate_labels(suggested, name="suggested")
    is_issue = np.asarray(is_issue)
    quality = np.asarray(quality, dtype=np.float64)
    if is_issue.dtype != np.bool_:
        raise TypeError(f"is_issue must be a bool mask, got dtype {is_issue.dtype}")
    for name, value in (("is_issue", is_issue), ("suggested", suggested), ("quality", quality)):
        if value.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) to match labels, got {value.shape}")
    if not (np.isfinite(quality).all() and (quality >= 0).all() and (quality <= 1).all()):
        raise ValueError("quality must be finite and lie in [0, 1]")

    row_action = np.where(is_issue, action, "keep").astype("<U8")
    if action == "prune":
        keep_idx = np.flatnonzero(~is_issue)
        return CleaningResult(keep_idx, labels[keep_idx], np.ones(keep_idx.shape[0]), row_action)
    keep_idx = np.arange(n, dtype=np.int64)
    if action == "relabel":
        relabeled = np.where(is_issue, suggested, labels)
        return CleaningResult(keep_idx, relabeled, np.ones(n), row_action)
    weights = np.where(is_issue, quality, 1.0)
    if normalize_weights:
        if weights.sum() <= 0:
            raise ValueError("cannot normalize weights to mean 1: every kept weight is 0")
        weights = weights * (n / weights.sum())
    return CleaningResult(keep_idx, labels.copy(), weights, row_action)


def issues_table(
    *,
    given,
    suggested,
    quality,
    action,
    groups=None,
    index=None,
) -> list[dict]:
    """List every flagged row (``action != "keep"``), most likely label errors first.

    Args:
        given: Shape ``(N,)`` given labels.
        suggested: Shape ``(N,)`` suggested labels.
        quality: Shape ``(N,)`` label-quality scores.
        action: Shape ``(N,)`` per-row actions from :class:`CleaningResult`.
        groups: Optional shape ``(N,)`` group ids (``None`` leaves the column empty).
        index: Optional shape ``(N,)`` dataset indices (default ``0..N-1``).

    Returns:
        One dict per flagged row with keys :data:`CSV_COLUMNS`, sorted by ascending quality
        (ties by index).
    """
    given = validate_labels(given, name="given")
    n = given.shape[0]
    columns = {
        "suggested": validate_labels(suggested, name="suggested"),
        "quality": np.asarray(quality, dtype=np.float64),
        "action": np.asarray(action).astype(str),
        "index": np.arange(n) if index is None else np.asarray(index),
    }
    if groups is not None:
        columns["groups"] = validate_labels(groups, name="groups")
    for name, value in columns.items():
        if value.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) to match given, got {value.shape}")
    flagged = np.flatnonzero(columns["action"] != "keep")
    flagged = flagged[np.lexsort((flagged, columns["quality"][flagged]))]
    return [
        {
            "index": columns["index"][i].item(),
            "given_label": int(given[i]),
            "suggested_label": int(columns["suggested"][i]),
            "quality": float(columns["quality"][i]),
            "group": None if groups is None else int(columns["groups"][i]),
            "action": str(columns["action"][i]),
        }
        for i in flagged
    ]


def write_label_issues_csv(
    path: str | os.PathLike,
    *,
    given,
    suggested,
    quality,
    action,
    groups=None,
    index=None,
) -> int:
    """Write the flagged rows of :func:`issues_table` to a CSV with header :data:`CSV_COLUMNS`.

    Args:
        path: Output file, written atomically (its folder is created if needed).
        given, suggested, quality, action, groups, index: As in :func:`issues_table`.

    Returns:
        The number of rows written (flagged rows only; a missing group is an empty cell).
    """
    rows = issues_table(
        given=given, suggested=suggested, quality=quality, action=action, groups=groups,
        index=index,
    )
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
