"""The ``logger=`` config group made into trackers for one run (:mod:`robustml.trackers`).

``logger=none`` (default) sends nothing; ``logger=tensorboard``, ``logger=mlflow`` or both
(``logger=[tensorboard,mlflow]``) start their trackers before anything is trained, after
checking what can be checked then: the package is installed (else
the error names the extra) and MLflow's store is reachable. The trackers run in a process of
their own (:class:`~robustml.trackers.TrackerProcess`) that reads the run's ``metrics.jsonl``;
after the run's own files are written, :func:`finish_trackers` hands it the outputs
(``report.md``, plots, the selected checkpoint, the model to register).

MLflow's defaults: the store ``sqlite:///<paths.output_root>/mlflow.db`` (artifacts in
``<paths.output_root>/mlartifacts/``), the experiment named after the run, or after the sweep
folder in a sweep (one experiment per sweep, one MLflow run per job).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, OmegaConf

from robustml.identity import flatten
from robustml.pipeline.labels import describe_group_label_use, method_name
from robustml.trackers import (RunInfo, RunOutputs, TrackerProcess, check_tracking_uri,
                               require_module)
from robustml.trackers.mlflow_tracker import sqlite_path

if TYPE_CHECKING:
    from robustml.pipeline.build import RunData
    from robustml.train.loop import Trainer

TRACKERS = ("tensorboard", "mlflow")


def open_trackers(cfg: DictConfig, run_dir: Path) -> TrackerProcess | None:
    """Return the started tracker process of ``cfg.logger``, or ``None`` for ``logger=none``.

    Raises before any training: ``ModuleNotFoundError`` when a chosen tracker's package is missing
    (naming the extra), ``ConnectionError`` when MLflow's tracking URI cannot be reached,
    ``ValueError`` for an unknown key under ``logger``. The trackers themselves start in their
    own process (:class:`~robustml.trackers.TrackerProcess`).
    """
    chosen = OmegaConf.select(cfg, "logger") or {}
    unknown = sorted(set(chosen) - set(TRACKERS))
    if unknown:
        raise ValueError(f"logger holds {unknown}; the trackers are {list(TRACKERS)} "
                         "(logger=tensorboard, logger=mlflow, logger=[tensorboard,mlflow] or logger=none)")
    trackers: list[dict[str, Any]] = []  # specs of robustml.trackers.process.build_tracker
    if "tensorboard" in chosen:
        require_module("tensorboard", "logger=tensorboard")
        trackers.append({"kind": "tensorboard",
                         "log_dir": str(chosen.tensorboard.dir or run_dir / "tensorboard")})
    if "mlflow" in chosen:
        require_module("mlflow", "logger=mlflow")
        uri, artifacts = tracking_store(cfg)
        check_tracking_uri(uri)
        trackers.append({"kind": "mlflow", "tracking_uri": uri,
                         "experiment": chosen.mlflow.experiment or experiment_name(cfg),
                         "artifact_location": artifacts, "register_model": chosen.mlflow.register_model})
    if not trackers:
        return None
    uses = describe_group_label_use(cfg)
    tags = {f"group_labels.{key}": value for key, value in uses.items()}
    overrides = _hydra_value("overrides.task")
    if overrides:
        tags["robustml.overrides"] = " ".join(str(o) for o in overrides)
    info = RunInfo(name=run_dir.name, run_dir=run_dir, tags=tags, resumed=bool(cfg.trainer.resume),
                   params=flatten(OmegaConf.to_container(cfg, resolve=True)))
    metrics = run_dir / "metrics.jsonl"
    return TrackerProcess(trackers, info, metrics,
                         logged_through=_last_step(metrics) if cfg.trainer.resume else 0)


def tracking_store(cfg: DictConfig) -> tuple[str, str | None]:
    """Return MLflow's tracking URI and a new experiment's artifact folder for ``cfg``.

    The default store is ``sqlite:///<paths.output_root>/mlflow.db`` (absolute), its artifacts
    in ``mlartifacts/`` beside it; a ``sqlite:///`` URI given keeps its artifacts beside its file
    too; any other store uses its own default.
    """
    uri = cfg.logger.mlflow.tracking_uri
    if uri is None:
        uri = f"sqlite:///{Path(cfg.paths.output_root).resolve() / 'mlflow.db'}"
    database = sqlite_path(uri)
    return uri, None if database is None else str(database.resolve().parent / "mlartifacts")


def experiment_name(cfg: DictConfig) -> str:
    """Return the run's MLflow experiment: the sweep folder in a sweep (``-m``), else the run's name."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return str(HydraConfig.get().sweep.dir)
    return str(cfg.name)


def finish_trackers(trackers: TrackerProcess | None, cfg: DictConfig, run_dir: Path,
                    final: dict[str, Any], trainer: Trainer, data: RunData) -> list[str]:
    """Send a finished run's outputs, close the trackers; return the lines that say where to look."""
    if trackers is None:
        return []
    register = OmegaConf.select(cfg, "logger.mlflow.register_model")
    notes = []
    if register and method_name(cfg) == "dfr":
        notes.append(f"logger.mlflow.register_model={register}: the registered model is DFR's base "
                     "model; the refitted last layer is the artifact checkpoints/dfr_head.pt")
    checkpoints = run_dir / "checkpoints"
    outputs = RunOutputs(
        final=final, selected_step=int(final["selected_step"]), notes=notes,
        files={"": [run_dir / "report.md", run_dir / "metrics.json", run_dir / "config.yaml",
                    run_dir / "plots"],
               "checkpoints": [checkpoints / "best.pt", checkpoints / "dfr_head.pt"]})
    if register:
        model = getattr(trainer.model, "module", trainer.model)  # unwrapped from DDP
        model = getattr(model, "_orig_mod", model)               # and from torch.compile
        val = data.splits.val
        outputs.model = model.eval()
        outputs.input_example = torch.stack([val[i]["x"] for i in range(min(2, len(val)))]).cpu().numpy()
    return trackers.finish(outputs)


def _last_step(metrics: Path) -> int:
    """Return the last step of ``metrics.jsonl`` (0 when absent): a resumed run's trackers hold it.

    A line cut by a killed write is skipped."""
    if not metrics.is_file():
        return 0
    for line in reversed(metrics.read_text().splitlines()):
        try:
            return int(json.loads(line)["step"])
        except ValueError:
            continue
    return 0


def _hydra_value(key: str) -> Any:
    from hydra.core.hydra_config import HydraConfig

    return OmegaConf.select(HydraConfig.get(), key) if HydraConfig.initialized() else None
