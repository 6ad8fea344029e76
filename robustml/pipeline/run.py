"""``run(cfg)``: one run, its stages spelled out in order: clean labels, infer groups, train
(JTT's stage one first), refit a last layer (DFR, AFR, DPE), stress test, report.

Pieces are built from the config in :mod:`robustml.pipeline.build`; each method is one module of
this package (:mod:`~robustml.pipeline.clean`, :mod:`~robustml.pipeline.inferred`,
:mod:`~robustml.pipeline.jtt`, and the last-layer heads :mod:`~robustml.pipeline.dfr`,
:mod:`~robustml.pipeline.afr`, :mod:`~robustml.pipeline.dpe` in the step of
:mod:`~robustml.pipeline.heads`); the console scripts that call
``run`` live in :mod:`robustml.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, OmegaConf

from robustml.augment import counterfactual_stress_test, render_stress_table
from robustml.data.contract import DataSplits
from robustml.data.loading import eval_loader
from robustml.losses import predict
from robustml.pipeline import afr, jtt
from robustml.health import as_metrics, console_lines, from_metrics, report_section
from robustml.pipeline.build import RunData, build_splits, build_trainer, resolve_device
from robustml.pipeline.instantiate import config_keys
from robustml.pipeline.health import CHECKS, HEADS, run_checks
from robustml.pipeline.heads import head_stage, reuse_base_run
from robustml.pipeline.inferred import inferred_report, with_inferred_groups
from robustml.pipeline.labels import describe_group_label_use, method_name, render_group_label_use
from robustml.pipeline.trackers import finish_trackers, open_trackers
from robustml.report import (plot_group_accuracy, plot_history, render_console_summary,
                             write_metrics_json, write_report_md, write_text)
from robustml.train import distributed
from robustml.train.rng import seed_everything
from robustml.validation import check_int

if TYPE_CHECKING:
    from robustml.train.loop import Trainer


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


def _shown_path(path: Path) -> str:
    """Return ``path`` relative to the working directory when it lies under it (as typed), else whole."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# What debug=smoke (cfg.smoke) sets in the stages before the final run, where the config has them.
SMOKE_STAGES = {"method.stage_one.max_steps": 2, "method.stage_one.epochs": None,
                "groups.num_steps": 20, "method.num_epochs": 2, "method.epochs": 1,
                "method.num_members": 2, "method.batch_size": 2}


