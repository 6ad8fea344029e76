"""Out-of-fold linear heads on features: multinomial logistic regression fitted per fold.

Each of ``K`` heads is fitted on ``K - 1`` folds of ``(features, labels)`` and predicts the held-out
fold. The probabilities are out-of-sample only when the features are too: features from a
backbone trained on other data (a pretrained model), or the cross-fitted features of
:func:`robustml.cleaning.cross_fit_probs`. Features from a network trained on these very labels
are not: a network that memorized a wrong label carries it into its features and hides the error.

Heads are fit with full-batch L-BFGS (strong-Wolfe line search) in torch. Measured for one fold
(48,000 training rows of synthetic 10-class data, float32) on a shared 2-CPU machine under load,
torch with 1-2 threads vs scikit-learn ``StandardScaler`` + ``LogisticRegression(lbfgs)``:
D=64: 0.6-2.1 s vs 5.1 s; D=256: 4.8-7.8 s vs 11.6 s; D=784: 13.5-22.7 s vs 29.5 s, with the same
held-out accuracy and probabilities within 0.006 (scikit-learn stops earlier, at ``tol=1e-4``).
Torch also runs on the features' device, so features on a GPU are fit there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from robustml.cleaning.issues import validate_labels
from robustml.cleaning.oof import FitPredict, out_of_fold_probs
from robustml.validation import check_int

_TOLERANCE_GRAD = 1e-6
_TOLERANCE_CHANGE = 1e-9


@dataclass(frozen=True)
class LinearHeads:
    """K-fold L2 softmax-regression heads on features (the inputs themselves, or cross-fitted ones).

    Pass it as ``model=`` to :func:`robustml.cleaning.detect_label_issues` when the inputs are
    features from a backbone trained on other data. The defaults are those of
    ``configs/cleaning/confident_learning.yaml`` (``cleaning.head``).

    Args:
        C: Inverse L2 strength, as in scikit-learn's ``LogisticRegression``.
        max_iter: L-BFGS iterations per head.
    """

    C: float = 1.0
    max_iter: int = 30

    def __post_init__(self) -> None:
        if isinstance(self.C, bool) or not isinstance(self.C, (int, float)) or not self.C > 0:
            raise ValueError(f"C (inverse L2 strength) must be > 0, got {self.C}")
        object.__setattr__(self, "max_iter", check_int("max_iter", self.max_iter, minimum=1))


def fit_softmax_regression(
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int,
    C: float = LinearHeads.C,
    max_iter: int = LinearHeads.max_iter,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit an L2-regularized multinomial logistic regression with full-batch L-BFGS.

    Minimizes ``mean_i CE(x_i W + b, y_i) + ||W||^2 / (2 * C * n)``, the objective of scikit-learn's
    ``LogisticRegression(C=C)`` divided by ``C * n`` (same minimizer; the bias is not penalized).

    Args:
        features: Shape ``(n, D)`` floating tensor.
        labels: Shape ``(n,)`` int64 tensor in ``[0, num_classes)``, on the same device.
        num_classes: Number of classes ``C``.
        C: Inverse L2 strength (larger = weaker regularization), > 0.
        max_iter: Maximum L-BFGS iterations.

    Returns:
        ``(weight, bias)`` of shapes ``(D, num_classes)`` and ``(num_classes,)``.
    """
    n, dim = features.shape
    weight = features.new_zeros(dim, num_classes, requires_grad=True)
    bias = features.new_zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_iter, history_size=10,
        tolerance_grad=_TOLERANCE_GRAD, tolerance_change=_TOLERANCE_CHANGE,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(features @ weight + bias, labels)
        loss = loss + weight.square().sum() / (2.0 * C * n)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach()


