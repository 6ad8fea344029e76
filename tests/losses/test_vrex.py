"""V-REx penalty: the population variance of per-environment mean risks."""

import numpy as np
import pytest
import torch

from robustml.losses import VRExLoss, VRExPenalty
from robustml.losses.functional import classification_loss, vrex_penalty


def make_batch(seed=0, num_classes=3):
    generator = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(14, num_classes, generator=generator, dtype=torch.float64)
    target = torch.randint(0, max(num_classes, 2), (14,), generator=generator)
    groups = torch.tensor([0, 0, 1, 3, 3, 3, 0, 1, 1, 3, 0, 0, 3, 1])
    return logits, target, groups


def test_hand_computed_two_environments():
    # Env 0 risk log 2 (logit 0, BCE), env 1 risk softplus(-2) (logit 2, label 1).
    logits = torch.tensor([[0.0], [0.0], [2.0]], dtype=torch.float64)
    value = vrex_penalty(logits, torch.tensor([1, 0, 1]), torch.tensor([0, 0, 1]))
    risks = np.array([np.log(2), np.log1p(np.exp(-2.0))])
    assert float(value) == pytest.approx(((risks - risks.mean()) ** 2).mean(), rel=1e-12)
    assert float(value) == pytest.approx((risks[0] - risks[1]) ** 2 / 4, rel=1e-12)


@pytest.mark.parametrize("num_classes", [1, 3])
def test_matches_numpy_population_variance(num_classes):
    logits, target, groups = make_batch(num_classes=num_classes)
    losses = classification_loss(logits, target).numpy()
    risks = [losses[groups.numpy() == e].mean() for e in (0, 1, 3)]  # env 2 absent
    expected = np.var(risks)  # numpy's default ddof=0: population variance
    assert float(vrex_penalty(logits, target, groups)) == pytest.approx(expected, rel=1e-12)
    assert float(VRExPenalty(4)(logits, target, groups)) == pytest.approx(expected, rel=1e-12)
    torch_risks = torch.tensor(risks)
    assert float(torch.var(torch_risks, correction=0)) == pytest.approx(expected, rel=1e-12)


def test_gradient_matches_finite_differences():
    logits, target, groups = make_batch(seed=2)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: vrex_penalty(z, target, groups), (logits,))


def test_one_environment_is_rejected():
    logits, target, _ = make_batch()
    with pytest.raises(ValueError, match=r"V-REx penalty .* at least 2 environments, found 1"):
        VRExPenalty(4)(logits, target, torch.full((14,), 2))


def test_bad_group_ids():
    logits, target, groups = make_batch()
    with pytest.raises(ValueError, match=r"groups must lie in \[0, 3\), got values in \[0, 3\]"):
        VRExPenalty(3)(logits, target, groups)
    with pytest.raises(ValueError, match=r"groups must lie in \[0, inf\), got values in \[-1, 2\]"):
        vrex_penalty(logits, target, groups - 1)


def test_vrex_loss_value_and_rescale():
    logits, target, groups = make_batch()
    criterion = VRExLoss(4, penalty_weight=50.0, anneal_steps=0)
    expected = (classification_loss(logits, target).mean()
                + 50.0 * vrex_penalty(logits, target, groups)) / 50.0
    torch.testing.assert_close(criterion(logits, target, groups), expected)
    assert criterion.loss_scale == 1 / 50.0
    assert set(criterion.log_values()) == {"loss_base", "penalty_vrex", "weight_vrex"}
