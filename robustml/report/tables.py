"""Write a run's text outputs: ``metrics.json``, ``metrics.jsonl`` and ``report.md``.

JSON is strict (no ``NaN``/``Infinity`` tokens): NaN, the accuracy of an empty group, is written as
``null``. Whole-file writes go through :mod:`robustml.atomic` (whole or absent, permissions
``0o666`` minus the umask); ``atomic_path`` and ``write_text`` are re-exported from there.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from robustml.atomic import atomic_path, write_text  # noqa: F401 (re-exported: the one writer)

_SUMMARY_HEADERS = ("split", "worst-group acc (%)", "worst group", "average acc (%)",
                    "train-mix avg acc (%)", "group-mean acc (%)")
_AVERAGES_NOTE = ("*Average acc* is the plain average over the split's examples; "
                  "*train-mix avg acc* weights each group's accuracy by its share of the "
                  "training set (the \"average\" of the Waterbirds papers); *group-mean acc* is "
                  "the unweighted mean over groups. Empty groups are left out of all three.")


def _json_ready(value: Any, where: str) -> Any:
    """Return ``value`` with NaN as ``None`` and 0-d arrays/tensors as Python scalars."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            return None
        raise ValueError(f"{where} must be finite or NaN to be written as JSON, got {value}")
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(f"{where} must be a number, string, bool, None, list or dict, got "
                    f"{type(value).__name__}")


def _dumps(record: Mapping[str, Any], name: str, **kwargs: Any) -> str:
    if not isinstance(record, Mapping):
        raise TypeError(f"{name} must be a dict, got {type(record).__name__}")
    return json.dumps(_json_ready(record, name), sort_keys=True, allow_nan=False, **kwargs)


def write_metrics_json(path: str | os.PathLike, metrics: Mapping[str, Any]) -> None:
    """Write ``metrics`` to ``path`` as strict JSON with sorted keys, atomically.

    Args:
        path: Destination file, e.g. ``<run_dir>/metrics.json``.
        metrics: Dict of numbers, strings, bools, ``None``, lists and dicts; NaN becomes ``null``;
            0-d numpy arrays and tensors become Python scalars.

    Raises:
        ValueError: If a value is infinite. TypeError: If a value has another type.
    """
    write_text(path, _dumps(metrics, "metrics", indent=2) + "\n")


def append_jsonl(path: str | os.PathLike, record: Mapping[str, Any]) -> None:
    """Append ``record`` to ``path`` as one line of strict JSON (NaN as ``null``) and flush."""
    line = _dumps(record, "record") + "\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()


def write_jsonl(path: str | os.PathLike, records: Sequence[Mapping[str, Any]]) -> None:
    """Write ``records`` to ``path``, one line of strict JSON each, atomically (replacing the file)."""
    write_text(path, "".join(_dumps(record, f"records[{i}]") + "\n"
                             for i, record in enumerate(records)))


def _cell(value: Any) -> str:
    return str(value).replace("\n", " ").replace("|", "\\|")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Render a GitHub-flavoured markdown table with padded columns.

    Args:
        headers: Column titles.
        rows: One sequence of cells per row, each as long as ``headers``; cells are ``str()``-ed,
            with ``|`` escaped and newlines replaced by spaces.

    Returns:
        The table, one line per row, without a trailing newline.
    """
    table = [[_cell(h) for h in headers]]
    for i, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(f"rows[{i}] must have {len(headers)} cells to match headers, "
                             f"got {len(row)}")
        table.append([_cell(c) for c in row])
    widths = [max(3, *(len(r[j]) for r in table)) for j in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in table]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def percent(value: Any) -> str:
    return "n/a" if is_missing(value) else f"{100 * float(value):.1f}"


def _required(final: Mapping[str, Any], key: str) -> Any:
    if key not in final:
        raise ValueError(f"final must contain {key!r}; its keys with that prefix are "
                         f"{sorted(k for k in final if k.startswith(key.split('/')[0] + '/'))}")
    return final[key]


def worst_group(final: Mapping[str, Any], split: str, num_groups: int) -> int | None:
    worst = _required(final, f"{split}/worst_group")
    return int(worst) if not is_missing(worst) and 0 <= int(worst) < num_groups else None


def group_table(final: Mapping[str, Any], split: str, group_names: Sequence[str]) -> str:
    """Return the markdown table of ``split``'s per-group counts and accuracies, worst marked."""
    worst = worst_group(final, split, len(group_names))
    rows = []
    for g, name in enumerate(group_names):
        count = _required(final, f"{split}/count_group_{g}")
        rows.append([g, name, "n/a" if is_missing(count) else int(count),
                     percent(_required(final, f"{split}/acc_group_{g}")),
                     "<- worst" if g == worst else ""])
    return markdown_table(("group", "name", "count", "accuracy (%)", ""), rows)


