"""Measure what robustml's losses, bf16 and counterfactual augmentation cost per training step.

Everything is a ratio to plain ERM (or to a reference loop) measured in the same process, on the
IRM paper's Colored MNIST model (``MLP((2, 14, 14), 1, hidden_dims=(390, 390))``, BCE, Adam) with
two training environments of ``size`` examples each, full batch:

1. per-step time of each loss / ERM's, losses interleaved round-robin, median of the per-round
   ratios; every timed sample starts from the same weights, Adam state and loss state. Beside
   it, ``isolated_estimate``: 1 + (the loss's own forward/backward cost beyond ERM's, or the
   augmentation's cost) / ERM's step time, which resolves small overheads on a noisy machine;
2. ``bf16_speedup``: fp32 ERM step / bf16-autocast ERM step at the largest size;
3. ``end_to_end``: robustml's ``Trainer`` (IRMLoss, the paper's values, evaluation at the end)
   over a plain loop in the style of the IRM reference code (fp32, one unchunked forward per
   environment, autograd penalty, test-environment evaluation every step), same initial weights,
   ``--e2e-repeats`` interleaved rounds (median and spread of the per-round ratios); beside it,
   ``*_eval_every_step``, like for like: the Trainer evaluating the test environment at every step
   too, as the reference does (``eval_every=1, eval_train="last"``: the reference reads its
   training accuracy from its training forward, so the Trainer evaluates train once, at the end),
   and ``*_full_eval_every_step``: train and the test environment at every step;
4. ``augment_counterfactual``: ERM step with ``CounterfactualAugment`` / plain ERM step;
5. ``peak_memory``: peak resident memory of ``robustml-train experiment=<name>`` runs
   (``--peak-memory colored_mnist_irm ...``), each a fresh process.

The step timed in 1, 2 and 4 is ``Trainer._train_step``, the step the trainer runs. Data is real
Colored MNIST when MNIST is found under ``--data-root``, otherwise synthetic (random images
colored by the same construction); the JSON says which. Usage::

    python scripts/benchmark_losses.py --json experiments/benchmarks/losses.json --sizes 1000 25000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from copy import deepcopy
from pathlib import Path

import torch
import torch.nn.functional as F

from robustml.augment import CounterfactualAugment
from robustml.augment.counterfactual import dataset_rule
from robustml.data.datasets.colored import environment_names, make_colored_split
from robustml.data.datasets.colored_mnist import MNIST_FILES, colored_mnist_splits
from robustml.losses import ERMLoss, GroupDROLoss, IRMLoss, VRExLoss
from robustml.models import MLP
from robustml.models.forward import cpu_bf16_flags
from robustml.report import write_text
from robustml.train import Trainer, TrainSettings, predict_dataset
from robustml.train.memory import GLIBC_STEADY_MMAP_THRESHOLD, keep_freed_memory, set_malloc_thresholds
from robustml.pipeline.build import resolve_device

# The IRM paper's Colored MNIST hyperparameters (Arjovsky et al. 2019, reference code).
PENALTY_WEIGHT, ANNEAL_STEPS, L2_WEIGHT, LR = 91257.18613115903, 190, 0.00110794568, 0.000489853657
STEP_TARGETS = {"group_dro": {"1000": 1.10, "25000": 1.03}, "vrex": {"1000": 1.10, "25000": 1.03},
                "irm": {"1000": 1.10, "25000": 1.03},
                "augment_counterfactual": {"1000": 1.05, "25000": 1.05}}
END_TO_END_TARGETS = {"fp32": 0.6, "fp32_eval_every_step": 0.6, "bf16": 0.4,
                      "bf16_eval_every_step": 0.4}
PEAK_WRAPPER = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
                "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command-line options; exit with a usage message when one is invalid."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", required=True, type=Path, help="where to write the results")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 25000],
                        help="examples per training environment (the batch is twice this)")
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds per loss and size")
    parser.add_argument("--min-sample-seconds", type=float, default=0.2,
                        help="each timed sample runs enough steps to last about this long")
    parser.add_argument("--bf16-repeats", type=int, default=2, help="timed rounds fp32 vs bf16")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--chunk-size", type=int, default=1024, help="trainer.chunk_size")
    parser.add_argument("--e2e-steps", type=int, default=20, help="full-batch IRM steps, fp32")
    parser.add_argument("--e2e-bf16-steps", type=int, default=20, help="the same in bf16")
    parser.add_argument("--e2e-size", type=int, default=25000, help="examples per training env")
    parser.add_argument("--e2e-test-size", type=int, default=10000, help="test-environment size")
    parser.add_argument("--skip-bf16", action="store_true", help="measure nothing in bf16")
    parser.add_argument("--skip-bf16-end-to-end", action="store_true")
    parser.add_argument("--e2e-repeats", type=int, default=5, help="interleaved end-to-end rounds")
    parser.add_argument("--skip-steps", action="store_true",
                        help="measure only end_to_end (and peak memory), not the step ratios")
    parser.add_argument("--peak-memory", nargs="*", default=[], metavar="EXPERIMENT",
                        help="experiments whose robustml-train peak memory to measure")
    parser.add_argument("--peak-memory-steps", type=int, default=20)
    parser.add_argument("--data-root", type=Path, default=Path(os.environ.get("ROBUSTML_DATA", "data")),
                        help="folder holding MNIST/raw; synthetic data when MNIST is not there")
    parser.add_argument("--synthetic", action="store_true", help="use synthetic data even with MNIST")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("repeats", "bf16_repeats", "chunk_size", "e2e_steps", "e2e_bf16_steps",
                 "e2e_size", "e2e_test_size", "e2e_repeats", "peak_memory_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, "
                         f"got {getattr(args, name)}")
    if min(args.sizes) < 2:
        parser.error(f"--sizes must be integers >= 2, got {args.sizes}")
    return args


def load_data(args: argparse.Namespace, train_size: int, test_size: int):
    """Return ``(train, test, source)``: two training environments of ``train_size`` and a test env."""
    raw = args.data_root / "MNIST" / "raw"
    if not args.synthetic and all((raw / name).is_file() for name in MNIST_FILES):
        if train_size > 25000 or test_size > 10000:
            raise ValueError(f"real Colored MNIST has 25,000 examples per training environment and "
                             f"10,000 in test, got sizes {train_size} and {test_size}; use --synthetic")
        splits = colored_mnist_splits(args.data_root, seed=args.seed)
        return splits.train, splits.test.subset(torch.arange(test_size)), "mnist"
    generator = torch.Generator().manual_seed(args.seed)
    names = environment_names((0.2, 0.1), 0.9)

    def split(n: int, flips: tuple[float, ...], env_ids: tuple[int, ...]):
        images = torch.rand(n * len(flips), 14, 14, generator=generator)
        digits = torch.randint(0, 10, (n * len(flips),), generator=generator)
        return make_colored_split(images, digits, color_flips=flips, env_ids=env_ids, env_names=names,
                                  label_noise=0.25, generator=generator, grayscale=False,
                                  name="colored_mnist_synthetic")
    return split(train_size, (0.2, 0.1), (0, 1)), split(test_size, (0.9,), (2,)), "synthetic"


def first_per_env(train, size: int):
    """Return the first ``size`` examples of training environments 0 and 1."""
    idx = [torch.nonzero(train.env == env).flatten()[:size] for env in (0, 1)]
    return train.subset(torch.cat(idx))


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work, so that timings cover it (nothing to wait for on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def round_ratios(times: dict[str, list[float]], base: str) -> dict[str, list[float]]:
    """Return each entry's time / ``base``'s time in the same round, one value per round."""
    return {name: [t / b for t, b in zip(values, times[base])] for name, values in times.items()}


def spread(rounds: list[float] | None) -> str:
    """Return the interquartile range of per-round ratios as text ("" for fewer than 2 rounds)."""
    if not rounds or len(rounds) < 2:
        return ""
    low, _, high = statistics.quantiles(rounds, n=4)
    return f"{low:.3f}-{high:.3f}"


def interleaved(trainers: dict[str, Trainer], batch: dict, *, repeats: int, steps: int,
                device: torch.device) -> dict[str, list[float]]:
    """Time ``steps`` trainer steps per sample, round-robin over ``trainers``; seconds per step.

    Every sample starts from the same model weights and Adam state (all trainers share one model
    and optimizer) and from its own loss's initial state, so every sample does the same work.
    """
    first = next(iter(trainers.values()))
    model, optimizer = first.model, first.optimizer
    weights, adam = deepcopy(model.state_dict()), deepcopy(optimizer.state_dict())
    criteria = {name: deepcopy(t.criterion.state_dict()) for name, t in trainers.items()}

    def sample(name: str) -> float:
        trainer = trainers[name]
        model.load_state_dict(weights)
        optimizer.load_state_dict(adam)
        trainer.criterion.load_state_dict(criteria[name])
        if trainer.augment is not None:
            trainer.augment.generator.manual_seed(0)
        sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            trainer._train_step(batch)
        sync(device)
        return (time.perf_counter() - start) / steps

    for name in trainers:  # warm-up, untimed
        sample(name)
    names = list(trainers)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order
            times[name].append(sample(name))
    return times


def step_trainers(model, train, device, args, specs: dict[str, tuple[str, str]]) -> dict[str, Trainer]:
    """Return a trainer per ``name: (loss, precision)`` of ``specs``, sharing ``model`` and one Adam."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    num_groups, num_envs = train.num_groups, train.num_envs
    builders = {
        "erm": lambda: (ERMLoss(num_groups), "group", None),
        "group_dro": lambda: (GroupDROLoss(num_groups, step_size=0.01), "group", None),
        "vrex": lambda: (VRExLoss(num_envs, penalty_weight=10.0), "env", None),
        "irm": lambda: (IRMLoss(num_envs, penalty_weight=PENALTY_WEIGHT), "env", None),
        "irm_autograd": lambda: (IRMLoss(num_envs, penalty_weight=PENALTY_WEIGHT,
                                         closed_form=False), "env", None),
        "augment_counterfactual": lambda: (ERMLoss(num_groups), "group", CounterfactualAugment(
            dataset_rule(train), num_attrs=2, mode="replace", p=0.5,
            generator=torch.Generator(device=device))),
    }
    trainers = {}
    for name, (loss, precision) in specs.items():
        criterion, partition, augment = builders[loss]()
        settings = TrainSettings(max_steps=1, chunk_size=args.chunk_size, precision=precision,
                                 select="last", progress=False)
        trainers[name] = Trainer(model, criterion.to(device), optimizer, train, train, settings,
                                 run_dir=tempfile.gettempdir(), partition=partition, augment=augment)
    return trainers


