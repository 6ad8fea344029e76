"""Cost of the trackers: the demo run with ``logger=tensorboard`` and ``logger=mlflow`` against
``logger=none``.

Each trial is a real ``robustml-train`` process of the demo (the defaults: colored digits, MLP,
full batch, 300 steps, 12 evaluations). Two times per trial: the process's wall time (start to
exit: imports, data, training, outputs and the trackers' last sends, which the run waits for) and
``train_seconds`` of its ``metrics.json`` (the training loop, which the tracker process runs
beside); also the CPU seconds of the run and its tracker process together (what the trackers
cost a machine with no core to spare). Settings run interleaved (their order rotates every repeat), so slow phases of a shared
machine fall on all of them; each repeat prints its ratios to ``logger=none``. All MLflow trials
log to one local store (the default sqlite file), created by an untimed first run whose wall time
is printed apart: creating the tables is a one-time cost of a new store.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/benchmark_trackers.py --repeats 3 \\
        --json experiments/benchmarks/trackers.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from robustml.report.machine import machine_info

SETTINGS = ("none", "tensorboard", "mlflow")
BASELINE = "none"


def trial(logger: str, run_dir: Path, output_root: Path) -> tuple[float, float, float]:
    """Run the demo with ``logger=<logger>``; return its wall time, ``train_seconds`` and the CPU
    seconds of the run and its tracker process together."""
    script = Path(sys.executable).parent / "robustml-train"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([str(script), f"logger={logger}", "trainer.progress=false", f"hydra.run.dir={run_dir}",
                    f"paths.output_root={output_root}"], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, json.loads((run_dir / "metrics.json").read_text())["train_seconds"], cpu


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="write the trials and ratios here")
    args = parser.parse_args()
    machine = machine_info()
    flags = " ".join(flag for flag, present in machine["cpu_flags"].items() if present)
    print(f"{machine['cpu']}; CPU flags: {flags}; {machine['cores']} logical CPUs (shared machine); "
          f"OMP_NUM_THREADS={machine['OMP_NUM_THREADS']}")
    trials: dict[str, list[tuple[float, float, float]]] = {name: [] for name in SETTINGS}
    ratios: dict[str, dict[str, list[float]]] = {name: {"wall": [], "train": [], "cpu": []}
                                                 for name in SETTINGS if name != BASELINE}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store_wall, _, _ = trial("mlflow", root / "first", root / "runs")
        print(f"untimed first MLflow run (creates the sqlite store): wall {store_wall:.1f} s")
        for repeat in range(args.repeats):
            order = list(SETTINGS[repeat % len(SETTINGS):] + SETTINGS[:repeat % len(SETTINGS)])
            measured = {name: trial(name, root / f"{repeat}_{name}", root / "runs") for name in order}
            for name, result in measured.items():
                trials[name].append(result)
            for name in ratios:
                ratios[name]["wall"].append(measured[name][0] / measured[BASELINE][0])
                ratios[name]["train"].append(measured[name][1] / measured[BASELINE][1])
                ratios[name]["cpu"].append(measured[name][2] / measured[BASELINE][2])
            print(f"repeat {repeat} (order {', '.join(order)}): " + "; ".join(
                f"{name} wall {measured[name][0]:.1f} s, train {measured[name][1]:.1f} s, "
                f"CPU {measured[name][2]:.1f} s" for name in SETTINGS)
                + "; ratios to none (wall, train, CPU): " + ", ".join(
                f"{name} " + ", ".join(f"{ratios[name][k][-1]:.3f}" for k in ("wall", "train", "cpu"))
                for name in ratios))
    print("\nlogger | wall s, median (min-max) | train s | CPU s | wall ratio to none | train ratio | CPU ratio")
    for name in SETTINGS:
        r = ratios.get(name)
        print(f"{name} | " + " | ".join(_summary([t[i] for t in trials[name]]) for i in range(3)) + " | "
              + " | ".join(_summary(r[k]) if r else "1" for k in ("wall", "train", "cpu")))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": machine, "command": "robustml-train logger=<logger> trainer.progress=false",
            "first_mlflow_run_wall_s": store_wall,
            "trials": {name: [{"wall_s": w, "train_s": t, "cpu_s": c} for w, t, c in trials[name]]
                       for name in SETTINGS},
            "ratios_to_none": ratios}, indent=2) + "\n")


if __name__ == "__main__":
    main()
