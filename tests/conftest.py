"""Fixtures shared by the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from support import SHARED_DATA, mnist_available


# The suite's tensors are tiny: one intra-op thread avoids OpenMP start-up and spin-wait costs that
# dominate small problems on a 2-core machine (and keeps concurrent test processes from thrashing).
torch.set_num_threads(1)


@pytest.fixture
def mnist_root() -> Path:
    """Return the shared data root holding torchvision's MNIST layout, or skip the test."""
    if not mnist_available():
        pytest.skip(f"MNIST not found under {SHARED_DATA}/MNIST/raw; place torchvision's MNIST raw "
                    "files there (or run with data.download=true online) to run this test")
    return SHARED_DATA
