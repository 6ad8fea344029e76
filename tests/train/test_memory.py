"""keep_freed_memory: freed large blocks stay in the process instead of going back to the OS."""

import os
import sys

import pytest
import torch

from robustml.train.memory import keep_freed_memory


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs glibc and /proc (Linux)")
def test_a_freed_large_tensor_stays_resident_and_is_reused():
    if not keep_freed_memory():
        pytest.skip("this C library has no mallopt (not glibc)")
    size = 96 * 2**20   # above glibc's default mmap threshold (32 MB at most)
    before = resident_bytes()
    block = torch.ones(size // 4)
    del block
    kept = resident_bytes()
    assert kept - before > size // 2   # with the default threshold it would be unmapped on free
    again = torch.ones(size // 4)       # reuses the kept pages: the resident size barely grows
    assert resident_bytes() - kept < size // 4
    del again
