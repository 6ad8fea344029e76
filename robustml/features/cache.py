"""Extract a model's features once per split into memory-mapped arrays, and reuse them.

A cache entry is ``<cache_dir>/<name>_<key>.npy``, a float32 array ``(N, D)`` of
``model.features(x)`` for every example in order, where ``key`` hashes the model's weights (its
``state_dict`` without the head that ``features`` does not use, and its ``feature_identity``
where it has one: the settings of modules without weights, such as a sentence model's pooling),
the dataset (file paths and root, or the input tensor's bytes) and the evaluation transform.
A model with a ``check_inputs(split)`` method (a text backbone) checks each dataset's
``info`` (its tokenizer) before anything is read from the cache or extracted. Entries are written
to a temporary file and renamed when complete, so an interrupted extraction leaves nothing
behind; later calls open the entry with ``numpy.load(mmap_mode="r")`` and log that they reused it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from torch import nn

from robustml.data.contract import DataSplits, GroupedDataset
from robustml.data.loading import LoaderSettings, eval_loader
from robustml.atomic import atomic_path
from robustml.identity import hash_key
from robustml.models.forward import iter_outputs

log = logging.getLogger(__name__)
CACHE_VERSION = "robustml.features/3"  # bump when the same inputs would give other features


def feature_key(model: nn.Module, dataset: GroupedDataset) -> str:
    """Return the cache key (:func:`robustml.identity.hash_key`) of the model's weights, the
    dataset and its eval transform.

    A model's ``feature_identity`` (a JSON-serializable value), where it has one, is part of the
    key. The weights of ``model.head`` (the last linear layer, which ``features(x)`` does not
    use) are left out, so models that differ only in their head (the same pretrained backbone with a
    head initialized by another seed) share their cache entries.
    """
    head = getattr(model, "head", None)
    head_keys = {f"head.{k}" for k in head.state_dict()} if isinstance(head, nn.Module) else set()
    weights = [part for name, tensor in sorted(model.state_dict().items()) if name not in head_keys
               for part in (name, tensor)]
    data = ([dataset.x] if dataset.in_memory else
            [str(Path(dataset.root).resolve()), [str(path) for path in dataset.paths],
             repr(dataset.eval_transform)])
    identity = getattr(model, "feature_identity", None)
    return hash_key(CACHE_VERSION, type(model).__qualname__, *weights, *data, list(dataset.input_shape),
                    *([] if identity is None else [identity]))


def cache_path(model: nn.Module, dataset: GroupedDataset, cache_dir: str | Path) -> Path:
    """Return the cache entry of ``model``'s features of ``dataset``: ``<cache_dir>/<name>_<key>.npy``."""
    return Path(cache_dir) / f"{dataset.name or 'data'}_{feature_key(model, dataset)[:20]}.npy"


def cached_features(model: nn.Module, dataset: GroupedDataset, cache_dir: str | Path, *,
                    batch_size: int = 256, num_workers: int = 0, progress: bool = True,
                    path: Path | None = None) -> np.ndarray:
    """Return ``model.features(x)`` for every example of ``dataset``, cached on disk.

    Args:
        model: A robustml model (it has ``features(x) -> (B, D)``); evaluated in ``eval`` mode
            on its own device, in float32.
        dataset: An in-memory or on-disk split (on disk: its evaluation transform, streamed in
            batches through a DataLoader).
        cache_dir: Folder of the cache entries.
        batch_size: Examples per forward pass.
        num_workers: DataLoader workers for on-disk data.
        progress: Show a progress bar while extracting.
        path: The entry, where the caller already has it from :func:`cache_path` (hashing a
            large backbone's weights takes a noticeable fraction of a second).

    Returns:
        A read-only memory-mapped float32 array of shape ``(N, D)``, rows in dataset order.
    """
    if not hasattr(model, "features"):
        raise TypeError(f"model must have a features(x) method, got {type(model).__name__}")
    check_inputs = getattr(model, "check_inputs", None)
    if callable(check_inputs):
        check_inputs(dataset)
    path = cache_path(model, dataset, cache_dir) if path is None else Path(path)
    if path.is_file():
        log.info("feature cache: reusing %s (%d examples)", path, len(dataset))
        return np.load(path, mmap_mode="r")
    settings = LoaderSettings(num_workers=num_workers, eval_batch_size=batch_size)
    loader = None if dataset.in_memory else eval_loader(dataset, settings)
    with atomic_path(path) as tmp:
        out, row = None, 0
        for feats in iter_outputs(model, dataset, batch_size=batch_size, loader=loader, features=True,
                                   progress=f"features {dataset.name}" if progress else None):
            feats = feats.cpu().numpy()
            if out is None:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                                shape=(len(dataset), feats.shape[1]))
            out[row:row + len(feats)] = feats
            row += len(feats)
        if out is None or row != len(dataset):
            raise ValueError(f"extracted {row} feature rows for dataset {dataset.name!r} of "
                             f"{len(dataset)} examples")
        out.flush()
        del out
    log.info("feature cache: extracted %d x %d features into %s", len(dataset), feats.shape[1], path)
    return np.load(path, mmap_mode="r")


def cached_split_features(model: nn.Module, splits: DataSplits, cache_dir: str | Path,
                          **options) -> dict[str, np.ndarray]:
    """Return ``{"train", "val", "test"}`` feature arrays of :func:`cached_features` (same options)."""
    return {name: cached_features(model, split, cache_dir, **options) for name, split in splits.items()}
