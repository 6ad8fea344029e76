"""CivilComments-WILDS on a file in WILDS' layout: labels, both group definitions, the official
splits, empty comments, NaN identity scores and the errors."""

from __future__ import annotations

import hashlib
import shutil
import tarfile

import numpy as np
import pandas as pd
import pytest

from text_fixtures import WILDS_EIGHT, civilcomments_frame, minilm_tokenizer, write_civilcomments
from robustml.metrics import OVERLAP_EXTRA, OVERLAP_NAMES
from robustml.models.pretrained import load_tokenizer
from robustml.text import civilcomments
from robustml.text.civilcomments import civilcomments_splits

SPLITS = ("train", "val", "test")


def build(root, **options):
    options = {"tokenizer": minilm_tokenizer(), "max_length": 64, "cache_dir": None, **options}
    return civilcomments_splits(root, **options)


def position(split: str, row: int) -> int:
    """Return where row ``row`` of the fixture file lands in ``split`` (rows cycle train, val, test)."""
    frame = civilcomments_frame()
    return list(frame.index[frame["split"] == split]).index(row)


def direct(path):
    """The expected labels, coarse attribute and identity mentions, straight from pandas."""
    frame = pd.read_csv(path, index_col=0)
    y = (frame["toxicity"] >= 0.5).astype(int)
    mentions = pd.DataFrame({name: frame[name].fillna(0) >= 0.5 for name in WILDS_EIGHT})
    return frame, y, mentions


def test_groups_and_splits_equal_a_direct_pandas_computation(tmp_path):
    path = write_civilcomments(tmp_path)
    frame, y, mentions = direct(path)
    splits = build(tmp_path)
    coarse = mentions.any(axis=1).astype(int)
    for s_id, name in enumerate(SPLITS):
        rows = (frame["split"] == name).to_numpy()
        split = getattr(splits, name)
        expected = pd.crosstab(y[rows], coarse[rows]).reindex(index=[0, 1], columns=[0, 1], fill_value=0)
        assert split.group_counts().tolist() == expected.to_numpy().ravel().tolist()
        assert split.y.tolist() == y[rows].tolist()
        assert np.array_equal(split.extras[OVERLAP_EXTRA].numpy(), mentions[rows].to_numpy())
        assert split.info[OVERLAP_NAMES] == WILDS_EIGHT
    assert splits.group_names == ["y=non_toxic,identity=none", "y=non_toxic,identity=any",
                                  "y=toxic,identity=none", "y=toxic,identity=any"]
    assert splits.train.x.shape[1:] == (3, 64)


def test_jtts_attribute_is_the_files_identity_any_column(tmp_path):
    """attribute=identity_any reads the file's column (WILDS' over all 24 identities, JTT's), which
    differs from any of the eight where only another identity is mentioned."""
    path = write_civilcomments(tmp_path)
    frame, y, mentions = direct(path)
    splits = build(tmp_path, attribute="identity_any")
    coarse8 = mentions.any(axis=1).astype(int)
    file_any = (frame["identity_any"] >= 0.5).astype(int)
    assert (file_any != coarse8).any()   # the fixture has comments that mention only other identities
    for name in SPLITS:
        rows = (frame["split"] == name).to_numpy()
        assert getattr(splits, name).attr.tolist() == file_any[rows].tolist()
    assert "identity_any column" in splits.description


@pytest.mark.filterwarnings("ignore:Warning. the train split has no examples")
def test_one_identity_as_the_training_attribute(tmp_path):
    path = write_civilcomments(tmp_path)
    frame, y, mentions = direct(path)
    splits = build(tmp_path, attribute="muslim")
    rows = (frame["split"] == "test").to_numpy()
    expected = pd.crosstab(y[rows], mentions["muslim"][rows].astype(int)).reindex(
        index=[0, 1], columns=[0, 1], fill_value=0)
    assert splits.test.group_counts().tolist() == expected.to_numpy().ravel().tolist()
    assert splits.group_names[3] == "y=toxic,muslim=yes"


def test_nan_identity_scores_count_as_not_mentioned_and_are_reported(tmp_path):
    write_civilcomments(tmp_path)
    splits = build(tmp_path)
    assert "4 comments have no identity annotation" in splits.description
    row = position("train", 3)  # row 3 of the file has no identity annotation
    assert not splits.train.extras[OVERLAP_EXTRA][row].any() and splits.train.attr[row] == 0


