"""Online Group DRO: minimize the loss of the worst group with adaptive group weights."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist

from robustml.losses.base import GroupLoss
from robustml.losses.checks import check_finite, check_inputs, check_nonnegative, check_weight
from robustml.losses.functional import classification_loss, group_sums


class GroupDROLoss(GroupLoss):
    """Group DRO loss ``sum_g q_g * L_g``, group weights ``q`` updated by exponentiated gradient.

    Sagawa, Koh, Hashimoto, Liang, "Distributionally Robust Neural Networks", ICLR 2020,
    Algorithm 1. At every training-mode call: group mean losses ``L_g`` over the batch, the
    generalization adjustment ``L~_g = L_g + C / sqrt(n_g)`` (``C = adjustment``, ``n_g`` the
    training-set count), optionally ``L~ <- L~ / sum(L~)``, then ``q_g <- q_g * exp(eta * L~_g)``,
    ``q <- q / sum(q)`` (see :func:`group_dro_step`). The returned loss is ``sum_g q_g * L_g``
    with the updated ``q`` held constant. Unlike the reference code, the returned value does not
    include the adjustment (same gradient, comparable values).

    Per-example weights: with ``weight``, each group loss is the weighted mean
    ``L_g = sum_{i in g} w_i l_i / sum_{i in g} w_i`` (so an example of weight 0 has no influence,
    integer weights equal repeating examples, and equal weights give the unweighted loss); a group
    whose weights in the batch sum to 0 counts as absent. The weights act within groups only; the
    balance between groups stays with ``q``.

    Absent groups: a group with no sample in the batch contributes 0 to the loss and its weight
    gets exponent 0 (no update, so it only shrinks through the renormalization). The reference
    code gives it ``L_g = 0`` too but still adds ``C / sqrt(n_g)`` to its exponent, so with
    ``adjustment > 0`` it up-weights groups it did not see.

    State: ``q`` is a registered buffer (saved in ``state_dict``), updated by the calls that
    update: by default every training-mode call (``eval()`` freezes it, like BatchNorm
    statistics); ``update=`` says it explicitly, so a training-mode call for logging passes
    ``update=False`` and leaves ``q`` as it was.

    Gradient accumulation (micro-batches of one optimizer step): Algorithm 1 updates ``q`` with
    the group losses of the whole batch before the gradient step, so a loop that splits the
    batch does the update in one call on the whole batch, and the gradient calls with
    ``update=False`` and ``batch_counts=criterion.last_group_counts``, which normalize each
    micro-batch's group sums by the whole batch's counts; the micro-batch losses then add up to
    the whole batch's loss and their gradients to its gradient::

        with torch.no_grad():                        # the q step sees the whole batch
            criterion(torch.cat([model(x) for x, _, _ in micro]), y, groups)
        for x, y_m, g_m in micro:                    # gradients with that q, accumulated
            criterion(model(x), y_m, g_m, update=False,
                      batch_counts=criterion.last_group_counts).backward()
        optimizer.step()

    This is exact when the forward pass is deterministic (no dropout); it costs one extra
    forward pass without gradients.

    Multiple processes (opt-in, ``sync_processes=True``): an updating call all-reduces (sums)
    the per-group loss sums and counts over the default ``torch.distributed`` process group
    (weighted loss sums and weight sums when ``weight`` is given), so every process computes the
    same global group means and holds the same ``q``, equal to a single process seeing the
    concatenated batches. The returned loss
    on each process is ``world_size * sum_g q_g * S_g / n_g`` with ``S_g`` the local (weighted)
    loss sum and ``n_g`` the global count (weight sum): DDP averages gradients over processes,
    so the averaged gradient is exactly the gradient of ``sum_g q_g * L_g`` on the global batch
    (a plain local ``sum_g q_g * L_g^local`` would weight small local group samples like large
    ones). The mean of the returned values over processes is the global loss. Every process
    must make the same number of updating calls (as DDP requires anyway); other calls run no
    collective and use local group means. By default the loss runs no
    collective, initialized process group or not: every process keeps its own ``q`` from its own
    batches. ``robustml-train`` under ``torchrun`` turns it on.

    Args:
        num_groups: Number of groups ``G``; ids passed to ``forward`` lie in ``[0, G)``.
        step_size: The step size ``eta`` of the weight update (paper default 0.01).
        group_counts: Training-set count of each group, shape ``(G,)``; needed when
            ``adjustment > 0``.
        adjustment: The generalization adjustment ``C`` (0 = off; the paper tunes 0..5).
        normalize_loss: Divide the adjusted group losses by their sum before the step.
        sync_processes: Sum the group statistics of updating calls over all processes of the
            initialized default process group (see "Multiple processes"); ``False`` keeps every
            call local.

    Attributes:
        q: Group weights, shape ``(G,)``, starting uniform.
        last_group_losses: Group (weighted) mean losses of the last updating call, shape
            ``(G,)`` (0 for groups absent from the batch; global means with ``sync_processes``).
        last_group_counts: Group counts (weight sums with ``weight``) of the last updating
            call's batch, shape ``(G,)`` (global with ``sync_processes``).
    """

    def __init__(self, num_groups: int, *, step_size: float = 0.01,
                 group_counts: Sequence[int] | torch.Tensor | None = None,
                 adjustment: float = 0.0, normalize_loss: bool = False,
                 sync_processes: bool = False) -> None:
        super().__init__(num_groups)
        self.step_size = check_nonnegative("step_size", step_size)
        self.adjustment = check_nonnegative("adjustment", adjustment)
        self.normalize_loss = bool(normalize_loss)
        self.sync_processes = bool(sync_processes)
        counts = None if group_counts is None else _as_counts(group_counts, self.num_groups)
        adjustments = torch.zeros(self.num_groups)
        if self.adjustment > 0:
            if counts is None:
                raise ValueError(f"adjustment={adjustment} > 0 divides by sqrt(group_counts), so "
                                 "group_counts (the training-set count of each group) is "
                                 "required, got None")
            empty = (counts <= 0).nonzero().flatten().tolist()
            if empty:
                raise ValueError(f"adjustment={adjustment} > 0 divides by sqrt(group_counts), so "
                                 f"every group needs a count > 0, but group(s) {empty} have count "
                                 f"0 (group_counts={counts.long().tolist()})")
            adjustments = (self.adjustment / counts.sqrt()).float()
        self.register_buffer("q", torch.full((self.num_groups,), 1.0 / self.num_groups))
        self.register_buffer("adjustments", adjustments, persistent=False)
        self.register_buffer("last_group_losses", torch.zeros(self.num_groups), persistent=False)
        self.register_buffer("last_group_counts", torch.zeros(self.num_groups), persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, groups: torch.Tensor, *,
                weight: torch.Tensor | None = None, update: bool | None = None,
                batch_counts: torch.Tensor | None = None) -> torch.Tensor:
        """Return ``sum_g q_g * L_g``; when updating, update ``q`` first.

        Args:
            logits: Shape ``(N, C)``.
            target: Shape ``(N,)``, int64 class ids.
            groups: Shape ``(N,)``, int64 group ids in ``[0, num_groups)``.
            weight: Optional per-example weights, shape ``(N,)``, finite, ``>= 0``, not all zero.
            update: Update ``q`` with this batch; ``None``: in training mode.
            batch_counts: With ``update=False`` only: the group counts (weight sums) of the whole
                batch this call is a micro-batch of, shape ``(G,)``; the loss is then
                ``sum_g q_g * S_g / batch_counts_g`` with ``S_g`` this call's group loss sums.
        """
        check_inputs(logits, target, groups, num_groups=self.num_groups)
        check_weight(weight, logits.shape[0])
        update = self.training if update is None else bool(update)
        losses = check_finite(classification_loss(logits, target), "per-example loss")
        sums, counts = group_sums(losses, groups, num_groups=self.num_groups, weight=weight)
        if batch_counts is not None:
            if update:
                raise ValueError("batch_counts is for the micro-batches of a step whose q update "
                                 "is done, so it needs update=False, got update=True")
            whole = _as_counts(batch_counts, self.num_groups, "batch_counts").to(counts)
            if bool((whole < counts - 1e-6 * counts.abs().clamp(min=1)).any()):
                raise ValueError(f"batch_counts must be the group counts of the whole batch, at least "
                                 f"this micro-batch's own {counts.tolist()}, got {whole.tolist()}")
            counts = whole
        world_size = 1
        if update:
            with torch.no_grad():
                total_sums = sums.detach()
                if self.sync_processes:
                    total_sums, counts, world_size = _sum_over_processes(total_sums, counts)
                means = total_sums / _nonzero(counts)
                self.q.copy_(group_dro_step(
                    self.q, means, counts > 0, step_size=self.step_size,
                    adjustments=self.adjustments if self.adjustment > 0 else None,
                    normalize_loss=self.normalize_loss))
                self.last_group_losses.copy_(means)
                self.last_group_counts.copy_(counts)
        weights = self.q.to(losses.dtype)
        return check_finite(world_size * (weights * sums / _nonzero(counts)).sum(),
                            "group DRO loss")

    def log_values(self) -> dict[str, float]:
        """Return ``q_<g>`` and ``loss_group_<g>`` (the last training step's group mean loss)."""
        values = {f"q_{g}": w for g, w in enumerate(self.q.tolist())}
        values.update({f"loss_group_{g}": v
                       for g, v in enumerate(self.last_group_losses.tolist())})
        return values


def _nonzero(counts: torch.Tensor) -> torch.Tensor:
    """Return ``counts`` with zeros replaced by 1 (an absent group's sum is 0, so its mean is 0)."""
    return torch.where(counts > 0, counts, torch.ones_like(counts))


def _as_counts(group_counts: Sequence[int] | torch.Tensor, num_groups: int,
               name: str = "group_counts") -> torch.Tensor:
    """Return ``group_counts`` (the argument ``name``) as a float64 CPU tensor ``(num_groups,)``, validated."""
    if isinstance(group_counts, torch.Tensor):
        counts = group_counts.detach().to("cpu", torch.float64)
    else:
        counts = torch.tensor([float(c) for c in group_counts], dtype=torch.float64)
    if counts.shape != (num_groups,):
        raise ValueError(f"{name} must have shape ({num_groups},), one count per group, "
                         f"got {tuple(counts.shape)}")
    if not bool(torch.isfinite(counts).all()) or bool((counts < 0).any()):
        raise ValueError(f"{name} must be finite and >= 0, got {counts.tolist()}")
    return counts


def _sum_over_processes(sums: torch.Tensor,
                        counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Return the sums and counts (or weight sums) added over all processes, and their number."""
    packed = torch.stack([sums, counts])
    dist.all_reduce(packed, op=dist.ReduceOp.SUM)
    return packed[0], packed[1], dist.get_world_size()


def group_dro_step(q: torch.Tensor, group_losses: torch.Tensor, present: torch.Tensor, *,
                   step_size: float, adjustments: torch.Tensor | None = None,
                   normalize_loss: bool = False) -> torch.Tensor:
    """Return the group weights after one exponentiated-gradient step of online Group DRO.

    Sagawa et al., ICLR 2020, Algorithm 1: ``L~_g = L_g + C / sqrt(n_g)``, optionally
    ``L~ <- L~ / sum(L~)``, then ``q_g <- q_g * exp(eta * L~_g)`` and ``q <- q / sum(q)``. A group
    absent from the batch (``present[g]`` false) gets exponent 0: no evidence about its loss, so no
    update (the reference code instead still adds its ``C / sqrt(n_g)``). The step is taken in log
    space (``softmax(log q + eta * L~)``), the same update without overflow of ``exp``. If the
    normalizer ``sum(L~)`` is 0 (every loss exactly 0), all exponents are 0.

    Args:
        q: Current weights, shape ``(G,)``, non-negative, summing to 1.
        group_losses: Mean loss of each group ``L_g``, shape ``(G,)`` (any value where absent).
        present: Shape ``(G,)`` bool, whether the group has samples in the batch.
        step_size: The step size ``eta``.
        adjustments: Optional ``C / sqrt(n_g)``, shape ``(G,)``.
        normalize_loss: Divide the adjusted losses by their sum before the step.
    """
    exponent = group_losses.detach().to(q.dtype)
    if adjustments is not None:
        exponent = exponent + adjustments.to(q.dtype)
    exponent = torch.where(present, exponent, torch.zeros_like(exponent))
    if normalize_loss:
        total = exponent.sum()
        exponent = exponent / torch.where(total > 0, total, torch.ones_like(total))
    return torch.softmax(torch.log(q) + step_size * exponent, dim=0)
