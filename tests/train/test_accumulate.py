"""trainer.accumulate=K: K micro-batches per optimizer step give the batch's step.

ERM, reweighting and Group DRO are checked against K = 1 (losses, parameters after several
steps, Group DRO's q) and against a hand-written SGD step on the whole batch (the loss written
out with torch.nn.functional, and Group DRO's Algorithm 1 transcribed); IRM's per-micro-batch
penalty against the same loss called on each micro-batch.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from support import toy_env_dataset
from robustml.losses import ERMLoss, GroupDROLoss, IRMLoss
from robustml.losses.consistency import CounterfactualConsistencyPenalty
from robustml.models import MLP
from robustml.pipeline.instantiate import config_keys
from robustml.train import Trainer, TrainSettings
from robustml.train.step import split_batch

TOLERANCE = dict(rtol=1e-5, atol=1e-6)


def _trainer(tmp_path, criterion=None, *, optimizer="adam", partition="group",
             sample_weights=None, **settings):
    torch.manual_seed(0)
    model = MLP((2, 3, 3), 1, hidden_dims=(8,))
    make = {"adam": lambda p: torch.optim.Adam(p, lr=0.01), "sgd": lambda p: torch.optim.SGD(p, lr=0.5)}
    defaults = dict(max_steps=6, eval_every=3, progress=False)
    defaults.update(settings)
    return Trainer(model, criterion or ERMLoss(4), make[optimizer](model.parameters()),
                   toy_env_dataset(64), toy_env_dataset(32, seed=1), TrainSettings(**defaults),
                   run_dir=tmp_path, partition=partition, sample_weights=sample_weights)


def _losses_and_trainer(tmp_path, steps=6, **kwargs):
    trainer = _trainer(tmp_path, **kwargs)
    losses = [trainer._train_step(next(trainer.batches)) for _ in range(steps)]
    return losses, trainer


def _assert_same_run(a, b):
    (losses_a, trainer_a), (losses_b, trainer_b) = a, b
    torch.testing.assert_close(torch.tensor(losses_a), torch.tensor(losses_b), **TOLERANCE)
    for p, q in zip(trainer_a.model.parameters(), trainer_b.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)  # after 6 Adam steps


@pytest.mark.parametrize("batch_size", [16, None])  # mini-batches (4 per epoch), the full batch
def test_erm_with_four_micro_batches_trains_as_one_batch(tmp_path, batch_size):
    one = _losses_and_trainer(tmp_path / "one", batch_size=batch_size)
    four = _losses_and_trainer(tmp_path / "four", batch_size=batch_size, accumulate=4)
    _assert_same_run(one, four)


def test_reweighted_erm_with_micro_batches_trains_as_one_batch(tmp_path):
    weights = torch.rand(64, generator=torch.Generator().manual_seed(3)) + 0.1
    one = _losses_and_trainer(tmp_path / "one", batch_size=16, sample_weights=weights)
    four = _losses_and_trainer(tmp_path / "four", batch_size=16, sample_weights=weights, accumulate=4)
    _assert_same_run(one, four)


@pytest.mark.parametrize("weighted", [False, True])
def test_group_dro_with_micro_batches_steps_q_once_on_the_whole_batch(tmp_path, weighted):
    def dro():
        return GroupDROLoss(4, step_size=0.5)

    weights = torch.rand(64, generator=torch.Generator().manual_seed(4)) + 0.1 if weighted else None
    one = _losses_and_trainer(tmp_path / "one", batch_size=16, criterion=dro(), sample_weights=weights)
    four = _losses_and_trainer(tmp_path / "four", batch_size=16, criterion=dro(), accumulate=4,
                               sample_weights=weights)
    _assert_same_run(one, four)
    q_one, q_four = one[1].criterion.q, four[1].criterion.q
    assert (q_one - 0.25).abs().max() > 1e-3  # q moved
    torch.testing.assert_close(q_four, q_one, **TOLERANCE)


def _reference_grad_step(model, loss_fn, batch, lr=0.5):
    """Return the parameters after one plain SGD step on ``loss_fn(model(x))`` over the whole batch."""
    model = copy.deepcopy(model)
    loss = loss_fn(model(batch["x"]))
    grads = torch.autograd.grad(loss, list(model.parameters()))
    return [p.detach() - lr * g for p, g in zip(model.parameters(), grads)], loss.item()


def test_one_accumulated_step_equals_a_hand_written_step_on_the_whole_batch(tmp_path):
    trainer = _trainer(tmp_path, optimizer="sgd", batch_size=32, accumulate=4)
    batch = next(trainer.batches)
    y = batch["y"].float().unsqueeze(1)
    expected, expected_loss = _reference_grad_step(
        trainer.model, lambda logits: F.binary_cross_entropy_with_logits(logits, y), batch)
    assert trainer._train_step(batch) == pytest.approx(expected_loss, rel=1e-6)
    for p, q in zip(trainer.model.parameters(), expected):
        torch.testing.assert_close(p.detach(), q, **TOLERANCE)


def test_group_dro_accumulated_step_equals_algorithm_one_transcribed(tmp_path):
    # Sagawa et al. 2020, Algorithm 1: q_g <- q_g exp(eta L_g), normalized; then a gradient step
    # on sum_g q_g L_g with the new q, all on the whole batch.
    eta = 0.5
    trainer = _trainer(tmp_path, GroupDROLoss(4, step_size=eta), optimizer="sgd", batch_size=32,
                       accumulate=4)
    batch = next(trainer.batches)
    y, g = batch["y"].float().unsqueeze(1), batch["group"]
    with torch.no_grad():
        per_example = F.binary_cross_entropy_with_logits(trainer.model(batch["x"]), y,
                                                         reduction="none").squeeze(1)
        group_loss = torch.stack([per_example[g == k].mean() for k in range(4)])
    q = torch.full((4,), 0.25) * torch.exp(eta * group_loss)
    q = q / q.sum()

    def dro_loss(logits):
        losses = F.binary_cross_entropy_with_logits(logits, y, reduction="none").squeeze(1)
        return sum(q[k] * losses[g == k].mean() for k in range(4))

    expected, expected_loss = _reference_grad_step(trainer.model, dro_loss, batch)
    assert trainer._train_step(batch) == pytest.approx(expected_loss, rel=1e-6)
    torch.testing.assert_close(trainer.criterion.q, q, **TOLERANCE)
    for p, r in zip(trainer.model.parameters(), expected):
        torch.testing.assert_close(p.detach(), r, **TOLERANCE)


def test_irm_penalizes_each_micro_batch_and_advances_its_schedule_once_per_step(tmp_path):
    criterion = IRMLoss(2, penalty_weight=100.0, anneal_steps=2)
    trainer = _trainer(tmp_path, criterion, partition="env", batch_size=32, accumulate=2)
    reference = copy.deepcopy(criterion)
    for step in range(3):
        batch = next(trainer.batches)
        model = copy.deepcopy(trainer.model)
        with torch.no_grad():
            expected = sum(reference(model(part["x"]), part["y"], part["env"], update=False) / 2
                           for part in split_batch(batch, 2))
        reference.step += 1  # the schedule of one optimizer step
        assert trainer._train_step(batch) == pytest.approx(expected.item(), rel=1e-5)
        assert int(trainer.criterion.step) == step + 1
    assert trainer.criterion.current_weights() == {"irm": 100.0}  # annealed at step 2


def test_split_batch_keeps_rows_together_and_covers_the_batch():
    batch = {"x": torch.arange(10.0).reshape(5, 2), "y": torch.arange(5), "scalar": torch.tensor(3)}
    parts = split_batch(batch, 2)
    assert [p["y"].tolist() for p in parts] == [[0, 1, 2], [3, 4]]
    assert torch.equal(torch.cat([p["x"] for p in parts]), batch["x"])
    assert all(p["scalar"] is batch["scalar"] for p in parts)


def test_a_short_last_batch_with_fewer_rows_than_micro_batches_still_steps(tmp_path):
    # 64 examples in batches of 60: the second batch of each epoch holds 4 rows for 6 micro-batches.
    trainer = _trainer(tmp_path, batch_size=60, accumulate=6, max_steps=4, eval_every=2)
    assert trainer.fit()["steps"] == 4


@pytest.mark.parametrize("settings,match", [
    (dict(batch_size=16, accumulate=3),
     r"accumulate must divide batch_size=16 .*divisor of 16.*got accumulate=3"),
    (dict(batch_size=16, accumulate=0), "accumulate must be"),
])
def test_bad_accumulate_values_are_named_with_what_was_expected(tmp_path, settings, match):
    with pytest.raises(ValueError, match=match):
        TrainSettings(max_steps=2, **settings)


def test_the_config_error_names_trainer_accumulate():
    with pytest.raises(ValueError, match=r"trainer\.accumulate must divide trainer\.batch_size=16 "
                                          r".*got trainer\.accumulate=3"):
        with config_keys():
            TrainSettings(max_steps=2, batch_size=16, accumulate=3)


def test_a_loss_comparing_rows_across_the_batch_is_refused_with_accumulation(tmp_path):
    with pytest.raises(ValueError, match="accumulate=2 splits each batch.*expected accumulate=1"):
        _trainer(tmp_path, CounterfactualConsistencyPenalty(4), batch_size=16, accumulate=2)


def test_only_the_final_micro_batch_synchronizes_gradients(tmp_path, monkeypatch):
    from contextlib import nullcontext

    from robustml.train import distributed

    entered = []
    monkeypatch.setattr(distributed, "no_sync", lambda forward: entered.append(forward) or nullcontext())
    trainer = _trainer(tmp_path, batch_size=16, accumulate=4)
    trainer._train_step(next(trainer.batches))
    assert len(entered) == 3  # micro-batches 1-3 inside no_sync(), the 4th all-reduces


def test_no_sync_is_ddp_s_own_outside_a_process_group_nothing():
    from contextlib import nullcontext

    from robustml.train.distributed import no_sync

    assert isinstance(no_sync(lambda x: x), nullcontext)
