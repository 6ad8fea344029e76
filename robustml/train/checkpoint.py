"""Checkpoint files: written atomically, loaded safely, and tied to the config that wrote them.

A checkpoint holds only tensors and primitive containers (dicts, lists, tuples, numbers, strings,
``None``): model, optimizer, scheduler and loss state dicts, the loop position, every random
state as tensors (:mod:`robustml.train.rng`) and the run's resolved config as a plain dict. So
it loads with ``torch.load(..., weights_only=True)``, which runs no code from the file.

Resuming compares the saved config with the current one (:func:`config_differences`); keys that
cannot change the results are exempt (:data:`RESUME_EXEMPT_KEYS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from robustml.atomic import atomic_path

RESUME_EXEMPT_KEYS = ("trainer.resume", "trainer.resume_force", "trainer.progress",
                      "cleaning.progress", "paths.output_root")
"""Config keys that may differ between a run and its resume: they change no result.

``trainer.resume`` and ``trainer.resume_force`` say how the run started, ``trainer.progress``
and ``cleaning.progress`` only show a progress bar, and ``paths.output_root`` is where new runs
would go (the resumed run's folder is ``hydra.run.dir``). Every other key (also
``trainer.max_steps``, which sets a cosine schedule's length, and ``paths.data_root``) must match
unless ``trainer.resume_force=true``.
"""


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


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


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
    old, new = _flatten(saved), _flatten(current)
    missing = object()

    def show(flat: dict[str, Any], key: str) -> str:
        return repr(flat[key]) if key in flat else "<absent>"

    return [f"{key}: {show(old, key)} -> {show(new, key)}" for key in sorted(old.keys() | new.keys())
            if key not in exempt and old.get(key, missing) != new.get(key, missing)]


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
            f"trainer.resume=true but the config differs from the one saved in {path} at "
            f"{len(differences)} key(s): " + "; ".join(differences) + ". Resume with the run's "
            "own overrides, or pass trainer.resume_force=true to continue with the new values "
            "anyway (the results then match no single config)")
