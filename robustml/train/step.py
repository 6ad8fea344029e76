"""One optimizer step: the batch's micro-batches (``trainer.accumulate``), autocast and fp16's scaler.

With ``accumulate=K`` the batch (``trainer.batch_size`` stays the global batch; under torchrun
each process holds its share) is split into K contiguous micro-batches, each forwarded and
back-propagated on its own, so only one micro-batch's activations are alive at a time; the
gradients add up before the one optimizer step. Each micro-batch's loss is weighted so that
the sum is the batch's loss:

- ERM and reweighting: the micro-batch's mean times its share of the batch's examples (of its
  weight sum when examples carry weights): the batch's (weighted) mean, exactly;
- Group DRO: ``q`` steps once, in one call on the whole batch's group losses and counts (a
  forward pass without gradients, the recipe of :class:`~robustml.losses.GroupDROLoss`), then
  the micro-batches' losses ``sum_g q_g S_g / n_g`` use the whole batch's counts ``n_g``:
  exactly the batch's loss and gradient (for models without dropout, whose extra forward draws
  other masks), at the cost of that extra forward;
- IRM and V-REx: the penalty is that of each micro-batch (its own per-environment statistics),
  weighted like ERM's mean; the penalty schedule (and IRM's random halves) advance once per
  optimizer step, in the last micro-batch's call (every micro-batch uses the step's weights).
  With K > 1 the objective is therefore the mean of micro-batch objectives, not the batch's:
  K = 1 keeps the batch's penalty.

Under DDP the non-final micro-batches run inside ``no_sync()``: their gradients stay local and
are all-reduced with the final one's (one all-reduce per step). The full batch
(``batch_size=None``) is split the same way, into K chunks of the training set. ``chunk_size``
stays what it was inside each micro-batch: a forward in row chunks within one graph (speed on a
CPU), while ``accumulate`` frees each micro-batch's graph (memory).

With ``precision="fp16"`` the losses go through :class:`torch.amp.GradScaler`: a step whose
gradients hold inf or NaN is skipped by the scaler (and counted in :attr:`skipped_steps`); its
state is part of :meth:`state_dict`, so a resumed run continues with the same scale.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from robustml.data.contract import Batch
from robustml.losses import ERMLoss, GroupDROLoss
from robustml.losses.compose import EnvironmentPenalizedLoss
from robustml.models.forward import autocast, forward_in_chunks
from robustml.train import distributed

#: Losses a batch can be split for: their micro-batch losses add up as described above.
ACCUMULABLE_LOSSES = (ERMLoss, GroupDROLoss, EnvironmentPenalizedLoss)


def split_batch(batch: Batch, parts: int) -> list[Batch]:
    """Return ``batch`` as ``parts`` contiguous micro-batches (row tensors split, others shared).

    Sizes differ by at most one row (``torch.tensor_split``); a batch of fewer rows than
    ``parts`` gives empty micro-batches at the end.
    """
    rows = batch["x"].shape[0]
    pieces = {key: value.tensor_split(parts) if isinstance(value, torch.Tensor) and value.dim()
              and value.shape[0] == rows else None for key, value in batch.items()}
    return [{key: batch[key] if pieces[key] is None else pieces[key][i] for key in batch}
            for i in range(parts)]


def check_accumulable(criterion: nn.Module, accumulate: int) -> None:
    """Raise ``ValueError`` when ``criterion``'s batch cannot be split into ``accumulate`` parts."""
    if accumulate == 1 or type(criterion) in ACCUMULABLE_LOSSES \
            or isinstance(criterion, EnvironmentPenalizedLoss):
        return
    raise ValueError(
        f"accumulate={accumulate} splits each batch into micro-batches, but loss "
        f"{type(criterion).__name__} compares rows across the batch (pairs or other whole-batch "
        f"statistics); expected accumulate=1 for it, or one of ERMLoss, GroupDROLoss, IRMLoss, "
        f"VRExLoss")


