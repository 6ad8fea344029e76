"""Deep Feature Reweighting: retrain the last layer on group-balanced held-out data.

Kirichenko, Izmailov, Wilson, "Last Layer Re-Training is Sufficient for Robustness to Spurious
Correlations" (ICLR 2023), Section 4 and Appendix B, following the authors' code
(``dfr_evaluate_spurious.py`` of PolinaKirichenko/deep_feature_reweighting). The features of a
trained model are frozen; a ``StandardScaler`` and an L1-regularized
``LogisticRegression(penalty="l1", solver="liblinear")`` (``l1_ratio=1`` from scikit-learn 1.8 on,
which deprecates ``penalty``) are fitted on group-balanced subsets:

- **DFR on validation** (:func:`dfr_on_validation`). Tuning: the validation rows are shuffled
  (``rng.permutation``); the rows after the first ``N // 2`` form the fitting half, which is
  group-balanced by shuffling each group's rows (``rng.permutation``, groups in id order) and
  keeping the first ``min_g``; a scaler fitted on that balanced half standardizes both halves;
  each ``C`` of the grid is scored by worst-group accuracy on the first half, and ties go to the
  first ``C`` of the grid (the largest). Final model: ``num_refits`` (20) fits, each on a fresh
  group-balanced subsample of the whole validation split, all standardized by a scaler fitted on
  the *training* features; coefficients and intercepts are averaged into one linear model.
- **DFR on train** (:func:`dfr_on_train`). The same, with group-balanced subsamples of the
  training split: tuning fits one balanced subsample (``max_iter=20``, as in the authors' code)
  and scores worst-group accuracy on the whole validation split; the final model averages 10 fits.

The class-weight grid of the authors' code collapses to ``{0: 1, 1: 1}`` with their default flags
and is not searched. Random draws come from one ``numpy.random.Generator`` in the order above, so a
seed fixes every subsample. The ``C`` grid and the refits run in parallel with joblib (``n_jobs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import sklearn
import torch
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from robustml.heads.arrays import check_split
from robustml.metrics import group_accuracy
from robustml.validation import check_int

C_GRID = (1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01)
# The L1 penalty: ``penalty="l1"`` before scikit-learn 1.8, which deprecates it for ``l1_ratio=1``.
L1_PENALTY = ({"l1_ratio": 1.0} if tuple(int(p) for p in sklearn.__version__.split(".")[:2]) >= (1, 8)
              else {"penalty": "l1"})


@dataclass
class DFRResult:
    """A fitted DFR last layer.

    Attributes:
        model: ``Pipeline(StandardScaler, LogisticRegression)`` whose coefficients and intercept
            are the averages over the refits; ``model.predict(features)`` gives class ids.
        C: The chosen inverse regularization strength.
        tuning: Worst-group accuracy of each ``C`` on the tuning split, in grid order.
        fit_on: ``"val"`` or ``"train"``, the split whose group labels were used for fitting.
        subsample_size: Rows per balanced subsample of the final fits (``G * min_g``).
        num_refits: Fits averaged into the final model.
        group_counts: Rows of each group in the split the final fits drew from.
        tuning_counts: Rows of each group in the two parts of the tuning: ``"fit"``, the rows
            each ``C`` was fitted on before group balancing (the fitting half of validation, or
            the training split), and ``"score"``, the rows each ``C`` was scored on (the
            scoring half of validation, or the whole validation split).
    """

    model: Pipeline
    C: float
    tuning: dict[float, float]
    fit_on: str
    subsample_size: int
    num_refits: int
    group_counts: list[int] = field(default_factory=list)
    tuning_counts: dict[str, list[int]] = field(default_factory=dict)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Return predicted class ids ``(N,)`` for ``features`` of shape ``(N, D)``."""
        return self.model.predict(np.asarray(features, dtype=np.float64))

    def linear(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the scaler and logistic regression folded into one layer ``(weight, bias)``
        (a :class:`~robustml.heads.classifier.LinearHead`'s arguments).

        ``features @ weight.T + bias`` equals ``decision_function`` of the pipeline: shape
        ``(1, D)`` and ``(1,)`` for two classes (class 1 when positive), ``(C, D)`` and ``(C,)``
        for ``C >= 3`` (the argmax), float32 like the models' logits.
        """
        scaler, head = self.model.named_steps["scaler"], self.model.named_steps["logreg"]
        weight = head.coef_ / scaler.scale_   # scikit-learn stores a scale of 1 for constant columns
        bias = head.intercept_ - weight @ scaler.mean_
        return (torch.from_numpy(np.ascontiguousarray(weight)).float(),
                torch.from_numpy(np.ascontiguousarray(bias)).float())


def _group_name(g: int, group_names: Sequence[str] | None) -> str:
    return f"group {g}" + (f" ({group_names[g]})" if group_names is not None else "")


def balanced_subsample(groups: np.ndarray, *, num_groups: int, rng: np.random.Generator,
                       split: str = "validation",
                       group_names: Sequence[str] | None = None) -> np.ndarray:
    """Return row indices of a group-balanced subsample: ``min_g`` random rows of every group.

    Each group's rows (in id order ``0..G-1``) are shuffled with ``rng.permutation`` and cut to
    the smallest group's size ``min_g``; the result lists group 0's rows first, then group 1's...

    Args:
        groups: Group id of each row, shape ``(N,)`` int.
        num_groups: ``G``; every group in ``[0, G)`` must have a row.
        rng: The generator the shuffles draw from.
        split: Name of the split, for the error message.
        group_names: Optional names of the groups, for the error message.

    Returns:
        Indices into ``groups``, shape ``(G * min_g,)`` int64.
    """
    members = [np.flatnonzero(groups == g) for g in range(num_groups)]
    empty = [g for g, rows in enumerate(members) if rows.size == 0]
    if empty:
        names = ", ".join(_group_name(g, group_names) for g in empty)
        raise ValueError(f"DFR needs every group in the {split} rows it balances, but {names} has no "
                         f"example there: a group-balanced subset takes the same number of rows from "
                         f"every group. Use a {split} split that holds every group (or, for DFR on "
                         f"validation, method.fit_on=train)")
    smallest = min(rows.size for rows in members)
    return np.concatenate([rng.permutation(rows)[:smallest] for rows in members])


def _fit(x: np.ndarray, y: np.ndarray, C: float, max_iter: int, seed: int) -> LogisticRegression:
    """Fit the L1 logistic regression; liblinear's shuffling is seeded, so every fit is reproducible.

    With three or more classes liblinear fits one binary model per class against the rest (its
    one-vs-rest scheme, which scikit-learn 1.7+ no longer runs inside ``LogisticRegression``): the
    per-class coefficients are stacked into one linear model whose ``predict`` is the argmax of
    the class scores, as ``OneVsRestClassifier.predict`` is.
    """
    def model() -> LogisticRegression:
        return LogisticRegression(C=C, solver="liblinear", max_iter=max_iter, random_state=seed,
                                  **L1_PENALTY)
    if np.unique(y).size <= 2:
        return model().fit(x, y)
    ovr = OneVsRestClassifier(model()).fit(x, y)
    head = ovr.estimators_[0]
    head.coef_ = np.vstack([e.coef_ for e in ovr.estimators_])
    head.intercept_ = np.concatenate([e.intercept_ for e in ovr.estimators_])
    head.classes_ = ovr.classes_
    return head


def _tune(x_fit: np.ndarray, y_fit: np.ndarray, x_score: np.ndarray, y_score: np.ndarray,
          g_score: np.ndarray, num_groups: int, C_grid: Sequence[float], *, max_iter: int, seed: int,
          n_jobs: int | None) -> tuple[float, dict[float, float]]:
    """Fit every ``C`` on ``x_fit`` (already scaled), score worst-group accuracy on ``x_score``."""
    fits = Parallel(n_jobs=n_jobs)(delayed(_fit)(x_fit, y_fit, C, max_iter, seed) for C in C_grid)
    y_t, g_t = torch.as_tensor(y_score), torch.as_tensor(g_score)
    scores = {float(C): group_accuracy(torch.as_tensor(m.predict(x_score)), y_t, g_t,
                                       num_groups=num_groups)["acc_worst_group"] for C, m in zip(C_grid, fits)}
    best = list(scores)[int(np.argmax(list(scores.values())))]  # first of the ties: largest C
    return best, scores


def _averaged(x: np.ndarray, y: np.ndarray, groups: np.ndarray, num_groups: int, C: float,
              scaler: StandardScaler, rng: np.random.Generator, *, num_refits: int, max_iter: int,
              seed: int, n_jobs: int | None, split: str, group_names: Sequence[str] | None) -> tuple[Pipeline, int]:
    """Average the coefficients of ``num_refits`` fits on balanced subsamples of ``(x, y)``."""
    subsets = [balanced_subsample(groups, num_groups=num_groups, rng=rng, split=split,
                                  group_names=group_names)
               for _ in range(num_refits)]
    scaled = scaler.transform(x)
    fits = Parallel(n_jobs=n_jobs)(delayed(_fit)(scaled[idx], y[idx], C, max_iter, seed) for idx in subsets)
    head = fits[-1]
    head.coef_ = np.mean([m.coef_ for m in fits], axis=0)
    head.intercept_ = np.mean([m.intercept_ for m in fits], axis=0)
    return Pipeline([("scaler", scaler), ("logreg", head)]), int(subsets[0].size)


def _check_options(C_grid: Sequence[float], num_refits: int) -> None:
    if len(C_grid) == 0 or any(not np.isfinite(C) or C <= 0 for C in C_grid):
        raise ValueError(f"C_grid must be a non-empty list of positive numbers, got {list(C_grid)}")
    check_int("num_refits", num_refits, minimum=1)


def dfr_on_validation(train_features: np.ndarray, val_features: np.ndarray, val_target: np.ndarray,
                      val_groups: np.ndarray, *, num_groups: int, C_grid: Sequence[float] = C_GRID,
                      num_refits: int = 20, max_iter: int = 100, seed: int = 0,
                      n_jobs: int | None = 1, group_names: Sequence[str] | None = None) -> DFRResult:
    """Fit DFR on the validation split's group labels (DFR^Val_Tr of the paper, Appendix B).

    Args:
        train_features: Training-split features ``(N_train, D)``; only their scaler is used.
        val_features: Validation features ``(N_val, D)``.
        val_target: Validation class labels ``(N_val,)`` int.
        val_groups: Validation group ids ``(N_val,)`` int in ``[0, num_groups)``.
        num_groups: ``G``; every group needs validation rows in both tuning halves.
        C_grid: Inverse L1 strengths tried, in order (ties go to the first).
        num_refits: Balanced subsamples of the whole validation split averaged in the final model.
        max_iter: liblinear's iteration limit.
        seed: Seed of the ``numpy.random.Generator`` that draws every subsample, and liblinear's
            ``random_state`` (the authors' code leaves it to numpy's global state).
        n_jobs: joblib workers for the ``C`` grid and the refits (``1``: sequential).
        group_names: Optional group names for error messages.

    Returns:
        A :class:`DFRResult` (``fit_on="val"``).
    """
    _check_options(C_grid, num_refits)
    x_val, y_val, g_val = check_split(val_features, val_target, val_groups, "validation")
    x_train = np.asarray(train_features, dtype=np.float64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x_val))
    half = len(x_val) // 2
    score_idx, fit_idx = order[:half], order[half:]
    for name, idx in (("scoring", score_idx), ("fitting", fit_idx)):
        missing = sorted(set(range(num_groups)) - set(g_val[idx].tolist()))
        if missing:
            names = ", ".join(_group_name(g, group_names) for g in missing)
            raise ValueError(f"DFR's tuning splits the validation rows at random in two halves, and "
                             f"the {name} half has no example of {names}: every group needs "
                             f"validation examples in both halves (at least two, many more for a "
                             f"stable choice of C); with a validation split this small, fit on "
                             f"training subsets instead (method.fit_on=train)")
    balanced = fit_idx[balanced_subsample(g_val[fit_idx], num_groups=num_groups, rng=rng,
                                          group_names=group_names)]
    tune_scaler = StandardScaler().fit(x_val[balanced])
    C, scores = _tune(tune_scaler.transform(x_val[balanced]), y_val[balanced],
                      tune_scaler.transform(x_val[score_idx]), y_val[score_idx], g_val[score_idx],
                      num_groups, C_grid, max_iter=max_iter, seed=seed, n_jobs=n_jobs)
    scaler = StandardScaler().fit(x_train)
    model, size = _averaged(x_val, y_val, g_val, num_groups, C, scaler, rng, num_refits=num_refits,
                            max_iter=max_iter, seed=seed, n_jobs=n_jobs, split="validation",
                            group_names=group_names)
    return DFRResult(model, C, scores, "val", size, num_refits,
                     np.bincount(g_val, minlength=num_groups).tolist(),
                     {"fit": np.bincount(g_val[fit_idx], minlength=num_groups).tolist(),
                      "score": np.bincount(g_val[score_idx], minlength=num_groups).tolist()})


def dfr_on_train(train_features: np.ndarray, train_target: np.ndarray, train_groups: np.ndarray,
                 val_features: np.ndarray, val_target: np.ndarray, val_groups: np.ndarray, *,
                 num_groups: int, C_grid: Sequence[float] = C_GRID, num_refits: int = 10,
                 max_iter: int = 100, tune_max_iter: int = 20, seed: int = 0,
                 n_jobs: int | None = 1, group_names: Sequence[str] | None = None) -> DFRResult:
    """Fit DFR on group-balanced subsamples of the training split (DFR^Tr_Tr of the paper).

    A scaler fitted on all training features standardizes everything. Tuning fits one balanced
    training subsample per ``C`` (``tune_max_iter`` iterations, 20 in the authors' code) and
    scores worst-group accuracy on the whole validation split; the final model averages
    ``num_refits`` fits on fresh balanced subsamples. Arguments as in :func:`dfr_on_validation`.

    Returns:
        A :class:`DFRResult` (``fit_on="train"``).
    """
    _check_options(C_grid, num_refits)
    x_train, y_train, g_train = check_split(train_features, train_target, train_groups, "training")
    x_val, y_val, g_val = check_split(val_features, val_target, val_groups, "validation")
    missing = sorted(set(range(num_groups)) - set(g_val.tolist()))
    if missing:
        names = ", ".join(_group_name(g, group_names) for g in missing)
        raise ValueError(f"DFR on train scores each C by worst-group validation accuracy, but {names} "
                         f"has no validation example; use a validation split that holds every group")
    rng = np.random.default_rng(seed)
    scaler = StandardScaler().fit(x_train)
    idx = balanced_subsample(g_train, num_groups=num_groups, rng=rng, split="training",
                             group_names=group_names)
    C, scores = _tune(scaler.transform(x_train[idx]), y_train[idx], scaler.transform(x_val), y_val,
                      g_val, num_groups, C_grid, max_iter=tune_max_iter, seed=seed, n_jobs=n_jobs)
    model, size = _averaged(x_train, y_train, g_train, num_groups, C, scaler, rng,
                            num_refits=num_refits, max_iter=max_iter, seed=seed, n_jobs=n_jobs,
                            split="training", group_names=group_names)
    train_counts = np.bincount(g_train, minlength=num_groups).tolist()
    return DFRResult(model, C, scores, "train", size, num_refits, train_counts,
                     {"fit": train_counts, "score": np.bincount(g_val, minlength=num_groups).tolist()})
