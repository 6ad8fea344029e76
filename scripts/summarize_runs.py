"""Summarize finished runs into a mean ± std table (markdown and JSON).

Each ``--row`` names a table row and a glob of run directories (or their ``metrics.json`` files):

    python scripts/summarize_runs.py --out experiments/colored_mnist/results \
        --row "ERM=runs/multirun/*/*_colored_mnist_erm" --row "IRM=runs/multirun/*/*_colored_mnist_irm"

Accuracies and rates are printed in percent; std is the sample standard deviation over runs (ddof=1).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
from pathlib import Path

DEFAULT_KEYS = ["train/acc_avg", "test/acc_avg", "test/acc_worst_group", "train_seconds"]


def load_runs(pattern: str) -> list[dict]:
    """Return the ``metrics.json`` contents of every run matching ``pattern``, sorted by path."""
    paths = sorted({Path(p) if p.endswith(".json") else Path(p) / "metrics.json"
                    for p in glob.glob(pattern)})
    runs = [json.loads(p.read_text()) for p in paths if p.is_file()]
    if not runs:
        raise FileNotFoundError(f"no metrics.json matches {pattern!r}")
    return runs


def mean_std(values: list[float]) -> tuple[float, float]:
    """Return the mean and sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def summarize(rows: dict[str, list[dict]], keys: list[str]) -> dict[str, dict]:
    """Return ``{row: {key: {"mean", "std", "n"}}}``; accuracies and rates in percent."""
    table: dict[str, dict] = {}
    for name, runs in rows.items():
        table[name] = {}
        for key in keys:
            scale = 100.0 if ("acc" in key or "rate" in key) else 1.0
            values = [scale * run[key] for run in runs if run.get(key) is not None]
            if values:
                mean, std = mean_std(values)
                table[name][key] = {"mean": mean, "std": std, "n": len(values)}
    return table


def to_markdown(table: dict[str, dict], keys: list[str]) -> str:
    """Render the summary as a markdown table with ``mean ± std`` cells."""
    lines = ["| row | runs | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for name, stats in table.items():
        n = max((s["n"] for s in stats.values()), default=0)
        cells = [f"{stats[k]['mean']:.1f} ± {stats[k]['std']:.1f}" if k in stats else "n/a" for k in keys]
        lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def replace_between(text: str, start: str, end: str, body: str) -> str:
    """Return ``text`` with what lies between the marker lines ``start`` and ``end`` replaced by
    ``body`` (how an experiment README shows the table a script wrote)."""
    head, found, rest = text.partition(start + "\n")
    _, found_end, tail = rest.partition(end)
    if not (found and found_end):
        raise ValueError(f"the README has no {start} ... {end} markers")
    return head + start + "\n" + body.rstrip("\n") + "\n" + end + tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", action="append", required=True, metavar="NAME=GLOB",
                        help="a table row: its name and a glob of run directories")
    parser.add_argument("--key", action="append", dest="keys",
                        help=f"metrics.json key to summarize (default: {DEFAULT_KEYS})")
    parser.add_argument("--out", type=Path, help="write OUT.md and OUT.json")
    args = parser.parse_args()
    rows = {}
    for row in args.row:
        if "=" not in row:
            parser.error(f"--row must be NAME=GLOB, got {row!r}")
        name, pattern = row.split("=", 1)
        rows[name] = load_runs(pattern)
    keys = args.keys or DEFAULT_KEYS
    table = summarize(rows, keys)
    markdown = to_markdown(table, keys)
    print(markdown)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(markdown)
        args.out.with_suffix(".json").write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
