"""Per-class clustering of a reference model's features (GEORGE's group inference).

Sohoni, Dunnmon, Angus, Gu, Ré, "No Subclass Left Behind: Fine-Grained Robustness in
Coarse-Grained Classification Problems", NeurIPS 2020, Sec. 4.1: the features of an ERM model
are reduced and clustered separately within each class; the clusters are the groups of a robust
loss. The paper reduces with UMAP and clusters with a Gaussian mixture, choosing the number of
clusters per class by the silhouette score. Here the reduction is scikit-learn's ``PCA``
(``num_components``; UMAP is not a dependency), the clustering ``KMeans`` or
``GaussianMixture``, and the number of clusters per class the candidate with the highest
silhouette score (``sklearn.metrics.silhouette_score`` on the reduced features, on a seeded
sample of at most ``silhouette_sample`` rows; ties go to the fewer clusters). Part ids number the
clusters class by class: class 0's clusters first.

This criterion is not exactly the authors'. GEORGE's code (HazyResearch/hidden-stratification,
``AutoKMixtureModel``) scores each candidate ``k`` (2 to 10) by the mean over clusters of each
cluster's mean silhouette, on every row, and breaks ties towards more clusters; the mean over rows
used here weighs large clusters more, so it can prefer fewer clusters when a small subclass is
tight. It is kept because the rows are sampled (a silhouette over all 162,770 CelebA rows is
quadratic in time) and the committed experiments were run with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from robustml.validation import check_int

# Candidate clusters per class when none are given (configs/groups/clustering.yaml says the same).
DEFAULT_NUM_CLUSTERS = (2, 3, 4, 5)

METHODS = ("kmeans", "gmm")


@dataclass
class ClassClusters:
    """Fitted per-class clusterings: ``predict`` assigns new examples of known class to parts.

    Attributes:
        num_parts: Total number of parts (clusters summed over classes).
        num_clusters: Clusters chosen per class, shape ``(C,)``.
        silhouette: Per class, ``{k: silhouette score}`` of every candidate tried.
    """

    num_parts: int
    num_clusters: list[int]
    silhouette: list[dict[int, float]]
    models: list = field(repr=False, default_factory=list)
    reducers: list = field(repr=False, default_factory=list)
    offsets: list[int] = field(repr=False, default_factory=list)

    def predict(self, features: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Return the part id of every example, shape ``(N,)``, int64 (clusters of its own class)."""
        features, target = _check(features, target, len(self.models))
        parts = np.zeros(len(target), dtype=np.int64)
        for c, (model, reducer) in enumerate(zip(self.models, self.reducers)):
            rows = np.flatnonzero(target == c)
            if rows.size:
                parts[rows] = self.offsets[c] + model.predict(reducer.transform(features[rows]))
        return parts


def _check(features: np.ndarray, target: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    features, target = np.asarray(features, dtype=np.float64), np.asarray(target)
    if features.ndim != 2 or target.shape != (features.shape[0],):
        raise ValueError(f"features must have shape (N, D) and target (N,), got {features.shape} and "
                         f"{target.shape}")
    if target.size and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f"target must lie in [0, {num_classes}), got values in "
                         f"[{target.min()}, {target.max()}]")
    return features, target


def _model(method: str, k: int, seed: int):
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture
    if method == "kmeans":
        return KMeans(n_clusters=k, n_init=10, random_state=seed)
    return GaussianMixture(n_components=k, covariance_type="full", random_state=seed)


def cluster_within_classes(features: np.ndarray, target: np.ndarray, *, num_classes: int,
                           num_clusters: int | Sequence[int] = DEFAULT_NUM_CLUSTERS, method: str = "kmeans",
                           num_components: int | None = 10, silhouette_sample: int = 2000,
                           seed: int = 0) -> ClassClusters:
    """Cluster each class's features; choose the number of clusters per class by silhouette.

    Args:
        features: Reference-model features, shape ``(N, D)``.
        target: Class ids, shape ``(N,)``, values in ``[0, num_classes)``.
        num_classes: Number of classes ``C``.
        num_clusters: One count used for every class, or the candidate counts (each ``>= 2``)
            among which the highest silhouette score chooses, per class.
        method: ``"kmeans"`` or ``"gmm"`` (full-covariance Gaussian mixture, as in GEORGE).
        num_components: PCA dimensions before clustering (``None``: no reduction; fewer when the
            class has fewer examples or features).
        silhouette_sample: Rows sampled (seeded) to compute each silhouette score.
        seed: Seed of PCA, the clusterings and the silhouette sample.

    Returns:
        :class:`ClassClusters`; ``.predict(features, target)`` gives the parts.

    Raises:
        ValueError: When a class has fewer examples than a requested number of clusters, or no
            example at all.
    """
    num_classes = check_int("num_classes", num_classes, minimum=1)
    features, target = _check(features, target, num_classes)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    candidates = [num_clusters] if isinstance(num_clusters, (int, np.integer)) else list(num_clusters)
    if not candidates:
        raise ValueError("num_clusters must be a count or a non-empty list of candidate counts")
    for k in candidates:
        check_int("num_clusters", k, minimum=1 if len(candidates) == 1 else 2)
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score
    result = ClassClusters(num_parts=0, num_clusters=[], silhouette=[])
    for c in range(num_classes):
        rows = features[target == c]
        if len(rows) < max(candidates):
            raise ValueError(
                f"num_clusters asks for up to {max(candidates)} clusters but class {c} has "
                f"{len(rows)} example(s); clustering needs at least as many examples as clusters "
                "in every class: lower num_clusters (or its largest candidate; robustml-audit: "
                "--num-clusters), or use more data")
        dims = None if num_components is None else min(num_components, rows.shape[1], len(rows))
        reducer = PCA(n_components=dims, random_state=seed).fit(rows)
        reduced = reducer.transform(rows)
        scores, fitted = {}, {}
        for k in candidates:
            fitted[k] = _model(method, k, seed).fit(reduced)
            if len(candidates) > 1:
                labels = fitted[k].predict(reduced)
                size = min(silhouette_sample, len(rows))
                scores[k] = (float(silhouette_score(reduced, labels, sample_size=size, random_state=seed))
                             if len(np.unique(labels)) > 1 else -1.0)
        # max keeps the first of equal scores: in ascending order, ties go to the fewer clusters.
        best = max(sorted(candidates), key=lambda k: scores.get(k, 0.0)) if scores else candidates[0]
        result.models.append(fitted[best])
        result.reducers.append(reducer)
        result.offsets.append(result.num_parts)
        result.num_clusters.append(int(best))
        result.silhouette.append(scores)
        result.num_parts += int(best)
    return result


def cluster_names(class_names: Sequence[str], num_clusters: Sequence[int]) -> list[str]:
    """Name the parts of :class:`ClassClusters`: ``"y=<c>,cluster=<j>"``."""
    return [f"y={c},cluster={j}" for c, k in zip(class_names, num_clusters) for j in range(k)]
