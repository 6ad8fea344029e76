"""AFR for ``robustml-train method=afr``: the base model on part of the training split, its last
layer retrained on the held-out rest.

Qiu et al. (ICML 2023), through :mod:`robustml.heads.afr`, in the last-layer step that DFR, AFR
and DPE share (:mod:`robustml.pipeline.heads`). The training split's rows are shuffled with
``numpy.random.default_rng(method.split_seed)``; the last ``int(N * method.holdout_fraction)``
are held out (the authors shuffle with Python's ``random`` seeded 21 and keep the last 20%), the
base model trains on the others, and AFR reweights the held-out rows by the base model's errors.
The run's ``train/...`` metrics are over the whole training split. A ``method.base_run`` must be
an AFR run with the same held-out rows (the base model must not have seen them).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from omegaconf import DictConfig

from robustml.data.contract import DataSplits
from robustml.health import Finding, Thresholds
from robustml.pipeline.heads import FittedHead, base_head, comparison_table, grid_edge
from robustml.report import markdown_table
from robustml.train.health import label_counts, one_class_predictor
from robustml.validation import check_real

if TYPE_CHECKING:
    from robustml.heads.afr import AFRResult


def split_rows(cfg: DictConfig, num_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(base rows, held-out rows)`` of a training split of ``num_rows`` rows."""
    fraction = check_real("method.holdout_fraction", cfg.method.holdout_fraction, minimum=0.0)
    held = int(num_rows * fraction)
    if not 0 < held < num_rows:
        raise ValueError(f"method.holdout_fraction={fraction} holds out {held} of the {num_rows} training "
                         f"rows; AFR needs rows for both the base model and its last layer: use a "
                         f"fraction in (0, 1) (the authors hold out 0.2)")
    order = np.random.default_rng(cfg.method.split_seed).permutation(num_rows)
    return np.sort(order[:num_rows - held]), np.sort(order[num_rows - held:])


def base_training_split(cfg: DictConfig, splits: DataSplits) -> DataSplits:
    """Return ``splits`` with the training split cut to the base model's rows."""
    rows, _ = split_rows(cfg, len(splits.train))
    cut = copy.copy(splits)  # the other splits and any attribute the data set added stay
    cut.train = splits.train.subset(torch.as_tensor(rows, device=splits.train.y.device))
    return cut


def fit(cfg: DictConfig, features: dict[str, np.ndarray], splits: DataSplits,
        model: torch.nn.Module) -> FittedHead:
    """Fit AFR on the held-out training rows' cached features, from ``model``'s last layer."""
    from robustml.heads.afr import afr
    from robustml.heads.classifier import LinearHead, head_state
    options = cfg.method
    _, held = split_rows(cfg, len(splits.train))
    weight, bias = base_head(model)
    result = afr(features["train"][held], splits.train.y.cpu().numpy()[held], weight, bias,
                 features["val"], splits.val.y.cpu().numpy(), splits.val.group.cpu().numpy(),
                 num_groups=splits.num_groups, gammas=list(options.gammas), regs=list(options.regs),
                 lr=options.lr, num_epochs=options.num_epochs, balance_classes=options.balance_classes,
                 seed=cfg.seed, min_per_class=options.min_per_class)
    metrics = {"afr/gamma": result.gamma, "afr/reg": result.reg, "afr/epoch": result.epoch,
               "afr/heldout_rows": result.num_rows}
    metrics.update({f"afr/tuning_worst_group_gamma_{g:g}_reg_{r:g}": score
                    for (g, r), score in result.tuning.items()})
    return FittedHead(result.predict, head_state(LinearHead(*result.linear())), metrics,
                      lambda base, out: _report(cfg, result, base, out))


def _report(cfg: DictConfig, result: AFRResult, base: dict[str, Any], out: dict[str, Any]) -> str:
    best = sorted(result.tuning.items(), key=lambda item: -item[1])[:5]
    tuning = [[f"{g:g}", f"{r:g}", f"{100 * score:.1f}",
               "<- chosen" if (g, r) == (result.gamma, result.reg) else ""] for (g, r), score in best]
    return (f"## AFR (Qiu et al., ICML 2023)\n\nThe base model was trained on "
            f"{100 * (1 - cfg.method.holdout_fraction):g}% of the training split; its last layer was "
            f"retrained on the other {result.num_rows} rows (class counts {result.class_counts}), each "
            f"weighted by exp(-gamma p_true) of the base model"
            f"{', classes balanced' if cfg.method.balance_classes else ''}, with an L2 pull "
            f"(reg) toward the base layer. No group label was used for training; gamma, reg and the "
            f"step ({result.epoch} of {cfg.method.num_epochs}) were chosen by validation worst-group "
            f"accuracy. The per-group tables of this report are AFR's; the base model's metrics are "
            f"`base/...` in metrics.json.\n\n"
            + comparison_table(base, out, "AFR")
            + "\n\nThe best settings by validation worst-group accuracy (all in metrics.json):\n\n"
            + markdown_table(["gamma", "reg", "worst-group (%)", ""], tuning))


def health(cfg: DictConfig, final: dict[str, Any], splits: DataSplits, *,
           thresholds: Thresholds) -> list[Finding]:
    """AFR's checks: the chosen gamma at either edge of its grid, the chosen reg at the largest
    (or a smallest above 0; reg=0, no pull, is not an edge to extend), and a last layer that
    predicts one class on val or test (:func:`robustml.train.health.one_class_predictor`)."""
    regs = [float(r) for r in cfg.method.regs]
    sides = ("largest",) if min(regs) == 0 else ("largest", "smallest")
    return (grid_edge("afr_at_grid_edge", "AFR", "gamma", "method.gammas", final.get("afr/gamma"),
                      cfg.method.gammas)
            + grid_edge("afr_at_grid_edge", "AFR", "reg", "method.regs", final.get("afr/reg"), regs,
                        sides=sides)
            + one_class_predictor(final, label_counts(splits.items()), splits.train.class_names,
                                  thresholds=thresholds, model="AFR's last layer",
                                  hint="its weights may favour one class; keep "
                                       "method.balance_classes=true or lower the largest of "
                                       "method.gammas"))
