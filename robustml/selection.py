"""Model-selection rules: which validation number picks the checkpoint, and which labels it reads.

One list, used by the trainer (:class:`~robustml.train.settings.TrainSettings` ``select``), by the
report's ledger of group-label use (:mod:`robustml.pipeline.labels`) and by ``robustml-collect``
(its default rule). Every rule maximizes a key of the trainer's evaluation record, or takes the
last step; none reads the test split.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SelectionRule:
    """A named way to choose the checkpoint.

    Attributes:
        name: What ``select=`` takes.
        metric: The evaluation record's key that is maximized; ``None``: the last step is kept.
        labels: Which labels choosing by this rule reads, in words, for the report.
    """

    name: str
    metric: str | None
    labels: str


RULES: dict[str, SelectionRule] = {rule.name: rule for rule in (
    SelectionRule("worst_group", "val/acc_worst_group", "validation group labels (val worst-group accuracy)"),
    SelectionRule("avg", "val/acc_avg", "none (val average accuracy)"),
    SelectionRule("last", None, "none (the last checkpoint)"),
    SelectionRule("worst_class", "val/acc_worst_class", "none (val worst-class accuracy)"),
    SelectionRule("worst_inferred_group", "val/acc_worst_inferred_group",
                  "none (val worst inferred-group accuracy, groups inferred on val)"),
    SelectionRule("worst_overlap_group", "val/overlap_acc_worst_group",
                  "validation labels of the overlapping groups (val worst accuracy over each "
                  "overlapping attribute x class, e.g. CivilComments-WILDS' identity x label)"),
)}
DEFAULT_RULE = "worst_group"


def selection_rule(name: str, *, argument: str = "select") -> SelectionRule:
    """Return the rule called ``name``; an unknown name raises naming ``argument`` and the rules."""
    if name not in RULES:
        raise ValueError(f"{argument} must be one of {sorted(RULES)}, got {name!r}")
    return RULES[name]
