"""data=text_csv: a user's own texts from a CSV, single texts and pairs, with or without a split
column, and the config's tokenizer default."""

from __future__ import annotations

import pandas as pd
import pytest
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from support import compose_train
from text_fixtures import minilm_tokenizer
from robustml.models.pretrained import load_tokenizer
from robustml.text.text_csv import text_csv_splits

pytestmark = pytest.mark.filterwarnings("ignore:Warning. the val split has no examples")

ROWS = [("the food was great", "", "pos", "a", "train"), ("awful, \"truly\" awful", "x", "neg", "a", "train"),
        ("great\nplace", "y", "pos", "b", "train"), ("bad", "z", "neg", "b", "train"),
        ("fine", "", "pos", "a", "val"), ("poor", "", "neg", "b", "val"),
        ("nice", "", "pos", "b", "test"), ("", "", "neg", "a", "test")]


def write(path, rows=ROWS, drop=()):
    frame = pd.DataFrame(rows, columns=["review", "reply", "sentiment", "source", "split"]).drop(columns=list(drop))
    frame.to_csv(path, index=False)
    return path


def test_single_texts_groups_and_empty_text(tmp_path):
    csv = write(tmp_path / "reviews.csv")
    splits = text_csv_splits(csv, text="review", label="sentiment", attributes=["source"],
                             tokenizer=minilm_tokenizer(), max_length=10, cache_dir=None)
    assert splits.group_names == ["y=neg,source=a", "y=neg,source=b", "y=pos,source=a", "y=pos,source=b"]
    assert splits.train.group_counts().tolist() == [1, 1, 1, 1]
    assert splits.test.info["empty_texts"] == 1 and splits.test.x[1, 1].sum() == 2
    reference = load_tokenizer(minilm_tokenizer())("great\nplace", padding="max_length", max_length=10)
    assert splits.train.x[2, 0].tolist() == reference["input_ids"]
    dropped = text_csv_splits(csv, text="review", label="sentiment", attributes=["source"],
                              tokenizer=minilm_tokenizer(), max_length=10, cache_dir=None, empty_text="drop")
    assert len(dropped.test) == 1


def test_pairs_and_a_drawn_split(tmp_path):
    csv = write(tmp_path / "pairs.csv", ROWS * 4, drop=["split"])
    splits = text_csv_splits(csv, text="review", text_pair="reply", label="sentiment", attributes=["source"],
                             tokenizer=minilm_tokenizer(), max_length=12, cache_dir=None,
                             val_fraction=0.25, test_fraction=0.25)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (16, 8, 8)
    assert splits.train.info["text_columns"] == ("review", "reply")
    assert "split drawn per group" in splits.description


def test_missing_columns_are_named(tmp_path):
    csv = write(tmp_path / "reviews.csv")
    with pytest.raises(ValueError, match=r"\['comment'\] not found in .*valid columns"):
        text_csv_splits(csv, text="comment", label="sentiment", tokenizer="unused")


def test_the_config_builds_with_the_model_tokenizer_unless_overridden(tmp_path):
    csv = write(tmp_path / "reviews.csv")
    common = ["data=text_csv", f"data.csv={csv}", "data.text=review", "data.label=sentiment",
              "data.attributes=[source]", "data.max_length=10", "data.cache_dir=null"]
    cfg = compose_train(common)
    assert cfg.data.tokenizer == "bert-base-uncased"  # model=mlp has no name
    assert compose_train([*common, "model=hf", "model.name=some/folder"]).data.tokenizer == "some/folder"
    with pytest.raises(InstantiationException, match="tokenizer is null: name the tokenizer"):
        instantiate(compose_train([*common, "model=hf", "model.name=null"]).data)
    cfg = compose_train([*common, f"+model.name={minilm_tokenizer()}"])
    splits = instantiate(cfg.data)
    assert splits.train.info["tokenizer"] == minilm_tokenizer() and splits.input_shape == (3, 10)


def test_mostly_truncated_or_empty_texts_warn_naming_what_to_change(tmp_path):
    rows = [(f"{'word ' * 30}{i}", "", "pos" if i % 2 else "neg", "ab"[i % 2 == 0], "train") for i in range(6)]
    csv = write(tmp_path / "long.csv", rows + ROWS[4:])
    with pytest.warns(UserWarning, match=r"6 of 10 rows \(60%\) are longer than max_length=8 .*data.max_length"):
        text_csv_splits(csv, text="review", label="sentiment", attributes=["source"],
                        tokenizer=minilm_tokenizer(), max_length=8, cache_dir=None)
    with pytest.warns(UserWarning, match=r"5 of 8 rows \(62%\) have an empty text in column\(s\) \['reply'\]"):
        text_csv_splits(write(tmp_path / "reviews.csv"), text="reply", label="sentiment", attributes=["source"],
                        tokenizer=minilm_tokenizer(), max_length=8, cache_dir=None)


def test_a_lexicon_gives_each_split_its_counterfactual_inputs(tmp_path, caplog):
    rows = [("He said it was great", "", "pos", "a", "train"), ("she hated it", "", "neg", "b", "train"),
            ("the food was fine", "", "pos", "b", "train"), ("bad", "", "neg", "a", "train"),
            ("his view: fine", "", "pos", "a", "val"), ("poor", "", "neg", "b", "val"),
            ("nice", "", "pos", "b", "test"), ("her book, bad", "", "neg", "a", "test")]
    csv = write(tmp_path / "cf.csv", rows)
    options = dict(text="review", label="sentiment", attributes=["source"], tokenizer=minilm_tokenizer(),
                   max_length=10, cache_dir=str(tmp_path / "cache"), counterfactual_lexicon="gender")
    splits = text_csv_splits(csv, **options)
    tokenizer = load_tokenizer(minilm_tokenizer())
    swapped = tokenizer(["She said it was great", "he hated it", "the food was fine", "bad"],
                        padding="max_length", max_length=10)["input_ids"]
    assert splits.train.extras["x_cf"][:, 0].tolist() == swapped
    assert splits.train.extras["x_cf_changed"].tolist() == [True, True, False, False]
    # The attribute (the source, a or b) is not the lexicon's side (he in a, she in b, her in a):
    # decided over all splits, every split's counterfactuals keep their group.
    assert splits.test.counterfactual == {"rule": "precomputed", "key": "x_cf", "keeps_attr": True}
    assert all(s.info["counterfactual_keeps_attr"] for _, s in splits.items())
    assert "the swap leaves the attribute as it is" in splits.description
    assert splits.val.info["cf_texts_changed"] == 1 and "texts changed train 2, val 1, test 1" in splits.description
    caplog.set_level("INFO", logger="robustml.text.tokens")
    again = text_csv_splits(csv, **options)  # the counterfactual tokens come from the cache too
    assert caplog.text.count("text cache: reusing") == 4 and "tokenized" not in caplog.text
    assert again.train.extras["x_cf"].equal(splits.train.extras["x_cf"])
