"""Tokenization into the text input format, truncation counts and the token cache."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from text_fixtures import minilm_tokenizer
from robustml.models.pretrained import PretrainedUnavailable, load_tokenizer
from robustml.text.tokens import cached_tokens, tokenize

TEXTS = ["Hello world, again and again and again.", "hi", "", "A much longer sentence that will surely "
         "be cut at eight tokens by the tokenizer."]
PAIRS = ["a b", "x y z w v u t s r q", "", "short"]


def tiny_wordpiece(folder, words=("hello", "world", "hi", "a", "b")):
    """Save a BERT-style WordPiece tokenizer with a tiny vocabulary in ``folder`` (no download)."""
    transformers = pytest.importorskip("transformers", reason="the text extra (transformers) is not installed")
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]").save_pretrained(str(folder))
    return str(folder)


@pytest.mark.parametrize("pairs", [None, PAIRS])
def test_tokens_equal_the_tokenizer_call_and_truncation_is_counted(pairs):
    tokenizer = load_tokenizer(minilm_tokenizer())
    x, truncated = tokenize(tokenizer, TEXTS, pairs, max_length=8)
    reference = tokenizer(TEXTS, pairs, padding="max_length", truncation="longest_first", max_length=8)
    assert x.dtype == torch.int64 and x.shape == (4, 3, 8)
    assert x[:, 0].tolist() == reference["input_ids"]
    assert x[:, 1].tolist() == reference["attention_mask"]
    assert x[:, 2].tolist() == reference["token_type_ids"]
    full = tokenizer(TEXTS, pairs)["input_ids"]  # without truncation: which rows were too long
    assert truncated.tolist() == [len(ids) > 8 for ids in full]
    assert truncated.sum() >= 1 and not truncated.all()


def test_second_build_is_a_cache_hit_and_max_length_or_tokenizer_changes_miss(tmp_path, caplog):
    name = minilm_tokenizer()
    caplog.set_level(logging.INFO, logger="robustml.text.tokens")
    first = cached_tokens(name, TEXTS, max_length=8, cache_dir=tmp_path, name="t")
    again = cached_tokens(name, TEXTS, max_length=8, cache_dir=tmp_path, name="t")
    assert not first.reused and again.reused and again.cache == first.cache
    assert torch.equal(first.x, again.x) and np.array_equal(first.truncated, again.truncated)
    assert again.x.dtype == torch.int64
    assert "text cache: reusing" in caplog.text
    longer = cached_tokens(name, TEXTS, max_length=12, cache_dir=tmp_path, name="t")
    other = cached_tokens(tiny_wordpiece(tmp_path / "tiny"), TEXTS, max_length=8, cache_dir=tmp_path, name="t")
    changed = cached_tokens(name, [*TEXTS[:3], "other text"], max_length=8, cache_dir=tmp_path, name="t")
    assert not longer.reused and not other.reused and not changed.reused
    assert len({first.cache, longer.cache, other.cache, changed.cache}) == 4
    assert other.info["vocab_size"] == 10 and first.info["vocab_size"] == 30522


def test_two_tokenizer_folders_with_other_vocabularies_never_share_an_entry(tmp_path):
    one = tiny_wordpiece(tmp_path / "one")
    two = tiny_wordpiece(tmp_path / "two", words=("hello", "world", "hi", "b", "a"))
    a = cached_tokens(one, ["hello a"], max_length=6, cache_dir=tmp_path / "cache")
    b = cached_tokens(two, ["hello a"], max_length=6, cache_dir=tmp_path / "cache")
    assert a.cache != b.cache and not b.reused
    assert a.x[0, 0].tolist() != b.x[0, 0].tolist()


def test_a_hub_name_offline_and_a_missing_folder_fail_with_the_resolvers_error(tmp_path, monkeypatch):
    pytest.importorskip("transformers", reason="the text extra (transformers) is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedUnavailable, match=r"tokenizer='no-such-org/no-such-model-7'.*--local-dir"):
        cached_tokens("no-such-org/no-such-model-7", ["a"], max_length=8, cache_dir=None)
    with pytest.raises(PretrainedUnavailable, match="is not a folder"):
        cached_tokens(str(tmp_path / "absent" / "tokenizer"), ["a"], max_length=8, cache_dir=None)


def test_max_length_too_small_is_refused_naming_it():
    tokenizer = load_tokenizer(minilm_tokenizer())
    with pytest.raises(ValueError, match="max_length must be an integer >= 3"):
        tokenize(tokenizer, ["a"], ["b"], max_length=2)
