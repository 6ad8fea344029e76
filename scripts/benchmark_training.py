"""Measure what trainer.accumulate, trainer.precision=fp16/bf16 and trainer.compile cost per step.

Every number is a ratio of two ``Trainer._train_step`` timings measured in the same process,
interleaved round-robin (the order rotated every round), each sample ``--steps`` optimizer steps
on one fixed batch of 256 Colored MNIST-shaped examples (2x14x14, four groups, binary label;
random values: a step's time does not depend on them), Adam, fp32 unless named:

1. ``accumulate``: one optimizer step of K = 4 micro-batches of 64 / one step on the batch of 256,
   for ERM and Group DRO, on the IRM paper's Colored MNIST MLP (392-390-390-1) and the small CNN
   (``model=cnn``, channels 32-64-64); target <= 1.05. Group DRO with K > 1 forwards the whole
   batch once more without gradients (its ``q`` step), so its ratio includes that pass. Beside
   each, ``plain``: the same ratio for a hand-written PyTorch loop (``model(x_m)``, BCE,
   ``backward`` per micro-batch; interleaved with the trainers), what the hardware itself
   charges for four small backward passes instead of one;
2. ``precision``: an ERM step in fp16 (autocast + GradScaler) and in bf16 / the fp32 step (MLP);
3. ``compile``: an ERM step through ``torch.compile`` / the eager step (MLP), after the compiled
   warm-up; the compilation's own seconds are reported beside it.

The medians of the per-round ratios are printed and written to ``--json`` with their spread
(interquartile range) and the machine (CPU model, its AVX2/AVX-512/bf16 flags, threads)::

    python scripts/benchmark_training.py --json experiments/benchmarks/training.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from robustml.data.contract import GroupedTensorDataset
from robustml.losses import ERMLoss, GroupDROLoss
from robustml.models import MLP, SmallCNN
from robustml.report import write_text
from robustml.train import Trainer, TrainSettings

BATCH = 256
TARGETS = {"accumulate": 1.05}
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
MODELS = {"mlp": lambda: MLP((2, 14, 14), 1, hidden_dims=(390, 390)),
          "cnn": lambda: SmallCNN((2, 14, 14), 1)}
LOSSES = {"erm": lambda: ERMLoss(4), "group_dro": lambda: GroupDROLoss(4, step_size=0.01)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", required=True, type=Path, help="where to write the results")
    parser.add_argument("--repeats", type=int, default=10, help="interleaved timed rounds")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per timed sample")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--skip-compile", action="store_true", help="measure no compiled step")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args(argv)
    for name in ("repeats", "steps", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be a positive integer, got {getattr(args, name)}")
    return args


def dataset(seed: int = 0) -> GroupedTensorDataset:
    """Return ``BATCH`` random Colored MNIST-shaped examples with binary labels and attributes."""
    g = torch.Generator().manual_seed(seed)
    y, attr = torch.randint(0, 2, (BATCH,), generator=g), torch.randint(0, 2, (BATCH,), generator=g)
    return GroupedTensorDataset(torch.rand(BATCH, 2, 14, 14, generator=g), y, attr, num_classes=2,
                                attr_names=("red", "green"))


def trainer(model_name: str, loss: str, data: GroupedTensorDataset, **settings) -> Trainer:
    """Return a trainer of a fresh model (seed 0) on ``data`` in batches of ``BATCH``."""
    torch.manual_seed(0)
    model = MODELS[model_name]()
    return Trainer(model, LOSSES[loss](), torch.optim.Adam(model.parameters(), lr=1e-3), data, data,
                   TrainSettings(max_steps=1, batch_size=BATCH, progress=False, select="last",
                                 **settings), run_dir=tempfile.gettempdir())


class PlainLoop:
    """A hand-written ERM step with ``accumulate`` micro-batches: the reference of the ratios."""

    def __init__(self, model_name: str, accumulate: int) -> None:
        torch.manual_seed(0)
        self.model, self.accumulate = MODELS[model_name](), accumulate
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def _train_step(self, batch: dict) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        for x, y in zip(batch["x"].chunk(self.accumulate), batch["y"].chunk(self.accumulate)):
            logits = self.model(x).squeeze(1)
            (F.binary_cross_entropy_with_logits(logits, y.float()) / self.accumulate).backward()
        self.optimizer.step()


def interleaved(trainers: dict[str, Trainer | PlainLoop], batch: dict, *, repeats: int,
                steps: int) -> dict[str, list[float]]:
    """Return each trainer's seconds per step in every round (one untimed warm-up sample first)."""
    def sample(t: Trainer | PlainLoop) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            t._train_step(batch)
        return (time.perf_counter() - start) / steps

    for t in trainers.values():
        sample(t)
    names, times = list(trainers), {name: [] for name in trainers}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(sample(trainers[name]))
    return times