def isolated_seconds(trainers: dict[str, Trainer], batch: dict, *, repeats: int,
                     device: torch.device) -> dict[str, float]:
    """Return each entry's median cost apart from the model, a low-noise view of the step ratios.

    For a loss: its forward and backward on fixed logits ``(B, 1)``; for an augmenting entry:
    the augmentation call alone. One untimed call first.
    """
    logits0 = torch.randn(batch["y"].shape[0], 1, device=device)

    def run(trainer: Trainer) -> None:
        if trainer.augment is not None:
            trainer.augment(batch)
        else:
            logits = logits0.clone().requires_grad_()
            trainer.criterion(logits, batch["y"], batch[trainer.partition]).backward()

    seconds = {}
    for name, trainer in trainers.items():
        samples = []
        for _ in range(repeats + 1):
            sync(device)
            start = time.perf_counter()
            run(trainer)
            sync(device)
            samples.append(time.perf_counter() - start)
        seconds[name] = statistics.median(samples[1:])
    return seconds


def steps_per_sample(trainer: Trainer, batch: dict, device: torch.device, seconds: float) -> int:
    """Return how many steps make a timed sample last about ``seconds`` (one warm-up step first)."""
    trainer._train_step(batch)
    sync(device)
    start = time.perf_counter()
    trainer._train_step(batch)
    sync(device)
    return max(1, math.ceil(seconds / (time.perf_counter() - start)))


