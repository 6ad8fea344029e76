"""JTT's stage one for ``robustml-train method=jtt``: train ERM for T steps (or reuse it), find the error set.

Liu et al. (ICML 2021), Algorithm 1: the error set is :func:`robustml.groups.error_set`, stage
two's upsampling :class:`robustml.data.samplers.UpsampledOrder` (or its loss weights). Stage one is an ERM stage
(:mod:`robustml.pipeline.stages`): the run's data, model and optimizer trained with plain ERM,
uniform sampling and no cleaning or augmentation for ``method.stage_one.max_steps`` steps or
``method.stage_one.epochs`` (by default one epoch with mini-batches, and with the full batch
``method.stage_one.full_batch_fraction`` of the run's steps: :func:`stage_one_length`); its final
model (the authors' epoch ``T``, no selection) predicts the training split and the misclassified
examples form the error set. The entry
``<method.cache_dir>/stage_one_<hash>/`` is the stage's folder (a stopped stage one resumes from
its last checkpoint) plus ``error_set.npy`` and ``stage_one.json`` (the stage-one config and the
error-set size), written last; its hash covers only what stage one depends on
(:func:`~robustml.pipeline.stages.stage_identity`), so a sweep over ``method.lambda_up`` trains stage
one once. ``method.stage_one_dir`` names an entry to reuse; an entry whose config differs is
refused with the differing keys.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from robustml.atomic import atomic_path
from robustml.data.contract import GroupedDataset
from robustml.data.loading import LoaderSettings, eval_loader
from robustml.data.samplers import UpsampledOrder, check_lambda_up, upweight_loss_weights
from robustml.groups.error_split import error_set
from robustml.health import Finding, Thresholds
from robustml.identity import differences
from robustml.pipeline.build import resolve_device
from robustml.pipeline.instantiate import build_from
from robustml.pipeline.stages import (erm_stage_config, load_trained_model, stage_identity, stage_key,
                                      stage_lock, train_stage)
from robustml.report import markdown_table, write_text
from robustml.train import distributed
from robustml.train.evaluate import predict_dataset
from robustml.validation import check_int, check_real

log = logging.getLogger(__name__)
CACHE_VERSION = "robustml.jtt/2"  # bump when the same config would give another error set
UPWEIGHTS = ("sample", "loss")


@dataclass
class StageOne:
    """JTT's stage one, ready for stage two.

    Attributes:
        errors: Indices of the misclassified training examples, shape ``(|E|,)`` int64.
        num_train: Size of the training split stage one saw.
        labels_sha: sha256 of the training labels, to check the split stage two trains on.
        summary: Flat ``jtt/...`` entries for ``metrics.json``.
        report_md: A ``## JTT`` section for ``report.md``.
    """

    errors: torch.Tensor
    num_train: int
    labels_sha: str
    summary: dict[str, Any]
    report_md: str

    def sampling(self, cfg: DictConfig, train: GroupedDataset) -> tuple[Any, torch.Tensor | None, int]:
        """Return stage two's ``(sampler, sample_weights, epoch_size)`` for ``cfg.method.upweight``."""
        if len(train) != self.num_train or _labels_sha(train) != self.labels_sha:
            raise ValueError(f"JTT's stage one saw {self.num_train} training examples with other labels "
                             f"than this run's {len(train)}: its error set does not index this split; "
                             f"delete {self.summary['jtt/stage_one_dir']} or set method.stage_one_dir=null")
        lambda_up = check_lambda_up(cfg.method.lambda_up, name="method.lambda_up")
        if cfg.method.upweight == "loss":
            return None, upweight_loss_weights(len(train), self.errors, lambda_up=lambda_up), len(train)
        order = UpsampledOrder(len(train), self.errors, lambda_up=lambda_up)
        return order, None, order.epoch_size


def _labels_sha(train: GroupedDataset) -> str:
    return hashlib.sha256(train.y.cpu().numpy().astype(np.int64).tobytes()).hexdigest()


