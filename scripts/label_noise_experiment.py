"""Label-noise experiment: does confident-learning cleaning find the noise, and does it help ERM?

For each dataset (MNIST, 10 classes; Colored MNIST, the IRM paper's binary construction), each
synthetic noise rate (symmetric, train labels only) and each seed:

1. clean the noisy training split with ``clean_splits`` and the shipped cleaning defaults
   (``configs/cleaning/confident_learning.yaml``: on images the cross-fitted MLP fast path),
   action ``prune``, no guard; on Colored MNIST also with the group guard ``max_fraction = noise
   rate`` (no group loses a larger share than the injected rate), reusing the cached
   probabilities;
2. train ERM (same MLP, Adam with cosine decay, minibatches, a fixed number of epochs, last
   step) on the noisy, the cleaned (and guarded-cleaned) and the clean labels, and evaluate on
   the test split.

Precision/recall are measured against the injected noise only (Colored MNIST's own 25% label
flip is part of its "clean" labels). Each finished (dataset, rate, seed) is appended to
``<out>.json`` at once, so an interrupted run keeps what it finished; ``<out>.md`` holds mean ± std
(sample std) over seeds of everything in the JSON.

    python scripts/label_noise_experiment.py --datasets mnist --rates 0.2 0.4 --seeds 0 1 2 \
        --out experiments/label_noise/results
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import OmegaConf

from robustml.data.contract import DataSplits, GroupedTensorDataset
from robustml.data.datasets import with_label_noise
from robustml.losses import ERMLoss, num_outputs_for
from robustml.train import Trainer, TrainSettings, evaluate
from robustml.pipeline.clean import clean_splits
from robustml.cleaning.networks import fresh_model
from robustml.train.schedules import warmup_cosine

CLEANING = ["model.hidden_dims=[512,64]", "cleaning.action=prune", "trainer.progress=false"]


def compose_config(dataset: str, seed: int, data_root: str):
    with initialize_config_module(config_module="robustml.configs", version_base="1.3"):
        return compose(config_name="clean", overrides=[
            f"data={dataset}", f"seed={seed}", f"paths.data_root={data_root}", *CLEANING])


def train_erm(cfg, train: GroupedTensorDataset, splits: DataSplits, *, epochs: int,
              batch_size: int, lr: float, seed: int) -> dict[str, float]:
    """Train ERM (Adam, cosine decay to 0) for ``epochs``; return the last step's test accuracies."""
    num_outputs = num_outputs_for(splits.num_classes)
    model = fresh_model(lambda: instantiate(cfg.model, input_shape=splits.input_shape,
                                            num_outputs=num_outputs),
                        seed=seed, device=train.x.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    max_steps = epochs * math.ceil(len(train) / batch_size)
    settings = TrainSettings(max_steps=max_steps, batch_size=batch_size, eval_every=max_steps,
                             select="last", seed=seed, progress=False)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(model, ERMLoss(num_groups=splits.num_groups), optimizer, train, splits.val,
                          settings, run_dir=run_dir,
                          scheduler=warmup_cosine(optimizer, total_steps=max_steps))
        trainer.fit()
    metrics = evaluate(model, splits.test, prefix="test", train_counts=trainer.train_counts)
    return {"acc": metrics["test/acc_avg"], "acc_worst_group": metrics["test/acc_worst_group"]}


def run_one(dataset: str, rate: float, seed: int, clean: DataSplits, clean_erm: dict,
            args: argparse.Namespace) -> dict:
    cfg = compose_config(dataset, seed, args.data_root)
    noisy = DataSplits(with_label_noise(clean.train, rate, seed=seed), clean.val, clean.test,
                       description=clean.description)
    run_dir = Path(args.runs) / f"{dataset}_noise{rate:g}_seed{seed}"
    erm = dict(epochs=args.erm_epochs, batch_size=args.erm_batch_size, lr=args.erm_lr, seed=seed)
    record = {"dataset": dataset, "rate": rate, "seed": seed, "group_names": clean.group_names,
              "erm_clean": clean_erm}
    cleaned = clean_splits(cfg, noisy, run_dir / "unguarded")
    record["cleaning"] = {k.removeprefix("cleaning/"): v for k, v in cleaned.summary.items()}
    record["erm_noisy"] = train_erm(cfg, noisy.train, noisy, **erm)
    record["erm_cleaned"] = train_erm(cfg, cleaned.train, noisy, **erm)
    if dataset == "colored_mnist":
        OmegaConf.update(cfg, "cleaning.guard.max_fraction", rate)
        OmegaConf.update(cfg, "cleaning.cache_dir", str(run_dir / "unguarded" / "cache"))
        guarded = clean_splits(cfg, noisy, run_dir / "guarded")
        record["cleaning_guarded"] = {k.removeprefix("cleaning/"): v
                                      for k, v in guarded.summary.items()}
        record["erm_cleaned_guarded"] = train_erm(cfg, guarded.train, noisy, **erm)
    return record


def mean_std(values: list[float], scale: float = 100.0) -> str:
    """Return ``"mean ± std"`` of ``scale * values`` (sample std; "n/a" for no values)."""
    if not values:
        return "n/a"
    values = [scale * v for v in values]
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {std:.1f}"


def scores(records: list[dict], part: str, key: str) -> list[float]:
    """Return ``record[part][key]`` of the records that have it (precision needs a flag)."""
    return [r[part][key] for r in records if key in r[part]]


def to_markdown(records: list[dict]) -> str:
    """Return the mean ± std tables (percent) over seeds for every (dataset, rate)."""
    keys = sorted({(r["dataset"], r["rate"]) for r in records})
    lines = ["| dataset | noise | seeds | precision | recall | ERM noisy | ERM cleaned | "
             "ERM cleaned (guard) | ERM clean labels |", "|---|---|---|---|---|---|---|---|---|"]
    groups = []
    for dataset, rate in keys:
        runs = [r for r in records if (r["dataset"], r["rate"]) == (dataset, rate)]
        guarded = [r for r in runs if "erm_cleaned_guarded" in r]
        cells = [mean_std(scores(runs, "cleaning", "precision")),
                 mean_std(scores(runs, "cleaning", "recall"))]
        for key in ("erm_noisy", "erm_cleaned", "erm_cleaned_guarded", "erm_clean"):
            sel = guarded if key == "erm_cleaned_guarded" else runs
            acc = mean_std([r[key]["acc"] for r in sel]) if sel else "n/a"
            if sel and dataset == "colored_mnist":
                acc += f" (worst {mean_std([r[key]['acc_worst_group'] for r in sel])})"
            cells.append(acc)
        lines.append(f"| {dataset} | {rate:g} | {len(runs)} | " + " | ".join(cells) + " |")
        if guarded:
            groups.append(f"\nFlagged rate per group, {dataset}, noise {rate:g} "
                          f"({len(guarded)} seeds; guard: max_fraction = {rate:g}):\n")
            groups.append("| group | count | flagged, no guard | flagged, guard |\n|---|---|---|---|")
            for g, name in enumerate(guarded[0]["group_names"]):
                count = statistics.mean(r["cleaning"][f"count_group_{g}"] for r in guarded)
                free = [r["cleaning"][f"flagged_group_{g}"] / r["cleaning"][f"count_group_{g}"]
                        for r in guarded]
                capped = [r["cleaning_guarded"][f"flagged_group_{g}"]
                          / r["cleaning"][f"count_group_{g}"] for r in guarded]
                groups.append(f"| {name} | {count:,.0f} | {mean_std(free)}% | "
                              f"{mean_std(capped)}% |")
            prec = mean_std(scores(guarded, "cleaning_guarded", "precision"))
            rec = mean_std(scores(guarded, "cleaning_guarded", "recall"))
            groups.append(f"\nWith the guard: precision {prec}, recall {rec}.")
    return "\n".join(lines + groups) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "colored_mnist"],
                        choices=["mnist", "colored_mnist"])
    parser.add_argument("--rates", nargs="+", type=float, default=[0.2, 0.4])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("experiments/label_noise/results"),
                        help="writes <out>.json and <out>.md")
    parser.add_argument("--runs", default="runs/label_noise", help="cleaning outputs per run")
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--erm-epochs", type=int, default=5)
    parser.add_argument("--erm-batch-size", type=int, default=128)
    parser.add_argument("--erm-lr", type=float, default=0.001)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    json_path = args.out.with_suffix(".json")
    records = json.loads(json_path.read_text())["runs"] if json_path.is_file() else []
    done = {(r["dataset"], r["rate"], r["seed"]) for r in records}
    for dataset in args.datasets:
        for seed in args.seeds:
            todo = [rate for rate in args.rates if (dataset, rate, seed) not in done]
            if not todo:
                continue
            cfg = compose_config(dataset, seed, args.data_root)
            clean = instantiate(cfg.data)
            start = time.perf_counter()
            clean_erm = train_erm(cfg, clean.train, clean, epochs=args.erm_epochs,
                                  batch_size=args.erm_batch_size, lr=args.erm_lr, seed=seed)
            for rate in todo:
                record = run_one(dataset, rate, seed, clean, clean_erm, args)
                record["seconds"] = round(time.perf_counter() - start, 1)
                records.append(record)
                json_path.parent.mkdir(parents=True, exist_ok=True)
                json_path.write_text(json.dumps({"settings": {
                    "cleaning_overrides": CLEANING, "erm_epochs": args.erm_epochs,
                    "erm_batch_size": args.erm_batch_size, "erm_lr": args.erm_lr,
                    "erm": "MLP 512-64 (configs/model/mlp.yaml, hidden_dims [512, 64]), Adam "
                           "with cosine decay to 0, no L2, last step, test split"},
                    "runs": records},
                    indent=1) + "\n")
                args.out.with_suffix(".md").write_text(to_markdown(records))
                print(f"{dataset} noise {rate:g} seed {seed}: precision "
                      f"{record['cleaning'].get('precision', float('nan')):.3f} recall "
                      f"{record['cleaning']['recall']:.3f}; test acc noisy "
                      f"{record['erm_noisy']['acc']:.4f} cleaned "
                      f"{record['erm_cleaned']['acc']:.4f} clean {clean_erm['acc']:.4f}",
                      flush=True)
                start = time.perf_counter()


if __name__ == "__main__":
    main()
