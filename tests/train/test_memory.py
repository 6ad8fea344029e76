"""keep_freed_memory: freed large blocks stay in the process and are reused, not faulted in anew."""

import json
import subprocess
import sys

import pytest

# Run in a fresh interpreter: a heap shaped by earlier tests can place the blocks anywhere.
PROBE = """
import json, os, sys, torch
from robustml.train.memory import keep_freed_memory
def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
enabled = keep_freed_memory() if sys.argv[1] == "keep" else None
size = 96 * 2**20                       # above glibc's largest default mmap threshold (32 MB)
before = resident()
block = torch.ones(size // 4); del block
kept = resident()
again = torch.ones(size // 4)
print(json.dumps({"enabled": enabled, "kept": kept - before, "regrown": resident() - kept}))
"""


def probe(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs glibc and /proc (Linux)")
def test_a_freed_large_tensor_stays_resident_and_is_reused():
    size = 96 * 2**20
    kept = probe("keep")
    if not kept["enabled"]:
        pytest.skip("this C library has no mallopt (not glibc)")
    assert kept["kept"] > size // 2        # the freed block stayed in the process
    assert kept["regrown"] < size // 4     # and the next block reused its pages
    default = probe("default")
    assert default["kept"] < size // 4     # glibc's default unmaps it on free
    assert default["regrown"] > size // 2  # so the next block faults in new pages
