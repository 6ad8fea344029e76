"""Evaluation of a model on a grouped split: per-group and worst-group accuracy."""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from robustml.data.contract import GroupedTensorDataset
from robustml.losses.functional import predict
from robustml.metrics import group_accuracy

PRECISIONS = ("fp32", "bf16")


def autocast(device: torch.device, precision: str):
    """Return the autocast context for ``precision`` (``"fp32"``: none, ``"bf16"``: bfloat16)."""
    if precision not in PRECISIONS:
        raise ValueError(f"trainer.precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def forward_in_chunks(model: nn.Module, x: torch.Tensor, chunk_size: int | None) -> torch.Tensor:
    """Return ``model(x)`` computed over row chunks of ``chunk_size`` (one call when ``None``).

    For models without batch-dependent layers the result and its gradient are those of a single
    call; smaller row blocks run at a higher matrix-multiply rate on CPU than one huge block.
    """
    if chunk_size is None or x.shape[0] <= chunk_size:
        return model(x)
    return torch.cat([model(chunk) for chunk in x.split(chunk_size)])


@torch.no_grad()
def predict_dataset(model: nn.Module, dataset: GroupedTensorDataset, *, precision: str = "fp32",
                    batch_size: int = 8192) -> torch.Tensor:
    """Return predicted class ids for every example of ``dataset``, shape ``(N,)``."""
    was_training = model.training
    model.eval()
    device = dataset.x.device
    with autocast(device, precision):
        preds = torch.cat([predict(model(x)) for x in dataset.x.split(batch_size)])
    model.train(was_training)
    return preds


def evaluate(model: nn.Module, dataset: GroupedTensorDataset, *, prefix: str,
             train_counts: torch.Tensor | None = None, precision: str = "fp32") -> dict[str, float]:
    """Return ``{prefix}/{metric}`` accuracies of ``model`` on ``dataset`` (see robustml.metrics)."""
    preds = predict_dataset(model, dataset, precision=precision)
    metrics = group_accuracy(preds, dataset.y, dataset.group, dataset.num_groups,
                             train_counts=None if train_counts is None else train_counts.to(preds.device))
    return {f"{prefix}/{key}": value for key, value in metrics.items()}
