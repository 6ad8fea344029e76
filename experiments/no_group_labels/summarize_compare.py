"""Summarize the JTT, DFR, AFR and DPE runs of run_jtt_dfr.sh and run_heads.sh into compare.md and
compare.json (mean ± std), and the README section between its markers.

Rows per dataset: ERM (the base model of the DFR runs: the ``base/...`` metrics of the same runs,
before the last layer is refitted), JTT, DFR, AFR, DPE with class-balanced subsets and DPE with
group-balanced subsets, each over the seeds found under
``runs/no_group_labels/<dataset>_<method>/seed*/metrics.json``. Accuracies in percent; std is the
sample standard deviation over seeds (ddof=1). Each row's group-label ledger is the one its runs'
reports print (``robustml.pipeline.labels.describe_group_label_use`` of each run's config). A row
with no runs under ``--runs`` keeps its entry of the committed ``compare.json``, marked as kept
(runs made on another machine or checkout).

    .venv/bin/python experiments/no_group_labels/summarize_compare.py
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import runpy
from pathlib import Path

from omegaconf import OmegaConf

from robustml.pipeline.labels import describe_group_label_use
from robustml.report import write_text
from robustml.selection import selection_rule

SUMMARY = runpy.run_path(str(Path(__file__).resolve().parents[2] / "scripts" / "summarize_runs.py"))

DATASETS = ("colored_digits", "colored_mnist", "adult", "celeba_attributes")
KEYS = ("test/acc_worst_group", "test/acc_avg", "test/acc_weighted_avg", "val/acc_worst_group")
# (row, experiment suffix, metric prefix)
ROWS = (("ERM (DFR's base model)", "dfr", "base/"), ("JTT", "jtt", ""), ("DFR on validation", "dfr", ""),
        ("AFR", "afr", ""), ("DPE, class-balanced", "dpe", ""), ("DPE, group-balanced", "dpe_group", ""))
# Published numbers (worst-group / average test accuracy) from ../shared/REFERENCES.md. None of
# the papers reports any of the four settings here; the nearest is CelebA from images, a different
# input (pixels, ResNet-50) for the same target and groups.
PUBLISHED = (
    "Published, **not the same setting** (images with an ImageNet-pretrained ResNet-50, not these "
    "four data sets; none of the papers reports Colored MNIST, colored digits, Adult or CelebA "
    "attributes): on CelebA images, ERM 46.9 / 95.3, JTT 81.1 / 88.0, DFR 88.3 / 91.3 (worst-group "
    "/ average, the DFR paper's table). Worst-group only: AFR Waterbirds 90.4 ± 1.1, CelebA "
    "82.0 ± 0.5; DPE without group annotations Waterbirds 94.1 ± 0.2, CelebA 84.6 ± 0.8, and with "
    "validation group labels 94.1 ± 0.4, 90.3 ± 0.7.")


def mean_std(values: list[float]) -> dict[str, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(values)}


def ledger(run_dir: Path, prefix: str) -> dict[str, str]:
    """Return the run's group-label use for training and selection: the whole run's, or (prefix
    ``base/``) its base model's alone."""
    cfg = OmegaConf.load(run_dir / "config.yaml")
    if prefix == "base/":
        return {"training": "none", "selection": selection_rule(cfg.trainer.select).labels}
    uses = describe_group_label_use(cfg)
    return {"training": uses["training"], "selection": uses["selection"]}


def extras(method: str, runs: list[dict]) -> dict:
    """Return the method's chosen settings per seed (and its head's fit time)."""
    if method == "jtt":
        return {"lambda_up": sorted({r["jtt/lambda_up"] for r in runs}),
                "error_set_size": mean_std([r["jtt/error_set_size"] for r in runs]),
                "stage_one_steps": sorted({r["jtt/stage_one_steps"] for r in runs})}
    if method == "dfr":
        return {"C": [r["dfr/C"] for r in runs], "fit_seconds": [r["dfr/fit_seconds"] for r in runs]}
    if method == "afr":
        return {"gamma": [r["afr/gamma"] for r in runs], "reg": [r["afr/reg"] for r in runs],
                "epoch": [r["afr/epoch"] for r in runs],
                "heldout_rows": [r["afr/heldout_rows"] for r in runs],
                "fit_seconds": [r["afr/fit_seconds"] for r in runs]}
    if method.startswith("dpe"):
        return {"subset_size": [r["dpe/subset_size"] for r in runs],
                "member_val_worst_group": [
                    mean_std([100 * v for k, v in r.items()
                              if k.startswith("dpe/member_") and k.endswith("_val_worst_group")])
                    for r in runs],
                "fit_seconds": [r["dpe/fit_seconds"] for r in runs]}
    return {}


