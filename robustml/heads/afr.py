"""Automatic Feature Reweighting: retrain the last layer on held-out rows the ERM model gets wrong.

Qiu, Potapczynski, Izmailov, Wilson, "Simple and Fast Group Robustness by Automatic Feature
Reweighting" (ICML 2023), following the authors' code (AndPotap/afr: ``compute_afr_weights`` and
``train`` of ``notebooks/wb_celeba.ipynb``, which produced the paper's Waterbirds and CelebA
numbers; ``losses.get_exp_weights`` and ``utils/supervised_utils.take_step`` of the scripts):

- The ERM model is trained on part of the training split; its last layer ``(w0, b0)`` is kept
  and its features of the held-out rows are cached.
- Each held-out row gets the weight ``exp(-gamma * p_true)``, ``p_true`` the ERM model's softmax
  probability of the row's class; with ``balance_classes`` (the authors' setting) the weights of
  class ``c`` are multiplied by ``n_0 / n_c``; the weights are normalized to sum to one.
- The new head is ``x @ w0.T + b0 + x @ W.T + b``, ``(W, b)`` an ``nn.Linear`` with PyTorch's
  default initialization; its objective is ``sum_i weight_i * CE_i + reg * (|W|^2 + |b|^2)``
  (the L2 pull toward the ERM head), minimized full batch by SGD (``lr``, no momentum, no weight
  decay) for ``num_epochs`` steps with the gradient norm clipped to 1.
- After every step the validation worst-group accuracy is computed; the step with the highest
  (the first of ties) is kept. ``gamma`` and ``reg`` are searched on a grid (``gamma`` outer,
  ``reg`` inner) and the configuration with the highest kept score wins (the first of ties).
  Validation group labels are used for this selection only.

Defaults are the authors' Waterbirds sweep (``gamma`` in ``linspace(4, 20, 33)``, ``reg`` in
``{0, 0.1, 0.2, 0.3}``, ``lr=1e-2``, 500 epochs); their CelebA sweep is ``gamma`` in
``linspace(1, 3, 10)``, ``reg`` in ``logspace(-3, -1, 3)``, ``lr=2e-2``, 1000 epochs.

Where robustml differs: every configuration of the grid trains at once, batched
(:func:`train_grid`; each one's steps are the authors', so the results agree to float rounding,
at a fraction of the time of one configuration after another); the draws come from one
``torch.Generator`` seeded by ``seed`` (the authors seed PyTorch's global generator once before
the sweep: the same numbers, drawn in the same order, one ``nn.Linear`` initialization per
configuration); a sweep whose every score is 0
keeps the first configuration (the authors' sweep then chooses none); a two-class base head with
one logit (robustml's binary convention) is run as the authors' two-logit head ``[0; w0]``,
``[0; b0]`` (the same softmax) and folded back to one logit by :meth:`AFRResult.linear`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from robustml.heads.arrays import check_grid, check_split, require_per_part
from robustml.validation import check_int

GAMMA_GRID = tuple(float(g) for g in np.linspace(4, 20, 33))
REG_GRID = (0.0, 0.1, 0.2, 0.3)


def afr_weights(logits: torch.Tensor, target: torch.Tensor, gamma: float, *,
                balance_classes: bool = True) -> torch.Tensor:
    """Return AFR's per-row weights ``(N,)``, summing to one.

    Args:
        logits: The ERM model's logits ``(N, C)`` (softmax over ``C >= 2`` columns).
        target: Class ids ``(N,)``.
        gamma: The weights are ``exp(-gamma * p_true)``.
        balance_classes: Multiply class ``c``'s weights by ``n_0 / n_c``.
    """
    with torch.no_grad():
        p_true = logits.softmax(-1).gather(1, target[:, None]).squeeze(1)
        weights = torch.exp(-gamma * p_true)
        if balance_classes:
            counts = torch.bincount(target, minlength=logits.shape[1]).to(weights.dtype)
            weights = weights * (counts[0] / counts[target])
        return weights / weights.sum()


def two_logit_head(weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return a one-logit head ``(1, D), (1,)`` as the two-logit head ``[0; w], [0; b]``
    (the same softmax); a head with ``C >= 2`` rows is returned as it is."""
    if weight.shape[0] != 1:
        return weight, bias
    return torch.cat([torch.zeros_like(weight), weight]), torch.cat([torch.zeros_like(bias), bias])


