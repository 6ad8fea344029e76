"""SELF-style choice of the rows a last layer is retrained on, without group labels.

LaBonte, Muthukumar, Kumar, "Towards Last-layer Retraining for Group Robustness with Fewer
Annotations" (NeurIPS 2023), following the authors' ``Disagreement.disagreement`` (tmlabonte/
last-layer-retraining, ``milkshake/datamodules/disagreement.py``): of the held-out rows, keep the
``k`` with the largest

- ``"misclassified"``: cross-entropy of the model's logits (the rows it gets most wrong);
- ``"disagreement"``: ``mean_c p_early,c (log p_early,c - log p_c)`` (their ``F.kl_div`` averaged
  over classes) between an early-stopped model's and the model's probabilities.

The head is then retrained on class-balanced subsets of those rows (DPE's ``balance="class"``).
Where robustml differs: ties in the scores go to the lower row index (``torch.topk``'s order on
ties is unspecified), and the early-stopped model is whichever the caller gives.
"""

from __future__ import annotations

import numpy as np
import torch

from robustml.validation import check_int

RULES = ("misclassified", "disagreement")


def _probabilities(logits: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Return softmax probabilities ``(N, C)``; one binary logit ``z`` is the pair ``[0, z]``."""
    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    if z.ndim != 2:
        raise ValueError(f"logits must have shape (N, C) or (N, 1), got {tuple(z.shape)}")
    if z.shape[1] == 1:
        z = torch.cat([torch.zeros_like(z), z], dim=1)
    return torch.softmax(z, dim=1)


def selection_scores(target: np.ndarray, logits: np.ndarray | torch.Tensor, *, rule: str = "misclassified",
                     early_logits: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """Return each row's SELF score ``(N,)`` (higher: more likely retrained on)."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {list(RULES)}, got {rule!r}")
    p = _probabilities(logits)
    target = torch.as_tensor(np.asarray(target, dtype=np.int64))
    if target.shape != (p.shape[0],):
        raise ValueError(f"target must have shape ({p.shape[0]},), got {tuple(target.shape)}")
    if rule == "misclassified":
        return (-torch.log(p[torch.arange(len(target)), target])).numpy()
    if early_logits is None:
        raise ValueError("rule='disagreement' needs early_logits, the early-stopped model's logits")
    early = _probabilities(early_logits)
    if early.shape != p.shape:
        raise ValueError(f"early_logits must have the shape of logits {tuple(p.shape)}, got "
                         f"{tuple(early.shape)}")
    return (early * (torch.log(early) - torch.log(p))).mean(1).numpy()


def self_rows(target: np.ndarray, logits: np.ndarray | torch.Tensor, num_rows: int, *,
              rule: str = "misclassified",
              early_logits: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """Return the indices ``(num_rows,)`` of the rows with the largest :func:`selection_scores`,
    highest first (ties: lower index first)."""
    scores = selection_scores(target, logits, rule=rule, early_logits=early_logits)
    check_int("num_rows", num_rows, minimum=1)
    if num_rows > scores.size:
        raise ValueError(f"num_rows={num_rows} is more than the {scores.size} held-out rows")
    return np.argsort(-scores, kind="stable")[:num_rows]
