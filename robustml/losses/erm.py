"""Empirical risk minimization: the plain average loss."""

from __future__ import annotations

import torch

from robustml.losses.base import GroupLoss
from robustml.losses.checks import check_finite, check_inputs, check_weight
from robustml.losses.functional import classification_loss, weighted_mean


class ERMLoss(GroupLoss):
    """Average cross-entropy (or BCE for one logit) over the batch; groups are validated only.

    With per-example weights ``w`` the loss is the weighted mean ``sum_i w_i l_i / sum_i w_i``:
    an example of weight 0 has no influence, integer weights equal repeating examples, and
    equal weights give the plain mean.

    Args:
        num_groups: Number of groups the ids passed to ``forward`` must lie below.
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor, groups: torch.Tensor, *,
                weight: torch.Tensor | None = None) -> torch.Tensor:
        """Return the (weighted) mean loss, a scalar.

        Args:
            logits: Shape ``(N, C)``.
            target: Shape ``(N,)``, int64 class ids.
            groups: Shape ``(N,)``, int64 group ids in ``[0, num_groups)``.
            weight: Optional per-example weights, shape ``(N,)``, finite, ``>= 0``, not all zero.
        """
        check_inputs(logits, target, groups, num_groups=self.num_groups)
        check_weight(weight, logits.shape[0])
        return check_finite(weighted_mean(classification_loss(logits, target), weight))
