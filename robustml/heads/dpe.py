"""Diverse Prototypical Ensembles: IsoMax+ prototype heads on balanced subsets, made to differ.

To, Wilson et al., "Diverse Prototypical Ensembles Improve Robustness to Subpopulation Shift"
(ICML 2025), following the authors' package (minhto2802/DPE, ``src/dpe/core.py``: ``DPE``,
``_train_ensemble``, ``_train_prototypes``, ``_predict``; ``src/dpe/datasets.py``: ``subsample``):

- The base model's features of a held-out split (the authors': validation) are standardized per
  row. Each of ``num_members`` members is trained on a fresh balanced subset of it: every class
  (``balance="class"``, no group labels) or every group (``balance="group"``, the split's group
  labels) cut at random to the size of the smallest, without replacement.
- A member is an IsoMax+ head (:mod:`robustml.heads.prototypes`): one prototype per class,
  initialized ``N(0, 0.01)``, distance scale 1, trained by SGD (``lr``, momentum 0.9) in
  shuffled mini-batches of ``batch_size`` (the last incomplete batch dropped) for ``epochs``
  epochs on the IsoMax+ loss (``entropic`` scale) plus the squared-norm penalty (``wd_weight``)
  and, from the second member on, the similarity penalty to the earlier members (``cov_reg``,
  decayed by ``alpha``). After every epoch the member's validation worst-group accuracy is
  computed, and its prototypes of the best epoch (the last of ties) are kept.
- The ensemble averages the members' softmax probabilities; with ``M`` members each class has
  ``M`` prototypes.

Defaults are the authors' package (``Args``): 15 members, 20 epochs, ``lr=1e-3``, batch 256,
``cov_reg=5e4``, ``alpha=0.05``, entropic scale 30, ``wd_weight=10``; their scripts (the
paper's numbers) use ``cov_reg=5e5`` kept constant (``alpha=0``: ``main.py`` does not decay it)
and 15 members (``--stage 1 --num_stages 16``), CelebA ``lr=5e-4``.

Where robustml differs: draws come from one ``numpy.random.Generator`` (the subsets) and one
``torch.Generator`` (initializations, then each epoch's order), both seeded by ``seed``, instead
of the global generators; a subset lists its parts in id order (the authors' lists them by
decreasing size, interleaved, before the shuffle: another order of the same rows); a subset
smaller than one batch is refused (the authors' loader would run no step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from robustml.heads.arrays import check_grid, check_split, require_per_part
from robustml.heads.prototypes import (PrototypeEnsembleHead, cov_reg_schedule, ensemble_probabilities,
                                       isomax_loss, prototype_logits, prototype_penalty, standardize_rows)
from robustml.metrics import group_accuracy
from robustml.validation import check_int

BALANCE = ("class", "group")


@dataclass
class DPEResult:
    """A fitted DPE ensemble.

    Attributes:
        prototypes: ``(M, C, D)`` each member's kept prototypes.
        scales: ``(M,)`` their distance scales.
        standardize: Whether features are standardized per row (the authors' ``norm_emb``).
        balance: ``"class"`` or ``"group"``.
        member_scores: Validation worst-group accuracy of each member's kept epoch.
        member_epochs: Each member's kept epoch (1-based).
        member_class_share: Each member's largest share of validation rows given one class
            (1.0: the member predicts one class).
        subset_size: Rows of each member's balanced subset.
    """

    prototypes: torch.Tensor
    scales: torch.Tensor
    standardize: bool
    balance: str
    member_scores: list[float]
    member_epochs: list[int]
    member_class_share: list[float] = field(default_factory=list)
    subset_size: int = 0

    def probabilities(self, features: np.ndarray) -> torch.Tensor:
        """Return the ensemble's averaged probabilities ``(N, C)`` of ``features`` ``(N, D)``."""
        x = _prepared(features, self.standardize)
        with torch.no_grad():
            return ensemble_probabilities(x, self.prototypes, self.scales)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Return predicted class ids ``(N,)``."""
        return self.probabilities(features).argmax(1).numpy()

    def head(self) -> PrototypeEnsembleHead:
        """Return the ensemble as an ``nn.Module`` last layer (robustml's logit convention)."""
        return PrototypeEnsembleHead(self.prototypes, self.scales, self.standardize)


def _prepared(features: np.ndarray, standardize: bool) -> torch.Tensor:
    x = standardize_rows(features) if standardize else np.asarray(features, dtype=np.float64)
    return torch.from_numpy(x.astype(np.float32))


def balanced_parts(parts: np.ndarray, num_parts: int, rng: np.random.Generator) -> np.ndarray:
    """Return row indices of a random subset with ``min`` rows of every part (parts in id order,
    each part's rows shuffled by ``rng.permutation`` and cut to the smallest part's size)."""
    members = [np.flatnonzero(parts == p) for p in range(num_parts)]
    smallest = min(rows.size for rows in members)
    return np.concatenate([rng.permutation(rows)[:smallest] for rows in members])


def train_member(x: torch.Tensor, y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor,
                 val_groups: torch.Tensor, num_groups: int, init: torch.Tensor, previous: torch.Tensor | None,
                 generator: torch.Generator, *, epochs: int, lr: float, batch_size: int, entropic: float,
                 wd_weight: float, cov_reg: float) -> tuple[torch.Tensor, torch.Tensor, float, int]:
    """Train one member from prototypes ``init`` ``(C, D)``; return its kept ``(prototypes,
    scale, validation worst-group accuracy, epoch)``."""
    prototypes = init.clone().requires_grad_(True)
    scale = torch.ones(1, requires_grad=True)
    optimizer = torch.optim.SGD([prototypes, scale], lr=lr, momentum=0.9, weight_decay=0.0)
    best, kept = -1.0, None
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y) - batch_size + 1, batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            loss = isomax_loss(prototype_logits(x[batch], prototypes, scale), y[batch], entropic)
            loss = loss + prototype_penalty(prototypes, previous, wd_weight=wd_weight, cov_reg=cov_reg)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            preds = prototype_logits(val_x, prototypes, scale).argmax(1)
            score = group_accuracy(preds, val_y, val_groups, num_groups=num_groups,
                                   validate_args=False)["acc_worst_group"]
        if score >= best:
            best, kept = score, (prototypes.detach().clone(), scale.detach().clone(), epoch)
    return kept[0], kept[1], float(best), kept[2]


def dpe(features: np.ndarray, target: np.ndarray, groups: np.ndarray | None, val_features: np.ndarray,
        val_target: np.ndarray, val_groups: np.ndarray, *, num_classes: int, num_groups: int,
        balance: str = "class", num_members: int = 15, epochs: int = 20, lr: float = 1e-3,
        batch_size: int = 256, cov_reg: float = 5e4, alpha: float = 0.05, entropic: float = 30.0,
        wd_weight: float = 10.0, standardize: bool = True, seed: int = 0,
        group_names: Sequence[str] | None = None) -> DPEResult:
    """Fit a DPE ensemble on held-out features (see the module docstring).

    Args:
        features: The held-out split's features ``(N, D)`` (the authors: validation).
        target: Its class ids ``(N,)``.
        groups: Its group ids ``(N,)``; needed with ``balance="group"`` only.
        val_features, val_target, val_groups: The rows whose worst-group accuracy picks each
            member's epoch (the authors: the same validation split).
        num_classes: ``C``.
        num_groups: ``G``.
        balance: ``"class"`` (no group labels) or ``"group"`` balanced subsets.
        num_members: Ensemble members ``M``.
        epochs, lr, batch_size: Each member's SGD (momentum 0.9).
        cov_reg: Weight of the similarity penalty; ``alpha`` its decay over members.
        entropic: IsoMax+'s entropic scale.
        wd_weight: Weight of the prototypes' squared norms.
        standardize: Standardize feature rows (the authors' ``norm_emb``).
        seed: Seed of the subsets' ``numpy.random.Generator`` and of the ``torch.Generator``.
        group_names: Optional group names, for error messages.

    Returns:
        A :class:`DPEResult`.
    """
    if balance not in BALANCE:
        raise ValueError(f"balance must be one of {list(BALANCE)}, got {balance!r}")
    for name, value in (("num_members", num_members), ("epochs", epochs), ("batch_size", batch_size),
                        ("num_classes", num_classes)):
        check_int(name, value, minimum=1)
    for name, value, low in (("lr", lr, False), ("entropic", entropic, False), ("cov_reg", cov_reg, True),
                             ("alpha", alpha, True), ("wd_weight", wd_weight, True)):
        check_grid(name, [value], inclusive=low)
    x_np, y_np, g_np = check_split(features, target, groups, "DPE's held-out")
    _, vy_np, vg_np = check_split(val_features, val_target, val_groups, "validation")
    if balance == "group":
        if g_np is None:
            raise ValueError("balance='group' needs the held-out rows' group labels (groups=None given); "
                             "pass them or use balance='class'")
        parts, num_parts = g_np, num_groups
        require_per_part(parts, num_parts, 1, what="DPE's held-out rows per group", names=group_names,
                         setting="group-balanced subsets take the same number of rows from every "
                                 "group: use a held-out split with every group or method.balance=class")
    else:
        parts, num_parts = y_np, num_classes
        require_per_part(parts, num_parts, 1, what="DPE's held-out rows per class",
                         setting="class-balanced subsets take the same number of rows from every class")
    size = num_parts * int(np.bincount(parts, minlength=num_parts)[:num_parts].min())
    if size < batch_size:
        raise ValueError(f"DPE's {balance}-balanced subset has {size} rows, fewer than batch_size="
                         f"{batch_size}: the authors drop the last incomplete batch, so no step would "
                         f"run; lower method.batch_size to at most {size}")
    x, y = _prepared(x_np, standardize), torch.from_numpy(y_np)
    val_x = _prepared(val_features, standardize)
    val_y, val_g = torch.from_numpy(vy_np), torch.from_numpy(vg_np)
    rng, generator = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    kept_p, kept_s, scores, epochs_kept, shares = [], [], [], [], []
    for member in range(1, num_members + 1):
        idx = torch.from_numpy(balanced_parts(parts, num_parts, rng))
        init = torch.empty(num_classes, x.shape[1]).normal_(0.0, 1e-2, generator=generator)
        previous = torch.stack(kept_p, dim=1) if kept_p else None
        p, s, score, epoch = train_member(x[idx], y[idx], val_x, val_y, val_g, num_groups, init, previous,
                                          generator, epochs=epochs, lr=lr, batch_size=batch_size,
                                          entropic=entropic, wd_weight=wd_weight,
                                          cov_reg=cov_reg_schedule(cov_reg, member, alpha))
        kept_p.append(p)
        kept_s.append(s.reshape(()))
        scores.append(score)
        epochs_kept.append(epoch)
        with torch.no_grad():
            counts = np.bincount(prototype_logits(val_x, p, s).argmax(1).numpy(), minlength=num_classes)
        shares.append(float(counts.max() / counts.sum()))
    return DPEResult(torch.stack(kept_p), torch.stack(kept_s), standardize, balance, scores, epochs_kept,
                     shares, size)