def ratio(times: dict[str, list[float]], name: str, base: str) -> dict:
    """Return the median and interquartile range of ``name``'s per-round time over ``base``'s."""
    rounds = [t / b for t, b in zip(times[name], times[base])]
    quartiles = statistics.quantiles(rounds, n=4) if len(rounds) > 1 else [rounds[0]] * 3
    return {"ratio": statistics.median(rounds), "iqr": [quartiles[0], quartiles[2]],
            "base_ms": 1e3 * statistics.median(times[base])}


def machine_info() -> dict:
    """Return the CPU model, its relevant instruction flags, threads and the torch version."""
    info = {"cpu": platform.processor(), "logical_cpus": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "load_avg_1min_at_start": os.getloadavg()[0]}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        fields = dict(line.split(":", 1) for line in cpuinfo.read_text().splitlines() if ":" in line)
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        flags = fields.get("flags", "").split()
        info.update(cpu=fields.get("model name", ""),
                    cpu_flags={flag: flag in flags for flag in CPU_FLAGS})
    return info


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    data = dataset()
    batch = {"x": data.x, "y": data.y, "group": data.group}
    results: dict = {"machine": machine_info(), "batch": BATCH, "repeats": args.repeats,
                     "steps_per_sample": args.steps, "accumulate": {}, "precision": {}}
    for model_name in args.models:
        for loss in LOSSES:
            times = interleaved({"k1": trainer(model_name, loss, data),
                                 "k4": trainer(model_name, loss, data, accumulate=4),
                                 "plain_k1": PlainLoop(model_name, 1),
                                 "plain_k4": PlainLoop(model_name, 4)}, batch,
                                repeats=args.repeats, steps=args.steps)
            results["accumulate"][f"{model_name}_{loss}"] = {
                **ratio(times, "k4", "k1"), "plain": ratio(times, "plain_k4", "plain_k1")}
    times = interleaved({p: trainer("mlp", "erm", data, precision=p) for p in ("fp32", "fp16", "bf16")},
                        batch, repeats=args.repeats, steps=args.steps)
    results["precision"] = {p: ratio(times, p, "fp32") for p in ("fp16", "bf16")}
    if not args.skip_compile:
        compiled = trainer("mlp", "erm", data, compile=True)
        start = time.perf_counter()
        compiled._train_step(batch)  # the first step compiles the forward and the backward
        compile_seconds = time.perf_counter() - start
        times = interleaved({"eager": trainer("mlp", "erm", data), "compiled": compiled}, batch,
                            repeats=args.repeats, steps=args.steps)
        results["compile"] = {**ratio(times, "compiled", "eager"), "compile_seconds": compile_seconds}
    print_table(results)
    write_text(args.json, json.dumps(results, indent=2) + "\n")
    return results


def print_table(results: dict) -> None:
    """Print one line per ratio: what, median, spread, fp32/K=1 milliseconds, target status."""
    machine = results["machine"]
    flags = ", ".join(f for f, present in machine.get("cpu_flags", {}).items() if present)
    print(f"{machine['cpu']} ({flags}), {machine['torch_threads']} thread(s), torch {machine['torch']}")
    rows = [(f"accumulate K=4 / K=1, {name}", value, "accumulate")
            for name, value in results["accumulate"].items()]
    rows += [(f"{p} / fp32, mlp_erm", value, None) for p, value in results["precision"].items()]
    if "compile" in results:
        rows.append(("compiled / eager, mlp_erm (compiling: "
                     f"{results['compile']['compile_seconds']:.0f} s)", results["compile"], None))
    for label, value, target in rows:
        low, high = value["iqr"]
        status = ""
        if target is not None:
            status = f"  target <= {TARGETS[target]}: " + ("PASS" if value["ratio"] <= TARGETS[target]
                                                            else "MISS")
        plain = f"; plain loop {value['plain']['ratio']:.3f}" if "plain" in value else ""
        print(f"{label:<48} {value['ratio']:.3f} (IQR {low:.3f}-{high:.3f}; base "
              f"{value['base_ms']:.1f} ms{plain}){status}")


if __name__ == "__main__":
    main()
