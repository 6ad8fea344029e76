"""MultiNLI with annotated negations on files in the published layouts (MultiNLI 1.0 jsonl and
the Group DRO repository's metadata_random.csv)."""

from __future__ import annotations

import json
import shutil
import zipfile

import pandas as pd
import pytest

from text_fixtures import MNLI_LABELS, minilm_tokenizer, write_multinli
from robustml.models.pretrained import load_tokenizer
from robustml.text import multinli
from robustml.text.multinli import FILES, has_negation, multinli_splits


def build(root, **options):
    return multinli_splits(root, **{"tokenizer": minilm_tokenizer(), "max_length": 64, "cache_dir": None,
                                    **options})


@pytest.mark.parametrize("text, expected", [
    ("There is nobody here.", True), ("No, it's fine.", True), ("I never go there!", True),
    ("Nothing happened", True), ("nobody's home", False),  # "nobodys" after the punctuation goes
    ("Know it well.", False), ("not today", False), ("no.", True), ("NOBODY", True)])
def test_negation_rule_of_the_authors_script(text, expected):
    assert has_negation(text) is expected


def test_labels_groups_and_splits_equal_a_direct_computation(tmp_path):
    meta = write_multinli(tmp_path)
    frames = [pd.read_json(tmp_path / "multinli" / "multinli_1.0" / name, lines=True) for name in FILES]
    pairs = pd.concat(frames, ignore_index=True).loc[meta.index]
    assert (pairs["gold_label"] != "-").all()
    splits = build(tmp_path)
    assert splits.num_groups == 6 and splits.train.class_names == MNLI_LABELS
    for s_id, name in enumerate(("train", "val", "test")):
        rows = meta["split"] == s_id
        expected = pd.crosstab(meta["gold_label"][rows], meta["sentence2_has_negation"][rows]).reindex(
            index=[0, 1, 2], columns=[0, 1], fill_value=0)
        assert getattr(splits, name).group_counts().tolist() == expected.to_numpy().ravel().tolist()
    tokenizer = load_tokenizer(minilm_tokenizer())
    train = pairs[(meta["split"] == 0).to_numpy()]
    reference = tokenizer(train["sentence1"].tolist(), train["sentence2"].tolist(), padding="max_length",
                          truncation="longest_first", max_length=64)
    assert splits.train.x[:, 0].tolist() == reference["input_ids"]
    assert splits.train.x[:, 2].tolist() == reference["token_type_ids"]
    assert splits.train.info["text_columns"] == ("sentence1", "sentence2")
    assert "contradicts in 0 rows" in splits.description


def test_metadata_from_other_files_is_refused(tmp_path):
    meta = write_multinli(tmp_path)
    meta.loc[meta.index[0], "gold_label"] = (meta["gold_label"].iloc[0] + 1) % 3
    meta.to_csv(tmp_path / "multinli" / "metadata_random.csv")
    with pytest.raises(ValueError, match="1 row\\(s\\) have another gold_label"):
        build(tmp_path)
    meta.index = meta.index + 1000
    meta.to_csv(tmp_path / "multinli" / "metadata_random.csv")
    with pytest.raises(ValueError, match="indexes row\\(s\\) \\[1000"):
        build(tmp_path)


def test_missing_files_name_the_layout(tmp_path):
    write_multinli(tmp_path)
    (tmp_path / "multinli" / "multinli_1.0" / FILES[2]).unlink()
    with pytest.raises(FileNotFoundError, match=r"multinli_1.0_dev_mismatched.jsonl.*metadata_random.csv"):
        multinli_splits(tmp_path, tokenizer="unused")


def test_an_empty_hypothesis_is_kept_or_dropped(tmp_path):
    meta = write_multinli(tmp_path)
    path = tmp_path / "multinli" / "multinli_1.0" / FILES[0]
    records = [json.loads(line) for line in path.read_text().splitlines()]
    first = int(meta.index[0])
    records[first]["sentence2"] = ""
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    split = ("train", "val", "test")[int(meta["split"].iloc[0])]
    kept, dropped = build(tmp_path), build(tmp_path, empty_text="drop")
    assert getattr(kept, split).info["empty_texts"] == 1
    assert len(getattr(kept, split)) - len(getattr(dropped, split)) == 1


def test_download_fetches_multinli_and_the_metadata(tmp_path, monkeypatch):
    source = tmp_path / "source"
    write_multinli(source)
    archive = tmp_path / "multinli_1.0.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for name in FILES:
            handle.write(source / "multinli" / "multinli_1.0" / name, f"multinli_1.0/{name}")
    served = {multinli.MNLI_URL: archive, multinli.METADATA_URL: source / "multinli" / "metadata_random.csv"}
    monkeypatch.setattr(multinli.urllib.request, "urlretrieve", lambda url, dest: shutil.copy(served[url], dest))
    splits = build(tmp_path / "root", download=True)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 60


def test_a_split_id_outside_the_three_is_refused(tmp_path):
    meta = write_multinli(tmp_path)
    meta.loc[meta.index[2], "split"] = 3
    meta.to_csv(tmp_path / "multinli" / "metadata_random.csv")
    with pytest.raises(ValueError, match=r"split ids must be 0 \(train\), 1 \(val\) or 2 \(test\), got \[3\]"):
        build(tmp_path)
