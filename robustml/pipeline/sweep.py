"""One table at the end of a sweep: a row per run, so ``-m seed=0,1,2`` ends in one screen.

:class:`SweepSummary` is a Hydra callback (``hydra.callbacks`` in ``configs/train.yaml``); after the
last run of a multirun it reads every run's ``metrics.json`` and ``.hydra/overrides.yaml`` under
the sweep folder, prints the table and writes it to ``<sweep dir>/summary.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from robustml.report.tables import markdown_table, percent, write_text

COLUMNS = (("val/acc_worst_group", "val worst-group (%)"),
           ("test/acc_worst_group", "test worst-group (%)"),
           ("test/acc_avg", "test average (%)"),
           ("test/acc_weighted_avg", "test train-mix avg (%)"))


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
