"""The last-layer step that DFR, AFR and DPE share (``robustml-train method=dfr|afr|dpe``).

The base model is the run's own (trained as usual, selected on validation) or, with
``method.base_run=<run dir>``, the selected checkpoint of a finished run with the same data and
model (and, for AFR, the same held-out rows). Its penultimate features of every split go through
the feature cache (:func:`robustml.features.cached_split_features`, under ``method.cache_dir``);
the method's ``fit`` turns them into a :class:`FittedHead`, whose predictions replace the run's
``{split}/...`` metrics while the base model's move to ``base/{split}/...``; the head is saved as
``checkpoints/<method>_head.pt``, which ``robustml-audit`` applies on top of ``best.pt``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from robustml.data.contract import DataSplits
from robustml.health import Finding
from robustml.identity import data_identity, differences
from robustml.pipeline.build import RunData
from robustml.pipeline.stages import run_config
from robustml.report import markdown_table
from robustml.train.checkpoint import load_checkpoint, save_checkpoint
from robustml.train.evaluate import metrics_of_predictions

SPLIT_PREFIXES = ("train/", "val/", "test/")
# The heads' names (their files in checkpoints/); robustml.pipeline.health.HEADS maps each to its module.
HEAD_METHODS = ("dfr", "afr", "dpe")


def head_file(method: str) -> str:
    """Return the file name of ``method``'s head in ``checkpoints/`` (``dfr_head.pt``...)."""
    return f"{method}_head.pt"


@dataclass
class FittedHead:
    """What a method's ``fit`` returns to the shared step.

    Attributes:
        predict: Class ids ``(N,)`` of cached features ``(N, D)``.
        state: The head's saved form (:func:`robustml.heads.head_state`).
        metrics: The method's own ``<method>/...`` entries of ``metrics.json``.
        report: Markdown section from ``(base metrics, head metrics)``.
    """

    predict: Callable[[np.ndarray], np.ndarray]
    state: dict[str, Any]
    metrics: dict[str, Any]
    report: Callable[[dict[str, Any], dict[str, Any]], str]


def _base_keys(cfg: DictConfig) -> dict[str, Any]:
    """The settings a base run must share with this run: the data, the model and, where this
    run's method holds out training rows (AFR), which rows those are."""
    keys = {"data": data_identity(OmegaConf.to_container(cfg.data, resolve=True)),
            "model": OmegaConf.to_container(cfg.model, resolve=True)}
    if OmegaConf.select(cfg, "method.holdout_fraction") is not None:
        keys["method.holdout_fraction"] = OmegaConf.select(cfg, "method.holdout_fraction")
        keys["method.split_seed"] = OmegaConf.select(cfg, "method.split_seed")
    return keys


def reuse_base_run(cfg: DictConfig, model: torch.nn.Module, best_path: Path) -> dict[str, Any]:
    """Load the selected checkpoint of ``method.base_run`` into ``model``; return the base run's fit
    result (``best_step``, ``steps``, ``history``, ``elapsed`` as :meth:`Trainer.fit` returns them).

    The checkpoint is copied to ``best_path`` (this run's ``checkpoints/best.pt``), so the run's
    outputs are whole without the base run. A base run with other data, another model or (AFR)
    other held-out rows is refused, naming the keys.
    """
    base = Path(cfg.method.base_run)
    theirs = run_config(base, what="method.base_run")
    differ = [f"{key}: this run has {mine!r}, the base run has {other!r}" for key, mine, other
              in differences(_base_keys(cfg), _base_keys(theirs))]
    if differ:
        raise ValueError(f"method.base_run={base} was trained with other data, another model or other "
                         "training rows (" + "; ".join(differ)
                         + "); train the base model here (method.base_run=null) or pick a matching run")
    best = load_checkpoint(base / "checkpoints" / "best.pt")
    last = load_checkpoint(base / "checkpoints" / "last.pt")
    save_checkpoint(best_path, best)
    model.load_state_dict(best["model"])
    return {"best_step": int(best["step"]), "steps": int(last["step"]), "history": last["history"],
            "elapsed": 0.0}


