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


def toy_env_dataset(n: int, seed: int = 0):
    """Return ``n`` random 2x3x3 inputs with binary labels, attributes and environments (= attributes)."""
    import torch

    from robustml.data.contract import GroupedTensorDataset
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, 3, 3, generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    attr = torch.randint(0, 2, (n,), generator=g)
    return GroupedTensorDataset(x, y, attr, num_classes=2, attr_names=("a", "b"),
                                env=attr.clone(), env_names=("e0", "e1"))
