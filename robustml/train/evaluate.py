"""Evaluation of a model on a grouped split: per-group and worst-group accuracy."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from robustml.data.contract import Batch, GroupedDataset
from robustml.groups.partition import selection_metrics
from robustml.losses.functional import predict
from robustml.metrics import declared_overlap_metrics, group_accuracy, prediction_shares
from robustml.models.forward import iter_outputs, model_device


def predict_dataset(model: nn.Module, dataset: GroupedDataset, *, precision: str = "fp32",
                    batch_size: int | None = None, loader: Iterable[Batch] | None = None) -> torch.Tensor:
    """Return predicted class ids for every example of ``dataset``, shape ``(N,)``, in order.

    The logits come from :func:`~robustml.models.forward.iter_outputs`: an in-memory dataset in
    row blocks of ``batch_size``, an on-disk one streamed in batches through ``loader``.
    """
    chunks = [predict(logits) for logits in iter_outputs(model, dataset, batch_size=batch_size,
                                                         loader=loader, precision=precision)]
    preds = torch.cat(chunks) if chunks else torch.zeros(0, dtype=torch.int64, device=model_device(model))
    if preds.shape[0] != len(dataset):
        raise ValueError(f"loader yielded {preds.shape[0]} examples for dataset "
                         f"{dataset.name!r} of {len(dataset)}: it must stream every example once, "
                         "in order")
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
    """Return ``{prefix}/{metric}`` of predictions ``preds`` (shape ``(len(dataset),)``) of ``dataset``:
    the group accuracies, the selection metrics, each class's share of the predictions
    (``pred_share_<c>``) and, when the split declares overlapping attributes
    (``extras["overlap_attrs"]``), the accuracy of each attribute x class group and the worst over
    them (:func:`~robustml.metrics.declared_overlap_metrics`, keys ``overlap_*``)."""
    y, groups = dataset.y.to(preds.device), dataset.group.to(preds.device)
    metrics = group_accuracy(preds, y, groups, num_groups=dataset.num_groups,
                             train_counts=None if train_counts is None else train_counts.to(preds.device))
    metrics.update(selection_metrics(preds, y, num_classes=dataset.num_classes,
                                     inferred=dataset.inferred))  # worst class, inferred
    metrics.update(prediction_shares(preds, num_classes=dataset.num_classes))  # one-class check
    metrics.update(declared_overlap_metrics(preds, y, dataset.extras, dataset.info,  # e.g. WILDS'
                                            num_classes=dataset.num_classes))     # identity x label
    return {f"{prefix}/{key}": value for key, value in metrics.items()}
