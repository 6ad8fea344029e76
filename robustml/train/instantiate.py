"""Build objects from config nodes, with errors that name the config key."""

from __future__ import annotations

import inspect
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf


def runtime_kwargs(node: DictConfig, available: dict[str, Any]) -> dict[str, Any]:
    """Return the entries of ``available`` that ``node._target_`` accepts and the config leaves unset."""
    parameters = inspect.signature(get_object(node._target_)).parameters
    return {key: value for key, value in available.items() if key in parameters and key not in node}


def build_from(cfg: DictConfig, key: str, **kwargs: Any) -> Any:
    """Instantiate ``cfg[key]``; errors raised by the target surface as themselves, prefixed by ``key``.

    Hydra wraps them in ``InstantiationException``; unwrapping keeps ``FileNotFoundError``,
    ``ValueError`` and ``TypeError`` catchable and their message first.
    """
    try:
        return instantiate(OmegaConf.select(cfg, key), **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, (ValueError, TypeError, FileNotFoundError, ImportError)):
            raise type(cause)(f"{key}: {cause}") from cause
        raise
