"""Summarize the JTT and DFR runs of run_jtt_dfr.sh into jtt_dfr.md and jtt_dfr.json (mean ± std).

Rows per dataset: ERM (the base model of the DFR runs: the ``base/...`` metrics of the same
runs, before the last layer is refitted), JTT and DFR, each over the seeds found under
``runs/no_group_labels/<dataset>_<method>/seed*/metrics.json``. Accuracies in percent; std is the
sample standard deviation over seeds (ddof=1). A row with no runs under ``--runs`` keeps its entry
of the committed ``jtt_dfr.json``, marked as kept (runs made on another machine or checkout).

    .venv/bin/python experiments/no_group_labels/summarize_jtt_dfr.py
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import runpy
from pathlib import Path

from robustml.report import write_text

SUMMARY = runpy.run_path(str(Path(__file__).resolve().parents[2] / "scripts" / "summarize_runs.py"))

DATASETS = ("colored_digits", "colored_mnist", "adult", "celeba_attributes")
KEYS = ("test/acc_worst_group", "test/acc_avg", "test/acc_weighted_avg", "val/acc_worst_group")
# (row, method folder, metric prefix, group labels for training, group labels for selection)
ROWS = (("ERM (DFR's base model)", "dfr", "base/", "none", "val worst-group (validation group labels)"),
        ("JTT", "jtt", "", "none", "val worst-group (validation group labels)"),
        ("DFR on validation", "dfr", "", "validation group labels (last layer only)",
         "base: val worst-group; C: worst-group on half of val (validation group labels)"))
# The selection rule of each run's (base) model, in words, with the labels it used.
RULES = {"worst_group": "val worst-group (validation group labels)", "last": "last step (none)",
         "avg": "val average (none)"}
# Published numbers (worst-group / average test accuracy, the DFR paper's table in
# ../shared/REFERENCES.md). Neither paper reports any of the four settings here; the nearest is
# CelebA from images, a different input (pixels, ResNet-50) for the same target and groups.
PUBLISHED = ("Published (not the same setting: CelebA **images**, ResNet-50, DFR paper's table): "
             "ERM 46.9 / 95.3, JTT 81.1 / 88.0, DFR 88.3 / 91.3 (worst-group / average test "
             "accuracy). Neither paper reports Colored MNIST, colored digits, Adult or CelebA "
             "attributes.")


def mean_std(values: list[float]) -> dict[str, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(values)}


def summarize(root: Path, previous: dict[str, dict] | None = None) -> dict[str, dict]:
    """Return the rows of the runs under ``root``; a row without runs there keeps its ``previous``
    entry (the committed summary), marked ``"kept": true``."""
    table: dict[str, dict] = {}
    for dataset in DATASETS:
        for row, method, prefix, training, selection in ROWS:
            paths = sorted(glob.glob(str(root / f"{dataset}_{method}" / "seed*" / "metrics.json")))
            runs = [json.loads(Path(p).read_text()) for p in paths]
            if not runs:
                if previous and f"{dataset} | {row}" in previous:
                    table[f"{dataset} | {row}"] = {**previous[f"{dataset} | {row}"], "kept": True}
                continue
            stats = {key: mean_std([100 * r[prefix + key] for r in runs]) for key in KEYS
                     if all(r.get(prefix + key) is not None for r in runs)}
            rules = {RULES.get(r["selection"], r["selection"]) for r in runs}
            selection = selection.replace("val worst-group (validation group labels)", " / ".join(sorted(rules)))
            selection = selection.replace("base: val worst-group", "base: " + " / ".join(sorted(rules)))
            extra = {}
            if method == "jtt" and not prefix:
                extra = {"lambda_up": sorted({r["jtt/lambda_up"] for r in runs}),
                         "error_set_size": mean_std([r["jtt/error_set_size"] for r in runs]),
                         "stage_one_steps": sorted({r["jtt/stage_one_steps"] for r in runs})}
            if method == "dfr" and not prefix:
                extra = {"C": [r["dfr/C"] for r in runs]}
            table[f"{dataset} | {row}"] = {"dataset": dataset, "row": row, "seeds": len(runs),
                                           "training_group_labels": training,
                                           "selection_group_labels": selection,
                                           "metrics": stats, **extra,
                                           "runs": [str(Path(p).parent) for p in paths]}
    return table


SECTION_TITLE = "### JTT and DFR (from [jtt_dfr.md](jtt_dfr.md), which `summarize_jtt_dfr.py` writes)"


def cell(stats: dict, key: str) -> str:
    return f"{stats[key]['mean']:.1f} ± {stats[key]['std']:.1f}" if key in stats else "n/a"


HEADER = """# JTT and DFR rows (no training group labels)

