"""Benchmark DFR against a direct scikit-learn implementation, and count a JTT sweep's stages.

**DFR.** A finished ``robustml-train`` run (``--run``, e.g. one of ``experiment=colored_mnist_dfr``)
gives the model; its penultimate features of every split come from the feature cache
(:func:`robustml.features.cached_split_features`). On those same arrays, in one process,
interleaved and repeated (``--repeats``), this times from the arrays to test predictions:

- ``robustml``: :func:`robustml.heads.dfr_on_validation` with its defaults (``n_jobs=1``), and
  with ``n_jobs=2`` (the C grid and the 20 refits in joblib workers);
- ``direct``: the authors' protocol written out with scikit-learn and numpy (below: shuffle and
  halve validation, balance the fitting half, scaler on it, the 7 values of C by worst-group
  accuracy on the other half, then 20 balanced subsamples of all of validation, scaler on the
  training features, coefficients and intercepts averaged), the same seed.

It reports seconds (median over repeats), the test worst-group and average accuracy of each, and
the ratio of the medians.

**JTT.** ``robustml-train -m experiment=<--jtt-experiment> method.lambda_up=<3 values>`` with an
empty ``method.cache_dir``: it counts the stage ones trained and reused from the log lines and
the runs' ``metrics.json`` (``jtt/stage_one_cache``), and times each run.

    OMP_NUM_THREADS=1 python scripts/benchmark_dfr.py --run <run dir> --json experiments/benchmarks/dfr.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
from omegaconf import OmegaConf
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from robustml.report.machine import machine_info
from robustml.features import cached_split_features
from robustml.heads import C_GRID, dfr_on_validation
from robustml.losses import num_outputs_for
from robustml.report import write_text
from robustml.pipeline.instantiate import build_from

L1 = ({"l1_ratio": 1.0} if tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 8)
      else {"penalty": "l1"})


def direct_dfr(x_train, x_val, y_val, g_val, x_test, num_groups, seed):
    """The authors' DFR on validation with scikit-learn and numpy; return test predictions."""
    rng = np.random.default_rng(seed)

    def balanced(groups):
        members = [np.where(groups == g)[0] for g in range(num_groups)]
        smallest = min(len(m) for m in members)
        return np.concatenate([rng.permutation(m)[:smallest] for m in members])

    def logreg(C):
        return LogisticRegression(C=C, solver="liblinear", random_state=seed, **L1)

    order = rng.permutation(len(x_val))
    half = len(x_val) // 2
    fit, score = order[half:], order[:half]
    fit = fit[balanced(g_val[fit])]
    scaler = StandardScaler().fit(x_val[fit])
    worst = []
    for C in C_GRID:
        preds = logreg(C).fit(scaler.transform(x_val[fit]), y_val[fit]).predict(scaler.transform(x_val[score]))
        worst.append(min(np.mean(preds[g_val[score] == g] == y_val[score][g_val[score] == g])
                         for g in range(num_groups)))
    C = C_GRID[int(np.argmax(worst))]
    scaler = StandardScaler().fit(x_train)
    fits = [logreg(C).fit(scaler.transform(x_val[idx]), y_val[idx])
            for idx in (balanced(g_val) for _ in range(20))]
    coef = np.mean([m.coef_ for m in fits], axis=0)
    intercept = np.mean([m.intercept_ for m in fits], axis=0)
    decision = scaler.transform(x_test) @ coef.T + intercept
    return (decision[:, 0] > 0).astype(int) if coef.shape[0] == 1 else decision.argmax(1)


def accuracies(preds, y, groups, num_groups):
    correct = preds == y
    return {"test_worst_group": 100 * min(correct[groups == g].mean() for g in range(num_groups)),
            "test_avg": 100 * correct.mean()}


def load_run(run_dir: Path):
    """Return the run's config, model (selected checkpoint) and splits."""
    cfg = OmegaConf.load(run_dir / "config.yaml")
    splits = build_from(cfg, "data")
    model = build_from(cfg, "model", input_shape=splits.input_shape,
                       num_outputs=num_outputs_for(splits.num_classes))
    model.load_state_dict(torch.load(run_dir / "checkpoints" / "best.pt", weights_only=False)["model"])
    return cfg, model, splits


