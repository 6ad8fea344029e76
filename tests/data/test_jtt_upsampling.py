"""JTT's error set and its duplication counts: in the order, and in what the trainer really sees."""

from __future__ import annotations

import pytest
import torch

from robustml.data.contract import GroupedTensorDataset
from robustml.losses import ERMLoss
from robustml.data.samplers import UpsampledOrder, upsampled_indices, upweight_loss_weights
from robustml.groups import error_set
from robustml.models import MLP
from robustml.train import Trainer, TrainSettings


def test_error_set_is_the_misclassified_examples():
    preds = torch.tensor([0, 1, 1, 0, 1, 0])
    y = torch.tensor([0, 0, 1, 1, 1, 1])
    assert error_set(preds, y).tolist() == [1, 3, 5]
    assert error_set(y, y).numel() == 0


def test_each_error_example_occurs_one_plus_lambda_up_times_per_epoch():
    errors = torch.tensor([2, 5, 6])
    counts = torch.bincount(upsampled_indices(8, errors, lambda_up=4), minlength=8)
    assert counts.tolist() == [1, 1, 5, 1, 1, 5, 5, 1]
    order = UpsampledOrder(8, errors, lambda_up=4)
    drawn = order(torch.Generator().manual_seed(0))
    assert order.epoch_size == 8 + 4 * 3 == drawn.numel()
    assert torch.bincount(drawn, minlength=8).tolist() == counts.tolist()
    assert upweight_loss_weights(8, errors, lambda_up=4).tolist() == counts.float().tolist()


def test_the_trainer_sees_each_error_example_one_plus_lambda_up_times_per_epoch(tmp_path):
    n, batch_size, lambda_up = 30, 7, 3
    gen = torch.Generator().manual_seed(0)
    data = GroupedTensorDataset(torch.randn(n, 4, generator=gen), torch.randint(0, 2, (n,), generator=gen),
                                torch.randint(0, 2, (n,), generator=gen), num_classes=2,
                                attr_names=("a", "b"))
    errors = torch.tensor([0, 4, 9, 29])
    order = UpsampledOrder(n, errors, lambda_up=lambda_up)
    epoch = -(-order.epoch_size // batch_size)
    trainer = Trainer(MLP((4,), 1, hidden_dims=(4,)), ERMLoss(4),
                      torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1), data, data,
                      TrainSettings(max_steps=2 * epoch, batch_size=batch_size, progress=False),
                      run_dir=tmp_path, sampler=order, epoch_size=order.epoch_size)
    batches = trainer.batches
    for _ in range(2):
        seen = torch.cat([next(batches)["index"].cpu() for _ in range(epoch)])
        expected = torch.ones(n, dtype=torch.int64)
        expected[errors] += lambda_up
        assert torch.bincount(seen, minlength=n).tolist() == expected.tolist()
    assert trainer.position == (2, 0)


@pytest.mark.parametrize("errors,lambda_up,error,match", [
    (torch.tensor([0, 8]), 2, ValueError, r"must index the 8 training examples"),
    (torch.tensor([0.0]), 2, ValueError, "int64"),
    (torch.tensor([1]), -1, ValueError, "lambda_up must be an integer >= 0"),
    (torch.tensor([1]), 1.5, TypeError, "lambda_up must be an integer >= 0"),
])
def test_bad_error_sets_and_lambda_up_are_named(errors, lambda_up, error, match):
    with pytest.raises(error, match=match):
        upsampled_indices(8, errors, lambda_up=lambda_up)


def test_full_batch_loss_weights_equal_a_step_on_the_duplicated_training_set():
    """The README's claim: with the full batch, upweight=loss is duplication exactly."""
    n, lambda_up = 40, 4
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 5, generator=gen), torch.randint(0, 2, (n,), generator=gen)
    errors = torch.tensor([1, 7, 20])
    torch.manual_seed(0)
    model = MLP((5,), 1, hidden_dims=(6,))
    grads = []
    upsampled = upsampled_indices(n, errors, lambda_up=lambda_up)
    for batch_x, batch_y, weight in ((x, y, upweight_loss_weights(n, errors, lambda_up=lambda_up)),
                                     (x[upsampled], y[upsampled], None)):
        model.zero_grad()
        extra = {} if weight is None else {"weight": weight}
        ERMLoss(1)(model(batch_x), batch_y, torch.zeros(batch_x.shape[0], dtype=torch.int64), **extra).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    assert upsampled.numel() == n + lambda_up * errors.numel()
    for weighted, duplicated in zip(*grads):
        torch.testing.assert_close(weighted, duplicated)
