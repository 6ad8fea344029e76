"""Per-example weights in every loss: checks, uniform = unweighted, 0 = removed, k = k copies."""

import types

import numpy as np
import pytest
import torch
from torch import nn

import robustml.losses.group_dro as group_dro_module
from robustml.losses import (CounterfactualConsistencyPenalty, ERMLoss, GroupDROLoss, IRMLoss,
                             IRMPenalty, PenalizedLoss, VRExLoss, VRExPenalty)
from robustml.losses.functional import classification_loss, group_sums, mean_irm_penalty, vrex_penalty
from robustml.losses.group_dro import group_dro_step

NUM_GROUPS = 3
COUNTS = [40, 25, 6]

FACTORIES = {
    "erm": lambda: ERMLoss(NUM_GROUPS),
    "group_dro": lambda: GroupDROLoss(NUM_GROUPS, step_size=0.7),
    "group_dro_adjusted": lambda: GroupDROLoss(NUM_GROUPS, step_size=0.7, group_counts=COUNTS,
                                               adjustment=1.5, normalize_loss=True),
    "irm": lambda: IRMLoss(NUM_GROUPS, penalty_weight=20.0, anneal_steps=1, unbiased=True),
    "vrex": lambda: VRExLoss(NUM_GROUPS, penalty_weight=20.0, anneal_steps=1),
    "irm_penalty": lambda: IRMPenalty(NUM_GROUPS),
    "vrex_penalty": lambda: VRExPenalty(NUM_GROUPS),
    "penalized_group_dro": lambda: PenalizedLoss(
        NUM_GROUPS, GroupDROLoss(NUM_GROUPS, step_size=0.7),
        {"irm": IRMPenalty(NUM_GROUPS), "vrex": VRExPenalty(NUM_GROUPS)},
        weights={"irm": 3.0, "vrex": 5.0}, anneal_steps=1),
    "consistency": lambda: CounterfactualConsistencyPenalty(NUM_GROUPS),
}


