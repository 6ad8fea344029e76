"""Counterfactual logit pairing: penalize different logits on an example and its counterfactual."""

from __future__ import annotations

import torch

from robustml.losses.base import GroupLoss
from robustml.losses.checks import check_finite, check_inputs, check_weight


class CounterfactualConsistencyPenalty(GroupLoss):
    """Mean squared L2 distance between the logits of each example and of its counterfactual.

    Counterfactual logit pairing (Garg, Perot, Limtiaco, Taly, Chi, Beutel, AIES 2019,
    "Counterfactual Fairness in Text Classification through Robustness", section on CLP): the
    training loss gets a term that penalizes the distance between the logits of an example and of
    its counterfactual. With ``P = N / 2`` pairs ``(z_i, z_cf_i)`` this penalty is

        penalty = (1 / P) * sum_i ||z_i - z_cf_i||_2^2,

    the squared difference summed over the ``C`` logits and averaged over pairs. Garg et al.'s
    binary classifier penalizes the absolute difference of its one logit; the squared L2 distance
    (as in adversarial logit pairing, Kannan et al. 2018) extends it to ``C`` logits and is smooth
    at zero, with gradient ``2 (z_i - z_cf_i) / P`` with respect to ``z_i`` (and the negative of it
    with respect to ``z_cf_i``).

    The batch must be in the paired layout of
    :class:`robustml.augment.CounterfactualAugment` with ``mode="paired"``: the first half are the
    originals, the second half their counterfactuals in the same order, so ``target[:P]`` equals
    ``target[P:]`` (a counterfactual keeps the label). ``groups`` are validated only.

    Per-example weights: ``weight`` is validated and ignored; every pair counts equally.

    Args:
        num_groups: Number of groups the ids passed to ``forward`` must lie below.
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor, groups: torch.Tensor, *,
                weight: torch.Tensor | None = None) -> torch.Tensor:
        """Return the penalty, a scalar, for ``logits (N, C)``, ``target (N,)``, ``groups (N,)``.

        ``weight`` (optional, shape ``(N,)``) is validated and ignored.
        """
        check_inputs(logits, target, groups, num_groups=self.num_groups)
        check_weight(weight, logits.shape[0])
        n = logits.shape[0]
        if n == 0 or n % 2:
            raise ValueError(f"logits must hold a non-empty even number of rows in the paired layout "
                             f"(originals, then their counterfactuals in the same order, as "
                             f"CounterfactualAugment(mode='paired') returns), got N={n}")
        half = n // 2
        unpaired = target[:half] != target[half:]
        if bool(unpaired.any()):
            i = int(unpaired.nonzero()[0, 0])
            raise ValueError(f"target must be paired (target[i] == target[i + {half}]: a counterfactual "
                             f"keeps its label), got target[{i}]={int(target[i])} and "
                             f"target[{i + half}]={int(target[i + half])}; is the batch in the paired layout?")
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        diff = logits[:half] - logits[half:]
        return check_finite(diff.pow(2).sum(dim=1).mean(), "counterfactual consistency penalty")
