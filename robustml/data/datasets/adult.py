"""UCI Adult (census income) as a grouped dataset: groups = sex x income by default.

Becker and Kohavi, "Adult", UCI Machine Learning Repository (1996), doi:10.24432/C5XW20. The
label is income ``>50K``; the spurious attribute is ``sex`` (or ``race``, or any other categorical
column). Splits: ``adult.test`` is the test split; a validation split is held out from
``adult.data``, stratified by group and seeded; the rest of ``adult.data`` trains. Numeric columns
are standardized and categorical columns one-hot encoded with statistics of the training rows only
(:func:`~robustml.data.datasets.tabular.fit_preprocessor`).

Rows with ``?`` (a missing value; only ``workclass``, ``occupation`` and ``native-country`` have
them: 2,399 of the 32,561 rows of ``adult.data`` and 1,221 of the 16,281 of ``adult.test``):

- ``missing="drop"`` (default): the row is removed; the description counts the removed rows of
  each file.
- ``missing="category"``: the row is kept and ``?`` is one more value of that categorical column.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from robustml.data.contract import DataSplits
from robustml.data.datasets.colored import check_flag
from robustml.data.datasets.tabular import stratified_holdout, table_splits
from robustml.data.missing import missing_data_error
from robustml.validation import check_int

URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/"
MD5 = {"adult.data": "5d7c39d7b8804f071cdd1f2a7c460872",
       "adult.test": "35238206dfdf7f1fe215bbb874adecdc",
       "adult.names": "1a7cdb3ff7a1b709968b1c7a11def63e"}
COLUMNS = ("age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
           "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
           "hours-per-week", "native-country", "income")
NUMERIC = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")
CATEGORICAL = ("workclass", "education", "marital-status", "occupation", "relationship", "race",
               "sex", "native-country")
LABEL = "income"
CLASS_NAMES = ("<=50K", ">50K")
MISSING_RULES = ("drop", "category")


def _download(folder: Path) -> None:
    """Download the three files from the UCI repository into ``folder``, checking their md5."""
    from robustml._torchvision import import_torchvision

    utils = import_torchvision().datasets.utils
    for filename, md5 in MD5.items():
        if not (folder / filename).is_file():
            utils.download_url(URL + filename, str(folder), filename=filename, md5=md5)


def find_adult(root: str | Path, download: bool = False) -> Path:
    """Return the folder ``<root>/adult`` that holds ``adult.data`` and ``adult.test``.

    Raises:
        FileNotFoundError: A file is missing and ``download`` is False; the message names the
            expected files and layout and how to point robustml at them.
    """
    folder = Path(root).expanduser().resolve() / "adult"
    missing = [f for f in ("adult.data", "adult.test") if not (folder / f).is_file()]
    if missing and download:
        _download(folder)
        missing = []
    if missing:
        raise missing_data_error(
            "UCI Adult", folder, missing,
            layout=f"Expected layout: <root>/adult/adult.data (32,561 rows) and "
                   f"<root>/adult/adult.test (16,281 rows after its first line), the files of {URL} "
                   f"(md5 {MD5['adult.data']} and {MD5['adult.test']}).",
            download_hint="When online, pass download=True to download them.")
    return folder


def read_adult_file(path: str | Path) -> pd.DataFrame:
    """Read ``adult.data`` or ``adult.test`` into a frame with the 15 columns of ``COLUMNS``.

    ``adult.test`` starts with the line ``|1x3 Cross validator``, which is skipped, and its labels
    end with ``.`` (``<=50K.``), which is stripped. Values keep ``?`` for missing entries; blank
    lines are ignored.

    Raises:
        ValueError: A line does not have 15 fields, a numeric field is not a number, or a label is
            neither ``<=50K`` nor ``>50K``; the message names the file, the line and the column.
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    start = 1 if lines and lines[0].startswith("|") else 0
    body = [(n, line) for n, line in enumerate(lines[start:], start + 1) if line.strip()]
    for n, line in body:
        if line.count(",") != len(COLUMNS) - 1:
            raise ValueError(f"{path}, line {n}: expected {len(COLUMNS)} comma-separated fields "
                             f"({', '.join(COLUMNS)}), got {line.count(',') + 1}: {line[:80]!r}")
    frame = pd.read_csv(io.StringIO("\n".join(line for _, line in body)), header=None,
                        names=list(COLUMNS), skipinitialspace=True, dtype=str)
    frame[LABEL] = frame[LABEL].str.rstrip(".")
    line_numbers = [n for n, _ in body]
    bad = ~frame[LABEL].isin(CLASS_NAMES)
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise ValueError(f"{path}, line {line_numbers[i]}, column {LABEL!r}: expected one of "
                         f"{CLASS_NAMES}, got {frame[LABEL].iloc[i]!r}")
    for column in NUMERIC:
        values = frame[column]
        parsed = pd.to_numeric(values.where(values != "?"), errors="coerce")
        bad = parsed.isna() & (values != "?")
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise ValueError(f"{path}, line {line_numbers[i]}, column {column!r}: expected a "
                             f"number or '?', got {values.iloc[i]!r}")
    return frame


