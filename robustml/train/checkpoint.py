"""Checkpoint files: written atomically, loaded safely, and tied to the config that wrote them.

A checkpoint holds only tensors and primitive containers (dicts, lists, tuples, numbers, strings,
``None``): model, optimizer, scheduler and loss state dicts, the loop position, every random
state as tensors (:mod:`robustml.train.rng`) and the run's resolved config as a plain dict. So
it loads with ``torch.load(..., weights_only=True)``, which runs no code from the file.

Resuming compares the saved config with the current one (:func:`config_differences`); keys that
cannot change the results are exempt (:data:`robustml.identity.RESUME_EXEMPT_KEYS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from robustml.atomic import atomic_path
from robustml.identity import RESUME_EXEMPT_KEYS, differences


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (see :mod:`robustml.atomic`)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises:
        FileNotFoundError: If there is no file at ``path`` (the path is named).
        RuntimeError: If the file is truncated, not a checkpoint, or holds objects other than
            tensors and primitive containers (an old checkpoint that pickled classes).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated, foreign or unsafe: unpickling errors of many types
        lines = str(error).splitlines() or [""]
        # torch's weights-only refusal is a page of advice; its one informative line names the class.
        reason = next((line.strip() for line in lines if "WeightsUnpickler error" in line), lines[0])
        raise RuntimeError(f"checkpoint {path} cannot be read safely ({type(error).__name__}: "
                           f"{reason}); it may be truncated, not a robustml checkpoint, or written "
                           "by an older robustml that pickled objects") from error


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any], *,
                       exempt: tuple[str, ...] = RESUME_EXEMPT_KEYS) -> list[str]:
    """Return ``"key: saved -> current"`` for each leaf key whose value differs, sorted by key.

    Args:
        saved: The config stored in the checkpoint (a plain nested dict).
        current: The config of the run that resumes.
        exempt: Dotted keys left out of the comparison.

    Returns:
        One line per differing key (a key present on one side only shows ``<absent>``).
    """
    def show(value: Any) -> str:
        return value if value == "<absent>" else repr(value)

    return [f"{key}: {show(old)} -> {show(new)}"
            for key, old, new in differences(saved, current, exempt=exempt)]


def check_resume_config(saved: Mapping[str, Any] | None, current: Mapping[str, Any] | None,
                        path: str | Path) -> None:
    """Raise ``ValueError`` naming the differing keys when ``current`` is not ``saved``'s config.

    Nothing is compared when either side is ``None`` (a trainer built without a config).
    """
    if saved is None or current is None:
        return
    differences = config_differences(saved, current)
    if differences:
        raise ValueError(
            f"resume=True but the config differs from the one saved in {path} at "
            f"{len(differences)} key(s): " + "; ".join(differences) + ". Resume with the run's "
            "own overrides, or pass resume_force=True to continue with the new values "
            "anyway (the results then match no single config)")
