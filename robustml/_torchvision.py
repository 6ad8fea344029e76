"""Import torchvision safely on a CPU-only torch build.

The torchvision wheels on PyPI are CUDA builds; on a CPU build of torch their import fails with
``RuntimeError: operator torchvision::nms does not exist`` because the compiled ops library does not
load. Declaring the schemas of the two operators that torchvision registers Python fallbacks for
(``nms`` and ``qnms``) lets models, transforms and datasets import and work. ``torchvision.ops`` and
``torchvision.io`` remain unusable in that situation; robustml does not use them.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import torch

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
# Kept referenced: a torch.library.Library deregisters its definitions when garbage collected.
_library: torch.library.Library | None = None


def _schema_exists(name: str) -> bool:
    try:
        torch._C._get_schema(f"torchvision::{name}", "")
        return True
    except RuntimeError:
        return False


def _declare_missing_ops() -> None:
    global _library
    missing = [name for name in _SCHEMAS if not _schema_exists(name)]
    if missing:
        _library = torch.library.Library("torchvision", "DEF")
        for name in missing:
            _library.define(_SCHEMAS[name])


def import_torchvision() -> ModuleType:
    """Import and return ``torchvision``, declaring its op schemas first when they are missing."""
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as error:
        if "torchvision::nms" not in str(error):
            raise
    _declare_missing_ops()
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    return importlib.import_module("torchvision")