Produced by `bash experiments/no_group_labels/run_jtt_dfr.sh` (each `<dataset>_jtt` and
`<dataset>_dfr` experiment config, seeds 0-2, one thread, `nice -n 10`) and
`.venv/bin/python experiments/no_group_labels/summarize_jtt_dfr.py` (`jtt_dfr.md`,
`jtt_dfr.json` and this section of the README). Mean ± sample std over the seeds, in percent; CPU: AMD EPYC, AVX2 (no AVX-512,
no AMX), 2 cores shared with other jobs. The *ERM* row is the base model of the DFR runs (their
`base/...` metrics), trained with the DFR config's protocol. Test accuracies are reported, never
used: every choice is made on validation (which, on Colored MNIST and colored digits, is colored by
the training environments' rules and never sees the test environment). "Train-mix average"
weights the test groups by their training shares.

"""


def to_markdown(table: dict[str, dict]) -> str:
    lines = ["| dataset | row | seeds | test worst-group | test average | test train-mix average | "
             "val worst-group | group labels: training | group labels: selection |",
             "|---|---|---|---|---|---|---|---|---|"]
    for entry in table.values():
        stats = entry["metrics"]
        kept = " †" if entry.get("kept") else ""
        lines.append(f"| {entry['dataset']} | {entry['row']}{kept} | {entry['seeds']} | "
                     + " | ".join(cell(stats, k) for k in KEYS)
                     + f" | {entry['training_group_labels']} | {entry['selection_group_labels']} |")
    note = ("\n\n† Kept from the previous summary: its runs (the same command, an earlier commit) are "
            "not under the runs folder of this summary." if any(e.get("kept") for e in table.values()) else "")
    return HEADER + "\n".join(lines) + note + "\n\n" + PUBLISHED + "\n"


def colored_mnist_target(table: dict[str, dict]) -> str:
    """Compare Colored MNIST JTT with the ERM row of experiments/colored_mnist (501 steps, 3 seeds)."""
    jtt = table.get("colored_mnist | JTT")
    erm_file = Path("experiments/colored_mnist/results.json")
    if jtt is None or not erm_file.is_file():
        return ""
    erm = json.loads(erm_file.read_text())["ERM"]["test/acc_worst_group"]
    gain = jtt["metrics"]["test/acc_worst_group"]["mean"] - erm["mean"]
    return (f"\nColored MNIST target (no training group labels, never the test environment): JTT's "
            f"test worst-group accuracy {jtt['metrics']['test/acc_worst_group']['mean']:.1f} over "
            f"{jtt['seeds']} seed(s) against {erm['mean']:.1f} ± {erm['std']:.1f} for ERM with the "
            f"IRM paper's protocol (experiments/colored_mnist/results.json, 501 steps, 3 seeds): "
            f"{gain:+.1f} points.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/no_group_labels"))
    parser.add_argument("--out", type=Path, default=Path("experiments/no_group_labels/jtt_dfr"))
    args = parser.parse_args()
    committed = args.out.with_suffix(".json")
    table = summarize(args.runs, json.loads(committed.read_text()) if committed.is_file() else None)
    write_text(args.out.with_suffix(".json"), json.dumps(table, indent=2, sort_keys=True) + "\n")
    text = to_markdown(table) + colored_mnist_target(table)
    write_text(args.out.with_suffix(".md"), text)
    readme = args.out.parent / "README.md"
    if readme.is_file():  # the README shows the same section between its markers
        body = text.split("\n", 1)[1].lstrip("\n")
        write_text(readme, SUMMARY["replace_between"](readme.read_text(), "<!-- jtt-dfr:start (copied from jtt_dfr.md) -->",
                                           "<!-- jtt-dfr:end -->", SECTION_TITLE + "\n\n" + body))
    print(text)


if __name__ == "__main__":
    main()
