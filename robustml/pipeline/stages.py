"""ERM stages of two-stage runs: the run's config trained with plain ERM, once, into a cache folder.

JTT's stage one (:mod:`robustml.pipeline.jtt`) and the reference model of group inference
(:mod:`robustml.pipeline.inferred`) are the same kind of stage: the run's data, model, optimizer,
scheduler and trainer settings, trained with plain ERM on uniform batches (no augmentation,
cleaning, method or inferred groups, hence no group labels), for a given number of steps, with
the last step kept (``trainer.select=last``). :func:`erm_stage_config` derives that config and
:func:`stage_identity` what the stage's model depends on; a caller names the stage's folder by
:func:`stage_key`, so a sweep over the second stage trains it once.

A stage folder is a run folder (``config.yaml``, ``metrics.jsonl``, ``checkpoints/``) whose
``stage.json`` is written last: its presence marks a finished stage. A stage stopped before
(a killed process) resumes from its ``checkpoints/last.pt`` when it is asked for again, and ends
as the uninterrupted stage would (the trainer's exact resume), whichever run with the same key
asks for it. Processes that ask for the same stage at once (a parallel sweep) take turns through
a lock file: the first trains it, the others then reuse it. Under torchrun the processes of one
job train the stage together, as one run: the main process writes its files.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from omegaconf import DictConfig, OmegaConf

from robustml.data.contract import DataSplits
from robustml.identity import STAGE_EXEMPT_KEYS, data_identity, hash_key
from robustml.losses import num_outputs_for
from robustml.pipeline.build import build_splits, build_trainer, resolve_device
from robustml.pipeline.instantiate import build_from, config_keys
from robustml.report import write_text
from robustml.train import distributed
from robustml.train.checkpoint import load_checkpoint
from robustml.train.rng import seed_everything

log = logging.getLogger(__name__)
STAGE_VERSION = "robustml.erm_stage/1"  # bump when the same config would train another model
MARKER = "stage.json"


def erm_stage_config(cfg: DictConfig, *, suffix: str, max_steps: int,
                     epochs: int | None = None) -> DictConfig:
    """Return ``cfg`` (resolved) as an ERM stage of ``max_steps`` steps (or ``epochs``), named ``<name>_<suffix>``."""
    stage = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    stage.name = f"{cfg.name}_{suffix}"
    stage.loss = {"partition": "group", "criterion": {"_target_": "robustml.losses.ERMLoss"}}
    stage.sampler = {"name": "uniform", "_target_": None, "partition": "group"}
    stage.augment, stage.cleaning, stage.groups = None, None, None
    OmegaConf.update(stage, "method", None, merge=False)
    stage.trainer.update(max_steps=int(max_steps), epochs=epochs, select="last", resume=False)
    return stage


def stage_identity(stage: DictConfig) -> dict[str, Any]:
    """Return what a stage's model depends on: data (:func:`data_identity`), model, optimizer,
    scheduler, seed and the trainer settings but :data:`robustml.identity.STAGE_EXEMPT_KEYS`."""
    container: dict[str, Any] = OmegaConf.to_container(stage, resolve=True)  # type: ignore[assignment]
    identity = {key: container.get(key) for key in ("model", "optimizer", "scheduler", "seed")}
    identity["data"] = data_identity(container["data"])
    identity["trainer"] = {k: v for k, v in container["trainer"].items()
                          if f"trainer.{k}" not in STAGE_EXEMPT_KEYS}
    identity["processes"] = distributed.world_size()  # dropout draws differ per process
    return identity


def stage_key(stage: DictConfig, *versions: str) -> str:
    """Return the cache key (16 hex digits) of :func:`stage_identity`, :data:`STAGE_VERSION` and the
    caller's ``versions`` (JTT's error-set version), through :func:`robustml.identity.hash_key`."""
    return hash_key(STAGE_VERSION, *versions, stage_identity(stage))[:16]


@contextlib.contextmanager
def stage_lock(folder: str | Path) -> Iterator[None]:
    """Hold ``folder``'s lock file (a process of one torchrun job needs none: the job is one run)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if distributed.world_size() > 1:
        yield
        return
    with FileLock(str(folder / ".lock")):
        yield


