"""A run's health step: a run that did not learn says so in metrics.json, report.md and on the
console, in the config's words; the checks' thresholds are a config group."""

from __future__ import annotations

import json

import pytest

from robustml.pipeline.run import run
from support import compose_train

QUICK = ["trainer.max_steps=20", "trainer.eval_every=5", "trainer.progress=false", "model.hidden_dims=[16]"]


def test_a_run_held_at_chance_says_it_is_not_learning_naming_the_settings(tmp_path, capsys):
    # The L2 term (part of the training loss) holds the loss at chance while lr=1e-7 moves nothing.
    final = run(compose_train(QUICK + ["optimizer.lr=1e-7", "trainer.l2_weight=0.0011"]), run_dir=tmp_path,
                summary="full")
    message = final["health/not_learning"]
    assert "trainer.l2_weight=0 (now 0.0011)" in message and "optimizer.lr=3e-07" in message
    assert final["health/count"] >= 1
    assert json.loads((tmp_path / "metrics.json").read_text())["health/not_learning"] == message
    assert f"- **not_learning**: {message}" in (tmp_path / "report.md").read_text()
    assert f"Health: {message}" in capsys.readouterr().out


def test_thresholds_come_from_the_health_config_group(tmp_path):
    learning = run(compose_train(QUICK + ["trainer.max_steps=60"]), run_dir=tmp_path / "a", summary="none")
    assert "health/not_learning" not in learning  # quiet: the loss fell below chance
    strict = run(compose_train(QUICK + ["trainer.max_steps=60", "health.chance_margin=0.99"]),
                 run_dir=tmp_path / "b", summary="none")
    assert "health/not_learning" in strict  # the same run against a 99% margin


def test_the_one_class_check_reads_the_runs_prediction_shares(tmp_path):
    healthy = run(compose_train(QUICK + ["trainer.max_steps=60"]), run_dir=tmp_path / "a", summary="none")
    assert "health/one_class_predictor" not in healthy
    assert healthy["val/pred_share_0"] + healthy["val/pred_share_1"] == pytest.approx(1.0)
    assert 0.1 < healthy["val/pred_share_0"] < 0.9
    # Thresholds that any run meets: the check is wired to the run's metrics and names its settings.
    strict = run(compose_train(QUICK + ["trainer.max_steps=60", "health.one_class_share=0",
                                        "health.one_class_label_share=1.01"]),
                 run_dir=tmp_path / "b", summary="none")
    message = strict["health/one_class_predictor"]
    assert "the selected model predicts class" in message and "trainer.max_steps=120" in message


def test_every_last_layer_head_has_one_module_with_fit_and_health():
    from robustml.pipeline.health import HEADS
    from robustml.pipeline.heads import HEAD_METHODS
    assert tuple(HEADS) == HEAD_METHODS
    assert all(callable(module.fit) and callable(module.health) for module in HEADS.values())
