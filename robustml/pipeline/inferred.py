"""Infer a run's groups without group labels (``cfg.groups``) and report how they match the true ones.

:func:`with_inferred_groups` runs the chosen method of :mod:`robustml.groups` on a reference
model over the training and validation splits and adds an ``inferred`` partition to each, which
``loss.partition=inferred``, ``sampler.partition=inferred`` and
``trainer.select=worst_inferred_group`` then use. Validation's parts come from the same
reference model: its error split, its own EIIL assignment, or the training clusters' ``predict``.
No group label is read until :func:`inferred_report` compares the parts with the true groups.

The reference model is ``groups.reference.checkpoint`` (a trained run's folder, with
``config.yaml`` and ``checkpoints/best.pt``, or a checkpoint file whose model matches
``cfg.model``) or else an ERM stage (:mod:`robustml.pipeline.stages`) trained first with the
run's data, model, optimizer and trainer settings for ``groups.reference.max_steps`` steps (at
most the run's own), the last step kept (no group labels). That stage is a folder under
``groups.reference.cache_dir`` named by the hash of what it trains, so a sweep over the second
stage trains it once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from robustml.data.contract import DataSplits, GroupedDataset
from robustml.features import cached_features
from robustml.groups import (InferredGroups, cluster_names, cluster_within_classes, eiil_environments,
                             error_split, error_split_names, partition_agreement)
from robustml.health import Finding, Thresholds
from robustml.losses import predict
from robustml.models.forward import iter_outputs
from robustml.report.tables import markdown_table, percent
from robustml.pipeline.build import max_steps_for, resolve_device
from robustml.pipeline.labels import inference_method
from robustml.pipeline.stages import erm_stage_config, load_trained_model, stage_key, train_stage

def _uses_of_inferred(cfg: DictConfig) -> list[str]:
    uses = [f"{key}=inferred" for key in ("loss.partition", "sampler.partition")
            if OmegaConf.select(cfg, key) == "inferred"]
    if cfg.trainer.select == "worst_inferred_group":
        uses.append("trainer.select=worst_inferred_group")
    return uses


def dataset_logits(model: torch.nn.Module, dataset: GroupedDataset, batch_size: int = 4096) -> torch.Tensor:
    """Return ``model``'s logits on every example of ``dataset`` in order, shape ``(N, C)``, float32."""
    return torch.cat([logits.float() for logits in iter_outputs(model, dataset, batch_size=batch_size)])


def reference_config(cfg: DictConfig, num_train: int) -> DictConfig:
    """Return the config of the ERM reference stage of ``cfg`` (see the module docstring).

    Its steps are ``groups.reference.max_steps``, at most the run's own (``num_train`` examples
    turn ``trainer.epochs`` into steps).
    """
    steps = min(int(cfg.groups.reference.max_steps), max_steps_for(cfg, num_train))
    return erm_stage_config(cfg, suffix="reference", max_steps=steps)


def trained_reference(cfg: DictConfig, num_train: int) -> tuple[Path, str]:
    """Train the ERM reference stage of ``cfg`` unless its cache holds it; return its folder and status.

    Returns ``(folder, "trained" | "reused")``; the folder is a stage folder of
    :func:`~robustml.pipeline.stages.train_stage` (``config.yaml``, ``checkpoints/best.pt``, and
    ``stage.json`` once finished). A stage that was stopped resumes from its last checkpoint.
    """
    ref_cfg = reference_config(cfg, num_train)
    folder = Path(cfg.groups.reference.cache_dir) / stage_key(ref_cfg)
    return folder, train_stage(ref_cfg, folder)


