"""Feature extraction into a cache keyed by weights, data and transform.

``cached_features(model, dataset, cache_dir)`` returns a memory-mapped ``(N, D)`` float32 array of
``model.features(x)``; linear probes, label cleaning and last-layer methods reuse it
(``feature_dataset`` wraps it, with the split's metadata, as an in-memory dataset). The
``robustml-features`` console script (:mod:`robustml.cli.features`) fills the cache from configs.
"""

from robustml.features.cache import cached_features, cached_split_features, feature_dataset, feature_key

__all__ = ["cached_features", "cached_split_features", "feature_dataset", "feature_key"]
