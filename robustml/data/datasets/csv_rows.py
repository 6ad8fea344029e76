"""The columns every "your own data, no code" CSV shares: label, attributes and split.

``image_csv`` and ``text_csv`` read their own content columns (image paths, texts) and hand the
rest to :func:`label_attr_split`: the attribute columns (default: every column not otherwise
used), class and attribute codes (sorted, numerically when every value is a number; several
attribute columns combined into one attribute such as ``outdoor+night``), and the split from the
``split`` column's names or, without one, a seeded split stratified by group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robustml.data.checks import as_names, check_columns, check_num_classes

SPLIT_NAMES = {"train": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}


@dataclass
class LabelledRows:
    """Per-row codes of a CSV's label, attribute and split columns, and how the split was made."""

    y: np.ndarray
    class_names: list[str]
    attr: np.ndarray
    attr_names: list[str]
    attr_key: str          # the attribute columns joined by "+"
    split: np.ndarray      # 0 train, 1 val, 2 test
    how: str               # e.g. "splits from its 'split' column", for the description
    split_source: str      # where the split came from, named when a split is empty
    split_hint: str        # what to change when a split is empty


def value_codes(values: Any) -> tuple[np.ndarray, list[str]]:
    """Return integer codes and sorted names (numeric order when every value is a number)."""
    names = sorted(set(values), key=lambda v: (0, float(v), v) if _is_number(v) else (1, 0.0, v))
    lookup = {name: code for code, name in enumerate(names)}
    return values.map(lookup).to_numpy(dtype=np.int64), [str(n) for n in names]


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False


def stratified_split(groups: np.ndarray, *, val_fraction: float, test_fraction: float,
                     seed: int) -> np.ndarray:
    """Return split ids (0 train, 1 val, 2 test) with each group divided in the given fractions.

    In every group of ``n`` examples, ``round(n * test_fraction)`` go to test and
    ``round(n * val_fraction)`` to val, drawn with ``numpy.random.default_rng(seed)``.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction and test_fraction must lie in [0, 1) and sum below 1, got "
                         f"{val_fraction} and {test_fraction}")
    rng = np.random.default_rng(seed)
    split = np.zeros(len(groups), dtype=np.int64)
    for g in np.unique(groups):
        members = rng.permutation(np.flatnonzero(groups == g))
        n_test, n_val = round(len(members) * test_fraction), round(len(members) * val_fraction)
        split[members[:n_test]] = 2
        split[members[n_test:n_test + n_val]] = 1
    return split


def label_attr_split(frame: Any, csv: Path, *, content: Sequence[str], label: str,
                     attributes: Sequence[str] | None, split: str, val_fraction: float,
                     test_fraction: float, seed: int, more_rows: str) -> LabelledRows:
    """Return the codes of ``frame``'s label, attribute and split columns.

    Args:
        frame: The CSV's rows (a :class:`pandas.DataFrame` of strings, columns stripped).
        csv: The file, for messages.
        content: The content columns (image path; text or text pair): never attributes.
        label: Column of class labels.
        attributes: Attribute columns; ``None``: every column other than ``content``, ``label``
            and ``split``.
        split: Column of split names; without it the split is drawn (:func:`stratified_split`).
        val_fraction, test_fraction, seed: The drawn split's fractions and seed.
        more_rows: What to list more of when a drawn split is empty ("images", "texts").

    Raises:
        ValueError: No attribute column, an attribute that is a content or label column, a named
            column absent, an empty label or attribute cell, an unknown split name, or one class.
    """
    reserved = (*content, label, split)
    attributes = (list(as_names("attributes", attributes)) if attributes is not None
                  else [c for c in frame.columns if c not in reserved])
    if not attributes:
        raise ValueError(f"{csv} needs at least one attribute column besides {list(reserved)}; it has "
                         f"{list(frame.columns)}")
    clash = sorted(set(attributes) & {*content, label})
    if clash:
        raise ValueError(f"attributes must not hold the label or {'/'.join(content)} column(s) "
                         f"{(label, *content)}, got {list(attributes)}")
    check_columns(list(frame.columns), [*content, label, *attributes], source=str(csv))
    for column in (label, *attributes):
        blank = np.flatnonzero(frame[column].str.strip() == "")
        if len(blank):
            raise ValueError(f"{csv} column {column!r} is empty in {len(blank)} row(s), first data "
                             f"row(s) {(blank[:5] + 1).tolist()}")
    y, class_names = value_codes(frame[label].str.strip())
    check_num_classes(class_names, source=str(csv), column=label)
    attr, attr_names = value_codes(frame[attributes].apply(lambda row: "+".join(v.strip() for v in row),
                                                           axis=1))
    if split in frame.columns:
        names = frame[split].str.strip().str.lower()
        unknown = sorted(set(names) - set(SPLIT_NAMES))
        if unknown:
            raise ValueError(f"{csv} column {split!r} holds unknown split name(s) {unknown}; valid: "
                             f"{sorted(SPLIT_NAMES)}")
        split_ids = names.map(SPLIT_NAMES).to_numpy(dtype=np.int64)
        how, source = f"splits from its {split!r} column", f"{csv}, column {split!r}"
        hint = (f"Add rows of every split to the {split!r} column, or remove the column to draw a "
                "split per group.")
    else:
        split_ids = stratified_split(y * len(attr_names) + attr, val_fraction=val_fraction,
                                     test_fraction=test_fraction, seed=seed)
        how = f"a split drawn per group (seed {seed}, val {val_fraction:g}, test {test_fraction:g})"
        source = (f"{csv} (no {split!r} column; split drawn with val_fraction={val_fraction:g}, "
                  f"test_fraction={test_fraction:g})")
        hint = f"Raise val_fraction / test_fraction, list more {more_rows} per group, or add a split column."
    return LabelledRows(y, class_names, attr, attr_names, "+".join(attributes), split_ids, how,
                        source, hint)
