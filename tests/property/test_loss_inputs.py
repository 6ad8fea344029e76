"""Hostile input to every robust loss: random shapes, group layouts, values, dtypes and devices.

Each example is a well-formed batch (``N`` from 1, ``C`` in 1-3, groups laid out in one group, a
few or any, logits of scale 1 or 1e4, float32/float64/bfloat16) with at most one argument
corrupted. Well-formed input gives a finite scalar loss with finite gradients; a corrupted
argument raises ``ValueError``/``TypeError`` naming it (:func:`hostile.outcome`).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hostile import DEVICES, FAST, FLOAT_DTYPES, id_lists, outcome, seeded_normal
from robustml.losses import ERMLoss, GroupDROLoss, IRMLoss, IRMPenalty, PenalizedLoss, VRExLoss

LOSSES = {
    "erm": lambda g: ERMLoss(g),
    "group_dro": lambda g: GroupDROLoss(g, step_size=0.01),
    "irm": lambda g: IRMLoss(g, penalty_weight=91257.19, anneal_steps=0),
    "irm_unbiased": lambda g: IRMLoss(g, penalty_weight=100.0, unbiased=True),
    "vrex": lambda g: VRExLoss(g, penalty_weight=1e4),
    "group_dro_plus_irm": lambda g: PenalizedLoss(g, GroupDROLoss(g, step_size=0.01),
                                                  {"irm": IRMPenalty(g)}, weights={"irm": 10.0}),
}
ENVIRONMENT_LOSSES = {"irm", "irm_unbiased", "vrex", "group_dro_plus_irm"}

CORRUPTIONS = {
    "logits": ["nan", "inf", "one_dim", "integer", "list", "no_rows"],
    "target": ["float", "int32", "too_large", "negative", "length", "two_dim", "list"],
    "groups": ["float", "int32", "too_large", "negative", "length", "list"],
    "weight": ["negative", "nan", "length", "integer", "all_zero"],
}


def corrupt(inputs: dict, bad: str, how: str, position: int) -> dict:
    """Return ``inputs`` with argument ``bad`` made malformed in the way ``how`` names."""
    out = dict(inputs)
    value = out.get(bad, torch.ones(inputs["logits"].shape[0], dtype=torch.float64,
                                    device=inputs["logits"].device))
    n = value.shape[0]
    if how in ("nan", "inf") and bad == "logits":
        value = value.clone()
        value[position % n, 0] = float(how)
    elif how == "nan":
        value = value.clone()
        value[position % n] = float("nan")
    elif how == "one_dim":
        value = value[:, 0]
    elif how == "integer":
        value = value.long()
    elif how == "list":
        value = value.tolist()
    elif how == "no_rows":
        out["target"], out["groups"] = out["target"][:0], out["groups"][:0]
        value = value[:0]
    elif how == "float":
        value = value.float()
    elif how == "int32":
        value = value.int()
    elif how == "too_large":
        upper = max(inputs["logits"].shape[1], 2) if bad == "target" else inputs["num_groups"]
        value = value.clone()
        value[position % n] = upper
    elif how == "negative":
        value = value.clone()
        value[position % n] = -1
    elif how == "length":
        value = torch.cat([value, value[:1]])
    elif how == "two_dim":
        value = value[:, None]
    elif how == "all_zero":
        value = torch.zeros_like(value)
    out[bad] = value
    return out


@st.composite
def batches(draw: st.DrawFn, device: str) -> tuple[str, dict, str | None]:
    """Draw ``(loss name, inputs, name of the corrupted argument or None)``."""
    name = draw(st.sampled_from(sorted(LOSSES)))
    n, c = draw(st.integers(1, 7)), draw(st.sampled_from([1, 2, 3]))
    num_groups = draw(st.integers(1, 4))
    scale = draw(st.sampled_from([1.0, 1e4]))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    inputs = {
        "logits": seeded_normal(draw(st.integers(0, 2**16)), (n, c), scale=scale, dtype=dtype,
                                device=device),
        "target": torch.tensor(draw(id_lists(n, max(c, 2))), device=device),
        "groups": torch.tensor(draw(id_lists(n, num_groups)), device=device),
        "num_groups": num_groups,
    }
    if draw(st.booleans()):
        inputs["weight"] = torch.rand(n, generator=torch.Generator().manual_seed(n),
                                      dtype=torch.float64).add(0.1).to(device)
    bad = draw(st.sampled_from([None, *CORRUPTIONS]))
    if bad is not None:
        inputs = corrupt(inputs, bad, draw(st.sampled_from(CORRUPTIONS[bad])),
                         draw(st.integers(0, 6)))
    return name, inputs, bad


def environment_problem(name: str, groups: torch.Tensor) -> bool:
    """Return whether a well-formed batch lacks what an environment loss needs (named: groups)."""
    if name not in ENVIRONMENT_LOSSES:
        return False
    counts = torch.bincount(groups)
    present = counts[counts > 0]
    return present.numel() < 2 or (name == "irm_unbiased" and bool((present < 2).any()))


@pytest.mark.parametrize("device", DEVICES)
@FAST
@given(data=st.data())
def test_losses_take_any_batch_or_name_the_bad_argument(device, data):
    name, inputs, bad = data.draw(batches(device))
    criterion = LOSSES[name](inputs.pop("num_groups")).to(device)
    logits = inputs.pop("logits")
    if isinstance(logits, torch.Tensor) and logits.is_floating_point():
        logits = logits.detach().requires_grad_()
    if bad is None and environment_problem(name, inputs["groups"]):
        bad = "groups"
    loss = outcome(criterion, logits, inputs.pop("target"), inputs.pop("groups"), bad=bad,
                   **inputs)
    if loss is None:
        return
    assert loss.shape == () and bool(torch.isfinite(loss)), loss
    loss.backward()
    assert bool(torch.isfinite(logits.grad).all())
    q = getattr(criterion, "q", None)
    if q is not None:
        assert bool(torch.isfinite(q).all()) and float(q.sum()) == pytest.approx(1.0, abs=1e-5)
