"""Safe checkpoints: tensors and primitives only, every random state, the config, refusals."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from support import toy_env_dataset
from robustml.losses import IRMLoss
from robustml.models import MLP
from robustml.train import Trainer, TrainSettings, load_checkpoint, save_checkpoint
from robustml.train.checkpoint import config_differences
from robustml.train.rng import capture_rng, restore_rng


def _toy(n=32, seed=0):
    return toy_env_dataset(n, seed)


def _trainer(tmp_path, config=None, **settings):
    torch.manual_seed(0)
    model = MLP((2, 3, 3), 1, hidden_dims=(8,), dropout=0.1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    criterion = IRMLoss(2, penalty_weight=10.0, anneal_steps=2, unbiased=True)
    return Trainer(model, criterion, optimizer, _toy(), _toy(seed=1),
                   TrainSettings(**{"max_steps": 4, "eval_every": 2, "progress": False, **settings}),
                   run_dir=tmp_path, partition="env", config=config)


def test_trainer_checkpoints_load_with_weights_only_and_hold_config_and_every_rng(tmp_path):
    config = {"seed": 0, "trainer": {"max_steps": 4, "progress": False}}
    _trainer(tmp_path, config).fit()
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert state["config"] == config and state["step"] == 4
    assert len(state["rng"]) == 1  # one process: its states
    assert set(state["rng"][0]) == {"python", "numpy", "torch", "cuda", "generators"}
    assert state["criterion"]["penalties.irm.draws"] == 4  # the random halves' step
    torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)


def test_a_checkpoint_that_pickles_objects_is_refused(tmp_path):
    torch.save({"settings": TrainSettings(max_steps=1)}, tmp_path / "old.pt")
    with pytest.raises(RuntimeError, match=r"cannot be read safely \(UnpicklingError: "
                       r"WeightsUnpickler error: Unsupported global: GLOBAL "
                       r"robustml.train.settings.TrainSettings.*pickled objects"):
        load_checkpoint(tmp_path / "old.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "old.pt").read_bytes()[:40])
    with pytest.raises(RuntimeError, match="truncated"):
        load_checkpoint(tmp_path / "cut.pt")


def test_random_states_round_trip_through_a_weights_only_file(tmp_path):
    generator = torch.Generator().manual_seed(5)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(0, 1)  # a cached Gaussian in Python's state
    save_checkpoint(tmp_path / "rng.pt", {"rng": capture_rng([generator])})
    expected = (random.random(), np.random.rand(), torch.rand(1), torch.rand(1, generator=generator),
                random.gauss(0, 1))
    random.seed(9), np.random.seed(9), torch.manual_seed(9), generator.manual_seed(9)
    restore_rng(load_checkpoint(tmp_path / "rng.pt")["rng"], [generator])
    again = (random.random(), np.random.rand(), torch.rand(1), torch.rand(1, generator=generator),
             random.gauss(0, 1))
    assert again[:2] == expected[:2] and again[4] == expected[4]
    assert torch.equal(again[2], expected[2]) and torch.equal(again[3], expected[3])
    with pytest.raises(ValueError, match="holds 1 generator states, but this run has 0"):
        restore_rng(load_checkpoint(tmp_path / "rng.pt")["rng"], [])


def test_config_differences_name_each_key_and_skip_exempt_ones():
    saved = {"seed": 0, "trainer": {"progress": True, "max_steps": 4}, "loss": {"w": [1, 2]}}
    current = {"seed": 1, "trainer": {"progress": False, "max_steps": 4}, "loss": {"w": [1, 3]},
               "extra": None}
    assert config_differences(saved, current) == ["extra: <absent> -> None",
                                                  "loss.w: [1, 2] -> [1, 3]", "seed: 0 -> 1"]


def test_trainer_resume_with_another_config_is_refused_unless_forced(tmp_path):
    config = {"seed": 0, "optimizer": {"lr": 0.01}, "trainer": {"progress": False}}
    _trainer(tmp_path, config, max_steps=2).fit()
    other = {**config, "optimizer": {"lr": 0.1}, "trainer": {"progress": True}}
    with pytest.raises(ValueError, match=r"at 1 key\(s\): optimizer.lr: 0.01 -> 0.1\. Resume"):
        _trainer(tmp_path, other, resume=True).fit()
    assert _trainer(tmp_path, other, resume=True, resume_force=True).fit()["history"][-1]["step"] == 4
