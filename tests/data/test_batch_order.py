"""One batch-order rule: the trainer's batches and the cleaning networks' batches share it."""

from __future__ import annotations

import torch

from robustml.cleaning.networks import batch_indices
from robustml.data.samplers import EpochBatchSampler, epoch_order, epoch_seed


def test_the_rule_is_the_seeded_permutation_it_always_was():
    # Pinned: checkpoints written before the rule moved must resume to the same batches.
    for seed, epoch in ((0, 0), (3, 2), (12345, 7)):
        expected = torch.randperm(10, generator=torch.Generator().manual_seed(
            seed * 1_000_003 + epoch))
        assert epoch_seed(seed, epoch) == seed * 1_000_003 + epoch
        assert torch.equal(epoch_order(epoch, seed=seed, num_examples=10), expected)


def test_cleaning_batches_follow_the_trainer_order():
    batches = batch_indices(10, batch_size=4, seed=5, device=torch.device("cpu"))
    for epoch in range(3):
        drawn = torch.cat([next(batches) for _ in range(3)])          # 4 + 4 + 2 rows
        assert torch.equal(drawn, epoch_order(epoch, seed=5, num_examples=10))


def test_epoch_batch_sampler_follows_the_same_order():
    sampler = iter(EpochBatchSampler(10, batch_size=4, seed=5, start_epoch=1))
    keys = [key for _ in range(3) for key in next(sampler)]
    assert [index for index, _ in keys] == epoch_order(1, seed=5, num_examples=10).tolist()
    assert keys[0][1] == epoch_seed(5, 1) * 2**24        # per-example seeds from the same rule
