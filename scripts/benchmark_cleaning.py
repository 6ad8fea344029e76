"""Benchmark label cleaning: robustml's shipped defaults against cleanlab's CleanLearning.

Every case takes a training set, corrupts its labels with :func:`robustml.cleaning.add_label_noise`
(seeded) and times, in one process one after the other, each method from the arrays in memory to
its boolean mask of flagged examples:

- ``robustml``: :func:`robustml.cleaning.detect_label_issues` ``(x, noisy_labels)`` with every
  default (``configs/cleaning/confident_learning.yaml`` holds the same): images get the
  cross-fitted MLP fast path, tables ``HistGradientBoostingClassifier()`` 5-fold; then
  ``filter_by="lowest_label_posterior"`` (cleanlab's ``prune_by_noise_rate`` count, the
  examples least likely correct under cleanlab's noise matrix, across classes).
- ``cleanlab_cleanlearning``: ``CleanLearning(LogisticRegression(max_iter=500), cv_n_folds=5)
  .find_label_issues(X, labels)`` on the flattened inputs.
- ``hgb_cross_val_predict`` (tabular cases): ``cleanlab.filter.find_label_issues`` on
  ``cross_val_predict(HistGradientBoostingClassifier(), X, labels, cv=5, method="predict_proba")``.
- ``ablation_network_2fold`` (image cases, not a baseline): the same networks as the fast path
  but scoring the other half with their own output layer (``KFoldNetwork``, 2 folds), the
  design the fast path's per-part heads were measured against.

Cases: ``mnist_sym20`` / ``mnist_sym40`` (the 60,000 MNIST training images, raw pixels / 255,
symmetric noise), ``mnist_classcond30`` (class ``c`` labelled ``c + 1 mod 10`` with probability
0.3), ``adult_sym20`` (UCI Adult training rows after the loader's validation hold-out, 102
standardized / one-hot features, 20% symmetric), ``celeba_attributes_sym20`` (CelebA's official
training partition, the 38 attributes other than Blond_Hair and Male as 0/1 inputs, target
Blond_Hair, 20% symmetric). Precision = flagged and corrupted / flagged; recall = flagged and
corrupted / corrupted.

    OMP_NUM_THREADS=1 python scripts/benchmark_cleaning.py --json experiments/benchmarks/cleaning.json \\
        --threads 1 --seeds 0 1 2

Each noise seed is a separate run of the case (noise, folds and models seeded by it). ``--cases``
and ``--methods`` run a subset: results are merged into an existing ``--json`` file per case,
seed and method, each method's entry stamped with the UTC time it was measured, and every case's
summary (mean and sample std over the seeds present, per method) is recomputed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from robustml.report.machine import machine_info
from robustml.cleaning import KFoldNetwork, detect_label_issues
from robustml.data.contract import GroupedTensorDataset
from robustml.data.datasets import mnist_splits, with_label_noise
from robustml.report.tables import atomic_path

CASES = {  # name: (data, noise kind, rate)
    "mnist_sym20": ("mnist", "symmetric", 0.2),
    "mnist_sym40": ("mnist", "symmetric", 0.4),
    "mnist_classcond30": ("mnist", "asymmetric", 0.3),
    "adult_sym20": ("adult", "symmetric", 0.2),
    "celeba_attributes_sym20": ("celeba_attributes", "symmetric", 0.2),
}
METHODS = ("robustml", "cleanlab_cleanlearning", "hgb_cross_val_predict", "ablation_network_2fold")
BASELINES = ("cleanlab_cleanlearning", "hgb_cross_val_predict")
METRICS = ("seconds", "precision", "recall", "flagged")


def load_train(data: str, root: str) -> GroupedTensorDataset:
    """Return the clean training set of ``data``."""
    if data == "mnist":
        base = mnist_splits(root)  # train = first 50,000 training images, val = last 10,000
        return base.train.replace(x=torch.cat([base.train.x, base.val.x]),
                                  y=torch.cat([base.train.y, base.val.y]),
                                  attr=torch.cat([base.train.attr, base.val.attr]))
    if data == "adult":
        from robustml.data.datasets.adult import adult_splits
        return adult_splits(root).train
    from robustml.data.datasets.celeba_attributes import celeba_attributes_splits
    return celeba_attributes_splits(root).train


def scores(flagged: np.ndarray, corrupted: np.ndarray, seconds: float) -> dict[str, float]:
    hits = int((flagged & corrupted).sum())
    return {"seconds": round(seconds, 2), "precision": hits / max(int(flagged.sum()), 1),
            "recall": hits / max(int(corrupted.sum()), 1), "flagged": int(flagged.sum())}


def timed(function, corrupted: np.ndarray) -> dict[str, float]:
    start = time.perf_counter()
    flagged = function()
    out = scores(np.asarray(flagged, dtype=bool), corrupted, time.perf_counter() - start)
    return {**out, "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def cleanlearning(x: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    from cleanlab.classification import CleanLearning
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=500 is the setting compared
        issues = CleanLearning(LogisticRegression(max_iter=500), cv_n_folds=5,
                               seed=seed).find_label_issues(x, labels)
    return issues["is_label_issue"].to_numpy(dtype=bool)


def hgb_cross_val_predict(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    from cleanlab.filter import find_label_issues
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_predict

    probs = cross_val_predict(HistGradientBoostingClassifier(), x, labels, cv=5,
                              method="predict_proba")
    return find_label_issues(labels, probs)


def run_case(name: str, root: str, seed: int, methods: list[str], previous: dict) -> dict:
    """Run ``methods`` on case ``name`` with noise seed ``seed``; keep ``previous``'s others."""
    data, kind, rate = CASES[name]
    noisy = with_label_noise(load_train(data, root), rate, kind=kind, seed=seed)
    labels = noisy.noise.labels
    corrupted = np.zeros(len(noisy), dtype=bool)
    corrupted[noisy.noise.corrupted] = True
    flat = noisy.x.reshape(len(noisy), -1).numpy()
    out = {**previous, "rows": len(noisy), "features": int(flat.shape[1]),
           "corrupted": int(corrupted.sum()), "noise": f"{kind} {rate:g}"}
    functions = {"robustml": lambda: detect_label_issues(noisy.x, labels, seed=seed).is_issue,
                 "cleanlab_cleanlearning": lambda: cleanlearning(flat, labels, seed)}
    if data == "mnist":
        functions["ablation_network_2fold"] = lambda: detect_label_issues(
            noisy.x, labels, model=KFoldNetwork(), num_folds=2, seed=seed).is_issue
    else:
        functions["hgb_cross_val_predict"] = lambda: hgb_cross_val_predict(flat, labels)
    for method in (m for m in METHODS if m in methods and m in functions):
        out[method] = {**timed(functions[method], corrupted), "load_average_start": os.getloadavg()[0]}
        print(name, seed, method, out[method], flush=True)
    out["targets"] = targets(name, out)
    return out


