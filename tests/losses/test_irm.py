"""IRMv1 penalty: closed form against autograd, gradcheck, hand-computed values, environments."""

import math

import pytest
import torch

from robustml.losses import IRMLoss, IRMPenalty
from robustml.losses.functional import (classification_loss, irm_penalty, irm_penalty_autograd,
                                        mean_irm_penalty)


def make_env(n, num_classes, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(n, num_classes, generator=generator, dtype=dtype)
    target = torch.randint(0, max(num_classes, 2), (n,), generator=generator)
    return logits, target


@pytest.mark.parametrize("num_classes", [1, 2, 4])
@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("n", [8, 9])
def test_closed_form_matches_autograd(num_classes, unbiased, n):
    logits, target = make_env(n, num_classes)
    closed = irm_penalty(logits, target, unbiased=unbiased)
    reference = irm_penalty_autograd(logits, target, loss_fn=classification_loss,
                                     unbiased=unbiased).detach()
    assert abs(float(closed) - float(reference)) < 1e-6 * max(1.0, abs(float(reference)))
    assert float(closed) != 0.0


@pytest.mark.parametrize("num_classes", [1, 3])
def test_random_halves_match_autograd_with_same_generator(num_classes):
    logits, target = make_env(11, num_classes)
    closed = irm_penalty(logits, target, unbiased=True,
                         generator=torch.Generator().manual_seed(5))
    reference = irm_penalty_autograd(logits, target, loss_fn=classification_loss, unbiased=True,
                                     generator=torch.Generator().manual_seed(5))
    interleaved = irm_penalty(logits, target, unbiased=True)
    torch.testing.assert_close(closed, reference, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(closed, interleaved)


@pytest.mark.parametrize("num_classes", [1, 3])
@pytest.mark.parametrize("unbiased", [False, True])
def test_gradcheck_closed_form(num_classes, unbiased):
    logits, target = make_env(6, num_classes)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: irm_penalty(z, target, unbiased=unbiased),
                                    (logits,))


def test_hand_computed_values():
    # BCE: one example z = 2, y = 0: g = sigmoid(2) * 2.
    bce = irm_penalty(torch.tensor([[2.0]], dtype=torch.float64), torch.tensor([0]))
    assert float(bce) == pytest.approx((2 / (1 + math.exp(-2))) ** 2, rel=1e-12)
    # CE: z = (0, log 3), y = 0: softmax = (1/4, 3/4); g = (1/4 - 1) * 0 + 3/4 * log 3.
    ce = irm_penalty(torch.tensor([[0.0, math.log(3)]], dtype=torch.float64), torch.tensor([0]))
    assert float(ce) == pytest.approx((0.75 * math.log(3)) ** 2, rel=1e-12)
    # Unbiased, interleaved halves {0, 2} and {1}: z = (1, -1, 3), y = (1, 1, 0) with BCE.
    z = torch.tensor([[1.0], [-1.0], [3.0]], dtype=torch.float64)
    per_example = [(1 / (1 + math.exp(-v)) - y) * v for v, y in ((1, 1), (-1, 1), (3, 0))]
    expected = (per_example[0] + per_example[2]) / 2 * per_example[1]
    unbiased = irm_penalty(z, torch.tensor([1, 1, 0]), unbiased=True)
    assert float(unbiased) == pytest.approx(expected, rel=1e-12)


def test_penalty_is_zero_at_optimal_scale():
    # A constant logit at the label rate is optimal for any multiplier near 1: z = log(1/3).
    logits = torch.full((4, 1), math.log(1 / 3), dtype=torch.float64)
    target = torch.tensor([1, 0, 0, 0])
    assert float(irm_penalty(logits, target)) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("unbiased", [False, True])
def test_mean_over_environments_present(unbiased):
    logits, target = make_env(12, 3, seed=3)
    groups = torch.tensor([0, 2, 2, 0, 0, 2, 3, 3, 0, 2, 3, 0])  # environments 1 and 4 absent
    expected = torch.stack([irm_penalty(logits[groups == e], target[groups == e],
                                        unbiased=unbiased) for e in (0, 2, 3)]).mean()
    torch.testing.assert_close(
        mean_irm_penalty(logits, target, groups, num_groups=5, unbiased=unbiased), expected)
    if unbiased:  # the module draws random halves, from a generator seeded with (seed, step)
        expected = mean_irm_penalty(logits, target, groups, unbiased=True,
                                    generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(IRMPenalty(5, unbiased=unbiased)(logits, target, groups), expected)
    autograd_form = IRMPenalty(5, unbiased=unbiased, closed_form=False)
    torch.testing.assert_close(autograd_form(logits, target, groups), expected)


def test_autograd_form_works_under_no_grad():
    logits, target = make_env(10, 3)
    groups = torch.arange(10) % 2
    with torch.no_grad():
        value = IRMPenalty(2, closed_form=False)(logits, target, groups)
    torch.testing.assert_close(value, IRMPenalty(2)(logits, target, groups))


def test_float32_and_half_precision_inputs():
    logits, target = make_env(16, 3, dtype=torch.float32)
    assert irm_penalty(logits, target).dtype == torch.float32
    half = irm_penalty(logits.bfloat16(), target)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, irm_penalty(logits.bfloat16().float(), target))


def test_one_environment_is_rejected():
    logits, target = make_env(6, 1)
    with pytest.raises(ValueError, match=r"at least 2 environments, found 1 \(\[1\]\)"):
        IRMPenalty(3)(logits, target, torch.ones(6, dtype=torch.long))


def test_unbiased_needs_two_examples_per_environment():
    logits, target = make_env(5, 1)
    with pytest.raises(ValueError, match="at least 2 examples, got 1 in environment 1"):
        IRMPenalty(2, unbiased=True)(logits, target, torch.tensor([0, 0, 1, 0, 0]))


def test_bad_inputs():
    logits, target = make_env(6, 3)
    with pytest.raises(ValueError, match=r"groups must lie in \[0, 2\), got values in \[0, 2\]"):
        IRMPenalty(2)(logits, target, torch.tensor([0, 1, 2, 0, 1, 2]))
    with pytest.raises(TypeError, match="groups must be int64, got dtype torch.int32"):
        IRMPenalty(2)(logits, target, torch.zeros(6, dtype=torch.int32))
    bad = logits.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(FloatingPointError, match=r"logits are not finite: .* got inf at logits\[0, 0\]"):
        IRMPenalty(2)(bad, target, torch.arange(6) % 2)


def test_irm_loss_follows_the_paper_schedule():
    criterion = IRMLoss(2, penalty_weight=1000.0, anneal_steps=2, unbiased=True)
    logits, target = make_env(10, 1, seed=4)
    groups = torch.arange(10) % 2
    base = classification_loss(logits, target).mean()
    for step in range(4):
        # The same full batch at every step: the halves are drawn anew each step.
        penalty = mean_irm_penalty(logits, target, groups, unbiased=True,
                                   generator=torch.Generator().manual_seed(step))
        weight = 1.0 if step < 2 else 1000.0
        value = criterion(logits, target, groups)
        torch.testing.assert_close(value, (base + weight * penalty) / max(weight, 1.0))
        assert criterion.loss_scale == 1 / max(weight, 1.0)
        assert criterion.anneal_reached_now == (step == 2)
    values = criterion.log_values()
    assert values["weight_irm"] == 1000.0
    assert values["penalty_irm"] == pytest.approx(float(penalty))
    assert values["loss_base"] == pytest.approx(float(base))
