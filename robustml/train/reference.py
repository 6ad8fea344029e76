"""Reference models for two-stage methods: an ERM stage cached by config hash, or a trained run.

Group inference (:mod:`robustml.groups`) reads a reference model's predictions, logits or
features. ``groups.reference.checkpoint`` names a trained run (its folder, with ``config.yaml``
and ``checkpoints/best.pt``, or a checkpoint file whose model matches ``cfg.model``); otherwise
an ERM stage (:mod:`robustml.train.stages`) is trained first with the run's data, model,
optimizer and trainer settings for ``groups.reference.max_steps`` steps (at most the run's own),
the last step kept (no group labels). That stage is a folder under ``groups.reference.cache_dir``
named by the hash of what it trains, so a sweep over the second stage trains it once.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from robustml.data.contract import DataSplits
from robustml.losses import num_outputs_for
from robustml.train.checkpoint import load_checkpoint
from robustml.train.instantiate import build_from
from robustml.train.stages import erm_stage_config, stage_key, train_stage


def reference_config(cfg: DictConfig, num_train: int) -> DictConfig:
    """Return the config of the ERM reference stage of ``cfg`` (see the module docstring).

    Its steps are ``groups.reference.max_steps``, at most the run's own (``num_train`` examples
    turn ``trainer.epochs`` into steps).
    """
    from robustml.train.build import max_steps_for
    steps = min(int(cfg.groups.reference.max_steps), max_steps_for(cfg, num_train))
    return erm_stage_config(cfg, suffix="reference", max_steps=steps)


def trained_reference(cfg: DictConfig, num_train: int) -> tuple[Path, str]:
    """Train the ERM reference stage of ``cfg`` unless its cache holds it; return its folder and status.

    Returns ``(folder, "trained" | "reused")``; the folder is a stage folder of
    :func:`~robustml.train.stages.train_stage` (``config.yaml``, ``checkpoints/best.pt``, and
    ``stage.json`` once finished). A stage that was stopped resumes from its last checkpoint.
    """
    ref_cfg = reference_config(cfg, num_train)
    folder = Path(cfg.groups.reference.cache_dir) / stage_key(ref_cfg)
    return folder, train_stage(ref_cfg, folder)


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
