"""Build objects from config nodes, with errors that name the config key.

Library pieces name their arguments in errors (``max_loss``, ``target``); :func:`build_from`
and :func:`config_keys` turn an error into the config's words (``data.target``,
``trainer.max_loss``) for the run that raised it.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Iterable, Iterator, Mapping
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

    The node's own keys in the message read as config keys (``target must be`` -> ``data.target
    must be``, Python values as YAML's); a message that then starts with one is not prefixed again.
    """
    node = OmegaConf.select(cfg, key)
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        for kind in _SURFACED:
            if isinstance(cause, kind):
                raise kind(_keyed_message(key, node, str(cause))) from cause
        raise


def _keyed_message(key: str, node: Any, message: str) -> str:
    """Return ``message`` of the target built from ``cfg[key]`` in the config's words."""
    names = [name for name in node if not str(name).startswith("_")] \
        if isinstance(node, DictConfig) else []
    message = with_config_keys(message, keys_under(f"{key}.", names))
    return message if message.startswith(f"{key}.") else f"{key}: {message}"


# The engine's arguments (robustml.train.TrainSettings, the DataLoader options) and their config keys.
ENGINE_KEYS = {**{name: f"trainer.{name}" for name in (
    "max_steps", "batch_size", "eval_every", "eval_train", "chunk_size", "accumulate", "precision",
    "compile", "select", "l2_weight", "max_grad_norm", "reset_optimizer_at_anneal", "resume_force",
    "resume",
    "max_loss", "num_workers", "pin_memory", "persistent_workers", "eval_batch_size")},
    "lr": "optimizer.lr"}
_PYTHON_VALUES = {"=True": "=true", "=False": "=false", "=None": "=null", " None ": " null "}


def keys_under(prefix: str, names: Iterable[str]) -> dict[str, str]:
    """Return ``{name: prefix + name}``: arguments set from one config node (``lr`` -> ``cleaning.lr``)."""
    return {name: f"{prefix}{name}" for name in names}


def with_config_keys(message: str, keys: Mapping[str, str] = ENGINE_KEYS) -> str:
    """Return an error's ``message`` with the argument names of ``keys`` as config keys (by
    default the engine's: ``max_loss`` -> ``trainer.max_loss``, ``lr`` -> ``optimizer.lr``) and
    Python values as YAML's.

    A name is translated where the message uses it as a setting: before "=", ":", ")", " must",
    " if" or " >" (not in prose such as "resume with the same number"), and not inside a longer
    name or a dotted key.
    """
    for python, yaml in _PYTHON_VALUES.items():
        message = message.replace(python, yaml)
    if not keys:
        return message
    setting = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, keys)) +
                         r")(?=[=:)]| must\b| if\b| >)")
    return setting.sub(lambda match: keys[match[1]], message)


@contextlib.contextmanager
def config_keys(keys: Mapping[str, str] = ENGINE_KEYS) -> Iterator[None]:
    """Re-raise an error whose message names arguments of ``keys`` with the config keys instead.

    By default the engine's: used around the calls into the engine only (building
    ``TrainSettings`` and the ``Trainer``, ``fit``): another piece's argument of the same name
    (EIIL's ``lr``) is not the optimizer's. Other pieces pass their own ``keys`` (see
    :func:`keys_under`).

    The error keeps its type when that type takes the message alone, and becomes its built-in
    base otherwise; the original is chained (``__cause__``). Other errors pass unchanged.
    """
    try:
        yield
    except (*_SURFACED, FloatingPointError, RuntimeError) as error:
        message = with_config_keys(str(error), keys)
        if message == str(error):
            raise
        try:
            translated = type(error)(message)
        except TypeError:
            translated = next(kind for kind in (*_SURFACED, FloatingPointError, RuntimeError)
                              if isinstance(error, kind))(message)
        raise translated from error
