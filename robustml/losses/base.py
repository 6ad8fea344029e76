"""The one contract every robustml loss follows."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from robustml.validation import check_int


@dataclass(frozen=True)
class StepSignals:
    """What a training loop needs from its loss after an updating call (:meth:`GroupLoss.step_signals`).

    Attributes:
        loss_scale: The factor the loss applied to its own output, over the loss and every loss it
            wraps (1.0 unless a penalty schedule rescales the objective, as IRM's does). A
            regularizer the loop adds outside the loss (the paper's L2 term) is multiplied by it
            to keep the paper's proportions.
        annealed: True when a penalty schedule reached its anneal step in that call (a loop may
            then reset its optimizer's state, as the IRM paper's code does).
    """

    loss_scale: float = 1.0
    annealed: bool = False


class GroupLoss(nn.Module):
    """Base class: ``forward(logits, target, groups, *, weight=None) -> scalar``.

    ``logits`` have shape ``(N, C)``, ``target`` and ``groups`` shape ``(N,)`` (int64).
    ``groups`` holds the ids of the partition the loss sees (groups or environments, chosen in the
    config by ``loss.partition``), each in ``[0, num_groups)``. Losses that ignore the partition still
    validate it. State that must survive a checkpoint lives in registered buffers.

    ``weight`` is optional per-example weights, a floating-point tensor of shape ``(N,)``, finite,
    ``>= 0`` and not all zero (checked by :func:`~robustml.losses.checks.check_weight`), e.g.
    label-quality weights from cleaning or inverse group frequencies. Every loss accepts it and
    documents what it weights; risks become weighted means ``sum_i w_i l_i / sum_i w_i``, so
    equal weights change nothing, a weight of 0 removes an example from those risks and integer
    weights equal repeating examples. ``weight=None`` is the unweighted loss.

    A training loop learns what it needs from the loss through :meth:`step_signals`, nothing else.

    Attributes:
        loss_scale: Factor this loss applied to its own output at the last step (1.0 unless a
            penalty schedule rescales the objective, as IRM's does).
        anneal_reached_now: True after an updating call in which this loss's penalty schedule
            reached its anneal step.
    """

    loss_scale: float = 1.0
    anneal_reached_now: bool = False

    def __init__(self, num_groups: int) -> None:
        super().__init__()
        self.num_groups = check_int("num_groups", num_groups, minimum=1)

    def step_signals(self) -> StepSignals:
        """Return the :class:`StepSignals` of the last call, over this loss and the losses it wraps."""
        losses = [m for m in self.modules() if isinstance(m, GroupLoss)]
        scale = 1.0
        for loss in losses:
            scale *= loss.loss_scale
        return StepSignals(loss_scale=scale, annealed=any(loss.anneal_reached_now for loss in losses))

    def log_values(self) -> dict[str, float]:
        """Return scalars worth logging after the last training step (e.g. ``q_0``); none here."""
        return {}


def environments_argument(groups: torch.Tensor | None, envs: torch.Tensor | None) -> torch.Tensor:
    """Return the partition ids of a loss given as ``groups`` or by its alias ``envs``.

    IRM and V-REx compare environments; ``envs=`` lets a loop say so. Exactly one must be given.
    """
    if (groups is None) == (envs is None):
        raise TypeError("pass the environment ids once, as groups or as envs, got "
                        + ("both" if groups is not None else "neither"))
    return groups if envs is None else envs
