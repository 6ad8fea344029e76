"""A user's own table: hand-written CSV/Parquet files, groups, splits, bad columns (the README example
runs in tests/test_readme.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from robustml.data.datasets.tabular_file import tabular_file_splits

# 24 rows: label x gender groups of 6 (approved no/yes x f/m), two with an empty region cell.
CSV = """income,debt,region,gender,approved,split
30,5,north,f,no,train
32,6,south,f,no,train
35,4,north,f,no,train
31,7,south,f,no,val
33,5,north,f,no,test
34,6,,f,no,test
60,2,north,f,yes,train
62,1,south,f,yes,train
65,2,north,f,yes,train
61,3,south,f,yes,val
63,2,north,f,yes,test
64,1,south,f,yes,test
40,9,north,m,no,train
42,8,south,m,no,train
45,9,north,m,no,train
41,8,south,m,no,val
43,7,north,m,no,test
44,9,south,m,no,test
70,1,north,m,yes,train
72,2,south,m,yes,train
75,1,,m,yes,train
71,3,south,m,yes,val
73,2,north,m,yes,test
74,1,south,m,yes,test
"""


@pytest.fixture
def table(tmp_path) -> Path:
    path = tmp_path / "loans.csv"
    path.write_text(CSV)
    return path


def test_split_column_groups_and_train_only_preprocessing(table):
    splits = tabular_file_splits(table, label="approved", attributes="gender", split_column="split",
                                 missing="drop")
    assert splits.group_names == ["y=no,gender=f", "y=no,gender=m", "y=yes,gender=f", "y=yes,gender=m"]
    assert splits.train.group_counts().tolist() == [3, 3, 3, 2]
    assert splits.val.group_counts().tolist() == [1, 1, 1, 1]
    assert splits.test.group_counts().tolist() == [1, 2, 2, 2]
    assert "2 removed for empty cells" in splits.description
    assert splits.feature_names == ["income", "debt", "region_north", "region_south"]
    train_income = np.array([30, 32, 35, 60, 62, 65, 40, 42, 45, 70, 72], dtype=np.float64)
    expected = (train_income - train_income.mean()) / train_income.std()
    np.testing.assert_allclose(splits.train.x[:, 0].numpy(), expected, rtol=1e-5)
    assert torch.equal(splits.val.y, torch.tensor([0, 1, 0, 1]))
    assert "are not inputs" in splits.description


def test_seeded_stratified_split_without_a_split_column(table):
    a = tabular_file_splits(table, label="approved", attributes=["gender"], missing="drop",
                            features=["income", "debt"], val_fraction=0.25, test_fraction=0.25, seed=1)
    b = tabular_file_splits(table, label="approved", attributes=["gender"], missing="drop",
                            features=["income", "debt"], val_fraction=0.25, test_fraction=0.25, seed=1)
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.val.x, b.val.x)
    assert len(a.train) + len(a.val) + len(a.test) == 24  # region unused: its empty cells do not count
    assert "0 removed" in a.description
    for split in (a.train, a.val, a.test):
        assert (split.group_counts() > 0).all()
    assert "stratified by group" in a.description


def test_several_attributes_and_attributes_as_inputs(table):
    splits = tabular_file_splits(table, label="approved", attributes=["gender", "region"],
                                 split_column="split", missing="drop", attribute_as_input=True)
    assert splits.num_groups == 2 * 4  # gender|region: f|north, f|south, m|north, m|south
    assert splits.group_names[0] == "y=no,gender|region=f|north"
    assert {"gender_f", "region_north"} <= set(splits.feature_names)


def test_declared_categorical_numbers_are_one_hot(table):
    splits = tabular_file_splits(table, label="approved", attributes="gender", split_column="split",
                                 missing="drop", categorical=["region", "debt"])
    assert "debt_1" in splits.feature_names and "income" in splits.feature_names


def test_parquet_is_read_like_csv(table, tmp_path):
    import pandas as pd

    pytest.importorskip("pyarrow", reason="pip install 'robustml[tabular]' for Parquet")
    parquet = tmp_path / "loans.parquet"
    pd.read_csv(table).to_parquet(parquet)
    a = tabular_file_splits(table, label="approved", attributes="gender", split_column="split",
                            missing="drop")
    b = tabular_file_splits(parquet, label="approved", attributes="gender", split_column="split",
                            missing="drop")
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.group, b.test.group)


@pytest.mark.parametrize("kwargs,match", [
    (dict(label="approval"), r"label: column\(s\) \['approval'\] not found in .*loans\.csv; valid "
                             r"columns: \['income', 'debt', 'region', 'gender', 'approved', 'split'\]"),
    (dict(attributes="sex"), r"attributes: column\(s\) \['sex'\] not found in .*loans\.csv"),
    (dict(split_column="fold"), r"split_column: column\(s\) \['fold'\] not found"),
    (dict(features=["income", "age"]), r"features: column\(s\) \['age'\] not found"),
    (dict(missing="error"), r"loans\.csv, column 'region': 2 empty value\(s\), first at data row\(s\) \[5, 20\]"),
    (dict(categorical=["debt"]), r"loans\.csv, column 'region': not numeric .* not declared categorical"),
    (dict(features=["income", "gender"]), "must not hold the label, attribute or split"),
])
def test_bad_columns_name_the_file_and_the_column(table, kwargs, match):
    args = dict(label="approved", attributes="gender", split_column="split", missing="drop")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        tabular_file_splits(table, **args)


def test_bad_split_values_and_missing_files(table, tmp_path):
    table.write_text(CSV.replace(",val\n", ",valid\n", 1))
    with pytest.raises(ValueError, match=r"column 'split': values must be train, val or test, got \['valid'\]"):
        tabular_file_splits(table, label="approved", attributes="gender", split_column="split",
                            missing="drop")
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        tabular_file_splits(tmp_path / "nowhere.csv", label="approved", attributes="gender")
    with pytest.raises(ValueError, match="must end with one of"):
        tabular_file_splits(tmp_path / "loans.xlsx", label="approved", attributes="gender")


@pytest.mark.parametrize("text, match", [
    ("", r"loans.csv is empty: expected a header row naming the columns, then one row per example"),
    ("income,gender,approved\n", r"loans.csv has no rows: its header names the columns \['income', 'gender', "
                                  r"'approved'\], and one row per example must follow it"),
])
def test_an_empty_or_header_only_file_names_its_path(table, text, match):
    table.write_text(text)
    with pytest.raises(ValueError, match=match):
        tabular_file_splits(table, label="approved", attributes="gender")


def test_a_config_without_data_attributes_says_what_to_type(table):
    from robustml.pipeline.instantiate import build_from
    from support import compose_train
    cfg = compose_train(["data=tabular_file", f"data.path={table}", "data.label=approved"])
    with pytest.raises(ValueError, match=r"^data\.attributes must name .* pass data\.attributes=\[<column>\] with "
                                         r"columns from \['income', 'debt', 'region', 'gender', 'split'\]$"):
        build_from(cfg, "data")


def test_empty_group_in_a_split_is_warned(table):
    table.write_text(CSV.replace("71,3,south,m,yes,val", "71,3,south,m,yes,train"))
    splits = tabular_file_splits(table, label="approved", attributes="gender", split_column="split",
                                 missing="drop")
    assert "Warning: the val split has no examples in group(s) y=yes,gender=m" in splits.description


def test_too_small_groups_for_a_stratified_split_are_explained(tmp_path):
    path = tmp_path / "few.csv"
    path.write_text("x,a,y\n1,0,0\n2,1,0\n3,0,1\n4,1,1\n5,0,0\n")
    with pytest.raises(ValueError, match="stratified by group .* group counts"):
        tabular_file_splits(path, label="y", attributes="a")


def test_numeric_labels_and_attributes_are_ordered_as_numbers(tmp_path):
    path = tmp_path / "numbers.csv"
    rows = [f"{i},{a},{y},{s}" for i, (a, y, s) in enumerate(
        [(a, y, s) for s in ("train", "train", "val", "test") for a in (2, 10) for y in (0, 1)])]
    path.write_text("x,age_band,y,split\n" + "\n".join(rows) + "\n")
    splits = tabular_file_splits(path, label="y", attributes="age_band", split_column="split")
    assert splits.group_names == ["y=0,age_band=2", "y=0,age_band=10", "y=1,age_band=2",
                                  "y=1,age_band=10"]
    assert splits.train.group_counts().tolist() == [2, 2, 2, 2]


@pytest.mark.parametrize("kwargs,match", [
    (dict(val_fraction=0.0), "val_fraction must be a float in"),
    (dict(test_fraction="0.2"), "test_fraction must be a float in"),
    (dict(val_fraction=0.5, test_fraction=0.5), "must be < 1 to leave training rows"),
    (dict(missing="impute"), "missing must be one of"),
    (dict(attributes=[]), r"attributes must name the spurious-attribute column\(s\) of .*loans.csv \(the groups "
                          r"are approved x attribute values\), got none; pass attributes=\[<column>\] with "
                          r"columns from \['income', 'debt', 'region', 'gender', 'split'\]"),
    (dict(attributes=None), r"got none; pass attributes=\[<column>\]"),
])
def test_bad_options_are_named(table, kwargs, match):
    args = dict(label="approved", attributes="gender", missing="drop")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        tabular_file_splits(table, **args)


@pytest.mark.parametrize("kwargs,match", [
    (dict(attributes=3), "attributes must be a column name or a list of names, got int 3"),
    (dict(features=["income", 2]), "features must hold column names"),
    (dict(label=["approved"]), "label must be a column name"),
])
def test_column_arguments_of_the_wrong_type_are_named(table, kwargs, match):
    args = dict(label="approved", attributes="gender", missing="drop")
    args.update(kwargs)
    with pytest.raises(TypeError, match=match):
        tabular_file_splits(table, **args)
