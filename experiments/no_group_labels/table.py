"""Build experiments/no_group_labels/results.{md,json}: rows without group labels beside the
labelled references.

Rows of this study are summarized from their runs (``runs/<experiment>/seeds/seed*/``, written
by run.sh); the labelled reference rows (ERM, Group DRO with true groups) are read from the
committed ``experiments/<dataset>/results.json`` of the same protocol. Accuracies in percent,
mean ± sample std over seeds. A row whose runs are not under ``runs/`` keeps its entry of the
committed ``results.json``, marked with † (runs made in another checkout).

    .venv/bin/python experiments/no_group_labels/table.py
"""

from __future__ import annotations

import glob
import json
import runpy
from pathlib import Path

from robustml.report import write_text

REPO = Path(__file__).resolve().parents[2]
SUMMARY = runpy.run_path(str(REPO / "scripts" / "summarize_runs.py"))
KEYS = ["test/acc_worst_group", "test/acc_avg", "train/inferred_adjusted_rand"]
KEPT = " †"

# (dataset, row name, source, training labels, selection): source is a committed results.json
# row ("results:<row>") or this study's runs ("runs:<experiment>").
ROWS = [
    ("colored_mnist", "ERM", "results:ERM", "none", "last step (none)"),
    ("colored_mnist", "Group DRO, true groups", "results:Group DRO (label x color)", "training groups", "last step (none)"),
    ("colored_mnist", "Group DRO, inferred groups (clustering)", "runs:colored_mnist_inferred_group_dro", "none", "last step (none)"),
    ("colored_mnist", "IRM on EIIL environments", "runs:colored_mnist_eiil_irm", "none", "last step (none)"),
    ("colored_digits", "ERM", "results:ERM", "none", "val worst group (val group labels)"),
    ("colored_digits", "Group DRO, true groups", "runs:colored_digits_group_dro", "training groups", "val worst group (val group labels)"),
    ("colored_digits", "Group DRO, inferred groups (clustering)", "runs:colored_digits_inferred_group_dro", "none", "val worst inferred group (none)"),
    ("colored_digits", "IRM on EIIL environments", "runs:colored_digits_eiil_irm", "none", "val worst inferred group (none)"),
    ("colored_digits", "IRM on EIIL environments, last step", "runs:colored_digits_eiil_irm_last", "none", "last step (none)"),
    ("adult", "ERM", "results:ERM", "none", "val worst group (val group labels)"),
    ("adult", "Group DRO, true groups", "results:Group DRO", "training groups", "val worst group (val group labels)"),
    ("adult", "Group DRO, inferred groups (clustering)", "runs:adult_inferred_group_dro", "none", "val worst inferred group (none)"),
    ("adult", "IRM on EIIL environments", "runs:adult_eiil_irm", "none", "val worst inferred group (none)"),
    ("celeba_attributes", "ERM", "results:ERM", "none", "val worst group (val group labels)"),
    ("celeba_attributes", "Group DRO, true groups", "results:Group DRO", "training groups", "val worst group (val group labels)"),
    ("celeba_attributes", "Group DRO, inferred groups (clustering)", "runs:celeba_attributes_inferred_group_dro", "none", "val worst inferred group (none)"),
    ("celeba_attributes", "IRM on EIIL environments", "runs:celeba_attributes_eiil_irm", "none", "val worst inferred group (none)"),
]


def _stats(dataset: str, source: str, kept: dict | None) -> tuple[dict, str]:
    """Return a row's statistics and where they come from; ``kept``: its committed entry."""
    kind, name = source.split(":", 1)
    if kind == "results":
        committed = json.loads((REPO / "experiments" / dataset / "results.json").read_text())
        return committed[name], f"experiments/{dataset}/results.json"
    runs = [json.loads(Path(p).read_text()) for p in sorted(glob.glob(str(REPO / "runs" / name / "seeds" / "*" / "metrics.json")))]
    if runs:
        return SUMMARY["summarize"]({name: runs}, KEYS)[name], name
    if kept and any(key in kept for key in KEYS):  # runs made in another checkout: keep the entry
        stats = {key: kept[key] for key in KEYS if key in kept}
        return stats, kept["source"] if kept["source"].endswith(KEPT) else kept["source"] + KEPT
    return {}, f"{name} (no finished run)"


def _cell(stats: dict, key: str) -> str:
    if key not in stats:
        return "-"
    digits = 3 if key.endswith("adjusted_rand") else 1  # an index in [-1, 1]; accuracies in percent
    return f"{stats[key]['mean']:.{digits}f} ± {stats[key]['std']:.{digits}f}"


def main() -> None:
    lines = ["| data | row | training group labels | selection (labels) | source | runs | test worst-group | test average | train ARI |",
             "|---|---|---|---|---|---|---|---|---|"]
    out = REPO / "experiments" / "no_group_labels" / "results"
    previous = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else {}
    record = {}
    for dataset, row, source, training, selection in ROWS:
        stats, origin = _stats(dataset, source, previous.get(f"{dataset}/{row}"))
        n = max((s["n"] for s in stats.values()), default=0)
        lines.append(f"| {dataset} | {row} | {training} | {selection} | {origin} | {n} | "
                     + " | ".join(_cell(stats, key) for key in KEYS) + " |")
        record[f"{dataset}/{row}"] = {"source": origin, "training_labels": training, "selection": selection, **stats}
    text = "\n".join(lines) + "\n"
    if any(entry["source"].endswith(KEPT) for entry in record.values()):
        text += ("\n" + KEPT.strip() + ": kept from the committed results.json; its runs (the same "
                 "command, an earlier commit) are not under runs/ in this checkout.\n")
    print(text)
    write_text(out.with_suffix(".md"), text)
    write_text(out.with_suffix(".json"), json.dumps(record, indent=2, sort_keys=True) + "\n")
    readme = out.parent / "README.md"  # shows the same table between its markers
    write_text(readme, SUMMARY["replace_between"](readme.read_text(), "<!-- results:start -->",
                                                  "<!-- results:end -->", text))


if __name__ == "__main__":
    main()
