"""Plot a run's per-group accuracy and its history (metrics, group weights) as PNG files.

Figures are built with :class:`matplotlib.figure.Figure` and saved through the Agg canvas, never
through ``pyplot``: no global backend is selected or changed, no GUI is needed, and no figure stays
registered in memory after the call.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from robustml.atomic import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure(**kwargs: Any) -> Figure:
    """Return a new figure; matplotlib is imported here, on first use (it costs ~0.5 s)."""
    from matplotlib.figure import Figure
    return Figure(**kwargs)


def _save_png(fig: Figure, path: str | os.PathLike) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def _as_float(value: Any) -> float:
    """Return ``value`` as a float, with ``None`` (a NaN read back from JSON) as NaN."""
    return math.nan if value is None else float(value)


def plot_group_accuracy(path: str | os.PathLike, final: Mapping[str, Any],
                        group_names: Sequence[str],
                        splits: Sequence[str] = ("val", "test")) -> None:
    """Draw per-group accuracy (%) as grouped bars, one colour per split, and save a PNG.

    A dashed line per split marks its worst-group accuracy. Empty groups (NaN or ``None``) get
    no bar and an "n/a" label.

    Args:
        path: Destination PNG file.
        final: Flat dict with ``{split}/acc_group_<g>`` and ``{split}/acc_worst_group`` for every
            split, accuracies in ``[0, 1]`` (the dict :func:`render_report_md` reads).
        group_names: Name of each group; one bar cluster per group.
        splits: Splits to draw, in order.

    Raises:
        ValueError: If ``final`` lacks a key of a requested split and group, or ``splits`` is empty.
    """
    if isinstance(splits, str) or not splits:
        raise ValueError(f"splits must be a non-empty sequence of split names, got {splits!r}")
    num_groups = len(group_names)
    fig = _figure(figsize=(max(5.0, 1.2 * num_groups + 2), 4))
    ax = fig.add_subplot()
    width = 0.8 / len(splits)
    for i, split in enumerate(splits):
        keys = [f"{split}/acc_group_{g}" for g in range(num_groups)] + [f"{split}/acc_worst_group"]
        missing = [k for k in keys if k not in final]
        if missing:
            raise ValueError(f"final must contain {missing[0]!r} to plot split {split!r}")
        accs = [100 * _as_float(final[k]) for k in keys[:-1]]
        xs = [g - 0.4 + width * (i + 0.5) for g in range(num_groups)]
        bars = ax.bar(xs, accs, width=width, label=split)
        for x, acc in zip(xs, accs):
            if math.isnan(acc):
                ax.text(x, 1, "n/a", ha="center", va="bottom", fontsize="small")
        worst = 100 * _as_float(final[keys[-1]])
        if not math.isnan(worst):
            ax.axhline(worst, color=bars.patches[0].get_facecolor(), linestyle="--", linewidth=1,
                       label=f"{split} worst group ({worst:.1f})")
    ax.set_xticks(range(num_groups), list(group_names), rotation=30, ha="right")
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Per-group accuracy")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    _save_png(fig, path)


def plot_history(path: str | os.PathLike, history: Sequence[Mapping[str, Any]], keys: Sequence[str],
                 *, title: str, ylabel: str) -> bool:
    """Draw the given keys over ``step`` as lines and save a PNG.

    Records that lack a key are skipped for that key; a ``None`` value (NaN read back from JSON)
    leaves a gap.

    Args:
        path: Destination PNG file.
        history: Records in order, e.g. the lines of ``metrics.jsonl``; each one that holds any of
            ``keys`` must hold ``step``.
        keys: Keys to draw, e.g. ``["val/acc_worst_group", "val/acc_avg"]`` or
            ``["train/q_0", "train/q_1"]``.
        title: Plot title.
        ylabel: Y-axis label.

    Returns:
        ``True`` if the file was written; ``False`` (and no file) if no record holds any key.

    Raises:
        ValueError: If ``keys`` is empty or a record holds a key but no ``step``.
    """
    if isinstance(keys, str) or not keys:
        raise ValueError(f"keys must be a non-empty sequence of metric names, got {keys!r}")
    lines = {}
    for key in keys:
        points = []
        for i, record in enumerate(history):
            if key not in record:
                continue
            if "step" not in record:
                raise ValueError(f"history[{i}] holds {key!r} but no 'step'")
            points.append((record["step"], _as_float(record[key])))
        if points:
            lines[key] = points
    if not lines:
        return False
    fig = _figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for key, points in lines.items():
        steps, values = zip(*points)
        ax.plot(steps, values, marker="." if len(points) < 50 else None, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    _save_png(fig, path)
    return True
