"""Group DRO against an independent numpy implementation of Sagawa et al. 2020, Algorithm 1."""

import numpy as np
import pytest
import torch

from robustml.losses import GroupDROLoss
from robustml.losses.group_dro import group_dro_step

NUM_GROUPS = 4
COUNTS = [300, 40, 9, 100]


def numpy_losses(logits, target):
    """Per-example CE (C >= 2) or BCE-with-logits (C == 1), in numpy."""
    if logits.shape[1] == 1:
        z = logits[:, 0]
        return np.logaddexp(0.0, z) - target * z
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(target)), target]


def numpy_group_dro(batches, *, step_size, counts, adjustment, normalize):
    """Algorithm 1 from the paper; absent groups get no update. Returns (q, loss) per step."""
    q = np.full(NUM_GROUPS, 1.0 / NUM_GROUPS)
    history = []
    for logits, target, groups in batches:
        losses = numpy_losses(logits, target)
        present = np.array([(groups == g).any() for g in range(NUM_GROUPS)])
        group_loss = np.array([losses[groups == g].mean() if present[g] else 0.0
                               for g in range(NUM_GROUPS)])
        adjusted = group_loss + adjustment / np.sqrt(np.asarray(counts, dtype=float))
        adjusted = np.where(present, adjusted, 0.0)
        if normalize:
            adjusted = adjusted / adjusted.sum()
        q = q * np.exp(step_size * adjusted)
        q = q / q.sum()
        history.append((q.copy(), float(q @ group_loss)))
    return history


