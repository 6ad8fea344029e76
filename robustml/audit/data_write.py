"""Write a data audit's result (:class:`~robustml.audit.data_audit.DataAuditResult`): md, json, console."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from robustml.audit.data_findings import DataAuditResult
from robustml.report import write_metrics_json, write_text
from robustml.report.tables import markdown_table


def data_audit_record(result: DataAuditResult, source: str = "") -> dict[str, Any]:
    """Return the JSON-ready record of ``result`` (what ``data_audit.json`` holds)."""
    return {"source": source, "description": result.description,
            "findings": [{"rank": k, **asdict(f)} for k, f in enumerate(result.findings, 1)],
            "splits": result.summary, "associations": result.associations, "drift": result.drift,
            "image_sizes": result.image_sizes, "label_noise": result.label_noise}


def _number(value: Any) -> str:
    return "n/a" if value != value else f"{value:.2f}"


def render_data_audit_md(result: DataAuditResult, source: str = "") -> str:
    """Return ``data_audit.md``: the ranked findings, the splits, the associations and the drift tests."""
    lines = [f"# Data audit: {source or 'data'}", "", result.description, "",
             f"{len(result.findings)} findings, most severe first.", "", "## Findings", ""]
    rows = [[k, f.severity, f.check, f.count or "", f.message, ", ".join(str(e) for e in f.examples) or "-"]
            for k, f in enumerate(result.findings, 1)]
    lines += [markdown_table(["rank", "severity", "check", "count", "finding", "examples"], rows) if rows
              else "Nothing found.", "", "## Splits", ""]
    lines += [markdown_table(["split", "rows", "examples per class", "examples per group"],
                             [[n, s["rows"], s["class_counts"], s["group_counts"]] for n, s in result.summary.items()]),
              "", "## Association of each attribute with the label", "",
              "Cramér's V per split, signed by whether train's attribute -> label rule holds there "
              "(negative: reversed).", ""]
    lines += [markdown_table(["attribute", "train", "val", "test"],
                             [[a["attribute"], *(_number(a[f"{n}/directed"]) for n in ("train", "val", "test"))]
                              for a in result.associations]), ""]
    if result.drift:
        lines += ["## Drift between splits", "", "An alert needs at least two of: the test's p-value, "
                  "PSI and the Jensen-Shannon distance past their thresholds.", "",
                  markdown_table(["column", "splits", "test", "p-value", "PSI", "JS", "alert"],
                                 [[d["column"], d["splits"], d["test"], f"{d['p_value']:.2g}", _number(d["psi"]),
                                   _number(d["js"]), "yes" if d["alert"] else ""] for d in result.drift]), ""]
    return "\n".join(lines + _image_sizes_md(result.image_sizes) + _label_noise_md(result.label_noise))


def _sizes(counts: dict[str, int]) -> str:
    return ", ".join(f"{size} ({n})" for size, n in counts.items())


def _image_sizes_md(sizes: dict[str, Any]) -> list[str]:
    if not sizes:
        return []
    lines = ["## Image sizes", ""]
    if sizes["source"] == "in memory":
        shape = " x ".join(str(n) for n in sizes["shape"])
        return lines + [f"The images are in memory, every one {shape} (channels x height x width): the size is "
                        "uniform and cannot be a shortcut.", ""]
    lines += [f"Width x height from the file headers of up to {sizes['sampled_per_split']} sampled images per split"
              + (": every one has the same size." if sizes["uniform"] else "; images counted per size."), ""]
    rows = [[f"split {n}", _sizes(c)] for n, c in sizes["splits"].items()]
    rows += [[f"train group {g}", _sizes(c)] for g, c in sizes["train_groups"].items()]
    return lines + [markdown_table(["images", "sizes (count)"], rows), ""]


def _label_noise_md(noise: dict[str, Any] | None) -> list[str]:
    if noise is None:
        return []
    lines = ["## Label noise (training split)", ""]
    if not noise["estimated"]:
        return lines + [f"Not estimated: {noise['reason']}.", ""]
    lines += [f"Confident learning (cleanlab's calibrated confident joint) on {noise['num_folds']}-fold "
              f"out-of-sample probabilities from the cleaning path: an estimated {noise['estimated_wrong']} of "
              f"{noise['examples']} labels ({noise['noise_rate']:.1%}) are wrong. Per given class: the labels "
              "estimated wrong, their share, the class most of them belong to, and the estimated share of the "
              "class's true members labeled otherwise (1 - T[c, c]).", ""]
    rows = [[c["class"], c["labeled"], c["estimated_wrong"], f"{c['noise_rate']:.1%}", c["most_from"] or "-",
             f"{c['flip_rate']:.1%}"] for c in noise["classes"]]
    return lines + [markdown_table(["class", "labeled", "estimated wrong", "noise rate", "most from",
                                    "flip rate"], rows), ""]


def render_data_summary(result: DataAuditResult, top: int = 10) -> str:
    """Return the console summary: the ``top`` findings, one line each, most severe first."""
    if not result.findings:
        return "Data audit: nothing found."
    lines = [f"Data audit: {len(result.findings)} findings, most severe first"]
    for k, f in enumerate(result.findings[:top], 1):
        text = f.message if len(f.message) <= 160 else f.message[:157] + "..."
        lines.append(f"{k:>2}. [{f.severity}] {text}")
    if len(result.findings) > top:
        lines.append(f"    ... and {len(result.findings) - top} more in data_audit.md")
    return "\n".join(lines)


def write_data_audit(result: DataAuditResult, out_dir: str | Path, source: str = "") -> Path:
    """Write ``data_audit.md`` and ``data_audit.json`` into ``out_dir`` (atomically); return ``out_dir``."""
    out_dir = Path(out_dir)
    write_metrics_json(out_dir / "data_audit.json", data_audit_record(result, source))
    write_text(out_dir / "data_audit.md", render_data_audit_md(result, source))
    return out_dir
