"""A user's own table (CSV or Parquet) as a grouped dataset: no code, only column names.

One row per example: feature columns, a label column and one or more attribute columns; groups
are label x attribute values (several attribute columns combine, their values joined by ``|``).
Splits come from a split column (``train`` / ``val`` / ``test``; without ``val`` rows a
validation split is held out from ``train``) or from a seeded split stratified by group.
Categorical feature columns are detected (any column that is not numeric) or declared; numeric
columns are standardized and categorical ones one-hot encoded with the training rows' statistics
(:func:`~robustml.data.datasets.tabular.table_splits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from robustml.data.contract import DataSplits
from robustml.data.datasets.colored import check_flag
from robustml.data.checks import (as_names, check_columns, check_num_classes, check_split_sizes,
                                  read_csv_rows)
from robustml.data.datasets.tabular import SPLITS, attribute_values, stratified_holdout, table_splits
from robustml.validation import check_int

READERS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
MISSING_RULES = ("error", "drop")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a ``.csv``, ``.tsv`` or ``.parquet`` file into a frame.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The suffix is not one of the supported ones, or the file is empty or has no
            rows below its header (the path is named).
        ImportError: A Parquet file without pyarrow installed.
    """
    path = Path(path)
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"path must end with one of {sorted(READERS)}, got {str(path)!r}")
    if not path.is_file():
        raise FileNotFoundError(f"table not found: {path.resolve()} (pass path=<file>; a "
                                f"relative path is relative to the current directory)")
    if kind == "parquet":
        try:
            import pyarrow  # noqa: F401  (pandas' Parquet engine)
        except ImportError as error:
            raise ImportError("reading Parquet needs pyarrow: pip install 'robustml[tabular]'") \
                from error
        frame = pd.read_parquet(path)
    else:
        frame = read_csv_rows(path, header="naming the columns", row="example",
                              sep="\t" if kind == "tsv" else ",", skipinitialspace=True)
    if frame.empty:  # a Parquet file without rows
        raise ValueError(f"{path} has no rows: its header names the columns {list(frame.columns)}, "
                         "and one row per example must follow it")
    return frame


def _apply_missing_rule(frame: pd.DataFrame, columns: Sequence[str], rule: str,
                        source: str) -> tuple[pd.DataFrame, int]:
    """Drop rows with an empty cell in ``columns`` (``"drop"``) or refuse them (``"error"``)."""
    empty = frame[list(columns)].isna()
    rows = empty.any(axis=1)
    if rows.any() and rule == "error":
        column = empty.columns[empty.any()][0]
        first = [int(i) for i in frame.index[empty[column].to_numpy()][:5]]
        raise ValueError(f"{source}, column {column!r}: {int(empty[column].sum())} empty value(s), "
                         f"first at data row(s) {first} (0-based, header excluded); fill them, or "
                         f"pass missing='drop' to remove such rows (counted in "
                         f"the report)")
    return frame[~rows], int(rows.sum())


def _feature_kinds(frame: pd.DataFrame, features: Sequence[str], declared: tuple[str, ...] | None,
                   source: str) -> tuple[list[str], list[str]]:
    """Return ``(numeric, categorical)`` features: declared, or detected from the column types."""
    if declared is None:
        categorical = [c for c in features if not _is_numeric(frame[c])]
    else:
        check_columns(list(frame.columns), declared, source=source, argument="categorical")
        categorical = [c for c in features if c in declared]
        for column in features:
            if column not in declared and not _is_numeric(frame[column]):
                values = frame[column][pd.to_numeric(frame[column], errors="coerce").isna()]
                raise ValueError(f"{source}, column {column!r}: not numeric (e.g. "
                                 f"{values.iloc[0]!r} at data row {int(values.index[0])}) and not "
                                 f"declared categorical; add it to categorical or fix the value")
    return [c for c in features if c not in categorical], categorical


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _split(frame: pd.DataFrame, groups: pd.Series, *, split_column: str | None, val_fraction: float,
           test_fraction: float, seed: int, source: str) -> tuple[dict[str, pd.DataFrame], str]:
    """Return the frames of the three splits and a sentence that says how they were made."""
    if split_column is None:
        rest, test = stratified_holdout(frame, groups, fraction=test_fraction, seed=seed, what="test")
        train, val = stratified_holdout(rest, groups[rest.index],
                                        fraction=val_fraction / (1.0 - test_fraction), seed=seed,
                                        what="val")
        return ({"train": train, "val": val, "test": test},
                f"a split stratified by group (val {val_fraction:g}, test {test_fraction:g} of the "
                f"rows, seed {seed})")
    names = frame[split_column].astype(str).str.strip().str.lower()
    unknown = sorted(set(names) - set(SPLITS))
    if unknown:
        raise ValueError(f"{source}, column {split_column!r}: values must be train, val or test, "
                         f"got {unknown}")
    check_split_sizes({name: int((names == name).sum()) for name in ("train", "test")},
                      source=f"{source}, column {split_column!r}",
                      how="Add rows of that split (val rows are optional: without them val is "
                          "held out from train), or pass split_column=None to draw the splits.")
    frames = {name: frame[names == name] for name in SPLITS}
    how = f"the column {split_column!r}"
    if frames["val"].empty:
        train = frames["train"]
        frames["train"], frames["val"] = stratified_holdout(train, groups[train.index],
                                                            fraction=val_fraction, seed=seed,
                                                            what="val")
        how += (f" (no val rows: val is a {val_fraction:g} hold-out of the train rows stratified "
                f"by group, seed {seed})")
    return frames, how


