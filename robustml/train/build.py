"""Build the pieces of one run from its config: device, seeds, data, model, loss, optimizer,
scheduler, sampling, augmentation and the :class:`~robustml.train.loop.Trainer` that holds them.

This is the one module that turns config nodes into objects for training; the orchestration of a
run (train, select, evaluate, report) is :func:`robustml.train.run.run`.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from robustml.augment import CounterfactualAugment
from robustml.augment.counterfactual import dataset_rule
from robustml.data.checks import require_nonempty_groups
from robustml.data.contract import DataSplits, GroupedTensorDataset
from robustml.data.samplers import GroupBalancedSampler, balanced_sample_weights
from robustml.losses import CounterfactualConsistencyPenalty, GroupLoss, PenalizedLoss, num_outputs_for
from robustml.train import distributed
from robustml.train.inferred import attach_inferred_groups
from robustml.train.instantiate import build_from, runtime_kwargs
from robustml.train.loop import Trainer, TrainSettings

if TYPE_CHECKING:
    from robustml.train.clean import CleanedData
    from robustml.train.jtt import StageOne


def seed_everything(seed: int, device: torch.device | str = "cpu") -> None:
    """Seed Python, numpy and torch; on CUDA, also ask torch for deterministic algorithms.

    The CPU kernels robustml uses are deterministic for a given thread count (exact resume is
    tested on them); the switch matters for CUDA's atomics-based kernels. It is left off on the
    CPU because it imports torch's compiler stack (``torch._inductor``), about 2 s per run.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.device(device).type == "cuda":
        torch.use_deterministic_algorithms(True, warn_only=True)


