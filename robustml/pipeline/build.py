"""Build the pieces of one run from its config: device, data, model, loss, optimizer, scheduler,
sampling, augmentation and the :class:`~robustml.train.loop.Trainer` that holds them.

This is the one module that turns config nodes into training objects, in two steps that a run
separates with its stages (:func:`robustml.pipeline.run.run`): :func:`build_splits` (data, cleaned
when asked, on the device) and :func:`build_trainer` (model, loss, optimizer, sampling). It trains
no stage and seeds nothing: the run seeds (:func:`robustml.train.seed_everything`) before each step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import Sampler

from robustml.augment import CounterfactualAugment
from robustml.augment.counterfactual import dataset_rule
from robustml.data.checks import require_nonempty_groups
from robustml.data.contract import DataSplits, GroupedTensorDataset
from robustml.losses import CounterfactualConsistencyPenalty, GroupLoss, PenalizedLoss, num_outputs_for
from robustml.pipeline.instantiate import build_from, config_keys, runtime_kwargs
from robustml.train import distributed
from robustml.train.loop import Trainer
from robustml.train.settings import TrainSettings

if TYPE_CHECKING:
    from robustml.pipeline.clean import CleanedData

Sampling = tuple[Any, "torch.Tensor | None", int]
"""``(sampler, sample_weights, epoch_size)`` of a training split (see :func:`build_sampling`)."""


def resolve_device(name: str) -> torch.device:
    """Return the device for ``trainer.device``: ``auto`` picks CUDA when available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"trainer.device={name!r} but CUDA is not available; use 'cpu' or 'auto'")
    return device


def build_sampling(cfg: DictConfig, train: GroupedTensorDataset) -> tuple[Any, torch.Tensor | None]:
    """Return ``(sampler, sample_weights)`` for ``cfg.sampler``.

    ``sampler._target_`` names the piece: ``null`` (uniform shuffling), a ``torch`` ``Sampler``
    class built as ``cls(ids, num_parts=..., generator=...)`` that draws each epoch's indices
    (:class:`~robustml.data.samplers.GroupBalancedSampler`), or a function ``fn(ids, num_parts=...)``
    of per-example loss weights (:func:`~robustml.data.samplers.balanced_sample_weights`), over
    the ids of the training partition ``sampler.partition``.
    """
    if cfg.sampler.partition not in train.partitions:
        raise ValueError(f"sampler.partition must be one of {sorted(train.partitions)}, got "
                         f"{cfg.sampler.partition!r}")
    ids, num_parts = train.partition(cfg.sampler.partition)
    if cfg.sampler._target_ is None:
        return None, None
    piece = get_object(cfg.sampler._target_)
    names = train.partition_names(cfg.sampler.partition)
    require_nonempty_groups(ids, num_parts, names, what=f"sampler={cfg.sampler.name}")
    if isinstance(piece, type) and issubclass(piece, Sampler):
        ids = ids.cpu()
        return (lambda generator: torch.as_tensor(list(piece(ids, num_parts=num_parts,
                                                             generator=generator)))), None
    return None, piece(ids, num_parts=num_parts)


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


@dataclass
class RunData:
    """A run's data, ready for training.

    Attributes:
        splits: train, val and test on the run's device (in-memory splits; on-disk splits keep
            their metadata on the CPU and the trainer moves each batch).
        train_counts: Group counts of the training split before cleaning, which weight the
            train-mix average (the data's mix, not the cleaner's).
        cleaned: The cleaning stage's result (``None`` without ``cfg.cleaning``).
    """

    splits: DataSplits
    train_counts: torch.Tensor
    cleaned: CleanedData | None = None


def build_splits(cfg: DictConfig, run_dir: Path) -> RunData:
    """Return the run's data: its splits on its device, the training split cleaned when
    ``cfg.cleaning`` asks (the cleaning stage writes its files into ``run_dir``)."""
    device = resolve_device(cfg.trainer.device)
    splits: DataSplits = build_from(cfg, "data")
    train_counts = splits.train.group_counts()
    cleaned = None
    if cfg.cleaning is not None:
        if distributed.world_size() > 1:
            raise ValueError("cleaning=confident_learning cannot run under torchrun (its folds train "
                             "in one process): run it without torchrun, or drop cleaning")
        from robustml.pipeline.clean import clean_splits  # cleanlab and scikit-learn: only when asked
        cleaned = clean_splits(cfg, splits, run_dir)
        splits = DataSplits(cleaned.train, splits.val, splits.test, description=splits.description)
    splits = DataSplits(*(split.to(device) for _, split in splits.items()), description=splits.description)
    return RunData(splits, train_counts, cleaned)