def train_stage(stage: DictConfig, folder: str | Path) -> str:
    """Train ``stage`` into ``folder`` unless it is finished there; return ``"trained"`` or ``"reused"``.

    The selected (last-step) model is ``folder/checkpoints/best.pt``; ``folder/stage.json`` holds
    the stage's steps and seconds.
    """
    folder = Path(folder)
    with stage_lock(folder):
        if (folder / MARKER).is_file():
            log.info("ERM stage: reusing %s", folder)
            return "reused"
        stage = stage.copy()
        if (folder / "checkpoints" / "last.pt").is_file():  # a stage that was stopped: continue it
            log.info("ERM stage: resuming %s from its last checkpoint", folder)
            # The folder's name is the stage's identity: another run with this key may differ
            # only in how it runs the stage (its name, eval_every, workers), not in the model.
            stage.trainer.resume, stage.trainer.resume_force = True, True
        elif (folder / "metrics.jsonl").exists() and distributed.is_main():
            # Killed between its first evaluation and its first checkpoint: nothing to resume.
            log.info("ERM stage: %s has no checkpoint yet; starting it again", folder)
            (folder / "metrics.jsonl").unlink()
        if distributed.is_main():
            write_text(folder / "config.yaml", OmegaConf.to_yaml(stage))
        trainer = _stage_trainer(stage, folder)
        with config_keys():  # the engine names its arguments; the stage's error names config keys
            result = trainer.fit()
        if distributed.is_main():
            write_text(folder / MARKER, json.dumps({"steps": trainer.step, "selected_step": result["best_step"],
                                                    "train_seconds": round(result["elapsed"], 3)},
                                                   indent=2) + "\n")
        distributed.barrier()  # stage.json is written before any process reads it
    return "trained"


def _stage_trainer(stage: DictConfig, folder: Path) -> Any:
    """Build a stage's trainer as a run of its own: seeded with ``stage.seed`` before its data and
    again before its model, as :func:`robustml.pipeline.run.run` seeds a run."""
    device = resolve_device(stage.trainer.device)
    seed_everything(stage.seed, device)
    data = build_splits(stage, folder)
    seed_everything(stage.seed, device)
    return build_trainer(stage, data, folder)


def run_config(folder: str | Path, *, what: str) -> DictConfig:
    """Load a finished run's resolved ``config.yaml``; a folder without one is named, as ``what``."""
    path = Path(folder) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{what}={folder} is not a run folder: {path} does not exist (expected "
                                "the directory of a finished robustml-train run: config.yaml and "
                                "checkpoints/best.pt)")
    return OmegaConf.load(path)


def load_trained_model(source: str | Path, model_cfg: DictConfig | None, splits: DataSplits,
                       device: torch.device | str = "cpu") -> torch.nn.Module:
    """Build a run's model for ``splits`` and load its selected weights, in eval mode.

    Args:
        source: A run folder (``config.yaml`` and ``checkpoints/best.pt``) or a checkpoint file
            (``best.pt``/``last.pt``, whose architecture is then ``model_cfg``).
        model_cfg: The model config node when ``source`` is a file (ignored for a folder, whose
            ``config.yaml`` says the model).
        splits: The data the model is applied to (input shape and number of classes).
        device: Where the model goes.

    Raises:
        FileNotFoundError: When the folder lacks ``config.yaml`` or its checkpoint.
        ValueError: When the checkpoint's parameters do not fit the model built for ``splits``
            (trained on another input shape or number of classes).
    """
    source = Path(source)
    trained_on = "unknown data"
    if source.is_dir():
        run_cfg = run_config(source, what="the model source")
        model_cfg, trained_on = run_cfg.model, str(OmegaConf.select(run_cfg, "data._target_"))
        checkpoint = source / "checkpoints" / "best.pt"
    else:
        checkpoint = source
        if model_cfg is None:
            raise ValueError(f"a checkpoint file ({source}) needs the model config it was trained with")
    model = build_from(OmegaConf.create({"model": model_cfg}), "model", input_shape=splits.input_shape,
                       num_outputs=num_outputs_for(splits.num_classes))
    state = load_checkpoint(checkpoint, map_location="cpu")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        detail = str(error).strip().splitlines()[-1].strip()
        raise ValueError(
            f"the checkpoint {checkpoint} does not fit a {model_cfg._target_.rsplit('.', 1)[-1]} built "
            f"for this dataset (input shape {tuple(splits.input_shape)}, {splits.num_classes} classes): "
            f"{detail}. It was trained on {trained_on}; use it with the data it was trained on, or "
            "pass a checkpoint trained on this dataset") from error
    return model.to(device).eval()