def check_jtt_config(cfg: DictConfig) -> None:
    """Raise naming the key when the JTT settings or the run around them do not fit."""
    check_lambda_up(cfg.method.lambda_up, name="method.lambda_up")
    if cfg.method.upweight not in UPWEIGHTS:
        raise ValueError(f"method.upweight must be one of {list(UPWEIGHTS)}, got {cfg.method.upweight!r}")
    if cfg.method.upweight == "sample" and not cfg.trainer.batch_size:  # before stage one trains
        raise ValueError("method.upweight=sample duplicates error examples in mini-batches and needs "
                         "trainer.batch_size; with the full batch (trainer.batch_size=null) use "
                         "method.upweight=loss, the same objective")
    if cfg.sampler._target_ is not None:
        raise ValueError(f"JTT's upweighting replaces the sampler: sampler must be uniform, got "
                         f"sampler={cfg.sampler.name!r}")
    steps, epochs = cfg.method.stage_one.max_steps, cfg.method.stage_one.epochs
    if steps is not None and epochs is not None:
        raise ValueError(f"set at most one of method.stage_one.max_steps and method.stage_one.epochs "
                         f"(JTT's T), got {steps!r} and {epochs!r}")
    for name, value in (("max_steps", steps), ("epochs", epochs)):
        if value is not None:
            check_int(f"method.stage_one.{name}", value, minimum=1)
    fraction = check_real("method.stage_one.full_batch_fraction", cfg.method.stage_one.full_batch_fraction,
                          minimum=0.0)
    if not 0 < fraction <= 1:
        raise ValueError(f"method.stage_one.full_batch_fraction must lie in (0, 1], got {fraction!r}")


def _run_steps(cfg: DictConfig) -> int:
    """Return the optimizer steps of a full-batch run (an epoch is one step)."""
    return int(cfg.trainer.max_steps if cfg.trainer.epochs is None else cfg.trainer.epochs)


def stage_one_length(cfg: DictConfig) -> tuple[int | None, int | None]:
    """Return JTT's T as ``(max_steps, epochs)``, one of them ``None``.

    ``method.stage_one.max_steps`` or ``.epochs`` when set; otherwise one epoch with mini-batches
    (the authors' T for CelebA) and, with the full batch, where an epoch is a single step,
    ``full_batch_fraction`` of the run's steps, rounded, at least 1.
    """
    stage = cfg.method.stage_one
    if stage.max_steps is not None or stage.epochs is not None:
        return stage.max_steps, stage.epochs
    if cfg.trainer.batch_size:
        return None, 1
    return max(1, round(float(stage.full_batch_fraction) * _run_steps(cfg))), None


def stage_one_run_config(cfg: DictConfig) -> DictConfig:
    """Return the run config of stage one: the run's as an ERM stage of ``T`` steps or epochs."""
    steps, epochs = stage_one_length(cfg)
    return erm_stage_config(cfg, suffix="jtt_stage_one", max_steps=steps or 1,  # 1: unused with epochs
                            epochs=epochs)


def _entry(cfg: DictConfig, stage: DictConfig) -> Path:
    if cfg.method.stage_one_dir is not None:
        return Path(cfg.method.stage_one_dir)
    return Path(cfg.method.cache_dir) / f"stage_one_{stage_key(stage, CACHE_VERSION)}"


def _train_stage_one(stage: DictConfig, config: dict[str, Any], entry: Path) -> str:
    """Train (or resume, or reuse) stage one in ``entry``, then write its error set and record.

    Returns ``"trained"``, or ``"reused"`` when another process trained it meanwhile.
    """
    status = train_stage(stage, entry)
    with stage_lock(entry):
        if not (entry / "stage_one.json").is_file():  # not written by a process that came first
            _write_error_set(stage, config, entry)
        distributed.barrier()  # stage_one.json is written before any process reads it
    return status


