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


# Most specific first: the error a target raised is re-raised as the first of these it is.
_SURFACED = (FileNotFoundError, ImportError, ValueError, TypeError)


def build_from(cfg: DictConfig, key: str, **kwargs: Any) -> Any:
    """Instantiate ``cfg[key]``; errors raised by the target surface prefixed by ``key``.

    Hydra wraps them in ``InstantiationException``. An error that is a ``FileNotFoundError``,
    ``ImportError``, ``ValueError`` or ``TypeError`` (or a subclass: ``json.JSONDecodeError``
    is a ``ValueError``) is raised again as that built-in type with the message
    ``"<key>: <message>"``, chained to the original (``__cause__``), so it stays catchable by
    the built-in type and the original, with its own type and attributes, is kept. The original
    is never re-created from its type (a subclass's constructor may need other arguments).
    """
    try:
        return instantiate(OmegaConf.select(cfg, key), **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        for kind in _SURFACED:
            if isinstance(cause, kind):
                raise kind(f"{key}: {cause}") from cause
        raise
