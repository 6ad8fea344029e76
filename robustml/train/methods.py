"""The run's hooks for two-stage methods (``cfg.method``): JTT before training, DFR after it.

``method: none`` (the default) leaves a run as it is. ``method=jtt`` trains (or reuses) JTT's stage
one before the run builds its trainer and upweights the error set in stage two
(:mod:`robustml.train.jtt`); ``method=dfr`` retrains the last layer of the selected model on
cached features after training, or after loading a base run's checkpoint
(:mod:`robustml.train.dfr`). Each hook is one line of :func:`robustml.train.run.run`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from robustml.data.contract import DataSplits
    from robustml.train.jtt import StageOne
    from robustml.train.loop import Trainer

METHODS = ("jtt", "dfr")


def method_name(cfg: DictConfig) -> str | None:
    """Return ``cfg.method.name`` (``"jtt"`` or ``"dfr"``), or ``None`` without a method."""
    name = OmegaConf.select(cfg, "method.name")
    if name is not None and name not in METHODS:
        raise ValueError(f"method.name must be one of {list(METHODS)}, got {name!r}")
    return name


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Return ``{"a.b.c": leaf}`` for a nested dict (lists are leaves)."""
    if not isinstance(tree, Mapping):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def differing_keys(expected: Mapping[str, Any], found: Mapping[str, Any]) -> list[str]:
    """Return ``"key: expected X, found Y"`` for every flattened key whose values differ."""
    want, have = flatten(expected), flatten(found)
    return [f"{key}: this run has {want.get(key, '<absent>')!r}, the cache has "
            f"{have.get(key, '<absent>')!r}"
            for key in sorted(set(want) | set(have)) if want.get(key) != have.get(key)]


def data_identity(data: dict[str, Any]) -> dict[str, Any]:
    """Return a resolved data config without ``download``, its ``root`` made absolute.

    The same files reached by two paths (``../shared/data`` and its absolute form) compare equal;
    the same config on other files does not.
    """
    data = {key: value for key, value in data.items() if key != "download"}
    if data.get("root") is not None:
        data["root"] = str(Path(data["root"]).resolve())
    return data


def before_build(cfg: DictConfig) -> StageOne | None:
    """JTT: return stage one (trained now, or reused from its cache); ``None`` for other runs."""
    if method_name(cfg) != "jtt":
        return None
    from robustml.train.jtt import jtt_stage_one
    return jtt_stage_one(cfg)


def fit(cfg: DictConfig, trainer: Trainer) -> dict[str, Any]:
    """Train, or (DFR with ``method.base_run``) load the base run's selected checkpoint instead."""
    if method_name(cfg) == "dfr" and cfg.method.base_run is not None:
        from robustml.train.dfr import reuse_base_run
        return reuse_base_run(cfg, trainer)
    return trainer.fit()


def after_evaluate(cfg: DictConfig, trainer: Trainer, splits: DataSplits, final: dict[str, Any],
                   tables: list[str], stage_one: StageOne | None) -> tuple[dict[str, Any], list[str]]:
    """Add the method's results to the final metrics and report tables (DFR replaces the split metrics)."""
    if stage_one is not None:
        final.update(stage_one.summary)
        tables.insert(0, stage_one.report_md)
    if method_name(cfg) == "dfr":
        from robustml.train.dfr import dfr_stage
        return dfr_stage(cfg, trainer, splits, final, tables)
    return final, tables


def label_use(cfg: DictConfig, uses: dict[str, str]) -> dict[str, str]:
    """Say in ``uses`` (see ``describe_group_label_use``) which labels the method used where."""
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


def config_of(path: Path) -> DictConfig:
    """Load a run's resolved ``config.yaml``; a missing file names the path."""
    if not (path / "config.yaml").is_file():
        raise FileNotFoundError(f"{path / 'config.yaml'} does not exist: method.base_run must be the "
                                f"directory of a finished robustml-train run")
    return OmegaConf.load(path / "config.yaml")
