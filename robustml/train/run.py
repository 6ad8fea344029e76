"""``run(cfg)``: build everything from a Hydra config, train, select, evaluate and report.

``main`` is the ``robustml-train`` console script. Hydra lives here and in ``scripts/`` only.
"""

from __future__ import annotations

import sys
import math
import random
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra import compose, initialize_config_module
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError

from robustml.augment import CounterfactualAugment, counterfactual_stress_test, render_stress_table
from robustml.augment.counterfactual import dataset_rule
from robustml.data.contract import DataSplits, GroupedTensorDataset
from robustml.data.samplers import GroupBalancedSampler, balanced_sample_weights
from robustml.losses import (CounterfactualConsistencyPenalty, GroupLoss, PenalizedLoss, num_outputs_for,
                             predict)
from robustml.report import (plot_group_accuracy, plot_history, render_report_md, write_metrics_json,
                             write_report_md)
from robustml.train.evaluate import evaluate
from robustml.train.clean import CleanedData, clean_splits, main_clean
from robustml.train.instantiate import build_from, runtime_kwargs
from robustml.train.loop import Trainer, TrainSettings
from robustml.train.memory import keep_freed_memory


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch, and ask torch for deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def resolve_device(name: str) -> torch.device:
    """Return the device for ``trainer.device``: ``auto`` picks CUDA when available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"trainer.device={name!r} but CUDA is not available; use 'cpu' or 'auto'")
    return device


def describe_group_label_use(cfg: DictConfig) -> str:
    """Say what group labels were used for, for the report (training, model selection, evaluation)."""
    uses = []
    if cfg.loss.partition == "group" and cfg.loss.criterion._target_.rsplit(".", 1)[-1] != "ERMLoss":
        uses.append("the loss used group labels (partition=group)")
    if cfg.loss.partition == "env":
        uses.append("the loss used environment labels (partition=env), not group labels")
    if cfg.sampler.kind != "uniform":
        uses.append(f"{cfg.sampler.kind} sampling used {cfg.sampler.partition} labels")
    if cfg.augment is not None:
        uses.append("counterfactual augmentation used the spurious-attribute labels (attr)")
    if cfg.cleaning is not None and (cfg.cleaning.guard.max_fraction < 1 or cfg.cleaning.guard.protect_groups):
        uses.append("the label-cleaning guard used training group labels")
    training = "; ".join(uses) or "not used"
    selection = {"worst_group": "validation group labels (selection on val worst-group accuracy)",
                 "avg": "not used (selection on val average accuracy)",
                 "last": "not used (last checkpoint)"}[cfg.trainer.select]
    return (f"- Training: {training}.\n- Model selection: {selection}.\n"
            "- Evaluation: group labels of val and test, to report per-group accuracy.")


def build_sampling(cfg: DictConfig, train: GroupedTensorDataset) -> tuple[Any, torch.Tensor | None]:
    """Return ``(sampler, sample_weights)`` for ``cfg.sampler`` (uniform, group_balanced, reweight)."""
    partitions = {"group": (train.group, train.num_groups), "class": (train.y, train.num_classes)}
    if cfg.sampler.partition not in partitions:
        raise ValueError(f"sampler.partition must be one of {sorted(partitions)}, got "
                         f"{cfg.sampler.partition!r}")
    ids, num_parts = partitions[cfg.sampler.partition]
    if cfg.sampler.kind == "uniform":
        return None, None
    if cfg.sampler.kind == "group_balanced":
        ids = ids.cpu()
        return (lambda generator: torch.as_tensor(list(GroupBalancedSampler(ids, num_parts,
                                                                            generator=generator)))), None
    if cfg.sampler.kind == "reweight":
        return None, balanced_sample_weights(ids, num_parts)
    raise ValueError(f"sampler.kind must be one of ['group_balanced', 'reweight', 'uniform'], got "
                     f"{cfg.sampler.kind!r}")


def build_augment(cfg: DictConfig, train: GroupedTensorDataset,
                  criterion: GroupLoss) -> tuple[CounterfactualAugment | None, GroupLoss]:
    """Return the counterfactual batch transform for ``cfg.augment`` and the (possibly) wrapped loss.

    A positive ``augment.consistency_weight`` adds the counterfactual logit-pairing penalty to the
    loss; it needs ``augment.mode=paired`` (originals followed by their counterfactuals).
    """
    if cfg.augment is None:
        return None, criterion
    generator = torch.Generator(device=train.x.device).manual_seed(cfg.seed)
    augment = CounterfactualAugment(dataset_rule(train), num_attrs=train.num_attrs,
                                    mode=cfg.augment.mode, p=cfg.augment.p, generator=generator)
    weight = float(cfg.augment.consistency_weight)
    if weight > 0:
        if cfg.augment.mode != "paired":
            raise ValueError(f"augment.consistency_weight={weight} needs augment.mode=paired, got "
                             f"{cfg.augment.mode!r}")
        consistency = CounterfactualConsistencyPenalty(criterion.num_groups).to(train.x.device)
        criterion = PenalizedLoss(criterion.num_groups, criterion, {"consistency": consistency},
                                  weights={"consistency": weight}, rescale=False)
    return augment, criterion


def stress_test(model: torch.nn.Module, splits: DataSplits) -> tuple[dict[str, float], list[str]]:
    """Run the counterfactual stress test on val and test when the dataset declares a rule.

    Returns ``{split}/cf_*`` metrics and markdown tables for the report (empty when no rule).
    """
    if splits.test.counterfactual is None:
        return {}, []
    metrics, tables = {}, []
    model.eval()
    with torch.no_grad():
        for name, split in (("val", splits.val), ("test", splits.test)):
            result = counterfactual_stress_test(lambda x: predict(model(x)), split,
                                                generator=torch.Generator().manual_seed(0))
            metrics.update({f"{name}/{key}": value for key, value in result.items()})
            tables.append(f"## Counterfactual stress test: {name}\n\n"
                          "Accuracy on copies with only the spurious attribute changed, and the "
                          "fraction of predictions that flip.\n\n"
                          + render_stress_table(result, split.group_names))
    return metrics, tables


def _max_steps(cfg: DictConfig, num_train: int) -> int:
    if cfg.trainer.epochs is None:
        return int(cfg.trainer.max_steps)
    batch_size = cfg.trainer.batch_size or num_train
    return int(cfg.trainer.epochs) * math.ceil(num_train / batch_size)


def build(cfg: DictConfig, run_dir: Path) -> tuple[Trainer, DataSplits, CleanedData | None]:
    """Instantiate data (cleaned if ``cfg.cleaning``), model, loss, optimizer and scheduler."""
    device = resolve_device(cfg.trainer.device)
    splits: DataSplits = build_from(cfg, "data")
    cleaned = None
    if cfg.cleaning is not None:
        cleaned = clean_splits(cfg, splits, run_dir)
        splits = DataSplits(cleaned.train, splits.val, splits.test, description=splits.description)
    # In-memory splits move to the device; on-disk splits keep their metadata on the CPU and
    # the trainer moves each DataLoader batch.
    splits = DataSplits(*(split.to(device) for _, split in splits.items()),
                        description=splits.description)
    num_outputs = num_outputs_for(splits.num_classes)
    model = build_from(cfg, "model", input_shape=splits.input_shape, num_outputs=num_outputs).to(device)
    ids, num_parts = splits.train.partition(cfg.loss.partition)
    available = {"num_groups": num_parts, "group_counts": torch.bincount(ids, minlength=num_parts)}
    criterion = build_from(cfg, "loss.criterion", **runtime_kwargs(cfg.loss.criterion, available))
    criterion = criterion.to(device)
    optimizer = build_from(cfg, "optimizer")(params=model.parameters())
    settings = TrainSettings(
        max_steps=_max_steps(cfg, len(splits.train)), batch_size=cfg.trainer.batch_size,
        eval_every=cfg.trainer.eval_every, chunk_size=cfg.trainer.chunk_size,
        precision=cfg.trainer.precision, select=cfg.trainer.select, l2_weight=cfg.trainer.l2_weight,
        reset_optimizer_at_anneal=cfg.trainer.reset_optimizer_at_anneal, seed=cfg.seed,
        resume=cfg.trainer.resume, progress=cfg.trainer.progress,
        num_workers=cfg.trainer.num_workers, pin_memory=cfg.trainer.pin_memory,
        persistent_workers=cfg.trainer.persistent_workers,
        eval_batch_size=cfg.trainer.eval_batch_size)
    scheduler = None
    if cfg.scheduler is not None:
        scheduler = build_from(cfg, "scheduler")(optimizer, total_steps=settings.max_steps)
    sampler, sample_weights = build_sampling(cfg, splits.train)
    if cleaned is not None and cleaned.weights is not None:
        weights = cleaned.weights.to(device)
        sample_weights = weights if sample_weights is None else sample_weights * weights
    augment, criterion = build_augment(cfg, splits.train, criterion)
    trainer = Trainer(model, criterion, optimizer, splits.train, splits.val, settings, run_dir=run_dir,
                      partition=cfg.loss.partition, scheduler=scheduler, augment=augment,
                      sampler=sampler, sample_weights=sample_weights)
    return trainer, splits, cleaned


def run(cfg: DictConfig, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Train, select on validation, evaluate on test and write the run's outputs; return metrics.

    Outputs in ``run_dir`` (Hydra's run directory by default): ``config.yaml`` (resolved),
    ``metrics.jsonl``, ``metrics.json``, ``report.md``, ``plots/`` and ``checkpoints/``.
    """
    run_dir = Path(run_dir if run_dir is not None else HydraConfig.get().runtime.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    keep_freed_memory()   # full-batch steps reuse their large buffers instead of faulting them in
    seed_everything(cfg.seed)
    trainer, splits, cleaned = build(cfg, run_dir)
    result = trainer.fit()
    trainer.load_best()

    final: dict[str, Any] = {"selection": cfg.trainer.select, "selected_step": result["best_step"],
                             "steps": trainer.step, "train_seconds": round(result["elapsed"], 3)}
    for name, split in splits.items():
        final.update(evaluate(trainer.model, split, prefix=name, train_counts=trainer.train_counts,
                              precision=cfg.trainer.precision))
    stress, stress_tables = stress_test(trainer.model, splits)
    final.update(stress)
    if cleaned is not None:
        final.update(cleaned.summary)
        stress_tables.insert(0, cleaned.report_md)
    write_metrics_json(run_dir / "metrics.json", final)
    report_args = dict(
        title=f"{cfg.name}: worst-group report", final=final, group_names=splits.group_names,
        splits=("train", "val", "test"), group_label_use=describe_group_label_use(cfg),
        notes=[splits.description,
               f"Selected step {result['best_step']} of {trainer.step} by `{cfg.trainer.select}`."],
        extra_tables=stress_tables)
    write_report_md(run_dir / "report.md", **report_args)
    plots = run_dir / "plots"
    plot_group_accuracy(plots / "group_accuracy.png", final, splits.group_names, splits=("val", "test"))
    plot_history(plots / "worst_group_accuracy.png", result["history"],
                 ["train/acc_worst_group", "val/acc_worst_group", "val/acc_avg"],
                 title="Accuracy over training", ylabel="accuracy")
    plot_history(plots / "group_weights.png", result["history"],
                 [f"train/q_{g}" for g in range(trainer.criterion.num_groups)],
                 title="Group weights over training", ylabel="q")
    print(render_report_md(**report_args))
    print(f"Outputs in {run_dir}")
    return final


def unknown_key_hint(overrides: list[str]) -> str | None:
    """Return a message listing the valid keys when an override names a key the config lacks.

    Hydra alone reports ``Key 'x' is not in struct``; this names the valid keys beside it. Returns
    ``None`` when the overrides compose (or fail for another reason, which Hydra then reports).
    """
    with initialize_config_module(config_module="robustml.configs", version_base="1.3"):
        try:
            compose(config_name="train", overrides=overrides)
            return None
        except ConfigCompositionException as error:
            cause = error.__cause__
            if not isinstance(cause, ConfigAttributeError) or not cause.full_key:
                return None
        parent = cause.full_key.rpartition(".")[0]
        others = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] != cause.full_key]
        try:
            node = OmegaConf.select(compose(config_name="train", overrides=others), parent) \
                if parent else compose(config_name="train", overrides=others)
        except Exception:  # the other overrides fail too: let Hydra report them
            return None
    valid = ", ".join(sorted(str(k) for k in node.keys())) if isinstance(node, DictConfig) else ""
    return f"unknown config key '{cause.full_key}'; valid keys under '{parent or '<root>'}': {valid}"


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def _hydra_main(cfg: DictConfig) -> float:
    return float(run(cfg)["val/acc_worst_group"])


@hydra.main(version_base="1.3", config_path="../configs", config_name="clean")
def clean_main(cfg: DictConfig) -> None:
    """Console entry point ``robustml-clean``: find label issues only, write the cleaning report."""
    seed_everything(cfg.seed)
    main_clean(cfg, build_from(cfg, "data"), Path(HydraConfig.get().runtime.output_dir))


def main() -> float | None:
    """Console entry point ``robustml-train``; returns val worst-group accuracy for sweepers."""
    overrides = [a for a in sys.argv[1:] if "=" in a and not a.startswith(("-", "hydra.", "hydra/"))]
    hint = unknown_key_hint(overrides)
    if hint is not None:
        sys.exit(f"Error: {hint}")
    return _hydra_main()