def make_batches(num_classes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    groups = [torch.tensor([0, 1, 2, 3, 0, 0, 1, 3, 2, 0]),
              torch.tensor([0, 1, 3, 3, 0, 1, 0, 3, 1, 0]),   # group 2 absent
              torch.tensor([2, 2, 2, 1, 0, 3, 3, 0, 1, 2])]
    batches = []
    for g in groups:
        logits = 3 * torch.randn(len(g), num_classes, generator=generator, dtype=torch.float64)
        target = torch.randint(0, max(num_classes, 2), (len(g),), generator=generator)
        batches.append((logits, target, g))
    return batches


@pytest.mark.parametrize("num_classes", [1, 3])
@pytest.mark.parametrize("adjustment,normalize", [(0.0, False), (2.0, False), (0.0, True),
                                                  (3.0, True)])
def test_matches_numpy_algorithm_1(num_classes, adjustment, normalize):
    batches = make_batches(num_classes)
    criterion = GroupDROLoss(NUM_GROUPS, step_size=0.7, group_counts=COUNTS,
                             adjustment=adjustment, normalize_loss=normalize).double()
    expected = numpy_group_dro([(x.numpy(), y.numpy(), g.numpy()) for x, y, g in batches],
                               step_size=0.7, counts=COUNTS, adjustment=adjustment,
                               normalize=normalize)
    rtol = 1e-6 if adjustment else 1e-12  # C / sqrt(n_g) is stored in float32
    for (logits, target, groups), (q, loss) in zip(batches, expected):
        value = criterion(logits, target, groups)
        np.testing.assert_allclose(criterion.q.numpy(), q, rtol=rtol)
        assert float(value) == pytest.approx(loss, rel=rtol)
    assert not np.allclose(expected[-1][0], 0.25)  # the weights did move


def test_absent_group_gets_no_update():
    q = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    losses = torch.tensor([1.0, 2.0, 100.0, 0.5], dtype=torch.float64)
    present = torch.tensor([True, True, False, True])
    unnormalized = q * torch.exp(0.1 * torch.tensor([1.0, 2.0, 0.0, 0.5], dtype=torch.float64))
    new_q = group_dro_step(q, losses, present, step_size=0.1)
    torch.testing.assert_close(new_q, unnormalized / unnormalized.sum(), rtol=1e-12, atol=0)
    adjusted = group_dro_step(q, losses, present, step_size=0.1,
                              adjustments=torch.full((4,), 5.0, dtype=torch.float64))
    assert float(adjusted[2] / adjusted[0]) == pytest.approx(0.3 / 0.1 * np.exp(-0.1 * 6.0))


def test_all_zero_losses_with_normalization_keep_q():
    q = torch.tensor([0.25, 0.25, 0.5])
    new_q = group_dro_step(q, torch.zeros(3), torch.ones(3, dtype=torch.bool), step_size=1.0,
                           normalize_loss=True)
    torch.testing.assert_close(new_q, q)


def test_gradient_treats_q_as_constant():
    logits, target, groups = make_batches(3, seed=1)[0]
    logits.requires_grad_(True)
    criterion = GroupDROLoss(NUM_GROUPS, step_size=0.5).double()
    criterion(logits, target, groups).backward()
    q = criterion.q.numpy()
    x = logits.detach().numpy()
    probs = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    dce = probs - np.eye(3)[target.numpy()]
    counts = np.bincount(groups.numpy(), minlength=NUM_GROUPS)
    expected = dce * (q[groups.numpy()] / counts[groups.numpy()])[:, None]
    np.testing.assert_allclose(logits.grad.numpy(), expected, rtol=1e-10)


def test_eval_freezes_q_and_state_dict_round_trips():
    batches = make_batches(3)
    criterion = GroupDROLoss(NUM_GROUPS, step_size=1.0)
    for logits, target, groups in batches[:2]:
        criterion(logits.float(), target, groups)
    trained_q = criterion.q.clone()
    criterion.eval()
    logits, target, groups = batches[2]
    value = criterion(logits.float(), target, groups)
    assert torch.equal(criterion.q, trained_q)
    losses = torch.tensor(numpy_losses(logits.numpy(), target.numpy()))
    means = torch.stack([losses[groups == g].mean() for g in range(NUM_GROUPS)])
    assert float(value) == pytest.approx(float(trained_q.double() @ means), rel=1e-6)

    restored = GroupDROLoss(NUM_GROUPS, step_size=1.0)
    restored.load_state_dict(criterion.state_dict())
    assert torch.equal(restored.q, trained_q)
    assert set(criterion.state_dict()) == {"q"}


def test_log_values():
    criterion = GroupDROLoss(NUM_GROUPS, step_size=1.0)
    logits, target, groups = make_batches(3)[1]
    criterion(logits, target, groups)
    values = criterion.log_values()
    assert set(values) == {f"q_{g}" for g in range(4)} | {f"loss_group_{g}" for g in range(4)}
    assert sum(values[f"q_{g}"] for g in range(4)) == pytest.approx(1.0)
    assert values["loss_group_2"] == 0.0  # absent from this batch
    losses = numpy_losses(logits.numpy(), target.numpy())
    assert values["loss_group_0"] == pytest.approx(losses[groups.numpy() == 0].mean(), rel=1e-6)


def test_nonfinite_logits_raise_and_leave_q():
    criterion = GroupDROLoss(NUM_GROUPS)
    logits = torch.zeros(4, 2)
    logits[1, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"logits are not finite: .* got nan at logits\[1, 0\]"):
        criterion(logits, torch.zeros(4, dtype=torch.long), torch.arange(4))
    assert torch.equal(criterion.q, torch.full((4,), 0.25))


@pytest.mark.parametrize("kwargs,message", [
    ({"adjustment": 1.0}, r"group_counts .* is required, got None"),
    ({"adjustment": 1.0, "group_counts": [5, 0, 3, 0]}, r"group\(s\) \[1, 3\] have count 0"),
    ({"group_counts": [5, 3]}, r"group_counts must have shape \(4,\).*got \(2,\)"),
    ({"group_counts": [5, -1, 3, 3]}, r"group_counts must be finite and >= 0"),
    ({"step_size": -0.1}, r"step_size must be a finite number >= 0, got -0.1"),
    ({"adjustment": float("nan"), "group_counts": COUNTS}, r"adjustment must be a finite"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GroupDROLoss(NUM_GROUPS, **kwargs)


def test_group_ids_out_of_range():
    criterion = GroupDROLoss(NUM_GROUPS)
    with pytest.raises(ValueError, match=r"groups must lie in \[0, 4\), got values in \[0, 4\]"):
        criterion(torch.zeros(5, 2), torch.zeros(5, dtype=torch.long), torch.arange(5))
