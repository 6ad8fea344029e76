"""Print the own-images results table (markdown) from the run folders of run.sh.

Usage: ``python experiments/own_images/summarize.py runs/own_images > experiments/own_images/results.md``

Each method's configuration is the one robustml-collect chooses on validation (mean over seeds of
val worst-group accuracy); the rows are mean ± sample std over its seeds. The plain-ERM row is the
DFR runs' base model (``base/...`` metrics), trained by ERM and selected on val average accuracy.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

from robustml.report.collect import Run, collect, load_runs, render_markdown

GROUPS = ("digit<5 on land", "digit<5 on water", "digit>=5 on land", "digit>=5 on water")
ROWS = (  # (label, sweep folder, metric prefix, group labels used)
    ("ERM, plain (`trainer.select=avg`)", "dfr", "base/",
     "none (training: none; selection: val average accuracy)"),
    ("Group DRO", "group_dro", "",
     "training groups (loss and group-balanced sampler); selection: val worst-group"),
    ("JTT", "jtt", "", "training: none; selection: val worst-group"),
    ("DFR (on the plain-ERM model)", "dfr", "",
     "base: none; last layer fitted and C chosen on val groups"),
)


def chosen_runs(folder: Path) -> tuple[list[Run], dict, str]:
    """Return the runs of the configuration chosen on validation, its hyperparameters and the
    collect tables (markdown)."""
    collection = collect(folder)
    (rows,) = collection.tables.values()
    best = next(row for row in rows if row.chosen)
    runs = [run for run in load_runs(folder) if run.final is not None
            and all(run.config.get(key) == value for key, value in best.hparams.items())]
    return sorted(runs, key=lambda run: run.config["seed"]), best.hparams, render_markdown(collection)


def pct(values: list[float]) -> str:
    array = 100 * np.asarray(values, dtype=float)
    return f"{array.mean():.1f} ± {array.std(ddof=1) if array.size > 1 else 0.0:.1f}"


def machine() -> str:
    """Return the CPU model, its vector flags and core count, as the README reports them."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    flags = sorted({flag for flag in ("avx2", "avx512_bf16") if f" {flag}" in info})
    return f"{model}, {os.cpu_count()} cores, flags {' '.join(flags) or 'none of avx2/avx512_bf16'}"


def max_val_worst_group(runs: list[Run]) -> float:
    """Return the highest val worst-group accuracy at any evaluation of the runs (metrics.jsonl)."""
    best = 0.0
    for run in runs:
        for line in (run.path / "metrics.jsonl").read_text().splitlines():
            record = json.loads(line)
            best = max(best, record.get("val/acc_worst_group", 0.0))
    return best


def main(out: Path) -> None:
    lines = ["# Own images: results", "",
             f"Written by `experiments/own_images/summarize.py {out}` after `run.sh`. Test split; "
             "mean ± sample std over seeds. Machine: " + machine() + ".", "",
             "| method | chosen on val | seeds | test worst-group (%) | test average (%) | "
             "train-mix average (%) | " + " | ".join(GROUPS) + " | group labels used | "
             "s per run |", "|" + " --- |" * 12]
    tables, counts, base_runs = [], None, []
    for label, folder, prefix, labels in ROWS:
        runs, hparams, table = chosen_runs(out / folder)
        if folder not in {name for name, _ in tables}:
            tables.append((folder, table))
        finals = [run.final for run in runs]
        if prefix == "base/":
            base_runs = runs
        counts = counts or {split: [finals[0][f"{split}/count_group_{g}"] for g in range(4)]
                            for split in ("train", "val", "test")}
        setting = " ".join(f"{key.split('.')[-1]}={value}" for key, value in hparams.items()) or "-"
        cells = [label, setting, ",".join(str(run.config["seed"]) for run in runs)]
        cells += [pct([f[f"{prefix}test/{key}"] for f in finals])
                  for key in ("acc_worst_group", "acc_avg", "acc_weighted_avg")]
        cells += [pct([f[f"{prefix}test/acc_group_{g}"] for f in finals]) for g in range(4)]
        cells += [labels, f"{np.mean([f['train_seconds'] for f in finals]):.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Examples per group: " + "; ".join(
        f"{split} " + ", ".join(f"{name} {n}" for name, n in zip(GROUPS, numbers))
        for split, numbers in counts.items()) + ".", "",
        f"Highest val worst-group accuracy at any evaluation of the plain-ERM runs: "
        f"{100 * max_val_worst_group(base_runs):.1f}% (so selecting ERM on val worst-group "
        "instead of val average cannot choose a step that does better on the minority groups).",
        "", "s per run: mean `train_seconds` of metrics.json (the ERM and DFR rows are the same runs: "
        "DFR refits the last layer of each plain-ERM run, `dfr/fit_seconds` more).",
        ""]
    for folder, table in tables:
        lines += [f"## robustml-collect {out / folder}", "", table]
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/own_images"))
