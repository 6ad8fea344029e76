"""build_from: errors of a config's target surface named by key, chained to the original."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from robustml.pipeline.instantiate import build_from


def test_a_json_decode_error_surfaces_as_value_error_chained_to_the_original():
    cfg = OmegaConf.create({"data": {"_target_": "json.loads", "s": "{not json"}})
    with pytest.raises(ValueError, match=r"^data: Expecting property name") as raised:
        build_from(cfg, "data")
    # The original keeps its own type and attributes; it is not re-created from its type (a
    # JSONDecodeError needs (msg, doc, pos): re-creating it raised a TypeError).
    assert isinstance(raised.value.__cause__, json.JSONDecodeError)
    assert raised.value.__cause__.pos == 1
    assert type(raised.value) is ValueError


@pytest.mark.parametrize("node,kind", [
    ({"_target_": "builtins.open", "file": "/no/such/file"}, FileNotFoundError),
    ({"_target_": "builtins.int", "_args_": ["x"]}, ValueError),
])
def test_each_surfaced_kind_keeps_its_builtin_type_and_its_cause(node, kind):
    cfg = OmegaConf.create({"part": node})
    with pytest.raises(kind, match=r"^part: ") as raised:
        build_from(cfg, "part")
    assert isinstance(raised.value.__cause__, kind)


def test_engine_errors_are_translated_to_config_keys_only_where_they_name_a_setting():
    from robustml.pipeline.instantiate import config_keys, with_config_keys
    assert with_config_keys("above max_loss=1e+06; lower the learning rate (lr=0.1 now)") == \
        "above trainer.max_loss=1e+06; lower the learning rate (optimizer.lr=0.1 now)"
    assert with_config_keys("persistent_workers=True needs num_workers > 0") == \
        "trainer.persistent_workers=true needs trainer.num_workers > 0"
    assert with_config_keys("resume with the same number") == "resume with the same number"
    assert with_config_keys("trainer.max_steps: 12 -> 10; eval_batch_size") == "trainer.max_steps: 12 -> 10; eval_batch_size"
    with pytest.raises(ValueError, match=r"^trainer.batch_size must be") as caught:
        with config_keys():
            raise ValueError("batch_size must be an integer >= 1, got 0")
    assert str(caught.value.__cause__) == "batch_size must be an integer >= 1, got 0"


def test_a_target_error_naming_one_of_its_arguments_surfaces_with_the_dotted_key(tmp_path):
    from robustml.data.datasets.celeba import celeba_splits
    from robustml.data.datasets.image_csv import image_csv_splits

    cfg = OmegaConf.create({
        "data": {"_target_": "robustml.data.datasets.image_csv.image_csv_splits",
                 "csv": str(tmp_path / "none.csv"), "image_size": 0},
        "celeba": {"_target_": "robustml.data.datasets.celeba.celeba_splits",
                   "root": str(tmp_path)}})
    with pytest.raises(ValueError, match=r"^data\.image_size must be an integer >= 1, got 0$"):
        build_from(cfg, "data")
    cfg.data.image_size = 8
    with pytest.raises(FileNotFoundError, match=r"^data\.csv='.*none\.csv': no such file; "
                                                r"data\.csv must name"):
        build_from(cfg, "data")
    # A message that does not start with one of the node's keys keeps the "key: " prefix; the
    # node's keys inside it (the advice) read as config keys with YAML values.
    with pytest.raises(FileNotFoundError, match=r"^celeba: celeba not found under .*Pass "
                                                r"celeba\.root=<dir>.*pass download=true"):
        build_from(cfg, "celeba")
    # The library itself names its arguments.
    with pytest.raises(ValueError, match=r"^image_size must be"):
        image_csv_splits(tmp_path / "none.csv", image_size=0)
    with pytest.raises(FileNotFoundError, match=r"Pass root=<dir>.*pass download=True"):
        celeba_splits(tmp_path)


def test_keys_under_translates_only_the_given_arguments():
    from robustml.pipeline.instantiate import config_keys, keys_under, with_config_keys
    keys = keys_under("cleaning.", ("lr", "num_folds"))
    assert with_config_keys("lr must be a number > 0, got 0; num_folds=1; batch_size must",
                            keys) == \
        "cleaning.lr must be a number > 0, got 0; cleaning.num_folds=1; batch_size must"
    with pytest.raises(ValueError, match=r"^cleaning\.lr must be") as caught:
        with config_keys(keys):
            raise ValueError("lr must be a number > 0, got 0")
    assert str(caught.value.__cause__) == "lr must be a number > 0, got 0"
