"""Evaluation of a model on a grouped split: per-group and worst-group accuracy."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

from robustml.data.contract import Batch, GroupedDataset
from robustml.data.loading import LoaderSettings, eval_loader, iter_inputs
from robustml.groups.partition import selection_metrics
from robustml.losses.functional import predict
from robustml.metrics import group_accuracy

PRECISIONS = ("fp32", "bf16")


#: CPU flags (``/proc/cpuinfo``) of the instructions that run bf16 matrix products natively.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


class SlowPrecisionWarning(UserWarning):
    """Warned once per process when bf16 runs on a CPU that has no bf16 instructions."""


def cpu_bf16_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> dict[str, bool] | None:
    """Return ``{flag: present}`` for :data:`BF16_CPU_FLAGS`, or ``None`` where it is unknown.

    Read from the first ``flags`` line of ``cpuinfo`` (Linux; every core lists the same flags).
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    line = next((line for line in text.splitlines() if line.startswith("flags")), None)
    if line is None:
        return None
    flags = set(line.split(":", 1)[1].split())
    return {flag: flag in flags for flag in BF16_CPU_FLAGS}


@functools.cache
def warn_if_slow_bf16() -> None:
    """Warn, once per process, that bf16 on this CPU is far slower than fp32, and why."""
    flags = cpu_bf16_flags()
    if flags is None or any(flags.values()):
        return
    warnings.warn(
        "trainer.precision=bf16 on a CPU without native bf16 instructions (neither avx512_bf16 "
        "nor amx_bf16 in /proc/cpuinfo): oneDNN emulates every bf16 matrix product, so a bf16 "
        "step is far slower than fp32 (about 10x on an AVX2 CPU, "
        "experiments/benchmarks/README.md). Use trainer.precision=fp32 on this machine; bf16 pays "
        "off on a GPU or a CPU with AVX512-BF16 or AMX.", SlowPrecisionWarning, stacklevel=3)


def autocast(device: torch.device, precision: str):
    """Return the autocast context for ``precision`` (``"fp32"``: none, ``"bf16"``: bfloat16).

    bf16 on a CPU without bf16 instructions warns once (:class:`SlowPrecisionWarning`).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"trainer.precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return nullcontext()
    if device.type == "cpu":
        warn_if_slow_bf16()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


# Rows per forward block of in-memory prediction. On a CPU, blocks whose activations fit in the
# core's cache run the matrix products faster: predicting 60,000 Colored MNIST-shaped inputs with
# one thread took 0.66x the time in blocks of 512 rows as in blocks of 8,192 with the IRM paper's
# MLP (392-390-390-1) and 0.84x with colored_mnist_erm's (392-256-256-1): medians of 5 interleaved
# rounds, AMD EPYC, AVX2, no AVX-512.
PREDICT_ROWS = {"cpu": 512, "accelerator": 8192}


def forward_in_chunks(model: nn.Module, x: torch.Tensor, chunk_size: int | None) -> torch.Tensor:
    """Return ``model(x)`` computed over row chunks of ``chunk_size`` (one call when ``None``).

    For models without batch-dependent layers the result and its gradient are those of a single
    call; smaller row blocks run at a higher matrix-multiply rate on CPU than one huge block.
    """
    if chunk_size is None or x.shape[0] <= chunk_size:
        return model(x)
    return torch.cat([model(chunk) for chunk in x.split(chunk_size)])


def model_device(model: nn.Module) -> torch.device:
    """Return the device of the model's first parameter (CPU for a model without parameters)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


@torch.no_grad()
def predict_dataset(model: nn.Module, dataset: GroupedDataset, *, precision: str = "fp32",
                    batch_size: int | None = None, loader: Iterable[Batch] | None = None) -> torch.Tensor:
    """Return predicted class ids for every example of ``dataset``, shape ``(N,)``, in order.

    An in-memory dataset is predicted from ``dataset.x`` in row blocks of ``batch_size`` on its
    device (default :data:`PREDICT_ROWS`: cache-sized blocks on a CPU, large ones on a GPU). An on-disk dataset is streamed in batches through ``loader`` (default:
    :func:`~robustml.data.loading.eval_loader` with default settings, evaluation transform) and
    each batch is moved to the model's device; no more than one batch of inputs is in memory.
    """
    was_training = model.training
    model.eval()
    if dataset.in_memory:
        with autocast(dataset.x.device, precision):
            rows = batch_size or PREDICT_ROWS["cpu" if dataset.x.device.type == "cpu" else "accelerator"]
            preds = torch.cat([predict(model(x)) for x in dataset.x.split(rows)])
    else:
        device = model_device(model)
        loader = eval_loader(dataset, LoaderSettings()) if loader is None else loader
        chunks = []
        with autocast(device, precision):
            for batch in iter_inputs(loader, device):
                chunks.append(predict(model(batch["x"])))
        preds = torch.cat(chunks) if chunks else torch.zeros(0, dtype=torch.int64, device=device)
        if preds.shape[0] != len(dataset):
            raise ValueError(f"loader yielded {preds.shape[0]} examples for dataset "
                             f"{dataset.name!r} of {len(dataset)}: it must stream every example once, "
                             "in order")
    model.train(was_training)
    return preds


def evaluate(model: nn.Module, dataset: GroupedDataset, *, prefix: str,
             train_counts: torch.Tensor | None = None, precision: str = "fp32",
             loader: Iterable[Batch] | None = None) -> dict[str, float]:
    """Return ``{prefix}/{metric}`` accuracies of ``model`` on ``dataset`` (see robustml.metrics).

    Labels and groups come from the dataset's metadata; only the predictions touch inputs
    (streamed in batches for on-disk data, see :func:`predict_dataset`).
    """
    preds = predict_dataset(model, dataset, precision=precision, loader=loader)
    return metrics_of_predictions(preds, dataset, prefix=prefix, train_counts=train_counts)


def metrics_of_predictions(preds: torch.Tensor, dataset: GroupedDataset, *, prefix: str,
                           train_counts: torch.Tensor | None = None) -> dict[str, float]:
    """Return ``{prefix}/{metric}`` of predictions ``preds`` (shape ``(len(dataset),)``) of ``dataset``."""
    y, groups = dataset.y.to(preds.device), dataset.group.to(preds.device)
    metrics = group_accuracy(preds, y, groups, num_groups=dataset.num_groups,
                             train_counts=None if train_counts is None else train_counts.to(preds.device))
    metrics.update(selection_metrics(preds, y, dataset.num_classes, dataset.inferred))  # worst class, inferred
    return {f"{prefix}/{key}": value for key, value in metrics.items()}
