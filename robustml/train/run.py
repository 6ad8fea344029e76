"""``run(cfg)``: build everything from a config, train, select on validation, evaluate and report.

The console scripts that call it (``robustml-train``, ``robustml-clean``) live in
:mod:`robustml.train.cli`.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from robustml.augment import CounterfactualAugment, counterfactual_stress_test, render_stress_table
from robustml.augment.counterfactual import dataset_rule
from robustml.data.contract import DataSplits, GroupedTensorDataset
from robustml.data.loading import eval_loader
from robustml.data.samplers import GroupBalancedSampler, balanced_sample_weights
from robustml.losses import (CounterfactualConsistencyPenalty, GroupLoss, PenalizedLoss, num_outputs_for,
                             predict)
from robustml.report import (plot_group_accuracy, plot_history, render_console_summary,
                             write_metrics_json, write_report_md, write_text)
from robustml.train.evaluate import evaluate
from robustml.train.instantiate import build_from, runtime_kwargs
from robustml.train.loop import Trainer, TrainSettings
from robustml.train.memory import keep_freed_memory
from robustml.train.naming import register_run_name_resolver
from robustml.validation import check_int

if TYPE_CHECKING:
    from robustml.train.clean import CleanedData

register_run_name_resolver()


def seed_everything(seed: int, device: torch.device | str = "cpu") -> None:
    """Seed Python, numpy and torch; on CUDA, also ask torch for deterministic algorithms.

    The CPU kernels robustml uses are deterministic for a given thread count (exact resume is
    tested on them); the switch matters for CUDA's atomics-based kernels. It is left off on the
    CPU because it imports torch's compiler stack (``torch._inductor``), about 2 s per run.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.device(device).type == "cuda":
        torch.use_deterministic_algorithms(True, warn_only=True)


def resolve_device(name: str) -> torch.device:
    """Return the device for ``trainer.device``: ``auto`` picks CUDA when available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"trainer.device={name!r} but CUDA is not available; use 'cpu' or 'auto'")
    return device


SELECTION_LABELS = {"worst_group": "validation group labels (val worst-group accuracy)",
                    "avg": "none (val average accuracy)",
                    "last": "none (the last checkpoint)"}


def describe_group_label_use(cfg: DictConfig) -> dict[str, str]:
    """Say what group labels were used for: ``{"training", "selection", "evaluation"}`` in words."""
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
    return {"training": "; ".join(uses) or "none",
            "selection": SELECTION_LABELS[cfg.trainer.select],
            "evaluation": "group labels of val and test, to report per-group accuracy"}


def render_group_label_use(uses: dict[str, str]) -> str:
    """Render :func:`describe_group_label_use` as the report's bullet list."""
    return (f"- Training: {uses['training']}.\n- Model selection: {uses['selection']}.\n"
            f"- Evaluation: {uses['evaluation']}.")


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
    generator = torch.Generator(device=train.device).manual_seed(cfg.seed)
    augment = CounterfactualAugment(dataset_rule(train), num_attrs=train.num_attrs,
                                    mode=cfg.augment.mode, p=cfg.augment.p, generator=generator)
    weight = float(cfg.augment.consistency_weight)
    if weight > 0:
        if cfg.augment.mode != "paired":
            raise ValueError(f"augment.consistency_weight={weight} needs augment.mode=paired, got "
                             f"{cfg.augment.mode!r}")
        consistency = CounterfactualConsistencyPenalty(criterion.num_groups).to(train.device)
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
        from robustml.train.clean import clean_splits  # cleanlab and scikit-learn: only when asked
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
        eval_batch_size=cfg.trainer.eval_batch_size, max_loss=cfg.trainer.max_loss)
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


