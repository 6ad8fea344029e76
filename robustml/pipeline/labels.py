"""The report's ledger of label use: which group labels a run used for training, selection and
evaluation, in words, derived from its config (every table states which labels each row used)."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from robustml.selection import selection_rule

# Two-stage methods: the module ``method._target_`` names, and the method's name.
METHODS = {"robustml.pipeline.jtt": "jtt", "robustml.pipeline.dfr": "dfr", "robustml.pipeline.afr": "afr",
           "robustml.pipeline.dpe": "dpe"}
# Group inference: the function ``groups._target_`` names, and the method's name in reports.
INFERENCE_METHODS = {"robustml.groups.error_split": "error_split",
                     "robustml.groups.eiil_environments": "eiil",
                     "robustml.groups.cluster_within_classes": "clustering"}


def method_name(cfg: DictConfig) -> str | None:
    """Return the name of the two-stage method ``method._target_`` names (``"jtt"``, ``"dfr"``,
    ``"afr"`` or ``"dpe"``), or ``None`` without a method."""
    if OmegaConf.select(cfg, "method") is None:
        return None
    target = OmegaConf.select(cfg, "method._target_")
    if target not in METHODS:
        raise ValueError(f"method._target_ must be one of {list(METHODS)}, got {target!r}")
    return METHODS[target]


def inference_method(cfg: DictConfig) -> str:
    """Return the name of the group-inference method ``groups._target_`` names (``"eiil"``...)."""
    target = cfg.groups._target_
    if target not in INFERENCE_METHODS:
        raise ValueError(f"groups._target_ must be one of {list(INFERENCE_METHODS)}, got {target!r}")
    return INFERENCE_METHODS[target]


def describe_group_label_use(cfg: DictConfig) -> dict[str, str]:
    """Say what group labels were used for: ``{"training", "selection", "evaluation"}`` in words."""
    uses = []
    if cfg.loss.partition == "group" and cfg.loss.criterion._target_.rsplit(".", 1)[-1] != "ERMLoss":
        uses.append("the loss used group labels (partition=group)")
    if cfg.loss.partition == "env":
        uses.append("the loss used environment labels (partition=env), not group labels")
    if cfg.sampler._target_ is not None:
        uses.append(f"{cfg.sampler.name} sampling used {cfg.sampler.partition} labels")
    if OmegaConf.select(cfg, "groups") is not None:
        uses.append(f"none: {inference_method(cfg)} groups inferred from a reference model without group labels")
    if cfg.augment is not None:
        uses.append("counterfactual augmentation used the spurious-attribute labels (attr)")
    if cfg.cleaning is not None and (cfg.cleaning.guard.max_fraction < 1 or cfg.cleaning.guard.protect_groups):
        uses.append("the label-cleaning guard used training group labels")
    return _method_label_use(cfg, {"training": "; ".join(uses) or "none",
                                   "selection": selection_rule(cfg.trainer.select).labels,
                                   "evaluation": "group labels of val and test, to report per-group accuracy"})


def _method_label_use(cfg: DictConfig, uses: dict[str, str]) -> dict[str, str]:
    """Add to ``uses`` which labels the two-stage method (JTT, DFR, AFR, DPE) used where."""
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
    elif name == "afr":
        share = 100 * (1 - cfg.method.holdout_fraction)
        uses["training"] = (f"base model: {uses['training']} (on {share:g}% of the training split); "
                            f"AFR's last layer: class labels only (the held-out training rows weighted "
                            f"by the base model's errors)")
        uses["selection"] = (f"base model: {uses['selection']}; AFR's gamma, reg and step: validation "
                             f"group labels (worst-group accuracy)")
    elif name == "dpe":
        rows = ("the validation split" if cfg.method.retrain_rows == "all" else
                f"the {cfg.method.num_rows} validation rows the base model gets most wrong (SELF)")
        labels = (f"class labels only (class-balanced subsets of {rows})" if cfg.method.balance == "class"
                  else f"validation group labels (group-balanced subsets of {rows})")
        uses["training"] = f"base model: {uses['training']}; DPE's prototype ensemble: {labels}"
        uses["selection"] = (f"base model: {uses['selection']}; DPE's epoch of each member: validation "
                             f"group labels (worst-group accuracy)")
    return uses


def render_group_label_use(uses: dict[str, str]) -> str:
    """Render :func:`describe_group_label_use` as the report's bullet list."""
    return (f"- Training: {uses['training']}.\n- Model selection: {uses['selection']}.\n"
            f"- Evaluation: {uses['evaluation']}.")
