"""The run's health step: every check that applies to the run (:mod:`robustml.health`), its
messages in the config's words (``trainer.l2_weight=0``, ``loss.criterion.step_size=...``)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from robustml.augment.counterfactual import dataset_rule, has_counterfactual
from robustml.health import Finding, Thresholds
from robustml.pipeline import afr, dfr, dpe, heads, inferred, jtt
from robustml.pipeline.build import RunData
from robustml.pipeline.instantiate import ENGINE_KEYS, keys_under, with_config_keys
from robustml.train import health
from robustml.train.loop import Trainer

CHECKS = ("not_learning", "shortcut_learned", "selected_first_evaluation", "small_val_group",
          "group_dro_q_frozen", "group_dro_q_collapsed", "jtt_error_set", "jtt_stage_one",
          "one_class_predictor", "dfr_c_at_grid_edge", "dfr_small_tuning_group", "afr_at_grid_edge",
          "dpe_member_one_class", "head_no_gain", "inferred_groups", "cleaning_group",
          "counterfactual_coverage")
# The last-layer heads by method name (heads.HEAD_METHODS, which names their files): their modules, each with ``fit`` and
# ``health(cfg, final, splits, thresholds=...)``.
HEADS = {"dfr": dfr, "afr": afr, "dpe": dpe}
KEYS = {**ENGINE_KEYS, **keys_under("loss.criterion.", ("step_size",))}


def thresholds_of(cfg: DictConfig) -> Thresholds:
    """Return the thresholds of ``cfg.health`` (the defaults without one)."""
    node = OmegaConf.select(cfg, "health")
    return Thresholds() if node is None else Thresholds(**OmegaConf.to_container(node, resolve=True))


def run_checks(cfg: DictConfig, trainer: Trainer, data: RunData, final: dict[str, Any],
               result: dict[str, Any], stage_one: jtt.StageOne | None) -> list[Finding]:
    """Return the findings of every check that applies to the finished run, in the config's words."""
    limits = thresholds_of(cfg)
    train, names = data.splits.train, data.splits.group_names
    history = result["history"]
    findings = health.not_learning(history, chance=health.chance_loss(train.y, train.num_classes),
                                   max_steps=trainer.settings.max_steps,
                                   l2_weight=trainer.settings.l2_weight,
                                   lr=float(OmegaConf.select(cfg, "optimizer.lr", default=0.0) or 0.0),
                                   thresholds=limits)
    method = str(OmegaConf.select(cfg, "method._target_") or "").rsplit(".", 1)[-1]
    in_use = [f"method={method}"] + (["loss=group_dro"] if OmegaConf.select(cfg, "loss.criterion.step_size")
                                     is not None else [])
    findings += health.shortcut_learned(final, names, thresholds=limits, in_use=in_use)
    findings += health.selection(history, result["best_step"], final, names,
                                 select=cfg.trainer.select, thresholds=limits)
    step_size = OmegaConf.select(cfg, "loss.criterion.step_size")
    if step_size is not None:
        findings += health.group_dro_weights(history, num_groups=trainer.criterion.num_groups,
                                             step_size=float(step_size), thresholds=limits)
    if stage_one is not None:
        findings += jtt.health(stage_one, train.y, train.num_classes,
                               batch_size=cfg.trainer.batch_size, thresholds=limits)
    if method in HEADS:  # a last-layer head: its own checks, the one-class check of its predictions
        findings += HEADS[method].health(cfg, final, data.splits, thresholds=limits)
        findings += heads.no_gain(method, final, min_gain=limits.head_min_gain)
    else:
        max_steps = trainer.settings.max_steps
        findings += health.one_class_predictor(
            final, health.label_counts(data.splits.items()), train.class_names, thresholds=limits,
            hint=f"it ignores its input; train longer (max_steps={2 * max_steps}) or balance the "
                 "groups (sampler=group_balanced)")
    findings += inferred.health(data.splits, thresholds=limits)
    if cfg.augment is not None and train.in_memory:  # rules on files change every example
        covered = int(has_counterfactual(dataset_rule(train), train.full_batch()).sum())
        findings += health.counterfactual_coverage(covered, len(train), thresholds=limits)
    if cfg.cleaning is not None:
        from robustml.pipeline import clean  # cleanlab and scikit-learn: only for cleaning runs
        findings += clean.health(final, names, thresholds=limits)
    return [Finding(f.check, f.severity, with_config_keys(f.message, KEYS)) for f in findings]
