"""The cleaning stage: confident learning on the training split before the run trains.

``clean_splits(cfg, splits, run_dir)`` computes out-of-sample probabilities for every training
example (``cfg.cleaning.method``: ``kfold`` trains a fresh model per fold; ``linear_heads`` trains
one model and fits K-fold linear heads on its features, see :mod:`robustml.train.fit_predict`),
flags likely label errors with cleanlab's confident learning (Northcutt, Jiang, Chuang, JAIR 2021),
caps the flagged fraction per group (minority groups look like label errors to a model that
learned a shortcut) and prunes, relabels or reweights the flagged rows. It writes
``label_issues.csv`` and ``cleaning_summary.json`` into the run directory and caches the
probabilities there (``cache/oof_<hash>.npy``, or under ``cfg.cleaning.cache_dir``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from robustml.cleaning import (ACTIONS, FILTER_BY, QUALITY_METHODS, apply_action,
                               apply_group_cap, cached_out_of_fold_probs, find_label_issues,
                               hash_key, per_group_report, write_label_issues_csv)
from robustml.data.contract import DataSplits, GroupedTensorDataset
from robustml.data.datasets.noisy import label_noise_of
from robustml.losses import num_outputs_for
from robustml.report import markdown_table, write_metrics_json
from robustml.train.fit_predict import FitSettings, FrozenFeatureHeads, kfold_fit_predict
from robustml.train.instantiate import build_from

METHODS = ("kfold", "linear_heads")
CACHE_VERSION = "robustml.clean/1"  # bump when the probabilities for the same config change
GUARDED = "guarded"  # label_issues.csv action of a row the group guard kept


@dataclass
class CleanedData:
    """What the cleaning stage hands to training.

    Attributes:
        train: The new training split (pruned rows removed, or labels replaced).
        weights: Per-example weights of ``train``, shape ``(len(train),)``, float32, for
            ``action=reweight``; ``None`` otherwise.
        summary: Flat ``cleaning/...`` entries for ``metrics.json``.
        report_md: A ``## Label cleaning`` markdown section for ``report.md``.
    """

    train: GroupedTensorDataset
    weights: torch.Tensor | None
    summary: dict[str, Any]
    report_md: str


def check_cleaning_config(options: DictConfig, num_groups: int) -> None:
    """Raise ``ValueError`` naming the ``cleaning.*`` key whose value is invalid."""
    choices = {"method": METHODS, "action": ACTIONS, "filter_by": FILTER_BY,
               "quality_method": QUALITY_METHODS}
    for key, allowed in choices.items():
        if options[key] not in allowed:
            raise ValueError(f"cleaning.{key} must be one of {allowed}, got {options[key]!r}")
    if isinstance(options.num_folds, bool) or not isinstance(options.num_folds, int) \
            or options.num_folds < 2:
        raise ValueError(f"cleaning.num_folds must be an int >= 2, got {options.num_folds!r}")
    if not 0.0 <= options.guard.max_fraction <= 1.0:
        raise ValueError(f"cleaning.guard.max_fraction must lie in [0, 1], got "
                         f"{options.guard.max_fraction!r}")
    bad = [g for g in options.guard.protect_groups if not 0 <= g < num_groups]
    if bad:
        raise ValueError(f"cleaning.guard.protect_groups must hold group ids in [0, {num_groups}), "
                         f"got {list(options.guard.protect_groups)}")


def out_of_sample_probs(cfg: DictConfig, train: GroupedTensorDataset,
                        cache_dir: Path) -> tuple[np.ndarray, bool]:
    """Return ``(probs (N, C) float64, cache_hit)`` for ``train`` with ``cfg.cleaning``'s method."""
    options = cfg.cleaning
    model_cfg = options.model if options.model is not None else cfg.model
    model_key = "model" if options.model is None else "cleaning.model"
    optimizer_kwargs = {} if options.lr is None else {"lr": options.lr}
    make_optimizer = build_from(cfg, "optimizer", **optimizer_kwargs)
    builders = dict(
        build_model=lambda: build_from(cfg, model_key, input_shape=train.input_shape,
                                       num_outputs=num_outputs_for(train.num_classes)),
        build_optimizer=lambda params: make_optimizer(params=params),
        settings=FitSettings(steps=options.steps, epochs=options.epochs,
                             batch_size=options.batch_size, seed=options.seed))
    config = {"method": options.method, "model": OmegaConf.to_container(model_cfg, resolve=True),
              "optimizer": OmegaConf.to_container(cfg.optimizer, resolve=True),
              "lr": options.lr, "steps": options.steps, "epochs": options.epochs,
              "batch_size": options.batch_size, "seed": options.seed,
              "num_classes": train.num_classes}
    if options.method == "kfold":
        fit_predict = kfold_fit_predict(train.x, train.y, **builders)
    else:
        config["head"] = OmegaConf.to_container(options.head, resolve=True)
        fit_predict = FrozenFeatureHeads(train.x, train.y, num_classes=train.num_classes,
                                         C=options.head.C, max_iter=options.head.max_iter,
                                         **builders)
    calls = []

    def counted(train_idx: np.ndarray, eval_idx: np.ndarray) -> np.ndarray:
        calls.append(len(eval_idx))
        return fit_predict(train_idx, eval_idx)

    probs = cached_out_of_fold_probs(
        train.y.cpu().numpy(), counted, cache_dir=cache_dir,
        key=hash_key(CACHE_VERSION, config, train.x), num_folds=options.num_folds,
        num_classes=train.num_classes, seed=options.seed, progress=options.progress)
    return probs, not calls


