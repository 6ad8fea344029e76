"""IsoMax+ prototype heads: the distance-based classifier of each DPE member, its loss and penalties.

Macêdo et al.'s IsoMax+ (the ``IsoMaxPlusLossFirstPart`` / ``SecondPart`` of minhto2802/DPE,
``src/dpe/isomaxplus.py``) and DPE's regularizers (``_train_prototypes`` of ``src/dpe/core.py``),
written as functions of tensors:

- features are standardized per row (the authors' ``norm_emb``: minus the row's mean, over its
  standard deviation), then L2-normalized, as are the prototypes ``P`` ``(C, D)``;
- logits are ``-|s| * ||x/|x| - P_c/|P_c|||``, ``s`` a learned distance scale;
- the loss is ``-log softmax(entropic * logits)[y]``, averaged;
- a member's penalty is ``wd_weight * mean_c |P_c|^2`` plus ``cov_reg * |mean_c sum_m
  P_c . Q_mc / ((D - 1) (M + 1))|`` over the ``M`` earlier members' prototypes ``Q`` (their
  inter-prototype similarity, which makes the members differ);
- the ensemble predicts the argmax of the members' ``softmax(logits)`` averaged.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def standardize_rows(features: np.ndarray) -> np.ndarray:
    """Return ``features`` ``(N, D)`` minus each row's mean, over each row's standard deviation."""
    features = np.asarray(features, dtype=np.float64)
    return (features - features.mean(axis=1, keepdims=True)) / features.std(axis=1, keepdims=True)


def prototype_logits(x: torch.Tensor, prototypes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Return IsoMax+ logits ``(N, C)``: minus ``|scale|`` times the distances between the
    L2-normalized rows of ``x`` ``(N, D)`` and of ``prototypes`` ``(C, D)``."""
    distances = torch.cdist(nn.functional.normalize(x), nn.functional.normalize(prototypes), p=2.0,
                            compute_mode="donot_use_mm_for_euclid_dist")
    return -torch.abs(scale) * distances


def isomax_loss(logits: torch.Tensor, target: torch.Tensor, entropic: float) -> torch.Tensor:
    """Return IsoMax+'s loss, the mean of ``-log softmax(entropic * logits)[target]`` (the
    probabilities and their logarithm taken one after the other, as the authors do)."""
    probabilities = torch.softmax(entropic * logits, dim=1)
    return -torch.log(probabilities[torch.arange(len(target)), target]).mean()


def prototype_penalty(prototypes: torch.Tensor, previous: torch.Tensor | None, *, wd_weight: float,
                      cov_reg: float) -> torch.Tensor:
    """Return the member's penalty: the prototypes' squared norms and their similarity to the
    earlier members' prototypes ``previous`` ``(C, M, D)`` (``None`` for the first member)."""
    # The authors' arithmetic, in their order: the similarity's mean is near 0, so float32
    # rounding in another order flips the sign under abs() and with it the direction of a
    # gradient scaled by cov_reg (1e4-5e5): the members would part from the authors' after a step.
    wd = torch.einsum("ijk,ilk->ijl", prototypes[:, None], prototypes[:, None]) * wd_weight
    penalty = wd.squeeze().mean()
    if previous is None or previous.shape[1] == 0 or cov_reg <= 0:
        return penalty
    stacked = torch.cat([prototypes[:, None], previous], dim=1)
    members, dim = stacked.shape[1:]
    similarity = torch.einsum("ijk,ilk->ijl", stacked, stacked) / (dim - 1)
    return penalty + torch.abs(similarity[:, 0, 1:].sum(1).div(members).mean()) * cov_reg


def cov_reg_schedule(cov_reg: float, member: int, alpha: float) -> float:
    """Return the similarity weight of member ``member`` (1-based): ``cov_reg`` for members 1 and
    2, then ``cov_reg / (1 + alpha * (member - 2))`` (the authors' ``cov_reg_scheduler_inv``)."""
    return cov_reg if member <= 2 else cov_reg / (1 + alpha * (member - 2))


def ensemble_probabilities(x: torch.Tensor, prototypes: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Return the members' ``softmax(logits)`` averaged, ``(N, C)``, for prototypes ``(M, C, D)``
    and scales ``(M,)``."""
    return torch.stack([torch.softmax(prototype_logits(x, p, s), dim=1)
                        for p, s in zip(prototypes, scales)]).mean(0)


class PrototypeEnsembleHead(nn.Module):
    """A DPE ensemble as a last layer: features in, logits in robustml's convention out.

    Two classes give one logit ``log p_1 - log p_0`` (class 1 when positive), ``C >= 3`` classes
    the log of the averaged probabilities. Features are standardized per row first when
    ``standardize`` (the authors' default).

    Args:
        prototypes: ``(M, C, D)``.
        scales: ``(M,)`` distance scales.
        standardize: Standardize each feature row before the distances.
    """

    def __init__(self, prototypes: torch.Tensor, scales: torch.Tensor, standardize: bool = True) -> None:
        super().__init__()
        self.register_buffer("prototypes", prototypes.float())
        self.register_buffer("scales", scales.float().reshape(-1))
        self.standardize = bool(standardize)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features.float()
        if self.standardize:
            x = (x - x.mean(1, keepdim=True)) / x.std(1, unbiased=False, keepdim=True)
        log_p = ensemble_probabilities(x, self.prototypes, self.scales).log()
        return log_p[:, 1:] - log_p[:, :1] if log_p.shape[1] == 2 else log_p
