"""The training loop: steps, periodic validation, model selection and resumable checkpoints."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from robustml.data.contract import Batch, GroupedDataset, require_in_memory
from robustml.data.loading import LoaderSettings, eval_loader, iter_inputs, train_loader
from robustml.data.samplers import EpochBatchSampler, epoch_order
from robustml.losses.base import GroupLoss
from robustml.models.forward import PRECISIONS, autocast, model_device
from robustml.report import append_jsonl, write_jsonl
from robustml.train import distributed
from robustml.train.checkpoint import check_resume_config, load_checkpoint, save_checkpoint
from robustml.train.rng import capture_rng, restore_rng, unique_generators
from robustml.selection import selection_rule
from robustml.validation import check_int, check_real

EVAL_TRAIN = ("every", "last")


@dataclass
class TrainSettings:
    """What the loop needs beyond the model, loss and optimizer (``cfg.trainer`` in the configs).

    Args:
        max_steps: Number of optimizer steps.
        batch_size: Examples per step; ``None`` trains on the full training set every step.
        eval_every: Evaluate on train and val every this many steps (and at the last step).
        eval_train: ``"every"``: every evaluation covers the training split too; ``"last"``:
            only the last step's does (the others cover val; selection reads val only, so the
            selected model and the final metrics are the same). A training-split evaluation
            costs a forward pass over the whole split, as much as a third of an epoch.
        chunk_size: Compute each batch's forward pass in row chunks of this size (same gradient).
        precision: ``"fp32"`` or ``"bf16"`` (autocast; losses stay in float32).
        select: The model-selection rule on val, a name of :data:`robustml.selection.RULES`:
            ``"worst_group"`` accuracy, ``"avg"`` accuracy, ``"last"``, ``"worst_class"`` accuracy
            or ``"worst_inferred_group"`` accuracy (needs an inferred partition).
        l2_weight: Weight of ``sum ||w||^2`` added to the loss (scaled with the loss's ``loss_scale``).
        reset_optimizer_at_anneal: Clear the optimizer state when a penalty schedule anneals
            (any penalized loss inside the criterion, e.g. IRM wrapped by a consistency penalty).
        seed: Seed of the data order.
        resume: Continue from ``checkpoints/last.pt`` in the run directory (which must exist).
            The run ends as an uninterrupted one would (same ``metrics.json`` but for timing).
        resume_force: Resume even when the checkpoint's config differs from this run's (by
            default refused, naming the keys; see
            :data:`~robustml.identity.RESUME_EXEMPT_KEYS`).
        progress: Show a progress bar.
        max_loss: Stop with an error naming the learning rate when the training loss exceeds this
            (a diverging optimizer: losses of a classifier that is learning stay far below it).
        num_workers: DataLoader workers for on-disk data (see
            :class:`~robustml.data.loading.LoaderSettings`; in-memory data is indexed directly).
        pin_memory: Pinned host batches for on-disk data (faster copies to CUDA).
        persistent_workers: Keep evaluation loaders' workers alive between evaluations.
        eval_batch_size: Examples per evaluation batch of on-disk data.
    """

    max_steps: int
    batch_size: int | None = None
    eval_every: int = 50
    eval_train: str = "every"
    chunk_size: int | None = None
    precision: str = "fp32"
    select: str = "worst_group"
    l2_weight: float = 0.0
    reset_optimizer_at_anneal: bool = False
    seed: int = 0
    resume: bool = False
    resume_force: bool = False
    progress: bool = True
    max_loss: float = 1e6
    num_workers: int = 0
    pin_memory: bool = False
    persistent_workers: bool = False
    eval_batch_size: int = 256

    @property
    def loader(self) -> LoaderSettings:
        return LoaderSettings(num_workers=self.num_workers, pin_memory=self.pin_memory,
                              persistent_workers=self.persistent_workers,
                              eval_batch_size=self.eval_batch_size)

    def __post_init__(self) -> None:
        self.loader  # validates the DataLoader options
        selection_rule(self.select, argument="trainer.select")
        if self.eval_train not in EVAL_TRAIN:
            raise ValueError(f"trainer.eval_train must be one of {EVAL_TRAIN}, got {self.eval_train!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"trainer.precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("max_steps", "eval_every"):
            setattr(self, name, check_int(f"trainer.{name}", getattr(self, name), minimum=1))
        for name in ("batch_size", "chunk_size"):
            if getattr(self, name) is not None:
                setattr(self, name, check_int(f"trainer.{name}", getattr(self, name), minimum=1))
        self.l2_weight = check_real("trainer.l2_weight", self.l2_weight, minimum=0.0)
        self.max_loss = check_real("trainer.max_loss", self.max_loss, minimum=0.0)
        self.seed = check_int("seed", self.seed)


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
        partition: Which batch field the loss sees: ``"group"`` or ``"env"``.
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
            raise ValueError("trainer.chunk_size must be null for models with BatchNorm: chunks change "
                             "the batch statistics")
        train.partition(partition)  # validates that the partition exists
        if not settings.batch_size:
            require_in_memory(train, "the full-batch protocol (trainer.batch_size=null)")
        if sample_weights is not None and sample_weights.shape != (len(train),):
            raise ValueError(f"sample_weights must have shape ({len(train)},), got "
                             f"{tuple(sample_weights.shape)}")
        self.model, self.criterion, self.optimizer, self.scheduler = model, criterion, optimizer, scheduler
        self.train, self.val, self.settings = train, val, settings
        self.partition, self.augment, self.sampler = partition, augment, sampler
        self.run_dir = Path(run_dir)
        self.epoch_size = len(train) if epoch_size is None else check_int("epoch_size", epoch_size, minimum=1)
        self.device = train.device if train.in_memory else model_device(model)
        self.sample_weights = None if sample_weights is None else sample_weights.to(self.device)
        self.train_counts = train.group_counts() if train_counts is None else train_counts
        self.config = config
        self._generators = unique_generators(augment)
        self.position = (0, 0)  # (epoch, batch) of the next training batch, saved in checkpoints
        # On-disk evaluation loaders, built once so that persistent workers survive evaluations.
        self._eval_loaders = {} if train.in_memory else {
            name: eval_loader(split, settings.loader) for name, split in (("train", train), ("val", val))}
        self.step, self.best_step, self.best_score = 0, 0, -math.inf
        self.history: list[dict[str, Any]] = []
        self.elapsed = 0.0
        distributed.check_distributable(criterion)
        self._forward = distributed.training_forward(model, settings.chunk_size)

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
                 "rng": rng, "data_position": self.position, "config": self.config}
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
        # Each process draws from its own generators (dropout on its share of the batch): under
        # torchrun every process restores the states it saved, so a resumed run is exact there too.
        if len(state["rng"]) != distributed.world_size():
            raise ValueError(f"{self.last_path} was saved by {len(state['rng'])} process(es), but this "
                             f"run has {distributed.world_size()}: resume with the same number "
                             f"(torchrun --nproc_per_node={len(state['rng'])}, or none for 1)")
        restore_rng(state["rng"][distributed.rank()], self._generators)
        self.step, self.best_step, self.best_score = state["step"], state["best_step"], state["best_score"]
        self.history, self.elapsed = state["history"], state["elapsed"]
        self.position = tuple(state["data_position"])
        # metrics.jsonl may hold lines written after the checkpoint (a crash between the two):
        # replace it, atomically, by the checkpoint's history, so no line appears twice.
        if distributed.is_main():
            write_jsonl(self.run_dir / "metrics.jsonl", self.history)

    # Data --------------------------------------------------------------------------------------
    @property
    def _steps_per_epoch(self) -> int:
        return math.ceil(self.epoch_size / (self.settings.batch_size or len(self.train)))

    def _batches(self) -> Iterator[Batch]:
        """Yield training batches from ``self.position`` on; the order depends on seed and epoch only.

        In memory, batches are indexed from the split's tensors (or the full split each step); on
        disk they come from a DataLoader over :class:`EpochBatchSampler` keys, whose per-example
        seeds make the random transforms reproducible too. ``self.position`` follows the batches
        the loop consumed (not the ones workers prefetched), so a checkpoint resumes exactly.
        """
        epoch, offset = self.position
        steps_per_epoch = self._steps_per_epoch
        for batch in (self._loader_batches(epoch, offset) if not self.train.in_memory
                      else self._index_batches(epoch, offset)):
            offset += 1
            if offset == steps_per_epoch:
                epoch, offset = epoch + 1, 0
            self.position = (epoch, offset)
            yield batch

    def _index_batches(self, epoch: int, offset: int) -> Iterator[Batch]:
        """In-memory batches: index the split's tensors on their device (full batch when unbatched)."""
        n, batch_size = len(self.train), self.settings.batch_size or len(self.train)
        while True:
            if self.sampler is None and batch_size >= n:
                # Full batch: the whole split in order (under torchrun, each process's share).
                order = None if distributed.world_size() == 1 else torch.arange(n, device=self.device)
            else:
                order = epoch_order(epoch, seed=self.settings.seed, num_examples=n,
                                    draw=self.sampler).to(self.device)
            for b in range(offset, self._steps_per_epoch):
                if order is None:
                    batch, weight = self.train.full_batch(), self.sample_weights
                else:
                    idx = distributed.local_share(order[b * batch_size:(b + 1) * batch_size])
                    batch = self.train.get_batch(idx)
                    weight = None if self.sample_weights is None else self.sample_weights[idx]
                if weight is not None:
                    batch["weight"] = weight
                yield batch
            epoch, offset = epoch + 1, 0

    def _loader_batches(self, epoch: int, offset: int) -> Iterator[Batch]:
        """On-disk batches: one endless DataLoader from ``(epoch, offset)``, moved to the device."""
        sampler = EpochBatchSampler(self.epoch_size, self.settings.batch_size, seed=self.settings.seed,
                                    draw=self.sampler, start_epoch=epoch, start_batch=offset,
                                    rank=distributed.rank(), world_size=distributed.world_size())
        loader = train_loader(self.train, sampler, self.settings.loader, seed=self.settings.seed)
        for batch in iter_inputs(loader, self.device):
            if self.sample_weights is not None:
                batch["weight"] = self.sample_weights[batch["index"]]
            yield batch

    # Steps -------------------------------------------------------------------------------------
    def _train_step(self, batch: Batch) -> float:
        settings = self.settings
        if self.augment is not None:
            batch = self.augment(batch)
        with autocast(batch["x"].device, settings.precision):
            logits = self._forward(batch["x"])
        extra = {"weight": batch["weight"]} if "weight" in batch else {}
        loss = self.criterion(logits.float(), batch["y"], batch[self.partition], **extra)
        loss = distributed.global_loss(self.criterion, loss, extra.get("weight"), logits.shape[0])
        if settings.l2_weight:
            # The L2 term is scaled like the loss (the IRM paper divides both by the penalty weight);
            # nested losses (a consistency penalty around IRM) each contribute their factor.
            scale = math.prod(m.loss_scale for m in self.criterion.modules() if isinstance(m, GroupLoss))
            l2 = sum(p.pow(2).sum() for p in self.model.parameters())
            loss = loss + scale * settings.l2_weight * l2
        if settings.reset_optimizer_at_anneal and any(
                getattr(m, "anneal_reached_now", False) for m in self.criterion.modules()):
            self.optimizer.state.clear()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return distributed.mean_over_processes(loss.item(), loss.device)

    def _evaluate(self, loss: float) -> dict[str, Any]:
        record: dict[str, Any] = {"step": self.step, "train/loss": loss,
                                  "lr": self.optimizer.param_groups[0]["lr"]}
        record.update({f"train/{k}": v for k, v in self.criterion.log_values().items()})
        splits = [("val", self.val)]
        if self.settings.eval_train == "every" or self.step == self.settings.max_steps:
            splits.insert(0, ("train", self.train))
        for prefix, split in splits:
            record.update(distributed.evaluate_split(
                self.model, split, prefix=prefix, train_counts=self.train_counts,
                precision=self.settings.precision, settings=self.settings.loader,
                loader=self._eval_loaders.get(prefix)))
        return record

    def fit(self) -> dict[str, Any]:
        """Train to ``max_steps`` (resuming if asked); return ``{"best_step", "steps", "history", "elapsed"}``."""
        settings = self.settings
        if settings.resume:
            if not self.last_path.is_file():
                raise FileNotFoundError(
                    f"trainer.resume=true but there is no checkpoint at {self.last_path}; pass the "
                    f"directory of the run to resume as hydra.run.dir=<run dir>, or drop "
                    f"trainer.resume=true to start a new run (a run killed in a first stage, JTT's "
                    f"stage one or a reference ERM stage, has no checkpoint yet: run it again without "
                    f"trainer.resume=true, and the stage resumes from its own)")
            # On the CPU: RNG states must stay CPU tensors, and load_state_dict moves the weights,
            # the optimizer state and the loss buffers to their own devices.
            self._restore(load_checkpoint(self.last_path, map_location="cpu"))
        elif distributed.is_main():
            (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)
        self.model.train()
        self.criterion.train()
        metric = selection_rule(settings.select).metric
        batches = self._batches()
        bar = tqdm(total=settings.max_steps, initial=self.step,
                   disable=not (settings.progress and distributed.is_main()),
                   desc="train", dynamic_ncols=True)
        start = time.perf_counter() - self.elapsed
        while self.step < settings.max_steps:
            loss = self._train_step(next(batches))
            self.step += 1
            self._check_divergence(loss)
            bar.update(1)
            if self.step % settings.eval_every and self.step != settings.max_steps:
                continue
            record = self._evaluate(loss)
            self.elapsed = time.perf_counter() - start
            record["elapsed_s"] = self.elapsed
            self.history.append(record)
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
        return {"best_step": self.best_step, "steps": self.step, "history": self.history,
                "elapsed": self.elapsed}

    def _check_divergence(self, loss: float) -> None:
        """Raise ``FloatingPointError`` naming the learning rate when the loss is out of bounds."""
        if math.isfinite(loss) and abs(loss) <= self.settings.max_loss:
            return
        lr = self.optimizer.param_groups[0]["lr"]
        raise FloatingPointError(
            f"training diverged: the loss at step {self.step} is {loss:.3g}, above "
            f"trainer.max_loss={self.settings.max_loss:g}; lower the learning rate "
            f"(optimizer.lr={lr:g} now) or raise trainer.max_loss if losses this large are expected")

    def load_best(self) -> None:
        """Load the selected checkpoint's weights (``best.pt``) into the model."""
        state = load_checkpoint(self.best_path, map_location=self.device)
        if int(state["step"]) != self.best_step:  # a resumed run that replayed differently
            raise RuntimeError(f"{self.best_path} holds the model of step {state['step']}, but the run "
                               f"selected step {self.best_step}: the resumed steps did not replay the "
                               "interrupted ones (trainer.resume_force, or nondeterministic kernels); "
                               "train the run again without trainer.resume")
        self.model.load_state_dict(state["model"])