def _precision_recall(flagged: np.ndarray, corrupted: np.ndarray) -> dict[str, float]:
    """Return precision and recall of the ``flagged`` mask against the ``corrupted`` mask.

    A key is left out where it is undefined (nothing flagged, or nothing corrupted).
    """
    hits = int((flagged & corrupted).sum())
    out = {}
    if flagged.any():
        out["precision"] = hits / int(flagged.sum())
    if corrupted.any():
        out["recall"] = hits / int(corrupted.sum())
    return out


def _cleaned_train(train: GroupedTensorDataset, action: str, keep_idx: np.ndarray,
                   labels: np.ndarray) -> GroupedTensorDataset:
    """Return ``train`` with the pruned rows dropped or the relabeled labels put in."""
    if action == "prune":
        return train.subset(torch.as_tensor(keep_idx, device=train.y.device))
    if action == "relabel":
        return train.replace(y=torch.as_tensor(labels, device=train.y.device))
    return train


def clean_splits(cfg: DictConfig, splits: DataSplits, run_dir: str | Path) -> CleanedData:
    """Find label issues in ``splits.train`` and return the cleaned training split.

    Steps: out-of-sample probabilities (cached), ``cleanlab.filter.find_label_issues`` with
    ``cfg.cleaning.filter_by`` (confident joint, Northcutt et al. 2021, Sec. 3, Eq. 1),
    :func:`~robustml.cleaning.apply_group_cap` with ``cfg.cleaning.guard`` (at most
    ``max_fraction`` of each group flagged, ``protect_groups`` never), then
    :func:`~robustml.cleaning.apply_action` with ``cfg.cleaning.action``.

    Writes into ``run_dir``: ``label_issues.csv`` (one row per flagged example, columns ``index,
    given_label, suggested_label, quality, group, action``; ``action`` is ``guarded`` for rows the
    guard kept) and ``cleaning_summary.json`` (totals, settings, per-group counts and rates before
    and after the guard, precision/recall when the split records synthetic noise).

    Args:
        cfg: The run config; uses ``cleaning``, ``model``, ``optimizer`` (and nothing of
            ``trainer`` or ``loss``: cleaning models are trained by ERM).
        splits: The run's splits; only ``train`` is cleaned, on the device it is on.
        run_dir: The run directory.

    Returns:
        A :class:`CleanedData`.
    """
    options = cfg.cleaning
    train = splits.train
    check_cleaning_config(options, train.num_groups)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    cache_dir = Path(options.cache_dir) if options.cache_dir else run_dir / "cache"
    probs, cache_hit = out_of_sample_probs(cfg, train, cache_dir)

    labels, groups = train.y.cpu().numpy(), train.group.cpu().numpy()
    issues = find_label_issues(labels, probs, filter_by=options.filter_by,
                               quality_method=options.quality_method)
    flagged = apply_group_cap(issues.is_issue, issues.quality, groups, num_groups=train.num_groups,
                              max_fraction=options.guard.max_fraction,
                              protect_groups=list(options.guard.protect_groups))
    result = apply_action(options.action, labels=labels, is_issue=flagged,
                          suggested=issues.suggested, quality=issues.quality,
                          normalize_weights=options.normalize_weights)
    row_action = np.where(issues.is_issue & ~flagged, GUARDED, result.action)
    write_label_issues_csv(run_dir / "label_issues.csv", given=labels, suggested=issues.suggested,
                           quality=issues.quality, action=row_action, groups=groups)
    new_train = _cleaned_train(train, options.action, result.keep_idx, result.labels)
    weights = None
    if options.action == "reweight":
        weights = torch.as_tensor(result.weights, dtype=torch.float32, device=train.x.device)

    rows = per_group_report(flagged, groups, num_groups=train.num_groups, before=issues.is_issue)
    for row, name in zip(rows, splits.group_names):
        row["name"] = name
        row["flagged_rate_before"] = row["flagged_before"] / row["count"] if row["count"] else 0.0
    totals = {"examples": len(train), "flagged_before_guard": int(issues.is_issue.sum()),
              "flagged": int(flagged.sum()), "removed": len(train) - len(new_train),
              "relabeled": int((result.labels != labels[result.keep_idx]).sum()),
              "reweighted": int(flagged.sum()) if options.action == "reweight" else 0,
              "train_size": len(new_train), "cache_hit": cache_hit,
              "seconds": round(time.perf_counter() - start, 3)}
    noise = label_noise_of(train)
    if noise is not None:
        corrupted = np.zeros(len(train), dtype=bool)
        corrupted[noise.corrupted] = True
        totals["corrupted"] = int(corrupted.sum())
        totals.update(_precision_recall(flagged, corrupted))
        totals.update({f"{k}_before_guard": v
                       for k, v in _precision_recall(issues.is_issue, corrupted).items()})
    settings = {key: OmegaConf.to_container(options, resolve=True)[key]
                for key in ("method", "num_folds", "filter_by", "quality_method", "action",
                            "guard", "steps", "epochs", "batch_size", "seed")}
    write_metrics_json(run_dir / "cleaning_summary.json",
                       {**totals, "settings": settings, "groups": rows})

    summary = {f"cleaning/{key}": value for key, value in totals.items()}
    for row in rows:
        summary[f"cleaning/count_group_{row['group']}"] = row["count"]
        summary[f"cleaning/flagged_group_{row['group']}"] = row["flagged"]
        summary[f"cleaning/flagged_before_guard_group_{row['group']}"] = row["flagged_before"]
    return CleanedData(new_train, weights, summary, render_cleaning_md(totals, settings, rows))


