"""The training loop: steps, periodic validation, model selection and resumable checkpoints."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from robustml.data.batches import TrainBatches
from robustml.data.contract import Batch, GroupedDataset, require_in_memory
from robustml.data.loading import eval_loader
from robustml.losses.base import GroupLoss
from robustml.metrics import OVERLAP_EXTRA
from robustml.models.forward import compile_model, model_device, resolve_precision
from robustml.report import append_jsonl, write_jsonl
from robustml.selection import selection_rule
from robustml.train import distributed
from robustml.train.checkpoint import check_resume_config, load_checkpoint, save_checkpoint
from robustml.train.rng import capture_rng, restore_rng, unique_generators
from robustml.train.settings import TrainSettings
from robustml.train.step import OptimizerStep
from robustml.validation import check_int

log = logging.getLogger(__name__)


def progress_line(record: dict[str, Any], max_steps: int) -> str:
    """Return one evaluation as a line: step, training loss, val worst-group, elapsed and ETA."""
    step, elapsed = int(record["step"]), float(record["elapsed_s"])
    eta = elapsed / step * (max_steps - step) if step else 0.0
    return (f"step {step}/{max_steps}: train loss {record['train/loss']:.4f}, val worst-group "
            f"{100 * record['val/acc_worst_group']:.1f}%, {elapsed:.0f} s elapsed, ETA {eta:.0f} s")


class Trainer:
    """Train ``model`` on ``train`` with ``criterion``; select on ``val``; checkpoint in ``run_dir``.

    Args:
        model: Maps ``batch["x"]`` to logits ``(N, C)``.
        criterion: A :class:`~robustml.losses.GroupLoss`; it receives ``batch[partition]`` as groups.
        optimizer: Built over ``model.parameters()``.
        train: Training split: in memory (tensors already on the training device; batches are
            indexed directly, or the full split each step) or on disk (mini-batches through a
            ``torch.utils.data.DataLoader`` with :class:`~robustml.data.samplers.EpochBatchSampler`,
            moved to the model's device).
        val: Validation split used for model selection (on disk: streamed in batches).
        settings: See :class:`TrainSettings`.
        run_dir: Where ``metrics.jsonl`` and ``checkpoints/`` are written.
        partition: Which partition the loss sees as its groups, a name of ``train.partitions``
            (``"group"``, ``"env"``, ``"class"`` or an added one such as ``"inferred"``).
        scheduler: Optional learning-rate scheduler, stepped once per step.
        augment: Optional batch transform ``batch -> batch`` applied to each training batch.
        sampler: Optional ``sampler(generator) -> indices`` drawing one epoch of training indices.
        sample_weights: Optional per-example loss weights, shape ``(len(train),)``, passed to the
            loss as ``weight=`` (group reweighting, cleaning's ``reweight`` action).
        train_counts: Training-set group counts that weight the train-mix average, shape
            ``(num_groups,)``; default ``train.group_counts()``. A run whose training split was
            pruned passes the counts before pruning (the data's mix, not the cleaner's).
        config: The run's resolved config as a plain dict; saved in every checkpoint and
            compared on resume (``None``: no comparison).
        epoch_size: Indices per epoch that ``sampler`` draws (default ``len(train)``; JTT's
            upsampled epoch is longer).

    Under ``torchrun`` (see :mod:`robustml.train.distributed`) each process trains on its share
    of every global batch through DDP and evaluates its share of each split; the metrics, the
    selected step and the checkpoints equal those of one process, and rank 0 writes the files.
    """

    def __init__(self, model: nn.Module, criterion: GroupLoss, optimizer: torch.optim.Optimizer,
                 train: GroupedDataset, val: GroupedDataset, settings: TrainSettings, *,
                 run_dir: str | Path, partition: str = "group", scheduler: Any = None,
                 augment: Callable[[Batch], Batch] | None = None,
                 sampler: Callable[[torch.Generator], torch.Tensor] | None = None,
                 sample_weights: torch.Tensor | None = None,
                 train_counts: torch.Tensor | None = None,
                 config: dict[str, Any] | None = None, epoch_size: int | None = None) -> None:
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()) and settings.chunk_size:
            raise ValueError("chunk_size must be None for models with BatchNorm: chunks change "
                             "the batch statistics")
        train.partition(partition)  # validates that the partition exists
        if settings.select == "worst_overlap_group" and OVERLAP_EXTRA not in val.extras:
            raise ValueError(f"select='worst_overlap_group' chooses by the validation split's "
                             f"overlapping groups, but split {val.name!r} declares none "
                             f"(extras[{OVERLAP_EXTRA!r}]); use data that has them (civilcomments) "
                             f"or another rule, e.g. select='worst_group'")
        if not settings.batch_size:
            require_in_memory(train, "the full-batch protocol (batch_size=None)")
        if sample_weights is not None and sample_weights.shape != (len(train),):
            raise ValueError(f"sample_weights must have shape ({len(train)},), got "
                             f"{tuple(sample_weights.shape)}")
        self.model, self.criterion, self.optimizer, self.scheduler = model, criterion, optimizer, scheduler
        self.train, self.val, self.settings = train, val, settings
        self.eval_train = settings.train_evaluations(train.in_memory)  # "every" or "last"
        self.partition, self.augment = partition, augment
        self.run_dir = Path(run_dir)
        epoch_size = len(train) if epoch_size is None else check_int("epoch_size", epoch_size, minimum=1)
        self.device = train.device if train.in_memory else model_device(model)
        sample_weights = None if sample_weights is None else sample_weights.to(self.device)
        self.train_counts = train.group_counts() if train_counts is None else train_counts
        self.config = config
        self._generators = unique_generators(augment)
        # The training batches; their position (epoch, batch) is saved in checkpoints.
        self.batches = TrainBatches(train, batch_size=settings.batch_size, seed=settings.seed,
                                    device=self.device, sampler=sampler,
                                    sample_weights=sample_weights, epoch_size=epoch_size,
                                    loader=settings.loader, rank=distributed.rank(),
                                    world_size=distributed.world_size())
        # On-disk evaluation loaders, built once so that persistent workers survive evaluations.
        self._eval_loaders = {} if train.in_memory else {
            name: eval_loader(split, settings.loader) for name, split in (("train", train), ("val", val))}
        self.step, self.best_step, self.best_score = 0, 0, -math.inf
        self.history: list[dict[str, Any]] = []
        self.elapsed = 0.0
        distributed.check_distributable(criterion)
        # "auto" resolved, bf16/fp16 checked against the device: evaluation uses the same.
        self.precision = resolve_precision(settings.precision, self.device)
        trained = compile_model(model) if settings.compile else model
        batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        if batch_norm and settings.accumulate > 1 and distributed.is_main():
            log.info("accumulate=%d with BatchNorm: its batch statistics are those of each "
                     "micro-batch, not of the whole batch", settings.accumulate)
        self._step = OptimizerStep(
            trained, distributed.training_forward(trained, settings.chunk_size), criterion,
            optimizer, scheduler=scheduler, precision=self.precision,
            accumulate=settings.accumulate, partition=partition, chunk_size=settings.chunk_size,
            l2_weight=settings.l2_weight, max_grad_norm=settings.max_grad_norm, device=self.device,
            reset_optimizer_at_anneal=settings.reset_optimizer_at_anneal)

    # Checkpoints -------------------------------------------------------------------------------
    @property
    def last_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "checkpoints" / "best.pt"

    def _state(self, rng: list[dict[str, Any]]) -> dict[str, Any]:
        """Return the checkpoint; ``rng`` holds every process's random states, in rank order."""
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "criterion": self.criterion.state_dict(), "step": self.step,
                 "best_step": self.best_step, "best_score": self.best_score,
                 "history": self.history, "elapsed": self.elapsed,
                 "rng": rng, "data_position": self.batches.position, "config": self.config,
                 "step_state": self._step.state_dict()}
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        if not self.settings.resume_force:
            check_resume_config(state.get("config"), self.config, self.last_path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.criterion.load_state_dict(state["criterion"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self._step.load_state_dict(state.get("step_state", {}))
        # Each process draws from its own generators (dropout on its share of the batch): under
        # torchrun every process restores the states it saved, so a resumed run is exact there too.
        if len(state["rng"]) != distributed.world_size():
            raise ValueError(f"{self.last_path} was saved by {len(state['rng'])} process(es), but this "
                             f"run has {distributed.world_size()}: resume with the same number "
                             f"(torchrun --nproc_per_node={len(state['rng'])}, or none for 1)")
        restore_rng(state["rng"][distributed.rank()], self._generators)
        self.step, self.best_step, self.best_score = state["step"], state["best_step"], state["best_score"]
        self.history, self.elapsed = state["history"], state["elapsed"]
        self.batches.seek(tuple(state["data_position"]))
        # metrics.jsonl may hold lines written after the checkpoint (a crash between the two):
        # replace it, atomically, by the checkpoint's history, so no line appears twice.
        if distributed.is_main():
            write_jsonl(self.run_dir / "metrics.jsonl", self.history)

    # Steps -------------------------------------------------------------------------------------
    def _train_step(self, batch: Batch) -> float:
        """Run one optimizer step on ``batch`` (augmented first); return the batch's loss."""
        if self.augment is not None:
            batch = self.augment(batch)
        return self._step(batch)

    def _evaluate(self, loss: float) -> dict[str, Any]:
        record: dict[str, Any] = {"step": self.step, "train/loss": loss,
                                  "lr": self.optimizer.param_groups[0]["lr"]}
        record.update({f"train/{k}": v for k, v in self.criterion.log_values().items()})
        if self._step.scaler is not None:  # fp16: steps the scaler skipped (inf/NaN gradients), so far
            record["train/skipped_steps"] = self._step.skipped_steps
        splits = [("val", self.val)]
        if self.eval_train == "every" or self.step == self.settings.max_steps:
            splits.insert(0, ("train", self.train))
        for prefix, split in splits:
            record.update(distributed.evaluate_split(
                self.model, split, prefix=prefix, train_counts=self.train_counts,
                precision=self.precision, settings=self.settings.loader,
                loader=self._eval_loaders.get(prefix)))
        return record

    def fit(self) -> dict[str, Any]:
        """Train to ``max_steps`` (resuming if asked); return ``{"best_step", "steps", "history", "elapsed"}``.

        A fresh fit refuses a ``run_dir`` that holds another run's ``metrics.jsonl`` (on every
        process). Resuming replaces ``metrics.jsonl``, atomically, by the checkpoint's history: lines
        written after the checkpoint (a crash between the two writes) would otherwise appear twice.
        """
        settings = self.settings
        if settings.resume:
            if not self.last_path.is_file():
                raise FileNotFoundError(
                    f"resume=True but there is no checkpoint at {self.last_path}; pass the run's own "
                    f"folder as run_dir, or drop resume=True to start a new run")
            # On the CPU: RNG states must stay CPU tensors, and load_state_dict moves the weights,
            # the optimizer state and the loss buffers to their own devices.
            self._restore(load_checkpoint(self.last_path, map_location="cpu"))
        elif distributed.agree(distributed.is_main() and (self.run_dir / "metrics.jsonl").exists()):
            raise FileExistsError(
                f"{self.run_dir / 'metrics.jsonl'} exists: {self.run_dir} holds another run's "
                "evaluations; train into a new folder, or resume that run (resume=True)")
        self.model.train()
        self.criterion.train()
        metric = selection_rule(settings.select).metric
        bar = tqdm(total=settings.max_steps, initial=self.step,
                   disable=not (settings.progress and distributed.is_main()),
                   desc="train", dynamic_ncols=True)
        start = time.perf_counter() - self.elapsed
        while self.step < settings.max_steps:
            loss = self._train_step(next(self.batches))
            self.step += 1
            self._check_divergence(loss)
            bar.update(1)
            if self.step % settings.eval_every and self.step != settings.max_steps:
                continue
            record = self._evaluate(loss)
            self.elapsed = time.perf_counter() - start
            record["elapsed_s"] = self.elapsed
            self.history.append(record)
            if not settings.progress and distributed.is_main():  # no bar: one line per evaluation
                log.info(progress_line(record, settings.max_steps))
            self._log_skipped(record)
            score = math.inf if metric is None else record[metric]
            if math.isnan(score):
                score = -math.inf
            best = metric is None or self.best_step == 0 or score > self.best_score
            if best:
                self.best_step, self.best_score = self.step, score
            rng = distributed.gather(capture_rng(self._generators))  # on every process
            if distributed.is_main():  # every process holds the same record, model and choice
                append_jsonl(self.run_dir / "metrics.jsonl", record)
                if best:
                    save_checkpoint(self.best_path, {"model": self.model.state_dict(),
                                                     "criterion": self.criterion.state_dict(),
                                                     "step": self.step})
                save_checkpoint(self.last_path, self._state(rng))
            bar.set_postfix(loss=f"{loss:.4f}", val_worst=f"{record['val/acc_worst_group']:.3f}")
        bar.close()
        distributed.barrier()  # best.pt is written before any process loads it
        result = {"best_step": self.best_step, "steps": self.step, "history": self.history,
                  "elapsed": self.elapsed}
        if self._step.scaler is not None:
            result["skipped_steps"] = self._step.skipped_steps
        return result

    def _log_skipped(self, record: dict[str, Any]) -> None:
        """Log the fp16 steps skipped since the previous evaluation (none: nothing to say)."""
        if "train/skipped_steps" not in record or not distributed.is_main():
            return
        before = self.history[-2].get("train/skipped_steps", 0) if len(self.history) > 1 else 0
        skipped = record["train/skipped_steps"] - before
        if skipped:
            log.info("fp16: %d step(s) up to step %d skipped by the loss scaler (inf/NaN gradients; "
                     "%d in all), loss scale now %g", skipped, self.step,
                     record["train/skipped_steps"], self._step.scaler.get_scale())

    def _check_divergence(self, loss: float) -> None:
        """Raise ``FloatingPointError`` naming the learning rate when the loss is out of bounds."""
        if math.isfinite(loss) and abs(loss) <= self.settings.max_loss:
            return
        lr = self.optimizer.param_groups[0]["lr"]
        raise FloatingPointError(
            f"training diverged: the loss at step {self.step} is {loss:.3g}, above "
            f"max_loss={self.settings.max_loss:g}; lower the learning rate "
            f"(lr={lr:g} now) or raise max_loss if losses this large are expected")

    def load_best(self) -> None:
        """Load the selected checkpoint's weights (``best.pt``) into the model."""
        state = load_checkpoint(self.best_path, map_location=self.device)
        if int(state["step"]) != self.best_step:  # a resumed run that replayed differently
            raise RuntimeError(f"{self.best_path} holds the model of step {state['step']}, but the run "
                               f"selected step {self.best_step}: the resumed steps did not replay the "
                               "interrupted ones (resume_force, or nondeterministic kernels); "
                               "train the run again without resume")
        self.model.load_state_dict(state["model"])

    @property
    def position(self) -> tuple[int, int]:
        """``(epoch, batch)`` of the next training batch (:attr:`TrainBatches.position`)."""
        return self.batches.position