def _reference(cfg: DictConfig, splits: DataSplits, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
    source = cfg.groups.reference.checkpoint
    if source is None:
        folder, status = trained_reference(cfg, len(splits.train))
        source, details = folder, {"reference": f"ERM stage, {status}: {folder}"}
    else:
        details = {"reference": f"given checkpoint: {source}"}
    return load_trained_model(source, cfg.model, splits, device), details


# EIIL's objective is symmetric in the two environments, and validation gets its own assignment.
EIIL_VAL_NOTE = ("EIIL assigns validation environments by its own run on validation (the IRMv1 "
                 "penalty is the same with the two environments swapped): env=0 on validation need "
                 "not correspond to env=0 on train.\n\n")


def infer_partitions(cfg: DictConfig, model: torch.nn.Module, splits: DataSplits,
                     details: dict[str, Any]) -> dict[str, InferredGroups]:
    """Return ``{"train", "val"}`` partitions of the method ``cfg.groups._target_`` names, from the
    reference ``model``."""
    groups, method = cfg.groups, inference_method(cfg)
    train, val = splits.train, splits.val
    names = train.class_names
    if method == "error_split":
        ids = {name: error_split(predict(dataset_logits(model, split)).cpu(), split.y.cpu(),
                                 num_classes=split.num_classes)
               for name, split in (("train", train), ("val", val))}
        num_parts, part_names = 2 * train.num_classes, error_split_names(names)
    elif method == "eiil":
        ids = {}
        for name, split in (("train", train), ("val", val)):
            result = eiil_environments(dataset_logits(model, split).cpu(), split.y.cpu(),
                                       num_steps=groups.num_steps, lr=groups.lr, seed=cfg.seed)
            ids[name] = result.env
            details[f"{name} IRMv1 penalty of the reference model on the inferred environments"] = result.penalty
        num_parts, part_names = 2, ["env=0", "env=1"]
    else:
        cache_dir = Path(groups.reference.cache_dir) / "features"
        feats = {name: np.asarray(cached_features(model, split, cache_dir, progress=False))
                 for name, split in (("train", train), ("val", val))}
        candidates = groups.num_clusters
        candidates = int(candidates) if isinstance(candidates, int) else [int(k) for k in candidates]
        clusters = cluster_within_classes(feats["train"], train.y.cpu().numpy(),
                                          num_classes=train.num_classes, num_clusters=candidates,
                                          method=groups.clusterer,
                                          num_components=groups.num_components, seed=cfg.seed)
        ids = {name: torch.from_numpy(clusters.predict(feats[name], split.y.cpu().numpy()))
               for name, split in (("train", train), ("val", val))}
        num_parts, part_names = clusters.num_parts, cluster_names(names, clusters.num_clusters)
        details["clusters per class (silhouette)"] = ", ".join(
            f"y={c}: {k}" + (f" ({', '.join(f'{j}: {s:.3f}' for j, s in scores.items())})" if scores else "")
            for c, k, scores in zip(names, clusters.num_clusters, clusters.silhouette))
    return {name: InferredGroups(ids[name].to(split.device), num_parts, part_names, method, details)
            for name, split in (("train", train), ("val", val))}


def with_inferred_groups(cfg: DictConfig, splits: DataSplits) -> DataSplits:
    """Return ``splits`` with an ``inferred`` partition on train and val when ``cfg.groups`` asks for
    one (:meth:`~robustml.data.GroupedDataset.with_partition`); ``splits`` itself when it does not.

    Raises:
        ValueError: When a setting uses the inferred partition but ``groups`` is null, or the
            method is unknown.
    """
    groups = OmegaConf.select(cfg, "groups")
    if groups is None:
        uses = _uses_of_inferred(cfg)
        if uses:
            raise ValueError(f"{uses[0]} needs inferred groups, but groups is null; choose a method "
                             "with groups=error_split|eiil|clustering")
        return splits
    inference_method(cfg)  # an unknown groups._target_ stops before the reference model trains
    device = resolve_device(cfg.trainer.device)
    model, details = _reference(cfg, splits, device)
    parts = infer_partitions(cfg, model, splits, details)
    return DataSplits(splits.train.with_partition("inferred", parts["train"]),
                      splits.val.with_partition("inferred", parts["val"]), splits.test,
                      description=splits.description)


def inferred_report(splits: DataSplits) -> tuple[dict[str, Any], list[str]]:
    """Return metrics and a markdown section comparing the inferred parts with the true groups."""
    train = splits.train
    if train.inferred is None:
        return {}, []
    part = train.inferred
    metrics: dict[str, Any] = {"inferred/method": part.method, "inferred/num_parts": part.num_parts}
    rows, parts_rows = [], []
    for name, split in (("train", splits.train), ("val", splits.val)):
        agreement = partition_agreement(split.inferred.ids.cpu().numpy(), split.group.cpu().numpy(),
                                        num_groups=split.num_groups)
        metrics.update({f"{name}/inferred_{key}": value for key, value in agreement.items()})
        counts = split.inferred.counts().tolist()
        metrics.update({f"{name}/inferred_count_{k}": c for k, c in enumerate(counts)})
    for g, group_name in enumerate(train.group_names):
        rows.append([g, group_name] + [percent(metrics[f"{s}/inferred_{kind}_group_{g}"])
                                       for s in ("train", "val") for kind in ("purity", "share")])
    for k, part_name in enumerate(part.names):
        parts_rows.append([k, part_name, metrics[f"train/inferred_count_{k}"], metrics[f"val/inferred_count_{k}"]])
    text = (f"## Inferred groups ({part.method}, no group labels)\n\n"
            + "".join(f"- {key}: {value}\n" for key, value in part.details.items())
            + f"- adjusted Rand index with the true groups: train {metrics['train/inferred_adjusted_rand']:.3f}, "
            f"val {metrics['val/inferred_adjusted_rand']:.3f}\n\n"
            + markdown_table(["part", "name", "train count", "val count"], parts_rows) + "\n\n"
            + (EIIL_VAL_NOTE if part.method == "eiil" else "")
            + "Per true group: purity = share of its main inferred part (the part holding most of the "
            "group) that belongs to the group; share = fraction of the group inside that part.\n\n"
            + markdown_table(["group", "name", "train purity (%)", "train share (%)", "val purity (%)",
                              "val share (%)"], rows))
    return metrics, [text]


def health(splits: DataSplits, *, thresholds: Thresholds) -> list[Finding]:
    """Group inference's check: a class the inferred partition did not split (one part holds
    nearly all of it), or a part too small to train or select on."""
    train = splits.train
    if train.inferred is None:
        return []
    ids, num_parts, names = train.inferred.ids.cpu(), train.inferred.num_parts, train.inferred.names
    problems = []
    for c, class_name in enumerate(train.class_names):
        parts = torch.bincount(ids[train.y.cpu() == c], minlength=num_parts)
        if parts.sum() and parts.max() >= thresholds.inferred_max_class_share * parts.sum():
            problems.append(f"part {int(parts.argmax())} ({names[int(parts.argmax())]}) holds "
                            f"{100 * int(parts.max()) / int(parts.sum()):.0f}% of class {class_name}")
    sizes = torch.bincount(ids, minlength=num_parts)
    problems += [f"part {k} ({names[k]}) holds {int(n)} of {len(train)} training examples"
                 for k, n in enumerate(sizes.tolist()) if 0 < n < thresholds.inferred_min_part * len(train)]
    if not problems:
        return []
    return [Finding("inferred_groups", 2,
                    f"the inferred groups may not separate the minority: {'; '.join(problems)}; try "
                    "another groups.reference.max_steps, or groups=clustering with other "
                    "groups.num_clusters")]
