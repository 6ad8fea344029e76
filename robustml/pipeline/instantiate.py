"""Build objects from config nodes, with errors that name the config key.

Library pieces name their arguments in errors (``max_loss``); :func:`config_keys` turns an
engine error into the config's words (``trainer.max_loss``) for the run that raised it.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Iterator
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


# The engine's arguments (robustml.train.TrainSettings, the DataLoader options) and their config keys.
ENGINE_KEYS = {**{name: f"trainer.{name}" for name in (
    "max_steps", "batch_size", "eval_every", "eval_train", "chunk_size", "precision", "select",
    "l2_weight", "reset_optimizer_at_anneal", "resume_force", "resume", "max_loss", "num_workers",
    "pin_memory", "persistent_workers", "eval_batch_size")}, "lr": "optimizer.lr"}
# A name where a message uses it as a setting: before "=", ":", ")", " must", " if" or " >" (not
# in prose such as "resume with the same number").
_ENGINE_NAME = re.compile(r"(?<![\w.])(" + "|".join(ENGINE_KEYS) + r")(?=[=:)]| must\b| if\b| >)")
_PYTHON_VALUES = {"=True": "=true", "=False": "=false", "=None": "=null", " None ": " null "}


def with_config_keys(message: str) -> str:
    """Return an engine error's ``message`` with argument names as config keys (``max_loss`` ->
    ``trainer.max_loss``, ``lr`` -> ``optimizer.lr``) and Python values as YAML's."""
    for python, yaml in _PYTHON_VALUES.items():
        message = message.replace(python, yaml)
    return _ENGINE_NAME.sub(lambda match: ENGINE_KEYS[match[1]], message)


@contextlib.contextmanager
def config_keys() -> Iterator[None]:
    """Re-raise an error whose message names engine arguments with the config keys instead.

    Used around the calls into the engine only (building ``TrainSettings`` and the ``Trainer``,
    ``fit``): another piece's argument of the same name (EIIL's ``lr``) is not the optimizer's.

    The error keeps its type when that type takes the message alone, and becomes its built-in
    base otherwise; the original is chained (``__cause__``). Other errors pass unchanged.
    """
    try:
        yield
    except (*_SURFACED, FloatingPointError, RuntimeError) as error:
        message = with_config_keys(str(error))
        if message == str(error):
            raise
        try:
            translated = type(error)(message)
        except TypeError:
            translated = next(kind for kind in (*_SURFACED, FloatingPointError, RuntimeError)
                              if isinstance(error, kind))(message)
        raise translated from error
