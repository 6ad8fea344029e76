"""Audit a trained model on one split: per-group accuracy, discovered failing slices, stress test.

What a practitioner checks before deploying a model: accuracy on every known group, the slices
where it fails most found without group labels (:mod:`robustml.audit.slices`), and, where the
dataset declares a counterfactual rule, how often predictions flip when only the spurious
attribute changes (:func:`robustml.augment.counterfactual_stress_test`). Works from a model or
from saved predictions and features (:func:`audit_predictions`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from robustml.audit.slices import Slice, describe_slice, discover_slices
from robustml.groups.clustering import DEFAULT_NUM_CLUSTERS
from robustml.augment import counterfactual_stress_test
from robustml.data.contract import GroupedDataset
from robustml.losses import predict
from robustml.metrics import declared_overlap_metrics, group_accuracy
from robustml.models.forward import iter_outputs, model_device


@dataclass
class AuditResult:
    """Everything :func:`robustml.audit.write_audit` writes.

    Attributes:
        split: Name of the audited split.
        group_names: Name of each true group.
        class_names: Name of each class.
        metrics: ``{split}/acc_group_<g>``, counts, worst-group and average accuracy (true groups).
        slices: Discovered slices, lowest accuracy first; ``main_group`` / ``main_group_share``
            in :attr:`slice_groups` say which true group dominates each (where groups are known).
        stress: ``cf_*`` metrics of the stress test, or ``None`` when the dataset has no rule.
    """

    split: str
    group_names: list[str]
    class_names: list[str]
    metrics: dict[str, Any]
    slices: list[Slice]
    slice_groups: list[tuple[int, float]] = field(default_factory=list)
    stress: dict[str, float] | None = None


def audit_predictions(dataset: GroupedDataset, preds: np.ndarray | torch.Tensor,
                      features: np.ndarray, *, split: str = "test",
                      feature_names: Sequence[str] | None = None,
                      predict_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
                      num_clusters: int | Sequence[int] = DEFAULT_NUM_CLUSTERS, seed: int = 0) -> AuditResult:
    """Audit saved predictions and features of ``dataset``'s examples.

    Args:
        dataset: The audited split (labels and true groups from its metadata).
        preds: Predicted classes, shape ``(N,)``.
        features: The model's features, shape ``(N, D)``, rows in dataset order.
        split: Name of the split, for keys and titles.
        feature_names: Names of the input columns of a tabular ``dataset`` (its ``x`` is then
            described per slice); ``None`` for other inputs.
        predict_fn: ``x -> predicted classes``, to run the stress test (needs an in-memory
            dataset with a counterfactual rule); ``None`` skips it.
        num_clusters: Clusters per class, or candidates chosen by silhouette.
        seed: Seed of the clustering and of the stress test's draws.
    """
    preds = torch.as_tensor(np.asarray(preds)).long().cpu()
    features = np.asarray(features)
    if preds.shape != (len(dataset),) or features.ndim != 2 or features.shape[0] != len(dataset):
        raise ValueError(f"preds must have shape ({len(dataset)},) and features ({len(dataset)}, D) to "
                         f"match the dataset, got {tuple(preds.shape)} and {features.shape}")
    y, groups = dataset.y.cpu(), dataset.group.cpu()
    metrics = group_accuracy(preds, y, groups, num_groups=dataset.num_groups)
    metrics.update(declared_overlap_metrics(preds, y, {k: v.cpu() for k, v in dataset.extras.items()},
                                            dataset.info, num_classes=dataset.num_classes))
    metrics = {f"{split}/{k}": v for k, v in metrics.items()}
    slices = discover_slices(features, y.numpy(), preds.numpy(), dataset.num_classes,
                             num_clusters=num_clusters, seed=seed)
    if feature_names is not None:
        inputs = dataset.x.cpu().numpy().reshape(len(dataset), -1)
        for s in slices:
            s.description = describe_slice(inputs, feature_names, s.rows, np.flatnonzero(y.numpy() == s.label))
    slice_groups = []
    for s in slices:
        ids, counts = np.unique(groups.numpy()[s.rows], return_counts=True)
        slice_groups.append((int(ids[np.argmax(counts)]), float(counts.max() / s.size)))
    stress = None
    if predict_fn is not None and dataset.counterfactual is not None and dataset.in_memory:
        stress = counterfactual_stress_test(predict_fn, dataset, generator=torch.Generator().manual_seed(seed))
    return AuditResult(split, list(dataset.group_names), list(dataset.class_names), metrics, slices,
                       slice_groups, stress)


def model_outputs(model: torch.nn.Module, dataset: GroupedDataset,
                  batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(preds (N,), features (N, D))`` of ``model`` on an in-memory ``dataset``, in eval mode.

    For on-disk data, extract the features once with :func:`robustml.features.cached_features`
    and pass them to :func:`audit_predictions`.
    """
    if not hasattr(model, "features"):
        raise TypeError(f"model must have a features(x) method, got {type(model).__name__}")
    model.eval()
    preds = [predict(logits).cpu() for logits in iter_outputs(model, dataset, batch_size=batch_size)]
    feats = [f.cpu() for f in iter_outputs(model, dataset, batch_size=batch_size, features=True)]
    return torch.cat(preds).numpy(), torch.cat(feats).numpy()


def audit_model(model: torch.nn.Module, dataset: GroupedDataset, **options: Any) -> AuditResult:
    """Audit ``model`` on ``dataset`` (in memory); ``options`` go to :func:`audit_predictions`."""
    preds, features = model_outputs(model, dataset)
    device = model_device(model)
    options.setdefault("predict_fn", lambda x: predict(model(x.to(device))).to(x.device))
    return audit_predictions(dataset, preds, features, **options)
