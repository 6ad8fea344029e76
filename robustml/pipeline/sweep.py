"""Sweeps: what a run returns to the sweeper, and one table at the end of a sweep.

:func:`sweep_objective` is the value ``robustml-train`` returns for a sweeper (Hydra's Optuna
sweeper maximizes it): the run's validation selection metric. :func:`check_sweeper` refuses an
Optuna sweep that would minimize it. :class:`SweepSummary` is a Hydra callback
(``hydra.callbacks`` in ``configs/train.yaml``); after the last run of a multirun it reads every
run's ``metrics.json`` and ``.hydra/overrides.yaml`` under the sweep folder, prints a row per run
(so ``-m seed=0,1,2`` ends in one screen) and writes the table to ``<sweep dir>/summary.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from robustml.pipeline.trackers import tracking_store
from robustml.report.tables import markdown_table, percent, write_text
from robustml.selection import DEFAULT_RULE, RULES, selection_rule

COLUMNS = (("val/acc_worst_group", "val worst-group (%)"),
           ("test/acc_worst_group", "test worst-group (%)"),
           ("test/acc_avg", "test average (%)"),
           ("test/acc_weighted_avg", "test train-mix avg (%)"))


def sweep_objective(select: str, final: dict[str, Any]) -> float:
    """Return the run's validation selection metric (``trainer.select``'s key of ``final``).

    ``select=last`` chooses no checkpoint by a metric; its runs return the default rule's
    (val worst-group accuracy), and :func:`check_sweeper` refuses it for an adaptive search.
    """
    metric = selection_rule(select, argument="trainer.select").metric or RULES[DEFAULT_RULE].metric
    return float(final[metric])


def check_sweeper(sweeper: DictConfig | None, select: str) -> None:
    """Raise naming the setting when an Optuna sweep (``hydra/sweeper=optuna``) cannot pick by validation.

    Its objective is an accuracy, so ``hydra.sweeper.direction`` must be ``maximize`` (the plugin's
    default is ``minimize``), and ``trainer.select`` must name a validation metric (not ``last``).
    Other sweepers are not checked.
    """
    if sweeper is None or "optuna" not in str(sweeper.get("_target_", "")).lower():
        return
    direction = str(sweeper.get("direction")).rsplit(".", 1)[-1].lower()
    if direction != "maximize":
        raise ValueError(f"hydra.sweeper.direction={direction}: the objective is the run's validation "
                         f"accuracy (trainer.select={select}), so the search must maximize it; set "
                         "hydra.sweeper.direction=maximize (search=... configs do)")
    if selection_rule(select, argument="trainer.select").metric is None:
        raise ValueError(f"trainer.select={select} chooses no checkpoint by a validation metric, so "
                         "hydra/sweeper=optuna has nothing to maximize; set trainer.select="
                         "worst_group (or avg, worst_class, worst_inferred_group)")


def _overrides(run_dir: Path) -> list[str]:
    path = run_dir / ".hydra" / "overrides.yaml"
    return [str(o) for o in OmegaConf.load(path)] if path.is_file() else []


def _job_order(run_dir: Path) -> tuple[int, str]:
    """Order runs by Hydra's job number (``2_x`` before ``10_x``), then by name."""
    number = run_dir.name.split("_", 1)[0]
    return (int(number) if number.isdigit() else -1, run_dir.name)


def render_sweep_table(sweep_dir: str | Path) -> str:
    """Return a markdown table with one row per run under ``sweep_dir``, after the common overrides.

    Runs are the sweep's subfolders, in name order; a run without ``metrics.json`` (failed or
    interrupted) is listed as such, so the table never hides a missing run. The "overrides"
    column shows the overrides that differ between runs; those shared by all are listed above.
    """
    sweep_dir = Path(sweep_dir)
    runs = sorted((p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=_job_order)
    if not runs:
        return f"No runs under {sweep_dir}."
    overrides = {run_dir: _overrides(run_dir) for run_dir in runs}
    common = [o for o in overrides[runs[0]] if all(o in other for other in overrides.values())]
    rows = []
    for run_dir in runs:
        metrics_path = run_dir / "metrics.json"
        if metrics_path.is_file():
            final: dict[str, Any] = json.loads(metrics_path.read_text())
            cells = [percent(final.get(key)) for key, _ in COLUMNS]
        else:
            cells = ["no metrics.json (failed or interrupted)"] + [""] * (len(COLUMNS) - 1)
        varying = " ".join(o for o in overrides[run_dir] if o not in common)
        rows.append([run_dir.name, varying, *cells])
    table = markdown_table(("run", "overrides", *(title for _, title in COLUMNS)), rows)
    return f"Overrides of every run: {' '.join(common) or 'none'}\n\n{table}"


class SweepSummary(Callback):
    """Print and save :func:`render_sweep_table` when a Hydra multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        cleaning_only = (any(sweep_dir.glob("*/cleaning_summary.json"))
                         and not any(sweep_dir.glob("*/metrics.json")))
        if cleaning_only:  # robustml-clean's sweep: no training metrics to tabulate
            return
        table = render_sweep_table(sweep_dir)
        write_text(sweep_dir / "summary.md", f"# Sweep {sweep_dir}\n\n{table}\n")
        print(f"\nSweep summary ({sweep_dir}; selection as configured, on validation):\n{table}")
        for line in tracker_lines(config, sweep_dir):
            print(line)


def tracker_lines(config: DictConfig, sweep_dir: Path) -> list[str]:
    """Return where a sweep's trackers put its runs, and the command that shows them."""
    lines = []
    if OmegaConf.select(config, "logger.tensorboard") is not None:
        lines.append(f"TensorBoard: tensorboard --logdir {sweep_dir}")
    if OmegaConf.select(config, "logger.mlflow") is not None:
        uri, _ = tracking_store(config)
        experiment = config.logger.mlflow.experiment or str(sweep_dir)
        lines.append(f"MLflow: experiment '{experiment}', one run per job; view with: "
                     f"mlflow ui --backend-store-uri {uri}")
    return lines
