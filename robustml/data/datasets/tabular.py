"""Tables as grouped datasets: groups are label x attribute values, preprocessing fits on train only.

The shared core of the tabular datasets (:mod:`~robustml.data.datasets.adult`,
:mod:`~robustml.data.datasets.tabular_file`): a :class:`pandas.DataFrame` per split goes in,
:class:`~robustml.data.contract.DataSplits` of in-memory
:class:`~robustml.data.contract.GroupedTensorDataset` come out, with ``x`` float32 of shape
``(N, F)``: numeric columns standardized and categorical columns one-hot encoded by a
scikit-learn :class:`~sklearn.compose.ColumnTransformer` fitted on the training rows alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from robustml.data.checks import empty_group_note, format_counts
from robustml.data.contract import DataSplits, GroupedTensorDataset

SPLITS = ("train", "val", "test")
JOIN = "|"  # joins the values of several attribute columns into one attribute name


def sorted_values(values: pd.Series) -> list:
    """Return the distinct values of ``values`` in order (numeric order for numbers, else text)."""
    unique = pd.unique(values)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return sorted(unique.tolist())
    return sorted(unique.tolist(), key=str)


def attribute_values(frame: pd.DataFrame, attributes: Sequence[str]) -> pd.Series:
    """Return one attribute value per row: the attribute's value, or the values joined by ``|``."""
    if len(attributes) == 1:
        return frame[attributes[0]].astype(str)
    return frame[list(attributes)].astype(str).agg(JOIN.join, axis=1)


def stratified_holdout(frame: pd.DataFrame, strata: pd.Series, *, fraction: float, seed: int,
                       what: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``frame`` into ``(kept, held_out)`` with ``fraction`` of every stratum held out.

    A seeded :func:`sklearn.model_selection.train_test_split` with ``stratify=strata``.

    Args:
        frame: Rows to split.
        strata: One stratum label per row (the group names), aligned with ``frame``.
        fraction: Fraction of the rows held out, in (0, 1).
        seed: ``random_state`` of the split.
        what: Name of the held-out split, for errors (e.g. ``"val"``).

    Raises:
        ValueError: ``fraction`` is outside (0, 1), or a stratum is too small to be split.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"the {what} fraction must be a float in (0, 1), got {fraction!r}")
    try:
        kept, held = train_test_split(frame, test_size=fraction, random_state=seed,
                                      stratify=strata.to_numpy())
    except ValueError as error:
        counts = strata.value_counts().to_dict()
        raise ValueError(f"cannot hold out a {what} split of fraction {fraction} stratified by "
                         f"group from {len(frame)} rows with group counts {counts}: {error}. Give "
                         f"a split column, or more rows per group.") from error
    return kept.sort_index(), held.sort_index()


def fit_preprocessor(train: pd.DataFrame, *, numeric: Sequence[str],
                     categorical: Sequence[str]) -> ColumnTransformer:
    """Fit the feature encoder on the training rows only.

    Numeric columns are standardized (:class:`~sklearn.preprocessing.StandardScaler`: training
    mean and standard deviation); categorical columns are one-hot encoded
    (:class:`~sklearn.preprocessing.OneHotEncoder`: one column per value seen in training, a value
    never seen in training encodes as all zeros). Categorical values are compared as text.

    Returns:
        The fitted transformer; ``transform(frame)`` gives a float array ``(N, F)``.
    """
    if not numeric and not categorical:
        raise ValueError("the table has no feature columns left after removing the label, the "
                         "attribute and the split columns")
    encoder = ColumnTransformer(
        [("numeric", StandardScaler(), list(numeric)),
         ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False,
                                       dtype=np.float32), list(categorical))],
        sparse_threshold=0.0, verbose_feature_names_out=False)
    return encoder.fit(_as_feature_frame(train, categorical))


def _as_feature_frame(frame: pd.DataFrame, categorical: Sequence[str]) -> pd.DataFrame:
    out = frame.copy()
    for name in categorical:
        out[name] = out[name].astype(str)
    return out


def table_splits(frames: Mapping[str, pd.DataFrame], *, label: str, attributes: Sequence[str],
                 numeric: Sequence[str], categorical: Sequence[str], name: str,
                 class_names: Sequence[str] | None = None,
                 description: str = "") -> DataSplits:
    """Encode one frame per split as grouped in-memory splits (preprocessing fitted on train only).

    ``y`` indexes the sorted label values (or ``class_names`` when given), ``attr`` the sorted
    attribute values seen in any split (several attribute columns combine into one attribute whose
    values are joined by ``|``), and ``group = y * num_attrs + attr``.

    Args:
        frames: ``{"train": ..., "val": ..., "test": ...}`` data frames with the same columns.
        label: Label column.
        attributes: Spurious-attribute column(s) that define the groups with the label.
        numeric: Feature columns standardized with training statistics.
        categorical: Feature columns one-hot encoded with the training values.
        name: Dataset name for reports.
        class_names: Label values in class-id order; default the sorted values of all splits.
        description: Text that opens the splits' description; the group counts of every split and
            the empty-group warnings follow it.

    Returns:
        :class:`~robustml.data.contract.DataSplits` whose splits hold ``x`` float32 ``(N, F)``,
        ``y`` and ``attr`` int64 ``(N,)``; the fitted transformer is ``splits.preprocessor`` and
        the encoded feature names ``splits.feature_names``.
    """
    every = pd.concat([frames[s] for s in SPLITS], ignore_index=True)
    classes = list(class_names) if class_names is not None else sorted_values(every[label])
    unknown = set(every[label].astype(str)) - {str(c) for c in classes}
    if unknown:
        raise ValueError(f"label column {label!r} holds values {sorted(unknown)} outside the classes "
                         f"{[str(c) for c in classes]}")
    attr_names = [str(v) for v in sorted_values(
        every[attributes[0]] if len(attributes) == 1 else attribute_values(every, attributes))]
    preprocessor = fit_preprocessor(frames["train"], numeric=numeric, categorical=categorical)
    class_ids = {str(c): i for i, c in enumerate(classes)}
    attr_ids = {a: i for i, a in enumerate(attr_names)}
    datasets = {}
    for split in SPLITS:
        frame = frames[split]
        x = preprocessor.transform(_as_feature_frame(frame, categorical)).astype(np.float32)
        y = frame[label].astype(str).map(class_ids).to_numpy(dtype=np.int64, copy=True)
        attr = attribute_values(frame, attributes).map(attr_ids).to_numpy(dtype=np.int64, copy=True)
        datasets[split] = GroupedTensorDataset(
            torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y), torch.from_numpy(attr),
            num_classes=len(classes), attr_names=attr_names, attr_key="|".join(attributes),
            class_names=[str(c) for c in classes], name=name)
    counts = " ".join(f"{s.capitalize()} group counts: {format_counts(d)}." for s, d in datasets.items())
    text = " ".join(part for part in (description, counts, empty_group_note(datasets)) if part)
    splits = DataSplits(datasets["train"], datasets["val"], datasets["test"], description=text)
    splits.preprocessor = preprocessor
    splits.feature_names = [str(f) for f in preprocessor.get_feature_names_out()]
    return splits
