"""Print the offline text example's results table (markdown) from the sweep folders of run.sh.

Usage: ``python experiments/text_offline/summarize.py runs/text_offline > experiments/text_offline/results.md``

One row per method: mean ± sample std over its seeds (each run's ``metrics.json``) of the test
worst-group accuracy, the test average, the train-mix average, each group's test accuracy and
the counterfactual stress test's flip rate on test (the share of predictions that change when
only "brother" and "sister" are swapped), with the group labels each row used. The plain-ERM
row is the DFR runs' base model (``base/...`` metrics): ERM selected on val average accuracy.
A DFR run's own stress test is its base model's (moved to ``base/``), so the DFR row's flip rate
is read from ``robustml-audit``'s ``audit/audit.json`` of the run, which applies the refitted
head (run.sh audits every DFR run).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from robustml.report.collect import load_runs
from robustml.report.machine import machine_info

# text_csv codes classes and attribute values in sorted order: fresh=0, rotten=1; brother=0, sister=1.
GROUPS = ("fresh, brother", "fresh, sister", "rotten, brother", "rotten, sister")
ROWS = (  # (label, sweep folder, metric prefix, group labels used)
    ("ERM, plain (`trainer.select=avg`)", "dfr", "base/", "none (training: none; selection: val average)"),
    ("ERM, selected on val worst-group", "erm", "", "training: none; selection: val worst-group"),
    ("Counterfactual augmentation (paired)", "cf", "",
     "training: none (the brother/sister lexicon); selection: val worst-group"),
    ("Group DRO", "group_dro", "", "training groups (loss); selection: val worst-group"),
    ("DFR (on the plain-ERM model)", "dfr", "",
     "base: none; last layer fitted and C chosen on val groups"),
)
COLUMNS = (("test/acc_worst_group", "test worst-group (%)"), ("test/acc_avg", "test average (%)"),
           ("test/acc_weighted_avg", "train-mix average (%)"),
           *((f"test/acc_group_{g}", name) for g, name in enumerate(GROUPS)),
           ("test/cf_flip_rate", "counterfactual flips, test (%)"))


def pct(values: Sequence[float]) -> str:
    """Return ``mean ± sample std`` of fractions, in percent (std 0 for one value; ``-`` for none)."""
    if not values:
        return "-"
    array = 100 * np.asarray(values, dtype=float)
    return f"{array.mean():.1f} ± {array.std(ddof=1) if array.size > 1 else 0.0:.1f}"


def row(label: str, finals: Sequence[dict], seeds: Sequence[int], prefix: str, labels: str) -> str:
    """Return one markdown row: every column of :data:`COLUMNS` over ``finals`` (``prefix`` first)."""
    cells = [label, ",".join(map(str, seeds))]
    for key, _ in COLUMNS:
        # The audit applied the run's own head: its flip rate stands in for the run's, not its base's.
        values = [final.get(prefix + key, None if prefix else final.get(f"audit/{key}"))
                  for final in finals]
        cells.append(pct([value for value in values if value is not None]))
    return "| " + " | ".join(cells + [labels]) + " |"


def final_metrics(run) -> dict:
    """Return the run's ``metrics.json`` plus ``audit/test/cf_flip_rate`` from its audit, if any."""
    final = dict(run.final)
    audit = run.path / "audit" / "audit.json"
    if audit.is_file():
        stress = json.loads(audit.read_text()).get("stress_test") or {}
        if "cf_flip_rate" in stress:
            final["audit/test/cf_flip_rate"] = stress["cf_flip_rate"]
    return final


def main(out: Path) -> None:
    machine = machine_info()
    flags = " ".join(flag for flag, on in machine["cpu_flags"].items() if on)
    lines = ["# Offline text example: results", "",
             f"Written by `experiments/text_offline/summarize.py {out}` after `run.sh`. Test split; "
             f"mean ± sample std over seeds. Machine: {machine['cpu']}, {machine['cores']} cores, "
             f"flags {flags}.", "",
             "| method | seeds | " + " | ".join(name for _, name in COLUMNS) + " | group labels used |",
             "|" + " --- |" * (len(COLUMNS) + 3)]
    for label, folder, prefix, labels in ROWS:
        runs = sorted((run for run in load_runs(out / folder) if run.final is not None),
                      key=lambda run: run.config["seed"])
        lines.append(row(label, [final_metrics(run) for run in runs],
                         [run.config["seed"] for run in runs], prefix, labels))
    lines += ["", "Counterfactual flips: the share of test predictions that change when only the "
              "relative is swapped (brother <-> sister); the DFR row's is the refitted head's "
              "(robustml-audit of each DFR run), the plain-ERM row's its base model's."]
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/text_offline"))