@dataclass
class AFRResult:
    """A fitted AFR last layer.

    Attributes:
        weight: ``(C, D)`` the chosen head's weights (``w0 + W``), float32, two rows for two classes.
        bias: ``(C,)``.
        gamma: The chosen ``gamma``.
        reg: The chosen strength of the pull toward the ERM head.
        epoch: The kept step of the chosen configuration (1 = after the first SGD step).
        tuning: Validation worst-group accuracy of each ``(gamma, reg)``, in grid order.
        num_rows: Held-out rows the head was trained on.
        class_counts: Held-out rows of each class.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    gamma: float
    reg: float
    epoch: int
    tuning: dict[tuple[float, float], float]
    num_rows: int
    class_counts: list[int] = field(default_factory=list)

    def decision(self, features: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Return the ``(N, C)`` logits of ``features`` ``(N, D)``."""
        x = torch.from_numpy(np.array(features, dtype=np.float32))
        return x @ self.weight.T + self.bias

    def predict(self, features: np.ndarray | torch.Tensor) -> np.ndarray:
        """Return predicted class ids ``(N,)`` (the argmax of :meth:`decision`)."""
        return self.decision(features).argmax(1).numpy()

    def linear(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the head in robustml's convention: ``(1, D), (1,)`` (class 1 when positive) for
        two classes, ``(C, D), (C,)`` otherwise."""
        if self.weight.shape[0] == 2:
            return ((self.weight[1:] - self.weight[:1]).contiguous(),
                    (self.bias[1:] - self.bias[:1]).contiguous())
        return self.weight.clone(), self.bias.clone()


def _delta_init(out_dim: int, in_dim: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``nn.Linear(in_dim, out_dim)``'s default initialization from ``generator``."""
    weight = torch.empty(out_dim, in_dim)
    torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    bound = 1 / math.sqrt(in_dim) if in_dim > 0 else 0.0
    bias = torch.empty(out_dim).uniform_(-bound, bound, generator=generator)
    return weight, bias


def train_grid(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, base: torch.Tensor,
               val_x: torch.Tensor, val_base: torch.Tensor, val_y: torch.Tensor, val_groups: torch.Tensor,
               num_groups: int, W: torch.Tensor, b: torch.Tensor, regs: torch.Tensor, *, lr: float,
               num_epochs: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train ``K`` configurations at once, each as the authors train one; return each one's best
    validation worst-group accuracy ``(K,)``, its epoch ``(K,)`` and its ``(W, b)`` then.

    Args:
        x, y: Held-out features ``(N, D)`` and classes ``(N,)``; ``base`` the ERM logits ``(N, C)``.
        weights: Each configuration's row weights ``(K, N)``.
        val_x, val_base, val_y, val_groups: Validation features, ERM logits, classes, groups.
        num_groups: ``G``.
        W, b: Initial ``(K, C, D)`` and ``(K, C)``.
        regs: Each configuration's pull toward the ERM head ``(K,)``.
        lr, num_epochs: SGD's step size and number of full-batch steps.

    The configurations share nothing: the summed objective's gradient for ``(W_k, b_k)`` is
    configuration ``k``'s own, whose norm is clipped to 1 on its own (``clip_grad_norm_``'s
    ``max_norm / (norm + 1e-6)``, at most 1) before the SGD step.
    """
    K, C, D = W.shape
    W, b = W.clone().requires_grad_(True), b.clone().requires_grad_(True)
    counts = torch.bincount(val_groups, minlength=num_groups).double()
    present = counts > 0
    best = torch.full((K,), -math.inf, dtype=torch.float64)
    best_epoch = torch.zeros(K, dtype=torch.int64)
    kept_W, kept_b = W.detach().clone(), b.detach().clone()
    targets = y.repeat(K)
    for epoch in range(1, num_epochs + 1):
        logits = base + ((x @ W.reshape(K * C, D).T).reshape(len(x), K, C).transpose(0, 1) + b[:, None])
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, C), targets,
                                               reduction="none").reshape(K, -1)
        loss = (weights * ce).sum(1) + regs * (W.pow(2).sum((1, 2)) + b.pow(2).sum(1))
        grad_W, grad_b = torch.autograd.grad(loss.sum(), [W, b])
        with torch.no_grad():
            norm = torch.sqrt(grad_W.pow(2).sum((1, 2)) + grad_b.pow(2).sum(1))
            coef = torch.clamp(1.0 / (norm + 1e-6), max=1.0)
            W.add_(grad_W * coef[:, None, None], alpha=-lr)
            b.add_(grad_b * coef[:, None], alpha=-lr)
            val_logits = val_base + ((val_x @ W.reshape(K * C, D).T).reshape(len(val_x), K, C)
                                     .transpose(0, 1) + b[:, None])
            correct = (val_logits.argmax(2) == val_y).double()
            per_group = torch.zeros(K, num_groups, dtype=torch.float64).index_add_(1, val_groups, correct)
            score = (per_group[:, present] / counts[present]).min(1).values
            better = score > best
            best = torch.where(better, score, best)
            best_epoch[better] = epoch
            kept_W[better], kept_b[better] = W[better], b[better]
    return best, best_epoch, kept_W, kept_b


def afr(features: np.ndarray, target: np.ndarray, erm_weight: np.ndarray | torch.Tensor,
        erm_bias: np.ndarray | torch.Tensor, val_features: np.ndarray, val_target: np.ndarray,
        val_groups: np.ndarray, *, num_groups: int, gammas: Sequence[float] = GAMMA_GRID,
        regs: Sequence[float] = REG_GRID, lr: float = 1e-2, num_epochs: int = 500,
        balance_classes: bool = True, seed: int = 0, min_per_class: int = 1) -> AFRResult:
    """Fit AFR's last layer on held-out training rows (see the module docstring).

    Args:
        features: Held-out rows' features ``(N, D)`` (rows the ERM model was not trained on).
        target: Their class ids ``(N,)``; no group labels are used for training.
        erm_weight: The ERM model's last layer ``(C, D)``, or ``(1, D)`` for one binary logit.
        erm_bias: ``(C,)`` or ``(1,)``.
        val_features, val_target, val_groups: Validation rows; their group labels choose the
            step, ``gamma`` and ``reg`` (worst-group accuracy).
        num_groups: ``G``.
        gammas: The ``gamma`` grid (>= 0).
        regs: The grid of the L2 pull toward the ERM head (>= 0).
        lr: SGD's learning rate.
        num_epochs: Full-batch steps per configuration.
        balance_classes: Balance the total weight of the classes (the authors' setting).
        seed: Seed of the ``torch.Generator`` of the initializations.
        min_per_class: Held-out rows every class needs.

    Returns:
        An :class:`AFRResult`.
    """
    gammas, regs = check_grid("gammas", gammas), check_grid("regs", regs)
    lr = check_grid("lr", [lr], inclusive=False)[0]
    check_int("num_epochs", num_epochs, minimum=1)
    x_np, y_np, _ = check_split(features, target, None, "AFR's held-out")
    vx_np, vy_np, vg_np = check_split(val_features, val_target, val_groups, "validation")
    w0, b0 = (torch.as_tensor(np.asarray(t, dtype=np.float32)) for t in (erm_weight, erm_bias))
    if w0.ndim != 2 or w0.shape[1] != x_np.shape[1] or b0.shape != (w0.shape[0],):
        raise ValueError(f"erm_weight must have shape (C, {x_np.shape[1]}) and erm_bias (C,), got "
                         f"{tuple(w0.shape)} and {tuple(b0.shape)}")
    w0, b0 = two_logit_head(w0, b0)
    num_classes = w0.shape[0]
    require_per_part(y_np, num_classes, min_per_class, what="AFR's held-out rows per class",
                     setting="hold out more training rows (method.holdout_fraction) or lower "
                             "method.min_per_class")
    x, y = torch.from_numpy(x_np.astype(np.float32)), torch.from_numpy(y_np)
    val_x = torch.from_numpy(vx_np.astype(np.float32))
    val_y, val_g = torch.from_numpy(vy_np), torch.from_numpy(vg_np)
    base, val_base = x @ w0.T + b0, val_x @ w0.T + b0
    generator = torch.Generator().manual_seed(seed)
    grid = [(gamma, reg) for gamma in gammas for reg in regs]
    weights = torch.stack([afr_weights(base, y, gamma, balance_classes=balance_classes) for gamma, _ in grid])
    inits = [_delta_init(num_classes, x.shape[1], generator) for _ in grid]  # grid order: gamma outer
    scores, epochs, W, b = train_grid(x, y, weights, base, val_x, val_base, val_y, val_g, num_groups,
                                      torch.stack([w for w, _ in inits]), torch.stack([c for _, c in inits]),
                                      torch.tensor([reg for _, reg in grid]), lr=lr, num_epochs=num_epochs)
    k = int(np.argmax(scores.numpy()))  # the first of ties, in grid order
    tuning = {setting: float(score) for setting, score in zip(grid, scores.tolist())}
    return AFRResult(w0 + W[k], b0 + b[k], grid[k][0], grid[k][1], int(epochs[k]), tuning, int(x.shape[0]),
                     np.bincount(y_np, minlength=num_classes).tolist())