def make_batch(seed=0, n=12, num_classes=3):
    """A batch in the paired layout (target[:n/2] == target[n/2:]) with every group present."""
    generator = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(n, num_classes, generator=generator, dtype=torch.float64)
    half = torch.randint(0, max(num_classes, 2), (n // 2,), generator=generator)
    groups = torch.tensor([0, 1, 2, 2, 0, 1, 1, 0, 0, 2, 1, 2])[:n]
    return logits, torch.cat([half, half]), groups


def run_steps(criterion, steps):
    """Call ``criterion`` on each ``(logits, target, groups, weight)``; return values and grads."""
    results = []
    for logits, target, groups, weight in steps:
        logits = logits.clone().requires_grad_(True)
        extra = {} if weight is None else {"weight": weight}
        value = criterion(logits, target, groups, **extra)
        value.backward()
        results.append((value.detach(), logits.grad))
    return results


def numpy_ce(logits, target):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(target)), target]


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("constant", [0.3, 4.0])
def test_uniform_weights_match_unweighted(name, constant):
    batches = [make_batch(seed) for seed in range(3)]
    unweighted, weighted = FACTORIES[name](), FACTORIES[name]()
    expected = run_steps(unweighted, [(*b, None) for b in batches])
    actual = run_steps(weighted, [(*b, torch.full((12,), constant, dtype=torch.float64))
                                  for b in batches])
    for (value, grad), (reference, reference_grad) in zip(actual, expected):
        torch.testing.assert_close(value, reference, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(grad, reference_grad, rtol=1e-10, atol=1e-14)
    for key, value in weighted.state_dict().items():
        torch.testing.assert_close(value, unweighted.state_dict()[key], rtol=1e-12, atol=0)
    assert weighted.log_values() == pytest.approx(unweighted.log_values(), rel=1e-10)


@pytest.mark.parametrize("name", FACTORIES)
def test_weight_none_is_the_unweighted_call(name):
    batches = [make_batch(seed) for seed in range(2)]
    expected = run_steps(FACTORIES[name](), [(*b, None) for b in batches])
    criterion = FACTORIES[name]()
    for (logits, target, groups), (reference, _) in zip(batches, expected):
        assert torch.equal(criterion(logits, target, groups, weight=None), reference)


def test_weight_none_keeps_the_previous_formulas_bit_for_bit():
    logits, target, groups = make_batch()
    losses = classification_loss(logits, target)
    assert torch.equal(ERMLoss(NUM_GROUPS)(logits, target, groups, weight=None), losses.mean())
    # Group DRO before weights: means over counts.clamp(min=1).
    criterion = GroupDROLoss(NUM_GROUPS, step_size=0.7).double()
    value = criterion(logits, target, groups, weight=None)
    sums, counts = group_sums(losses, groups, num_groups=NUM_GROUPS)
    q = group_dro_step(torch.full((3,), 1 / 3, dtype=torch.float64), sums / counts.clamp(min=1),
                       counts > 0, step_size=0.7)
    assert torch.equal(criterion.q, q)
    assert torch.equal(value, (q * sums / counts.clamp(min=1)).sum())
    present = counts > 0
    assert torch.equal(vrex_penalty(logits, target, groups, weight=None),
                       (sums[present] / counts[present]).var(correction=0))


BAD_WEIGHTS = [
    (lambda n: [1.0] * n, TypeError, r"weight must be a floating-point tensor of shape \(12,\) "
                                     r"or None, got list"),
    (lambda n: torch.ones(n - 1), ValueError, r"weight must have shape \(12,\) to match logits, "
                                              r"got \(11,\)"),
    (lambda n: torch.ones(n, 1), ValueError, r"weight must have shape \(12,\).*got \(12, 1\)"),
    (lambda n: torch.ones(n, dtype=torch.int64), TypeError,
     "weight must be floating point, got dtype torch.int64"),
    (lambda n: torch.ones(n).index_fill(0, torch.tensor([2]), -1.0), ValueError,
     r"weight must be finite and >= 0, got weight\[2\]=-1.0"),
    (lambda n: torch.ones(n).index_fill(0, torch.tensor([5]), float("nan")), ValueError,
     r"weight must be finite and >= 0, got weight\[5\]=nan"),
    (lambda n: torch.ones(n).index_fill(0, torch.tensor([0]), float("inf")), ValueError,
     r"weight must be finite and >= 0, got weight\[0\]=inf"),
    (lambda n: torch.zeros(n), ValueError,
     "weight must have at least one entry > 0, got all 12 entries 0"),
]


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("make_weight,error,message", BAD_WEIGHTS)
def test_bad_weights(name, make_weight, error, message):
    logits, target, groups = make_batch()
    with pytest.raises(error, match=message):
        FACTORIES[name]()(logits, target, groups, weight=make_weight(12))


def test_erm_weighted_mean_and_gradient_match_numpy():
    logits, target, groups = make_batch(seed=5)
    weight = torch.tensor([2.0, 0.0, 1.0, 0.5, 3.0, 0.25, 1.0, 0.0, 4.0, 1.5, 0.75, 2.0],
                          dtype=torch.float64)
    logits.requires_grad_(True)
    value = ERMLoss(NUM_GROUPS)(logits, target, groups, weight=weight)
    value.backward()
    z, y, w = logits.detach().numpy(), target.numpy(), weight.numpy()
    assert float(value.detach()) == pytest.approx((w * numpy_ce(z, y)).sum() / w.sum(), rel=1e-12)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    expected = (probs - np.eye(3)[y]) * (w / w.sum())[:, None]
    np.testing.assert_allclose(logits.grad.numpy(), expected, rtol=1e-10, atol=1e-15)


def test_group_dro_weighted_group_means_match_numpy():
    logits, target, groups = make_batch(seed=6)
    weight = torch.tensor([0.5, 2.0, 1.0, 0.0, 3.0, 1.0, 0.2, 1.0, 0.0, 2.5, 1.0, 0.7],
                          dtype=torch.float64) / 20  # group weight sums below 1
    criterion = GroupDROLoss(NUM_GROUPS, step_size=0.7).double()
    value = criterion(logits, target, groups, weight=weight)
    z, y, g, w = logits.numpy(), target.numpy(), groups.numpy(), weight.numpy()
    losses = numpy_ce(z, y)
    means = np.array([(w * losses)[g == k].sum() / w[g == k].sum() for k in range(3)])
    q = np.exp(0.7 * means) / np.exp(0.7 * means).sum()
    np.testing.assert_allclose(criterion.last_group_losses.numpy(), means, rtol=1e-12)
    np.testing.assert_allclose(criterion.q.numpy(), q, rtol=1e-12)
    assert float(value) == pytest.approx(float(q @ means), rel=1e-12)


def zero_weight_steps():
    """Three steps of (batch, weight); step 1 gives all of group 2 weight 0 (group absent)."""
    steps = []
    for seed, zeros in ((0, [1, 6]), (1, [2, 3, 9, 11]), (2, [0])):
        logits, target, groups = make_batch(seed)
        weight = torch.ones(12, dtype=torch.float64)
        weight[zeros] = 0.0
        steps.append((logits, target, groups, weight))
    assert not bool(steps[1][3][steps[1][2] == 2].any())
    return steps


@pytest.mark.parametrize("name", ["erm", "group_dro", "group_dro_adjusted", "vrex"])
def test_zero_weight_removes_the_example(name):
    steps = zero_weight_steps()
    weighted, subset = FACTORIES[name]().double(), FACTORIES[name]().double()
    for logits, target, groups, weight in steps:
        keep = weight > 0
        logits = logits.clone().requires_grad_(True)
        value = weighted(logits, target, groups, weight=weight)
        value.backward()
        kept = logits.detach()[keep].requires_grad_(True)
        reference = subset(kept, target[keep], groups[keep])
        reference.backward()
        torch.testing.assert_close(value, reference, rtol=1e-12, atol=0)
        torch.testing.assert_close(logits.grad[keep], kept.grad, rtol=1e-10, atol=1e-15)
        assert torch.equal(logits.grad[~keep], torch.zeros_like(logits.grad[~keep]))
        for key, state in weighted.state_dict().items():
            torch.testing.assert_close(state, subset.state_dict()[key], rtol=1e-12, atol=0)
    if name.startswith("group_dro"):
        torch.testing.assert_close(weighted.last_group_losses, subset.last_group_losses)


@pytest.mark.parametrize("name", ["erm", "group_dro", "group_dro_adjusted", "vrex"])
def test_integer_weights_equal_repeated_examples(name):
    weighted, repeated = FACTORIES[name]().double(), FACTORIES[name]().double()
    for seed in range(3):
        logits, target, groups = make_batch(seed)
        counts = torch.tensor([1, 2, 0, 3, 1, 1, 2, 1, 0, 1, 3, 1]).roll(seed)
        logits.requires_grad_(True)
        value = weighted(logits, target, groups, weight=counts.double())
        (grad,) = torch.autograd.grad(value, logits)
        reference = repeated(logits.repeat_interleave(counts, dim=0),
                             target.repeat_interleave(counts), groups.repeat_interleave(counts))
        (reference_grad,) = torch.autograd.grad(reference, logits)  # summed over the copies
        torch.testing.assert_close(value, reference, rtol=1e-12, atol=0)
        torch.testing.assert_close(grad, reference_grad, rtol=1e-10, atol=1e-15)
        for key, state in weighted.state_dict().items():
            torch.testing.assert_close(state, repeated.state_dict()[key], rtol=1e-12, atol=0)


def test_vrex_penalty_weights_the_environment_risks():
    logits, target, groups = make_batch(seed=7)
    weight = torch.tensor([1.0, 0.5, 2.0, 0.0, 3.0, 1.0, 0.2, 1.0, 4.0, 0.0, 1.0, 0.7],
                          dtype=torch.float64)
    losses, g, w = numpy_ce(logits.numpy(), target.numpy()), groups.numpy(), weight.numpy()
    risks = [(w * losses)[g == e].sum() / w[g == e].sum() for e in range(3)]
    assert float(VRExPenalty(NUM_GROUPS)(logits, target, groups, weight=weight)) == \
        pytest.approx(np.var(risks), rel=1e-12)
    # An environment with total weight 0 is absent: the variance is over the other two.
    weight[groups == 1] = 0.0
    w = weight.numpy()
    risks = [(w * losses)[g == e].sum() / w[g == e].sum() for e in (0, 2)]
    assert float(vrex_penalty(logits, target, groups, weight=weight)) == \
        pytest.approx(np.var(risks), rel=1e-12)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: vrex_penalty(z, target, groups, weight=weight),
                                    (logits,))


