"""What the training loop needs beyond the model, loss and optimizer: :class:`TrainSettings`."""

from __future__ import annotations

from dataclasses import dataclass

from robustml.data.loading import LoaderSettings
from robustml.models.forward import PRECISIONS
from robustml.selection import selection_rule
from robustml.validation import check_int, check_real

EVAL_TRAIN = ("auto", "every", "last")


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
            ``"auto"`` (default): ``"every"`` for in-memory data, ``"last"`` for on-disk data,
            where that pass reads every training image (:meth:`train_evaluations`).
        chunk_size: Compute each batch's forward pass in row chunks of this size (same gradient).
        accumulate: Micro-batches per optimizer step (gradient accumulation): ``batch_size``
            stays the global batch, split into ``accumulate`` parts (after each process's share
            under torchrun); the full batch is split the same way. Exact for ERM, reweighting
            and Group DRO; IRM and V-REx penalize each micro-batch (see
            :mod:`robustml.train.step`).
        precision: ``"fp32"``, ``"bf16"``, ``"fp16"`` (autocast; losses stay in float32; fp16
            scales the loss with :class:`torch.amp.GradScaler`) or ``"auto"`` (see
            :func:`~robustml.models.forward.resolve_precision`).
        compile: Train through ``torch.compile(model)`` (evaluation stays eager); needs a C++
            compiler on a CPU, triton on CUDA.
        select: The model-selection rule on val, a name of :data:`robustml.selection.RULES`:
            ``"worst_group"`` accuracy, ``"avg"`` accuracy, ``"last"``, ``"worst_class"`` accuracy,
            ``"worst_inferred_group"`` accuracy (needs an inferred partition) or
            ``"worst_overlap_group"`` accuracy (needs a val split with overlapping groups).
        l2_weight: Weight of ``sum ||w||^2`` added to the loss (scaled with the loss's ``loss_scale``).
        max_grad_norm: Clip the gradient's total norm (over all parameters, after accumulation
            and the processes' all-reduce, unscaled in fp16) to this value before each optimizer
            step (``torch.nn.utils.clip_grad_norm_``; BERT fine-tuning clips to 1.0); ``None``: none.
        reset_optimizer_at_anneal: Clear the optimizer state when a penalty schedule anneals
            (any penalized loss inside the criterion, e.g. IRM wrapped by a consistency penalty).
        seed: Seed of the data order.
        resume: Continue from ``checkpoints/last.pt`` in the run directory (which must exist).
            The run ends as an uninterrupted one would (same ``metrics.json`` but for timing).
        resume_force: Resume even when the checkpoint's config differs from this run's (by
            default refused, naming the keys; see
            :data:`~robustml.identity.RESUME_EXEMPT_KEYS`).
        progress: Show a progress bar; without one, log one line per evaluation (step, training
            loss, val worst-group accuracy, elapsed time and ETA).
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
    eval_train: str = "auto"
    chunk_size: int | None = None
    accumulate: int = 1
    precision: str = "fp32"
    compile: bool = False
    select: str = "worst_group"
    l2_weight: float = 0.0
    max_grad_norm: float | None = None
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

    def train_evaluations(self, in_memory: bool) -> str:
        """Return ``"every"`` or ``"last"``: :attr:`eval_train`, with ``"auto"`` resolved for data
        held in memory (``"every"``: a forward pass over the split is cheap) or on disk (``"last"``)."""
        if self.eval_train != "auto":
            return self.eval_train
        return "every" if in_memory else "last"

    @property
    def loader(self) -> LoaderSettings:
        return LoaderSettings(num_workers=self.num_workers, pin_memory=self.pin_memory,
                              persistent_workers=self.persistent_workers,
                              eval_batch_size=self.eval_batch_size)

    def __post_init__(self) -> None:
        self.loader  # validates the DataLoader options
        selection_rule(self.select)
        if self.eval_train not in EVAL_TRAIN:
            raise ValueError(f"eval_train must be one of {EVAL_TRAIN}, got {self.eval_train!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("max_steps", "eval_every"):
            setattr(self, name, check_int(name, getattr(self, name), minimum=1))
        for name in ("batch_size", "chunk_size"):
            if getattr(self, name) is not None:
                setattr(self, name, check_int(name, getattr(self, name), minimum=1))
        self.accumulate = check_int("accumulate", self.accumulate, minimum=1)
        if self.batch_size is not None and self.batch_size % self.accumulate:
            divisors = [d for d in range(2, min(self.batch_size, 64) + 1) if self.batch_size % d == 0]
            raise ValueError(f"accumulate must divide batch_size={self.batch_size} (the global "
                             f"batch, split into accumulate micro-batches): expected a divisor of "
                             f"{self.batch_size} (such as {divisors[:6] or [1]}), got "
                             f"accumulate={self.accumulate}")
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile must be true or false, got {self.compile!r}")
        self.l2_weight = check_real("l2_weight", self.l2_weight, minimum=0.0)
        self.max_loss = check_real("max_loss", self.max_loss, minimum=0.0)
        if self.max_grad_norm is not None:
            self.max_grad_norm = check_real("max_grad_norm", self.max_grad_norm, minimum=0.0)
            if self.max_grad_norm == 0:
                raise ValueError("max_grad_norm must be a positive number (or None: no clipping), got 0.0")
        self.seed = check_int("seed", self.seed)
