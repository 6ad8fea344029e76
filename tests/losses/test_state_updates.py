"""Loss state advances only on updating calls: logging calls and gradient accumulation are safe.

Also the review defects around stateful and wrapped losses: the optimizer reset at the anneal
step of a wrapped IRM loss, the wrapped loss's log keys, the unbiased IRM halves at full batch.
"""

from __future__ import annotations

import pytest
import torch

from robustml.data.contract import GroupedTensorDataset
from robustml.losses import (ERMLoss, GroupDROLoss, IRMLoss, IRMPenalty, PenalizedLoss,
                             VRExPenalty)
from robustml.losses.functional import classification_loss
from robustml.train import Trainer, TrainSettings


def _data(scale=1, seed=0):
    counts = [3 * scale, 9 * scale, 5 * scale, 7 * scale]
    n = sum(counts)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=g)
    groups = torch.repeat_interleave(torch.arange(4), torch.tensor(counts))
    return x, y, groups[torch.randperm(n, generator=g)]


def _model():
    torch.manual_seed(0)
    return torch.nn.Linear(5, 3).double()


def test_group_dro_with_gradient_accumulation_equals_the_single_batch_run():
    x, y, groups = _data()
    single, accumulated = _model(), _model()
    loss_single = GroupDROLoss(4, step_size=0.5)
    loss_accumulated = GroupDROLoss(4, step_size=0.5)
    opt_single = torch.optim.SGD(single.parameters(), lr=0.3)
    opt_accumulated = torch.optim.SGD(accumulated.parameters(), lr=0.3)
    micro = [slice(0, 10), slice(10, 13), slice(13, 24)]  # unequal sizes and group mixes
    for _ in range(5):
        opt_single.zero_grad()
        loss_single(single(x), y, groups).backward()
        opt_single.step()
        # The user's loop: one q step on the whole batch, then micro-batch gradients.
        with torch.no_grad():
            loss_accumulated(torch.cat([accumulated(x[m]) for m in micro]), y, groups)
        opt_accumulated.zero_grad()
        for m in micro:
            loss_accumulated(accumulated(x[m]), y[m], groups[m], update=False,
                             batch_counts=loss_accumulated.last_group_counts).backward()
        opt_accumulated.step()
    torch.testing.assert_close(loss_accumulated.q, loss_single.q, rtol=1e-12, atol=1e-12)
    for a, b in zip(accumulated.parameters(), single.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(loss_single.q, torch.full((4,), 0.25, dtype=loss_single.q.dtype))


def test_group_dro_micro_batches_without_batch_counts_would_differ():
    # The normalization matters: local group means do not add up to the batch's loss.
    x, y, groups = _data()
    criterion = GroupDROLoss(4)
    logits = _model()(x)
    whole = criterion(logits, y, groups, update=False)
    parts = [slice(0, 10), slice(10, 24)]
    local = sum(criterion(logits[m], y[m], groups[m], update=False) for m in parts)
    counts = torch.bincount(groups, minlength=4)
    exact = sum(criterion(logits[m], y[m], groups[m], update=False, batch_counts=counts) for m in parts)
    torch.testing.assert_close(exact, whole, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(local, whole)
    with pytest.raises(ValueError, match="batch_counts .* needs update=False"):
        criterion(logits, y, groups, update=True, batch_counts=counts)
    with pytest.raises(ValueError, match=r"batch_counts must have shape \(4,\)"):
        criterion(logits, y, groups, update=False, batch_counts=[1, 2, 3])
    with pytest.raises(ValueError, match="batch_counts must be the group counts of the whole batch"):
        criterion(logits[parts[1]], y[parts[1]], groups[parts[1]], update=False, batch_counts=[0, 0, 0, 0])


def test_a_training_mode_call_for_logging_changes_no_state():
    x, y, groups = _data()
    logits = _model()(x)
    dro = GroupDROLoss(4, step_size=1.0).train()
    dro(logits, y, groups)
    q = dro.q.clone()
    dro(logits, y, groups, update=False)
    assert torch.equal(dro.q, q)
    irm = IRMLoss(4, anneal_steps=1, unbiased=True).train()
    envs = groups
    irm(logits, y, envs=envs)
    value = irm(logits, y, envs=envs, update=False)
    assert int(irm.step) == 1 and int(irm.penalties["irm"].draws) == 1
    assert torch.equal(value, irm(logits, y, envs=envs, update=False))  # same step, same halves


def test_penalty_schedule_advances_once_per_optimizer_step_under_accumulation():
    x, y, groups = _data()
    model = _model()
    criterion = IRMLoss(4, penalty_weight=100.0, anneal_steps=3)
    micro = [slice(0, 12), slice(12, 24)]
    weights, anneal = [], []
    for step in range(5):
        for i, m in enumerate(micro):
            criterion(model(x[m]), y[m], groups[m], update=i == len(micro) - 1)
            weights.append(criterion._last_weights["irm"] if i else criterion.current_weights()["irm"])
        anneal.append(criterion.anneal_reached_now)
    assert int(criterion.step) == 5
    assert weights == [1.0] * 6 + [100.0] * 4  # both micro-batches of a step share its weight
    assert anneal == [False, False, False, True, False]


def test_unbiased_irm_draws_new_halves_at_every_full_batch_step():
    x, y, groups = _data(scale=2)
    with torch.no_grad():
        logits = _model()(x)
    penalty = IRMPenalty(4, unbiased=True).train()
    values = {float(penalty(logits, y, groups)) for _ in range(6)}
    assert len(values) == 6  # the same full batch, six different splits
    penalty.eval()
    assert float(penalty(logits, y, groups)) == float(penalty(logits, y, groups))
    assert int(penalty.draws) == 6


def test_wrapped_irm_logs_both_base_losses_under_distinct_keys():
    x, y, groups = _data()
    with torch.no_grad():
        logits = _model()(x)
    irm = IRMLoss(4, penalty_weight=10.0)
    wrapped = PenalizedLoss(4, irm, {"vrex": VRExPenalty(4)}, weights={"vrex": 2.0}, rescale=False)
    total = wrapped(logits, y, groups)
    values = wrapped.log_values()
    assert {"loss_base", "base_loss_base", "penalty_irm", "weight_irm", "penalty_vrex",
            "weight_vrex"} <= set(values)
    mean = float(classification_loss(logits, y).mean())
    assert values["base_loss_base"] == pytest.approx(mean)
    irm_value = (mean + 10.0 * values["penalty_irm"]) / 10.0
    assert values["loss_base"] == pytest.approx(irm_value)
    assert float(total) == pytest.approx(irm_value + 2.0 * values["penalty_vrex"])


def _grouped(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    attr = torch.randint(0, 2, (n,), generator=g)
    return GroupedTensorDataset(x, y, attr, num_classes=2, attr_names=("a", "b"),
                                env=attr.clone(), env_names=("e0", "e1"))


def test_optimizer_reset_at_anneal_fires_for_an_irm_loss_inside_a_wrapper(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    inner = IRMLoss(2, penalty_weight=10.0, anneal_steps=2)
    criterion = PenalizedLoss(2, inner, {"vrex": VRExPenalty(2)}, weights={"vrex": 1.0})
    settings = TrainSettings(max_steps=4, eval_every=4, progress=False,
                             reset_optimizer_at_anneal=True)
    Trainer(model, criterion, optimizer, _grouped(), _grouped(seed=1), settings, run_dir=tmp_path,
            partition="env").fit()
    # Adam's step count restarted at the anneal step (the third step): steps 3 and 4 remain.
    assert int(optimizer.state[model.weight]["step"]) == 2
    assert not criterion.anneal_reached_now and int(inner.step) == 4
