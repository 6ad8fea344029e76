"""Counterfactual logit pairing penalty: value, gradient, paired-layout checks."""

import numpy as np
import pytest
import torch

from robustml.augment import ChannelColorRule, CounterfactualAugment
from robustml.losses.consistency import CounterfactualConsistencyPenalty


def paired_inputs(pairs: int = 6, classes: int = 3, dtype=torch.float32, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2 * pairs, classes, generator=gen, dtype=dtype)
    y = torch.randint(0, classes, (pairs,), generator=gen)
    groups = torch.randint(0, 4, (2 * pairs,), generator=gen)
    return logits, torch.cat([y, y]), groups


def test_zero_on_identical_logits():
    logits, target, groups = paired_inputs()
    same = torch.cat([logits[:6], logits[:6]])
    assert CounterfactualConsistencyPenalty(4)(same, target, groups).item() == 0.0


def test_value_matches_numpy():
    logits, target, groups = paired_inputs(pairs=5, classes=1)
    z = logits.numpy().astype(np.float64)
    expected = np.mean(np.sum((z[:5] - z[5:]) ** 2, axis=1))
    value = CounterfactualConsistencyPenalty(4)(logits, target.clamp(max=1), groups)
    assert value.item() == pytest.approx(expected, rel=1e-6)


def test_gradient_matches_hand_derived_form():
    logits, target, groups = paired_inputs()
    logits.requires_grad_(True)
    CounterfactualConsistencyPenalty(4)(logits, target, groups).backward()
    z = logits.detach()
    diff = z[:6] - z[6:]
    expected = torch.cat([2 * diff / 6, -2 * diff / 6])
    torch.testing.assert_close(logits.grad, expected)


def test_gradcheck_float64():
    logits, target, groups = paired_inputs(pairs=3, classes=2, dtype=torch.float64)
    logits.requires_grad_(True)
    penalty = CounterfactualConsistencyPenalty(4)
    assert torch.autograd.gradcheck(lambda z: penalty(z, target, groups), (logits,))


def test_half_precision_is_computed_in_float32():
    logits, target, groups = paired_inputs()
    value = CounterfactualConsistencyPenalty(4)(logits.to(torch.bfloat16), target, groups)
    assert value.dtype == torch.float32


def test_rejects_unpaired_batches():
    logits, target, groups = paired_inputs()
    penalty = CounterfactualConsistencyPenalty(4)
    with pytest.raises(ValueError, match="even number of rows in the paired layout.*N=11"):
        penalty(logits[:11], target[:11], groups[:11])
    bad = target.clone()
    bad[7] = (bad[1] + 1) % 3
    with pytest.raises(ValueError, match=r"target\[1\]=.*target\[7\]"):
        penalty(logits, bad, groups)
    with pytest.raises(ValueError, match=r"groups must lie in \[0, 4\)"):
        penalty(logits, target, groups + 4)
    with pytest.raises(ValueError, match="num_groups"):
        CounterfactualConsistencyPenalty(0)


def test_with_augment_a_color_blind_model_pays_nothing():
    gen = torch.Generator().manual_seed(0)
    attr = torch.randint(0, 2, (8,), generator=gen)
    x = torch.zeros(8, 2, 3, 3)
    x[torch.arange(8), attr] = torch.rand(8, 3, 3, generator=gen)
    y = torch.randint(0, 2, (8,), generator=gen)
    batch = CounterfactualAugment(ChannelColorRule(2), num_attrs=2, mode="paired")(
        {"x": x, "y": y, "attr": attr})
    penalty = CounterfactualConsistencyPenalty(4)
    weight = torch.randn(9, 2, generator=gen)
    blind = batch["x"].sum(1).flatten(1) @ weight       # uses the content only
    assert penalty(blind, batch["y"], batch["group"]).item() == pytest.approx(0.0, abs=1e-10)
    seeing = batch["x"][:, 1].flatten(1) @ weight       # uses the green channel
    assert penalty(seeing, batch["y"], batch["group"]).item() > 0