def test_vrex_needs_two_environments_with_positive_weight():
    logits, target, groups = make_batch()
    weight = (groups == 2).double()
    with pytest.raises(ValueError, match=r"at least 2 environments with positive total weight, "
                                         r"found 1 \(\[2\]\)"):
        VRExLoss(NUM_GROUPS, penalty_weight=1.0)(logits, target, groups, weight=weight)


def test_irm_weights_the_base_only():
    logits, target, groups = make_batch(seed=8)
    weight = torch.tensor([1.0, 0.0, 2.0, 0.5, 3.0, 1.0, 0.0, 1.0, 4.0, 1.0, 1.0, 0.7],
                          dtype=torch.float64)
    losses = classification_loss(logits, target)
    base = (weight * losses).sum() / weight.sum()
    penalty = mean_irm_penalty(logits, target, groups, unbiased=True,  # the first step's halves
                               generator=torch.Generator().manual_seed(0))
    criterion = IRMLoss(NUM_GROUPS, penalty_weight=20.0, unbiased=True)
    torch.testing.assert_close(criterion(logits, target, groups, weight=weight),
                               (base + 20.0 * penalty) / 20.0, rtol=1e-12, atol=0)
    assert criterion.log_values()["penalty_irm"] == float(penalty)
    assert criterion.log_values()["loss_base"] == pytest.approx(float(base), rel=1e-12)