class OptimizerStep:
    """Run one optimizer step on a batch: ``step(batch) -> loss`` (the batch's loss, global mean).

    Args:
        model: The model (possibly compiled); its parameters enter the L2 term, and Group DRO's
            ``q`` step forwards the whole batch through it without gradients.
        forward: The training forward (``model`` in row chunks, through DDP when distributed).
        criterion: The loss; it receives ``batch[partition]`` as groups.
        optimizer: Built over the model's parameters.
        scheduler: Optional learning-rate scheduler, stepped once per step.
        precision: A resolved precision (``"fp32"``, ``"bf16"`` or ``"fp16"``).
        accumulate: Micro-batches per optimizer step.
        partition: The batch key of the loss's groups.
        chunk_size: Row chunks of Group DRO's whole-batch forward (as ``forward``'s).
        l2_weight: Weight of ``sum ||w||^2``, added once per step (scaled by the loss's
            ``loss_scale``).
        reset_optimizer_at_anneal: Clear the optimizer's state when a penalty schedule anneals.
        max_grad_norm: Clip the total gradient norm to this value before the optimizer step
            (unscaled first in fp16); ``None``: no clipping.
    """

    def __init__(self, model: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor],
                 criterion: nn.Module, optimizer: torch.optim.Optimizer, *, scheduler: Any,
                 precision: str, accumulate: int, partition: str, chunk_size: int | None,
                 l2_weight: float, reset_optimizer_at_anneal: bool, device: torch.device,
                 max_grad_norm: float | None = None) -> None:
        check_accumulable(criterion, accumulate)
        self.model, self.forward, self.criterion = model, forward, criterion
        self.optimizer, self.scheduler = optimizer, scheduler
        self.precision, self.accumulate, self.partition = precision, accumulate, partition
        self.chunk_size, self.l2_weight = chunk_size, l2_weight
        self.reset_optimizer_at_anneal = reset_optimizer_at_anneal
        self.max_grad_norm = max_grad_norm
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
        self.skipped_steps = 0

    def state_dict(self) -> dict[str, Any]:
        """Return the scaler's state (fp16) and the number of skipped steps, plain values only."""
        state: dict[str, Any] = {"skipped_steps": self.skipped_steps}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.skipped_steps = int(state.get("skipped_steps", 0))
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    def __call__(self, batch: Batch) -> float:
        accumulate, criterion = self.accumulate, self.criterion
        parts = split_batch(batch, accumulate) if accumulate > 1 else [batch]
        dro_counts = None
        if accumulate > 1 and isinstance(criterion, GroupDROLoss):
            with torch.no_grad(), autocast(batch["x"].device, self.precision):
                logits = forward_in_chunks(self.model, batch["x"], self.chunk_size)
            criterion(logits.float(), batch["y"], batch[self.partition], **_weight(batch), update=True)
            dro_counts = criterion.last_group_counts.clone()
        shares = None
        if not isinstance(criterion, GroupDROLoss) and (accumulate > 1 or distributed.world_size() > 1):
            shares = _shares(parts)
        # The last micro-batch with rows makes the updating call (a short last batch may leave
        # the final ones empty); the L2 term is added once, there.
        updating = max([i for i, part in enumerate(parts) if part["x"].shape[0]] or [len(parts) - 1])
        self.optimizer.zero_grad(set_to_none=True)
        values = []
        for i, part in enumerate(parts):
            final = i == len(parts) - 1
            with nullcontext() if final else distributed.no_sync(self.forward):
                loss = self._part_loss(part, updating=i == updating, dro_counts=dro_counts,
                                       share=None if shares is None else shares[i])
                if i == updating:
                    signals = criterion.step_signals()  # set by the updating call
                    if self.reset_optimizer_at_anneal and signals.annealed:
                        self.optimizer.state.clear()
                if i == updating and self.l2_weight:
                    # The L2 term is scaled like the loss (the IRM paper divides both by the penalty weight).
                    l2 = sum(p.pow(2).sum() for p in self.model.parameters())
                    loss = loss + signals.loss_scale * self.l2_weight * l2
                (loss if self.scaler is None else self.scaler.scale(loss)).backward()
            values.append(loss.detach())
        self._optimizer_step()
        value = values[0] if len(values) == 1 else torch.stack(values).sum()
        return distributed.mean_over_processes(value.item(), value.device)

    def _part_loss(self, part: Batch, *, updating: bool, dro_counts: torch.Tensor | None,
                   share: float | None) -> torch.Tensor:
        """Return the loss of one micro-batch, weighted so that the micro-batches add up."""
        with autocast(part["x"].device, self.precision):
            logits = self.forward(part["x"])
        if logits.shape[0] == 0:  # a short last batch: no rows for this micro-batch
            return logits.float().sum() * 0.0
        args = (logits.float(), part["y"], part[self.partition])
        if dro_counts is not None:  # q stepped on the whole batch; these calls only weight
            return distributed.world_size() * self.criterion(
                *args, **_weight(part), update=False, batch_counts=dro_counts)
        update = {} if self.accumulate == 1 or isinstance(self.criterion, ERMLoss) else {"update": updating}
        loss = self.criterion(*args, **_weight(part), **update)
        return loss if share is None else loss * share

    def _optimizer_step(self) -> None:
        """Clip the gradient (``max_grad_norm``), step the optimizer (through the scaler in fp16,
        counting skipped steps) and the schedule."""
        if self.max_grad_norm is not None:
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)  # clip the true gradient; step() knows it is unscaled
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        skipped = False
        if self.scaler is None:
            self.optimizer.step()
        else:
            scale = self.scaler.get_scale()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            skipped = self.scaler.get_scale() < scale  # the scaler backs off after inf/NaN gradients
            self.skipped_steps += int(skipped)
        if self.scheduler is None:
            return
        with warnings.catch_warnings():
            if skipped:  # the schedule follows the step count, skipped or not
                warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step()`")
            self.scheduler.step()


def _weight(batch: Batch) -> dict[str, torch.Tensor]:
    return {"weight": batch["weight"]} if "weight" in batch else {}


def _shares(parts: list[Batch]) -> list[float]:
    """Return ``world_size * m_part / m_global`` for each micro-batch: its examples (weight sum
    with weights) over the global batch's, times the processes DDP averages over."""
    world = distributed.world_size()
    if "weight" in parts[0]:
        counts = torch.stack([part["weight"].detach().sum() for part in parts]).to(torch.float64)
    else:
        rows = [float(part["x"].shape[0]) for part in parts]
        if world == 1:
            return [r / sum(rows) for r in rows]
        counts = torch.tensor(rows, dtype=torch.float64, device=parts[0]["x"].device)
    total = distributed.global_count(counts.sum())
    return (world * counts / total).tolist()
