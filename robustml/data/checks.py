"""Checks shared by every loader: columns present, splits and classes not degenerate, empty groups.

Each failure is a ``ValueError`` that names the file (or argument), the column, what was expected
and what was found. An empty group is not an error when a split is built (evaluation reports it
with count 0): it is warned about and stated in the splits' description, and
:func:`require_nonempty_groups` stops the methods that divide by a group's training count
(``robustml-train`` calls it for ``sampler=group_balanced`` and ``sampler=reweight``; Group DRO's
adjustment refuses a zero count itself).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from robustml.data.contract import GroupedDataset


def read_csv_rows(path: Any, *, header: str, row: str, **options: Any) -> Any:
    """Return ``pandas.read_csv(path, **options)``; an empty file or one with a header only stops
    with a message naming the path, the ``header`` it needs and what each ``row`` holds."""
    import pandas as pd  # only the loaders of CSV files need pandas
    try:
        frame = pd.read_csv(path, **options)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty: expected a header row {header}, then one row per {row}") from None
    if frame.empty:
        raise ValueError(f"{path} has no rows: its header names the columns {list(frame.columns)}, and "
                         f"one row per {row} must follow it")
    return frame


def as_names(argument: str, value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Return a column-name argument as a tuple of names (a single string is one name)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    try:
        names = tuple(value)
    except TypeError:
        raise TypeError(f"{argument} must be a column name or a list of names, got "
                        f"{type(value).__name__} {value!r}") from None
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{argument} must hold column names (str), got {type(name).__name__} "
                            f"{name!r}")
    return names


def check_columns(columns: Sequence[str], required: Sequence[str], *, source: str,
                  argument: str | None = None) -> None:
    """Raise ``ValueError`` naming ``source`` and every column of ``required`` absent from ``columns``.

    Args:
        columns: The columns the file has.
        required: The columns needed.
        source: The file, for the message.
        argument: The option that named the columns (``"label"``), when a user chose them.
    """
    missing = [name for name in required if name not in columns]
    if missing:
        prefix = f"{argument}: " if argument else ""
        raise ValueError(f"{prefix}column(s) {missing} not found in {source}; valid columns: "
                         f"{[str(c) for c in columns]}")


def check_split_sizes(sizes: Mapping[str, int], *, source: str, how: str) -> None:
    """Raise ``ValueError`` when a split of ``sizes`` (``{"train": n, "val": n, "test": n}``) is empty.

    Args:
        sizes: Number of examples per split.
        source: Where the split assignment came from, e.g. ``"images.csv, column 'split'"``.
        how: What to change, e.g. ``"add val rows, or drop the split column to draw a split"``.
    """
    empty = [name for name, size in sizes.items() if size == 0]
    if empty:
        shown = ", ".join(f"{name} {size:,}" for name, size in sizes.items())
        raise ValueError(f"{source}: the {' and '.join(empty)} split(s) are empty; expected at "
                         f"least one example in each of {', '.join(sizes)}, got {shown}. {how}")


def check_num_classes(class_names: Sequence[str], *, source: str, column: str) -> None:
    """Raise ``ValueError`` unless the label ``column`` of ``source`` holds at least two classes."""
    if len(class_names) < 2:
        raise ValueError(f"{source}, label column {column!r}: expected at least 2 classes, got "
                         f"{len(class_names)} ({[str(c) for c in class_names]}); a classifier "
                         f"needs examples of two labels")


def format_counts(split: GroupedDataset) -> str:
    """Return ``"name n, name n, ..."`` of the split's group counts."""
    return ", ".join(f"{name} {n:,}" for name, n in zip(split.group_names, split.group_counts().tolist()))


def empty_group_note(splits: Mapping[str, GroupedDataset]) -> str:
    """Warn about, and return the report sentence on, every split's empty groups ("" if none).

    Args:
        splits: ``{"train": ..., "val": ..., "test": ...}``.
    """
    notes = []
    for name, split in splits.items():
        empty = [split.group_names[g] for g, n in enumerate(split.group_counts().tolist()) if n == 0]
        if empty:
            notes.append(f"the {name} split has no examples in group(s) {', '.join(empty)}")
    if not notes:
        return ""
    text = ("Warning: " + "; ".join(notes) + ". Worst-group accuracy is taken over the other "
            "groups only; when a training group is empty, robustml-train's methods that divide "
            "by a group's training count (group-balanced sampling, reweighting, Group DRO's "
            "adjustment) stop with an error.")
    warnings.warn(text, stacklevel=2)
    return text


def require_nonempty_groups(ids: torch.Tensor, num_parts: int, names: Sequence[str], *,
                            what: str) -> None:
    """Raise ``ValueError`` when a part of the partition ``ids`` has no example.

    Args:
        ids: Partition id per training example, shape ``(N,)`` int64.
        num_parts: Number of parts (groups, classes or environments).
        names: Name of each part, for the message.
        what: The method that divides by the counts, e.g. ``"sampler=reweight"``.
    """
    counts = torch.bincount(ids.cpu(), minlength=num_parts).tolist()
    empty = [str(names[p]) for p, n in enumerate(counts) if n == 0]
    if empty:
        raise ValueError(f"{what} divides by each part's training count, but the training split "
                         f"has no example of {', '.join(empty)} (counts {counts}); expected every "
                         f"count >= 1. Use a uniform sampler (sampler=uniform), or data in which "
                         f"every group occurs in training")
