"""What a run's config says about its result: flattened keys, differences, keys that change nothing,
and the one cache-key hash.

One home for three uses that must agree: resuming a checkpoint (:mod:`robustml.train.checkpoint`
refuses a config that differs), keying a cached ERM stage (:mod:`robustml.pipeline.stages`: two
runs share a stage when its identity is equal) and grouping a sweep (:mod:`robustml.report.collect`:
configurations are the keys that vary). :func:`hash_key` keys every cache (ERM stages, JTT's
error sets, cleaning's out-of-fold probabilities, feature caches). Configs here are plain nested dicts (a resolved config as
``OmegaConf.to_container`` gives it, or ``config.yaml`` read back); nothing imports a config system.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

RUN_SWITCHES = ("trainer.resume", "trainer.resume_force")
"""How a run was started: fresh or resumed (forced). The same model either way."""

DISPLAY_KEYS = ("trainer.progress", "cleaning.progress")
"""What a run shows while it works (progress bars)."""

EXECUTION_KEYS = ("trainer.device", "trainer.num_workers", "trainer.pin_memory",
                  "trainer.persistent_workers", "trainer.eval_batch_size", "trainer.eval_train")
"""Where a run executed and how it loaded and evaluated its data. Selection reads val only, so
whether intermediate evaluations covered the training split (``eval_train``) changes no result."""

TRACKER_KEYS = ("logger",)
"""Where a run's metrics are also sent (``logger=``: TensorBoard, MLflow) and every key under it."""

RESUME_EXEMPT_KEYS = (*RUN_SWITCHES, *DISPLAY_KEYS, *TRACKER_KEYS, "paths.output_root")
"""Keys that may differ between a run and its resume. ``paths.output_root`` is where new runs
would go (a resumed run's folder is given explicitly). Every other key (also
``trainer.max_steps``, which sets a cosine schedule's length, and ``paths.data_root``) must match
unless the resume is forced."""

STAGE_EXEMPT_KEYS = (*RUN_SWITCHES, "trainer.progress", "trainer.num_workers", "trainer.pin_memory",
                     "trainer.persistent_workers", "trainer.eval_batch_size", "trainer.eval_every",
                     "trainer.eval_train", "trainer.select")
"""Trainer keys that change how an ERM stage is run, logged or selected, not the model it ends
with (the last step's: a stage's selection is always ``last``, so neither its rule nor how often
it evaluates matters)."""

COLLECT_EXEMPT_KEYS = ("seed", "name", *RUN_SWITCHES, *DISPLAY_KEYS, *EXECUTION_KEYS, *TRACKER_KEYS)
"""Keys that never make two runs of a sweep different configurations: the seed (runs that differ
only by seed are one configuration), the name, and every key that changes no result."""
COLLECT_EXEMPT_PREFIXES = ("paths.", "hydra.", *(f"{key}." for key in TRACKER_KEYS))


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Return a nested mapping as ``{"a.b.c": leaf}``; lists and empty mappings are leaves."""
    if not isinstance(tree, Mapping) or (not tree and prefix):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def differences(expected: Mapping[str, Any], found: Mapping[str, Any], *,
                exempt: tuple[str, ...] = ()) -> list[tuple[str, Any, Any]]:
    """Return ``(key, expected value, found value)`` for every flattened key whose values differ.

    Sorted by key; a key present on one side only has the string ``"<absent>"`` on the other;
    keys in ``exempt``, and the keys under them (``logger`` exempts ``logger.mlflow.experiment``),
    are left out.
    """
    want, have = flatten(expected), flatten(found)
    missing = object()
    under = tuple(f"{key}." for key in exempt)
    return [(key, want.get(key, "<absent>"), have.get(key, "<absent>"))
            for key in sorted(want.keys() | have.keys())
            if key not in exempt and not key.startswith(under)
            and want.get(key, missing) != have.get(key, missing)]


def data_identity(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return a resolved data config without ``download``, its ``root`` made absolute.

    The same files reached by two paths (``../shared/data`` and its absolute form) compare equal;
    the same config on other files does not.
    """
    out = {key: value for key, value in data.items() if key != "download"}
    if out.get("root") is not None:
        out["root"] = str(Path(out["root"]).resolve())
    return out


def hash_key(*parts) -> str:
    """Hash configuration and data into a cache key (the sha256 hex digest).

    Each part is encoded with its type and length, so different splits of the same bytes hash
    differently: arrays (numpy or tensors) by dtype, shape and bytes; ``bytes`` as they are;
    anything else as canonical JSON (sorted keys; numpy scalars as Python numbers).

    Args:
        *parts: Config dicts, strings, numbers, label arrays, data fingerprints.

    Returns:
        The sha256 hex digest.

    Raises:
        TypeError: For object arrays or parts that are not JSON-serializable.
    """
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, bytes):
            payload = b"bytes:" + part
        elif hasattr(part, "__array__") or hasattr(part, "detach"):
            array = np.ascontiguousarray(_to_numpy(part))
            if array.dtype == object:
                raise TypeError("hash_key cannot hash object arrays; pass a numeric array")
            payload = f"array:{array.dtype.str}:{array.shape}:".encode() + array.tobytes()
        else:
            try:
                text = json.dumps(
                    part, sort_keys=True, separators=(",", ":"), default=_json_scalar
                )
            except TypeError as err:
                raise TypeError(
                    f"hash_key parts must be arrays, bytes or JSON-serializable, got "
                    f"{type(part).__name__}"
                ) from err
            payload = b"json:" + text.encode()
        digest.update(len(payload).to_bytes(8, "little"))
        digest.update(payload)
    return digest.hexdigest()


def _json_scalar(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)
