"""Check every CUDA path of robustml against its CPU result, and ResNet-50's throughput: one table.

On a GPU machine, after the README's set-up with the CUDA build of torch (meant to take under 10
minutes; not yet run on a GPU)::

    .venv/bin/python scripts/gpu_check.py --out gpu_check.md

Each row trains a tiny run (the embedded colored digits, an MLP, 8 steps, an evaluation every 2;
the pin_memory row on 24 small PNG images) twice: with the path under test on ``--device``, and
as a reference on the CPU (fp32, eager, one process, ``accumulate=1``, no loader workers). The row
passes when every evaluation's training loss is within the row's relative tolerance of the
reference's. Rows: fp32; bf16; fp16 with the GradScaler; ``accumulate=4`` (Group DRO, batches of
256); ``pin_memory`` loaders with 2 workers; ``compile``; resume (an exception inside step 5,
then ``trainer.resume=true``); torchrun with one process per GPU (NCCL; gloo on the CPU). Then
ResNet-50 at 224 px: images per second of robustml's DataLoader path (``Trainer`` steps over an
on-disk image set, ``trainer.precision=auto``, workers and pinned memory) over a plain AMP loop of
the same model over a plain ``DataLoader`` of the same images (target >= 0.95), and the peak
GPU memory of every row.

``--device cpu`` runs the same table with the CPU as the device (torchrun on gloo with 2
processes, a small image size for the throughput): the dry run the tests run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_module

import robustml.train.loop as loop
from robustml.data.datasets.example_files import write_image_csv
from robustml.models.forward import resolve_precision
from robustml.pipeline.build import build_splits, build_trainer
from robustml.pipeline.run import run

BASE = ["trainer.max_steps=8", "trainer.eval_every=2", "trainer.progress=false",
        "model.hidden_dims=[64]", "optimizer.lr=0.003"]
DRO = ["loss=group_dro", "loss.criterion.step_size=0.5", "trainer.batch_size=256"]
IMAGES = ["data=image_csv", "data.csv={csv}", "data.image_size=16", "trainer.batch_size=8"]
# name: (overrides on the device, overrides of the CPU reference, relative tolerance)
ROWS = {
    "fp32": ([], [], 1e-3),
    "bf16": (["trainer.precision=bf16"], [], 5e-2),
    "fp16 + GradScaler": (["trainer.precision=fp16"], [], 5e-2),
    "accumulate=4, Group DRO": ([*DRO, "trainer.accumulate=4"], DRO, 1e-3),
    "pin_memory, 2 workers": ([*IMAGES, "trainer.num_workers=2", "trainer.pin_memory=true",
                               "trainer.persistent_workers=true"], IMAGES, 1e-3),
    "compile": (["trainer.compile=true"], [], 1e-3),
    "resume after a crash": (["trainer.resume=true"], [], 1e-3),
    "torchrun": (DRO, DRO, 1e-3),
}
THROUGHPUT_TARGET = 0.95


class _Crash(Exception):
    """Raised inside training step 5 of the resume row's first run."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--out", type=Path, default=None, help="also write the table (Markdown) here")
    parser.add_argument("--skip", nargs="*", default=[], choices=[*ROWS, "throughput"], metavar="ROW")
    parser.add_argument("--image-size", type=int, default=224, help="throughput: image side")
    parser.add_argument("--batch-size", type=int, default=128, help="throughput: images per step")
    parser.add_argument("--steps", type=int, default=30, help="throughput: timed steps per loop")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch.cuda.is_available() is False: install the CUDA "
                     "build of torch (README, 'Train on a GPU'), or pass --device cpu for the dry run")
    return args


def config(overrides: list[str]):
    with initialize_config_module(config_module="robustml.configs", version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def train_losses(overrides: list[str], device: str, run_dir: Path) -> list[float]:
    """Train ``BASE + overrides`` on ``device`` into ``run_dir``; return each evaluation's loss."""
    run(config([*BASE, *overrides, f"trainer.device={device}"]), run_dir=run_dir, summary="none")
    return _losses(run_dir)


def _losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["train/loss"] for line in lines]


def device_losses(name: str, overrides: list[str], device: str, run_dir: Path) -> list[float]:
    """Run the row ``name`` on ``device``; resume and torchrun rows need more than one run."""
    if name == "resume after a crash":
        train_step = loop.Trainer._train_step

        def crashing(self, batch):
            if self.step + 1 == 5:
                raise _Crash
            return train_step(self, batch)

        loop.Trainer._train_step = crashing
        try:
            train_losses([], device, run_dir)
        except _Crash:
            pass
        finally:
            loop.Trainer._train_step = train_step
        return train_losses(overrides, device, run_dir)
    if name == "torchrun":
        processes = torch.cuda.device_count() if device == "cuda" else 2
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={processes}", "--no-python",
                   str(Path(sys.executable).parent / "robustml-train"), *BASE, *overrides,
                   f"trainer.device={device}", f"hydra.run.dir={run_dir}"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        if done.returncode:
            raise RuntimeError(f"torchrun failed ({done.returncode}): {done.stderr[-2000:]}")
        return _losses(run_dir)
    return train_losses(overrides, device, run_dir)


