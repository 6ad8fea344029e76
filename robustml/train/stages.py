"""ERM stages of two-stage runs: the run's config trained with plain ERM, once, into a cache folder.

JTT's stage one (:mod:`robustml.train.jtt`) and the reference model of group inference
(:mod:`robustml.train.reference`) are the same kind of stage: the run's data, model, optimizer,
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
import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock
from omegaconf import DictConfig, OmegaConf

from robustml.report import write_text
from robustml.train import distributed
from robustml.train.methods import data_identity

log = logging.getLogger(__name__)
STAGE_VERSION = "robustml.erm_stage/1"  # bump when the same config would train another model
# Trainer keys that change how a stage is run, logged or selected, not the model it ends with
# (the last step's: select is always "last").
EXECUTION_KEYS = ("progress", "resume", "resume_force", "num_workers", "pin_memory",
                  "persistent_workers", "eval_batch_size", "eval_every", "eval_train", "select")
MARKER = "stage.json"


def erm_stage_config(cfg: DictConfig, *, suffix: str, max_steps: int,
                     epochs: int | None = None) -> DictConfig:
    """Return ``cfg`` (resolved) as an ERM stage of ``max_steps`` steps (or ``epochs``), named ``<name>_<suffix>``."""
    stage = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    stage.name = f"{cfg.name}_{suffix}"
    stage.loss = {"partition": "group", "criterion": {"_target_": "robustml.losses.ERMLoss"}}
    stage.sampler = {"kind": "uniform", "partition": "group"}
    stage.augment, stage.cleaning, stage.groups = None, None, None
    OmegaConf.update(stage, "method", None, merge=False)
    stage.trainer.update(max_steps=int(max_steps), epochs=epochs, select="last", resume=False)
    return stage


def stage_identity(stage: DictConfig) -> dict[str, Any]:
    """Return what a stage's model depends on: data (:func:`data_identity`), model, optimizer,
    scheduler, seed and the trainer settings but :data:`EXECUTION_KEYS`."""
    container: dict[str, Any] = OmegaConf.to_container(stage, resolve=True)  # type: ignore[assignment]
    identity = {key: container.get(key) for key in ("model", "optimizer", "scheduler", "seed")}
    identity["data"] = data_identity(container["data"])
    identity["trainer"] = {k: v for k, v in container["trainer"].items() if k not in EXECUTION_KEYS}
    identity["processes"] = distributed.world_size()  # dropout draws differ per process
    return identity


def stage_key(stage: DictConfig) -> str:
    """Return the hash (16 hex digits) of :func:`stage_identity` and :data:`STAGE_VERSION`."""
    payload = json.dumps([STAGE_VERSION, stage_identity(stage)], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


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
    from robustml.train.build import build  # build imports the loop; a stage is its own run
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
        if distributed.is_main():
            write_text(folder / "config.yaml", OmegaConf.to_yaml(stage))
        trainer, _, _ = build(stage, folder)  # seeds with stage.seed
        result = trainer.fit()
        if distributed.is_main():
            write_text(folder / MARKER, json.dumps({"steps": trainer.step, "selected_step": result["best_step"],
                                                    "train_seconds": round(result["elapsed"], 3)},
                                                   indent=2) + "\n")
        distributed.barrier()  # stage.json is written before any process reads it
    return "trained"
