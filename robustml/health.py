"""Health checks: a run says when a remedy did nothing, in one line that names what to change.

A check is a pure function of what a mechanism already computed (the loss history, the final
metrics, JTT's error set, the hyperparameters DFR and AFR chose, DPE's members); it lives beside
its mechanism and returns :class:`Finding` s. This module holds what they share: the finding, the
thresholds (one dataclass, mirrored by ``configs/health/default.yaml``), and how findings become
``health/<check>`` entries of ``metrics.json``, console lines (at most three, the most severe
first) and a report section.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from robustml.validation import check_int, check_real


@dataclass(frozen=True)
class Finding:
    """One check that fired.

    Attributes:
        check: The check's name, e.g. ``"not_learning"`` (the ``health/<check>`` key).
        severity: Higher first; 3: the run's result is likely meaningless, 2: the remedy did
            little, 1: worth a look.
        message: What happened and what to change (the setting and a value to try), one line.
    """

    check: str
    severity: int
    message: str


@dataclass(frozen=True)
class Thresholds:
    """When each check fires (the ``health`` config group holds the same names).

    Attributes:
        chance_margin: ``not_learning`` fires when the training loss after a tenth of the run
            is within this fraction of the chance level (the entropy of the label prior).
        shortcut_gap: ``shortcut_learned`` fires when the selected model's val worst-group
            accuracy is this far (absolute) below its val train-mix average.
        min_val_group: ``small_val_group`` fires for a validation group with fewer examples.
        q_uniform_tolerance: ``group_dro_q_frozen`` fires when every logged ``q_g`` stays within
            this of ``1 / G``.
        q_collapse: ``group_dro_q_collapsed`` fires when one group's ``q`` is at least this from
            the first half of the run on.
        jtt_max_error_fraction: ``jtt_error_set`` fires when the error set holds more of the
            training split (or nothing).
        jtt_max_class_share: ... or when at least this share of it is one class.
        inferred_max_class_share: ``inferred_groups`` fires when one inferred part holds at
            least this share of a class (the class was not split).
        inferred_min_part: ... or when a part holds less than this share of the split.
        cleaning_group_ratio: ``cleaning_group`` fires when a group's flagged fraction is more
            than this times the overall flagged fraction (the guard is off or too loose).
        one_class_share: ``one_class_predictor`` fires when the selected model predicts one
            class for at least this share of a split's (val or test) examples ...
        one_class_label_share: ... while that class is less than this share of them.
        dfr_min_tuning_group: ``dfr_small_tuning_group`` fires when a group has fewer examples
            in a part of DFR's tuning (the half that fits or the part that scores each C).
        dpe_member_class_share: ``dpe_member_one_class`` fires for a DPE member that gives at
            least this share of validation rows one class.
        head_min_gain: ``head_no_gain`` fires when a last-layer head (DFR, AFR, DPE) raises the
            base model's val worst-group accuracy by less than this (absolute).
        cf_min_coverage: ``counterfactual_coverage`` fires when counterfactual augmentation can
            change fewer than this share of the training examples (for text: the share that
            mentions a word of the lexicon).
    """

    chance_margin: float = 0.05
    shortcut_gap: float = 0.2
    min_val_group: int = 20
    q_uniform_tolerance: float = 0.02
    q_collapse: float = 0.99
    jtt_max_error_fraction: float = 0.5
    jtt_max_class_share: float = 0.9
    inferred_max_class_share: float = 0.95
    inferred_min_part: float = 0.01
    cleaning_group_ratio: float = 2.0
    one_class_share: float = 0.99
    one_class_label_share: float = 0.9
    dfr_min_tuning_group: int = 10
    dpe_member_class_share: float = 0.99
    head_min_gain: float = 0.01
    cf_min_coverage: float = 0.1

    def __post_init__(self) -> None:
        for name in ("chance_margin", "shortcut_gap", "q_uniform_tolerance", "q_collapse",
                     "jtt_max_error_fraction", "jtt_max_class_share", "inferred_max_class_share",
                     "inferred_min_part", "cleaning_group_ratio", "one_class_share",
                     "one_class_label_share", "dpe_member_class_share", "head_min_gain",
                     "cf_min_coverage"):
            object.__setattr__(self, name, check_real(name, getattr(self, name), minimum=0.0))
        for name in ("min_val_group", "dfr_min_tuning_group"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=0))


def ranked(findings: Iterable[Finding]) -> list[Finding]:
    """Return ``findings`` most severe first (ties in the order given)."""
    return sorted(findings, key=lambda finding: -finding.severity)


def as_metrics(findings: Sequence[Finding]) -> dict[str, Any]:
    """Return ``{"health/<check>": message, ..., "health/count": n}`` for ``metrics.json``; the
    messages of several findings of one check are joined with `` | `` (none is dropped)."""
    out: dict[str, Any] = {}
    for f in ranked(findings):
        key = f"health/{f.check}"
        out[key] = f"{out[key]} | {f.message}" if key in out else f.message
    out["health/count"] = len(findings)
    return out


def from_metrics(final: Mapping[str, Any]) -> list[Finding]:
    """Return the findings stored in ``final`` by :func:`as_metrics`, in their order (severity 0)."""
    return [Finding(key[len("health/"):], 0, value) for key, value in final.items()
            if key.startswith("health/") and key != "health/count"]


def console_lines(findings: Sequence[Finding], *, most: int = 3) -> list[str]:
    """Return at most ``most`` lines ``Health: <message>``, the most severe first, and a count of
    the others."""
    shown = ranked(findings)[:most]
    lines = [f"Health: {f.message}" for f in shown]
    if len(findings) > most:
        lines.append(f"Health: {len(findings) - most} more finding(s) in the report")
    return lines


def report_section(findings: Sequence[Finding], checked: Sequence[str]) -> str:
    """Return the ``## Health checks`` section of ``report.md``."""
    text = "## Health checks\n\n"
    if not findings:
        return text + f"No check fired ({', '.join(checked)}).\n"
    return text + "".join(f"- **{f.check}**: {f.message}\n" for f in ranked(findings))
