"""Default run names that say what ran: ``colored_digits_group_dro_cnn``, not ``colored_digits_erm``.

``configs/train.yaml`` sets ``name: ${run_name:}``; the resolver builds the name from the config
groups chosen for the run (Hydra's ``runtime.choices``): the data and the loss always, then every
other group whose choice differs from the default, and the precision when it is not fp32. An
experiment file names itself with ``name: ${run_name:<its name>}``: its name, plus the choice of
every config group the command line overrides (``experiment=adult_erm loss=group_dro`` runs as
``adult_erm_group_dro``), so that two different runs never share a name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

# Config groups that change what a run does, in naming order, with the default choice (left out).
NOTABLE_GROUPS = {"model": "mlp", "sampler": "uniform", "augment": "none", "cleaning": "none",
                  "method": "none", "optimizer": "adam", "scheduler": "none", "groups": "none"}
RESOLVER = "run_name"


def derive_run_name(choices: Mapping[str, Any], cfg: DictConfig | None = None) -> str:
    """Return the run name for the config-group ``choices`` (``{"data": "colored_digits", ...}``).

    Args:
        choices: Chosen option of each config group (``None`` or missing for an empty group).
        cfg: The composed config; adds ``augment.mode`` to an augmentation and a non-fp32
            ``trainer.precision``.
    """
    parts = [str(choices.get("data") or "data"), str(choices.get("loss") or "loss")]
    for group, default in NOTABLE_GROUPS.items():
        choice = choices.get(group)
        if choice is None or str(choice) in (default, "null"):
            continue
        parts.append(str(choice))
        mode = OmegaConf.select(cfg, f"{group}.mode") if cfg is not None else None
        if group == "augment" and mode:
            parts.append(str(mode))
    precision = OmegaConf.select(cfg, "trainer.precision") if cfg is not None else None
    if precision and precision != "fp32":
        parts.append(str(precision))
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(parts))


def _choices_from_targets(cfg: DictConfig) -> dict[str, str | None]:
    """Name the data and the loss from their ``_target_`` when no Hydra run supplies the choices.

    Configs composed with Hydra's compose API carry no ``runtime.choices``; the name then says
    the data and the loss only (``colored_digits_splits`` -> ``colored_digits``, ``GroupDROLoss``
    -> ``group_dro``).
    """
    def snake(target: Any) -> str | None:
        if not target:
            return None
        name = re.sub(r"(_splits|Loss)$", "", str(target).rsplit(".", 1)[-1])
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return {"data": snake(OmegaConf.select(cfg, "data._target_")),
            "loss": snake(OmegaConf.select(cfg, "loss.criterion._target_"))}


def _hydra_node(root: DictConfig, key: str) -> Any:
    """Return ``hydra.<key>`` from the config being resolved, or from the running Hydra job."""
    node = OmegaConf.select(root, f"hydra.{key}")
    if node is None:
        from hydra.core.hydra_config import HydraConfig
        if HydraConfig.initialized():
            node = OmegaConf.select(HydraConfig.get(), key)
    return OmegaConf.to_container(node) if isinstance(node, (DictConfig, ListConfig)) else node


def command_line_suffix(overrides: list[str]) -> list[str]:
    """Return the parts an experiment's name gains from command-line overrides of what it chose.

    ``experiment=adult_erm loss=group_dro`` is not ``adult_erm``: every config-group override
    (data, loss and the notable groups) adds its choice, and a precision override adds itself.
    """
    parts = []
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key in ("data", "loss", *NOTABLE_GROUPS) and value:
            parts.append(value)
        elif key == "trainer.precision" and value and value != "fp32":
            parts.append(value)
    return parts


def _resolve_run_name(base: str | None = None, *, _root_: DictConfig) -> str:
    if base:  # an experiment's own name, plus what the command line changed
        parts = [base, *command_line_suffix(_hydra_node(_root_, "overrides.task") or [])]
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(parts))
    choices = _hydra_node(_root_, "runtime.choices")
    if choices is None:
        return derive_run_name(_choices_from_targets(_root_), _root_)
    return derive_run_name(choices, _root_)


def register_run_name_resolver() -> None:
    """Register ``${run_name:}`` with OmegaConf (idempotent)."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, _resolve_run_name)