def _write_error_set(stage: DictConfig, config: dict[str, Any], entry: Path) -> None:
    """Write stage one's ``error_set.npy``, then ``stage_one.json``, from its saved final model."""
    if not distributed.is_main():  # the main process writes it; the others wait at the barrier
        return
    device = resolve_device(stage.trainer.device)
    splits = build_from(stage, "data")
    model = load_trained_model(entry, None, splits, device)
    train = splits.train.to(device)
    loader = None if train.in_memory else eval_loader(train, LoaderSettings(
        num_workers=stage.trainer.num_workers, eval_batch_size=stage.trainer.eval_batch_size))
    errors = error_set(predict_dataset(model, train, precision=stage.trainer.precision, loader=loader),
                       train.y)
    with atomic_path(entry / "error_set.npy") as tmp, open(tmp, "wb") as handle:
        np.save(handle, errors.cpu().numpy())  # a handle: np.save adds ".npy" to other names
    groups = train.group.cpu()
    steps = json.loads((entry / "stage.json").read_text())["steps"]
    record = {"version": CACHE_VERSION, "config": config, "num_train": len(train),
              "labels_sha": _labels_sha(train), "steps": steps, "error_set_size": int(errors.numel()),
              "group_counts": torch.bincount(groups, minlength=train.num_groups).tolist(),
              "group_errors": torch.bincount(groups[errors.cpu()], minlength=train.num_groups).tolist(),
              "group_names": list(train.group_names)}
    write_text(entry / "stage_one.json", json.dumps(record, indent=2, sort_keys=True))  # last


def jtt_stage_one(cfg: DictConfig) -> StageOne:
    """Return stage one for ``cfg``: reused from its cache entry, or trained and cached now."""
    check_jtt_config(cfg)
    stage = stage_one_run_config(cfg)
    config = stage_identity(stage)
    entry = _entry(cfg, stage)
    cached = (entry / "stage_one.json").is_file()
    if not cached:
        if cfg.method.stage_one_dir is not None:
            raise FileNotFoundError(f"method.stage_one_dir={entry} holds no stage_one.json: it must be a "
                                    f"JTT stage-one cache entry (stage_one_<hash> under method.cache_dir)")
        log.info("JTT stage one: training ERM for %s (unless another process is), caching it in %s",
                 _describe_t(cfg), entry)
        cached = _train_stage_one(stage, config, entry) == "reused"
    record = json.loads((entry / "stage_one.json").read_text())
    differ = [f"{key}: this run has {mine!r}, the cache has {cached!r}"
              for key, mine, cached in differences(config, record["config"])]
    if differ or record.get("version") != CACHE_VERSION:
        raise ValueError(f"the JTT stage-one cache {entry} was made with another config ("
                         + "; ".join(differ or [f"version {record.get('version')!r}"]) + "); use "
                         "method.stage_one_dir=null to train or reuse the stage one of this config")
    if cached:
        log.info("JTT stage one: reusing the cached stage one in %s (error set of %d of %d training "
                 "examples)", entry, record["error_set_size"], record["num_train"])
    errors = torch.from_numpy(np.load(entry / "error_set.npy")).to(torch.int64)
    summary = {"jtt/lambda_up": int(cfg.method.lambda_up), "jtt/upweight": cfg.method.upweight,
               "jtt/error_set_size": int(errors.numel()), "jtt/stage_one_steps": record["steps"],
               "jtt/stage_one_cache": "reused" if cached else "trained",
               "jtt/stage_one_dir": str(entry)}
    summary.update({f"jtt/error_set_group_{g}": n for g, n in enumerate(record["group_errors"])})
    return StageOne(errors, record["num_train"], record["labels_sha"], summary, _report(cfg, record))


def _describe_t(cfg: DictConfig) -> str:
    """Return JTT's T in words (``50 steps``, ``2 epoch(s)``), and where a default came from."""
    steps, epochs = stage_one_length(cfg)
    stage = cfg.method.stage_one
    if stage.max_steps is not None or stage.epochs is not None:
        return f"{epochs} epoch(s)" if epochs is not None else f"{steps} steps"
    if epochs is not None:
        return f"{epochs} epoch, the default with mini-batches"
    return (f"{steps} steps, method.stage_one.full_batch_fraction={float(stage.full_batch_fraction):g} "
            f"of the run's {_run_steps(cfg)} full-batch steps")


