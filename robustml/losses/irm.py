"""Invariant Risk Minimization (IRMv1): the penalty module and the full objective."""

from __future__ import annotations

import torch

from robustml.losses.base import GroupLoss, environments_argument
from robustml.losses.compose import PenalizedLoss
from robustml.losses.erm import ERMLoss
from robustml.losses.checks import check_finite, check_inputs, check_weight
from robustml.losses.functional import mean_irm_penalty


class IRMPenalty(GroupLoss):
    """IRMv1 penalty averaged over the environments present in the batch.

    Arjovsky, Bottou, Gulrajani, Lopez-Paz, "Invariant Risk Minimization", 2019, IRMv1:
    ``mean_e ||d/dw R_e(w * f(x))|_{w=1}||^2`` (see
    :func:`~robustml.losses.functional.mean_irm_penalty`). ``groups`` are environment ids; a
    batch with fewer than 2 environments raises ``ValueError``. Stateless.

    Under DDP each process computes the penalty of its local batch (as DomainBed does per
    device); the averaged gradient is that of the mean local penalty, not of the penalty of the
    global batch.

    Per-example weights: ``weight`` is validated and ignored; the penalty is the unweighted
    IRMv1 penalty, so an example of weight 0 still enters it (weighting the two-halves estimator
    would leave halves without weight).

    Args:
        num_groups: Number of environments; ids lie in ``[0, num_groups)``.
        unbiased: Multiply the gradients of two disjoint halves of each environment's batch
            (interleaved positions) instead of squaring one.
        closed_form: Use the closed-form gradient for BCE/CE (no second backward pass);
            otherwise differentiate through a dummy multiplier with ``create_graph=True``.
    """

    def __init__(self, num_groups: int, *, unbiased: bool = False,
                 closed_form: bool = True) -> None:
        super().__init__(num_groups)
        self.unbiased = bool(unbiased)
        self.closed_form = bool(closed_form)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, groups: torch.Tensor, *,
                weight: torch.Tensor | None = None) -> torch.Tensor:
        """Return the scalar penalty for logits ``(N, C)``, target ``(N,)``, groups ``(N,)``.

        ``weight`` (optional, shape ``(N,)``) is validated and ignored.
        """
        check_inputs(logits, target, groups, num_groups=self.num_groups)
        check_weight(weight, logits.shape[0])
        penalty = mean_irm_penalty(logits, target, groups, num_groups=self.num_groups,
                                   unbiased=self.unbiased, closed_form=self.closed_form)
        return check_finite(penalty, "IRM penalty")


class IRMLoss(PenalizedLoss):
    """IRMv1 objective: mean loss + scheduled ``penalty_weight`` * :class:`IRMPenalty`.

    **Environments go in ``groups``.** Like every robustml loss, ``forward(logits, target,
    groups)`` takes one partition id per example; for IRM that partition is the environment
    (``batch["env"]``, ``loss.partition=env`` in the configs), and ``num_groups`` is the number of
    environments. ``envs=`` is accepted as a keyword alias of ``groups``.

    Arjovsky et al. 2019, reference Colored MNIST code: penalty weight ``warmup_weight`` (1.0)
    before step ``anneal_steps``, ``penalty_weight`` from then on, the whole loss divided by
    the weight when it exceeds 1 (``rescale``; ``loss_scale`` tells a trainer to scale its L2
    term the same way). The base is the mean loss over the batch, which equals the paper's mean
    of environment risks when environments are equally represented in the batch (its full
    batches of 25,000 per environment). Paper values for Colored MNIST: ``penalty_weight``
    91257.18613115903, ``anneal_steps`` 190 (tuned with the test environment).

    Per-example weights: ``weight`` makes the base the weighted mean ``sum_i w_i l_i / sum_i
    w_i``; the penalty stays unweighted (see :class:`IRMPenalty`).

    Args:
        num_groups: Number of environments.
        penalty_weight: The weight ``lambda`` after the anneal step (default: the paper's Colored
            MNIST value, 91257.18613115903).
        anneal_steps: Training steps run with ``warmup_weight`` first.
        unbiased: Use the two-halves penalty estimator.
        closed_form: Use the closed-form penalty (no second backward pass).
        warmup_weight: Penalty weight before ``anneal_steps``.
        rescale: Divide the loss by the weight when it exceeds 1.

    The log keys are ``loss_base``, ``penalty_irm`` and ``weight_irm``.
    """

    def __init__(self, num_groups: int, *, penalty_weight: float = 91257.18613115903,
                 anneal_steps: int = 0,
                 unbiased: bool = False, closed_form: bool = True, warmup_weight: float = 1.0,
                 rescale: bool = True) -> None:
        super().__init__(num_groups, ERMLoss(num_groups),
                         {"irm": IRMPenalty(num_groups, unbiased=unbiased,
                                            closed_form=closed_form)},
                         weights={"irm": penalty_weight}, anneal_steps=anneal_steps,
                         warmup_weight=warmup_weight, rescale=rescale)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, groups: torch.Tensor | None = None,
                *, weight: torch.Tensor | None = None,
                envs: torch.Tensor | None = None) -> torch.Tensor:
        """Return the (rescaled) penalized loss; environment ids as ``groups`` or ``envs``."""
        return super().forward(logits, target, environments_argument(groups, envs), weight=weight)
