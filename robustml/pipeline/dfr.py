"""DFR for ``robustml-train method=dfr``: retrain the selected model's last layer on cached features.

Kirichenko et al. (ICLR 2023), through :mod:`robustml.heads.dfr`, in the last-layer step that
DFR, AFR and DPE share (:mod:`robustml.pipeline.heads`: the base model, the feature cache, the
metrics, the saved head).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from omegaconf import DictConfig

from robustml.data.contract import DataSplits
from robustml.health import Finding, Thresholds
from robustml.pipeline.heads import FittedHead, comparison_table, grid_edge
from robustml.report import markdown_table
from robustml.train.health import label_counts, one_class_predictor

if TYPE_CHECKING:
    from robustml.heads.dfr import DFRResult

FIT_ON = ("val", "train")


def fit_dfr(cfg: DictConfig, features: dict[str, np.ndarray], splits: DataSplits) -> DFRResult:
    """Run :func:`~robustml.heads.dfr.dfr_on_validation` or ``dfr_on_train`` per ``method.fit_on``."""
    from robustml.heads.dfr import dfr_on_train, dfr_on_validation  # scikit-learn: only for DFR runs
    options = cfg.method
    if options.fit_on not in FIT_ON:
        raise ValueError(f"method.fit_on must be one of {list(FIT_ON)}, got {options.fit_on!r}")
    labels = {name: (split.y.cpu().numpy(), split.group.cpu().numpy()) for name, split in splits.items()}
    common = {"C_grid": [float(c) for c in options.C_grid], "max_iter": options.max_iter,
              "seed": cfg.seed, "n_jobs": options.n_jobs, "group_names": splits.group_names}
    if options.num_refits is not None:  # null: each function's default, the authors' count
        common["num_refits"] = options.num_refits
    if options.fit_on == "val":
        return dfr_on_validation(features["train"], features["val"], *labels["val"],
                                 num_groups=splits.num_groups, **common)
    return dfr_on_train(features["train"], *labels["train"], features["val"], *labels["val"],
                        num_groups=splits.num_groups, **common)


def fit(cfg: DictConfig, features: dict[str, np.ndarray], splits: DataSplits,
        model: torch.nn.Module) -> FittedHead:
    """Fit DFR on the cached ``features`` (the base ``model`` is not needed: DFR refits from scratch)."""
    from robustml.heads.classifier import LinearHead, head_state
    result = fit_dfr(cfg, features, splits)
    metrics = {"dfr/C": result.C, "dfr/fit_on": result.fit_on, "dfr/subsample_size": result.subsample_size,
               "dfr/num_refits": result.num_refits}
    metrics.update({f"dfr/tuning_worst_group_C_{c:g}": score for c, score in result.tuning.items()})
    metrics.update({f"dfr/tuning_{part}_count_group_{g}": n for part, counts in result.tuning_counts.items()
                    for g, n in enumerate(counts)})
    return FittedHead(result.predict, head_state(LinearHead(*result.linear())), metrics,
                      lambda base, out: _report(result, base, out))


def _report(result: DFRResult, base: dict[str, Any], dfr: dict[str, Any]) -> str:
    fit_on = {"val": "validation", "train": "training"}[result.fit_on]
    tuning = [[f"{c:g}", f"{100 * score:.1f}", "<- chosen" if c == result.C else ""]
              for c, score in result.tuning.items()]
    return (f"## DFR (Kirichenko et al., ICLR 2023)\n\nThe base model's last layer is replaced by an "
            f"L1 logistic regression (liblinear) on its standardized penultimate features, fitted on "
            f"group-balanced subsets of the {fit_on} split ({result.subsample_size} rows each, "
            f"{result.num_refits} fits averaged), so DFR uses the {fit_on} split's group labels. "
            f"The per-group tables of this report are DFR's; the base model's metrics are "
            f"`base/...` in metrics.json (the stress test, if any, is the base model's).\n\n"
            + comparison_table(base, dfr, "DFR")
            + "\n\nC chosen by worst-group accuracy on held-out validation rows:\n\n"
            + markdown_table(["C", "worst-group (%)", ""], tuning))


def health(cfg: DictConfig, final: dict[str, Any], splits: DataSplits, *,
           thresholds: Thresholds) -> list[Finding]:
    """DFR's checks: the chosen C at the edge of its grid (the best C may lie beyond it), a group
    with too few examples in a part of the tuning (C is chosen on noise), and a last layer that
    predicts one class on val or test (:func:`robustml.train.health.one_class_predictor`).

    Args:
        cfg: The run's config (``method.C_grid``, ``method.fit_on``).
        final: The run's metrics after the head step (``dfr/...`` and DFR's ``{split}/...``).
        splits: The run's data (class counts and names, group names).
        thresholds: The thresholds.
    """
    found = grid_edge("dfr_c_at_grid_edge", "DFR", "C", "method.C_grid", final.get("dfr/C"),
                      cfg.method.C_grid)
    found += _small_tuning_groups(cfg, final, splits.group_names, thresholds.dfr_min_tuning_group)
    found += one_class_predictor(final, label_counts(splits.items()), splits.train.class_names,
                                 thresholds=thresholds, model="DFR's last layer",
                                 hint="its L1 penalty may have removed every feature; add larger "
                                      "values to method.C_grid, or train the base model longer")
    return found


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
