"""UCI Adult: the file format, the '?' rule, groups, the stratified hold-out, train-only preprocessing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from robustml.data.datasets.adult import MD5, adult_splits
from support import SHARED_DATA
from tabular_fixtures import write_adult


@pytest.fixture
def adult_root(tmp_path) -> Path:
    return write_adult(tmp_path)


def test_files_are_read_with_the_missing_rule_counted(adult_root):
    splits = adult_splits(adult_root, val_fraction=0.25)
    assert len(splits.train) + len(splits.val) == 40 - 3
    assert len(splits.test) == 16 - 2  # two male test rows have '?'
    assert "3 of adult.data, 2 of adult.test" in splits.description
    assert splits.group_names == ["y=<=50K,sex=Female", "y=<=50K,sex=Male",
                                  "y=>50K,sex=Female", "y=>50K,sex=Male"]
    together = splits.train.group_counts() + splits.val.group_counts()
    assert together.tolist() == [10, 9, 8, 10]
    assert splits.test.group_counts().tolist() == [4, 3, 4, 3]  # trailing '.' stripped from labels
    assert splits.train.x.dtype == torch.float32 and splits.train.x.ndim == 2
    assert "'sex' is not an input" in splits.description


def test_category_rule_keeps_the_rows_and_encodes_question_mark(adult_root):
    splits = adult_splits(adult_root, missing="category", val_fraction=0.25)
    assert len(splits.train) + len(splits.val) == 40 and len(splits.test) == 16
    assert "workclass_?" in splits.feature_names
    assert "0 rows removed" in splits.description


def test_validation_is_a_seeded_hold_out_stratified_by_group(adult_root):
    a = adult_splits(adult_root, val_fraction=0.25, seed=3)
    b = adult_splits(adult_root, val_fraction=0.25, seed=3)
    c = adult_splits(adult_root, val_fraction=0.25, seed=4)
    assert torch.equal(a.val.x, b.val.x)
    assert not torch.equal(a.val.x, c.val.x)
    # each group's share of val is its share of adult.data (counts 10, 9, 8, 10 at 25%)
    expected = 0.25 * torch.tensor([10, 9, 8, 10])
    assert ((a.val.group_counts() - expected).abs() < 1).all()
    assert len(a.val) == 10  # ceil(0.25 * 37), sklearn's rounding of the held-out size


def test_preprocessing_is_fitted_on_training_rows_only(tmp_path):
    base = adult_splits(write_adult(tmp_path / "a"), val_fraction=0.25)
    test_file = write_adult(tmp_path / "b", test_age_offset=1000) / "adult" / "adult.test"
    test_file.write_text(test_file.read_text().replace("United-States", "Atlantis"))
    shifted = adult_splits(tmp_path / "b", val_fraction=0.25)
    for name in ("mean_", "scale_"):
        np.testing.assert_array_equal(getattr(base.preprocessor.named_transformers_["numeric"], name),
                                      getattr(shifted.preprocessor.named_transformers_["numeric"], name))
    for a, b in zip(base.preprocessor.named_transformers_["categorical"].categories_,
                    shifted.preprocessor.named_transformers_["categorical"].categories_):
        np.testing.assert_array_equal(a, b)
    assert base.feature_names == shifted.feature_names and "native-country_Atlantis" not in base.feature_names
    country = base.feature_names.index("native-country_United-States")
    assert (shifted.test.x[:, country] == 0).all()  # a value unseen in training encodes as zeros
    assert torch.equal(base.train.x, shifted.train.x) and torch.equal(base.val.x, shifted.val.x)
    assert not torch.equal(base.test.x, shifted.test.x)
    # standardized with the training rows' statistics: train numeric columns have mean 0, std 1
    numeric = base.train.x[:, :6].double()
    torch.testing.assert_close(numeric.mean(0), torch.zeros(6, dtype=torch.float64), atol=1e-6, rtol=0)
    age = base.train.x[:, 0].double()
    assert float(age.std(unbiased=False)) == pytest.approx(1.0, abs=1e-6)
    one_hot = base.train.x[:, 6:]
    assert set(one_hot.unique().tolist()) <= {0.0, 1.0}


def test_attribute_choice_and_whether_it_is_an_input(adult_root):
    race = adult_splits(adult_root, attribute="race", val_fraction=0.25)
    assert race.group_names == ["y=<=50K,race=Black", "y=<=50K,race=White",
                                "y=>50K,race=Black", "y=>50K,race=White"]
    assert not any(f.startswith("race_") for f in race.feature_names)
    assert any(f.startswith("sex_") for f in race.feature_names)
    with_sex = adult_splits(adult_root, attribute_as_input=True, val_fraction=0.25)
    assert {"sex_Female", "sex_Male"} <= set(with_sex.feature_names)
    assert "'sex' is an input" in with_sex.description


def test_missing_files_name_the_layout_and_the_settings(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        adult_splits(tmp_path)
    message = str(error.value)
    for text in ("adult.data", "adult.test", str(tmp_path / "adult"), "Pass root=<dir>", "ROBUSTML_DATA",
                 MD5["adult.data"], "pass download=True"):
        assert text in message


@pytest.mark.parametrize("edit,match", [
    (lambda t: t.replace("Bachelors, 13, ", "Bachelors, ", 1), r"adult\.data, line 1: expected 15"),
    (lambda t: t.replace("<=50K", "<=50k", 1), r"adult\.data, line 1, column 'income'"),
    (lambda t: t.replace("20, ", "twenty, ", 1), r"adult\.data, line 1, column 'age'"),
])
def test_malformed_lines_name_the_file_line_and_column(adult_root, edit, match):
    path = adult_root / "adult" / "adult.data"
    path.write_text(edit(path.read_text()))
    with pytest.raises(ValueError, match=match):
        adult_splits(adult_root)


@pytest.mark.parametrize("kwargs,match", [
    (dict(attribute="age"), "categorical columns"),
    (dict(missing="impute"), "missing must be one of"),
    (dict(val_fraction=1.5), "fraction must be a float in"),
])
def test_bad_options_are_named(adult_root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        adult_splits(adult_root, **kwargs)


needs_adult = pytest.mark.skipif(not (SHARED_DATA / "adult" / "adult.data").is_file(),
                                 reason=f"UCI Adult not found under {SHARED_DATA}/adult")


@needs_adult
def test_shared_files_match_the_checksums():
    for name, md5 in MD5.items():
        assert hashlib.md5((SHARED_DATA / "adult" / name).read_bytes()).hexdigest() == md5, name


@needs_adult
def test_real_adult_counts():
    dropped = adult_splits(SHARED_DATA)
    assert "2,399 of adult.data, 1,221 of adult.test" in dropped.description
    assert len(dropped.train) + len(dropped.val) == 32_561 - 2_399
    assert len(dropped.test) == 16_281 - 1_221
    kept = adult_splits(SHARED_DATA, missing="category")
    counts = (kept.train.group_counts() + kept.val.group_counts()).tolist()
    assert counts == [9_592, 15_128, 1_179, 6_662]  # female/male x <=50K/>50K, the data README's
    assert kept.test.group_counts().sum() == 16_281


def test_download_fetches_the_uci_files_with_their_checksums(tmp_path, monkeypatch):
    from robustml._torchvision import import_torchvision

    calls = []
    fixture = write_adult(tmp_path / "fixture") / "adult"

    def fake_download_url(url, root, filename, md5):
        calls.append((url, filename, md5))
        Path(root).mkdir(parents=True, exist_ok=True)
        source = fixture / filename
        (Path(root) / filename).write_text(source.read_text() if source.is_file() else "names\n")

    monkeypatch.setattr(import_torchvision().datasets.utils, "download_url", fake_download_url)
    splits = adult_splits(tmp_path / "root", download=True, val_fraction=0.25)
    assert sorted(calls) == sorted(
        (f"https://archive.ics.uci.edu/ml/machine-learning-databases/adult/{name}", name, md5)
        for name, md5 in MD5.items())
    assert len(splits.test) == 14
