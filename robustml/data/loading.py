"""DataLoader plumbing for on-disk datasets: settings, worker seeding, device transfer.

Training batches come from ``DataLoader(dataset, batch_sampler=EpochBatchSampler(...))`` (see
:mod:`robustml.data.samplers`); evaluation streams the split in order with the evaluation
transform. Worker seeding follows PyTorch's reproducibility notes: the loader's ``generator``
fixes each worker's torch seed, and :func:`seed_worker` derives Python's and numpy's from it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from robustml.data.contract import Batch, GroupedDataset
from robustml.validation import check_bool, check_int


@dataclass(frozen=True)
class LoaderSettings:
    """DataLoader options (``trainer.num_workers`` etc. in the configs).

    Args:
        num_workers: Worker processes loading and transforming examples (0: in the main process).
        pin_memory: Page-locked host batches, for faster copies to a CUDA device.
        persistent_workers: Keep the workers of a loader alive between its passes (evaluation
            loaders are reused at every evaluation); needs ``num_workers > 0``.
        eval_batch_size: Examples per evaluation (and feature-extraction) batch.
    """

    num_workers: int = 0
    pin_memory: bool = False
    persistent_workers: bool = False
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        check_int("num_workers", self.num_workers, minimum=0)
        check_int("eval_batch_size", self.eval_batch_size, minimum=1)
        check_bool("pin_memory", self.pin_memory)
        check_bool("persistent_workers", self.persistent_workers)
        if self.persistent_workers and int(self.num_workers) == 0:
            raise ValueError("persistent_workers=True needs num_workers > 0, got 0")


def seed_worker(worker_id: int) -> None:
    """Seed Python's and numpy's generators in a DataLoader worker from its torch seed."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def _loader(dataset: GroupedDataset, settings: LoaderSettings, seed: int, **kwargs) -> DataLoader:
    return DataLoader(dataset, num_workers=settings.num_workers, pin_memory=settings.pin_memory,
                      persistent_workers=settings.persistent_workers, worker_init_fn=seed_worker,
                      generator=torch.Generator().manual_seed(seed), **kwargs)


def train_loader(dataset: GroupedDataset, batch_sampler: Sampler, settings: LoaderSettings, *,
                 seed: int) -> DataLoader:
    """Return the training DataLoader over ``batch_sampler``'s batches of keys."""
    return _loader(dataset, settings, seed, batch_sampler=batch_sampler)


def eval_loader(dataset: GroupedDataset, settings: LoaderSettings) -> DataLoader:
    """Return a DataLoader over ``dataset`` in order, with its evaluation transform when it has one."""
    if hasattr(dataset, "for_eval"):
        dataset = dataset.for_eval()
    return _loader(dataset, settings, 0, batch_size=settings.eval_batch_size, shuffle=False)


def to_device(batch: Batch, device: torch.device, *, non_blocking: bool = False) -> Batch:
    """Return ``batch`` with every tensor on ``device``."""
    return {key: value.to(device, non_blocking=non_blocking) for key, value in batch.items()}


def iter_inputs(loader: DataLoader, device: torch.device) -> Iterator[Batch]:
    """Yield the loader's batches on ``device`` (non-blocking copies from pinned memory)."""
    for batch in loader:
        yield to_device(batch, device, non_blocking=loader.pin_memory)
