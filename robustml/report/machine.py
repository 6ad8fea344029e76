"""The machine a benchmark ran on, as its JSON records it (CPU model, flags, cores, versions)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

# The flags that decide bf16 and matrix-product speed on a CPU.
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def machine_info(cpu_flags: tuple[str, ...] = CPU_FLAGS) -> dict[str, object]:
    """Return the CPU model, whether it has each of ``cpu_flags``, core and thread counts, versions."""
    cpu, flags = platform.processor(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = cpuinfo.read_text().splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        cpu = names[0] if names else cpu
        flags = {f for line in lines if line.startswith("flags") for f in line.split(":")[1].split()}
    import sklearn
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "cpu_flags": {flag: flag in flags for flag in cpu_flags},
            "torch": torch.__version__, "scikit-learn": sklearn.__version__,
            "python": platform.python_version()}
