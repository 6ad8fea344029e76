"""Where a trainer run of the end-to-end benchmark spends its time, and what the chunk size changes.

Two measurements on the benchmark's data and model (``scripts/benchmark_losses.py``: real Colored
MNIST from ``--data-root``, 2 x 25,000 training images, the IRM paper's MLP and IRM loss, full
batch), at torch's default thread count unless ``--threads``:

1. **Phases of ``Trainer.fit``** for ``--steps`` steps, evaluating at the end
   (``eval_every=steps``) and like for like (``eval_every=1, eval_train=last``): seconds in
   training steps, in evaluations and in checkpoint writes, medians of ``--repeats`` runs
   interleaved, each from the same initial weights.
2. **Chunk size**: seconds of one ``Trainer._train_step`` for each ``--chunk-sizes`` value,
   interleaved round-robin over ``--repeats`` rounds, median per size.

    python scripts/profile_trainer.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from copy import deepcopy
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_losses as bench  # noqa: E402  (the benchmark's data, model and settings)

import robustml.train.loop as loop  # noqa: E402
from robustml.losses import IRMLoss  # noqa: E402
from robustml.models import MLP  # noqa: E402
from robustml.train import Trainer, TrainSettings  # noqa: E402
from robustml.train.memory import keep_freed_memory  # noqa: E402

RUNS = {"evaluates at the end": (None, "every"), "like for like": (1, "last")}


def _trainer(model, train, test, run_dir, *, steps: int, eval_every: int, eval_train: str,
             chunk_size: int) -> Trainer:
    settings = TrainSettings(max_steps=steps, eval_every=eval_every, eval_train=eval_train,
                             chunk_size=chunk_size, select="last", l2_weight=bench.L2_WEIGHT,
                             progress=False)
    criterion = IRMLoss(train.num_envs, penalty_weight=bench.PENALTY_WEIGHT,
                        anneal_steps=bench.ANNEAL_STEPS)
    return Trainer(model, criterion, torch.optim.Adam(model.parameters(), lr=bench.LR), train, test,
                   settings, run_dir=run_dir, partition="env")


def _timed(seconds: dict[str, float], key: str, function):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = function(*args, **kwargs)
        seconds[key] += time.perf_counter() - start
        return out
    return wrapper


def phases(model0, train, test, args) -> dict[str, dict[str, float]]:
    """Return the median seconds of each phase of ``fit`` for each of :data:`RUNS`."""
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in RUNS}
    save = loop.save_checkpoint
    try:
        for _ in range(args.repeats):
            for name, (eval_every, eval_train) in RUNS.items():
                seconds = dict.fromkeys(("steps", "evaluations", "checkpoints", "fit"), 0.0)
                with tempfile.TemporaryDirectory() as run_dir:
                    trainer = _trainer(deepcopy(model0), train, test, run_dir, steps=args.steps,
                                       eval_every=eval_every or args.steps, eval_train=eval_train,
                                       chunk_size=args.chunk_size)
                    trainer._train_step = _timed(seconds, "steps", trainer._train_step)
                    trainer._evaluate = _timed(seconds, "evaluations", trainer._evaluate)
                    loop.save_checkpoint = _timed(seconds, "checkpoints", save)
                    _timed(seconds, "fit", trainer.fit)()
                samples[name].append(seconds)
    finally:
        loop.save_checkpoint = save
    return {name: {key: statistics.median(s[key] for s in runs) for key in runs[0]}
            for name, runs in samples.items()}


def chunk_sizes(model0, train, test, args) -> dict[int, float]:
    """Return the median seconds of one training step for each chunk size."""
    batch = train.full_batch()
    trainers = {}
    with tempfile.TemporaryDirectory() as run_dir:
        for size in args.chunk_sizes:
            trainers[size] = _trainer(deepcopy(model0), train, test, run_dir, steps=1, eval_every=1,
                                      eval_train="every", chunk_size=size)
            trainers[size]._train_step(batch)  # warm-up
        seconds: dict[int, list[float]] = {size: [] for size in trainers}
        for _ in range(args.repeats):
            for size, trainer in trainers.items():
                start = time.perf_counter()
                trainer._train_step(batch)
                seconds[size].append(time.perf_counter() - start)
    return {size: statistics.median(values) for size, values in seconds.items()}


def main(argv: list[str] | None = None) -> None:
    """Print the phases of both runs and the step time of each chunk size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=1024, help="chunk size of the phases")
    parser.add_argument("--chunk-sizes", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--size", type=int, default=25000, help="examples per training environment")
    parser.add_argument("--synthetic", action="store_true", help="random images (no MNIST needed)")
    args = parser.parse_args(argv)
    keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    data_args = bench.parse_args(["--json", "unused.json", "--data-root", str(args.data_root),
                                  *(["--synthetic"] if args.synthetic else [])])
    train_all, test, source = bench.load_data(data_args, args.size, min(args.size, 10000))
    train = bench.first_per_env(train_all, args.size)
    torch.manual_seed(0)
    model0 = MLP((2, 14, 14), 1, hidden_dims=(390, 390))
    print(f"data: {source}; torch threads: {torch.get_num_threads()}; steps per run: {args.steps}")
    for name, seconds in phases(model0, train, test, args).items():
        print(f"{name}: " + ", ".join(f"{key} {value:.2f} s" for key, value in seconds.items()))
    for size, seconds in chunk_sizes(model0, train, test, args).items():
        print(f"chunk_size {size}: {seconds:.3f} s per step")


if __name__ == "__main__":
    main()
