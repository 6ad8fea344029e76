"""The fast path: out-of-fold logistic-regression heads on frozen features."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cleaning_data import precision_recall
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from robustml.cleaning import (
    find_label_issues,
    fit_softmax_regression,
    linear_head_fit_predict,
    linear_head_oof_probs,
    stratified_folds,
)


def small_problem(n=600, dim=5, num_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n)
    features = rng.normal(size=(n, dim)) + rng.normal(size=(num_classes, dim))[labels]
    features[:, 0] = features[:, 0] * 10 + 3  # uneven scales, so standardization matters
    return features, labels


@pytest.mark.parametrize("C", [0.05, 1.0])
def test_head_matches_sklearn_logistic_regression(C):
    features, labels = small_problem()
    features = StandardScaler().fit_transform(features)  # well conditioned, as the heads see it
    reference = LogisticRegression(C=C, tol=1e-10, max_iter=1000).fit(features, labels)
    x = torch.as_tensor(features, dtype=torch.float64)
    weight, bias = fit_softmax_regression(x, torch.as_tensor(labels), num_classes=3, C=C,
                                          max_iter=500)
    probs = torch.softmax(x @ weight + bias, dim=1).numpy()
    np.testing.assert_allclose(probs, reference.predict_proba(features), atol=1e-4)
    np.testing.assert_allclose(weight.T.numpy(), reference.coef_, atol=1e-3, rtol=1e-3)


def test_oof_heads_match_sklearn_fold_by_fold():
    features, labels = small_problem()
    probs = linear_head_oof_probs(torch.as_tensor(features), labels, num_folds=4, seed=2, C=0.5,
                                  max_iter=500, progress=False)
    expected = np.empty_like(probs)
    for train, held in stratified_folds(labels, num_folds=4, seed=2):
        scaler = StandardScaler().fit(features[train])
        model = LogisticRegression(C=0.5, tol=1e-10, max_iter=1000)
        model.fit(scaler.transform(features[train]), labels[train])
        expected[held] = model.predict_proba(scaler.transform(features[held]))
    np.testing.assert_allclose(probs, expected, atol=1e-4)


def test_fast_path_finds_the_corrupted_labels(blobs):
    labels = blobs.noisy.labels
    probs = linear_head_oof_probs(blobs.x, labels, progress=False)
    assert probs.shape == (labels.size, 4) and probs.dtype == np.float64
    issues = find_label_issues(labels, probs)
    precision, recall = precision_recall(issues.is_issue, blobs.corrupted_mask)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)


def test_constant_feature_is_left_unscaled():
    features, labels = small_problem(n=200)
    features[:, 1] = 7.0
    fit_predict = linear_head_fit_predict(features, labels)
    probs = fit_predict(np.arange(150), np.arange(150, 200))
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


@pytest.mark.parametrize(
    ("features", "labels", "kwargs", "error", "match"),
    [
        (np.zeros(10), np.zeros(10, int), {}, ValueError, r"features must have shape \(N, D\)"),
        (np.zeros((0, 3)), np.zeros(0, int), {}, ValueError, "N > 0"),
        (np.full((4, 2), np.nan), np.array([0, 1, 0, 1]), {}, ValueError, "finite"),
        (torch.zeros(4, 2, dtype=torch.long), np.array([0, 1, 0, 1]), {}, TypeError, "floating"),
        (np.zeros((4, 2)), np.array([0, 1, 0]), {}, ValueError, "expected 4, got 3"),
        (np.zeros((4, 2)), np.array([0, 1, 0, 1]), {"C": 0.0}, ValueError, "C .* must be > 0"),
        (np.zeros((4, 2)), np.array([0, 1, 0, 1]), {"max_iter": 0}, ValueError, "max_iter"),
        (np.zeros((4, 2)), np.array([0, 1, 0, 3]), {"num_classes": 2}, ValueError, "must lie"),
    ],
)
def test_bad_inputs_raise(features, labels, kwargs, error, match):
    with pytest.raises(error, match=match):
        linear_head_fit_predict(features, labels, **kwargs)