def tabular_file_splits(
    path: str | Path,
    *,
    label: str,
    attributes: str | Sequence[str] | None = None,
    features: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    split_column: str | None = None,
    attribute_as_input: bool = False,
    missing: str = "error",
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DataSplits:
    """Build grouped train/val/test splits from a CSV or Parquet file.

    Args:
        path: A ``.csv``, ``.tsv``, ``.parquet`` or ``.pq`` file with a header row.
        label: Label column; classes are its sorted values.
        attributes: Spurious-attribute column name(s); groups are label x attribute values.
            Required: ``None`` or an empty list stops with the file's columns to choose from.
        features: Input columns; default every column except the label, the attributes and the
            split column.
        categorical: Feature columns to one-hot encode; default the columns that are not numeric.
            When given, every other feature must be numeric.
        split_column: Column of ``train`` / ``val`` / ``test`` values (case-insensitive); default
            a seeded split stratified by group.
        attribute_as_input: Add the attribute columns to the inputs.
        missing: Empty cells in a used column: ``"error"`` (default) or ``"drop"`` the row
            (the number removed goes into the description).
        val_fraction: Fraction of the rows for validation (of the train rows with a split column
            that has no val rows).
        test_fraction: Fraction of the rows for test, without a split column.
        seed: Seed of the stratified splits.

    Returns:
        Splits named after the file: ``x`` float32 ``(N, F)``, ``y`` and ``attr`` int64 ``(N,)``,
        a description stating the file, the split rule, the inputs, removed rows and group counts
        (with a warning for every empty group). ``splits.preprocessor`` is the fitted encoder and
        ``splits.feature_names`` the encoded column names.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: A named column is absent (the file, the column and the valid columns are
            named), a value is malformed, or an option is invalid.
    """
    seed = check_int("seed", seed)
    attribute_as_input = check_flag("attribute_as_input", attribute_as_input)
    if missing not in MISSING_RULES:
        raise ValueError(f"missing must be one of {MISSING_RULES}, got {missing!r}")
    if isinstance(label, bool) or not isinstance(label, str):
        raise TypeError(f"label must be a column name (str), got {type(label).__name__} {label!r}")
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
                or not 0 < fraction < 1:
            raise ValueError(f"{name} must be a float in (0, 1), got {fraction!r}")
    if split_column is None and val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be < 1 to leave training rows, got "
                         f"{val_fraction!r} + {test_fraction!r}")
    attributes = () if attributes is None else as_names("attributes", attributes)
    if label in attributes:
        raise ValueError(f"attributes must not hold the label column {label!r} (a group would "
                         f"be the label itself), got attributes={list(attributes)}; name another "
                         f"column as the attribute")
    frame = read_table(path)
    source = str(path)
    check_columns(list(frame.columns), [label], source=source, argument="label")
    if not attributes:
        others = [str(c) for c in frame.columns if c not in (label, split_column)]
        raise ValueError(f"attributes must name the spurious-attribute column(s) of {source} (the groups "
                         f"are {label} x attribute values), got none; pass attributes=[<column>] with "
                         f"columns from {others}")
    check_columns(list(frame.columns), attributes, source=source, argument="attributes")
    if split_column is not None:
        check_columns(list(frame.columns), [split_column], source=source, argument="split_column")
    reserved = {label, *attributes, *([split_column] if split_column else [])}
    if features is None:
        inputs = [str(c) for c in frame.columns if c not in reserved]
    else:
        inputs = list(as_names("features", features))
        check_columns(list(frame.columns), inputs, source=source, argument="features")
        clash = sorted(reserved & set(inputs))
        if clash:
            raise ValueError(f"features must not hold the label, attribute or split columns, got "
                             f"{clash}")
    if attribute_as_input:
        inputs += [a for a in attributes if a not in inputs]
    used = [*inputs, *reserved]
    frame, removed = _apply_missing_rule(frame, used, missing, source)
    check_num_classes(sorted(set(frame[label].astype(str))), source=source, column=label)
    numeric, categorical = _feature_kinds(
        frame, inputs, None if categorical is None else as_names("categorical", categorical), source)
    groups = frame[label].astype(str) + "," + attribute_values(frame, attributes)
    frames, how = _split(frame, groups, split_column=split_column, val_fraction=val_fraction,
                         test_fraction=test_fraction, seed=seed, source=source)
    names = ", ".join(attributes)
    description = (
        f"Table {Path(path).name}: {len(frame):,} rows ({removed:,} removed for empty cells); "
        f"label {label!r}, groups {label} x {names}; splits from {how}: train "
        f"{len(frames['train']):,}, val {len(frames['val']):,}, test {len(frames['test']):,}. "
        f"Inputs: {len(numeric)} numeric column(s) standardized and {len(categorical)} "
        f"categorical column(s) one-hot encoded, fitted on the training rows only; the "
        f"attribute(s) {names} {'are' if attribute_as_input else 'are not'} inputs.")
    return table_splits(frames, label=label, attributes=attributes, numeric=numeric,
                        categorical=categorical, name=Path(path).stem, description=description)
