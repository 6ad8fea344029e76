"""Hostile input to the per-group metrics; well-formed input checked against a numpy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hostile import DEVICES, FAST, id_lists, outcome
from robustml.metrics import GroupAccuracy, group_accuracy, per_group_counts

CORRUPTIONS = {
    "preds": ["float", "list", "two_dim", "int32"],
    "target": ["float", "int32", "length"],
    "groups": ["float", "int32", "too_large", "negative", "length", "bool"],
    "num_groups": ["zero", "bool", "fraction", "string"],
    "train_counts": ["length", "negative", "nan", "string", "all_zero"],
}


def corrupt(args: dict, bad: str, how: str) -> dict:
    """Return ``args`` with argument ``bad`` made malformed in the way ``how`` names."""
    out = dict(args)
    value = out[bad]
    if bad == "num_groups":
        out[bad] = {"zero": 0, "bool": True, "fraction": value + 0.5, "string": str(value)}[how]
        return out
    if bad == "train_counts":
        counts = list(value)
        out[bad] = {"length": counts + [1.0], "negative": [-1.0] + counts[1:],
                    "nan": [math.nan] + counts[1:], "string": "many",
                    "all_zero": [0.0] * len(counts)}[how]
        return out
    n = value.shape[0]
    changed = {"float": lambda: value.float(), "list": lambda: value.tolist(),
               "two_dim": lambda: value[:, None], "int32": lambda: value.int(),
               "length": lambda: torch.cat([value, value.new_zeros(1)]),
               "too_large": lambda: torch.full_like(value, args["num_groups"]),
               "negative": lambda: value - 1 - int(value.max()) if n else value - 1,
               "bool": lambda: value > 0}[how]()
    out[bad] = changed
    return out


@st.composite
def metric_args(draw: st.DrawFn, device: str) -> tuple[dict, str | None]:
    """Draw ``(arguments of group_accuracy, name of the corrupted argument or None)``."""
    n, num_groups, num_classes = draw(st.integers(0, 9)), draw(st.integers(1, 5)), 3
    args = {"preds": torch.tensor(draw(id_lists(n, num_classes)), dtype=torch.long, device=device),
            "target": torch.tensor(draw(id_lists(n, num_classes)), dtype=torch.long,
                                   device=device),
            "groups": torch.tensor(draw(id_lists(n, num_groups)), dtype=torch.long, device=device),
            "num_groups": num_groups,
            "train_counts": draw(st.lists(st.integers(0, 50), min_size=num_groups,
                                          max_size=num_groups).filter(any))}
    bad = draw(st.sampled_from([None, *CORRUPTIONS]))
    if bad is not None:
        how = draw(st.sampled_from(CORRUPTIONS[bad]))
        if n == 0 and bad == "groups" and how in ("too_large", "negative"):
            how = "float"  # an empty id array holds no value to be out of range
        args = corrupt(args, bad, how)
    return args, bad


def reference(preds, target, groups, num_groups, train_counts) -> dict:
    """Per-group, worst-group and averaged accuracy computed directly with numpy."""
    preds, target, groups = (np.asarray(t.cpu()) for t in (preds, target, groups))
    accs = [float(np.mean(preds[groups == g] == target[groups == g])) if (groups == g).any()
            else math.nan for g in range(num_groups)]
    present = [g for g in range(num_groups) if not math.isnan(accs[g])]
    weights = np.asarray(train_counts, dtype=float)[present]
    return {"accs": accs, "worst": min((accs[g] for g in present), default=math.nan),
            "avg": float(np.mean(preds == target)) if preds.size else math.nan,
            "weighted": (float(np.dot(weights, [accs[g] for g in present]) / weights.sum())
                         if weights.sum() > 0 else math.nan)}


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@FAST
@given(data=st.data())
def test_group_accuracy_takes_any_layout_or_names_the_bad_argument(device, data):
    args, bad = data.draw(metric_args(device))
    result = outcome(group_accuracy, args["preds"], args["target"], args["groups"],
                     num_groups=args["num_groups"], train_counts=args["train_counts"], bad=bad)
    if result is None:
        return
    expected = reference(**args)
    for g, acc in enumerate(expected["accs"]):
        assert same(result[f"acc_group_{g}"], acc)
    assert same(result["acc_worst_group"], expected["worst"])
    assert same(result["acc_avg"], expected["avg"])
    assert same(result["acc_weighted_avg"], expected["weighted"])
    # The accumulator over two halves of the batch gives the same result.
    meter = GroupAccuracy(args["num_groups"], train_counts=args["train_counts"]).to(device)
    half = args["preds"].shape[0] // 2
    for part in (slice(0, half), slice(half, None)):
        meter.update(args["preds"][part], args["target"][part], args["groups"][part])
    assert all(same(meter.compute()[key], value) for key, value in result.items())


@FAST
@given(groups=st.lists(st.integers(-2, 5), max_size=8), num_groups=st.integers(1, 4),
       dtype=st.sampled_from([torch.int64, torch.int32, torch.uint8, torch.float32]))
def test_per_group_counts_counts_or_names_groups(groups, num_groups, dtype):
    ids = np.asarray(groups, dtype=np.int64)
    bad = None if (dtype != torch.float32 and ((ids >= 0) & (ids < num_groups)).all()) else "groups"
    if dtype == torch.uint8 and (ids < 0).any():
        return  # uint8 cannot hold the negative ids drawn
    counts = outcome(per_group_counts, torch.tensor(groups, dtype=dtype), num_groups=num_groups, bad=bad)
    if counts is not None:
        assert counts.tolist() == np.bincount(ids, minlength=num_groups).tolist()