def resolve_device(name: str) -> torch.device:
    """Return the device for ``trainer.device``: ``auto`` picks CUDA when available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"trainer.device={name!r} but CUDA is not available; use 'cpu' or 'auto'")
    return device


def build_sampling(cfg: DictConfig, train: GroupedTensorDataset) -> tuple[Any, torch.Tensor | None]:
    """Return ``(sampler, sample_weights)`` for ``cfg.sampler`` (uniform, group_balanced, reweight)."""
    partitions = {"group": (train.group, train.num_groups), "class": (train.y, train.num_classes)}
    if train.inferred is not None:
        partitions["inferred"] = train.partition("inferred")
    if cfg.sampler.partition not in partitions:
        raise ValueError(f"sampler.partition must be one of {sorted(partitions)}, got "
                         f"{cfg.sampler.partition!r}")
    ids, num_parts = partitions[cfg.sampler.partition]
    if cfg.sampler.kind == "uniform":
        return None, None
    names = train.group_names if cfg.sampler.partition == "group" else train.class_names
    require_nonempty_groups(ids, num_parts, names, what=f"sampler={cfg.sampler.kind}")
    if cfg.sampler.kind == "group_balanced":
        ids = ids.cpu()
        return (lambda generator: torch.as_tensor(list(GroupBalancedSampler(ids, num_parts,
                                                                            generator=generator)))), None
    if cfg.sampler.kind == "reweight":
        return None, balanced_sample_weights(ids, num_parts)
    raise ValueError(f"sampler.kind must be one of ['group_balanced', 'reweight', 'uniform'], got "
                     f"{cfg.sampler.kind!r}")


def build_augment(cfg: DictConfig, train: GroupedTensorDataset,
                  criterion: GroupLoss) -> tuple[CounterfactualAugment | None, GroupLoss]:
    """Return the counterfactual batch transform for ``cfg.augment`` and the (possibly) wrapped loss.

    A positive ``augment.consistency_weight`` adds the counterfactual logit-pairing penalty to the
    loss; it needs ``augment.mode=paired`` (originals followed by their counterfactuals).
    """
    if cfg.augment is None:
        return None, criterion
    generator = torch.Generator(device=train.device).manual_seed(cfg.seed)
    augment = CounterfactualAugment(dataset_rule(train), num_attrs=train.num_attrs,
                                    mode=cfg.augment.mode, p=cfg.augment.p, generator=generator)
    weight = float(cfg.augment.consistency_weight)
    if weight > 0:
        if cfg.augment.mode != "paired":
            raise ValueError(f"augment.consistency_weight={weight} needs augment.mode=paired, got "
                             f"{cfg.augment.mode!r}")
        consistency = CounterfactualConsistencyPenalty(criterion.num_groups).to(train.device)
        criterion = PenalizedLoss(criterion.num_groups, criterion, {"consistency": consistency},
                                  weights={"consistency": weight}, rescale=False)
    return augment, criterion


def max_steps_for(cfg: DictConfig, num_train: int) -> int:
    if cfg.trainer.epochs is None:
        return int(cfg.trainer.max_steps)
    batch_size = cfg.trainer.batch_size or num_train
    return int(cfg.trainer.epochs) * math.ceil(num_train / batch_size)


def build(cfg: DictConfig, run_dir: Path, *,
          jtt: StageOne | None = None) -> tuple[Trainer, DataSplits, CleanedData | None]:
    """Instantiate data (cleaned if ``cfg.cleaning``), model, loss, optimizer and scheduler.

    ``jtt``: JTT's stage one, whose error set stage two upweights (sampler or loss weights).

    Python, numpy and torch are seeded with ``cfg.seed`` here, and again just before the model is
    built: the model's initial weights and every later draw depend on the seed only, not on
    whether this process trained an earlier stage (JTT's stage one, cleaning's folds, a reference
    model for inferred groups) or reused it from its cache.
    """
    device = resolve_device(cfg.trainer.device)
    seed_everything(cfg.seed, device)
    splits: DataSplits = build_from(cfg, "data")
    # The train-mix average weights groups by the training data's mix, also when cleaning prunes
    # or relabels examples (the report says so).
    train_counts = splits.train.group_counts()
    cleaned = None
    if cfg.cleaning is not None:
        if distributed.world_size() > 1:
            raise ValueError("cleaning=confident_learning cannot run under torchrun (its folds train "
                             "in one process): run it without torchrun, or drop cleaning")
        from robustml.train.clean import clean_splits  # cleanlab and scikit-learn: only when asked
        cleaned = clean_splits(cfg, splits, run_dir)
        splits = DataSplits(cleaned.train, splits.val, splits.test, description=splits.description)
    # In-memory splits move to the device; on-disk splits keep their metadata on the CPU and
    # the trainer moves each DataLoader batch.
    splits = DataSplits(*(split.to(device) for _, split in splits.items()),
                        description=splits.description)
    attach_inferred_groups(cfg, splits)  # cfg.groups: partitions inferred from a reference model
    seed_everything(cfg.seed, device)  # the same draws from here whether stages ran or were reused
    num_outputs = num_outputs_for(splits.num_classes)
    model = build_from(cfg, "model", input_shape=splits.input_shape, num_outputs=num_outputs).to(device)
    ids, num_parts = splits.train.partition(cfg.loss.partition)
    available = {"num_groups": num_parts, "group_counts": torch.bincount(ids, minlength=num_parts),
                 "sync_processes": distributed.world_size() > 1}
    criterion = build_from(cfg, "loss.criterion", **runtime_kwargs(cfg.loss.criterion, available))
    criterion = criterion.to(device)
    optimizer = build_from(cfg, "optimizer")(params=model.parameters())
    sampler, sample_weights = build_sampling(cfg, splits.train)
    epoch_size = len(splits.train)
    if jtt is not None:
        sampler, sample_weights, epoch_size = jtt.sampling(cfg, splits.train)
    settings = TrainSettings(
        max_steps=max_steps_for(cfg, epoch_size), batch_size=cfg.trainer.batch_size,
        eval_every=cfg.trainer.eval_every, eval_train=cfg.trainer.eval_train,
        chunk_size=cfg.trainer.chunk_size,
        precision=cfg.trainer.precision, select=cfg.trainer.select, l2_weight=cfg.trainer.l2_weight,
        reset_optimizer_at_anneal=cfg.trainer.reset_optimizer_at_anneal, seed=cfg.seed,
        resume=cfg.trainer.resume, resume_force=cfg.trainer.resume_force,
        progress=cfg.trainer.progress,
        num_workers=cfg.trainer.num_workers, pin_memory=cfg.trainer.pin_memory,
        persistent_workers=cfg.trainer.persistent_workers,
        eval_batch_size=cfg.trainer.eval_batch_size, max_loss=cfg.trainer.max_loss)
    scheduler = None
    if cfg.scheduler is not None:
        scheduler = build_from(cfg, "scheduler")(optimizer, total_steps=settings.max_steps)
    if cleaned is not None and cleaned.weights is not None:
        weights = cleaned.weights.to(device)
        sample_weights = weights if sample_weights is None else sample_weights * weights
    augment, criterion = build_augment(cfg, splits.train, criterion)
    trainer = Trainer(model, criterion, optimizer, splits.train, splits.val, settings, run_dir=run_dir,
                      partition=cfg.loss.partition, scheduler=scheduler, augment=augment,
                      sampler=sampler, sample_weights=sample_weights, train_counts=train_counts,
                      epoch_size=epoch_size,
                      config=OmegaConf.to_container(cfg, resolve=True))
    return trainer, splits, cleaned
