"""Test helpers shared by several test modules: shared data location, config composition."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
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


def start_child(job: Callable[[], None]) -> int:
    """Run ``job`` in a forked child process (imports already paid); return its pid."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            job()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def wait_child(pid: int) -> int:
    """Wait for a child of :func:`start_child`; return its exit code (-9 when SIGKILL ended it)."""
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def in_child(job: Callable[[], None]) -> int:
    """Run ``job`` in a forked child process and return its exit code."""
    return wait_child(start_child(job))


def planted(n: int, minority: float, seed: int, *, noise: int = 4):
    """Features with a core dimension (the label), a spurious one (the attribute) and ``noise``
    noise dimensions, for the last-layer heads' tests: ``(x, y, groups)`` with groups
    ``y * 2 + a``; ``minority`` is the share of rows where ``a != y``."""
    import numpy as np
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a = np.where(rng.random(n) < minority, 1 - y, y)
    x = np.column_stack([y + 0.8 * rng.standard_normal(n), 3 * a + 0.3 * rng.standard_normal(n),
                         rng.standard_normal((n, noise))])
    return x, y, y * 2 + a
