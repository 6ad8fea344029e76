"""Tests of scripts/benchmark_training.py: a tiny run, its JSON and its printed ratios."""

from __future__ import annotations

import json
import math
import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark_training.py"


@pytest.fixture(scope="module")
def script() -> dict:
    return runpy.run_path(str(SCRIPT))


def test_tiny_run_writes_every_ratio_with_the_plain_loop_beside_it(script, tmp_path, capsys):
    out = tmp_path / "training.json"
    results = script["main"](["--json", str(out), "--repeats", "2", "--steps", "1", "--models", "mlp",
                              "--skip-compile"])
    assert json.loads(out.read_text()) == results
    assert set(results["accumulate"]) == {"mlp_erm", "mlp_group_dro"}
    assert set(results["precision"]) == {"fp16", "bf16"} and "compile" not in results
    for value in [*results["accumulate"].values(), *results["precision"].values()]:
        assert math.isfinite(value["ratio"]) and value["ratio"] > 0
        assert value["iqr"][0] <= value["ratio"] <= value["iqr"][1]
    assert results["accumulate"]["mlp_erm"]["plain"]["ratio"] > 0
    printed = capsys.readouterr().out
    assert "accumulate K=4 / K=1, mlp_group_dro" in printed and "target <= 1.05" in printed


def test_the_plain_loop_takes_the_same_step_as_the_trainer(script):
    import torch

    data = script["dataset"]()
    batch = {"x": data.x, "y": data.y, "group": data.group}
    plain, trainer = script["PlainLoop"]("mlp", 4), script["trainer"]("mlp", "erm", data, accumulate=4)
    plain._train_step(batch), trainer._train_step(batch)
    for a, b in zip(plain.model.parameters(), trainer.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