def shorten_for_smoke(cfg: DictConfig) -> None:
    """Under ``debug=smoke``, set :data:`SMOKE_STAGES` in ``cfg`` (each key only where it exists)."""
    if not cfg.get("smoke"):
        return
    for key, value in SMOKE_STAGES.items():
        if OmegaConf.select(cfg, key, default="<absent>") != "<absent>":
            OmegaConf.update(cfg, key, value)


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
    shorten_for_smoke(cfg)
    run_dir = distributed.agree_on_run_dir(_run_dir(run_dir))  # under torchrun: rank 0's folder
    main = distributed.is_main()  # the one process that writes files and prints
    if cfg.trainer.resume and not (run_dir / "checkpoints" / "last.pt").is_file():
        raise FileNotFoundError(
            f"trainer.resume=true but there is no checkpoint at {run_dir / 'checkpoints' / 'last.pt'}; "
            "pass the directory of the run to resume as hydra.run.dir=<run dir>, or drop "
            "trainer.resume=true to start a new run (a run killed in a first stage, JTT's stage one or "
            "a reference ERM stage, has no checkpoint yet: run it again without trainer.resume=true, "
            "and the stage resumes from its own)")
    if main:
        write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    trackers = open_trackers(cfg, run_dir) if main else None  # logger=...: checked before training
    try:
        final, data, trainer, result, extra_tables = _stages(cfg, run_dir)
        uses = describe_group_label_use(cfg)
        if not main:
            return final  # the same metrics on every process; rank 0 writes and prints them
        splits = data.splits
        _write_outputs(cfg, run_dir, final, result, trainer, splits, uses, extra_tables)
    except BaseException as err:
        if trackers is not None:
            trackers.finish(None, "KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
        raise
    where = finish_trackers(trackers, cfg, run_dir, final, trainer, data)  # after the run's own files
    if summary == "full":
        print(render_console_summary(final, title=f"{cfg.name} (seed {cfg.seed})",
                                     group_names=splits.group_names, group_label_use=uses,
                                     report_path=_shown_path(run_dir / "report.md"),
                                     attr_key=splits.test.attr_key,
                                     health=console_lines(from_metrics(final))))
        for line in where:
            print(line)
    elif summary == "line":
        print(f"{cfg.name} (seed {cfg.seed}): test worst-group "
              f"{100 * final['test/acc_worst_group']:.1f}%, average {100 * final['test/acc_avg']:.1f}%"
              f"; outputs in {run_dir}")
    return final


def _stages(cfg: DictConfig, run_dir: Path) -> tuple[dict[str, Any], RunData, Trainer, dict[str, Any],
                                                   list[str]]:
    """Run the stages in order: JTT's stage one, data (labels cleaned), inferred groups, training
    (or a base run's checkpoint; AFR's on part of the training split), evaluation of the selected
    model, the last layer of DFR, AFR or DPE, the health checks (:mod:`robustml.pipeline.health`).

    Returns the final metrics, the data, the trainer, its fit result and the extra report tables.
    """
    method = method_name(cfg)
    stage_one = jtt.jtt_stage_one(cfg) if method == "jtt" else None  # trained, or reused from its cache
    device = resolve_device(cfg.trainer.device)
    seed_everything(cfg.seed, device)
    data = build_splits(cfg, run_dir)                # cleaning=...: labels cleaned first
    data.splits = with_inferred_groups(cfg, data.splits)  # groups=...: parts from a reference model
    seed_everything(cfg.seed, device)  # the same draws from here whether stages ran or were reused
    splits = data.splits
    if method == "afr":  # AFR's base model trains on part of the training split
        data.splits = afr.base_training_split(cfg, splits)
    trainer = build_trainer(cfg, data, run_dir,
                            sampling=None if stage_one is None else stage_one.sampling(cfg, data.splits.train))
    data.splits = splits  # evaluation, features and reports: the whole training split
    if method in HEADS and cfg.method.base_run is not None:
        result = reuse_base_run(cfg, trainer.model, trainer.best_path)
    else:
        with config_keys():  # the engine names its arguments; the run's error names config keys
            result = trainer.fit()
            trainer.load_best()
    final, extra_tables = _evaluate_selected(cfg, trainer, data, result)
    if stage_one is not None:
        final.update(stage_one.summary)
        extra_tables.insert(0, stage_one.report_md)
    if method in HEADS:
        final, extra_tables = head_stage(cfg, trainer.model, data, run_dir, final, extra_tables,
                                         HEADS[method].fit, method)
    findings = run_checks(cfg, trainer, data, final, result, stage_one)  # health: did it work?
    final.update(as_metrics(findings))
    extra_tables.insert(0, report_section(findings, CHECKS))
    return final, data, trainer, result, extra_tables


def _run_dir(run_dir: str | Path | None) -> Path:
    """Return the run's output folder (Hydra's when ``None``), created."""
    if run_dir is None:
        from hydra.core.hydra_config import HydraConfig
        run_dir = HydraConfig.get().runtime.output_dir
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _evaluate_selected(cfg: DictConfig, trainer: Trainer, data: RunData,
                       result: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Evaluate the selected model on every split; return the final metrics and extra report tables."""
    splits, cleaned = data.splits, data.cleaned
    final: dict[str, Any] = {"selection": cfg.trainer.select, "selected_step": result["best_step"],
                             "steps": result["steps"], "train_seconds": round(result["elapsed"], 3)}
    if "skipped_steps" in result:  # fp16: optimizer steps the loss scaler skipped
        final["train/skipped_steps"] = result["skipped_steps"]
    for name, split in splits.items():
        loader = None if split.in_memory else eval_loader(split, trainer.settings.loader)
        final.update(distributed.evaluate_split(
            trainer.model, split, prefix=name, train_counts=trainer.train_counts,
            precision=cfg.trainer.precision, settings=trainer.settings.loader, loader=loader))
    stress, tables = stress_test(trainer.model, splits)
    final.update(stress)
    inferred, inferred_tables = inferred_report(splits)
    final.update(inferred)
    tables.extend(inferred_tables)
    if cleaned is not None:
        final.update(cleaned.summary)
        # The train-mix averages weight groups by the training data's counts (Trainer.train_counts).
        final["train_mix_counts"] = "training split before cleaning"
        tables.insert(0, cleaned.report_md)
    return final, tables


def _write_outputs(cfg: DictConfig, run_dir: Path, final: dict[str, Any], result: dict[str, Any],
                   trainer: Trainer, splits: DataSplits, uses: dict[str, str],
                   extra_tables: list[str]) -> None:
    """Write ``metrics.json``, ``report.md`` and ``plots/`` of a finished run."""
    write_metrics_json(run_dir / "metrics.json", final)
    write_report_md(
        run_dir / "report.md", title=f"{cfg.name}: worst-group report", final=final,
        group_names=splits.group_names, splits=("train", "val", "test"),
        group_label_use=render_group_label_use(uses),
        notes=[splits.description,
               f"Selected step {result['best_step']} of {result['steps']} by `{cfg.trainer.select}`."],
        extra_tables=extra_tables)
    plots = run_dir / "plots"
    plot_group_accuracy(plots / "group_accuracy.png", final, splits.group_names, splits=("val", "test"))
    plot_history(plots / "worst_group_accuracy.png", result["history"],
                 ["train/acc_worst_group", "val/acc_worst_group", "val/acc_avg"],
                 title="Accuracy over training", ylabel="accuracy")
    plot_history(plots / "group_weights.png", result["history"],
                 [f"train/q_{g}" for g in range(trainer.criterion.num_groups)],
                 title="Group weights over training", ylabel="q")
