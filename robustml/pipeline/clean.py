"""The cleaning stage: confident learning on the training split before the run trains.

``clean_splits(cfg, splits, run_dir)`` computes out-of-sample probabilities for every training
example with ``cfg.cleaning.method`` (see ``configs/cleaning/confident_learning.yaml``; each method
is a :mod:`robustml.cleaning` model, the same objects :func:`robustml.cleaning.detect_label_issues`
takes, with the same defaults), flags likely label errors with cleanlab's confident learning
(Northcutt, Jiang, Chuang, JAIR 2021), caps the flagged fraction per group (minority groups look
like label errors to a model that learned a shortcut) and prunes, relabels or reweights the flagged
rows. It writes ``label_issues.csv`` and ``cleaning_summary.json`` into the run directory and
caches the probabilities there (``cache/oof_<hash>.npy``, or under ``cfg.cleaning.cache_dir``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from robustml.cleaning import (ACTIONS, FILTER_BY, QUALITY_METHODS, CrossFitNetwork, FitSettings,
                               KFoldNetwork, LinearHeads, apply_action, apply_group_cap,
                               cached_probs, find_label_issues, hash_key, out_of_sample_probs,
                               per_group_report, write_label_issues_csv)
from robustml.cleaning.api import GUARDED, as_inputs, check_class_counts
from robustml.data.contract import DataSplits, GroupedDataset, GroupedTensorDataset
from robustml.data.datasets.noisy import label_noise_of
from robustml.report import markdown_table, write_metrics_json, write_text
from robustml.health import Finding, Thresholds
from robustml.losses import num_outputs_for
from robustml.pipeline.instantiate import build_from, config_keys, keys_under
from robustml.validation import check_int

METHODS = ("auto", "cross_fit", "kfold", "estimator", "heads")
CACHE_VERSION = "robustml.clean/2"  # bump when the probabilities for the same config change
METHOD_TEXT = {
    "cross_fit": "networks cross-fitted over {num_parts} disjoint parts (each row's features come "
                 "from a network that never saw it) and {num_folds}-fold linear heads within each "
                 "part",
    "kfold": "{num_folds}-fold cross-validation (a fresh network per fold)",
    "estimator": "{num_folds}-fold cross-validation of `{estimator}`",
    "heads": "{num_folds}-fold linear heads on the inputs as features",
}


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


# The arguments of robustml.cleaning that this stage sets from cfg.cleaning, as config keys.
CLEANING_KEYS = keys_under("cleaning.", ("num_folds", "num_parts", "epochs", "min_steps",
                                         "batch_size", "lr", "seed"))


def check_cleaning_config(options: DictConfig, num_groups: int) -> None:
    """Raise ``ValueError`` naming the ``cleaning.*`` key whose value is invalid."""
    choices = {"method": METHODS, "action": ACTIONS, "filter_by": FILTER_BY,
               "quality_method": QUALITY_METHODS}
    for key, allowed in choices.items():
        if options[key] not in allowed:
            raise ValueError(f"cleaning.{key} must be one of {allowed}, got {options[key]!r}")
    for key, low in (("num_folds", 2), ("num_parts", 2)):
        check_int(f"cleaning.{key}", options[key], minimum=low)
    if not 0.0 <= options.guard.max_fraction <= 1.0:
        raise ValueError(f"cleaning.guard.max_fraction must lie in [0, 1], got "
                         f"{options.guard.max_fraction!r}")
    bad = [g for g in options.guard.protect_groups if not 0 <= g < num_groups]
    if bad:
        raise ValueError(f"cleaning.guard.protect_groups must hold group ids in [0, {num_groups}), "
                         f"got {list(options.guard.protect_groups)}")


def resolved_method(options: DictConfig, train: GroupedTensorDataset) -> str:
    """Return ``cleaning.method`` with ``auto`` resolved: ``estimator`` for 2-D inputs, else ``cross_fit``."""
    if options.method != "auto":
        return options.method
    return "estimator" if len(train.input_shape) == 1 else "cross_fit"


def cleaning_model(cfg: DictConfig, method: str):
    """Build the :mod:`robustml.cleaning` model object that ``cfg.cleaning`` describes."""
    options = cfg.cleaning
    if method == "estimator":
        return build_from(cfg, "cleaning.estimator")
    head = LinearHeads(C=options.head.C, max_iter=options.head.max_iter)
    if method == "heads":
        return head
    key = "model" if options.model is None else "cleaning.model"

    def build_model(input_shape, num_outputs):
        return build_from(cfg, key, input_shape=input_shape, num_outputs=num_outputs)

    with config_keys(CLEANING_KEYS):
        fit = FitSettings(epochs=options.epochs, min_steps=options.min_steps,
                          batch_size=options.batch_size, lr=options.lr, seed=options.seed)
        if method == "kfold":
            return KFoldNetwork(build_model=build_model, fit=fit)
        return CrossFitNetwork(build_model=build_model, fit=fit, num_parts=options.num_parts,
                               head=head)


def cleaning_inputs(cfg: DictConfig, train: GroupedDataset, cache_dir: Path) -> GroupedTensorDataset:
    """Return ``train`` itself when in memory; for on-disk data, its features as an in-memory dataset.

    On-disk inputs cannot be held in one tensor, so cleaning fits on the penultimate features of
    the run's model (``model=``, with its initial or ``model.weights`` pretrained parameters),
    extracted once through the feature cache (``<cache_dir>/features``). That model has never
    been fitted to these labels, so the probabilities stay out-of-sample.
    """
    if train.in_memory:
        return train
    from robustml.features import feature_dataset  # torchvision and the cache: only for on-disk data
    torch.manual_seed(int(cfg.cleaning.seed))
    model = build_from(cfg, "model", input_shape=train.input_shape,
                       num_outputs=num_outputs_for(train.num_classes))
    return feature_dataset(model, train, cache_dir / "features", progress=cfg.cleaning.progress)


def out_of_sample_train_probs(cfg: DictConfig, train: GroupedDataset,
                              cache_dir: Path) -> tuple[np.ndarray, bool]:
    """Return ``(probs (N, C) float64, cache_hit)`` for ``train`` with ``cfg.cleaning``'s method."""
    options = cfg.cleaning
    train = cleaning_inputs(cfg, train, cache_dir)
    method = resolved_method(options, train)
    model = cleaning_model(cfg, method)
    labels = train.y.cpu().numpy()
    x = as_inputs(train.x, labels.shape[0], name="training inputs")
    with config_keys(CLEANING_KEYS):
        check_class_counts(labels, options.num_folds)
    config = {key: OmegaConf.to_container(options, resolve=True)[key]
              for key in ("num_folds", "num_parts", "epochs", "min_steps", "batch_size", "lr",
                          "seed", "head")}
    config["method"] = method
    config["model"] = OmegaConf.to_container(options.model if options.model is not None
                                             else cfg.model, resolve=True)
    if method == "estimator":
        config["estimator"] = repr(sorted(model.get_params().items()))
    calls = []

    def compute() -> np.ndarray:
        calls.append(1)
        return out_of_sample_probs(x, labels, model=model, num_classes=train.num_classes,
                                   num_folds=options.num_folds, seed=options.seed,
                                   progress=options.progress)

    with config_keys(CLEANING_KEYS):
        probs = cached_probs(labels, compute, cache_dir=cache_dir,
                             key=hash_key(CACHE_VERSION, config, train.num_classes, train.x))
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

    Steps: out-of-sample probabilities (cached), :func:`robustml.cleaning.find_label_issues`
    with ``cfg.cleaning.filter_by`` (cleanlab's confident joint, Northcutt et al. 2021, Sec. 3,
    Eq. 1; the ranked filters of :mod:`robustml.cleaning.ranking` rank its count across classes),
    :func:`~robustml.cleaning.apply_group_cap` with ``cfg.cleaning.guard`` (at most
    ``max_fraction`` of each group flagged, ``protect_groups`` never), then
    :func:`~robustml.cleaning.apply_action` with ``cfg.cleaning.action``.

    Writes into ``run_dir``: ``label_issues.csv`` (one row per flagged example, columns ``index,
    given_label, suggested_label, quality, group, action``; ``action`` is ``guarded`` for rows the
    guard kept) and ``cleaning_summary.json`` (totals, settings, per-group counts and rates before
    and after the guard, precision/recall when the split records synthetic noise).

    Args:
        cfg: The run config; uses ``cleaning`` (and ``model`` when ``cleaning.model`` is null;
            nothing of ``optimizer``, ``trainer`` or ``loss``: cleaning networks are trained by
            ERM with Adam at ``cleaning.lr``).
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
    probs, cache_hit = out_of_sample_train_probs(cfg, train, cache_dir)

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
        weights = torch.as_tensor(result.weights, dtype=torch.float32, device=train.device)

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
                for key in ("num_folds", "num_parts", "filter_by", "quality_method", "action",
                            "guard", "epochs", "min_steps", "batch_size", "lr", "seed")}
    settings["method"] = resolved_method(options, train)
    if settings["method"] == "estimator":
        settings["estimator"] = options.estimator._target_.rsplit(".", 1)[-1]
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
    method = METHOD_TEXT[settings["method"]].format(**settings)
    guard = settings["guard"]
    lines = ["## Label cleaning", "",
             f"Confident learning (Northcutt et al., JAIR 2021, through cleanlab; `filter_by="
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
    write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    cleaned = clean_splits(cfg, splits, run_dir)
    write_text(run_dir / "cleaning_report.md", cleaned.report_md)
    print(cleaned.report_md)
    print(f"Outputs in {run_dir}: label_issues.csv, cleaning_summary.json, cleaning_report.md")
    return cleaned


def health(final: dict[str, Any], group_names: list[str], *, thresholds: Thresholds) -> list[Finding]:
    """Cleaning's check: a group whose flagged fraction is far above the overall one (minority
    examples look like label errors to a model that learned a shortcut: the guard is off or loose)."""
    total, flagged = final.get("cleaning/examples"), final.get("cleaning/flagged")
    if not total or not flagged:
        return []
    overall = flagged / total
    heavy = [f"group {g} ({name}) {100 * final[f'cleaning/flagged_group_{g}'] / count:.0f}%"
             for g, name in enumerate(group_names)
             if (count := final.get(f"cleaning/count_group_{g}", 0))
             and final[f"cleaning/flagged_group_{g}"] / count > thresholds.cleaning_group_ratio * overall]
    if not heavy:
        return []
    return [Finding("cleaning_group", 2,
                    f"cleaning flagged {', '.join(heavy)} of its examples, over "
                    f"{thresholds.cleaning_group_ratio:g} times the overall {100 * overall:.1f}%: "
                    "minority examples may be taken for label errors; try cleaning.guard.max_fraction=0.1")]
