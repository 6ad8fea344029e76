"""Your own texts, no code: a CSV with a text column (or two, for pairs), a label column, one or
more attribute columns and an optional split column.

The columns are read as :mod:`~robustml.data.datasets.image_csv` reads an image CSV, with its
helpers: class and attribute codes (sorted, numerically when every value is a number), several
attribute columns combined into one attribute (``outdoor+night``), the ``split`` column's names
(``train``, ``val``/``valid``/``validation``, ``test``) or, without one, a seeded split stratified
by group (:func:`~robustml.data.datasets.image_csv.stratified_split`). Texts are tokenized once
(cached) into the text input format; empty texts follow ``empty_text``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from robustml.data.checks import as_names, check_columns, check_num_classes, read_csv_rows
from robustml.data.contract import DataSplits
from robustml.data.datasets.image_csv import SPLIT_NAMES, stratified_split, value_codes
from robustml.text.splits import text_splits
from robustml.validation import check_int, check_real

HEADER = "text[,text_pair],label,<attribute columns>[,split]"


def text_csv_splits(csv: str | Path, *, text: str = "text", text_pair: str | None = None,
                    label: str = "label", attributes: Sequence[str] | None = None, split: str = "split",
                    val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 0,
                    tokenizer: str = "bert-base-uncased", max_length: int = 128,
                    cache_dir: str | None = "text_cache", empty_text: str = "keep",
                    name: str = "", counterfactual_lexicon: str | None = None) -> DataSplits:
    """Return train/val/test splits of the texts in ``csv``, tokenized (in memory).

    Args:
        csv: The CSV file (quoted cells may hold commas, quotes and newlines).
        text: Column of the texts (the premises, for pairs).
        text_pair: Column of the second texts of pairs (hypotheses), or ``None``.
        label: Column of class labels.
        attributes: Spurious-attribute columns (default: every column other than the text,
            label and split columns).
        split: Column of split names; without such a column the split is drawn per group.
        val_fraction, test_fraction: Fractions of each group held out (drawn split only).
        seed: Seed of the drawn split.
        tokenizer: Local folder, ``package:<module>`` or Hub name of the tokenizer.
        max_length: Tokens per row (single text or pair).
        cache_dir: Folder of the token cache (relative to the working directory), or ``None``.
        empty_text: ``keep`` an empty text as ``""`` or ``drop`` its row (counted either way).
        name: Name for reports (default: the CSV's file stem).
        counterfactual_lexicon: Word pairs swapped in the texts for counterfactual augmentation
            and the stress test (``identity``, ``gender`` or a file of pairs; the attribute must
            have two values); ``None``: none (see :func:`~robustml.text.splits.text_splits`).

    Raises:
        FileNotFoundError: The CSV is missing.
        ValueError: A named column is absent (the valid ones are listed), a label or attribute
            cell is empty, a split name is unknown, a split is empty, the label holds one class,
            or an option is out of range.
    """
    seed = check_int("seed", seed)
    for argument, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        check_real(argument, value, minimum=0.0)
    for argument, value in (("text", text), ("label", label), ("split", split)):
        if not isinstance(value, str):
            raise TypeError(f"{argument} must be a column name (str), got {value!r} ({type(value).__name__})")
    csv = Path(csv)
    if not csv.is_file():
        raise FileNotFoundError(f"csv={str(csv)!r}: no such file; csv must name a CSV file with columns "
                                f"{HEADER}")
    frame = read_csv_rows(csv, header=HEADER, row="text", dtype=str, keep_default_na=False)
    frame.columns = [c.strip() for c in frame.columns]
    if text_pair is not None and not isinstance(text_pair, str):
        raise TypeError(f"text_pair must be a column name (str) or None, got {text_pair!r}")
    text_columns = (text,) if text_pair is None else (text, text_pair)
    reserved = (*text_columns, label, split)
    attributes = (list(as_names("attributes", attributes)) if attributes is not None
                  else [c for c in frame.columns if c not in reserved])
    if not attributes:
        raise ValueError(f"{csv} needs at least one attribute column besides {list(reserved)}; it has "
                         f"{list(frame.columns)}")
    clash = sorted(set(attributes) & {*text_columns, label})
    if clash:
        raise ValueError(f"attributes must not hold the text or label columns, got {clash}")
    check_columns(list(frame.columns), [*text_columns, label, *attributes], source=str(csv))
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
        how, hint = (f"splits from its {split!r} column",
                     f"Add rows of every split to the {split!r} column, or remove it to draw a split per group.")
    else:
        split_ids = stratified_split(y * len(attr_names) + attr, val_fraction=val_fraction,
                                     test_fraction=test_fraction, seed=seed)
        how = f"a split drawn per group (seed {seed}, val {val_fraction:g}, test {test_fraction:g})"
        hint = "Raise val_fraction / test_fraction, add texts per group, or add a split column."
    attr_key = "+".join(attributes)
    description = (f"Texts in {csv.name} ({len(frame):,} rows, label {label!r}, attribute "
                   f"{attr_key!r}{', pairs ' + repr(text_columns) if text_pair else ''}), {how}.")
    return text_splits(
        frame, text_columns=text_columns, y=y, attr=attr, split=split_ids, num_classes=len(class_names),
        class_names=class_names, attr_names=attr_names, attr_key=attr_key, tokenizer=tokenizer,
        max_length=max_length, cache_dir=cache_dir, empty_text=empty_text, name=name or csv.stem,
        description=description, source=str(csv), split_hint=hint,
        counterfactual_lexicon=counterfactual_lexicon)