def benchmark_dfr(run_dir: Path, repeats: int, cache_dir: Path) -> dict:
    cfg, model, splits = load_run(run_dir)
    features = {k: np.asarray(v, dtype=np.float64)
                for k, v in cached_split_features(model, splits, cache_dir, progress=False).items()}
    val, test = splits.val, splits.test
    y_val, g_val = val.y.numpy(), val.group.numpy()
    y_test, g_test = test.y.numpy(), test.group.numpy()
    G, seed = splits.num_groups, int(cfg.seed)
    methods = {
        "robustml": lambda: dfr_on_validation(features["train"], features["val"], y_val, g_val,
                                              num_groups=G, seed=seed).predict(features["test"]),
        "robustml_n_jobs_2": lambda: dfr_on_validation(features["train"], features["val"], y_val, g_val,
                                                       num_groups=G, seed=seed,
                                                       n_jobs=2).predict(features["test"]),
        "direct": lambda: direct_dfr(features["train"], features["val"], y_val, g_val,
                                     features["test"], G, seed),
    }
    seconds = {name: [] for name in methods}
    results = {}
    for _ in range(repeats):
        for name, method in methods.items():  # interleaved: each repeat runs every method once
            start = time.perf_counter()
            preds = method()
            seconds[name].append(time.perf_counter() - start)
            results[name] = accuracies(preds, y_test, g_test, G)
    out = {name: {**results[name], "seconds_median": round(statistics.median(s), 3),
                  "seconds": [round(t, 3) for t in s]} for name, s in seconds.items()}
    out["ratio_direct_over_robustml"] = round(statistics.median(seconds["direct"])
                                              / statistics.median(seconds["robustml"]), 3)
    out["ratio_direct_over_robustml_n_jobs_2"] = round(statistics.median(seconds["direct"])
                                                       / statistics.median(seconds["robustml_n_jobs_2"]), 3)
    out["features"] = {k: list(v.shape) for k, v in features.items()}
    out["run"] = str(run_dir)
    return out


def benchmark_jtt_sweep(experiment: str, lambdas: list[int], overrides: list[str]) -> dict:
    train = Path(sys.executable).with_name("robustml-train")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.run([str(train), "-m", f"experiment={experiment}",
                               f"method.lambda_up={','.join(map(str, lambdas))}",
                               f"method.cache_dir={tmp}/cache", f"hydra.sweep.dir={tmp}/sweep",
                               "trainer.progress=false", *overrides],
                              capture_output=True, text=True, check=False)
        total = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"the JTT sweep failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        runs = [json.loads(p.read_text()) for p in sorted(Path(tmp, "sweep").glob("*/metrics.json"))]
        log = proc.stdout + proc.stderr
        return {"experiment": experiment, "lambda_up": lambdas, "overrides": overrides,
                "stage_one_trained_log_lines": len(re.findall(r"JTT stage one: training", log)),
                "stage_one_reused_log_lines": len(re.findall(r"JTT stage one: reusing", log)),
                "stage_two_runs": len(runs),
                "stage_one_cache_per_run": [r["jtt/stage_one_cache"] for r in runs],
                "cache_entries": len(list(Path(tmp, "cache").iterdir())),
                "train_seconds_per_run": [r["train_seconds"] for r in runs],
                "wall_seconds_total": round(total, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished robustml-train run directory")
    parser.add_argument("--json", type=Path, required=True, help="results file")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=Path("runs/features"))
    parser.add_argument("--jtt-experiment", default="colored_digits_jtt")
    parser.add_argument("--lambdas", default="5,10,20")
    parser.add_argument("--jtt-override", action="append", default=[],
                        help="extra override for the JTT sweep (repeatable), e.g. data.root=...")
    args = parser.parse_args()
    result = {"machine": machine_info(), "dfr": benchmark_dfr(args.run, args.repeats, args.cache_dir),
              "jtt_sweep": benchmark_jtt_sweep(args.jtt_experiment,
                                               [int(v) for v in args.lambdas.split(",")], args.jtt_override)}
    write_text(args.json, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
