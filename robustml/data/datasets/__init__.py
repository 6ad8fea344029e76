"""Datasets that follow the grouped-data contract, each built as explicit train/val/test splits.

Names are imported on first use (PEP 562): a run on the embedded digits does not pay for pandas,
PIL and torchvision, which only the on-disk and tabular loaders need.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "adult_splits": "adult",
    "celeba_attributes_splits": "celeba_attributes",
    "celeba_splits": "celeba",
    "colored_digits_splits": "colored_digits",
    "colored_mnist_splits": "colored_mnist",
    "image_csv_splits": "image_csv",
    "label_noise_of": "noisy",
    "make_colored_environment": "colored",
    "mnist_splits": "mnist",
    "tabular_file_splits": "tabular_file",
    "waterbirds_splits": "waterbirds",
    "with_label_noise": "noisy",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
