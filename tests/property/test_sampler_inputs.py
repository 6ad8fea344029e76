"""Hostile input to the samplers; well-formed group layouts checked against the definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hostile import FAST, id_lists, outcome
from robustml.data.samplers import (EpochBatchSampler, GroupBalancedSampler,
                                    balanced_sample_weights, epoch_order)

BAD_GROUPS = {"float": lambda g, k: g.float(), "int32": lambda g, k: g.int(),
              "too_large": lambda g, k: torch.cat([g, torch.tensor([k])]),
              "negative": lambda g, k: torch.cat([g, torch.tensor([-1])]),
              "empty": lambda g, k: g[:0], "two_dim": lambda g, k: g[:, None],
              "list": lambda g, k: g.tolist()}
BAD_COUNTS = [0, -3, True, 2.5, "4", None]


@FAST
@given(data=st.data(), n=st.integers(1, 12), num_groups=st.integers(1, 5),
       bad=st.sampled_from([None, "ids", "num_parts"]))
def test_balanced_weights_give_every_nonempty_group_equal_mass(data, n, num_groups, bad):
    groups = torch.tensor(data.draw(id_lists(n, num_groups)))
    count = num_groups
    if bad == "ids":
        groups = data.draw(st.sampled_from(sorted(BAD_GROUPS)).map(
            lambda how: BAD_GROUPS[how](groups, num_groups)))
    elif bad == "num_parts":
        count = data.draw(st.sampled_from(BAD_COUNTS))
    weights = outcome(balanced_sample_weights, groups, num_parts=count, bad=bad)
    if weights is None:
        return
    ids = groups.numpy()
    present = np.unique(ids)
    mass = [float(weights[torch.as_tensor(ids == g)].sum()) for g in present]
    np.testing.assert_allclose(mass, n / present.size, rtol=1e-6)
    assert float(weights.sum()) == pytest.approx(n, rel=1e-6)


@FAST
@given(data=st.data(), n=st.integers(1, 12), num_groups=st.integers(1, 4),
       num_samples=st.one_of(st.none(), st.integers(1, 20)),
       bad=st.sampled_from([None, "ids", "num_samples"]))
def test_group_balanced_sampler_draws_only_nonempty_groups(data, n, num_groups, num_samples, bad):
    groups = torch.tensor(data.draw(id_lists(n, num_groups)))
    if bad == "ids":
        groups = BAD_GROUPS[data.draw(st.sampled_from(sorted(BAD_GROUPS)))](groups, num_groups)
    elif bad == "num_samples":
        num_samples = data.draw(st.sampled_from(BAD_COUNTS[:-1]))
    sampler = outcome(GroupBalancedSampler, groups, num_parts=num_groups, num_samples=num_samples,
                      generator=torch.Generator().manual_seed(0), bad=bad)
    if sampler is None:
        return
    drawn = list(sampler)
    assert len(drawn) == len(sampler) == (n if num_samples is None else num_samples)
    assert all(0 <= i < n for i in drawn)


@FAST
@given(num_examples=st.one_of(st.integers(1, 30), st.sampled_from(BAD_COUNTS)),
       batch_size=st.one_of(st.integers(1, 40), st.sampled_from(BAD_COUNTS)),
       seed=st.one_of(st.integers(0, 10**6), st.sampled_from([1.5, "0", None])),
       start_epoch=st.integers(0, 3))
def test_epoch_batches_cover_each_epoch_once_or_name_the_bad_argument(num_examples, batch_size,
                                                                      seed, start_epoch):
    def valid(value, minimum):
        return isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    bad = next((name for name, value, low in (("num_examples", num_examples, 1),
                                             ("batch_size", batch_size, 1), ("seed", seed, 0))
                if not valid(value, low)), None)
    sampler = outcome(EpochBatchSampler, num_examples, batch_size=batch_size, seed=seed,
                      start_epoch=start_epoch, bad=bad)
    if sampler is None:
        return
    batches = iter(sampler)
    keys = [key for _ in range(sampler.batches_per_epoch) for key in next(batches)]
    order = epoch_order(start_epoch, seed=seed, num_examples=num_examples).tolist()
    assert [index for index, _ in keys] == order
    assert sorted(order) == list(range(num_examples))
    assert len({key_seed for _, key_seed in keys}) == num_examples   # one seed per example