def base_head(model: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """Return the base model's last layer ``(weight (C_out, D), bias (C_out,))``: its ``head``."""
    head = getattr(model, "head", None)
    if not isinstance(head, torch.nn.Linear):
        raise ValueError(f"AFR starts from the base model's last layer, its `head` nn.Linear; "
                         f"{type(model).__name__} has none: use a model config with one (mlp, cnn, "
                         f"resnet18, resnet50)")
    return head.weight.detach().cpu().numpy(), head.bias.detach().cpu().numpy()


def head_stage(cfg: DictConfig, model: torch.nn.Module, data: RunData, run_dir: Path,
               final: dict[str, Any], tables: list[str],
               fit: Callable[[DictConfig, dict[str, np.ndarray], DataSplits, torch.nn.Module], FittedHead],
               method: str) -> tuple[dict[str, Any], list[str]]:
    """Fit ``method``'s head on the selected ``model``'s cached features; return the new metrics and
    tables (the head's report first)."""
    from robustml.features import cached_split_features  # the cache and its DataLoader: only here
    splits = data.splits
    features = cached_split_features(model, splits, Path(cfg.method.cache_dir),
                                     batch_size=cfg.trainer.eval_batch_size,
                                     num_workers=cfg.trainer.num_workers, progress=cfg.trainer.progress)
    start = time.perf_counter()
    fitted = fit(cfg, features, splits, model)
    seconds = time.perf_counter() - start
    save_checkpoint(Path(run_dir) / "checkpoints" / head_file(method), fitted.state)
    out = {key: value for key, value in final.items() if not key.startswith(SPLIT_PREFIXES)}
    out.update({f"base/{key}": value for key, value in final.items() if key.startswith(SPLIT_PREFIXES)})
    for name, split in splits.items():
        preds = torch.from_numpy(np.asarray(fitted.predict(features[name]), dtype=np.int64))
        out.update(metrics_of_predictions(preds, split, prefix=name, train_counts=data.train_counts))
    out.update(fitted.metrics)
    out[f"{method}/fit_seconds"] = round(seconds, 3)
    return out, [fitted.report(final, out), *tables]


def comparison_table(base: dict[str, Any], head: dict[str, Any], name: str) -> str:
    """Markdown table ``model, val worst, val avg, test worst, test avg`` of the base model and the head."""
    rows = [[model, *(f"{100 * metrics[f'{split}/{key}']:.1f}" for split in ("val", "test")
                      for key in ("acc_worst_group", "acc_avg"))]
            for model, metrics in (("base model", base), (name, head))]
    return markdown_table(["model", "val worst", "val avg", "test worst", "test avg"], rows)


def grid_edge(check: str, method: str, name: str, key: str, chosen: float | None,
              grid: Sequence[float], *, sides: Sequence[str] = ("largest", "smallest")) -> list[Finding]:
    """Return a finding when ``chosen`` is the largest or smallest value (as ``sides`` names) of
    the grid ``key``: the best value may lie beyond it."""
    grid = [float(v) for v in grid]
    if chosen is None or len(grid) < 2:
        return []
    edges = {"largest": max(grid), "smallest": min(grid)}
    side = next((s for s in sides if float(chosen) == edges[s]), None)
    if side is None:
        return []
    return [Finding(check, 2, f"{method} chose {name}={float(chosen):g}, the {side} value of {key}={grid}: "
                              f"the best {name} may lie beyond it; extend {key} past {float(chosen):g}")]


# What to change when a head did not beat its base model on validation, per method.
NO_GAIN_HINTS = {"dfr": "fit on more validation rows, or widen method.C_grid",
                 "afr": "raise method.lr (its SGD steps may not move the head) or widen method.gammas",
                 "dpe": "use method.balance=group (validation group labels) or more method.epochs"}


def no_gain(method: str, final: dict[str, Any], *, min_gain: float) -> list[Finding]:
    """Return a finding when the head's validation worst-group accuracy is not at least
    ``min_gain`` above its base model's: the last-layer retraining changed nothing that matters."""
    head, base = final.get("val/acc_worst_group"), final.get("base/val/acc_worst_group")
    if head is None or base is None or head - base >= min_gain:
        return []
    return [Finding("head_no_gain", 2, f"{method.upper()}'s last layer did not raise val worst-group accuracy "
                                       f"over its base model ({100 * base:.1f}% -> {100 * head:.1f}%): "
                                       f"the retraining did nothing; {NO_GAIN_HINTS[method]}")]


def load_head(run_dir: Path, model: torch.nn.Module) -> tuple[torch.nn.Module, str | None]:
    """Return ``model`` with the run's saved head on top (and the method's name), or ``model`` and
    ``None`` when the run saved no head."""
    from robustml.heads.classifier import HeadClassifier, head_from_state
    from robustml.models.forward import model_device
    for method in HEAD_METHODS:
        path = Path(run_dir) / "checkpoints" / head_file(method)
        if path.is_file():
            head = head_from_state(load_checkpoint(path, map_location=model_device(model)))
            return HeadClassifier(model, head.to(model_device(model))).eval(), method
    return model, None