def render_cleaning_md(totals: dict[str, Any], settings: dict[str, Any],
                       rows: list[dict[str, Any]]) -> str:
    """Return the ``## Label cleaning`` section: what was done, totals and the per-group table."""
    method = {"kfold": f"{settings['num_folds']}-fold cross-validation (a fresh model per fold)",
              "linear_heads": f"one model's frozen features and {settings['num_folds']}-fold "
                              "linear heads"}[settings["method"]]
    guard = settings["guard"]
    lines = ["## Label cleaning", "",
             f"Confident learning (Northcutt et al., JAIR 2021; cleanlab `filter_by="
             f"{settings['filter_by']}`) on out-of-sample probabilities from {method}. "
             f"Guard: at most {100 * guard['max_fraction']:g}% of each group flagged, protected "
             f"groups {list(guard['protect_groups']) or 'none'}. Action: `{settings['action']}`.",
             "",
             f"- Flagged {totals['flagged_before_guard']:,} of {totals['examples']:,} training "
             f"labels before the guard, {totals['flagged']:,} after; removed "
             f"{totals['removed']:,}, relabeled {totals['relabeled']:,}, reweighted "
             f"{totals['reweighted']:,}; training set now {totals['train_size']:,}."]
    if "corrupted" in totals:
        scores = ", ".join(f"{k} {totals[k]:.3f}" for k in ("precision", "recall",
                                                             "precision_before_guard",
                                                             "recall_before_guard") if k in totals)
        lines.append(f"- Against the {totals['corrupted']:,} synthetically corrupted labels: "
                     f"{scores}.")
    table = markdown_table(
        ["group", "count", "flagged (no guard)", "rate (no guard)", "flagged", "rate"],
        [[r["name"], r["count"], r["flagged_before"], f"{100 * r['flagged_rate_before']:.1f}%",
          r["flagged"], f"{100 * r['flagged_rate']:.1f}%"] for r in rows])
    return "\n".join(lines) + "\n\n" + table + "\n"


def main_clean(cfg: DictConfig, splits: DataSplits, run_dir: str | Path) -> CleanedData:
    """Run the cleaning stage only (``robustml-clean``): write its files and print the summary.

    Besides the files of :func:`clean_splits`, writes ``config.yaml`` (resolved) and
    ``cleaning_report.md`` (the markdown section) into ``run_dir``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    cleaned = clean_splits(cfg, splits, run_dir)
    (run_dir / "cleaning_report.md").write_text(cleaned.report_md)
    print(cleaned.report_md)
    print(f"Outputs in {run_dir}: label_issues.csv, cleaning_summary.json, cleaning_report.md")
    return cleaned
