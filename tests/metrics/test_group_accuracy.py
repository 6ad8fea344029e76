"""Tests for robustml.metrics: the functional, the stateful meter and their agreement."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from robustml.metrics import GroupAccuracy, group_accuracy, per_group_counts


def reference_group_accuracy(preds, target, groups, num_groups, train_counts=None):
    """Re-derive the result dict with numpy masks (no bincount, no shared helper)."""
    p, t, g = (np.asarray(a.tolist()) for a in (preds, target, groups))
    correct = p == t
    accs = np.full(num_groups, np.nan)
    out = {}
    for k in range(num_groups):
        mask = g == k
        out[f"count_group_{k}"] = int(mask.sum())
        if mask.any():
            accs[k] = correct[mask].mean()
        out[f"acc_group_{k}"] = float(accs[k])
    present = ~np.isnan(accs)
    out["worst_group"] = int(np.nanargmin(accs)) if present.any() else -1
    out["acc_worst_group"] = float(np.nanmin(accs)) if present.any() else math.nan
    out["acc_avg"] = float(correct.mean()) if len(p) else math.nan
    out["acc_group_mean"] = float(accs[present].mean()) if present.any() else math.nan
    if train_counts is not None:
        w = np.asarray(train_counts, dtype=float)[present]
        out["acc_weighted_avg"] = float((w * accs[present]).sum() / w.sum())
    return out


def random_data(seed, n=301, num_groups=5, empty=(3,)):
    gen = torch.Generator().manual_seed(seed)
    allowed = torch.tensor([g for g in range(num_groups) if g not in empty])
    groups = allowed[torch.randint(len(allowed), (n,), generator=gen)]
    target = torch.randint(3, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.1 + 0.15 * groups.float()  # groups differ in accuracy
    preds = torch.where(flip, (target + 1) % 3, target)
    return preds, target, groups


TRAIN_COUNTS = [50.0, 3.0, 20.0, 7.0, 1.0]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_functional_matches_numpy_reference(seed):
    preds, target, groups = random_data(seed)
    result = group_accuracy(preds, target, groups, num_groups=5, train_counts=TRAIN_COUNTS)
    expected = reference_group_accuracy(preds, target, groups, 5, TRAIN_COUNTS)
    assert result.keys() == expected.keys()
    assert result == pytest.approx(expected, nan_ok=True, rel=1e-12)
    assert math.isnan(result["acc_group_3"]) and result["count_group_3"] == 0
    assert result["worst_group"] != 3
    assert isinstance(result["count_group_0"], int) and isinstance(result["worst_group"], int)


@pytest.mark.parametrize("seed", [0, 5])
def test_chunked_updates_equal_one_update_and_functional(seed):
    preds, target, groups = random_data(seed)
    one = GroupAccuracy(5, train_counts=torch.tensor(TRAIN_COUNTS))
    one.update(preds, target, groups)
    chunked = GroupAccuracy(5, train_counts=TRAIN_COUNTS)
    for p, t, g in zip(preds.split(37), target.split(37), groups.split(37)):
        chunked.update(p, t, g)
    chunked.update(preds[:0], target[:0], groups[:0])  # an empty batch adds nothing
    functional = group_accuracy(preds, target, groups, num_groups=5, train_counts=TRAIN_COUNTS)
    assert one.compute() == pytest.approx(functional, nan_ok=True, rel=0, abs=0)
    assert chunked.compute() == pytest.approx(functional, nan_ok=True, rel=0, abs=0)


def test_weighted_average_by_hand():
    # group 0: 1/2 correct, group 1: 2/2 correct, group 2: empty, group 3: 0/1 correct.
    preds = torch.tensor([1, 0, 1, 0, 1])
    target = torch.tensor([1, 1, 1, 0, 0])
    groups = torch.tensor([0, 0, 1, 1, 3])
    result = group_accuracy(preds, target, groups, num_groups=4, train_counts=[6, 3, 100, 1])
    # Group 2 is empty here, so its training weight is dropped: weights 6, 3, 1 over 10.
    assert result["acc_weighted_avg"] == pytest.approx((6 * 0.5 + 3 * 1.0 + 1 * 0.0) / 10)
    assert result["acc_avg"] == pytest.approx(3 / 5)
    assert result["acc_group_mean"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert result["acc_worst_group"] == 0.0 and result["worst_group"] == 3
    assert math.isnan(result["acc_group_2"]) and result["count_group_2"] == 0
    assert "acc_weighted_avg" not in group_accuracy(preds, target, groups, num_groups=4)


def test_empty_groups_are_nan_and_never_worst():
    preds, target = torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1])
    result = group_accuracy(preds, target, torch.tensor([1, 1, 2]), num_groups=4)
    assert math.isnan(result["acc_group_0"]) and math.isnan(result["acc_group_3"])
    assert result["worst_group"] == 1 and result["acc_worst_group"] == 0.5


def test_ties_pick_the_lowest_group_id():
    preds, target = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 0, 0])
    result = group_accuracy(preds, target, torch.tensor([2, 2, 1, 1]), num_groups=3)
    assert result["worst_group"] == 1 and result["acc_worst_group"] == 0.5


def test_no_examples_gives_nan_summary():
    meter = GroupAccuracy(2, train_counts=[1, 1])
    result = meter.compute()
    assert result["worst_group"] == -1
    for key in ("acc_worst_group", "acc_avg", "acc_group_mean", "acc_weighted_avg",
                "acc_group_0", "acc_group_1"):
        assert math.isnan(result[key]), key


def test_reset_zeroes_the_counts():
    preds, target, groups = random_data(7)
    meter = GroupAccuracy(5)
    meter.update(preds, target, groups)
    meter.reset()
    assert meter.total.sum() == 0 and meter.correct.sum() == 0
    meter.update(preds[:50], target[:50], groups[:50])
    assert meter.compute() == pytest.approx(group_accuracy(preds[:50], target[:50], groups[:50],
                                                           num_groups=5),
                                            nan_ok=True)


def test_counts_are_int64_buffers_outside_the_state_dict():
    meter = GroupAccuracy(3).to(torch.float64)  # a dtype cast must not touch integer counts
    assert dict(meter.named_buffers()).keys() == {"correct", "total"}
    assert meter.total.dtype == torch.int64 and meter.correct.dtype == torch.int64
    assert meter.state_dict() == {}


def test_per_group_counts():
    counts = per_group_counts(torch.tensor([0, 2, 2, 2]), num_groups=4)
    assert counts.tolist() == [1, 0, 3, 0] and counts.dtype == torch.int64
    with pytest.raises(ValueError, match=r"groups must lie in \[0, 2\).*3"):
        per_group_counts(torch.tensor([0, 3]), num_groups=2)
    with pytest.raises(TypeError, match="groups must have an integer dtype"):
        per_group_counts(torch.tensor([0.0, 1.0]), num_groups=2)
    with pytest.raises(ValueError, match="groups must have shape"):
        per_group_counts(torch.zeros(2, 2, dtype=torch.long), num_groups=2)


def test_validate_args_false_still_rejects_ids_past_num_groups():
    preds = target = torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match="groups must lie in"):
        group_accuracy(preds, target, torch.tensor([0, 1, 4]), num_groups=2, validate_args=False)
    meter = GroupAccuracy(2, validate_args=False)
    with pytest.raises(ValueError, match="groups must lie in"):
        meter.update(preds, target, torch.tensor([0, 1, 4]))


_P = torch.tensor([0, 1, 1])
_T = torch.tensor([0, 1, 0])
_G = torch.tensor([0, 1, 1])
INPUT_ERRORS = [
    ((_P.view(3, 1), _T, _G), ValueError, r"preds must have shape \(N,\), got \(3, 1\)"),
    ((_P.float(), _T, _G), TypeError, r"preds must be int64, got dtype torch.float32"),
    (([0, 1, 1], _T, _G), TypeError, r"preds must be an int64 tensor of shape \(N,\), got list"),
    ((_P, _T.int(), _G), TypeError, r"target must be int64, got dtype torch.int32"),
    ((_P, _T[:2], _G), ValueError, r"target must have shape \(3,\) to match preds, got \(2,\)"),
    ((_P, _T, _G[:2]), ValueError, r"groups must have shape \(3,\) to match preds, got \(2,\)"),
    ((_P, _T, _G.to(torch.uint8)), TypeError, r"groups must be int64, got dtype torch.uint8"),
    ((_P, _T, torch.tensor([0, 2, 1])), ValueError, r"groups must lie in \[0, 2\), got .*\[0, 2\]"),
    ((_P, _T, torch.tensor([0, -1, 1])), ValueError,
     r"groups must lie in \[0, 2\), got .*\[-1, 1\]"),
]


@pytest.mark.parametrize(("inputs", "error", "message"), INPUT_ERRORS)
def test_input_errors_name_the_argument(inputs, error, message):
    with pytest.raises(error, match=message):
        group_accuracy(*inputs, num_groups=2)
    meter = GroupAccuracy(2)
    with pytest.raises(error, match=message):
        meter.update(*inputs)
    assert meter.total.sum() == 0  # a rejected batch leaves the counts unchanged


CONSTRUCTOR_ERRORS = [
    ({"num_groups": 0}, ValueError, r"num_groups must be an integer >= 1, got 0"),
    ({"num_groups": 2.5}, TypeError, r"num_groups must be an integer >= 1, got 2.5 \(float\)"),
    ({"num_groups": True}, TypeError, r"num_groups must be an integer >= 1, got True \(bool\)"),
    ({"num_groups": 2, "train_counts": [1.0, 2.0, 3.0]}, ValueError,
     r"train_counts must have shape \(2,\).*got \(3,\)"),
    ({"num_groups": 2, "train_counts": [1.0, -2.0]}, ValueError,
     r"train_counts must be finite and non-negative, got \[1.0, -2.0\]"),
    ({"num_groups": 2, "train_counts": [1.0, float("nan")]}, ValueError,
     r"train_counts must be finite and non-negative"),
    ({"num_groups": 2, "train_counts": [0, 0]}, ValueError,
     r"train_counts must have a positive sum, got \[0.0, 0.0\]"),
    ({"num_groups": 2, "train_counts": "ab"}, TypeError,
     r"train_counts must be a tensor or a sequence of numbers, got str"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), CONSTRUCTOR_ERRORS)
def test_argument_errors_name_the_argument(kwargs, error, message):
    kwargs = dict(kwargs)
    num_groups = kwargs.pop("num_groups")
    with pytest.raises(error, match=message):
        group_accuracy(_P, _T, torch.zeros(3, dtype=torch.long), num_groups=num_groups, **kwargs)
    with pytest.raises(error, match=message):
        GroupAccuracy(num_groups, **kwargs)


def test_process_group_needs_sync_processes():
    with pytest.raises(ValueError, match="process_group .* needs sync_processes=True"):
        GroupAccuracy(2, process_group=object())


# Distributed: two CPU processes over gloo --------------------------------------------------
WORLD_CHUNKS = [
    # rank 0 sees groups 0 and 1 only, rank 1 sees groups 1 and 2 only.
    ([1, 0, 1, 1], [1, 1, 1, 0], [0, 0, 1, 1]),
    ([0, 1, 1, 0, 0], [0, 1, 0, 0, 1], [1, 1, 2, 2, 2]),
]


def _distributed_worker(rank, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        meter = GroupAccuracy(3, train_counts=[4, 2, 2], sync_processes=True)
        meter.update(*(torch.tensor(a) for a in WORLD_CHUNKS[rank]))
        first, second = meter.compute(), meter.compute()
        record = {"first": first, "second": second, "local_total": meter.total.tolist()}
        with open(f"{out_dir}/rank{rank}.json", "w") as f:
            json.dump(record, f)
    finally:
        dist.destroy_process_group()


def test_compute_all_reduces_counts_across_two_processes(tmp_path):
    mp.spawn(_distributed_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2,
             join=True)
    everything = [torch.tensor(sum((c[i] for c in WORLD_CHUNKS), [])) for i in range(3)]
    expected = group_accuracy(*everything, num_groups=3, train_counts=[4, 2, 2])
    for rank in range(2):
        record = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert record["first"] == pytest.approx(expected, nan_ok=True)
        assert record["second"] == record["first"]  # compute() does not fold sums into the state
        assert record["local_total"] == per_group_counts(
            torch.tensor(WORLD_CHUNKS[rank][2]), num_groups=3).tolist()
    assert expected["count_group_1"] == 4 and expected["worst_group"] == 2
