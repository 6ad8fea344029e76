"""Slices where a model fails, discovered without group labels: clusters of its features per class.

Each class's features are clustered (:func:`robustml.groups.cluster_within_classes`, the
per-class clustering of GEORGE, Sohoni et al., NeurIPS 2020, with the number of clusters chosen
by silhouette); every cluster is a slice, and slices are ranked by the model's accuracy on them,
worst first. For tabular inputs, :func:`describe_slice` names the input columns whose values set
a slice apart from the rest of its class (in the spirit of Domino, Eyuboglu et al., ICLR 2022,
which describes discovered slices; here with the table's own columns).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from robustml.groups import cluster_within_classes
from robustml.groups.clustering import DEFAULT_NUM_CLUSTERS


@dataclass
class Slice:
    """One discovered slice: a cluster of one class's examples.

    Attributes:
        label: The class of its examples.
        cluster: Its cluster id within the class.
        size: Number of examples.
        accuracy: The model's accuracy on them, in ``[0, 1]``.
        rows: Positions of its examples in the audited split, shape ``(size,)``.
        description: Input columns that set it apart from the rest of its class (tabular data).
    """

    label: int
    cluster: int
    size: int
    accuracy: float
    rows: np.ndarray = field(repr=False)
    description: list[str] = field(default_factory=list)


def discover_slices(features: np.ndarray, target: np.ndarray, preds: np.ndarray, num_classes: int, *,
                    num_clusters: int | Sequence[int] = DEFAULT_NUM_CLUSTERS, num_components: int | None = 10,
                    seed: int = 0) -> list[Slice]:
    """Cluster each class's features and return the clusters as slices, lowest accuracy first.

    Args:
        features: The model's features of every example, shape ``(N, D)``.
        target: Class labels, shape ``(N,)``.
        preds: The model's predicted classes, shape ``(N,)``.
        num_classes: Number of classes.
        num_clusters: Clusters per class, or the candidates among which silhouette chooses.
        num_components: PCA dimensions before clustering (``None``: none).
        seed: Seed of the clustering.
    """
    target, preds = np.asarray(target), np.asarray(preds)
    if preds.shape != target.shape:
        raise ValueError(f"preds must have shape {target.shape} like target, got {preds.shape}")
    clusters = cluster_within_classes(features, target, num_classes=num_classes,
                                      num_clusters=num_clusters, num_components=num_components,
                                      seed=seed)
    parts = clusters.predict(features, target)
    slices = []
    for c in range(num_classes):
        for j in range(clusters.num_clusters[c]):
            rows = np.flatnonzero(parts == clusters.offsets[c] + j)
            if rows.size:
                slices.append(Slice(c, j, int(rows.size), float(np.mean(preds[rows] == target[rows])), rows))
    return sorted(slices, key=lambda s: (s.accuracy, -s.size))


def describe_slice(inputs: np.ndarray, column_names: Sequence[str], rows: np.ndarray,
                   class_rows: np.ndarray, top: int = 3) -> list[str]:
    """Name the ``top`` input columns whose slice mean differs most from the rest of the class.

    The difference is measured in standard deviations of the column within the class. A 0/1
    column (one-hot category) is described by its rate (``sex_Female: 96% vs 12% in the rest of
    the class``), another by its mean.

    Args:
        inputs: Tabular inputs of the split, shape ``(N, F)``.
        column_names: Name of each of the ``F`` columns.
        rows: Positions of the slice's examples.
        class_rows: Positions of every example of the slice's class.
        top: How many columns to name.
    """
    inputs = np.asarray(inputs, dtype=np.float64)
    if inputs.ndim != 2 or inputs.shape[1] != len(column_names):
        raise ValueError(f"inputs must have shape (N, {len(column_names)}) to match column_names, got "
                         f"{inputs.shape}")
    rest = np.setdiff1d(class_rows, rows)
    if rest.size == 0 or rows.size == 0:
        return []
    inside, outside = inputs[rows].mean(0), inputs[rest].mean(0)
    spread = inputs[class_rows].std(0)
    score = np.abs(inside - outside) / np.where(spread > 0, spread, np.inf)
    binary = np.all((inputs[class_rows] == 0) | (inputs[class_rows] == 1), axis=0)
    out = []
    for f in np.argsort(-score)[:top]:
        if score[f] == 0:
            break
        if binary[f]:
            out.append(f"{column_names[f]}: {100 * inside[f]:.0f}% vs {100 * outside[f]:.0f}% in the "
                       "rest of the class")
        else:
            out.append(f"{column_names[f]}: mean {inside[f]:.2f} vs {outside[f]:.2f} in the rest of the class")
    return out
