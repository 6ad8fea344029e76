"""Benchmark robustml's on-disk data path: DataLoader training, the feature cache, CelebA metadata.

Three figures, each measured in this one run:

- ``dataloader_vs_plain``: images per second of one ResNet-18 training epoch (random init, batch
  32, SGD lr 0.01 momentum 0.9, BCE) on generated JPEGs through robustml's path
  (:func:`robustml.data.datasets.image_csv_splits` + ``Trainer``'s DataLoader batches and its
  ``_train_step``) divided by a hand-written torchvision loop over the same files (a ``Dataset``
  that opens each JPEG with PIL and applies the same transform, a shuffled ``DataLoader``, forward,
  BCE, backward, step), both with 0 DataLoader workers (the default, ``trainer.num_workers=0``).
  ``dataloader_vs_plain_workers`` is the same ratio with ``--workers`` loader worker processes in
  both loops. ``dataloader_vs_plain_cpu_time`` is the 0-worker ratio of images per CPU-second of
  the process (``time.process_time``), which other programs sharing the cores do not change.
  Every round runs the four epochs (robustml and plain, at 0 and at ``--workers``
  workers) interleaved, with the order rotated each round, all from the same initial weights; each
  ratio is the median of its ``--repeats`` per-round ratios.
- ``feature_cache_speedup``: a linear probe (scikit-learn ``LogisticRegression`` on ResNet-18
  penultimate features of every image) whose first run fills the cache (extraction included)
  divided by a second run that reuses it; median over ``--repeats`` rounds, each with a new
  cache folder.
- ``celeba_metadata_peak_rss_mb``: peak resident memory (the process's ``VmHWM``) of a fresh
  Python process that (1) imports robustml's CelebA loader, torch and the samplers, (2) builds the
  full 202,599-row CelebA splits (``celeba_splits``: both text files parsed, every listed file
  checked to exist) from the two text files of ``../shared/data/celeba`` (or generated ones in the
  same format) beside an ``img_align_celeba/`` of 202,599 empty files, and (3) makes a run over the
  metadata alone: one epoch of group-balanced training batches (``EpochBatchSampler`` keys, batch
  128, ``GroupBalancedSampler`` draws, 1,272 batches) whose labels and groups are gathered from the
  metadata tensors, the group counts and reweighting weights of the training split, and per-group
  accuracy (``GroupAccuracy``) over the labels and groups of every training batch and of val and
  test, with the labels as predictions. No image is opened (the files are empty). The peaks after
  (1) and (2) are ``celeba_import_peak_rss_mb`` and ``celeba_build_peak_rss_mb``; the figure is
  the peak after (3). Loading all images instead would hold 202,599 x 3 x 218 x 178 bytes (22,492
  MiB as uint8; about 116,000 MiB as float32 224x224 inputs).

    OMP_NUM_THREADS=1 python scripts/benchmark_data.py --json experiments/benchmarks/data.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from robustml.data.datasets.example_files import CELEBA_NAMES, write_image_csv
from robustml.data.datasets.image_csv import image_csv_splits
from robustml.data.ondisk import load_rgb
from robustml.features import cached_features
from robustml.losses import ERMLoss
from robustml.models import TorchvisionClassifier
from robustml.train import Trainer, TrainSettings

SHARED_CELEBA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "celeba"
CELEBA_ROWS = 202_599


def cpu_flags() -> list[str]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "sse4")))


class PlainImages(Dataset):
    """The hand-written baseline: open each file with PIL, transform, return ``(x, y)``."""

    def __init__(self, root: Path, paths, labels, transform) -> None:
        self.root, self.paths, self.labels, self.transform = root, list(paths), labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return self.transform(load_rgb(self.root / self.paths[i])), self.labels[i]


def robustml_epoch(train, model, args, run_dir: Path, workers: int) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    steps = -(-len(train) // args.batch_size)
    settings = TrainSettings(max_steps=steps, batch_size=args.batch_size, progress=False,
                             num_workers=workers, l2_weight=0.0)
    trainer = Trainer(model, ERMLoss(train.num_groups), optimizer, train, train, settings,
                      run_dir=run_dir)
    batches = trainer._batches()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        trainer._train_step(next(batches))
    return len(train) / (time.perf_counter() - start), len(train) / (time.process_time() - cpu)


def plain_epoch(train, model, args, workers: int) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    data = PlainImages(train.root, train.paths, train.y.float().tolist(), train.transform)
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    start, cpu = time.perf_counter(), time.process_time()
    for x, y in loader:
        loss = F.binary_cross_entropy_with_logits(model(x)[:, 0], y.float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return len(train) / (time.perf_counter() - start), len(train) / (time.process_time() - cpu)


def probe(model, train, cache_dir: Path, args) -> float:
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    feats = cached_features(model, train, cache_dir, batch_size=64, num_workers=0, progress=False)
    LogisticRegression(max_iter=200).fit(np.asarray(feats), train.y.numpy())
    return time.perf_counter() - start


def write_fake_celeba_text(folder: Path) -> str:
    """Write list_attr_celeba.txt / list_eval_partition.txt in the official format; say which."""
    if (SHARED_CELEBA / "list_attr_celeba.txt").is_file():
        for name in ("list_attr_celeba.txt", "list_eval_partition.txt"):
            os.symlink((SHARED_CELEBA / name).resolve(), folder / name)
        return f"{SHARED_CELEBA.resolve()} (real attribute and partition files)"
    rng = np.random.default_rng(0)
    with open(folder / "list_attr_celeba.txt", "w", newline="\r\n") as handle:
        handle.write(f"{CELEBA_ROWS}\n{' '.join(CELEBA_NAMES)}\n")
        for i in range(CELEBA_ROWS):
            handle.write(f"{i + 1:06d}.jpg " + " ".join(f"{v:2d}" for v in rng.choice([-1, 1], 40)) + "\n")
    with open(folder / "list_eval_partition.txt", "w") as handle:
        for i in range(CELEBA_ROWS):
            handle.write(f"{i + 1:06d}.jpg {0 if i < 162_770 else 1 if i < 182_637 else 2}\n")
    return "generated files in the official format"


def celeba_peak_rss(tmp: Path) -> dict[str, float | str]:
    folder = tmp / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    source = write_fake_celeba_text(folder)
    for i in range(CELEBA_ROWS):
        (folder / "img_align_celeba" / f"{i + 1:06d}.jpg").touch()
    code = ("import sys\n"
            "def hwm():\n"
            "    text = open('/proc/self/status').read()\n"
            "    return int(text.split('VmHWM:')[1].split()[0]) / 1024\n"
            "import torch\n"
            "from robustml.data.datasets.celeba import celeba_splits\n"
            "from robustml.data.samplers import (EpochBatchSampler, GroupBalancedSampler,\n"
            "                                    balanced_sample_weights)\n"
            "from robustml.metrics import GroupAccuracy\n"
            "imported = hwm()\n"
            "splits = celeba_splits(sys.argv[1])\n"
            "built = hwm()\n"
            "train = splits.train\n"
            "assert sum(len(d) for _, d in splits.items()) == 202599\n"
            "counts = train.group_counts()\n"
            "weights = balanced_sample_weights(train.group, num_parts=train.num_groups)\n"
            "draw = lambda g: torch.as_tensor(list(GroupBalancedSampler(train.group,\n"
            "    num_parts=train.num_groups, generator=g)))\n"
            "sampler = EpochBatchSampler(len(train), batch_size=128, seed=0, draw=draw)\n"
            "meter = GroupAccuracy(train.num_groups, train_counts=counts, validate_args=False)\n"
            "batches = iter(sampler)\n"
            "for _ in range(sampler.batches_per_epoch):\n"
            "    idx = torch.tensor([i for i, _ in next(batches)])\n"
            "    meta = {k: v[idx] for k, v in train.metadata().items()}\n"
            "    meter.update(meta['y'], meta['y'], meta['group'])\n"
            "for split in (splits.val, splits.test):\n"
            "    meter.update(split.y, split.y, split.group)\n"
            "assert meter.compute()['acc_worst_group'] == 1.0 and weights.numel() == len(train)\n"
            "print(imported, built, hwm(), sampler.batches_per_epoch)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp)], capture_output=True, text=True,
                         check=True)
    imported, built, after, batches = (float(v) for v in out.stdout.split()[-4:])
    return {"peak_rss_mb": round(after, 1), "build_peak_rss_mb": round(built, 1),
            "import_peak_rss_mb": round(imported, 1), "metadata_batches": int(batches),
            "source": source}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", required=True, help="output file")
    parser.add_argument("--images", type=int, default=256, help="generated JPEGs (a multiple of 4)")
    parser.add_argument("--size", type=int, default=64, help="side of the JPEGs and of the inputs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2,
                        help="DataLoader workers of the second pair of loops (the first uses 0)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.workers < 1:
        parser.error(f"--workers must be >= 1 (0 workers is always measured), got {args.workers}")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    results: dict = {"settings": {**vars(args), "threads": torch.get_num_threads(),
                                  "cpu_flags": cpu_flags(), "machine": platform.processor()}}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        per_group = args.images // 4
        csv = write_image_csv(tmp / "images", per_group=per_group + 2, size=(args.size, args.size),
                              suffix=".jpg")
        lines = csv.read_text().splitlines()   # the last two images of each group: val, test
        split_of = lambda line: ("train", "val", "test")[  # noqa: E731
            max(0, int(line.split(",")[0].rsplit("_", 1)[1].split(".")[0]) - per_group + 1)]
        csv.write_text("\n".join([lines[0] + ",split"]
                                 + [f"{line},{split_of(line)}" for line in lines[1:]]) + "\n")
        train = image_csv_splits(csv, image_size=args.size).train
        assert len(train) == 4 * per_group
        torch.manual_seed(0)
        initial = TorchvisionClassifier((3, args.size, args.size), 1, arch="resnet18").state_dict()

        def fresh_model():
            model = TorchvisionClassifier((3, args.size, args.size), 1, arch="resnet18")
            model.load_state_dict(initial)
            return model

        entries = [(kind, workers) for workers in (0, args.workers) for kind in ("robustml", "plain")]
        rounds = {0: [], args.workers: []}
        for r in range(args.repeats):
            speed = {}
            for kind, workers in entries[r % len(entries):] + entries[:r % len(entries)]:
                speed[kind, workers] = (
                    robustml_epoch(train, fresh_model(), args, tmp / f"run{r}_{workers}", workers)
                    if kind == "robustml" else plain_epoch(train, fresh_model(), args, workers))
            for workers in rounds:
                (ours, ours_cpu), (plain, plain_cpu) = speed["robustml", workers], speed["plain", workers]
                rounds[workers].append({"robustml_images_per_s": round(ours, 1),
                                        "plain_images_per_s": round(plain, 1),
                                        "ratio": round(ours / plain, 3)})
                if workers == 0:  # the main process does all the work: its CPU time is all of it
                    rounds[0][-1].update(robustml_images_per_cpu_s=round(ours_cpu, 1),
                                         plain_images_per_cpu_s=round(plain_cpu, 1),
                                         cpu_ratio=round(ours_cpu / plain_cpu, 3))
                print(f"round {r}, {workers} workers: robustml {ours:.1f} img/s, plain "
                      f"{plain:.1f} img/s")
        results["dataloader_vs_plain"] = float(np.median([x["ratio"] for x in rounds[0]]))
        results["dataloader_vs_plain_cpu_time"] = float(np.median([x["cpu_ratio"] for x in rounds[0]]))
        results["dataloader_vs_plain_workers"] = float(
            np.median([x["ratio"] for x in rounds[args.workers]]))
        results["dataloader_rounds"] = rounds[0]
        results["dataloader_workers_rounds"] = rounds[args.workers]

        model, probes = fresh_model(), []
        for r in range(args.repeats):
            fill = probe(model, train, tmp / f"cache{r}", args)
            reuse = probe(model, train, tmp / f"cache{r}", args)
            probes.append({"fill_s": round(fill, 3), "reuse_s": round(reuse, 3),
                           "speedup": round(fill / reuse, 2)})
            print(f"probe {r}: fill {fill:.2f} s, reuse {reuse:.3f} s")
        results["feature_cache_speedup"] = float(np.median([x["speedup"] for x in probes]))
        results["feature_cache_rounds"] = probes
        shutil.rmtree(tmp / "images")

        celeba = celeba_peak_rss(tmp)
    results["celeba_metadata_peak_rss_mb"] = celeba["peak_rss_mb"]
    results["celeba_build_peak_rss_mb"] = celeba["build_peak_rss_mb"]
    results["celeba_import_peak_rss_mb"] = celeba["import_peak_rss_mb"]
    results["celeba_metadata_batches"] = celeba["metadata_batches"]
    results["celeba_metadata_source"] = celeba["source"]
    results["celeba_all_images_uint8_mb"] = round(CELEBA_ROWS * 3 * 218 * 178 / 2**20, 1)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if not isinstance(v, (list, dict))}, indent=2))


if __name__ == "__main__":
    main()
