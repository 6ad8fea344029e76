"""Tests of scripts/benchmark_losses.py: a tiny synthetic run, its JSON, and the target checks."""

from __future__ import annotations

import json
import math
import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark_losses.py"
STEP_METRICS = ("group_dro", "vrex", "irm", "irm_autograd", "augment_counterfactual")
TINY = ["--sizes", "50", "100", "--repeats", "2", "--min-sample-seconds", "0.01",
        "--bf16-repeats", "1", "--e2e-steps", "2", "--e2e-bf16-steps", "1", "--e2e-size", "100",
        "--e2e-test-size", "50", "--e2e-repeats", "2", "--synthetic", "--device", "cpu"]


@pytest.fixture(scope="module")
def script() -> dict:
    return runpy.run_path(str(SCRIPT))


def positive_finite(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_tiny_run_writes_every_ratio(script, tmp_path):
    out = tmp_path / "bench" / "losses.json"
    results = script["main"](["--json", str(out), *TINY])
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    for metric in STEP_METRICS:
        assert set(results[metric]) == {"50", "100"}
        assert all(positive_finite(v) for v in results[metric].values()), results[metric]
        assert [len(r) for r in results["ratio_rounds"][metric].values()] == [2, 2]
        assert all(math.isfinite(v) for v in results["isolated_estimate"][metric].values())
    assert set(results["bf16_speedup"]) == {"100"}
    assert positive_finite(results["bf16_speedup"]["100"])
    assert set(results["end_to_end"]) == {"fp32", "fp32_eval_every_step", "fp32_full_eval_every_step",
                                          "bf16", "bf16_eval_every_step", "bf16_full_eval_every_step"}
    assert all(positive_finite(v) for v in results["end_to_end"].values())
    fp32 = results["end_to_end_details"]["fp32"]
    # Two interleaved rounds, each a ratio; the median lies within the rounds' range.
    assert len(fp32["ratio_rounds"]) == len(fp32["ratio_eval_every_step_rounds"]) == 2
    assert fp32["ratio_range"][0] <= fp32["ratio"] <= fp32["ratio_range"][1]
    assert set(fp32["seconds"]) == {"reference", "trainer", "trainer_eval_every_step",
                                    "trainer_full_eval_every_step"}
    assert [len(v) for v in fp32["seconds"].values()] == [2, 2, 2, 2]
    assert results["ratio_rounds"]["end_to_end"]["fp32"] == fp32["ratio_rounds"]
    # Same initial weights, same objective: the trainer (closed-form penalty, chunked forward)
    # and the reference-style loop (autograd penalty) must end at the same weights and accuracy.
    assert fp32["steps"] == 2 and fp32["max_abs_weight_diff"] < 1e-5
    assert fp32["trainer_train_acc"] == pytest.approx(fp32["reference_train_acc"], abs=0.02)
    assert fp32["trainer_test_acc"] == pytest.approx(fp32["reference_test_acc"], abs=0.02)
    assert results["end_to_end_details"]["bf16"]["trainer_precision"] == "bf16"
    assert results["settings"]["data"] == "synthetic"
    assert results["machine"]["device"] == "cpu"
    if "cpu_flags" in results["machine"]:
        assert isinstance(results["machine"]["cpu_flags"]["avx512_bf16"], bool)
        flags = results["machine"]["cpu_flags"]
        assert results["machine"]["native_cpu_bf16"] == (flags["avx512_bf16"] or flags["amx_bf16"])
    # No targets at sizes 50 / 100; the end-to-end targets always apply.
    statuses = {(row["metric"], row["key"]): row["status"] for row in results["checks"]}
    assert statuses[("irm", "50")] == "-"
    assert statuses[("end_to_end", "fp32")] in ("PASS", "MISS")
    assert statuses[("end_to_end", "fp32_eval_every_step")] in ("PASS", "MISS")
    assert statuses[("end_to_end", "fp32_full_eval_every_step")] == "-"  # shown, no target


def test_skip_bf16_records_nulls(script, tmp_path):
    results = script["main"](["--json", str(tmp_path / "b.json"), *TINY, "--sizes", "20",
                              "--skip-bf16"])
    assert results["bf16_speedup"] == {"20": None}
    assert results["end_to_end"]["bf16"] is None and positive_finite(results["end_to_end"]["fp32"])
    assert "bf16" not in results["end_to_end_details"]


def test_skip_steps_measures_end_to_end_and_peak_memory(script, tmp_path):
    results = script["main"](["--json", str(tmp_path / "m.json"), *TINY, "--skip-steps",
                              "--skip-bf16", "--peak-memory", "colored_digits_cf",
                              "--peak-memory-steps", "2"])
    assert "irm" not in results and results["step_seconds"] == {}
    assert positive_finite(results["end_to_end"]["fp32_eval_every_step"])
    (row,) = results["peak_memory"]
    assert row["experiment"] == "colored_digits_cf" and row["steps"] == 2
    # A process that imported torch and trained holds well over 50 MB and, for 8x8 digits,
    # far less than 4 GB.
    assert 50 < row["peak_rss_mb"] < 4096


def test_checks_compare_with_targets(script):
    results = {metric: {} for metric in (*STEP_METRICS, "bf16_speedup")}
    results["irm"] = {"1000": 1.09, "25000": 1.04}
    results["augment_counterfactual"] = {"25000": 1.05}
    results["end_to_end"] = {"fp32": 0.59, "fp32_eval_every_step": 0.69, "bf16": None}
    rows = {(r["metric"], r["key"]): (r["target"], r["status"]) for r in script["checks"](results)}
    assert rows[("irm", "1000")] == (1.10, "PASS")
    assert rows[("irm", "25000")] == (1.03, "MISS")
    assert rows[("augment_counterfactual", "25000")] == (1.05, "PASS")
    assert rows[("end_to_end", "fp32")] == (0.6, "PASS")
    assert rows[("end_to_end", "fp32_eval_every_step")] == (0.6, "MISS")
    assert rows[("end_to_end", "bf16")] == (0.4, "-")


@pytest.mark.parametrize("bad", [["--repeats", "0"], ["--sizes", "1"]])
def test_bad_arguments_exit(script, tmp_path, bad):
    with pytest.raises(SystemExit):
        script["main"](["--json", str(tmp_path / "x.json"), *bad])
