"""Invariant Risk Minimization (IRMv1): the penalty module and the full objective."""

from __future__ import annotations

import torch

from robustml.losses.base import GroupLoss
from robustml.losses.compose import EnvironmentPenalizedLoss
from robustml.losses.erm import ERMLoss
from robustml.losses.checks import check_finite, check_inputs, check_weight
from robustml.losses.functional import mean_irm_penalty
from robustml.validation import check_int


class IRMPenalty(GroupLoss):
    """IRMv1 penalty averaged over the environments present in the batch.

    Arjovsky, Bottou, Gulrajani, Lopez-Paz, "Invariant Risk Minimization", 2019, IRMv1:
    ``mean_e ||d/dw R_e(w * f(x))|_{w=1}||^2`` (see
    :func:`~robustml.losses.functional.mean_irm_penalty`). ``groups`` are environment ids; a
    batch with fewer than 2 environments raises ``ValueError``.

    The unbiased estimator multiplies the gradients of two disjoint random halves of each
    environment's batch, drawn anew at every step: a full-batch loop sees the same rows in the
    same order at every step, so fixed (interleaved) halves would bias every step the same way.
    The halves of step ``t`` come from a generator seeded with ``(seed, t)``, where ``t`` (the
    buffer ``draws``) advances once per updating call (every training-mode call by default,
    ``update=`` explicitly), so calls that do not update (evaluation, logging, all but one
    micro-batch of a step) reuse the step's halves, and a resumed run draws the same halves.

    Under DDP each process computes the penalty of its local batch (as DomainBed does per
    device); the averaged gradient is that of the mean local penalty, not of the penalty of the
    global batch.

    Per-example weights: ``weight`` is validated and ignored; the penalty is the unweighted
    IRMv1 penalty, so an example of weight 0 still enters it (weighting the two-halves estimator
    would leave halves without weight).

    Args:
        num_groups: Number of environments; ids lie in ``[0, num_groups)``.
        unbiased: Multiply the gradients of two disjoint random halves of each environment's
            batch instead of squaring one.
        closed_form: Use the closed-form gradient for BCE/CE (no second backward pass);
            otherwise differentiate through a dummy multiplier with ``create_graph=True``.
        seed: Seed of the random halves (unbiased only).

    Attributes:
        draws: Number of updating calls so far, int64 scalar buffer (the step of the halves).
    """

    def __init__(self, num_groups: int, *, unbiased: bool = False,
                 closed_form: bool = True, seed: int = 0) -> None:
        super().__init__(num_groups)
        self.unbiased = bool(unbiased)
        self.closed_form = bool(closed_form)
        self.seed = check_int("seed", seed)
        self.register_buffer("draws", torch.zeros((), dtype=torch.int64))

    def forward(self, logits: torch.Tensor, target: torch.Tensor, groups: torch.Tensor, *,
                weight: torch.Tensor | None = None, update: bool | None = None) -> torch.Tensor:
        """Return the scalar penalty for logits ``(N, C)``, target ``(N,)``, groups ``(N,)``.

        ``weight`` (optional, shape ``(N,)``) is validated and ignored. ``update`` advances the
        halves to the next step (default: in training mode).
        """
        check_inputs(logits, target, groups, num_groups=self.num_groups)
        check_weight(weight, logits.shape[0])
        generator = None
        if self.unbiased:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + int(self.draws))
        penalty = mean_irm_penalty(logits, target, groups, num_groups=self.num_groups,
                                   unbiased=self.unbiased, closed_form=self.closed_form,
                                   generator=generator)
        if self.training if update is None else update:
            self.draws += 1
        return check_finite(penalty, "IRM penalty")


class IRMLoss(EnvironmentPenalizedLoss):
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
        unbiased: Use the two-halves penalty estimator (random halves at every step).
        closed_form: Use the closed-form penalty (no second backward pass).
        seed: Seed of the random halves (unbiased only).
        warmup_weight: Penalty weight before ``anneal_steps``.
        rescale: Divide the loss by the weight when it exceeds 1.

    The log keys are ``loss_base``, ``penalty_irm`` and ``weight_irm``.
    """

    def __init__(self, num_groups: int, *, penalty_weight: float = 91257.18613115903,
                 anneal_steps: int = 0,
                 unbiased: bool = False, closed_form: bool = True, seed: int = 0,
                 warmup_weight: float = 1.0, rescale: bool = True) -> None:
        super().__init__(num_groups, ERMLoss(num_groups),
                         {"irm": IRMPenalty(num_groups, unbiased=unbiased,
                                            closed_form=closed_form, seed=seed)},
                         weights={"irm": penalty_weight}, anneal_steps=anneal_steps,
                         warmup_weight=warmup_weight, rescale=rescale)
