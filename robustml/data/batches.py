"""The training batches of a run: one iterator whose position ``(epoch, batch)`` is explicit state.

Which examples a batch holds depends on the seed and the epoch only (:func:`epoch_order`), so the
position alone restores the stream: a checkpoint saves :attr:`TrainBatches.position` and a resumed
run :meth:`~TrainBatches.seek`\\ s to it. In-memory splits are indexed directly on their device (or
given whole, the full-batch protocol); on-disk splits come through a DataLoader over
:class:`EpochBatchSampler` keys, whose per-example seeds make random transforms reproducible too.
The position advances when :func:`next` returns a batch, not when DataLoader workers prefetch one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from robustml.data.contract import Batch, GroupedDataset
from robustml.data.loading import LoaderSettings, iter_inputs, train_loader
from robustml.data.samplers import EpochBatchSampler, epoch_order, shard_bounds


class TrainBatches:
    """Endless training batches from :attr:`position` on.

    Args:
        train: The training split (in memory: tensors on the training device).
        batch_size: Examples per global batch; ``None``: the full split every step.
        seed: Seed of the data order.
        device: Where on-disk batches are moved.
        sampler: Optional ``sampler(generator) -> indices`` drawing one epoch of indices.
        sample_weights: Optional per-example loss weights, shape ``(len(train),)``, added to each
            batch as ``batch["weight"]``.
        epoch_size: Indices per epoch that ``sampler`` draws (default ``len(train)``).
        loader: DataLoader options of on-disk splits.
        rank: This process's rank; each process takes its contiguous share of every global batch.
        world_size: Number of processes.
    """

    def __init__(self, train: GroupedDataset, *, batch_size: int | None, seed: int,
                 device: torch.device, sampler: Callable[[torch.Generator], torch.Tensor] | None = None,
                 sample_weights: torch.Tensor | None = None, epoch_size: int | None = None,
                 loader: LoaderSettings | None = None, rank: int = 0, world_size: int = 1) -> None:
        self.train, self.batch_size, self.seed, self.device = train, batch_size, seed, device
        self.sampler, self.sample_weights = sampler, sample_weights
        self.epoch_size = len(train) if epoch_size is None else epoch_size
        self.loader = LoaderSettings() if loader is None else loader
        self.rank, self.world_size = rank, world_size
        self.position: tuple[int, int] = (0, 0)
        self._stream: Iterator[Batch] | None = None

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.epoch_size / (self.batch_size or len(self.train)))

    def seek(self, position: tuple[int, int]) -> None:
        """Make the next batch the one at ``position`` = ``(epoch, batch)``."""
        self.position, self._stream = (int(position[0]), int(position[1])), None

    def __iter__(self) -> TrainBatches:
        return self

    def __next__(self) -> Batch:
        if self._stream is None:
            epoch, offset = self.position
            self._stream = (self._index_batches(epoch, offset) if self.train.in_memory
                            else self._loader_batches(epoch, offset))
        batch = next(self._stream)
        epoch, offset = self.position[0], self.position[1] + 1
        self.position = (epoch + 1, 0) if offset == self.steps_per_epoch else (epoch, offset)
        return batch

    def _index_batches(self, epoch: int, offset: int) -> Iterator[Batch]:
        """In-memory batches: index the split's tensors on their device (full batch when unbatched)."""
        n, batch_size = len(self.train), self.batch_size or len(self.train)
        while True:
            if self.sampler is None and batch_size >= n:
                # Full batch: the whole split in order (under torchrun, each process's share).
                order = None if self.world_size == 1 else torch.arange(n, device=self.device)
            else:
                order = epoch_order(epoch, seed=self.seed, num_examples=n, draw=self.sampler).to(self.device)
            for b in range(offset, self.steps_per_epoch):
                if order is None:
                    batch, weight = self.train.full_batch(), self.sample_weights
                else:
                    chunk = order[b * batch_size:(b + 1) * batch_size]
                    low, high = shard_bounds(chunk.numel(), rank=self.rank, world_size=self.world_size)
                    idx = chunk[low:high]
                    batch = self.train.get_batch(idx)
                    weight = None if self.sample_weights is None else self.sample_weights[idx]
                if weight is not None:
                    batch["weight"] = weight
                yield batch
            epoch, offset = epoch + 1, 0

    def _loader_batches(self, epoch: int, offset: int) -> Iterator[Batch]:
        """On-disk batches: one endless DataLoader from ``(epoch, offset)``, moved to the device."""
        sampler = EpochBatchSampler(self.epoch_size, batch_size=self.batch_size, seed=self.seed,
                                    draw=self.sampler, start_epoch=epoch, start_batch=offset,
                                    rank=self.rank, world_size=self.world_size)
        for batch in iter_inputs(train_loader(self.train, sampler, self.loader, seed=self.seed), self.device):
            if self.sample_weights is not None:
                batch["weight"] = self.sample_weights[batch["index"]]
            yield batch
