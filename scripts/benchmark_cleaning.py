"""Benchmark label cleaning on MNIST: robustml's fast path vs cleanlab's CleanLearning.

Data: the 60,000 MNIST training images (raw pixels / 255), labels corrupted with 20% symmetric
noise by :func:`robustml.cleaning.add_label_noise` (each label replaced with probability 0.2 by a
different class, uniformly). Both methods get the same arrays in memory; each is timed from there
to its boolean mask of flagged examples, in the same process, one after the other:

- ``robustml``: :func:`robustml.train.clean.clean_splits` with ``cleaning.method=linear_heads``
  (train one MLP 784-512-64-10 for one epoch on the noisy labels, Adam lr 0.002, batches of
  128; 5-fold linear heads on its 64-d features; cleanlab's ``find_label_issues`` with
  ``filter_by=prune_by_class``), configured from ``configs/clean.yaml``; its
  probability cache goes to a fresh temporary folder, so nothing is reused between runs.
- ``cleanlab_cleanlearning``: ``CleanLearning(LogisticRegression(max_iter=100), cv_n_folds=5)
  .find_label_issues(X, labels)`` (5-fold cross-validated logistic regression on the pixels).

Precision = flagged and corrupted / flagged; recall = flagged and corrupted / corrupted.

    python scripts/benchmark_cleaning.py --json experiments/benchmarks/cleaning.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_module

from robustml.data.contract import DataSplits
from robustml.data.datasets import mnist_splits, with_label_noise
from robustml.train.clean import clean_splits

OVERRIDES = ["data=mnist", "model.hidden_dims=[512,64]", "optimizer.lr=0.002",
             "cleaning.method=linear_heads", "cleaning.num_folds=5", "cleaning.epochs=1",
             "cleaning.batch_size=128", "cleaning.filter_by=prune_by_class",
             "cleaning.head.C=1.0", "cleaning.head.max_iter=30", "cleaning.guard.max_fraction=1.0",
             "trainer.progress=false"]


def precision_recall(flagged: np.ndarray, corrupted: np.ndarray) -> dict[str, float]:
    hits = int((flagged & corrupted).sum())
    return {"precision": hits / max(int(flagged.sum()), 1),
            "recall": hits / max(int(corrupted.sum()), 1), "flagged": int(flagged.sum())}


def run_robustml(splits: DataSplits, seed: int) -> dict[str, float]:
    with initialize_config_module(config_module="robustml.configs", version_base="1.3"):
        cfg = compose(config_name="clean", overrides=[*OVERRIDES, f"seed={seed}"])
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        summary = clean_splits(cfg, splits, run_dir).summary
        seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "precision": summary["cleaning/precision"],
            "recall": summary["cleaning/recall"], "flagged": summary["cleaning/flagged"]}


def run_cleanlab(x: np.ndarray, labels: np.ndarray, corrupted: np.ndarray,
                 seed: int) -> dict[str, float]:
    from cleanlab.classification import CleanLearning
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=100 is the setting compared
        issues = CleanLearning(LogisticRegression(max_iter=100), cv_n_folds=5,
                               seed=seed).find_label_issues(x, labels)
    seconds = time.perf_counter() - start
    flagged = issues["is_label_issue"].to_numpy(dtype=bool)
    return {"seconds": round(seconds, 2), **precision_recall(flagged, corrupted)}


def machine() -> dict[str, object]:
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, required=True, help="where to write the results")
    parser.add_argument("--root", default=os.environ.get("ROBUSTML_DATA", "../shared/data"),
                        help="folder holding MNIST/raw (default: $ROBUSTML_DATA or ../shared/data)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise and of our models")
    parser.add_argument("--rate", type=float, default=0.2, help="symmetric noise rate")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--skip-cleanlab", action="store_true",
                        help="time only robustml (CleanLearning takes 80+ s)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    base = mnist_splits(args.root)  # train = first 50,000 training images, val = last 10,000
    full = base.train.replace(x=torch.cat([base.train.x, base.val.x]),
                              y=torch.cat([base.train.y, base.val.y]),
                              attr=torch.cat([base.train.attr, base.val.attr]))
    noisy = with_label_noise(full, args.rate, kind="symmetric", seed=args.seed)
    corrupted = np.zeros(len(noisy), dtype=bool)
    corrupted[noisy.noise.corrupted] = True
    splits = DataSplits(noisy, base.val, base.test, description="MNIST, all 60,000 training images")

    results: dict[str, object] = {"robustml": run_robustml(splits, args.seed)}
    print("robustml", results["robustml"], flush=True)
    if not args.skip_cleanlab:
        x = noisy.x.reshape(len(noisy), -1).numpy()
        results["cleanlab_cleanlearning"] = run_cleanlab(x, noisy.noise.labels, corrupted,
                                                         args.seed)
        print("cleanlab CleanLearning", results["cleanlab_cleanlearning"], flush=True)
    results["settings"] = {
        "data": f"MNIST training split, 60,000 images, raw pixels / 255, {args.rate:g} symmetric "
                "noise (robustml.cleaning.add_label_noise)",
        "seed": args.seed, "corrupted": int(corrupted.sum()),
        "robustml_overrides": OVERRIDES,
        "cleanlab": "CleanLearning(LogisticRegression(max_iter=100), cv_n_folds=5)"
                    ".find_label_issues(X, labels)",
        "timing": "wall clock from data in memory to the flagged mask; one process, sequential",
        "machine": machine()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
