"""What the data audit returns: one :class:`Finding` per problem, ranked, inside a
:class:`DataAuditResult` with the tables behind them (:func:`robustml.audit.audit_data` fills it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Severities, most severe first (the ranking of findings).
SEVERITIES = ("high", "medium", "low")


@dataclass
class Finding:
    """One problem found in the data.

    Attributes:
        check: Its kind: ``too_few_rows``, ``leakage``, ``single_column_predictor``,
            ``shortcut_in_val``, ``shortcut_not_in_test``, ``drift``, ``image_shortcut``,
            ``image_size_shortcut``, ``missing_values``, ``one_valued``, ``empty_groups``,
            ``tiny_groups``, ``label_balance``, ``label_noise``.
        severity: ``"high"``, ``"medium"`` or ``"low"``.
        message: What was found and what it means.
        count: How many examples (or groups) it concerns; 0 when it is a statistic.
        examples: Example ids, at most ``max_examples`` (``[split id, train id]`` for leakage).
        score: Ranks findings of one severity (larger first).
    """

    check: str
    severity: str
    message: str
    count: int = 0
    examples: list[Any] = field(default_factory=list)
    score: float = 0.0


@dataclass
class DataAuditResult:
    """What :func:`~robustml.audit.audit_data` found: ranked findings and the tables behind them.

    Attributes:
        findings: Most severe first.
        summary: Per split: rows, examples per class and per group.
        associations: Per attribute: Cramér's V with the label per split, signed by direction.
        drift: Per column (or image statistic) and pair of splits: the tests and the alert.
        description: The data's own description.
        image_sizes: For images: where the sizes come from (``"files"`` or ``"in memory"``) and
            the sizes per split and per training group (empty for tables).
        label_noise: With ``label_noise=True``: the estimated noise per class
            (:func:`robustml.audit.data_noise.noise_estimate`), or why it was not estimated.
    """

    findings: list[Finding]
    summary: dict[str, dict[str, Any]]
    associations: list[dict[str, Any]]
    drift: list[dict[str, Any]]
    description: str = ""
    image_sizes: dict[str, Any] = field(default_factory=dict)
    label_noise: dict[str, Any] | None = None
