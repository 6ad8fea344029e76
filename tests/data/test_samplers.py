"""Group-balanced sampling and weights (Sagawa et al. 2020): equal mass per non-empty group."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from robustml.data.samplers import GroupBalancedSampler, balanced_sample_weights

# Imbalanced: 90 / 9 / 1 examples, group 2 empty, 4 groups declared.
GROUPS = torch.cat([torch.zeros(90), torch.ones(9), torch.full((1,), 3)]).long()[torch.randperm(
    100, generator=torch.Generator().manual_seed(0))]


def test_weights_hand_computed():
    weights = balanced_sample_weights(torch.tensor([0, 0, 0, 1]), num_parts=3)  # group 2 empty: G = 2
    torch.testing.assert_close(weights, torch.tensor([4 / 6, 4 / 6, 4 / 6, 2.0]))


def test_weights_sum_to_n_with_equal_mass_per_group():
    weights = balanced_sample_weights(GROUPS, num_parts=4)
    assert weights.shape == (100,) and weights.dtype == torch.get_default_dtype()
    assert weights.sum().item() == pytest.approx(100.0)
    mass = torch.zeros(4).index_add_(0, GROUPS, weights)
    torch.testing.assert_close(mass, torch.tensor([100 / 3, 100 / 3, 0.0, 100 / 3]))


def test_sampler_group_frequencies_are_uniform():
    sampler = GroupBalancedSampler(GROUPS, num_parts=4, num_samples=100_000,
                                   generator=torch.Generator().manual_seed(1))
    draws = torch.tensor(list(sampler))
    assert len(sampler) == 100_000 and draws.shape == (100_000,)
    freq = torch.bincount(GROUPS[draws], minlength=4).double() / 100_000
    assert freq[2] == 0
    assert torch.all((freq[[0, 1, 3]] - 1 / 3).abs() < 0.01), freq
    # within a group, examples are drawn uniformly: the 9 examples of group 1 each get ~1/27
    per_example = torch.bincount(draws, minlength=100).double() / 100_000
    torch.testing.assert_close(per_example[GROUPS == 1], torch.full((9,), 1 / 27, dtype=torch.float64),
                               atol=0.004, rtol=0)


def test_class_balanced_default_length_and_loader():
    labels = torch.tensor([0] * 30 + [1] * 10)
    sampler = GroupBalancedSampler(labels, num_parts=2, generator=torch.Generator().manual_seed(0))
    assert len(sampler) == 40
    loader = DataLoader(TensorDataset(labels), batch_size=8, sampler=sampler)
    assert sum(len(b[0]) for b in loader) == 40


def test_reproducible_with_generator():
    def draw(seed):
        return list(GroupBalancedSampler(GROUPS, num_parts=4,
                                         generator=torch.Generator().manual_seed(seed)))
    assert draw(3) == draw(3)
    assert draw(3) != draw(4)
    sampler = GroupBalancedSampler(GROUPS, num_parts=4, generator=torch.Generator().manual_seed(3))
    assert list(sampler) != list(sampler)  # a new epoch draws new indices


def test_errors():
    with pytest.raises(ValueError, match=r"ids must hold at least one id, got none"):
        GroupBalancedSampler(torch.zeros(0, dtype=torch.long), num_parts=3)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 2\), got values in \[0, 3\]"):
        balanced_sample_weights(torch.tensor([0, 3]), num_parts=2)
    with pytest.raises(TypeError, match="ids must be int64, got dtype torch.float32"):
        balanced_sample_weights(torch.tensor([0.0, 1.0]), num_parts=2)
    with pytest.raises(TypeError, match="ids must be an int64 tensor"):
        balanced_sample_weights([0, 1], num_parts=2)
    with pytest.raises(ValueError, match="num_samples"):
        GroupBalancedSampler(GROUPS, num_parts=4, num_samples=0)
    with pytest.raises(ValueError, match="num_parts"):
        balanced_sample_weights(GROUPS, num_parts=0)
