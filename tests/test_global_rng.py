"""Library calls leave the process's random states as they found them.

A user's own loop seeds once and expects its draws to depend on that seed only: building a loss, a
sampler or a dataset, fitting DFR, AFR or DPE or finding label issues must not reseed or draw from Python's
``random``, numpy's global generator or torch's default generator. Only the run's entry seeds
(:func:`robustml.train.seed_everything`), and the test checks it does.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from robustml.cleaning import detect_label_issues
from robustml.data.datasets.colored_digits import colored_digits_splits
from robustml.data.samplers import GroupBalancedSampler, UpsampledOrder
from robustml.heads import afr, dfr_on_validation, dpe
from robustml.losses import GroupDROLoss, IRMLoss, VRExLoss
from robustml.train import seed_everything


def _states():
    return random.getstate(), np.random.get_state(), torch.random.get_rng_state()


def _assert_unchanged(before, after):
    assert before[0] == after[0], "Python's random state changed"
    assert all(np.array_equal(a, b) for a, b in zip(before[1], after[1])), "numpy's global state changed"
    assert torch.equal(before[2], after[2]), "torch's default generator changed"


def _losses():
    groups = torch.tensor([0, 1, 0, 1])
    for criterion in (GroupDROLoss(2, group_counts=torch.tensor([2, 2])), IRMLoss(2), VRExLoss(2)):
        criterion(torch.randn(4, 1, generator=torch.Generator().manual_seed(0)),
                  torch.tensor([0, 1, 1, 0]), groups)


def _samplers():
    ids = torch.tensor([0, 0, 1, 1, 1])
    list(GroupBalancedSampler(ids, num_parts=2, generator=torch.Generator().manual_seed(0)))
    UpsampledOrder(5, torch.tensor([1, 3]), lambda_up=2)(torch.Generator().manual_seed(0))


def _dataset():
    colored_digits_splits(seed=3)


def _dfr():
    gen = np.random.default_rng(0)
    features = gen.normal(size=(80, 4))
    target, groups = gen.integers(0, 2, 80), gen.integers(0, 4, 80)
    dfr_on_validation(features, features, target, groups, num_groups=4, num_refits=2, C_grid=[1.0, 0.1])


def _afr_dpe():
    gen = np.random.default_rng(0)
    features = gen.normal(size=(80, 4))
    target, groups = gen.integers(0, 2, 80), gen.integers(0, 4, 80)
    afr(features, target, gen.normal(size=(1, 4)), np.zeros(1), features, target, groups, num_groups=4,
        gammas=[1.0], regs=[0.0], num_epochs=2)
    dpe(features, target, groups, features, target, groups, num_classes=2, num_groups=4, num_members=2,
        epochs=1, batch_size=8)


def _label_issues():
    gen = np.random.default_rng(0)
    x = gen.normal(size=(120, 3)).astype(np.float32)
    labels = (x[:, 0] > 0).astype(int)
    labels[:6] = 1 - labels[:6]
    detect_label_issues(x, labels)


@pytest.mark.parametrize("call", [_losses, _samplers, _dataset, _dfr, _afr_dpe, _label_issues],
                         ids=["losses", "samplers", "dataset", "dfr_on_validation", "afr_dpe",
                              "detect_label_issues"])
def test_library_calls_leave_the_global_random_states_unchanged(call):
    random.seed(11), np.random.seed(11), torch.manual_seed(11)
    before = _states()
    call()
    _assert_unchanged(before, _states())


def test_seed_everything_is_the_one_call_that_seeds():
    seed_everything(5)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    random.random(), np.random.rand(), torch.rand(1)
    seed_everything(5)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
