"""Orchestration of one audit (``robustml-audit``): load a run's model and data, audit, write;
or, with ``--data``, audit the data alone before training.

The audit itself is :mod:`robustml.audit`; this module builds its inputs from configs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose, initialize_config_module
from omegaconf import DictConfig, OmegaConf

from robustml.audit import (DataAuditResult, audit_data, audit_model, audit_predictions, write_audit,
                            write_data_audit)
from robustml.data.contract import DataSplits
from robustml.features import cached_features
from robustml.groups.clustering import DEFAULT_NUM_CLUSTERS
from robustml.pipeline.heads import load_head
from robustml.train.evaluate import predict_dataset
from robustml.pipeline.instantiate import build_from
from robustml.pipeline.stages import load_trained_model, run_config


def compose_audit_data(run_cfg: DictConfig | None, overrides: Sequence[str]) -> DataSplits:
    """Build the audited data: the run's own data config, with ``data.*`` overrides applied.

    ``data=<name>`` (a config of ``configs/data/``) replaces the run's data config, composed with
    the other ``data.*`` overrides; without a run, the overrides compose ``configs/train.yaml``.
    """
    overrides = list(overrides)
    unknown = [o for o in overrides if not o.split("=", 1)[0].lstrip("+").startswith("data")]
    if unknown:
        raise ValueError(f"robustml-audit takes data overrides only (data=<name>, data.<key>=<value>), "
                         f"got {unknown}")
    if run_cfg is None or any(o.startswith("data=") for o in overrides):
        with initialize_config_module(config_module="robustml.configs", version_base="1.3"):
            cfg = compose(config_name="train", overrides=overrides)
    else:
        cfg = OmegaConf.merge(OmegaConf.create({"data": run_cfg.data}), OmegaConf.from_dotlist(overrides))
    return build_from(cfg, "data")


def audit_run(source: str | Path | None, overrides: Sequence[str] = (), *, split: str = "test",
              out_dir: str | Path | None = None, predictions: str | Path | None = None,
              features: str | Path | None = None, seed: int = 0,
              num_clusters: int | Sequence[int] = DEFAULT_NUM_CLUSTERS) -> Path:
    """Audit a trained run (its folder) or saved predictions and features; return the output folder.

    Args:
        source: A run folder (``config.yaml`` and ``checkpoints/best.pt``), or ``None`` with
            ``predictions`` and ``features``.
        overrides: ``data=...`` / ``data.<key>=...`` overrides of the audited data.
        split: ``"train"``, ``"val"`` or ``"test"``.
        out_dir: Output folder (default ``<run>/audit``, or ``audit`` without a run).
        predictions: A ``.npy`` of predicted classes ``(N,)`` of ``split``, in dataset order.
        features: A ``.npy`` of features ``(N, D)`` of ``split``, in dataset order.
        seed: Seed of the clustering and the stress test.
        num_clusters: Candidate clusters per class (the silhouette picks one), or one count.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    if (source is None) == (predictions is None and features is None):
        raise ValueError("give either a run folder or both --predictions and --features, not both or neither")
    if source is None and (predictions is None or features is None):
        raise ValueError("saved outputs need both --predictions (N,) and --features (N, D)")
    run_cfg = None
    if source is not None:
        run_cfg = run_config(source, what="the audited run")
    splits = compose_audit_data(run_cfg, overrides)
    dataset = dict(splits.items())[split]
    names = getattr(splits, "feature_names", None)
    names = names if names is not None and dataset.in_memory and dataset.x.dim() == 2 else None
    out_dir = Path(out_dir) if out_dir is not None else (Path(source) / "audit" if source else Path("audit"))
    if source is None:
        result = audit_predictions(dataset, np.load(predictions), np.load(features), split=split,
                                   feature_names=names, seed=seed, num_clusters=num_clusters)
        label = f"saved predictions {predictions}"
    else:
        # A DFR, AFR or DPE run predicts with its refitted last layer, not best.pt's head.
        model, method = load_head(Path(source), load_trained_model(source, None, splits))
        if dataset.in_memory:
            result = audit_model(model, dataset, split=split, feature_names=names, seed=seed,
                                 num_clusters=num_clusters)
        else:
            feats = np.asarray(cached_features(model, dataset, out_dir / "features", progress=False))
            result = audit_predictions(dataset, predict_dataset(model, dataset).cpu().numpy(), feats,
                                       split=split, seed=seed, num_clusters=num_clusters)
        label = f"run {source}" + (f" (its {method.upper()} last layer)" if method else "")
    return write_audit(result, out_dir, source=label)


def data_audit_run(overrides: Sequence[str] = (), *, out_dir: str | Path = "data_audit",
                   **thresholds: Any) -> tuple[Path, DataAuditResult]:
    """Audit the data that ``overrides`` compose (as training would build it), before any training.

    Args:
        overrides: ``data=<name>`` / ``data.<key>=<value>`` overrides of ``configs/train.yaml``'s data
            (none: the default colored digits).
        out_dir: Folder of ``data_audit.md`` and ``data_audit.json``.
        thresholds: Keyword arguments of :func:`robustml.audit.audit_data`.

    Returns:
        The output folder and the audit's result.
    """
    splits = compose_audit_data(None, overrides)
    result = audit_data(splits, **thresholds)
    label = "data " + (" ".join(overrides) if overrides else "(the default data config)")
    return write_data_audit(result, out_dir, source=label), result