def summarize(name: str, runs: dict[str, dict]) -> dict:
    """Mean and sample std over the seeds in ``runs`` of every method's metrics, and the targets
    on the means."""
    first = runs[min(runs, key=int)]
    out: dict = {"noise": first["noise"], "rows": first["rows"], "features": first["features"]}
    for method in METHODS:
        seeds = sorted((s for s in runs if method in runs[s]), key=int)
        if not seeds:
            continue
        values = {m: [runs[s][method][m] for s in seeds] for m in METRICS}
        out[method] = {m: round(statistics.fmean(v), 4) for m, v in values.items()}
        out[method]["std"] = {m: round(statistics.stdev(v), 4) if len(v) > 1 else None
                              for m, v in values.items()}
        out[method]["seeds"] = [int(s) for s in seeds]
    out["targets"] = targets(name, out)
    out["targets_met_on_every_seed"] = {  # over the seeds whose run holds the methods compared
        key: all(runs[s]["targets"][key] for s in runs if key in runs[s]["targets"])
        for key in out["targets"]}
    return out


def targets(name: str, case: dict) -> dict[str, bool]:
    """The issue's targets: precision and recall >= the best baseline's (>= 0.95 on MNIST
    symmetric), and at most a quarter of CleanLearning's time on MNIST; only those whose
    methods ``case`` holds."""
    ours = case.get("robustml")
    baselines = [case[k] for k in BASELINES if k in case]
    if ours is None:
        return {}
    out = {metric: ours[metric] >= max(b[metric] for b in baselines)
           for metric in ("precision", "recall") if baselines}
    if name.startswith("mnist") and "cleanlab_cleanlearning" in case:
        out["quarter_of_cleanlearning_time"] = \
            ours["seconds"] <= case["cleanlab_cleanlearning"]["seconds"] / 4
    if name in ("mnist_sym20", "mnist_sym40"):
        out["at_least_0.95"] = min(ours["precision"], ours["recall"]) >= 0.95
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, required=True, help="results file (merged by case)")
    parser.add_argument("--root", default=os.environ.get("ROBUSTML_DATA", "../shared/data"),
                        help="folder holding MNIST/raw, adult/, celeba/ (default: $ROBUSTML_DATA "
                             "or ../shared/data)")
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="noise seeds (each also seeds the folds and the models)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="methods to run (the others keep their results from --json)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and BLAS/OpenMP threads (default: all)")
    parser.add_argument("--markdown", action="store_true",
                        help="print the summary table of --json and run nothing")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.json.read_text())))
        return
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    results = json.loads(args.json.read_text()) if args.json.is_file() else {}
    results.setdefault("cases", {})
    results.setdefault("runs", {})
    with threadpool_limits(limits=args.threads):
        for name in args.cases:
            for seed in args.seeds:
                runs = results["runs"].setdefault(name, {})
                runs[str(seed)] = run_case(name, args.root, seed, args.methods,
                                           runs.get(str(seed), {}))
                results["cases"][name] = summarize(name, runs)
                results["settings"] = settings(args.threads)
                with atomic_path(args.json) as tmp:
                    tmp.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")


