"""Benchmark the AFR and DPE heads against the authors' fitting loops on the same cached features.

For each data set, finished ``robustml-train`` runs give the base models: an AFR run (``--afr-run``,
e.g. ``experiment=celeba_attributes_afr``: its base model and held-out training rows) and a DFR
run (``--dpe-run``, whose base model DPE reuses in ``experiments/no_group_labels``). Their
penultimate features come from the feature cache (:func:`robustml.features.cached_split_features`).
On those same arrays, in one process, interleaved and repeated (``--repeats``), this times from
the arrays to the fitted head:

- AFR: :func:`robustml.heads.afr` against ``ref_sweep`` of ``tests/heads/test_afr.py``, the
  transcription of the authors' notebook sweep (``AndPotap/afr``, ``notebooks/wb_celeba.ipynb``:
  ``compute_afr_weights``, ``train`` with validation and test worst-group accuracy after every
  step, the grid loop), the same seed, the same grid;
- DPE: :func:`robustml.heads.dpe` against ``ref_ensemble`` of ``tests/heads/test_dpe.py``, the
  transcription of the authors' member loop (``minhto2802/DPE``, ``src/dpe/core.py``), fed the
  same draws, after the authors' row standardization (``norm_emb``), for each ``balance``.

It reports seconds (median over repeats), the test worst-group and average accuracy of each, and
the ratio of the medians (authors' over robustml's: above 1, robustml is faster). The grids are
smaller than the protocols' (``--gammas``, ``--regs``; ``--members``): the time per
configuration and per member is what is compared, and a full sweep repeats it.

    OMP_NUM_THREADS=1 python scripts/benchmark_heads.py \\
        --set celeba_attributes:<afr run>:<dfr run> --set colored_mnist:<afr run>:<dfr run> \\
        --json experiments/benchmarks/heads.json
"""

from __future__ import annotations

import argparse
import json
import math
import runpy
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from robustml.features import cached_split_features
from robustml.heads import afr, dpe
from robustml.heads.afr import two_logit_head
from robustml.heads.prototypes import standardize_rows
from robustml.losses import num_outputs_for
from robustml.pipeline.afr import split_rows
from robustml.pipeline.instantiate import build_from
from robustml.report import write_text
from robustml.report.machine import machine_info

TESTS = Path(__file__).resolve().parents[1] / "tests" / "heads"


def load_run(run_dir: Path, cache_dir: Path):
    """Return the run's config, its selected model, splits and cached features of every split."""
    cfg = OmegaConf.load(run_dir / "config.yaml")
    splits = build_from(cfg, "data")
    model = build_from(cfg, "model", input_shape=splits.input_shape,
                       num_outputs=num_outputs_for(splits.num_classes))
    model.load_state_dict(torch.load(run_dir / "checkpoints" / "best.pt", weights_only=False)["model"])
    model.eval()
    return cfg, model, splits, cached_split_features(model, splits, cache_dir, progress=False)


