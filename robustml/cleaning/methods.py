"""Out-of-sample probabilities from any of the cleaning models, behind one function.

:func:`out_of_sample_probs` takes what a user has:

- a :class:`~robustml.cleaning.CrossFitNetwork` (the fast path for networks, one training's cost),
- a :class:`KFoldNetwork` (a fresh network per fold, ``K`` trainings),
- a :class:`~robustml.cleaning.LinearHeads` (the inputs are features, e.g. from a pretrained
  backbone),
- a scikit-learn classifier (cloned and fitted per fold; the default for tabular inputs is
  :func:`default_estimator`),
- or a ``fit_predict(train_idx, eval_idx) -> probs`` callable (the caller's own training),

and returns probabilities in which no row comes from a parameter fitted with its own label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier

from robustml.cleaning.crossfit import CrossFitNetwork, cross_fit_probs
from robustml.cleaning.features import LinearHeads, linear_head_oof_probs
from robustml.cleaning.networks import (FitSettings, ModelBuilder, default_network, fresh_model,
                                        predict_probs, train_classifier)
from robustml.cleaning.oof import FitPredict, out_of_fold_probs
from robustml.losses import num_outputs_for

#: What ``model="auto"`` picks: an estimator for 2-D inputs (tables, features), else a network.
AUTO = "auto"


@dataclass(frozen=True)
class KFoldNetwork:
    """A fresh network per fold, trained on the other ``K - 1`` folds (``K`` trainings).

    Args:
        build_model: ``(input_shape, num_outputs) -> nn.Module``; default MLP 512-64.
        fit: How each fold's network is trained.
    """

    build_model: ModelBuilder = default_network
    fit: FitSettings = field(default_factory=FitSettings)


def default_estimator(seed: int = 0) -> HistGradientBoostingClassifier:
    """Return the default cleaning model for tabular inputs: ``HistGradientBoostingClassifier``.

    scikit-learn's defaults (100 iterations, early stopping on a 10% validation split above
    10,000 rows), no setting tuned on any data set, with ``random_state=seed``. On UCI Adult
    with 20% symmetric noise gradient-boosting out-of-fold probabilities find more of the errors
    than network-based variants (issue 12: recall 0.770 against 0.68). Chosen on development
    noise seeds against ``l2_regularization=1.0``, 3 repeated 5-fold splits averaged and a mean
    with logistic regression (``experiments/label_noise/select_defaults.py``): none ranks higher
    by the rule there, and the cheapest wins ties.
    """
    return HistGradientBoostingClassifier(random_state=seed)


def is_estimator(model) -> bool:
    """Return whether ``model`` looks like a scikit-learn classifier (``fit`` and ``predict_proba``)."""
    return callable(getattr(model, "fit", None)) and callable(getattr(model, "predict_proba", None))


def resolve_model(model, x: torch.Tensor, *, seed: int):
    """Return the model ``"auto"`` stands for (estimator for 2-D ``x``, else network), or ``model``."""
    if isinstance(model, str):
        if model != AUTO:
            raise ValueError(f"model must be {AUTO!r}, a scikit-learn classifier, CrossFitNetwork, "
                             f"KFoldNetwork, LinearHeads or a fit_predict callable, got {model!r}")
        return default_estimator(seed) if x.ndim == 2 else CrossFitNetwork()
    return model


def estimator_fit_predict(estimator, x: np.ndarray, labels: np.ndarray, *,
                          num_classes: int) -> FitPredict:
    """Make a ``fit_predict`` that fits a clone of ``estimator`` on ``train_idx``.

    Columns of ``predict_proba`` are placed by the clone's ``classes_``, so a class missing from a
    fold's training rows gets probability 0.
    """

    def fit_predict(train_idx: np.ndarray, eval_idx: np.ndarray) -> np.ndarray:
        fitted = clone(estimator).fit(x[train_idx], labels[train_idx])
        out = np.zeros((eval_idx.shape[0], num_classes))
        out[:, np.asarray(fitted.classes_, dtype=np.int64)] = fitted.predict_proba(x[eval_idx])
        return out

    return fit_predict


def network_fit_predict(x: torch.Tensor, labels: np.ndarray, *, num_classes: int,
                        method: KFoldNetwork) -> FitPredict:
    """Make a ``fit_predict`` that trains a fresh network on ``train_idx`` only."""
    y = torch.as_tensor(labels, device=x.device)
    input_shape, num_outputs = tuple(x.shape[1:]), num_outputs_for(num_classes)

    def fit_predict(train_idx: np.ndarray, eval_idx: np.ndarray) -> np.ndarray:
        train = torch.as_tensor(train_idx, device=x.device)
        model = fresh_model(lambda: method.build_model(input_shape, num_outputs),
                            seed=method.fit.seed, device=x.device)
        train_classifier(model, x[train], y[train], settings=method.fit)
        return predict_probs(model, x[torch.as_tensor(eval_idx, device=x.device)])

    return fit_predict


def out_of_sample_probs(x: torch.Tensor, labels: np.ndarray, *, model, num_classes: int,
                        num_folds: int = 5, seed: int = 0, progress: bool = False) -> np.ndarray:
    """Return out-of-sample probabilities ``(N, num_classes)``, float64, for ``(x, labels)``.

    Args:
        x: Inputs (or features), shape ``(N, ...)``, a floating tensor, finite.
        labels: Shape ``(N,)`` int64 labels in ``[0, num_classes)``.
        model: See the module docstring (``"auto"`` resolved by :func:`resolve_model`).
        num_classes: Number of classes.
        num_folds: Folds ``K`` (of the heads for :class:`CrossFitNetwork`).
        seed: Seed of the fold (and part) split and of ``"auto"``'s estimator.
        progress: Show a tqdm bar.

    Raises:
        TypeError: For a ``model`` of another kind, or a network without ``features(x)``.
    """
    model = resolve_model(model, x, seed=seed)
    folds = dict(num_folds=num_folds, num_classes=num_classes, seed=seed, progress=progress)
    if isinstance(model, CrossFitNetwork):
        return cross_fit_probs(x, labels, num_classes=num_classes, method=model,
                               num_folds=num_folds, seed=seed, progress=progress)
    if isinstance(model, KFoldNetwork):
        fit_predict = network_fit_predict(x, labels, num_classes=num_classes, method=model)
        return out_of_fold_probs(labels, fit_predict, **folds)
    if isinstance(model, LinearHeads):
        if x.ndim != 2:
            raise ValueError(f"model: LinearHeads needs features of shape (N, D), got inputs of "
                             f"shape {tuple(x.shape)}; pass features or use CrossFitNetwork")
        return linear_head_oof_probs(x, labels, C=model.C, max_iter=model.max_iter, **folds)
    if is_estimator(model):
        array = x.detach().cpu().flatten(1).numpy()
        fit_predict = estimator_fit_predict(model, array, labels, num_classes=num_classes)
        return out_of_fold_probs(labels, fit_predict, **folds)
    if callable(model):
        return out_of_fold_probs(labels, model, **folds)
    raise TypeError(f"model must be 'auto', a scikit-learn classifier, CrossFitNetwork, "
                    f"KFoldNetwork, LinearHeads or a fit_predict(train_idx, eval_idx) callable, "
                    f"got {type(model).__name__}")
