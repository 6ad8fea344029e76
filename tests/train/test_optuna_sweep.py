"""Adaptive search: an Optuna sweep maximizes each run's validation selection metric, never test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from robustml.pipeline.sweep import check_sweeper, sweep_objective
from robustml.report.collect import collect

SCRIPT = Path(sys.executable).parent / "robustml-train"
OPTUNA = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"


def test_the_objective_is_the_selection_rules_validation_metric():
    final = {"val/acc_worst_group": 0.1, "val/acc_avg": 0.3, "val/acc_worst_class": 0.2,
             "test/acc_worst_group": 0.9, "test/acc_avg": 0.8}
    assert sweep_objective("worst_group", final) == 0.1
    assert sweep_objective("avg", final) == 0.3
    assert sweep_objective("worst_class", final) == 0.2
    assert sweep_objective("last", final) == 0.1  # no metric of its own: the default rule's


def test_an_optuna_sweep_that_would_minimize_or_has_no_metric_is_refused():
    sweeper = OmegaConf.create({"_target_": OPTUNA, "direction": "minimize"})
    with pytest.raises(ValueError, match="hydra.sweeper.direction=minimize: .* set hydra.sweeper.direction=maximize"):
        check_sweeper(sweeper, "worst_group")
    sweeper.direction = "maximize"
    check_sweeper(sweeper, "worst_group")
    with pytest.raises(ValueError, match="trainer.select=last chooses no checkpoint by a validation metric"):
        check_sweeper(sweeper, "last")
    check_sweeper(OmegaConf.create({"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"}),
                  "last")


def test_an_optuna_sweep_on_colored_digits_picks_its_best_trial_by_validation(tmp_path):
    pytest.importorskip("optuna", reason="the optuna extra (hydra-optuna-sweeper) is not installed")
    pytest.importorskip("mlflow", reason="the trackers extra (mlflow-skinny) is not installed")
    sweep_dir = tmp_path / "sweep"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ROBUSTML_OUTPUT": str(tmp_path / "runs")}
    out = subprocess.run([str(SCRIPT), "-m", "search=colored_digits_group_dro", "hydra.sweeper.n_trials=3",
                          f"hydra.sweep.dir={sweep_dir}", "trainer.max_steps=10", "trainer.eval_every=5",
                          "logger=mlflow"], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    store = f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    assert f"view with: mlflow ui --backend-store-uri {store}" in out.stdout
    runs = sorted(sweep_dir.glob("*_colored_digits_group_dro"))
    assert len(runs) == 3
    finals = [json.loads((run_dir / "metrics.json").read_text()) for run_dir in runs]
    params = [{key: float(OmegaConf.select(OmegaConf.load(run_dir / "config.yaml"), key))
               for key in ("optimizer.lr", "trainer.l2_weight", "loss.criterion.step_size")} for run_dir in runs]
    val = [final["val/acc_worst_group"] for final in finals]
    test = [final["test/acc_worst_group"] for final in finals]
    assert len(set(params[0].values())) == 3 and params[0] != params[1]  # TPE drew the three values
    assert max(val) != max(test)  # the check below could tell validation from test
    results = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert results.best_value == pytest.approx(max(val))
    assert dict(results.best_params) == pytest.approx(params[val.index(max(val))])
    # One MLflow experiment for the sweep, one run per trial, each with its trial's objective.
    from mlflow.tracking import MlflowClient
    client = MlflowClient(tracking_uri=store)
    found = client.search_runs([client.get_experiment_by_name(str(sweep_dir)).experiment_id])
    assert sorted(r.info.run_name for r in found) == [p.name for p in runs]
    assert sorted(r.data.metrics["selected/val/acc_worst_group"] for r in found) == pytest.approx(sorted(val))
    # robustml-collect reads the Optuna sweep like a grid sweep and chooses the same trial.
    (rows,) = collect(sweep_dir).tables.values()
    (chosen,) = [row for row in rows if row.chosen]
    assert len(rows) == 3
    assert chosen.select["mean"] == pytest.approx(max(val))
    assert float(chosen.hparams["optimizer.lr"]) == pytest.approx(params[val.index(max(val))]["optimizer.lr"])