def apply_missing_rule(frame: pd.DataFrame, rule: str) -> tuple[pd.DataFrame, int]:
    """Apply the ``?`` rule; return the frame (numeric columns as floats) and the rows removed.

    ``"drop"`` removes every row with a ``?``; ``"category"`` keeps them, ``?`` being a value of
    the categorical column, and fails if a numeric column has a ``?`` (Adult's do not).
    """
    has_missing = (frame == "?").any(axis=1)
    if rule == "drop":
        frame = frame[~has_missing]
    elif (frame[list(NUMERIC)] == "?").any().any():
        column = next(c for c in NUMERIC if (frame[c] == "?").any())
        raise ValueError(f"missing='category' keeps '?' as a category, but numeric column "
                         f"{column!r} has '?'; use missing='drop'")
    frame = frame.astype({c: float for c in NUMERIC})
    return frame, int(has_missing.sum()) if rule == "drop" else 0


def adult_splits(
    root: str | Path,
    *,
    seed: int = 0,
    download: bool = False,
    attribute: str = "sex",
    attribute_as_input: bool = False,
    missing: str = "drop",
    val_fraction: float = 0.2,
) -> DataSplits:
    """Build UCI Adult's train/val/test splits, grouped by income x ``attribute``.

    Args:
        root: Folder that holds ``adult/adult.data`` and ``adult/adult.test``.
        seed: Seed of the stratified validation hold-out.
        download: Download the files from the UCI repository when they are missing (md5 checked).
        attribute: Spurious attribute: ``"sex"`` (default, groups Female/Male x income),
            ``"race"`` (5 values x income) or another categorical column.
        attribute_as_input: Keep the attribute's one-hot columns among the inputs (default: the
            attribute is not an input; other columns, e.g. ``relationship``, still correlate
            with it).
        missing: Rule for rows with ``?``: ``"drop"`` or ``"category"`` (see the module).
        val_fraction: Fraction of ``adult.data`` (after the ``?`` rule) held out for
            validation, stratified by group.

    Returns:
        Splits named ``"adult"``: ``x`` float32 ``(N, F)`` (6 standardized numeric columns, then
        the one-hot columns; F = 98 with the defaults), ``y`` 1 for ``>50K``, ``attr`` the sorted
        values of ``attribute``. The description states the ``?`` rule and the removed rows, the
        split sizes, whether the attribute is an input, and the group counts of every split.

    Raises:
        FileNotFoundError: The files are missing and ``download`` is False.
        ValueError: An option is invalid or a file is malformed (file, line and column named).
    """
    seed = check_int("seed", seed)
    attribute_as_input = check_flag("attribute_as_input", attribute_as_input)
    if attribute not in CATEGORICAL:
        raise ValueError(f"attribute must be one of Adult's categorical columns {CATEGORICAL}, got "
                         f"{attribute!r}")
    if missing not in MISSING_RULES:
        raise ValueError(f"missing must be one of {MISSING_RULES}, got {missing!r}")
    folder = find_adult(root, download=check_flag("download", download))
    data, removed_data = apply_missing_rule(read_adult_file(folder / "adult.data"), missing)
    test, removed_test = apply_missing_rule(read_adult_file(folder / "adult.test"), missing)
    groups = data[LABEL] + "," + data[attribute]
    train, val = stratified_holdout(data, groups, fraction=val_fraction, seed=seed, what="val")
    categorical = [c for c in CATEGORICAL if attribute_as_input or c != attribute]
    rule = ("rows with '?' removed (a missing value in workclass, occupation or native-country): "
            f"{removed_data:,} of adult.data, {removed_test:,} of adult.test" if missing == "drop"
            else "rows with '?' kept, '?' being one more category of its column (0 rows removed)")
    description = (
        f"UCI Adult (Becker and Kohavi 1996), label income >50K, groups income x {attribute}; "
        f"{rule}. Train {len(train):,} and val {len(val):,} rows of adult.data (val: a "
        f"{val_fraction:g} hold-out stratified by group, seed {seed}), test {len(test):,} rows of "
        f"adult.test. Inputs: {len(NUMERIC)} numeric columns standardized and "
        f"{len(categorical)} categorical columns one-hot encoded, both fitted on the training rows "
        f"only; the attribute {attribute!r} is "
        f"{'an input' if attribute_as_input else 'not an input'}.")
    return table_splits({"train": train, "val": val, "test": test}, label=LABEL,
                        attributes=(attribute,), numeric=NUMERIC, categorical=categorical,
                        name="adult", class_names=CLASS_NAMES, description=description)
