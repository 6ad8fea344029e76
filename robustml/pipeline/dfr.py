"""DFR for ``robustml-train method=dfr``: retrain the selected model's last layer on cached features.

Kirichenko et al. (ICLR 2023), through :mod:`robustml.heads.dfr`. The base model is the run's
own (trained as usual, selected on validation) or, with ``method.base_run=<run dir>``, the
selected checkpoint of a finished run with the same data and model. Its penultimate features of
every split go through the feature cache (:func:`robustml.features.cached_split_features`, under
``method.cache_dir``); DFR fits on them, and its predictions replace the run's ``{split}/...``
metrics, while the base model's move to ``base/{split}/...``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from robustml.data.contract import DataSplits
from robustml.metrics import group_accuracy, prediction_shares
from robustml.report import markdown_table
from robustml.train.checkpoint import load_checkpoint, save_checkpoint
from robustml.pipeline.build import RunData
from robustml.health import Finding, Thresholds
from robustml.identity import data_identity, differences
from robustml.pipeline.stages import run_config
from robustml.train.health import label_counts, one_class_predictor

if TYPE_CHECKING:
    from robustml.heads.dfr import DFRResult

FIT_ON = ("val", "train")
SPLIT_PREFIXES = ("train/", "val/", "test/")
DFR_HEAD = "dfr_head.pt"  # in checkpoints/: DFR's last layer, the scaler folded in


def _base_keys(cfg: DictConfig) -> dict[str, Any]:
    """The settings a base run must share with this run: the data and the model."""
    return {"data": data_identity(OmegaConf.to_container(cfg.data, resolve=True)),
            "model": OmegaConf.to_container(cfg.model, resolve=True)}


def reuse_base_run(cfg: DictConfig, model: torch.nn.Module, best_path: Path) -> dict[str, Any]:
    """Load the selected checkpoint of ``method.base_run`` into ``model``; return the base run's fit
    result (``best_step``, ``steps``, ``history``, ``elapsed`` as :meth:`Trainer.fit` returns them).

    The checkpoint is copied to ``best_path`` (this run's ``checkpoints/best.pt``), so the run's
    outputs are whole without the base run. A base run with other data or another model is
    refused, naming the keys.
    """
    base = Path(cfg.method.base_run)
    differ = [f"{key}: this run has {mine!r}, the base run has {theirs!r}" for key, mine, theirs
              in differences(_base_keys(cfg), _base_keys(run_config(base, what="method.base_run")))]
    if differ:
        raise ValueError(f"method.base_run={base} was trained with other data or another model ("
                         + "; ".join(differ)
                         + "); train the base model here (method.base_run=null) or pick a matching run")
    best = load_checkpoint(base / "checkpoints" / "best.pt")
    last = load_checkpoint(base / "checkpoints" / "last.pt")
    save_checkpoint(best_path, best)
    model.load_state_dict(best["model"])
    return {"best_step": int(best["step"]), "steps": int(last["step"]), "history": last["history"],
            "elapsed": 0.0}


def fit_dfr(cfg: DictConfig, features: dict[str, np.ndarray], splits: DataSplits) -> DFRResult:
    """Run :func:`~robustml.heads.dfr.dfr_on_validation` or ``dfr_on_train`` per ``method.fit_on``."""
    from robustml.heads.dfr import dfr_on_train, dfr_on_validation  # scikit-learn: only for DFR runs
    options = cfg.method
    if options.fit_on not in FIT_ON:
        raise ValueError(f"method.fit_on must be one of {list(FIT_ON)}, got {options.fit_on!r}")
    labels = {name: (split.y.cpu().numpy(), split.group.cpu().numpy()) for name, split in splits.items()}
    common = {"C_grid": [float(c) for c in options.C_grid], "max_iter": options.max_iter, "seed": cfg.seed, "n_jobs": options.n_jobs,
              "group_names": splits.group_names}
    if options.num_refits is not None:  # null: each function's default, the authors' count
        common["num_refits"] = options.num_refits
    if options.fit_on == "val":
        return dfr_on_validation(features["train"], features["val"], *labels["val"],
                                 num_groups=splits.num_groups, **common)
    return dfr_on_train(features["train"], *labels["train"], features["val"], *labels["val"],
                        num_groups=splits.num_groups, **common)


def dfr_stage(cfg: DictConfig, model: torch.nn.Module, data: RunData, run_dir: Path,
              final: dict[str, Any], tables: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Fit DFR on the selected ``model``'s features; return new metrics and tables with DFR's results.

    DFR's predictions give the ``{split}/...`` metrics; the base model's (``final``'s) move to
    ``base/{split}/...``. DFR's layer is saved as ``run_dir/checkpoints/dfr_head.pt``.
    """
    from robustml.features import cached_split_features  # the cache and its DataLoader: only here
    splits = data.splits
    features = cached_split_features(model, splits, Path(cfg.method.cache_dir),
                                     batch_size=cfg.trainer.eval_batch_size,
                                     num_workers=cfg.trainer.num_workers, progress=cfg.trainer.progress)
    start = time.perf_counter()
    result = fit_dfr(cfg, features, splits)
    seconds = time.perf_counter() - start
    weight, bias = result.linear()  # robustml-audit applies it on top of best.pt's features
    save_checkpoint(Path(run_dir) / "checkpoints" / DFR_HEAD, {"weight": weight, "bias": bias})
    out = {key: value for key, value in final.items() if not key.startswith(SPLIT_PREFIXES)}
    out.update({f"base/{key}": value for key, value in final.items() if key.startswith(SPLIT_PREFIXES)})
    for name, split in splits.items():
        preds = torch.from_numpy(result.predict(features[name]).astype(np.int64))
        metrics = group_accuracy(preds, split.y.cpu(), split.group.cpu(), num_groups=split.num_groups,
                                 train_counts=data.train_counts.cpu())
        metrics.update(prediction_shares(preds, num_classes=split.num_classes))
        out.update({f"{name}/{key}": value for key, value in metrics.items()})
    out.update({"dfr/C": result.C, "dfr/fit_on": result.fit_on, "dfr/fit_seconds": round(seconds, 3),
                "dfr/subsample_size": result.subsample_size, "dfr/num_refits": result.num_refits})
    out.update({f"dfr/tuning_worst_group_C_{c:g}": score for c, score in result.tuning.items()})
    out.update({f"dfr/tuning_{part}_count_group_{g}": n for part, counts in result.tuning_counts.items()
                for g, n in enumerate(counts)})
    return out, [_report(cfg, result, final, out), *tables]


def _report(cfg: DictConfig, result: DFRResult, base: dict[str, Any], dfr: dict[str, Any]) -> str:
    fit_on = {"val": "validation", "train": "training"}[result.fit_on]
    rows = [[model, *(f"{100 * metrics[f'{split}/{key}']:.1f}" for split in ("val", "test")
                      for key in ("acc_worst_group", "acc_avg"))]
            for model, metrics in (("base model", base), ("DFR", dfr))]
    tuning = [[f"{c:g}", f"{100 * score:.1f}", "<- chosen" if c == result.C else ""]
              for c, score in result.tuning.items()]
    return (f"## DFR (Kirichenko et al., ICLR 2023)\n\nThe base model's last layer is replaced by an "
            f"L1 logistic regression (liblinear) on its standardized penultimate features, fitted on "
            f"group-balanced subsets of the {fit_on} split ({result.subsample_size} rows each, "
            f"{result.num_refits} fits averaged), so DFR uses the {fit_on} split's group labels. "
            f"The per-group tables of this report are DFR's; the base model's metrics are "
            f"`base/...` in metrics.json (the stress test, if any, is the base model's).\n\n"
            + markdown_table(["model", "val worst", "val avg", "test worst", "test avg"], rows)
            + "\n\nC chosen by worst-group accuracy on held-out validation rows:\n\n"
            + markdown_table(["C", "worst-group (%)", ""], tuning))


def health(cfg: DictConfig, final: dict[str, Any], splits: DataSplits, *,
           thresholds: Thresholds) -> list[Finding]:
    """DFR's checks: the chosen C at the edge of its grid (the best C may lie beyond it), a group
    with too few examples in a part of the tuning (C is chosen on noise), and a last layer that
    predicts one class on val or test (:func:`robustml.train.health.one_class_predictor`).

    Args:
        cfg: The run's config (``method.C_grid``, ``method.fit_on``).
        final: The run's metrics after :func:`dfr_stage` (``dfr/...`` and DFR's ``{split}/...``).
        splits: The run's data (class counts and names, group names).
        thresholds: The thresholds.
    """
    found = _grid_edge(cfg, final)
    found += _small_tuning_groups(cfg, final, splits.group_names, thresholds.dfr_min_tuning_group)
    found += one_class_predictor(final, label_counts(splits.items()), splits.train.class_names,
                                 thresholds=thresholds, model="DFR's last layer",
                                 hint="its L1 penalty may have removed every feature; add larger "
                                      "values to method.C_grid, or train the base model longer")
    return found


def _grid_edge(cfg: DictConfig, final: dict[str, Any]) -> list[Finding]:
    grid = [float(c) for c in cfg.method.C_grid]
    chosen = final.get("dfr/C")
    if chosen is None or len(grid) < 2 or float(chosen) not in (max(grid), min(grid)):
        return []
    side = "largest" if float(chosen) == max(grid) else "smallest"
    return [Finding("dfr_c_at_grid_edge", 2,
                    f"DFR chose C={float(chosen):g}, the {side} value of method.C_grid={grid}: the "
                    f"best C may lie beyond it; extend method.C_grid past {float(chosen):g}")]


# Where each part of DFR's tuning comes from, per method.fit_on, and what gives it more rows.
TUNING_PARTS = {
    "val": {"fit": "the fitting half of validation", "score": "the scoring half of validation"},
    "train": {"fit": "the training split", "score": "the validation split"},
}
TUNING_REMEDY = {"val": "more validation data, or method.fit_on=train",
                 "train": "more validation data, or more training examples of the groups named"}


def _small_tuning_groups(cfg: DictConfig, final: dict[str, Any], group_names: Sequence[str],
                         minimum: int) -> list[Finding]:
    """Fire when a group has fewer than ``minimum`` examples in a part of the tuning (one
    finding naming every such part, group and count)."""
    parts = []
    for part, where in TUNING_PARTS.get(cfg.method.fit_on, {}).items():
        small = [f"group {g} ({name}) has {final[key]}" for g, name in enumerate(group_names)
                 if (key := f"dfr/tuning_{part}_count_group_{g}") in final and final[key] < minimum]
        if small:
            parts.append(f"in {where}, {', '.join(small)}")
    if not parts:
        return []
    return [Finding("dfr_small_tuning_group", 2,
                    f"DFR's choice of C rests on few examples: {'; '.join(parts)} (fewer than "
                    f"{minimum}), so the worst-group accuracy that picks C is noise; use "
                    f"{TUNING_REMEDY[cfg.method.fit_on]}")]
