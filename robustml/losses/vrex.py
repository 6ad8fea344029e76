"""Variance Risk Extrapolation (V-REx): the penalty module and the full objective."""

from __future__ import annotations

import torch

from robustml.losses.base import GroupLoss
from robustml.losses.compose import EnvironmentPenalizedLoss
from robustml.losses.erm import ERMLoss
from robustml.losses.checks import check_finite
from robustml.losses.functional import vrex_penalty


class VRExPenalty(GroupLoss):
    """Population variance of the per-environment mean risks over the environments present.

    Krueger et al., "Out-of-Distribution Generalization via Risk Extrapolation", ICML 2021,
    V-REx: ``Var_e(R_e)`` (see :func:`~robustml.losses.functional.vrex_penalty`). ``groups`` are
    environment ids; a batch with fewer than 2 environments raises ``ValueError``. Stateless.
    Under DDP each process penalizes the variance of its local batch's risks.

    Per-example weights: with ``weight`` the risks are weighted means
    ``R_e = sum_{i in e} w_i l_i / sum_{i in e} w_i``, and an environment whose weights sum to 0
    counts as absent, so an example of weight 0 has no influence on the penalty.

    Args:
        num_groups: Number of environments; ids lie in ``[0, num_groups)``.
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor, groups: torch.Tensor, *,
                weight: torch.Tensor | None = None) -> torch.Tensor:
        """Return the scalar penalty for logits ``(N, C)``, target ``(N,)``, groups ``(N,)``.

        ``weight`` (optional, shape ``(N,)``) weights the environment risks.
        """
        return check_finite(vrex_penalty(logits, target, groups, num_groups=self.num_groups,
                                         weight=weight), "V-REx penalty")


class VRExLoss(EnvironmentPenalizedLoss):
    """V-REx objective: mean loss + scheduled ``penalty_weight`` * :class:`VRExPenalty`.

    **Environments go in ``groups``.** Like every robustml loss, ``forward(logits, target,
    groups)`` takes one partition id per example; for V-REx that partition is the environment
    (``batch["env"]``, ``loss.partition=env`` in the configs), and ``num_groups`` is the number of
    environments. ``envs=`` is accepted as a keyword alias of ``groups``.

    Krueger et al., ICML 2021: ``sum_e R_e + beta * Var_e(R_e)``, with the IRM-style schedule
    (``warmup_weight`` until ``anneal_steps``, then ``penalty_weight``) that DomainBed and the
    authors' Colored MNIST code use. The base is the mean loss over the batch (the mean of
    environment risks when environments are equally represented). Reference values:
    DomainBed ``vrex_lambda`` 10 with ``vrex_penalty_anneal_iters`` 500 and no rescaling; the
    authors' Colored MNIST code weight 1e4 on ``(R_1 - R_2) ** 2`` (4x this variance) with
    rescaling.

    Per-example weights: ``weight`` weights both the base (``sum_i w_i l_i / sum_i w_i``) and
    the environment risks of the penalty (see :class:`VRExPenalty`), so an example of weight 0
    has no influence on the objective.

    Args:
        num_groups: Number of environments.
        penalty_weight: The weight ``beta`` after the anneal step (default 1e4, the weight of the
            authors' Colored MNIST code; DomainBed uses 10).
        anneal_steps: Training steps run with ``warmup_weight`` first.
        warmup_weight: Penalty weight before ``anneal_steps``.
        rescale: Divide the loss by the weight when it exceeds 1.

    The log keys are ``loss_base``, ``penalty_vrex`` and ``weight_vrex``.
    """

    def __init__(self, num_groups: int, *, penalty_weight: float = 1e4,
                 anneal_steps: int = 0,
                 warmup_weight: float = 1.0, rescale: bool = True) -> None:
        super().__init__(num_groups, ERMLoss(num_groups), {"vrex": VRExPenalty(num_groups)},
                         weights={"vrex": penalty_weight}, anneal_steps=anneal_steps,
                         warmup_weight=warmup_weight, rescale=rescale)
