"""trainer.max_grad_norm: the gradient's total norm is clipped before each optimizer step."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from robustml.losses import ERMLoss
from robustml.models import MLP
from robustml.models.forward import SlowPrecisionWarning, autocast_supported
from robustml.train import Trainer, TrainSettings
from support import toy_env_dataset


def _trainer(tmp_path, **settings):
    torch.manual_seed(0)
    model = MLP((2, 3, 3), 1, hidden_dims=(8,))
    options = dict(max_steps=4, eval_every=4, progress=False, batch_size=16, **settings)
    return Trainer(model, ERMLoss(4), torch.optim.SGD(model.parameters(), lr=0.5),
                   toy_env_dataset(64), toy_env_dataset(32, seed=1), TrainSettings(**options),
                   run_dir=tmp_path)


def test_one_clipped_sgd_step_equals_the_hand_computed_one(tmp_path):
    trainer = _trainer(tmp_path, max_grad_norm=0.05)
    batch = next(trainer.batches)
    model = trainer.model
    before = [p.detach().clone() for p in model.parameters()]
    # The reference: the mean BCE's gradient, scaled by max_norm / norm (torch adds 1e-6).
    loss = F.binary_cross_entropy_with_logits(model(batch["x"])[:, 0], batch["y"].float())
    grads = torch.autograd.grad(loss, list(model.parameters()))
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    assert norm > 0.05  # the clip is active
    factor = 0.05 / (norm + 1e-6)
    trainer._train_step(batch)
    for p, p0, g in zip(model.parameters(), before, grads):
        torch.testing.assert_close(p.detach(), p0 - 0.5 * factor * g, rtol=1e-5, atol=1e-7)


def test_clipping_applies_to_the_accumulated_gradient(tmp_path):
    runs = []
    for accumulate in (1, 4):
        trainer = _trainer(tmp_path / str(accumulate), max_grad_norm=0.05, accumulate=accumulate)
        for _ in range(3):
            trainer._train_step(next(trainer.batches))
        runs.append([p.detach() for p in trainer.model.parameters()])
    for p, q in zip(*runs):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not autocast_supported("cpu", "fp16"), reason="no float16 autocast on this CPU build")
def test_fp16_clips_the_unscaled_gradient(tmp_path):
    # Clipping the scaled gradient (65,536 times the true one) would shrink every step ~1e5-fold.
    trained = {}
    for precision in ("fp32", "fp16"):
        trainer = _trainer(tmp_path / precision, max_grad_norm=0.05, precision=precision)
        before = [p.detach().clone() for p in trainer.model.parameters()]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SlowPrecisionWarning)  # fp16 on a CPU: slow, warned once
            trainer._train_step(next(trainer.batches))
        trained[precision] = torch.cat([(p.detach() - b).flatten()
                                        for p, b in zip(trainer.model.parameters(), before)])
    assert trainer._step.skipped_steps == 0
    torch.testing.assert_close(trained["fp16"], trained["fp32"], rtol=0.05, atol=1e-4)


@pytest.mark.parametrize("value", [0.0, -1.0])
def test_a_norm_that_is_not_positive_is_refused(value):
    with pytest.raises(ValueError, match="max_grad_norm must be a"):
        TrainSettings(max_steps=1, max_grad_norm=value)
