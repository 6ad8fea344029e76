"""PenalizedLoss: schedule, rescaling, step buffer, partial completion, argument checks."""

import functools

import pytest
import torch

from robustml.losses import ERMLoss, GroupDROLoss, IRMPenalty, PenalizedLoss, VRExPenalty
from robustml.losses.functional import classification_loss, mean_irm_penalty, vrex_penalty


def make_batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(12, 3, generator=generator, dtype=torch.float64)
    target = torch.randint(0, 3, (12,), generator=generator)
    return logits, target, torch.arange(12) % 3


def make_loss(**options):
    defaults = {"weights": {"irm": 10.0, "vrex": 0.5}, "anneal_steps": {"irm": 2, "vrex": 0}}
    return PenalizedLoss(3, ERMLoss(3), {"irm": IRMPenalty(3), "vrex": VRExPenalty(3)},
                         **{**defaults, **options})


def test_schedule_rescale_and_anneal_flag():
    logits, target, groups = make_batch()
    base = classification_loss(logits, target).mean()
    irm, vrex = mean_irm_penalty(logits, target, groups), vrex_penalty(logits, target, groups)
    criterion = make_loss(warmup_weight=0.25)
    expected_weights = [(0.25, 0.5), (0.25, 0.5), (10.0, 0.5), (10.0, 0.5)]
    for step, (w_irm, w_vrex) in enumerate(expected_weights):
        assert criterion.current_weights() == {"irm": w_irm, "vrex": w_vrex}
        value = criterion(logits, target, groups)
        scale = 1 / w_irm if w_irm > 1 else 1.0
        torch.testing.assert_close(value, scale * (base + w_irm * irm + w_vrex * vrex))
        assert criterion.loss_scale == scale
        assert criterion.anneal_reached_now == (step == 2)
        assert int(criterion.step) == step + 1
    assert criterion.log_values() == pytest.approx({
        "loss_base": float(base), "penalty_irm": float(irm), "penalty_vrex": float(vrex),
        "weight_irm": 10.0, "weight_vrex": 0.5})


def test_no_rescale_and_zero_anneal():
    logits, target, groups = make_batch()
    criterion = make_loss(anneal_steps=0, rescale=False)
    value = criterion(logits, target, groups)
    expected = (classification_loss(logits, target).mean()
                + 10.0 * mean_irm_penalty(logits, target, groups)
                + 0.5 * vrex_penalty(logits, target, groups))
    torch.testing.assert_close(value, expected)
    assert criterion.loss_scale == 1.0
    assert not criterion.anneal_reached_now  # anneal step 0 is not an event


def test_eval_and_state_dict_keep_the_schedule():
    logits, target, groups = make_batch()
    criterion = make_loss()
    criterion(logits, target, groups)
    criterion(logits, target, groups)
    criterion.eval()
    criterion(logits, target, groups)
    assert int(criterion.step) == 2
    resumed = make_loss()
    resumed.load_state_dict(criterion.state_dict())
    assert resumed.current_weights() == {"irm": 10.0, "vrex": 0.5}
    resumed(logits, target, groups)
    assert resumed.anneal_reached_now and resumed.loss_scale == 0.1


def test_base_log_values_are_included():
    logits, target, groups = make_batch()
    criterion = PenalizedLoss(3, GroupDROLoss(3, step_size=1.0), {"vrex": VRExPenalty(3)},
                              weights={"vrex": 2.0})
    criterion(logits, target, groups)
    values = criterion.log_values()
    assert {"q_0", "loss_group_2", "penalty_vrex", "weight_vrex", "loss_base"} <= set(values)
    assert values["q_0"] == pytest.approx(float(criterion.base.q[0]))


def test_partials_are_completed_with_num_groups():
    criterion = PenalizedLoss(4, functools.partial(ERMLoss),
                              {"irm": functools.partial(IRMPenalty, unbiased=True)},
                              weights={"irm": 1.0})
    assert criterion.base.num_groups == 4 and criterion.penalties["irm"].num_groups == 4
    assert criterion.penalties["irm"].unbiased


@pytest.mark.parametrize("options,error,message", [
    ({"weights": {"irm": 1.0}}, ValueError,
     r"weights must have one entry per penalty, keys \['irm', 'vrex'\], got keys \['irm'\]"),
    ({"anneal_steps": {"irm": 1, "other": 2}}, ValueError, r"anneal_steps must have one entry"),
    ({"anneal_steps": -1}, ValueError, r"anneal_steps\['irm'\] must be an integer >= 0, got -1"),
    ({"anneal_steps": 1.5}, ValueError, r"must be an integer >= 0, got 1.5"),
    ({"weights": {"irm": -1.0, "vrex": 1.0}}, ValueError, r"weights\['irm'\] must be a finite"),
    ({"warmup_weight": float("inf")}, ValueError, r"warmup_weight must be a finite number"),
])
def test_bad_options(options, error, message):
    with pytest.raises(error, match=message):
        make_loss(**options)


def test_bad_parts():
    with pytest.raises(ValueError, match=r"penalties\['irm'\] was built with num_groups=2, but "
                                         r"the penalized loss has num_groups=3"):
        PenalizedLoss(3, ERMLoss(3), {"irm": IRMPenalty(2)}, weights={"irm": 1.0})
    with pytest.raises(TypeError, match="base must be a robustml GroupLoss, got Linear"):
        PenalizedLoss(3, torch.nn.Linear(2, 2), {"irm": IRMPenalty(3)}, weights={"irm": 1.0})
    with pytest.raises(TypeError, match=r"penalties\['irm'\] must be an nn.Module or a callable"):
        PenalizedLoss(3, ERMLoss(3), {"irm": 1.0}, weights={"irm": 1.0})
    with pytest.raises(ValueError, match="penalties must name at least one penalty"):
        PenalizedLoss(3, ERMLoss(3), {}, weights={})
