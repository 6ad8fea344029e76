"""Test helpers shared by several test modules: shared data location, config composition."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_module
from omegaconf import DictConfig

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


def mnist_available() -> bool:
    return (SHARED_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def compose_train(overrides: list[str]) -> DictConfig:
    """Compose ``configs/train.yaml`` with Hydra's compose API, as ``robustml-train`` would."""
    with initialize_config_module(config_module="robustml.configs", version_base="1.3"):
        return compose(config_name="train", overrides=overrides)
