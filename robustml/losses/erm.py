"""Empirical risk minimization: the plain average loss."""

from __future__ import annotations

import torch

from robustml.losses.base import GroupLoss
from robustml.losses.functional import check_finite, check_inputs, classification_loss


class ERMLoss(GroupLoss):
    """Average cross-entropy (or BCE for one logit) over the batch; groups are validated only.

    Args:
        num_groups: Number of groups the ids passed to ``forward`` must lie below.
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        check_inputs(logits, target, groups, num_groups=self.num_groups)
        return check_finite(classification_loss(logits, target).mean())
