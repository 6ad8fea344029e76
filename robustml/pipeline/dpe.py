"""DPE for ``robustml-train method=dpe``: an ensemble of prototype heads on the selected model's
cached validation features.

To et al. (ICML 2025), through :mod:`robustml.heads.dpe`, in the last-layer step that DFR, AFR
and DPE share (:mod:`robustml.pipeline.heads`). As in the authors' code, the members train on
balanced subsets of the validation split (``method.balance=class``: class labels only;
``group``: validation group labels) and each member's epoch is chosen by validation worst-group
accuracy, so DPE always uses validation group labels for selection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from omegaconf import DictConfig

from robustml.data.contract import DataSplits
from robustml.health import Finding, Thresholds
from robustml.pipeline.heads import FittedHead, base_head, comparison_table
from robustml.report import markdown_table
from robustml.train.health import label_counts, one_class_predictor

if TYPE_CHECKING:
    from robustml.heads.dpe import DPEResult

KEYS = ("num_members", "epochs", "lr", "batch_size", "cov_reg", "alpha", "entropic", "wd_weight",
        "standardize")


def fit(cfg: DictConfig, features: dict[str, np.ndarray], splits: DataSplits,
        model: torch.nn.Module) -> FittedHead:
    """Fit DPE on the validation split's cached features (the base ``model``'s head only ranks
    rows for SELF)."""
    from robustml.heads.classifier import head_state
    from robustml.heads.dpe import dpe
    options = cfg.method
    val = splits.val
    y, groups = val.y.cpu().numpy(), val.group.cpu().numpy()
    rows, scored = retrain_rows(cfg, features["val"], y, model)
    result = dpe(features["val"][rows], y[rows], groups[rows] if options.balance == "group" else None,
                 features["val"][scored], y[scored], groups[scored], num_classes=splits.num_classes,
                 num_groups=splits.num_groups,
                 balance=options.balance, seed=cfg.seed, group_names=splits.group_names,
                 **{key: options[key] for key in KEYS})
    metrics = {"dpe/balance": result.balance, "dpe/subset_size": result.subset_size,
               "dpe/retrain_rows": len(rows), "dpe/num_members": len(result.member_scores)}
    for m, (score, epoch, share) in enumerate(zip(result.member_scores, result.member_epochs,
                                                  result.member_class_share)):
        metrics.update({f"dpe/member_{m}_val_worst_group": score, f"dpe/member_{m}_epoch": epoch,
                        f"dpe/member_{m}_class_share": share})
    return FittedHead(result.predict, head_state(result.head()), metrics,
                      lambda base, out: _report(result, base, out, len(rows), len(y)))


def retrain_rows(cfg: DictConfig, features: np.ndarray, y: np.ndarray,
                 model: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """Return the validation rows DPE trains on and the rows that choose each member's epoch: all
    and all, or (``method.retrain_rows=misclassified``, SELF's protocol) a seeded half of validation
    as the pool whose ``method.num_rows`` rows the base model gets most wrong are trained on
    (:mod:`robustml.heads.selection`), and the other half for the choice."""
    rule = cfg.method.retrain_rows
    if rule == "all":
        return np.arange(len(y)), np.arange(len(y))
    if rule != "misclassified":
        raise ValueError(f"method.retrain_rows must be 'all' or 'misclassified', got {rule!r} (SELF's "
                         f"'disagreement' needs an early-stopped model's logits: robustml.heads.self_rows "
                         f"takes them in Python)")
    if cfg.method.num_rows is None:
        raise ValueError("method.retrain_rows=misclassified needs method.num_rows, how many validation "
                         "rows to keep (SELF keeps the k rows with the largest base-model loss)")
    from robustml.heads.selection import self_rows
    weight, bias = base_head(model)
    order = np.random.default_rng(cfg.seed).permutation(len(y))
    pool, scored = np.sort(order[: len(y) // 2]), np.sort(order[len(y) // 2:])
    if int(cfg.method.num_rows) > len(pool):
        raise ValueError(f"method.num_rows must be at most {len(pool)}, the half of the validation split "
                         f"SELF picks rows from (the other half chooses the epochs), got {cfg.method.num_rows}")
    picked = self_rows(y[pool], features[pool] @ weight.T + bias, int(cfg.method.num_rows))
    return np.sort(pool[picked]), scored


def _report(result: DPEResult, base: dict[str, Any], out: dict[str, Any], retrained: int, total: int) -> str:
    labels = ("class labels only" if result.balance == "class"
              else "the validation split's group labels")
    labels += "; " + (f"drawn from the {retrained} rows the base model gets most wrong in half of validation (SELF)"
                      if retrained < total else "drawn from the whole validation split")
    members = [[str(m), f"{100 * score:.1f}", str(epoch), f"{100 * share:.1f}"]
               for m, (score, epoch, share) in enumerate(zip(result.member_scores, result.member_epochs,
                                                             result.member_class_share))]
    return (f"## DPE (To et al., ICML 2025)\n\nThe base model's last layer is replaced by an ensemble of "
            f"{len(members)} prototype heads (IsoMax+, one prototype per class each), each trained on a "
            f"fresh {result.balance}-balanced subset of the validation split ({result.subset_size} rows, "
            f"{labels}) with a penalty on its similarity to the earlier members; each member's epoch "
            f"was chosen by validation worst-group accuracy; the ensemble averages their "
            f"probabilities. The per-group tables of this report are DPE's; the base model's "
            f"metrics are `base/...` in metrics.json.\n\n"
            + comparison_table(base, out, "DPE")
            + "\n\nMembers:\n\n"
            + markdown_table(["member", "val worst-group (%)", "epoch", "largest class share (%)"], members))


def health(cfg: DictConfig, final: dict[str, Any], splits: DataSplits, *,
           thresholds: Thresholds) -> list[Finding]:
    """DPE's checks: a member that gives (nearly) every validation row one class, and an ensemble
    that predicts one class on val or test (:func:`robustml.train.health.one_class_predictor`)."""
    found = one_class_predictor(final, label_counts(splits.items()), splits.train.class_names,
                                thresholds=thresholds, model="DPE's ensemble",
                                hint="lower method.cov_reg or raise method.epochs")
    shares = {int(key.split("_")[1]): value for key, value in final.items()
              if key.startswith("dpe/member_") and key.endswith("_class_share")}
    flat = sorted(m for m, share in shares.items() if share >= thresholds.dpe_member_class_share)
    if not flat:
        return found
    return found + [Finding("dpe_member_one_class", 2,
                            f"DPE member(s) {flat} of {len(shares)} give at least "
                            f"{100 * thresholds.dpe_member_class_share:g}% of validation rows one "
                            f"class: they add nothing to the ensemble; lower method.cov_reg (their "
                            f"similarity penalty) or raise method.epochs")]
