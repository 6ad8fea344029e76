"""Several processes on one training run: ``torchrun --nproc_per_node=N --no-python robustml-train``.

PyTorch's own stack, nothing of robustml's making: the process group comes from torchrun's
environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``), the model trains inside :class:`~torch.nn.parallel.DistributedDataParallel`,
and the backend is gloo for CPU tensors and NCCL for CUDA ones (``"cpu:gloo,cuda:nccl"`` when
CUDA is available, so ``trainer.device=cpu`` works on a GPU machine too).

What makes N processes train the same model as one process with the same global batch:

- every process draws the same global order (a function of seed and epoch) and takes its
  contiguous share of each global batch (:func:`robustml.data.samplers.shard_bounds`), so the
  processes' batches together are the one-process batch, for any sampler (uniform, group-balanced,
  or one that duplicates examples);
- the loss of each process is scaled so that the gradient DDP averages is the gradient of the
  global-batch loss (:func:`global_count`); Group DRO, built with ``sync_processes=True``,
  all-reduces its group statistics itself;
- with ``trainer.accumulate=K`` each process splits its share into K micro-batches, and all but
  the last run inside DDP's ``no_sync()`` (:func:`no_sync`): one all-reduce per step;
- evaluation splits are sharded the same way and the shares' predictions gathered
  (:func:`evaluate_sharded`), so every process holds the same metrics and selects the same step;
- rank 0 is the only process that writes files, into the run folder it broadcasts
  (:func:`agree_on_run_dir`).

Losses whose value is a non-linear function of whole-batch statistics other than Group DRO's
(IRM and V-REx penalties, the consistency penalty) are refused by :func:`check_distributable`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from robustml.data.contract import GroupedDataset
from robustml.data.loading import LoaderSettings, eval_loader
from robustml.data.samplers import shard_bounds
from robustml.losses import ERMLoss, GroupDROLoss
from robustml.models.forward import forward_in_chunks, model_device
from robustml.train.evaluate import evaluate, metrics_of_predictions, predict_dataset

DISTRIBUTABLE_LOSSES = (ERMLoss, GroupDROLoss)


def is_distributed() -> bool:
    """Return whether a ``torch.distributed`` process group is initialized."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """Return this process's rank (0 outside a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Return the number of processes (1 outside a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Return whether this process writes the run's files (rank 0, or the only process)."""
    return rank() == 0


def barrier() -> None:
    """Wait for every process (no-op outside a process group)."""
    if is_distributed():
        dist.barrier()


def launched_by_torchrun() -> bool:
    """Return whether torchrun's environment variables describe a process group to join."""
    return all(name in os.environ for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def init_from_env() -> bool:
    """Join the process group described by torchrun's environment; return whether one is joined.

    With CUDA, each process uses GPU ``LOCAL_RANK``; more processes per node than GPUs is refused.
    """
    if is_distributed():
        return True
    if not launched_by_torchrun():
        return False
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"torchrun started process LOCAL_RANK={local_rank} but this node has "
                             f"{torch.cuda.device_count()} GPU(s): use --nproc_per_node at most "
                             f"{torch.cuda.device_count()}, one process per GPU")
        torch.cuda.set_device(local_rank)
        dist.init_process_group("cpu:gloo,cuda:nccl")
    else:
        dist.init_process_group("gloo")
    return True


def shutdown() -> None:
    """Leave the process group (no-op outside one)."""
    if is_distributed():
        dist.destroy_process_group()


def launch_arguments(argv: list[str]) -> list[str]:
    """Return the Hydra arguments of this process under torchrun (``argv`` unchanged outside it).

    A multirun (``-m``) under torchrun is refused: run the sweep with a launcher and train each
    job on its own processes instead. Processes other than rank 0 get ``hydra.output_subdir=null``
    and ``hydra.run.dir=.`` (Hydra writes nothing for them; the run folder is rank 0's, see
    :func:`agree_on_run_dir`), unless the command names ``hydra.run.dir`` itself.
    """
    if not is_distributed():
        return argv
    if any(a in ("-m", "--multirun") for a in argv):
        raise ValueError("a multirun (-m) cannot run under torchrun: sweep without torchrun "
                         "(hydra/launcher=joblib or submitit_slurm), one process per run")
    if is_main():
        return argv
    extra = ["hydra.output_subdir=null"]
    if not any(a.startswith("hydra.run.dir=") for a in argv):
        extra.append("hydra.run.dir=.")
    return [*argv, *extra]


def gather(value: Any) -> list[Any]:
    """Return every process's ``value`` (any picklable object) in rank order; ``[value]`` alone."""
    if not is_distributed():
        return [value]
    values: list[Any] = [None] * world_size()
    dist.all_gather_object(values, value)
    return values


def agree_on_run_dir(run_dir: Path) -> Path:
    """Return rank 0's ``run_dir`` on every process (``run_dir`` itself outside a process group)."""
    if not is_distributed():
        return run_dir
    shared = [str(run_dir)]
    dist.broadcast_object_list(shared, src=0)
    return Path(shared[0])


