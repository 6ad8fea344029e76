"""Counterfactual stress test: how often does changing only the spurious attribute change a prediction?

For every example of a split, build its counterfactual with the dataset's rule (attribute changed,
label kept; Kaushik, Hovy, Lipton, ICLR 2020) and predict both. A model that ignores the spurious
attribute keeps its prediction (flip rate 0) and its accuracy; a model that predicts from the
attribute alone flips every prediction (flip rate 1). This is the counterfactual-invariance check
of counterfactual logit pairing (Garg et al., AIES 2019), measured on predicted classes.

Per-group numbers are reported under the group of the ORIGINAL example (``y * num_attrs + attr``
before the change), so each row of the table is "examples of group g, and what happens when
their attribute is changed".

Examples without a counterfactual (a text without a lexicon word: the rule's ``available``) are
counted apart as "no counterfactual" and left out of every other number, accuracies on the
originals included, so each row compares the same examples before and after the change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

from robustml.augment.counterfactual import dataset_rule, flip_all
from robustml.validation import check_int

if TYPE_CHECKING:  # data imports augment's rules at run time, so only types here
    from robustml.data.contract import GroupedTensorDataset


def _predict(predict_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
             like: torch.Tensor) -> torch.Tensor:
    pred = predict_fn(x)
    if not isinstance(pred, torch.Tensor) or pred.shape != like.shape or pred.is_floating_point():
        got = f"shape {tuple(pred.shape)}, dtype {pred.dtype}" if isinstance(pred, torch.Tensor) \
            else type(pred).__name__
        raise ValueError(f"predict_fn must return integer class ids of shape {tuple(like.shape)}, got {got}")
    return pred.to(like.device)


def counterfactual_stress_test(predict_fn: Callable[[torch.Tensor], torch.Tensor],
                               dataset: GroupedTensorDataset, *, batch_size: int = 4096,
                               generator: torch.Generator | None = None) -> dict[str, float]:
    """Predict every example and its counterfactual; return flat invariance metrics.

    Args:
        predict_fn: Maps inputs ``x (B, ...)`` to predicted class ids ``(B,)`` (called under
            ``torch.no_grad()``; it moves ``x`` to the model's device itself).
        dataset: A split that declares a ``counterfactual`` rule and has ``get_batch``.
        batch_size: Examples predicted at a time.
        generator: Optional generator for the new attribute values (``num_attrs > 2``).

    Returns:
        Over the examples that have a counterfactual: ``cf_flip_rate`` (fraction whose prediction
        changes), ``cf_acc_avg`` and ``cf_orig_acc_avg`` (accuracy on the counterfactuals and on
        the originals), ``cf_acc_worst_group`` and ``cf_orig_acc_worst_group`` (over non-empty
        groups), and per group ``g`` of the original example: ``cf_count_group_<g>`` (every
        group) and, for non-empty groups, ``cf_acc_group_<g>``, ``cf_orig_acc_group_<g>``,
        ``cf_flip_rate_group_<g>``. ``cf_no_counterfactual`` and
        ``cf_no_counterfactual_group_<g>`` count the examples without one (0 for rules that change
        every example).

    Raises:
        ValueError: No example of the split has a counterfactual (for text: no lexicon word).
    """
    rule = dataset_rule(dataset)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if len(dataset) == 0:
        raise ValueError(f"dataset {dataset.name!r} is empty; the stress test needs examples")
    num_groups = dataset.num_groups
    totals = torch.zeros(5, num_groups, dtype=torch.float64)  # count, orig, cf correct, flips, none
    with torch.no_grad():
        for idx in torch.arange(len(dataset)).split(batch_size):
            batch = dataset.get_batch(idx)
            flipped = flip_all(batch, rule, num_attrs=dataset.num_attrs, generator=generator)
            y, groups = batch["y"], batch["group"]
            pred = _predict(predict_fn, batch["x"], y)
            pred_cf = _predict(predict_fn, flipped["x"], y)
            has = flipped["is_cf"]
            events = torch.stack([has, has & (pred == y), has & (pred_cf == y),
                                  has & (pred != pred_cf), ~has])
            totals.index_add_(1, groups.cpu(), events.cpu().to(torch.float64))
    count, orig, cf, flips, none = totals
    nonempty = count > 0
    n = count.sum()
    if n == 0:
        raise ValueError(f"no example of dataset {dataset.name!r} has a counterfactual (for text: "
                         "no text mentions a word of the lexicon); use a lexicon whose words the "
                         "texts contain")
    metrics = {
        "cf_flip_rate": float(flips.sum() / n),
        "cf_acc_avg": float(cf.sum() / n),
        "cf_orig_acc_avg": float(orig.sum() / n),
        "cf_acc_worst_group": float((cf[nonempty] / count[nonempty]).min()),
        "cf_orig_acc_worst_group": float((orig[nonempty] / count[nonempty]).min()),
        "cf_no_counterfactual": int(none.sum()),
    }
    for g in range(num_groups):
        metrics[f"cf_count_group_{g}"] = int(count[g])
        metrics[f"cf_no_counterfactual_group_{g}"] = int(none[g])
        if nonempty[g]:
            metrics[f"cf_acc_group_{g}"] = float(cf[g] / count[g])
            metrics[f"cf_orig_acc_group_{g}"] = float(orig[g] / count[g])
            metrics[f"cf_flip_rate_group_{g}"] = float(flips[g] / count[g])
    return metrics


def render_stress_table(metrics: dict[str, float], group_names: Sequence[str]) -> str:
    """Return a markdown table of :func:`counterfactual_stress_test`'s metrics, one row per group.

    Columns: group (the original example's), count, accuracy on the originals, accuracy on the
    counterfactuals, flip rate (percent; ``-`` for an empty group), then an ``all`` row
    (over examples) and a ``worst group`` row. When some examples have no counterfactual, a last
    column counts them (they are outside the other columns).

    Args:
        metrics: The dict returned by :func:`counterfactual_stress_test`.
        group_names: Name of each group, e.g. ``dataset.group_names``.
    """
    missing = [f"cf_count_group_{g}" for g in range(len(group_names))
               if f"cf_count_group_{g}" not in metrics]
    if missing or "cf_flip_rate" not in metrics:
        raise ValueError(f"metrics must come from counterfactual_stress_test with {len(group_names)} "
                         f"groups (len(group_names)); missing keys {missing or ['cf_flip_rate']}")

    def pct(key: str) -> str:
        return f"{100 * metrics[key]:.1f}" if key in metrics else "-"

    none = metrics.get("cf_no_counterfactual", 0) > 0

    def extra(key: str) -> str:
        return f" {metrics.get(key, '')} |" if none else ""

    lines = ["| group | count | acc original (%) | acc counterfactual (%) | flip rate (%) |"
             + (" no counterfactual |" if none else ""), "|---|---:|---:|---:|---:|" + ("---:|" if none else "")]
    for g, name in enumerate(group_names):
        lines.append(f"| {name} | {metrics[f'cf_count_group_{g}']} | {pct(f'cf_orig_acc_group_{g}')} | "
                     f"{pct(f'cf_acc_group_{g}')} | {pct(f'cf_flip_rate_group_{g}')} |"
                     + extra(f"cf_no_counterfactual_group_{g}"))
    total = sum(metrics[f"cf_count_group_{g}"] for g in range(len(group_names)))
    lines.append(f"| all | {total} | {pct('cf_orig_acc_avg')} | {pct('cf_acc_avg')} | {pct('cf_flip_rate')} |"
                 + extra("cf_no_counterfactual"))
    lines.append(f"| worst group | | {pct('cf_orig_acc_worst_group')} | {pct('cf_acc_worst_group')} | |"
                 + (" |" if none else ""))
    return "\n".join(lines) + "\n"