def reference_loop(model, envs, steps: int) -> None:
    """Train like the IRM reference Colored MNIST code: fp32, full batch, evaluate every step.

    ``envs`` is ``[(x, y_float (N, 1)), ...]``: the two training environments, then the test one.
    Every step forwards each environment on its own, computes its NLL, accuracy and the IRMv1
    penalty by differentiating through a dummy scale (``create_graph``), adds ``l2 * ||w||^2``,
    and divides the loss by the penalty weight after the anneal step.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    for step in range(steps):
        results = []
        for x, y in envs:
            logits = model(x)
            scale = torch.tensor(1.0, device=x.device, requires_grad=True)
            grad = torch.autograd.grad(F.binary_cross_entropy_with_logits(logits * scale, y),
                                       [scale], create_graph=True)[0]
            results.append((F.binary_cross_entropy_with_logits(logits, y),
                            ((logits > 0).float() == y).float().mean(), torch.sum(grad ** 2)))
        train_nll = torch.stack([results[0][0], results[1][0]]).mean()
        train_penalty = torch.stack([results[0][2], results[1][2]]).mean()
        weight_norm = sum(w.norm().pow(2) for w in model.parameters())
        penalty_weight = PENALTY_WEIGHT if step >= ANNEAL_STEPS else 1.0
        loss = train_nll + L2_WEIGHT * weight_norm + penalty_weight * train_penalty
        if penalty_weight > 1.0:
            loss = loss / penalty_weight
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        results[2][1].item()  # the test accuracy, read every step


def accuracy(model, dataset) -> float:
    """Return the fraction of ``dataset`` that ``model`` classifies correctly (fp32 forward)."""
    return float((predict_dataset(model, dataset) == dataset.y).float().mean())


def _timed_trainer_run(model, criterion, train, test, device, args, *, precision: str, steps: int,
                       eval_every: int, eval_train: str) -> float:
    """Return the seconds of ``Trainer.fit`` for ``steps`` IRM steps, evaluating every ``eval_every``."""
    settings = TrainSettings(max_steps=steps, eval_every=eval_every, eval_train=eval_train,
                             chunk_size=args.chunk_size, precision=precision, select="last",
                             l2_weight=L2_WEIGHT, progress=False)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(model, criterion.to(device), torch.optim.Adam(model.parameters(), lr=LR),
                          train, test, settings, run_dir=run_dir, partition="env")
        sync(device)
        start = time.perf_counter()
        trainer.fit()
        sync(device)
        return time.perf_counter() - start


# Trainer runs of the end-to-end figure: name -> (eval_every, None: once at the end; eval_train).
TRAINER_RUNS = {"trainer": (None, "every"), "trainer_eval_every_step": (1, "last"),
                "trainer_full_eval_every_step": (1, "every")}


def end_to_end(model0, train, test, device, args, *, precision: str, steps: int,
               repeats: int) -> dict:
    """Time ``steps`` IRM steps of the Trainer and of the fp32 reference loop, ``repeats`` rounds.

    Every round runs, in an order rotated from round to round, the reference loop and three
    Trainer runs, each from the same initial weights: ``trainer`` evaluates train and the test
    environment once, at the end (``eval_every=steps``, as a user gets by default);
    ``trainer_eval_every_step`` evaluates the test environment at every step and train at the end
    (``eval_every=1, eval_train="last"``), the work of the reference loop, which reads its test
    accuracy every step and its training accuracy from the training forward;
    ``trainer_full_eval_every_step`` evaluates both at every step. The ratios are per round
    (Trainer seconds / reference seconds in the same round).
    """
    envs = [(train.x[train.env == e], train.y[train.env == e].float()[:, None]) for e in (0, 1)]
    envs.append((test.x, test.y.float()[:, None]))
    models: dict = {}

    def run(name: str) -> float:
        models[name] = model = deepcopy(model0)
        if name == "reference":
            # The reference script leaves malloc alone (glibc's steady state: blocks over 32 MB are
            # mapped afresh each time); robustml-train keeps freed memory. Each runs as it would.
            set_malloc_thresholds(GLIBC_STEADY_MMAP_THRESHOLD, 2 * GLIBC_STEADY_MMAP_THRESHOLD)
            sync(device)
            start = time.perf_counter()
            reference_loop(model, envs, steps)
            sync(device)
            return time.perf_counter() - start
        kept = keep_freed_memory()
        malloc["trainer"] = "keep_freed_memory" if kept else "unchanged (no mallopt)"
        criterion = IRMLoss(train.num_envs, penalty_weight=PENALTY_WEIGHT, anneal_steps=ANNEAL_STEPS)
        eval_every, eval_train = TRAINER_RUNS[name]
        return _timed_trainer_run(model, criterion, train, test, device, args, precision=precision,
                                  steps=steps, eval_every=eval_every or steps, eval_train=eval_train)

    malloc = {"reference": "glibc steady state (32 MB mmap threshold)"
              if set_malloc_thresholds(GLIBC_STEADY_MMAP_THRESHOLD, 2 * GLIBC_STEADY_MMAP_THRESHOLD)
              else "unchanged (no mallopt)"}
    reference_loop(deepcopy(model0), envs, 1)  # warm-up, untimed
    names = ["reference", *TRAINER_RUNS]
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order
            seconds[name].append(run(name))
    keep_freed_memory()
    ours, reference = models["trainer"], models["reference"]
    max_diff = max(float((a - b).abs().max()) for a, b in zip(ours.state_dict().values(),
                                                             reference.state_dict().values()))
    figures = {}
    for name in TRAINER_RUNS:
        suffix = name.removeprefix("trainer")
        rounds = [t / ref for t, ref in zip(seconds[name], seconds["reference"])]
        figures.update({f"ratio{suffix}": statistics.median(rounds), f"ratio{suffix}_rounds": rounds,
                        f"ratio{suffix}_range": [min(rounds), max(rounds)]})
    return {**figures, "steps": steps, "repeats": repeats, "trainer_precision": precision,
            "reference_precision": "fp32", "seconds": seconds,
            "trainer_train_acc": accuracy(ours, train),
            "reference_train_acc": accuracy(reference, train),
            "trainer_test_acc": accuracy(ours, test), "reference_test_acc": accuracy(reference, test),
            "max_abs_weight_diff": max_diff, "malloc": malloc}


def peak_memory(experiment: str, *, steps: int, data_root: Path) -> dict:
    """Return the peak resident memory of ``robustml-train experiment=<experiment>`` for ``steps``.

    The run is a fresh process of the ``robustml-train`` console script beside the interpreter
    with the experiment's defaults except ``trainer.max_steps`` and no progress bar, so its peak
    (``ru_maxrss`` of the finished child) is what a user's run of that many steps reaches.
    """
    with tempfile.TemporaryDirectory() as run_dir:
        command = [str(Path(sys.executable).with_name("robustml-train")), f"experiment={experiment}",
                   f"trainer.max_steps={steps}", "trainer.progress=false",
                   f"paths.data_root={data_root.resolve()}", f"hydra.run.dir={run_dir}"]
        start = time.perf_counter()
        # A wrapper process per run: ru_maxrss of RUSAGE_CHILDREN is the largest child's so far.
        out = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, *command], check=True,
                             capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if not (Path(run_dir) / "metrics.json").is_file():   # the run must really have trained
            raise RuntimeError(f"{' '.join(command)} wrote no metrics.json: {out.stderr[-2000:]}")
    peak_kb = int(out.stdout.split()[-1])
    return {"experiment": experiment, "steps": steps, "peak_rss_mb": peak_kb / 1024,
            "seconds": seconds, "command": " ".join(["robustml-train", *command[1:4]])}


def machine_info(device: torch.device) -> dict:
    """Return the CPU, its bf16-relevant instruction flags, threads, torch version and the load."""
    info: dict = {"cpu": platform.processor(), "logical_cpus": os.cpu_count(),
                  "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                  "device": str(device), "load_avg_1min_at_start": os.getloadavg()[0]}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = cpuinfo.read_text().splitlines()
        fields = dict(line.split(":", 1) for line in lines if ":" in line)  # same for every CPU
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        info["cpu"] = fields.get("model name", "")
        flags = fields.get("flags", "").split()
        info["cpu_flags"] = {flag: flag in flags for flag in CPU_FLAGS}
    bf16_flags = cpu_bf16_flags()
    # What trainer.precision=bf16 warns about: without these flags, bf16 matmuls are emulated.
    info["native_cpu_bf16"] = None if bf16_flags is None else any(bf16_flags.values())
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def checks(results: dict) -> list[dict]:
    """Return one row per measured ratio: its value, target (or None) and PASS / MISS."""
    rows = []
    for metric in ("group_dro", "vrex", "irm", "irm_autograd", "augment_counterfactual",
                   "bf16_speedup", "end_to_end"):
        for key, value in results.get(metric, {}).items():
            targets = END_TO_END_TARGETS if metric == "end_to_end" else STEP_TARGETS.get(metric, {})
            target = targets.get(key)
            status = "-" if target is None or value is None else ("PASS" if value <= target else "MISS")
            rows.append({"metric": metric, "key": key, "value": value, "target": target,
                         "status": status})
    return rows


def step_ratios(model0, train_all, device, args, results: dict, seconds: dict, rounds: dict,
                estimates: dict) -> None:
    """Measure the step ratios and the bf16 speed-up into ``results`` (and the detail dicts)."""
    names = ("erm", "group_dro", "vrex", "irm", "irm_autograd", "augment_counterfactual")
    for size in args.sizes:
        train = first_per_env(train_all, size)
        batch = train.full_batch()
        trainers = step_trainers(deepcopy(model0), train, device, args,
                                 {name: (name, "fp32") for name in names})
        steps = steps_per_sample(trainers["erm"], batch, device, args.min_sample_seconds)
        times = interleaved(trainers, batch, repeats=args.repeats, steps=steps, device=device)
        for name, ratios in round_ratios(times, "erm").items():
            results.setdefault(name, {})[str(size)] = statistics.median(ratios)
            rounds.setdefault(name, {})[str(size)] = ratios
            seconds.setdefault(name, {})[str(size)] = statistics.median(times[name])
        # Expected ratio from the isolated costs: 1 + (extra cost) / (ERM step time).
        alone = isolated_seconds(trainers, batch, repeats=args.repeats, device=device)
        for name, cost in alone.items():
            extra = cost if trainers[name].augment is not None else cost - alone["erm"]
            estimates.setdefault(name, {})[str(size)] = 1 + extra / seconds["erm"][str(size)]
    del results["erm"], rounds["erm"], estimates["erm"]
    size = max(args.sizes)
    results["bf16_speedup"] = {str(size): None}
    if not args.skip_bf16:
        train = first_per_env(train_all, size)
        trainers = step_trainers(deepcopy(model0), train, device, args,
                                 {"fp32": ("erm", "fp32"), "bf16": ("erm", "bf16")})
        times = interleaved(trainers, train.full_batch(), repeats=args.bf16_repeats, steps=1,
                            device=device)
        rounds["bf16_speedup"] = {str(size): round_ratios(times, "bf16")["fp32"]}
        results["bf16_speedup"][str(size)] = statistics.median(rounds["bf16_speedup"][str(size)])
        seconds["erm_bf16"] = {str(size): statistics.median(times["bf16"])}


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print the table, write the JSON and return the results."""
    args = parse_args(argv)
    keep_freed_memory()   # as robustml-train does (end_to_end sets each side its own way)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    results: dict = {"machine": machine_info(device)}
    sizes = [args.e2e_size] if args.skip_steps else [*args.sizes, args.e2e_size]
    train_all, test, source = load_data(args, max(sizes), args.e2e_test_size)
    train_all, test = train_all.to(device), test.to(device)
    torch.manual_seed(args.seed)
    model0 = MLP((2, 14, 14), 1, hidden_dims=(390, 390)).to(device)
    seconds: dict = {}
    rounds: dict = {}
    estimates: dict = {}
    if not args.skip_steps:
        step_ratios(model0, train_all, device, args, results, seconds, rounds, estimates)
    train = first_per_env(train_all, args.e2e_size)
    details = {"fp32": end_to_end(model0, train, test, device, args, precision="fp32",
                                  steps=args.e2e_steps, repeats=args.e2e_repeats)}
    if not (args.skip_bf16 or args.skip_bf16_end_to_end):
        details["bf16"] = end_to_end(model0, train, test, device, args, precision="bf16",
                                     steps=args.e2e_bf16_steps, repeats=args.e2e_repeats)
    results["end_to_end"] = {}
    rounds["end_to_end"] = {}
    for precision in ("fp32", "bf16"):
        for suffix in (name.removeprefix("trainer") for name in TRAINER_RUNS):
            detail = details.get(precision)
            results["end_to_end"][precision + suffix] = (None if detail is None
                                                         else detail["ratio" + suffix])
            if detail is not None:
                rounds["end_to_end"][precision + suffix] = detail[f"ratio{suffix}_rounds"]
    results["end_to_end_details"] = details
    results["peak_memory"] = [peak_memory(name, steps=args.peak_memory_steps,
                                          data_root=args.data_root) for name in args.peak_memory]
    results["step_seconds"] = seconds
    results["ratio_rounds"] = rounds
    results["isolated_estimate"] = estimates
    results["checks"] = checks(results)
    results["machine"]["load_avg_1min_at_end"] = os.getloadavg()[0]
    results["settings"] = {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                           "data": source, "model": "MLP((2, 14, 14), 1, hidden_dims=(390, 390))",
                           "optimizer": f"Adam(lr={LR})"}
    print(f"{'metric':<24}{'size/precision':>22}{'ratio':>9}{'rounds IQR':>14}{'isolated':>10}"
          f"{'target':>10}  status")
    for row in results["checks"]:
        value = "skipped" if row["value"] is None else f"{row['value']:.3f}"
        target = "-" if row["target"] is None else f"<= {row['target']:.2f}"
        iqr = spread(rounds.get(row["metric"], {}).get(row["key"]))
        estimate = estimates.get(row["metric"], {}).get(row["key"])
        estimate = "" if estimate is None else f"{estimate:.3f}"
        print(f"{row['metric']:<24}{row['key']:>22}{value:>9}{iqr:>14}{estimate:>10}{target:>10}  "
              f"{row['status']}")
    for row in results["peak_memory"]:
        print(f"peak memory {row['experiment']} ({row['steps']} steps): {row['peak_rss_mb']:.0f} MB")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.json, json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