@pytest.mark.parametrize("name", ["irm_penalty", "consistency"])
def test_penalties_that_ignore_weight(name):
    logits, target, groups = make_batch(seed=9)
    weight = torch.linspace(0.0, 2.0, 12, dtype=torch.float64)
    criterion = FACTORIES[name]()
    assert torch.equal(criterion(logits, target, groups, weight=weight),
                       criterion(logits, target, groups))


def test_penalized_loss_passes_weight_to_base_and_penalties():
    logits, target, groups = make_batch(seed=10)
    weight = torch.tensor([1.0, 0.0, 2.0, 0.5, 3.0, 1.0, 0.2, 1.0, 4.0, 0.1, 1.0, 0.7],
                          dtype=torch.float64)
    criterion = PenalizedLoss(NUM_GROUPS, ERMLoss(NUM_GROUPS),
                              {"irm": IRMPenalty(NUM_GROUPS), "vrex": VRExPenalty(NUM_GROUPS)},
                              weights={"irm": 0.5, "vrex": 0.25})
    base = (weight * classification_loss(logits, target)).sum() / weight.sum()
    expected = (base + 0.5 * mean_irm_penalty(logits, target, groups)
                + 0.25 * vrex_penalty(logits, target, groups, weight=weight))
    torch.testing.assert_close(criterion(logits, target, groups, weight=weight), expected,
                               rtol=1e-12, atol=0)


