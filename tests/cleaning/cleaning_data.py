"""Helpers for the cleaning tests: Gaussian blobs with a known amount of label noise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from robustml.cleaning import NoisyLabels, add_label_noise

NUM_CLASSES = 4


@dataclass
class Blobs:
    x: np.ndarray
    true: np.ndarray
    noisy: NoisyLabels

    @property
    def corrupted_mask(self) -> np.ndarray:
        mask = np.zeros(self.true.shape[0], dtype=bool)
        mask[self.noisy.corrupted] = True
        return mask


def make_blobs(n: int = 3000, *, sep: float = 4.0, rate: float = 0.2, seed: int = 0) -> Blobs:
    """Four unit-variance 2-D blobs, means on a circle of radius ``sep``, symmetric label noise."""
    rng = np.random.default_rng(seed)
    true = np.repeat(np.arange(NUM_CLASSES), n // NUM_CLASSES)
    angles = 2 * np.pi * np.arange(NUM_CLASSES) / NUM_CLASSES
    means = sep * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    x = means[true] + rng.normal(size=(true.shape[0], 2))
    noisy = add_label_noise(true, num_classes=NUM_CLASSES, rate=rate, seed=seed + 1)
    return Blobs(x=x, true=true, noisy=noisy)


def logreg_fit_predict(x: np.ndarray, labels: np.ndarray):
    """A ``fit_predict`` callable backed by scikit-learn's logistic regression."""

    def fit_predict(train_idx: np.ndarray, eval_idx: np.ndarray) -> np.ndarray:
        model = LogisticRegression(max_iter=200).fit(x[train_idx], labels[train_idx])
        return model.predict_proba(x[eval_idx])

    return fit_predict


def precision_recall(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    hits = int((flagged & truth).sum())
    return hits / max(int(flagged.sum()), 1), hits / max(int(truth.sum()), 1)