def summarize(root: Path, previous: dict[str, dict] | None = None) -> dict[str, dict]:
    """Return the rows of the runs under ``root``; a row without runs there keeps its ``previous``
    entry (the committed summary), marked ``"kept": true``."""
    table: dict[str, dict] = {}
    for dataset in DATASETS:
        for row, method, prefix in ROWS:
            paths = sorted(glob.glob(str(root / f"{dataset}_{method}" / "seed*" / "metrics.json")))
            runs = [json.loads(Path(p).read_text()) for p in paths]
            if not runs:
                if previous and f"{dataset} | {row}" in previous:
                    table[f"{dataset} | {row}"] = {**previous[f"{dataset} | {row}"], "kept": True}
                continue
            stats = {key: mean_std([100 * r[prefix + key] for r in runs]) for key in KEYS
                     if all(r.get(prefix + key) is not None for r in runs)}
            uses = [ledger(Path(p).parent, prefix) for p in paths]
            table[f"{dataset} | {row}"] = {
                "dataset": dataset, "row": row, "seeds": len(runs),
                "training_group_labels": " / ".join(sorted({u["training"] for u in uses})),
                "selection_group_labels": " / ".join(sorted({u["selection"] for u in uses})),
                "metrics": stats, **(extras(method, runs) if not prefix else {}),
                "runs": [str(Path(p).parent) for p in paths]}
    return table


SECTION_TITLE = ("### JTT, DFR, AFR and DPE (from [compare.md](compare.md), which `summarize_compare.py` "
                 "writes)")


def cell(stats: dict, key: str) -> str:
    return f"{stats[key]['mean']:.1f} ± {stats[key]['std']:.1f}" if key in stats else "n/a"


HEADER = """# JTT, DFR, AFR and DPE rows (no training group labels, or validation group labels only)

Produced by `bash experiments/no_group_labels/run_jtt_dfr.sh` (each `<dataset>_jtt` and
`<dataset>_dfr` experiment config), then `bash experiments/no_group_labels/run_heads.sh` (each
`<dataset>_afr`, `<dataset>_dpe` and `<dataset>_dpe_group`; DPE reuses the DFR run's base model of
the same seed through `method.base_run`, AFR trains its own on the 80% of the training split it does
not hold out), seeds 0-2, one run at a time with one thread (`nice -n 10`), and
`.venv/bin/python experiments/no_group_labels/summarize_compare.py` (`compare.md`,
`compare.json` and this section of the README). Mean ± sample std over the seeds, in percent; CPU:
AMD EPYC with AVX2 and AVX-512 (bf16), torch's kernels pinned to AVX2 by the run scripts
(`ATEN_CPU_CAPABILITY=avx2`, the kernels of the earlier AVX2-only machine), 2 cores shared with
other jobs. The *ERM* row is the base model of the DFR runs (their `base/...` metrics), trained with the DFR
config's protocol. Test accuracies are reported, never used: every choice is made on validation
(which, on Colored MNIST and colored digits, is colored by the training environments' rules and
never sees the test environment). "Train-mix average" weights the test groups by their training
shares. The two ledger columns are what each run's report prints.

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
            "not under the runs folder of this summary."
            if any(e.get("kept") for e in table.values()) else "")
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
    parser.add_argument("--out", type=Path, default=Path("experiments/no_group_labels/compare"))
    args = parser.parse_args()
    committed = args.out.with_suffix(".json")
    table = summarize(args.runs, json.loads(committed.read_text()) if committed.is_file() else None)
    write_text(args.out.with_suffix(".json"), json.dumps(table, indent=2, sort_keys=True) + "\n")
    text = to_markdown(table) + colored_mnist_target(table)
    write_text(args.out.with_suffix(".md"), text)
    readme = args.out.parent / "README.md"
    if readme.is_file():  # the README shows the same section between its markers
        body = text.split("\n", 1)[1].lstrip("\n")
        marker = "<!-- compare:start (copied from compare.md) -->"
        write_text(readme, SUMMARY["replace_between"](readme.read_text(), marker, "<!-- compare:end -->",
                                                      SECTION_TITLE + "\n\n" + body))
    print(text)


if __name__ == "__main__":
    main()