def overlap_table(final: Mapping[str, Any], split: str) -> str | None:
    """Return the markdown table of ``split``'s overlapping groups (attribute x class), the worst
    marked, or ``None`` when the split declares none (no ``{split}/overlap_acc_worst_group``)."""
    worst = final.get(f"{split}/overlap_acc_worst_group", "absent")
    if worst == "absent":
        return None
    pattern = re.compile(rf"{re.escape(split)}/overlap_acc_(.+)_y(\d+)")
    rows = []
    for key, acc in final.items():
        match = pattern.fullmatch(key)
        if match:
            count = final.get(f"{split}/overlap_count_{match[1]}_y{match[2]}")
            rows.append([match[1], match[2], "n/a" if is_missing(count) else int(count), percent(acc),
                         "<- worst" if not is_missing(acc) and acc == worst else ""])
    return (f"## Overlapping groups: {split}\n\nEach group is an attribute x class; an example can be "
            f"in several groups or none. Worst over them: {percent(worst)}%.\n\n"
            + markdown_table(("attribute", "class", "count", "accuracy (%)", ""), rows))


def render_report_md(*, title: str, final: Mapping[str, Any], group_names: Sequence[str],
                     splits: Sequence[str] = ("val", "test"), group_label_use: str,
                     notes: Sequence[str] = (), extra_tables: Sequence[str] = ()) -> str:
    """Render a run's final evaluation as markdown.

    Args:
        title: Top heading.
        final: Flat dict with, for every split, ``{split}/acc_group_<g>``,
            ``{split}/count_group_<g>``, ``{split}/acc_worst_group``, ``{split}/worst_group``
            and ``{split}/acc_avg``, and optionally ``{split}/acc_weighted_avg`` and
            ``{split}/acc_group_mean``, and the overlapping groups' ``{split}/overlap_*``
            (:func:`overlap_table`) (accuracies in ``[0, 1]``; NaN or ``None`` for empty
            groups, ``-1`` or ``None`` for no worst group). Keys without a ``/``
            (e.g. ``selected_step``) are listed in a "Run" table.
        group_names: Name of each group, e.g. ``"y=1,place=land"``.
        splits: Splits to report, in order.
        group_label_use: What group labels were used for (training, model selection, nothing);
            written verbatim.
        notes: Lines written as a bullet list under "Notes".
        extra_tables: Pre-rendered markdown (see :func:`markdown_table`) appended as-is.

    Returns:
        The markdown text, ending in a newline.

    Raises:
        ValueError: If ``final`` lacks a required key or ``group_label_use`` is empty.
    """
    if not isinstance(group_label_use, str) or not group_label_use.strip():
        raise ValueError(f"group_label_use must be a non-empty string, got {group_label_use!r}")
    if isinstance(splits, str):
        raise TypeError(f"splits must be a sequence of split names, got the string {splits!r}")
    num_groups = len(group_names)
    summary, per_split = [], []
    for split in splits:
        worst = worst_group(final, split, num_groups)
        summary.append([split, percent(_required(final, f"{split}/acc_worst_group")),
                        "n/a" if worst is None else f"{group_names[worst]} ({worst})",
                        percent(_required(final, f"{split}/acc_avg")),
                        percent(final.get(f"{split}/acc_weighted_avg")),
                        percent(final.get(f"{split}/acc_group_mean"))])
        per_split.append(f"## Per-group accuracy: {split}\n\n"
                         + group_table(final, split, group_names))
        overlap = overlap_table(final, split)
        if overlap is not None:
            per_split.append(overlap)

    parts = [f"# {title}", "## Summary\n\n" + markdown_table(_SUMMARY_HEADERS, summary)
             + "\n\n" + _AVERAGES_NOTE]
    run_values = sorted((key, "n/a" if is_missing(value) else value)
                        for key, value in final.items() if "/" not in key)
    if run_values:
        parts.append("## Run\n\n" + markdown_table(("key", "value"), run_values))
    parts += per_split
    parts.append("## What group labels were used for\n\n" + group_label_use)
    if notes:
        parts.append("## Notes\n\n" + "\n".join(f"- {note}" for note in notes))
    parts += [table.strip("\n") for table in extra_tables]
    return "\n\n".join(parts) + "\n"


def write_report_md(path: str | os.PathLike, **kwargs: Any) -> None:
    """Write :func:`render_report_md`'s markdown (same keyword arguments) to ``path`` atomically."""
    write_text(path, render_report_md(**kwargs))