def check_model_reads(model: torch.nn.Module, splits: DataSplits, cfg: DictConfig) -> None:
    """Raise ``ValueError`` when the model cannot read the splits' inputs.

    A text model (one with ``check_inputs(split)``: model=hf, model=sentence_transformer) checks
    each split's tokenizer; any other model on tokenized text (``info["tokenizer"]`` and inputs of
    shape ``(3, max_length)``; features extracted from text keep the info, not the shape) is
    refused, since it would read token ids as numbers.
    """
    check_inputs = getattr(model, "check_inputs", None)
    if check_inputs is not None:
        for _, split in splits.items():
            check_inputs(split)
    elif "tokenizer" in splits.train.info and len(splits.input_shape) == 2 and splits.input_shape[0] == 3:
        model_name = OmegaConf.select(cfg, "model._target_", default=type(model).__name__)
        raise ValueError(f"the data is tokenized text (data.tokenizer={splits.train.info['tokenizer']!r}), "
                         f"which {model_name} cannot read; expected a text model: model=hf, or "
                         "data=features with model@data.backbone=sentence_transformer and a linear "
                         "or MLP model on the features")


def build_trainer(cfg: DictConfig, data: RunData, run_dir: Path, *,
                  sampling: Sampling | None = None) -> Trainer:
    """Return the run's :class:`~robustml.train.loop.Trainer` over ``data`` (from :func:`build_splits`).

    Args:
        cfg: The run's config.
        data: The run's data, with inferred partitions attached when the run infers groups.
        run_dir: Where the trainer writes ``metrics.jsonl`` and ``checkpoints/``.
        sampling: ``(sampler, sample_weights, epoch_size)`` replacing ``cfg.sampler``'s (JTT's
            upsampled stage two).
    """
    splits, cleaned = data.splits, data.cleaned
    device = resolve_device(cfg.trainer.device)
    num_outputs = num_outputs_for(splits.num_classes)
    model = build_from(cfg, "model", input_shape=splits.input_shape, num_outputs=num_outputs).to(device)
    check_model_reads(model, splits, cfg)
    ids, num_parts = splits.train.partition(cfg.loss.partition)
    available = {"num_groups": num_parts, "group_counts": torch.bincount(ids, minlength=num_parts),
                 "sync_processes": distributed.world_size() > 1}
    criterion = build_from(cfg, "loss.criterion", **runtime_kwargs(cfg.loss.criterion, available))
    criterion = criterion.to(device)
    optimizer = build_from(cfg, "optimizer")(params=model.parameters())
    if sampling is None:
        sampling = (*build_sampling(cfg, splits.train), len(splits.train))
    sampler, sample_weights, epoch_size = sampling
    with config_keys():  # the engine names its arguments; the run's error names config keys
        settings = TrainSettings(
            max_steps=max_steps_for(cfg, epoch_size), batch_size=cfg.trainer.batch_size,
            eval_every=cfg.trainer.eval_every, eval_train=cfg.trainer.eval_train,
            chunk_size=cfg.trainer.chunk_size, accumulate=cfg.trainer.accumulate,
            compile=cfg.trainer.compile, precision=cfg.trainer.precision,
            select=cfg.trainer.select, l2_weight=cfg.trainer.l2_weight,
            max_grad_norm=cfg.trainer.max_grad_norm,
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
    with config_keys():
        return Trainer(model, criterion, optimizer, splits.train, splits.val, settings, run_dir=run_dir,
                       partition=cfg.loss.partition, scheduler=scheduler, augment=augment,
                       sampler=sampler, sample_weights=sample_weights, train_counts=data.train_counts,
                       epoch_size=epoch_size, config=OmegaConf.to_container(cfg, resolve=True))
