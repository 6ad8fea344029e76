"""The report's ledger of label use: which group labels a run used for training, selection and
evaluation, in words, derived from its config (every table states which labels each row used)."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from robustml.selection import selection_rule

METHODS = ("jtt", "dfr")


def method_name(cfg: DictConfig) -> str | None:
    """Return ``cfg.method.name`` (``"jtt"`` or ``"dfr"``), or ``None`` without a method."""
    name = OmegaConf.select(cfg, "method.name")
    if name is not None and name not in METHODS:
        raise ValueError(f"method.name must be one of {list(METHODS)}, got {name!r}")
    return name


def describe_group_label_use(cfg: DictConfig) -> dict[str, str]:
    """Say what group labels were used for: ``{"training", "selection", "evaluation"}`` in words."""
    uses = []
    if cfg.loss.partition == "group" and cfg.loss.criterion._target_.rsplit(".", 1)[-1] != "ERMLoss":
        uses.append("the loss used group labels (partition=group)")
    if cfg.loss.partition == "env":
        uses.append("the loss used environment labels (partition=env), not group labels")
    if cfg.sampler.kind != "uniform":
        uses.append(f"{cfg.sampler.kind} sampling used {cfg.sampler.partition} labels")
    if OmegaConf.select(cfg, "groups") is not None:
        uses.append(f"none: {cfg.groups.method} groups inferred from a reference model without group labels")
    if cfg.augment is not None:
        uses.append("counterfactual augmentation used the spurious-attribute labels (attr)")
    if cfg.cleaning is not None and (cfg.cleaning.guard.max_fraction < 1 or cfg.cleaning.guard.protect_groups):
        uses.append("the label-cleaning guard used training group labels")
    return _method_label_use(cfg, {"training": "; ".join(uses) or "none",
                                   "selection": selection_rule(cfg.trainer.select).labels,
                                   "evaluation": "group labels of val and test, to report per-group accuracy"})


def _method_label_use(cfg: DictConfig, uses: dict[str, str]) -> dict[str, str]:
    """Add to ``uses`` which labels the two-stage method (JTT, DFR) used where."""
    name = method_name(cfg)
    if name == "jtt":
        uses["training"] += (" (JTT: the error set is stage one's misclassified training examples, "
                             "found with class labels only)")
    elif name == "dfr":
        fit_on = {"val": "validation", "train": "training"}[cfg.method.fit_on]
        uses["training"] = (f"base model: {uses['training']}; DFR's last layer: {fit_on} group "
                            f"labels (group-balanced subsets of the {fit_on} split)")
        uses["selection"] = (f"base model: {uses['selection']}; DFR's C: validation group labels "
                             f"(worst-group accuracy on held-out validation rows)")
    return uses


def render_group_label_use(uses: dict[str, str]) -> str:
    """Render :func:`describe_group_label_use` as the report's bullet list."""
    return (f"- Training: {uses['training']}.\n- Model selection: {uses['selection']}.\n"
            f"- Evaluation: {uses['evaluation']}.")