def _report(cfg: DictConfig, record: dict[str, Any]) -> str:
    rows = [[g, name, record["group_counts"][g], record["group_errors"][g],
             f"{100 * record['group_errors'][g] / max(record['group_counts'][g], 1):.1f}"]
            for g, name in enumerate(record["group_names"])]
    how = ("duplicated in the sampler: one epoch is the training split plus the error set repeated "
           f"{cfg.method.lambda_up} times" if cfg.method.upweight == "sample"
           else f"loss weights 1 + {cfg.method.lambda_up} on the error set")
    return (f"## JTT (Liu et al., ICML 2021)\n\nStage one: ERM for {record['steps']} optimizer steps "
            f"(T = {_describe_t(cfg)}), final model. Error set: {record['error_set_size']} of "
            f"{record['num_train']} training examples misclassified. Stage two: a new model, each "
            f"error example counted 1 + lambda_up = {1 + int(cfg.method.lambda_up)} times ({how}). "
            "Neither stage uses group labels; the table counts the error set per true group for "
            "this report only.\n\n"
            + markdown_table(["group", "name", "train count", "in error set", "% of group"], rows))


def health(stage_one: StageOne, train_target: torch.Tensor, num_classes: int, *, batch_size: int | None,
           thresholds: Thresholds) -> list[Finding]:
    """JTT's checks: an error set that is empty, most of the training split, or one class, and a
    stage one shorter than an epoch or no better than the majority class (the upweighting then
    does nothing useful)."""
    size, n = int(stage_one.errors.numel()), stage_one.num_train
    fix = ("set T with method.stage_one.max_steps=<T> method.stage_one.epochs=null"
           + ("" if batch_size else " (or method.stage_one.full_batch_fraction=<fraction of the run>)")
           + ", long enough to fit the majority groups but not the minority ones")
    counts = torch.bincount(train_target.cpu(), minlength=num_classes)
    majority, accuracy = int(counts.max()) / n, 1 - size / n
    steps = int(stage_one.summary.get("jtt/stage_one_steps", 0))
    findings = []
    if size == 0:
        findings.append(Finding("jtt_error_set", 3, f"JTT's error set is empty: stage one fits every "
                                                    f"training example and stage two is plain ERM; {fix}"))
    elif size > thresholds.jtt_max_error_fraction * n:
        findings.append(Finding("jtt_error_set", 3, f"JTT's error set holds {size} of {n} training "
                                                    f"examples ({100 * size / n:.0f}%): stage one barely "
                                                    f"learned; {fix}"))
    else:
        in_error = torch.bincount(train_target.cpu()[stage_one.errors.cpu()], minlength=num_classes)
        top = int(in_error.argmax())
        if in_error[top] >= thresholds.jtt_max_class_share * size:
            findings.append(Finding("jtt_error_set", 2, f"{100 * int(in_error[top]) / size:.0f}% of JTT's "
                                                        f"error set ({int(in_error[top])} of {size}) is "
                                                        f"class {top}: stage one learned the class prior, "
                                                        f"not the shortcut; {fix}"))
    if size and accuracy <= majority:
        findings.append(Finding("jtt_stage_one", 3, f"JTT's stage one is {100 * accuracy:.1f}% accurate "
                                                    f"on training, no better than always predicting the "
                                                    f"majority class ({100 * majority:.1f}%); {fix}"))
    elif batch_size and steps and steps * batch_size < n:
        findings.append(Finding("jtt_stage_one", 2, f"JTT's stage one ran {steps} steps of "
                                                    f"{batch_size} examples, less than one epoch of {n}; "
                                                    f"{fix}"))
    return findings
