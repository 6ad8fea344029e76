"""How far can any label-error detector go on a tabular case? An oracle precision-recall frontier.

For ``celeba_attributes_sym20`` (or ``adult_sym20``) of ``scripts/benchmark_cleaning.py``, the class
posterior ``P(y | x)`` is estimated from the **clean** labels (5-fold ``cross_val_predict`` of
scikit-learn's ``HistGradientBoostingClassifier``: an oracle, since no cleaner sees clean labels).
Under symmetric noise of rate ``rho`` the probability that an observed label ``l`` is wrong is
``rho (1 - P(l|x)) / (rho (1 - P(l|x)) + (1 - rho) P(l|x))`` (binary labels); flagging examples
in decreasing order of it traces the frontier: the best precision at each recall that the
features allow (up to the estimate of the posterior). Each method of the benchmark JSON is placed
against it: the oracle's precision at the method's recall, and the oracle's largest recall at the
method's precision. Usage::

    python scripts/cleaning_frontier.py --case celeba_attributes_sym20 --json experiments/benchmarks/cleaning_frontier.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_cleaning import CASES, METHODS, load_train  # noqa: E402

from robustml.data.datasets import with_label_noise  # noqa: E402
from robustml.report import write_text  # noqa: E402


def frontier(posterior_wrong: np.ndarray, corrupted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return precision and recall after flagging the top ``k`` examples, ``k = 1..N``."""
    order = np.argsort(-posterior_wrong, kind="stable")
    hits = np.cumsum(corrupted[order])
    return hits / np.arange(1, len(order) + 1), hits / corrupted.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", default="celeba_attributes_sym20", choices=["adult_sym20", "celeba_attributes_sym20"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="noise seeds")
    parser.add_argument("--benchmark", type=Path, default=Path("experiments/benchmarks/cleaning.json"),
                        help="the benchmark JSON whose methods are placed against the frontier")
    parser.add_argument("--data-root", default=os.environ.get("ROBUSTML_DATA", "../shared/data"))
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_predict

    data, kind, rate = CASES[args.case]
    clean = load_train(data, args.data_root)
    x, y = clean.x.reshape(len(clean), -1).numpy(), clean.y.numpy()
    if clean.num_classes != 2:
        raise ValueError(f"the frontier formula is for binary labels; {args.case} has {clean.num_classes} classes")
    probs = cross_val_predict(HistGradientBoostingClassifier(), x, y, cv=5, method="predict_proba")
    runs = json.loads(args.benchmark.read_text())["runs"][args.case]
    out = {"case": args.case, "posterior": "5-fold cross_val_predict(HistGradientBoostingClassifier()) "
           "on the clean labels (oracle)", "clean_label_accuracy": float((probs.argmax(1) == y).mean()),
           "seeds": {}}
    for seed in args.seeds:
        noisy = with_label_noise(clean, rate, kind=kind, seed=seed)
        labels = np.asarray(noisy.noise.labels)
        corrupted = np.zeros(len(labels), dtype=bool)
        corrupted[np.asarray(noisy.noise.corrupted)] = True
        rho = corrupted.mean()
        p_label = probs[np.arange(len(labels)), labels]
        wrong = rho * (1 - p_label) / (rho * (1 - p_label) + (1 - rho) * p_label)
        precision, recall = frontier(wrong, corrupted)
        placed = {}
        for method, result in runs.get(str(seed), {}).items():
            if method not in METHODS:
                continue
            at_recall = int(min(np.searchsorted(recall, result["recall"]), len(recall) - 1))
            reach = recall[precision >= result["precision"]]
            placed[method] = {"precision": result["precision"], "recall": result["recall"],
                              "oracle_precision_at_its_recall": float(precision[at_recall]),
                              "oracle_max_recall_at_its_precision": float(reach.max()) if reach.size else 0.0}
        out["seeds"][str(seed)] = {"corrupted": int(corrupted.sum()), "methods": placed}
        print(args.case, seed, json.dumps(placed, indent=1), flush=True)
    write_text(args.json, json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
