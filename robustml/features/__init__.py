"""Feature extraction into a cache keyed by weights, data and transform, and datasets of features.

``cached_features(model, dataset, cache_dir)`` returns a memory-mapped ``(N, D)`` float32 array of
``model.features(x)``; ``feature_dataset`` wraps one split's, and ``feature_splits`` every split's,
with the source metadata as in-memory datasets that linear probes, label cleaning, last-layer
methods and audits reuse (``robustml-train data=features`` from configs). The
``robustml-features`` console script (:mod:`robustml.cli.features`) fills the cache from configs.
"""

from robustml.features.cache import cache_path, cached_features, cached_split_features, feature_key
from robustml.features.splits import as_feature_dataset, feature_dataset, feature_splits

__all__ = ["as_feature_dataset", "cache_path", "cached_features", "cached_split_features",
           "feature_dataset", "feature_key", "feature_splits"]