LABELS = {"robustml": "**robustml defaults**", "cleanlab_cleanlearning": "CleanLearning",
          "hgb_cross_val_predict": "HGB cross_val_predict",
          "ablation_network_2fold": "ablation: 2-fold networks, no heads"}


def markdown(results: dict) -> str:
    """Return the summary table of ``results`` (mean ± sample std over seeds) as markdown."""
    lines = ["| case | method | seeds | seconds | precision | recall | flagged |",
             "|---|---|---|---|---|---|---|"]
    for name, case in results["cases"].items():
        for method in (m for m in METHODS if m in case):
            entry = case[method]

            def cell(metric: str, digits: int) -> str:
                std = entry["std"][metric]
                return f"{entry[metric]:.{digits}f}" + ("" if std is None else
                                                         f" ± {std:.{digits}f}")
            seeds = ",".join(str(s) for s in entry["seeds"])
            lines.append(f"| {name} | {LABELS[method]} | {seeds} | {cell('seconds', 1)} | "
                         f"{cell('precision', 3)} | {cell('recall', 3)} | {cell('flagged', 0)} |")
    return "\n".join(lines)


def settings(threads: int | None) -> dict:
    return {
        "threads": threads,
        "robustml": "detect_label_issues(x, noisy_labels, seed=seed) with every other default",
        "cleanlab_cleanlearning": "CleanLearning(LogisticRegression(max_iter=500), "
                                  "cv_n_folds=5, seed=seed).find_label_issues(X, labels)",
        "hgb_cross_val_predict": "cleanlab.filter.find_label_issues(labels, "
                                 "cross_val_predict(HistGradientBoostingClassifier(), X, "
                                 "labels, cv=5, method='predict_proba'))",
        "cases": "mean and sample std over the noise seeds in runs/<case>/<seed>",
        "timing": "wall clock from data in memory to the flagged mask; one process, "
                  "sequential, in the order listed per case",
        "machine": machine_info()}


if __name__ == "__main__":
    main()
