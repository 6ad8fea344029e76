"""Fixtures shared by the test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from support import SHARED_DATA, mnist_available


# The suite's tensors are tiny: one intra-op thread avoids OpenMP start-up and spin-wait costs that
# dominate small problems on a 2-core machine (and keeps concurrent test processes from thrashing).
torch.set_num_threads(1)
# The same for every command a test starts (console scripts, README lines, torchrun): the suite
# runs one test per core (pytest-xdist), and two commands spinning two OpenMP threads each on two
# cores slow each other down.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# No test downloads a model: Hugging Face libraries fail at once instead of retrying the Hub
# (read when huggingface_hub is imported, so set before any test imports it).
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def mnist_root() -> Path:
    """Return the shared data root holding torchvision's MNIST layout, or skip the test."""
    if not mnist_available():
        pytest.skip(f"MNIST not found under {SHARED_DATA}/MNIST/raw; place torchvision's MNIST raw "
                    "files there (or run with data.download=true online) to run this test")
    return SHARED_DATA


# pytest-xdist hands tests to its workers in collection order: the modules with the longest tests
# go first, so that no worker is left running one of them alone at the end of the suite.
LONGEST_FIRST = ("test_readme.py", "test_ddp.py", "test_sweeps.py", "test_cli.py", "test_kill_resume.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))  # stable for the rest
