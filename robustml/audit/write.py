"""Write an :class:`~robustml.audit.audit.AuditResult` as ``audit.md``, ``audit.json`` and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustml.audit.audit import AuditResult
from robustml.augment import render_stress_table
from robustml.report import plot_group_accuracy, write_metrics_json, write_text
from robustml.report.tables import group_table, markdown_table, overlap_table, percent


def audit_record(result: AuditResult, source: str = "") -> dict[str, Any]:
    """Return the JSON-ready record of ``result`` (what ``audit.json`` holds)."""
    slices = [{"rank": rank, "label": s.label, "class_name": result.class_names[s.label],
               "cluster": s.cluster, "size": s.size, "accuracy": s.accuracy,
               "description": s.description, "main_group": g, "main_group_name": result.group_names[g],
               "main_group_share": share}
              for rank, (s, (g, share)) in enumerate(zip(result.slices, result.slice_groups), 1)]
    return {"source": source, "split": result.split, "group_names": result.group_names,
            "per_group": result.metrics, "slices": slices, "stress_test": result.stress}


def render_audit_md(result: AuditResult, source: str = "", top: int = 10) -> str:
    """Return ``audit.md``: per-group accuracy, the ``top`` worst slices, the stress test."""
    split, record = result.split, audit_record(result, source)
    worst = result.metrics[f"{split}/acc_worst_group"]
    overlap = overlap_table(result.metrics, split)  # None unless the split declares overlapping groups
    lines = [f"# Audit: {source or 'model'} on the {split} split", "",
             f"Average accuracy {percent(result.metrics[f'{split}/acc_avg'])}%, worst-group accuracy "
             f"{percent(worst)}% over {len(result.group_names)} known groups.", "",
             "## Accuracy by known group", "", group_table(result.metrics, split, result.group_names), "",
             *([overlap, ""] if overlap else []),
             "## Slices where the model fails most (found without group labels)", "",
             "Each class's features are clustered (number of clusters by silhouette); slices are "
             "ranked by accuracy, worst first. The last two columns use the known groups only to "
             "say what a slice is; the slices were found without them.", ""]
    rows = [[s["rank"], s["class_name"], s["size"], percent(s["accuracy"]), "; ".join(s["description"]) or "-",
             f"{s['main_group_name']} ({percent(s['main_group_share'])}%)"] for s in record["slices"][:top]]
    lines += [markdown_table(["rank", "class", "size", "accuracy (%)", "what sets it apart (inputs)",
                              "main known group (share)"], rows), ""]
    if result.stress is not None:
        lines += ["## Counterfactual stress test", "",
                  "Accuracy on copies with only the spurious attribute changed, and the fraction of "
                  "predictions that flip.", "", render_stress_table(result.stress, result.group_names), ""]
    else:
        lines += ["No counterfactual stress test: the dataset declares no rule (or no model was given).", ""]
    return "\n".join(lines)


def write_audit(result: AuditResult, out_dir: str | Path, source: str = "") -> Path:
    """Write ``audit.md``, ``audit.json`` and ``plots/{group_accuracy,slice_accuracy}.png``; return ``out_dir``."""
    out_dir = Path(out_dir)
    write_metrics_json(out_dir / "audit.json", audit_record(result, source))
    write_text(out_dir / "audit.md", render_audit_md(result, source))
    plot_group_accuracy(out_dir / "plots" / "group_accuracy.png", result.metrics, result.group_names,
                        splits=(result.split,))
    worst = result.slices[:10]
    slice_final = {f"{result.split}/acc_group_{k}": s.accuracy for k, s in enumerate(worst)}
    slice_final[f"{result.split}/acc_worst_group"] = worst[0].accuracy if worst else float("nan")
    plot_group_accuracy(out_dir / "plots" / "slice_accuracy.png", slice_final,
                        [f"#{k + 1} y={result.class_names[s.label]} (n={s.size})" for k, s in enumerate(worst)],
                        splits=(result.split,))
    return out_dir