def _shown_path(path: Path) -> str:
    """Return ``path`` relative to the working directory when it lies under it (as typed), else whole."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def check_run_config(cfg: DictConfig) -> None:
    """Raise naming the key when a top-level run setting has the wrong type or range.

    Values from the command line arrive as YAML scalars: ``seed=abc`` is a string and
    ``trainer.max_steps=20.7`` a float; both are refused here, before anything is built.
    """
    check_int("seed", cfg.seed)
    check_int("trainer.max_steps", cfg.trainer.max_steps, minimum=1)
    if cfg.trainer.epochs is not None:
        check_int("trainer.epochs", cfg.trainer.epochs, minimum=1)


def run(cfg: DictConfig, run_dir: str | Path | None = None, *, summary: str = "full") -> dict[str, Any]:
    """Train, select on validation, evaluate on test and write the run's outputs; return metrics.

    Outputs in ``run_dir`` (Hydra's run directory by default): ``config.yaml`` (resolved),
    ``metrics.jsonl``, ``metrics.json``, ``report.md``, ``plots/`` and ``checkpoints/``.

    Args:
        cfg: The composed config (``configs/train.yaml``).
        run_dir: Where outputs go; Hydra's run directory when ``None``.
        summary: What to print at the end: ``"full"`` (the one-screen summary of
            :func:`~robustml.report.render_console_summary`), ``"line"`` (one line, for sweeps)
            or ``"none"``.
    """
    if summary not in ("full", "line", "none"):
        raise ValueError(f"summary must be 'full', 'line' or 'none', got {summary!r}")
    check_run_config(cfg)
    if run_dir is None:
        from hydra.core.hydra_config import HydraConfig
        run_dir = HydraConfig.get().runtime.output_dir
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    keep_freed_memory()   # full-batch steps reuse their large buffers instead of faulting them in
    seed_everything(cfg.seed, resolve_device(cfg.trainer.device))
    trainer, splits, cleaned = build(cfg, run_dir)
    result = trainer.fit()
    trainer.load_best()

    final: dict[str, Any] = {"selection": cfg.trainer.select, "selected_step": result["best_step"],
                             "steps": trainer.step, "train_seconds": round(result["elapsed"], 3)}
    for name, split in splits.items():
        loader = None if split.in_memory else eval_loader(split, trainer.settings.loader)
        final.update(evaluate(trainer.model, split, prefix=name, train_counts=trainer.train_counts,
                              precision=cfg.trainer.precision, loader=loader))
    stress, stress_tables = stress_test(trainer.model, splits)
    final.update(stress)
    if cleaned is not None:
        final.update(cleaned.summary)
        stress_tables.insert(0, cleaned.report_md)
    write_metrics_json(run_dir / "metrics.json", final)
    uses = describe_group_label_use(cfg)
    write_report_md(
        run_dir / "report.md", title=f"{cfg.name}: worst-group report", final=final,
        group_names=splits.group_names, splits=("train", "val", "test"),
        group_label_use=render_group_label_use(uses),
        notes=[splits.description,
               f"Selected step {result['best_step']} of {trainer.step} by `{cfg.trainer.select}`."],
        extra_tables=stress_tables)
    plots = run_dir / "plots"
    plot_group_accuracy(plots / "group_accuracy.png", final, splits.group_names, splits=("val", "test"))
    plot_history(plots / "worst_group_accuracy.png", result["history"],
                 ["train/acc_worst_group", "val/acc_worst_group", "val/acc_avg"],
                 title="Accuracy over training", ylabel="accuracy")
    plot_history(plots / "group_weights.png", result["history"],
                 [f"train/q_{g}" for g in range(trainer.criterion.num_groups)],
                 title="Group weights over training", ylabel="q")
    if summary == "full":
        print(render_console_summary(final, title=f"{cfg.name} (seed {cfg.seed})",
                                     group_names=splits.group_names, group_label_use=uses,
                                     report_path=_shown_path(run_dir / "report.md"),
                                     attr_key=splits.test.attr_key))
    elif summary == "line":
        print(f"{cfg.name} (seed {cfg.seed}): test worst-group "
              f"{100 * final['test/acc_worst_group']:.1f}%, average {100 * final['test/acc_avg']:.1f}%"
              f"; outputs in {run_dir}")
    return final