def linear_head_fit_predict(
    features,
    labels,
    *,
    num_classes: int | None = None,
    C: float = LinearHeads.C,
    max_iter: int = LinearHeads.max_iter,
    standardize: bool = True,
) -> FitPredict:
    """Make a ``fit_predict(train_idx, eval_idx)`` that fits a linear head on frozen features.

    Use it with :func:`~robustml.cleaning.oof.out_of_fold_probs`.

    Args:
        features: Shape ``(N, D)``; a numpy array (computed in float32 on CPU) or a floating
            tensor (computed in its dtype, on its device).
        labels: Shape ``(N,)`` integer labels.
        num_classes: Number of classes; ``None`` means ``labels.max() + 1``.
        C: Inverse L2 strength, as in scikit-learn's ``LogisticRegression``.
        max_iter: Maximum L-BFGS iterations per head.
        standardize: Scale features to zero mean and unit (population) variance using the
            training fold's statistics, like scikit-learn's ``StandardScaler`` (constant features
            are left unscaled).

    Returns:
        A callable returning ``(len(eval_idx), num_classes)`` float64 numpy probabilities.
    """
    x = _as_feature_tensor(features)
    y_np = validate_labels(labels)
    if y_np.shape[0] != x.shape[0]:
        raise ValueError(
            f"labels must have one entry per feature row: expected {x.shape[0]}, got "
            f"{y_np.shape[0]}"
        )
    num_classes = int(y_np.max()) + 1 if num_classes is None else int(num_classes)
    validate_labels(y_np, num_classes=num_classes)
    LinearHeads(C=C, max_iter=max_iter)  # checks both
    y = torch.as_tensor(y_np, device=x.device)

    def fit_predict(train_idx: np.ndarray, eval_idx: np.ndarray) -> np.ndarray:
        train = torch.as_tensor(train_idx, device=x.device)
        held = torch.as_tensor(eval_idx, device=x.device)
        x_train, x_eval = x[train], x[held]
        if standardize:
            mean, std = x_train.mean(0), x_train.std(0, correction=0)
            std = torch.where(std > 0, std, torch.ones_like(std))
            x_train, x_eval = (x_train - mean) / std, (x_eval - mean) / std
        weight, bias = fit_softmax_regression(
            x_train, y[train], num_classes=num_classes, C=C, max_iter=max_iter
        )
        probs = torch.softmax((x_eval @ weight + bias).double(), dim=1)
        return probs.cpu().numpy()

    return fit_predict


def linear_head_oof_probs(
    features,
    labels,
    *,
    num_folds: int = 5,
    num_classes: int | None = None,
    seed: int = 0,
    C: float = LinearHeads.C,
    max_iter: int = LinearHeads.max_iter,
    standardize: bool = True,
    progress: bool = True,
) -> np.ndarray:
    """Compute out-of-fold probabilities from K linear heads on frozen features.

    Each of the ``num_folds`` stratified folds is predicted by a multinomial logistic regression
    fit on the other folds (out-of-sample when the features are, see the module docstring).

    Args:
        features: Shape ``(N, D)`` features (numpy array or tensor).
        labels: Shape ``(N,)`` integer labels.
        num_folds: Number of folds ``K >= 2``.
        num_classes: Number of classes; ``None`` means ``labels.max() + 1``.
        seed: Seed of the fold shuffle.
        C: Inverse L2 strength, as in scikit-learn's ``LogisticRegression``.
        max_iter: Maximum L-BFGS iterations per head.
        standardize: Standardize features with the training fold's statistics.
        progress: Show a tqdm bar over folds.

    Returns:
        Array of shape ``(N, num_classes)``, float64.
    """
    fit_predict = linear_head_fit_predict(
        features, labels, num_classes=num_classes, C=C, max_iter=max_iter, standardize=standardize
    )
    return out_of_fold_probs(
        labels, fit_predict, num_folds=num_folds, num_classes=num_classes, seed=seed,
        progress=progress,
    )


def _as_feature_tensor(features) -> torch.Tensor:
    if isinstance(features, torch.Tensor):
        x = features.detach()
        if not x.is_floating_point():
            raise TypeError(f"features must be a floating tensor, got dtype {x.dtype}")
    else:
        array = np.asarray(features)
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise TypeError(f"features must be a numeric array, got dtype {array.dtype}")
        x = torch.as_tensor(array, dtype=torch.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"features must have shape (N, D) with N > 0, got shape {tuple(x.shape)}")
    bad = ~torch.isfinite(x).all(dim=1)
    if bad.any():
        raise ValueError(f"features must be finite: {int(bad.sum())} of {x.shape[0]} rows hold NaN "
                         f"or inf (first: row {int(bad.nonzero()[0, 0])})")
    return x
