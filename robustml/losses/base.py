"""The one contract every robustml loss follows."""

from __future__ import annotations

import torch
from torch import nn

from robustml.validation import check_int


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

    Attributes:
        loss_scale: Factor the loss applied to its own output at the last step (1.0 unless a penalty
            schedule rescales the objective, as IRM's does). A regularizer a trainer adds outside the
            loss (the paper's L2 term) is multiplied by it to keep the paper's proportions.
    """

    loss_scale: float = 1.0

    def __init__(self, num_groups: int) -> None:
        super().__init__()
        self.num_groups = check_int("num_groups", num_groups, minimum=1)

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
