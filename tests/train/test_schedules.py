"""Learning-rate schedules: the values of each step against hand-computed ones and transformers'."""

from __future__ import annotations

import pytest
import torch

from robustml.train.schedules import warmup_cosine, warmup_linear


def _lrs(make, steps: int, lr: float = 0.1) -> list[float]:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    schedule = make(optimizer)
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return out


def test_linear_warmup_then_linear_decay_to_zero_by_hand():
    # total 10, warm-up 4: steps 0-3 rise as s/4, then (10 - s) / 6 down to 1/6 at step 9.
    lrs = _lrs(lambda opt: warmup_linear(opt, total_steps=10, warmup_steps=4), 10, lr=0.6)
    expected = [0.0, 0.15, 0.3, 0.45, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    assert lrs == pytest.approx(expected, abs=1e-12)
    # No warm-up (the papers' BERT runs): lr * (T - s) / T.
    assert _lrs(lambda opt: warmup_linear(opt, total_steps=4), 4, lr=2e-5) == \
        pytest.approx([2e-5, 1.5e-5, 1e-5, 0.5e-5], abs=1e-15)


@pytest.mark.parametrize("warmup", [0, 3])
def test_linear_schedule_equals_transformers_get_linear_schedule_with_warmup(warmup):
    from robustml.models.pretrained import import_transformers
    reference = import_transformers().get_linear_schedule_with_warmup
    ours = _lrs(lambda opt: warmup_linear(opt, total_steps=12, warmup_steps=warmup), 12)
    theirs = _lrs(lambda opt: reference(opt, num_warmup_steps=warmup, num_training_steps=12), 12)
    assert ours == pytest.approx(theirs, abs=1e-12)


@pytest.mark.parametrize("make", [warmup_linear, warmup_cosine])
def test_warmup_outside_the_run_is_refused(make):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match=r"warmup_steps must be in \[0, total_steps=5\), got 5"):
        make(optimizer, total_steps=5, warmup_steps=5)