def accuracies(preds: np.ndarray, y: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    correct = preds == y
    return {"test_worst_group": 100 * min(correct[groups == g].mean() for g in np.unique(groups)),
            "test_avg": 100 * correct.mean()}


def afr_methods(run_dir: Path, cache_dir: Path, gammas: list[float],
                regs: list[float]) -> tuple[dict, dict, object]:
    """Return ``{name: fit -> test predictions}`` for AFR, a description of the arrays and the
    test split."""
    ref = runpy.run_path(str(TESTS / "test_afr.py"))
    cfg, model, splits, features = load_run(run_dir, cache_dir)
    _, held = split_rows(cfg, len(splits.train))
    x, y = features["train"][held], splits.train.y.numpy()[held]
    val, test = splits.val, splits.test
    weight, bias = model.head.weight.detach(), model.head.bias.detach()
    options = dict(lr=float(cfg.method.lr), num_epochs=int(cfg.method.num_epochs))
    t = torch.tensor  # a copy: the cached arrays are read-only
    emb = dict(e=t(x), y=t(y), val_e=t(features["val"]), val_y=val.y, val_g=val.group,
               test_e=t(features["test"]), test_y=test.y, test_g=test.group)

    def ours():
        return afr(x, y, weight, bias, features["val"], val.y.numpy(), val.group.numpy(),
                   num_groups=splits.num_groups, gammas=gammas, regs=regs, seed=int(cfg.seed),
                   **options).predict(features["test"])

    def authors():
        w0, b0 = two_logit_head(weight, bias)
        best, _ = ref["ref_sweep"]({**emb, "w0": w0, "b0": b0}, gammas, regs, options["lr"],
                                   options["num_epochs"], int(cfg.seed))
        if best is None:
            raise ValueError(f"the authors' sweep chose no setting: every validation worst-group accuracy "
                             f"of --gammas={gammas} x --regs={regs} is 0; use a better base run "
                             f"than {run_dir}")
        W, b = best[4]
        return (t(features["test"]) @ (w0 + W).T + (b0 + b)).argmax(1).numpy()

    about = {"run": str(run_dir), "heldout_rows": list(x.shape), "gammas": gammas, "regs": regs, **options}
    return {"afr_robustml": ours, "afr_authors": authors}, about, test


def dpe_methods(run_dir: Path, cache_dir: Path, members: int, epochs: int,
                batch_size: int) -> tuple[dict, dict]:
    """Return ``{name: fit -> test predictions}`` for DPE (both balances) and a description."""
    ref = runpy.run_path(str(TESTS / "test_dpe.py"))
    cfg, _, splits, features = load_run(run_dir, cache_dir)
    val = splits.val
    y, g = val.y.numpy(), val.group.numpy()
    options = dict(epochs=epochs, lr=1e-3, batch_size=batch_size, cov_reg=5e4, alpha=0.05, entropic=30.0,
                   wd_weight=10.0)
    seed, methods = int(cfg.seed), {}
    for balance in ("class", "group"):
        parts, num_parts = (y, splits.num_classes) if balance == "class" else (g, splits.num_groups)

        def ours(balance=balance):
            return dpe(features["val"], y, g, features["val"], y, g, num_classes=splits.num_classes,
                       num_groups=splits.num_groups, balance=balance, num_members=members, seed=seed,
                       **options).predict(features["test"])

        def authors(parts=parts, num_parts=num_parts):
            xs = torch.from_numpy(standardize_rows(features["val"]).astype(np.float32))  # norm_emb
            ensemble = ref["ref_ensemble"](xs, val.y, parts, num_parts, xs, val.y, val.group, seed=seed,
                                           num_stages=members, **options)
            test = torch.from_numpy(standardize_rows(features["test"]).astype(np.float32))
            return ref["ref_predict"](ensemble, test).argmax(1).numpy()

        methods[f"dpe_{balance}_robustml"], methods[f"dpe_{balance}_authors"] = ours, authors
    return methods, {"run": str(run_dir), "val_rows": list(features["val"].shape), "members": members,
                     **options}


def timed(methods: dict, repeats: int, y: np.ndarray, groups: np.ndarray) -> dict:
    """Run every method once per repeat, interleaved; return seconds, accuracies and ratios."""
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    results = {}
    for _ in range(repeats):
        for name, method in methods.items():
            start = time.perf_counter()
            preds = method()
            seconds[name].append(time.perf_counter() - start)
            results[name] = accuracies(preds, y, groups)
    out = {name: {**results[name], "seconds_median": round(statistics.median(s), 3),
                  "seconds": [round(v, 3) for v in s]} for name, s in seconds.items()}
    for name in methods:
        if name.endswith("_robustml"):
            head = name.removesuffix("_robustml")
            out[f"{head}_ratio_authors_over_robustml"] = round(
                statistics.median(seconds[f"{head}_authors"]) / statistics.median(seconds[name]), 3)
            out[f"{head}_same_test_accuracy"] = all(
                math.isclose(results[name][key], results[f"{head}_authors"][key], abs_tol=1e-9)
                for key in ("test_worst_group", "test_avg"))
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", required=True, metavar="NAME:AFR_RUN:DPE_RUN",
                        help="a data set's name, its AFR run and the run whose base model DPE uses")
    parser.add_argument("--json", type=Path, required=True, help="results file")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=Path("runs/no_group_labels/features"))
    parser.add_argument("--gammas", default="4,12,20", help="AFR's gamma grid (comma-separated)")
    parser.add_argument("--regs", default="0,0.2", help="AFR's reg grid (comma-separated)")
    parser.add_argument("--members", type=int, default=3, help="DPE's ensemble size")
    parser.add_argument("--epochs", type=int, default=20, help="DPE's epochs per member")
    parser.add_argument("--batch-size", type=int, default=256, help="DPE's batch size")
    args = parser.parse_args(argv)
    gammas = [float(v) for v in args.gammas.split(",")]
    regs = [float(v) for v in args.regs.split(",")]
    result = {"machine": machine_info(), "torch_threads": torch.get_num_threads(), "sets": {}}
    for spec in args.set:
        name, afr_run, dpe_run = spec.split(":")
        afr_fits, afr_about, test = afr_methods(Path(afr_run), args.cache_dir, gammas, regs)
        dpe_fits, dpe_about = dpe_methods(Path(dpe_run), args.cache_dir, args.members, args.epochs,
                                          args.batch_size)
        y, groups = test.y.numpy(), test.group.numpy()
        result["sets"][name] = {"afr": {**afr_about, **timed(afr_fits, args.repeats, y, groups)},
                                "dpe": {**dpe_about, **timed(dpe_fits, args.repeats, y, groups)}}
        print(json.dumps({name: result["sets"][name]}, indent=2), flush=True)
    write_text(args.json, json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
