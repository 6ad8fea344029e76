"""Throughput of ``robustml-train`` in 1 process against 2 processes (torchrun, gloo on CPU).

Each trial is a real ``torchrun --standalone --nproc_per_node=N --no-python robustml-train`` run
of the default configuration (colored digits, MLP, full batch) or of ``--batch-size``; throughput
is training examples per second of ``train_seconds`` in the run's ``metrics.json`` (the training
loop only: process start, data building and the final evaluation are left out). Settings run
interleaved (their order rotates every repeat), so slow phases of a shared machine fall on all of
them, and each repeat prints its ratios measured in that repeat.

Settings: 1 process with 1 thread, 2 processes with 1 thread each (data parallel over 2 cores), and
1 process with 2 threads (the other way to use 2 cores). ``OMP_NUM_THREADS`` sets the threads.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/benchmark_distributed.py --repeats 3 --steps 300
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SETTINGS = {"1 proc x 1 thread": (1, 1), "2 procs x 1 thread": (2, 1), "1 proc x 2 threads": (1, 2)}
BASELINE = "1 proc x 1 thread"


def trial(nproc: int, threads: int, steps: int, batch_size: int | None, out_dir: Path) -> float:
    """Run one training under torchrun; return training examples per second."""
    bin_dir = Path(sys.executable).parent
    # trainer.l2_weight: the default when experiments/benchmarks/distributed.txt was measured.
    overrides = [f"trainer.max_steps={steps}", f"trainer.eval_every={steps}", "trainer.progress=false",
                 "trainer.l2_weight=0.0011", f"hydra.run.dir={out_dir}"]
    if batch_size is not None:
        overrides.append(f"trainer.batch_size={batch_size}")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run([str(bin_dir / "torchrun"), "--standalone", f"--nproc_per_node={nproc}",
                    "--no-python", str(bin_dir / "robustml-train"), *overrides],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    final = json.loads((out_dir / "metrics.json").read_text())
    per_step = batch_size or sum(v for k, v in final.items() if k.startswith("train/count_group_"))
    return steps * per_step / final["train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=None, help="default: full batch")
    args = parser.parse_args()
    flags = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
             if f in Path("/proc/cpuinfo").read_text().split()]
    print(f"CPU flags: {' '.join(flags)}; {os.cpu_count()} logical CPUs (shared machine: noisy); "
          f"steps {args.steps}, batch {args.batch_size or 'full'}")
    names = list(SETTINGS)
    results: dict[str, list[float]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in names if name != BASELINE}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            order = names[repeat % len(names):] + names[:repeat % len(names)]
            measured = {}
            for name in order:
                nproc, threads = SETTINGS[name]
                measured[name] = trial(nproc, threads, args.steps, args.batch_size,
                                       Path(tmp) / f"{repeat}_{nproc}_{threads}")
                results[name].append(measured[name])
            line = ", ".join(f"{name}: {measured[name]:,.0f} ex/s" for name in names)
            for name in ratios:
                ratios[name].append(measured[name] / measured[BASELINE])
            print(f"repeat {repeat}: {line}; ratios to {BASELINE}: "
                  + ", ".join(f"{name} {ratios[name][-1]:.2f}" for name in ratios))
    print("\nsetting | examples/s median (min-max) | ratio to 1 proc x 1 thread, median (min-max)")
    for name in names:
        r = ratios.get(name)
        ratio = f"{statistics.median(r):.2f} ({min(r):.2f}-{max(r):.2f})" if r else "1"
        print(f"{name} | {statistics.median(results[name]):,.0f} ({min(results[name]):,.0f}-"
              f"{max(results[name]):,.0f}) | {ratio}")


if __name__ == "__main__":
    main()
