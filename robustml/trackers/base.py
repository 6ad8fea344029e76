"""What every tracker receives, and the checks shared by the trackers: the values a tracker can
plot, and the optional package it needs.

A tracker (:class:`~robustml.trackers.tensorboard_tracker.TensorBoardTracker`,
:class:`~robustml.trackers.mlflow_tracker.MlflowTracker`) has four methods, called in this order
from one thread (:class:`~robustml.trackers.worker.TrackerThread`): ``start(info)`` once,
``log_metrics(step, values)`` per evaluation, ``finish(outputs)`` once after a completed run,
``close(status)`` always.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXTRA = "pip install 'robustml[trackers]'"
"""The install command of the trackers' optional packages (pyproject's ``trackers`` extra)."""


@dataclass
class RunInfo:
    """What a tracker records when a run starts.

    Attributes:
        name: The tracker run's name (the run folder's name).
        run_dir: The run's own folder (``metrics.jsonl``, ``report.md``, ...).
        params: The resolved config, flattened (``{"optimizer.lr": 0.001, ...}``).
        tags: Plain-text facts: the group-label ledger (``group_labels.training``, ...), the
            command-line overrides, the run folder.
        resumed: The run continues a stopped one (its tracker run is continued where possible).
    """

    name: str
    run_dir: Path
    params: dict[str, Any]
    tags: dict[str, str]
    resumed: bool = False


@dataclass
class RunOutputs:
    """What a tracker records when a run has finished.

    Attributes:
        final: The run's ``metrics.json`` values (the selected model's metrics).
        selected_step: The step of the selected checkpoint.
        files: Files to keep with the tracker run, as ``{folder in the tracker: [paths]}``.
        model: The selected model, for a tracker that registers it (``None``: nothing to register).
        input_example: A few input rows of the model (for the registered model's signature).
        notes: Lines the tracker logs as warnings (what the registered model leaves out).
    """

    final: dict[str, Any]
    selected_step: int
    files: dict[str, list[Path]] = field(default_factory=dict)
    model: Any = None
    input_example: Any = None
    notes: list[str] = field(default_factory=list)


def numeric_values(record: Mapping[str, Any], *, skip: tuple[str, ...] = ("step",)) -> dict[str, float]:
    """Return the finite numbers of ``record`` as floats (strings, ``None``, NaN and ``skip`` left out).

    An evaluation record holds accuracies, counts, losses, ``q`` and the learning rate as numbers;
    ``metrics.json`` also holds text (the selection rule, health findings), which trackers keep as
    tags instead. Booleans are not metrics.
    """
    out = {}
    for key, value in record.items():
        if key in skip or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


def text_values(record: Mapping[str, Any]) -> dict[str, str]:
    """Return the string values of ``record`` (the selection rule, health findings)."""
    return {key: value for key, value in record.items() if isinstance(value, str)}


def require_module(module: str, setting: str) -> None:
    """Raise ``ModuleNotFoundError`` naming ``setting`` and the extra when ``module`` is not installed.

    Only looks the module up (``importlib.util.find_spec``): nothing is imported, so the check costs
    nothing before training.
    """
    if importlib.util.find_spec(module) is None:
        raise ModuleNotFoundError(
            f"{setting} needs the {module} package, which is not installed: {EXTRA} "
            f"(installs tensorboard and mlflow-skinny), or drop {setting}")