def check_rows(args: argparse.Namespace, root: Path) -> list[dict]:
    """Return one dict per row: losses' max relative difference, tolerance, status, time, memory."""
    csv = write_image_csv(root / "images", per_group=6, size=(16, 16), split_column=True)
    rows, references = [], {}  # references: CPU losses by overrides, each trained once
    for i, (name, (overrides, reference, tolerance)) in enumerate(ROWS.items()):
        if name in args.skip:
            rows.append({"row": name, "status": "skipped"})
            continue
        overrides, reference = ([o.format(csv=csv) for o in part] for part in (overrides, reference))
        if tuple(reference) not in references:
            references[tuple(reference)] = train_losses(reference, "cpu", root / f"reference_{i}")
        expected = references[tuple(reference)]
        reset_peak_memory(args.device)
        start = time.perf_counter()
        got = device_losses(name, overrides, args.device, root / f"row_{i}")
        seconds = time.perf_counter() - start
        difference = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(got, expected)) \
            if len(got) == len(expected) else float("inf")
        rows.append({"row": name, "max_rel_diff": difference, "tolerance": tolerance,
                     "status": "PASS" if difference <= tolerance else "FAIL",
                     "seconds": seconds, "peak_gpu_mb": peak_memory_mb(args.device)})
    return rows


def reset_peak_memory(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mb(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2 ** 20 if device == "cuda" else None


def throughput(args: argparse.Namespace, root: Path) -> dict:
    """Return ResNet-50's images/s through robustml's Trainer and through a plain AMP loop."""
    images = args.batch_size * 8
    csv = write_image_csv(root / "resnet", per_group=images // 4 + 1, size=(args.image_size,) * 2,
                          split_column=True)
    cfg = config(["data=image_csv", f"data.csv={csv}", f"data.image_size={args.image_size}",
                  "model=resnet50", f"trainer.batch_size={args.batch_size}",
                  f"trainer.num_workers={args.workers}", "trainer.pin_memory=true",
                  f"trainer.persistent_workers={str(args.workers > 0).lower()}",
                  "trainer.precision=auto", "trainer.l2_weight=0",
                  "trainer.progress=false", f"trainer.device={args.device}"])
    device = torch.device(args.device)
    data = build_splits(cfg, root / "resnet_run")
    trainer = build_trainer(cfg, data, root / "resnet_run")
    precision = resolve_precision("auto", device)

    def robustml_step() -> None:
        trainer._train_step(next(trainer.batches))

    model = trainer.model.__class__(data.splits.input_shape, 1, arch="resnet50").to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    loader = torch.utils.data.DataLoader(data.splits.train, batch_size=args.batch_size, shuffle=True,
                                         num_workers=args.workers, pin_memory=True, drop_last=True,
                                         persistent_workers=args.workers > 0)
    batches = iter(())

    def plain_step() -> None:
        nonlocal batches
        batch = next(batches, None)
        if batch is None:
            batches = iter(loader)
            batch = next(batches)
        x = batch["x"].to(device, non_blocking=True)
        y = batch["y"].to(device, non_blocking=True).float()
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits.float().squeeze(1), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    rates = {}
    for name, step in (("plain", plain_step), ("robustml", robustml_step)):
        reset_peak_memory(args.device)
        for _ in range(3):  # warm-up: workers started, cuDNN autotuned
            step()
        sync(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync(device)
        rates[name] = args.steps * args.batch_size / (time.perf_counter() - start)
        rates[f"{name}_peak_gpu_mb"] = peak_memory_mb(args.device)
    ratio = rates["robustml"] / rates["plain"]
    return {**rates, "precision": precision, "ratio": ratio, "target": THROUGHPUT_TARGET,
            "status": "PASS" if ratio >= THROUGHPUT_TARGET else "MISS"}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def table(args: argparse.Namespace, rows: list[dict], speed: dict | None) -> str:
    """Return the Markdown table of the rows and the throughput line."""
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU (dry run)"
    lines = [f"Device: {name}; torch {torch.__version__}; CUDA {torch.version.cuda}", "",
             "| path | max rel. diff to CPU | tolerance | status | seconds | peak GPU MB |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        if row["status"] == "skipped":
            lines.append(f"| {row['row']} | | | skipped | | |")
            continue
        memory = "-" if row["peak_gpu_mb"] is None else f"{row['peak_gpu_mb']:.0f}"
        lines.append(f"| {row['row']} | {row['max_rel_diff']:.2e} | {row['tolerance']:g} | "
                     f"{row['status']} | {row['seconds']:.1f} | {memory} |")
    if speed is not None:
        memory = "-" if speed["robustml_peak_gpu_mb"] is None else f"{speed['robustml_peak_gpu_mb']:.0f} MB"
        lines += ["", f"ResNet-50, {args.image_size} px, batch {args.batch_size}, {speed['precision']}: "
                  f"robustml {speed['robustml']:.1f} img/s, plain AMP loop {speed['plain']:.1f} img/s, "
                  f"ratio {speed['ratio']:.3f} (target >= {THROUGHPUT_TARGET}: {speed['status']}); "
                  f"peak GPU memory {memory}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        rows = check_rows(args, Path(tmp))
        speed = None if "throughput" in args.skip else throughput(args, Path(tmp))
    text = table(args, rows, speed)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return {"rows": rows, "throughput": speed}


if __name__ == "__main__":
    main()
