"""Reference models for two-stage methods: an ERM stage cached by config hash, or a trained run.

Group inference (:mod:`robustml.groups`) reads a reference model's predictions, logits or
features. ``groups.reference.checkpoint`` names a trained run (its folder, with ``config.yaml``
and ``checkpoints/best.pt``, or a checkpoint file whose model matches ``cfg.model``); otherwise
an ERM stage is trained first with the run's data, model, optimizer and trainer settings, plain
ERM on uniform batches, ``groups.reference.max_steps`` steps (at most the run's own) and the last
step kept (no group labels). That stage is a run folder under ``groups.reference.cache_dir``
named by the hash of its config, so a sweep over the second stage trains it once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from robustml.data.contract import DataSplits
from robustml.losses import num_outputs_for
from robustml.report import write_text
from robustml.train.checkpoint import load_checkpoint
from robustml.train.instantiate import build_from

log = logging.getLogger(__name__)
# Trainer keys that change how a run is executed or shown, not the model it trains.
_EXECUTION_KEYS = ("progress", "resume", "device", "num_workers", "pin_memory", "persistent_workers",
                   "eval_batch_size")


def reference_config(cfg: DictConfig, num_train: int) -> DictConfig:
    """Return the config of the ERM reference stage of ``cfg`` (see the module docstring).

    Its steps are ``groups.reference.max_steps``, at most the run's own (``num_train`` examples
    turn ``trainer.epochs`` into steps).
    """
    from robustml.train.build import max_steps_for
    container: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    steps = min(int(container["groups"]["reference"]["max_steps"]), max_steps_for(cfg, num_train))
    container.update(
        name=f"{container['name']}_reference",
        loss={"partition": "group", "criterion": {"_target_": "robustml.losses.ERMLoss"}},
        sampler={"kind": "uniform", "partition": "group"}, augment=None, cleaning=None, groups=None)
    container["trainer"].update(max_steps=steps, epochs=None, select="last", resume=False)
    return OmegaConf.create(container)


def reference_key(ref_cfg: DictConfig) -> str:
    """Return the hash (16 hex digits) of what the reference stage trains: data, model and training."""
    container = OmegaConf.to_container(ref_cfg, resolve=True)
    trainer = {k: v for k, v in container["trainer"].items() if k not in _EXECUTION_KEYS}
    keyed = {key: container.get(key) for key in ("data", "model", "optimizer", "scheduler", "loss", "seed")}
    keyed["trainer"] = trainer
    return hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()[:16]


def trained_reference(cfg: DictConfig, num_train: int) -> tuple[Path, str]:
    """Train the ERM reference stage of ``cfg`` unless its cache holds it; return its folder and status.

    Returns ``(folder, "trained" | "reused")``; the folder holds ``config.yaml``,
    ``checkpoints/best.pt`` and ``reference.json`` (written last: its presence marks a finished stage).
    A stage that was stopped before ``reference.json`` resumes from its ``checkpoints/last.pt``.
    """
    from robustml.train.build import build
    ref_cfg = reference_config(cfg, num_train)
    folder = Path(cfg.groups.reference.cache_dir) / reference_key(ref_cfg)
    done = folder / "reference.json"
    if done.is_file():
        log.info("reference model: reusing %s", folder)
        return folder, "reused"
    if (folder / "checkpoints" / "last.pt").is_file():  # a stage that was stopped: continue it
        ref_cfg.trainer.resume = True
    write_text(folder / "config.yaml", OmegaConf.to_yaml(ref_cfg))
    trainer, _, _ = build(ref_cfg, folder)  # seeds with ref_cfg.seed
    result = trainer.fit()
    write_text(done, json.dumps({"steps": trainer.step, "selected_step": result["best_step"],
                                 "train_seconds": round(result["elapsed"], 3)}, indent=2) + "\n")
    return folder, "trained"


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
        if not (source / "config.yaml").is_file():
            raise FileNotFoundError(f"{source} is not a run folder: it has no config.yaml (expected "
                                    "config.yaml and checkpoints/best.pt, as robustml-train writes)")
        run_cfg = OmegaConf.load(source / "config.yaml")
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