class ThreeArgumentPenalty(nn.Module):
    """A penalty written before weights existed: no ``weight`` keyword."""

    def forward(self, logits, target, groups):
        return logits.pow(2).mean()


def test_penalty_without_weight_keyword_still_works_unweighted():
    logits, target, groups = make_batch()
    criterion = PenalizedLoss(NUM_GROUPS, ERMLoss(NUM_GROUPS), {"l2": ThreeArgumentPenalty()},
                              weights={"l2": 0.5})
    expected = classification_loss(logits, target).mean() + 0.5 * logits.pow(2).mean()
    torch.testing.assert_close(criterion(logits, target, groups), expected)
    with pytest.raises(TypeError, match="weight"):
        criterion(logits, target, groups, weight=torch.ones(12, dtype=torch.float64))


def test_weight_dtype_follows_the_loss():
    logits, target, groups = make_batch()
    for name in ("erm", "group_dro", "vrex"):
        value = FACTORIES[name]()(logits.float(), target, groups,
                                  weight=torch.full((12,), 2.0, dtype=torch.float64))
        assert value.dtype == torch.float32
        value = FACTORIES[name]().double()(logits, target, groups,
                                           weight=torch.full((12,), 2.0, dtype=torch.bfloat16))
        assert value.dtype == torch.float64


def test_group_dro_all_reduces_weighted_sums(monkeypatch):
    """Two simulated processes with a summing all-reduce match one process on both batches."""
    (x0, y0, g0), (x1, y1, g1) = make_batch(seed=11), make_batch(seed=12)
    w0 = torch.tensor([1.0, 0.0, 2.0, 0.5, 3.0, 1.0, 0.2, 1.0, 4.0, 0.1, 1.0, 0.7],
                      dtype=torch.float64)
    w1 = torch.tensor([0.0, 1.5, 0.0, 0.0, 1.0, 0.3, 1.0, 0.0, 2.0, 0.0, 0.6, 0.0],
                      dtype=torch.float64)
    assert not bool(w1[g1 == 2].any())  # group 2 has weight on rank 0 only
    ranks = [(x0, y0, g0, w0), (x1, y1, g1, w1)]
    contributions = [torch.stack(group_sums(classification_loss(x, y), g, num_groups=NUM_GROUPS,
                                             weight=w))
                     for x, y, g, w in ranks]
    options = {"step_size": 0.7, "group_counts": COUNTS, "adjustment": 1.5}
    single = GroupDROLoss(NUM_GROUPS, **options).double()
    logits = torch.cat([x0, x1]).requires_grad_(True)
    loss = single(logits, torch.cat([y0, y1]), torch.cat([g0, g1]), weight=torch.cat([w0, w1]))
    loss.backward()

    values, grads = [], []
    for rank, (x, y, g, w) in enumerate(ranks):
        def all_reduce(packed, op, other=contributions[1 - rank]):
            packed.add_(other)
        monkeypatch.setattr(group_dro_module, "dist", types.SimpleNamespace(
            is_available=lambda: True, is_initialized=lambda: True, get_world_size=lambda: 2,
            all_reduce=all_reduce, ReduceOp=types.SimpleNamespace(SUM="sum")))
        criterion = GroupDROLoss(NUM_GROUPS, sync_processes=True, **options).double()
        x = x.clone().requires_grad_(True)
        value = criterion(x, y, g, weight=w)
        value.backward()
        torch.testing.assert_close(criterion.q, single.q, rtol=1e-12, atol=0)
        values.append(value.detach())
        grads.append(x.grad)
    # DDP averages over processes: the mean loss and mean-scaled gradients are the global ones.
    torch.testing.assert_close((values[0] + values[1]) / 2, loss.detach(), rtol=1e-12, atol=0)
    torch.testing.assert_close(torch.cat(grads) / 2, logits.grad, rtol=1e-10, atol=1e-15)
