"""The short summary a run prints: one screen that tells whether the model learned a shortcut.

The full tables stay in ``report.md``; the console gets the test split's per-group table with the
worst group marked, one line each for worst-group accuracy, the plain average and the
train-prior-weighted average (explained, since the two averages can differ by 50 points), the
counterfactual flip rate when the dataset declares a rule, what group labels were used, and where
the full report is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from robustml.report.tables import group_table, is_missing, percent, worst_group


def _line(label: str, value: str, note: str = "") -> str:
    return f"{label:<22} {value:>6}  {note}".rstrip()


def render_console_summary(final: Mapping[str, Any], *, title: str, group_names: Sequence[str],
                           group_label_use: Mapping[str, str], report_path: str,
                           split: str = "test", attr_key: str = "attr",
                           health: Sequence[str] = ()) -> str:
    """Return the run's console summary as plain text (no trailing newline).

    Args:
        final: The run's final metrics (``{split}/acc_group_<g>``, ``{split}/count_group_<g>``,
            ``{split}/acc_worst_group``, ``{split}/worst_group``, ``{split}/acc_avg``, optionally
            ``{split}/acc_weighted_avg`` and ``{split}/cf_flip_rate``; ``selected_step``,
            ``steps`` and ``selection``).
        title: First line, e.g. the run name and seed.
        group_names: Name of each group.
        group_label_use: ``{"training": ..., "selection": ..., "evaluation": ...}`` in words.
        report_path: Where the full report was written.
        split: The split to summarize.
        attr_key: Name of the spurious attribute, for the flip-rate line.
        health: The health checks' lines (:func:`robustml.health.console_lines`), shown before
            the report's path.
    """
    worst = worst_group(final, split, len(group_names))
    count = sum(int(final[f"{split}/count_group_{g}"]) for g in range(len(group_names))
                if not is_missing(final.get(f"{split}/count_group_{g}")))
    lines = [title]
    if "selected_step" in final:
        lines.append(f"Model: step {final['selected_step']} of {final.get('steps', '?')}, "
                     f"selected by {final.get('selection', '?')} on the validation split.")
    lines += ["", f"Accuracy by group, {split} split:", group_table(final, split, group_names), ""]
    worst_note = "no non-empty group" if worst is None else f"group {worst}, {group_names[worst]}"
    lines.append(_line("worst-group accuracy", percent(final[f"{split}/acc_worst_group"]) + "%",
                       worst_note))
    lines.append(_line("average accuracy", percent(final[f"{split}/acc_avg"]) + "%",
                       f"over all {count} {split} examples"))
    if f"{split}/acc_weighted_avg" in final:
        lines.append(_line("train-mix average", percent(final[f"{split}/acc_weighted_avg"]) + "%",
                           f"the average if {split} had training's group mix (groups "
                           "weighted by their training share)"))
    if f"{split}/overlap_acc_worst_group" in final:
        lines.append(_line("worst overlap group", percent(final[f"{split}/overlap_acc_worst_group"]) + "%",
                           "the worst attribute x class group where an example can have several "
                           "attributes (e.g. WILDS' identity groups)"))
    if f"{split}/cf_flip_rate" in final:
        none = int(final.get(f"{split}/cf_no_counterfactual", 0))
        covered = sum(int(final.get(f"{split}/cf_count_group_{g}", 0)) for g in range(len(group_names)))
        lines.append(_line("counterfactual flips", percent(final[f"{split}/cf_flip_rate"]) + "%",
                           f"of predictions change when only {attr_key} is changed" if not none else
                           f"of predictions change under the counterfactual edit, over the {covered} "
                           f"{split} examples that have one ({none} have none)"))
    lines.append("")
    lines.append(f"Group labels used for training: {group_label_use['training']}")
    lines.append(f"Group labels used for model selection: {group_label_use['selection']}")
    lines.extend(health)
    lines.append(f"Full report: {report_path}")
    return "\n".join(lines)
