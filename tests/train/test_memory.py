"""keep_freed_memory: a large block freed by the process stays in it instead of being unmapped."""

import json
import os
import subprocess
import sys

import pytest

# A fresh interpreter, so that the allocator settings of one probe do not leak into the other.
PROBE = """
import json, os, sys, torch
from robustml.train.memory import keep_freed_memory
def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
enabled = keep_freed_memory() if sys.argv[1] == "keep" else None
before = resident()
block = torch.ones(24 * 2**20)   # 96 MB: above glibc's largest default mmap threshold (32 MB)
del block
print(json.dumps({"enabled": enabled, "kept": resident() - before}))
"""
SIZE = 96 * 2**20


def probe(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_a_freed_large_block_stays_in_the_process():
    kept = probe("keep")
    if not kept["enabled"]:
        pytest.skip("this C library refuses mallopt (not glibc)")
    assert kept["kept"] > SIZE // 2               # kept: the next large tensor can reuse it
    assert probe("default")["kept"] < SIZE // 4   # glibc's default unmaps it on free