def test_empty_comments_kept_or_dropped_and_counted_and_quirky_text_read_whole(tmp_path):
    write_civilcomments(tmp_path)
    kept = build(tmp_path)
    dropped = build(tmp_path, empty_text="drop")
    # Row 5 (NaN, test) and row 10 (blank, val) are empty; "NA" (row 9) is a text.
    assert (kept.val.info["empty_texts"], kept.test.info["empty_texts"]) == (1, 1)
    assert (len(kept.val) - len(dropped.val), len(kept.test) - len(dropped.test)) == (1, 1)
    assert dropped.val.info["empty_texts"] == 1 and "empty dropped" in dropped.description
    assert "1 empty kept as ''" in kept.description
    tokenizer = load_tokenizer(minilm_tokenizer())
    assert kept.test.x[position("test", 5)][1].sum() == 2  # the empty comment: [CLS] [SEP] only
    newline = tokenizer("First line,\nsecond line\n\nthird", padding="max_length", max_length=64)
    assert kept.test.x[position("test", 8)][0].tolist() == newline["input_ids"]
    quoted = tokenizer('He said "no, never", then left.', padding="max_length", max_length=64)
    assert kept.train.x[position("train", 6)][0].tolist() == quoted["input_ids"]
    na = tokenizer("NA", padding="max_length", max_length=64)["input_ids"]
    assert kept.train.x[position("train", 9)][0].tolist() == na


def test_truncated_comments_are_counted(tmp_path):
    write_civilcomments(tmp_path)
    tokenizer = load_tokenizer(minilm_tokenizer())
    frame = civilcomments_frame()
    with pytest.warns(UserWarning, match=r"of 60 rows \(\d+%\) are longer than max_length=12"):
        splits = build(tmp_path, max_length=12)
    for name in SPLITS:
        texts = frame["comment_text"][frame["split"] == name].fillna("").tolist()
        expected = sum(len(ids) > 12 for ids in tokenizer(texts)["input_ids"])
        assert getattr(splits, name).info["truncated"] == expected > 0


def test_missing_file_names_the_layout_and_missing_columns_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"civilcomments_v1.0/all_data_with_identities.csv.*comment_text"):
        civilcomments_splits(tmp_path, tokenizer="unused")
    write_civilcomments(tmp_path, civilcomments_frame().drop(columns=["LGBTQ", "toxicity"]))
    with pytest.raises(ValueError, match=r"\['toxicity', 'LGBTQ'\] not found"):
        civilcomments_splits(tmp_path, tokenizer="unused")


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(ValueError, match="attribute must be 'any_identity'.*'identity_any'.*got 'jewish'"):
        civilcomments_splits(tmp_path, attribute="jewish")
    with pytest.raises(ValueError, match="md5 must be None or 32 hexadecimal digits"):
        civilcomments_splits(tmp_path, md5="abc")
    write_civilcomments(tmp_path)
    with pytest.raises(ValueError, match=r"empty_text must be one of \['keep', 'drop'\].*got 'skip'"):
        civilcomments_splits(tmp_path, tokenizer=minilm_tokenizer(), empty_text="skip")


def fake_archive(tmp_path):
    """Return a .tar.gz with the CSV at its top, as WILDS' archive unpacks into civilcomments_v1.0/."""
    csv = write_civilcomments(tmp_path / "source")
    archive = tmp_path / "archive.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(csv, arcname=csv.name)
    return archive


def test_download_checks_the_published_size_and_an_md5_then_unpacks(tmp_path, monkeypatch):
    archive = fake_archive(tmp_path)
    fetched = []
    monkeypatch.setattr(civilcomments.urllib.request, "urlretrieve",
                        lambda url, dest: (fetched.append(url), shutil.copy(archive, dest)))
    root = tmp_path / "root"
    with pytest.raises(ValueError, match=f"has {archive.stat().st_size:,} bytes, expected 90,644,480"):
        build(root, download=True)
    (root / "civilcomments_v1.0" / "archive.tar.gz").unlink()
    monkeypatch.setattr(civilcomments, "ARCHIVE_SIZE", archive.stat().st_size)
    with pytest.raises(ValueError, match="has MD5 .* expected md5=0{32}"):
        build(root, download=True, md5="0" * 32)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    splits = build(root, download=True, md5=md5)
    assert fetched == [civilcomments.URL] * 2 and len(splits.train) == 20


def test_a_score_that_is_not_a_number_is_named(tmp_path):
    frame = civilcomments_frame()
    frame["male"] = frame["male"].astype(object)
    frame.loc[4, "male"] = "high"
    write_civilcomments(tmp_path, frame)
    with pytest.raises(ValueError, match="column 'male': expected scores in \\[0, 1\\], got 'high' at data row 4"):
        civilcomments_splits(tmp_path, tokenizer="unused")