def agree(flag: bool) -> bool:
    """Return rank 0's ``flag`` on every process (``flag`` itself outside a process group), so that
    every process takes the same branch, raising included."""
    if not is_distributed():
        return flag
    shared = [bool(flag)]
    dist.broadcast_object_list(shared, src=0)
    return shared[0]


def check_distributable(criterion: nn.Module) -> None:
    """Raise ``ValueError`` when ``criterion`` cannot be trained exactly by several processes."""
    if world_size() == 1:
        return
    if isinstance(criterion, GroupDROLoss) and not criterion.sync_processes:
        raise ValueError(f"GroupDROLoss trained by {world_size()} processes needs "
                         f"sync_processes=True: without it every process updates its own group "
                         f"weights from its share of the batch")
    if type(criterion) in DISTRIBUTABLE_LOSSES:
        return
    names = ", ".join(loss.__name__ for loss in DISTRIBUTABLE_LOSSES)
    raise ValueError(
        f"loss {type(criterion).__name__} cannot be trained by {world_size()} processes: its value "
        f"is a non-linear function of whole-batch statistics that a per-process batch does not "
        f"have (IRM/V-REx penalties per environment, paired consistency); distributed losses: "
        f"{names}; run it in one process")


class _Forward(nn.Module):
    """``model(x)`` in row chunks of ``chunk_size``: one DDP forward for all of a batch's chunks."""

    def __init__(self, model: nn.Module, chunk_size: int | None) -> None:
        super().__init__()
        self.model, self.chunk_size = model, chunk_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return forward_in_chunks(self.model, x, self.chunk_size)


def training_forward(model: nn.Module, chunk_size: int | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return the forward used for training steps: through DDP when distributed, else direct.

    The model itself stays unwrapped (its ``state_dict`` keys do not change); DDP holds it and
    averages its gradients over processes in ``backward``.
    """
    if not is_distributed():
        return lambda x: forward_in_chunks(model, x, chunk_size)
    device = model_device(model)
    ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else None
    return DistributedDataParallel(_Forward(model, chunk_size), device_ids=ids)


def local_share(indices: torch.Tensor) -> torch.Tensor:
    """Return this process's contiguous share of a global batch of indices (all of it alone)."""
    low, high = shard_bounds(indices.numel(), rank=rank(), world_size=world_size())
    return indices[low:high]


def global_count(local: torch.Tensor) -> torch.Tensor:
    """Return the sum of ``local`` (a float64 scalar: examples or weights) over processes.

    A process's ERM loss is its (weighted) mean over its ``m_local`` examples (or weight sum);
    scaled by ``world_size * m_local / m_global`` the average over processes, which DDP takes of
    the gradients, is the mean over the global batch (see :mod:`robustml.train.step`). Group DRO
    already returns its scaled local share (see :class:`~robustml.losses.GroupDROLoss`).
    """
    if world_size() == 1:
        return local
    total = local.detach().clone()
    dist.all_reduce(total)
    return total


def no_sync(forward: Callable[[torch.Tensor], torch.Tensor]):
    """Return the context of a micro-batch whose gradients are not all-reduced yet (DDP's
    ``no_sync()``; nothing outside a process group)."""
    return forward.no_sync() if isinstance(forward, DistributedDataParallel) else nullcontext()


def mean_over_processes(value: float, device: torch.device) -> float:
    """Return the mean of ``value`` over processes: the global loss when each holds its share."""
    if world_size() == 1:
        return value
    total = torch.tensor(value, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return float(total) / world_size()


@torch.no_grad()
def evaluate_sharded(model: nn.Module, dataset: GroupedDataset, *, prefix: str,
                     train_counts: torch.Tensor | None, precision: str,
                     settings: LoaderSettings) -> dict[str, float]:
    """Return ``{prefix}/{metric}`` of :func:`~robustml.train.evaluate.evaluate`, over processes.

    Each process predicts its contiguous share of ``dataset``; the shares are gathered on every
    process, which computes the metrics of the whole split from them (the same function as one
    process: group, worst-class and inferred-group accuracies).
    """
    ids = local_share(torch.arange(len(dataset)))
    share = dataset.subset(ids.to(dataset.x.device) if dataset.in_memory else ids)
    loader = None if share.in_memory else eval_loader(share, settings)
    preds = predict_dataset(model, share, precision=precision, loader=loader)
    shares = gather(preds.cpu())  # contiguous shares, in rank order: the whole split
    return metrics_of_predictions(torch.cat(shares), dataset, prefix=prefix, train_counts=train_counts)


def evaluate_split(model: nn.Module, dataset: GroupedDataset, *, prefix: str,
                   train_counts: torch.Tensor | None, precision: str, settings: LoaderSettings,
                   loader: DataLoader | None = None) -> dict[str, float]:
    """Return :func:`~robustml.train.evaluate.evaluate`'s metrics; sharded over processes if any."""
    if is_distributed():
        return evaluate_sharded(model, dataset, prefix=prefix, train_counts=train_counts,
                                precision=precision, settings=settings)
    return evaluate(model, dataset, prefix=prefix, train_counts=train_counts, precision=precision,
                    loader=loader)
