"""Group-balanced sampling and reweighting (Sagawa, Koh, Hashimoto, Liang, ICLR 2020).

Sagawa et al.'s reweighting baseline draws training examples with replacement with probability
proportional to ``N / n_g`` (``n_g`` the size of the example's group), so every group is equally
likely in expectation; the same weights, normalized, can instead multiply the per-example losses.
The ids may be any partition: groups, classes ("class-balanced"), or environments.

:class:`EpochBatchSampler` is the trainer's resumable order for its DataLoader path;
:func:`shard_bounds` splits each global batch among processes (``torchrun``).

JTT's upsampling (Liu et al., ICML 2021, Algorithm 1) lives here too: stage two trains on the
training set with every example of the error set ``E`` counted ``1 + lambda_up`` times. As in the
authors' code the upweighting is by duplication: one epoch is the training set followed by ``E``
repeated ``lambda_up`` times, shuffled (:class:`UpsampledOrder`); :func:`upweight_loss_weights`
gives the loss-weight variant. For a full-batch step the two are the same objective. With
mini-batches they differ: an epoch of the loss variant holds ``N`` examples instead of
``N + lambda_up * |E|`` (fewer steps per epoch), and the weighted loss is normalized by each
batch's weight sum, a ratio estimator of the duplicated objective rather than an unbiased one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Sampler

from robustml.validation import check_ids, check_int


def balanced_sample_weights(ids: torch.Tensor, *, num_parts: int) -> torch.Tensor:
    """Return per-example weights ``N / (G * n_g)`` that give every non-empty part equal mass.

    ``G`` is the number of non-empty parts. The weights have mean 1 (they sum to ``N``) and each
    non-empty part's weights sum to ``N / G``, so a trainer that multiplies per-example losses by
    them optimizes the part-balanced (group-balanced) average loss.

    Args:
        ids: Part (group, class or environment) id of each example, shape ``(N,)`` int64.
        num_parts: Number of parts; ids lie in ``[0, num_parts)``.

    Returns:
        Weights of shape ``(N,)`` in the default floating dtype, on ``ids``' device.
    """
    check_ids("ids", ids, check_int("num_parts", num_parts, minimum=1), nonempty=True)
    counts = torch.bincount(ids, minlength=num_parts).to(torch.float64)
    nonempty = int((counts > 0).sum())
    weights = ids.numel() / (nonempty * counts[ids])
    return weights.to(torch.get_default_dtype())


class GroupBalancedSampler(Sampler[int]):
    """Draw example indices with replacement so that every non-empty part is equally likely.

    Example ``i`` is drawn with probability proportional to ``N / n_{g_i}`` (Sagawa et al. 2020),
    i.e. each draw picks a non-empty part (group, class...) uniformly at random, then an example
    of it uniformly. Empty parts get no weight. Pass it as ``DataLoader(dataset, sampler=...)``.

    Args:
        ids: Part (group, class or environment) id of each example, shape ``(N,)`` int64.
        num_parts: Number of parts; ids lie in ``[0, num_parts)``.
        num_samples: Indices drawn per epoch (default ``N``).
        generator: Optional ``torch.Generator`` (CPU) for reproducible draws.
    """

    def __init__(self, ids: torch.Tensor, *, num_parts: int, num_samples: int | None = None,
                 generator: torch.Generator | None = None) -> None:
        self.weights = balanced_sample_weights(ids, num_parts=num_parts).to(device="cpu",
                                                                            dtype=torch.float64)
        n = self.weights.numel()
        if n > 2**24:
            raise ValueError(f"ids must hold at most 2**24 examples (torch.multinomial's limit), got {n}")
        self.num_samples = n if num_samples is None else check_int("num_samples", num_samples,
                                                                   minimum=1)
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        draws = torch.multinomial(self.weights, self.num_samples, replacement=True,
                                  generator=self.generator)
        yield from draws.tolist()

    def __len__(self) -> int:
        return self.num_samples


def epoch_seed(seed: int, epoch: int) -> int:
    """Return the seed of epoch ``epoch``'s example order: the package's one batch-order rule.

    The trainer's batches (in memory and through :class:`EpochBatchSampler`) and the cleaning
    networks' batches are drawn from ``torch.Generator().manual_seed(epoch_seed(seed, epoch))``
    through :func:`epoch_order`, so an order is a function of ``(seed, epoch)`` alone and a
    resumed run sees the batches an uninterrupted one would.
    """
    return seed * 1_000_003 + epoch


def epoch_order(epoch: int, *, seed: int, num_examples: int,
                draw: Callable[[torch.Generator], torch.Tensor] | None = None) -> torch.Tensor:
    """Return one epoch's example order, a function of ``(seed, epoch)`` only.

    Args:
        epoch: Epoch number (0-based).
        seed: Run seed.
        num_examples: ``N``; without ``draw`` the order is a permutation of ``range(N)``.
        draw: Optional ``draw(generator) -> indices`` (a balanced sampler's epoch) used instead
            of the permutation.

    Returns:
        Indices, shape ``(M,)`` int64 on the CPU.
    """
    generator = torch.Generator().manual_seed(epoch_seed(check_int("seed", seed),
                                                         check_int("epoch", epoch, minimum=0)))
    if draw is not None:
        return torch.as_tensor(draw(generator), dtype=torch.int64)
    return torch.randperm(check_int("num_examples", num_examples, minimum=0), generator=generator)


def shard_bounds(batch_size: int, *, rank: int, world_size: int) -> tuple[int, int]:
    """Return ``(start, stop)`` of process ``rank``'s contiguous share of a batch of ``batch_size``.

    The first ``batch_size % world_size`` processes get one example more (``numpy.array_split``'s
    rule), so the shares of all processes concatenate to the whole batch, in order.

    Raises:
        ValueError: When a process would get no example (``batch_size < world_size``): the
            distributed losses need at least one example per process and batch.
    """
    if not 0 <= int(rank) < int(world_size):
        raise ValueError(f"rank must lie in [0, world_size={world_size}), got {rank}")
    if int(batch_size) < int(world_size):
        raise ValueError(f"a batch of {batch_size} example(s) cannot be shared by {world_size} "
                         f"processes (each needs at least one): use a batch_size (and a "
                         f"training set) of at least {world_size} per batch, or fewer processes")
    base, extra = divmod(int(batch_size), int(world_size))
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yield batches of ``(index, seed)`` keys epoch after epoch, from a given position on.

    The order of epoch ``e`` is :func:`epoch_order` ``(e)`` and batch ``b`` holds its positions
    ``[b * batch_size, (b + 1) * batch_size)``. Each key carries a per-example seed (a function
    of run seed, epoch and position) from which an on-disk dataset draws its random transform,
    so the batches and their augmentations after a resume at ``(start_epoch, start_batch)`` are
    exactly those an uninterrupted run would have seen, for any number of DataLoader workers.
    The iterator is endless: the trainer stops after ``max_steps`` batches.

    The resume state is two integers that the trainer derives from the batches it consumed, so
    it needs no ``state_dict`` from the loader. torchdata's ``StatefulDataLoader`` (the
    well-kept alternative) snapshots the sampler and the workers instead; it is not used because
    the per-example seeds already make the remaining batches and their augmentations a function
    of the position alone, and because its last release (0.11.0, 2025) predates the torch this
    project pins, while it subclasses the DataLoader's internals.

    Args:
        num_examples: ``N``, the size of the training split.
        batch_size: Keys per batch.
        seed: Run seed.
        draw: Optional ``draw(generator) -> indices`` replacing the uniform permutation.
        start_epoch: Epoch to start in.
        start_batch: Batch of ``start_epoch`` to start at (the batches before it are skipped).
        rank: This process's rank; with ``world_size > 1`` each batch is the process's
            :func:`shard_bounds` slice of the global batch (every process draws the same global
            order, so the processes' batches together are the one-process batch).
        world_size: Number of processes sharing each batch.
    """

    def __init__(self, num_examples: int, *, batch_size: int, seed: int,
                 draw: Callable[[torch.Generator], torch.Tensor] | None = None,
                 start_epoch: int = 0, start_batch: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        self.num_examples = check_int("num_examples", num_examples, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.seed = check_int("seed", seed)
        self.draw = draw
        self.start_epoch, self.start_batch = int(start_epoch), int(start_batch)
        shard_bounds(self.batch_size, rank=rank, world_size=world_size)  # validates rank, world_size
        self.rank, self.world_size = int(rank), int(world_size)

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.num_examples // self.batch_size)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, offset = self.start_epoch, self.start_batch
        while True:
            order = epoch_order(epoch, seed=self.seed, num_examples=self.num_examples,
                                draw=self.draw).tolist()
            base = epoch_seed(self.seed, epoch) * 2**24
            for b in range(offset, self.batches_per_epoch):
                start = b * self.batch_size
                chunk = order[start:start + self.batch_size]
                if not chunk:
                    break
                low, high = shard_bounds(len(chunk), rank=self.rank, world_size=self.world_size)
                yield [(i, base + start + j) for j, i in enumerate(chunk)][low:high]
            epoch, offset = epoch + 1, 0


def check_lambda_up(lambda_up: int, *, name: str = "lambda_up") -> int:
    """Return ``lambda_up`` (extra copies of each error example) if it is an integer ``>= 0``;
    raise naming ``name`` otherwise."""
    return check_int(name, lambda_up, minimum=0)


def _check_errors(num_examples: int, errors: torch.Tensor) -> None:
    if errors.dtype != torch.int64 or errors.dim() != 1:
        raise ValueError(f"errors must be an int64 tensor of shape (|E|,), got dtype {errors.dtype} "
                         f"and shape {tuple(errors.shape)}")
    if errors.numel() and (int(errors.min()) < 0 or int(errors.max()) >= num_examples):
        raise ValueError(f"errors must index the {num_examples} training examples, got values in "
                         f"[{int(errors.min())}, {int(errors.max())}]")


def upsampled_indices(num_examples: int, errors: torch.Tensor, *, lambda_up: int) -> torch.Tensor:
    """Return one epoch of stage two: ``0..N-1`` followed by ``errors`` repeated ``lambda_up`` times.

    Args:
        num_examples: ``N``, the size of the training split.
        errors: The error set, shape ``(|E|,)`` int64.
        lambda_up: Extra copies of each error example (the authors' ``up_weight``).

    Returns:
        Indices, shape ``(N + lambda_up * |E|,)`` int64: index ``i`` occurs ``1 + lambda_up``
        times when ``i`` is in ``errors`` and once otherwise.
    """
    _check_errors(num_examples, errors)
    return torch.cat([torch.arange(num_examples), errors.cpu().repeat(check_lambda_up(lambda_up))])


class UpsampledOrder:
    """Draw one shuffled epoch of :func:`upsampled_indices` per call: ``order(generator) -> indices``.

    The trainer's ``sampler=`` contract; an epoch has :attr:`epoch_size` indices.
    """

    def __init__(self, num_examples: int, errors: torch.Tensor, *, lambda_up: int) -> None:
        self.indices = upsampled_indices(num_examples, errors, lambda_up=lambda_up)

    @property
    def epoch_size(self) -> int:
        return int(self.indices.numel())

    def __call__(self, generator: torch.Generator) -> torch.Tensor:
        return self.indices[torch.randperm(self.epoch_size, generator=generator)]


def upweight_loss_weights(num_examples: int, errors: torch.Tensor, *, lambda_up: int) -> torch.Tensor:
    """Return per-example loss weights ``1 + lambda_up * [i in E]``, shape ``(N,)`` float32."""
    _check_errors(num_examples, errors)
    weights = torch.ones(num_examples)
    weights[errors.cpu()] += check_lambda_up(lambda_up)
    return weights
