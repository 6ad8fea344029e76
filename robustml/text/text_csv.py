"""Your own texts, no code: a CSV with a text column (or two, for pairs), a label column, one or
more attribute columns and an optional split column.

The label, attribute and split columns are read as an image CSV's are
(:func:`~robustml.data.datasets.csv_rows.label_attr_split`): class and attribute codes (sorted,
numerically when every value is a number), several attribute columns combined into one attribute
(``outdoor+night``), the ``split`` column's names (``train``, ``val``/``valid``/``validation``,
``test``) or, without one, a seeded split stratified by group. Texts are tokenized once (cached)
into the text input format; empty texts follow ``empty_text``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from robustml.data.checks import read_csv_rows
from robustml.data.contract import DataSplits
from robustml.data.datasets.csv_rows import label_attr_split
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
    rows = label_attr_split(frame, csv, content=text_columns, label=label, attributes=attributes,
                            split=split, val_fraction=val_fraction, test_fraction=test_fraction,
                            seed=seed, more_rows="texts")
    description = (f"Texts in {csv.name} ({len(frame):,} rows, label {label!r}, attribute "
                   f"{rows.attr_key!r}{', pairs ' + repr(text_columns) if text_pair else ''}), {rows.how}.")
    return text_splits(
        frame, text_columns=text_columns, y=rows.y, attr=rows.attr, split=rows.split,
        num_classes=len(rows.class_names), class_names=rows.class_names, attr_names=rows.attr_names,
        attr_key=rows.attr_key, tokenizer=tokenizer, max_length=max_length, cache_dir=cache_dir,
        empty_text=empty_text, name=name or csv.stem, description=description, source=rows.split_source,
        split_hint=rows.split_hint, counterfactual_lexicon=counterfactual_lexicon)
