"""DFR against a direct scikit-learn computation of the authors' protocol, and its bad input."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from support import planted
from robustml.heads import C_GRID, balanced_subsample, dfr_on_train, dfr_on_validation

NUM_GROUPS = 4
VERSION = tuple(int(p) for p in sklearn.__version__.split(".")[:2])
L1 = {"l1_ratio": 1.0} if VERSION >= (1, 8) else {"penalty": "l1"}  # penalty= is deprecated in 1.8


def logreg(C, seed, max_iter=100):
    return LogisticRegression(C=C, solver="liblinear", max_iter=max_iter, random_state=seed, **L1)


def reference_balanced(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    members = [np.where(groups == g)[0] for g in range(NUM_GROUPS)]
    smallest = min(len(m) for m in members)
    return np.concatenate([rng.permutation(m)[:smallest] for m in members])


def reference_worst(preds, y, groups) -> float:
    return min(np.mean(preds[groups == g] == y[groups == g]) for g in range(NUM_GROUPS))


def reference_average(x_fit, y_fit, g_fit, C, scaler, rng, refits, seed):
    coefs, intercepts = [], []
    for _ in range(refits):
        idx = reference_balanced(g_fit, rng)
        m = logreg(C, seed)
        m.fit(scaler.transform(x_fit[idx]), y_fit[idx])
        coefs.append(m.coef_)
        intercepts.append(m.intercept_)
    return np.mean(coefs, axis=0), np.mean(intercepts, axis=0)


def reference_dfr_val(x_train, x_val, y_val, g_val, seed):
    """The authors' dfr_on_validation_tune / _eval (balance_val, no train rows), written out."""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(x_val))
    half = len(x_val) // 2
    fit = idx[half:][reference_balanced(g_val[idx[half:]], rng)]
    score = idx[:half]
    scaler = StandardScaler().fit(x_val[fit])
    worst = []
    for C in C_GRID:
        m = logreg(C, seed).fit(scaler.transform(x_val[fit]), y_val[fit])
        worst.append(reference_worst(m.predict(scaler.transform(x_val[score])), y_val[score], g_val[score]))
    C = C_GRID[int(np.argmax(worst))]
    final_scaler = StandardScaler().fit(x_train)
    coef, intercept = reference_average(x_val, y_val, g_val, C, final_scaler, rng, 20, seed)
    return C, worst, coef, intercept, final_scaler


def test_dfr_on_validation_equals_a_direct_scikit_learn_computation():
    x_train, _, _ = planted(3000, 0.05, seed=1)
    x_val, y_val, g_val = planted(800, 0.2, seed=2)
    x_test, y_test, g_test = planted(2000, 0.5, seed=3)
    result = dfr_on_validation(x_train, x_val, y_val, g_val, num_groups=NUM_GROUPS, seed=7)
    C, worst, coef, intercept, scaler = reference_dfr_val(x_train, x_val, y_val, g_val, seed=7)
    assert result.C == C and list(result.tuning.values()) == pytest.approx(worst)
    head = result.model.named_steps["logreg"]
    np.testing.assert_allclose(head.coef_, coef, rtol=1e-12)
    np.testing.assert_allclose(head.intercept_, intercept, rtol=1e-12)
    expected = (scaler.transform(x_test) @ coef.T + intercept).ravel() > 0
    np.testing.assert_array_equal(result.predict(x_test), expected.astype(int))
    # The spurious dimension decides ERM-like fits; DFR's balanced fit leans on the core one.
    assert reference_worst(result.predict(x_test), y_test, g_test) > 0.6
    assert abs(coef[0, 0]) > abs(coef[0, 1])


def test_dfr_on_train_equals_a_direct_scikit_learn_computation():
    x_train, y_train, g_train = planted(3000, 0.05, seed=4)
    x_val, y_val, g_val = planted(800, 0.2, seed=5)
    result = dfr_on_train(x_train, y_train, g_train, x_val, y_val, g_val, num_groups=NUM_GROUPS,
                          seed=3)
    rng = np.random.default_rng(3)
    scaler = StandardScaler().fit(x_train)
    idx = reference_balanced(g_train, rng)
    worst = [reference_worst(logreg(C, 3, max_iter=20)
                             .fit(scaler.transform(x_train[idx]), y_train[idx])
                             .predict(scaler.transform(x_val)), y_val, g_val) for C in C_GRID]
    C = C_GRID[int(np.argmax(worst))]
    coef, intercept = reference_average(x_train, y_train, g_train, C, scaler, rng, 10, 3)
    assert result.C == C and result.fit_on == "train"
    np.testing.assert_allclose(result.model.named_steps["logreg"].coef_, coef, rtol=1e-12)
    np.testing.assert_allclose(result.model.named_steps["logreg"].intercept_, intercept, rtol=1e-12)


def test_tuning_counts_are_each_groups_rows_in_the_fitting_and_scoring_parts():
    x_train, y_train, g_train = planted(600, 0.05, seed=1)
    x_val, y_val, g_val = planted(300, 0.2, seed=2)
    result = dfr_on_validation(x_train, x_val, y_val, g_val, num_groups=NUM_GROUPS, seed=7)
    order = np.random.default_rng(7).permutation(len(x_val))  # the first draw of the seed's generator
    score, fit = order[:150], order[150:]
    assert result.tuning_counts == {"fit": np.bincount(g_val[fit], minlength=4).tolist(),
                                    "score": np.bincount(g_val[score], minlength=4).tolist()}
    on_train = dfr_on_train(x_train, y_train, g_train, x_val, y_val, g_val, num_groups=NUM_GROUPS)
    assert on_train.tuning_counts == {"fit": np.bincount(g_train, minlength=4).tolist(),
                                      "score": np.bincount(g_val, minlength=4).tolist()}


def test_parallel_fits_give_the_same_model():
    x_val, y_val, g_val = planted(400, 0.2, seed=6)
    one = dfr_on_validation(x_val, x_val, y_val, g_val, num_groups=NUM_GROUPS, num_refits=4, n_jobs=1)
    two = dfr_on_validation(x_val, x_val, y_val, g_val, num_groups=NUM_GROUPS, num_refits=4, n_jobs=2)
    np.testing.assert_array_equal(one.model.named_steps["logreg"].coef_,
                                  two.model.named_steps["logreg"].coef_)


def test_balanced_subsample_takes_the_smallest_group_size_from_every_group():
    groups = np.array([0] * 10 + [1] * 3 + [2] * 7 + [3] * 5)
    idx = balanced_subsample(groups, num_groups=4, rng=np.random.default_rng(0))
    assert np.bincount(groups[idx]).tolist() == [3, 3, 3, 3] and len(set(idx.tolist())) == 12


def test_an_empty_validation_group_is_named():
    x_val, y_val, g_val = planted(400, 0.2, seed=8)
    keep = g_val != 3
    names = ["y=0,a=0", "y=0,a=1", "y=1,a=0", "y=1,a=1"]
    with pytest.raises(ValueError, match=r"group 3 \(y=1,a=1\).*every group"):
        dfr_on_validation(x_val, x_val[keep], y_val[keep], g_val[keep], num_groups=NUM_GROUPS,
                          group_names=names)
    with pytest.raises(ValueError, match=r"group 3 \(y=1,a=1\) has no example.*same number of rows"):
        balanced_subsample(g_val[keep], num_groups=NUM_GROUPS, rng=np.random.default_rng(0),
                           group_names=names)


def test_a_group_with_one_validation_example_cannot_fill_both_tuning_halves():
    x_val, y_val, g_val = planted(400, 0.2, seed=9)
    keep = (g_val != 1) | (np.cumsum(g_val == 1) == 1)
    with pytest.raises(ValueError, match="half has no example of group 1.*at least two.*method.fit_on=train"):
        dfr_on_validation(x_val, x_val[keep], y_val[keep], g_val[keep], num_groups=NUM_GROUPS)


@pytest.mark.parametrize("kwargs,match", [({"C_grid": []}, "C_grid must be a non-empty"),
                                          ({"C_grid": [1.0, -0.1]}, "positive numbers"),
                                          ({"num_refits": 0}, "num_refits must be an integer >= 1")])
def test_bad_options_are_named(kwargs, match):
    x_val, y_val, g_val = planted(200, 0.2, seed=10)
    with pytest.raises(ValueError, match=match):
        dfr_on_validation(x_val, x_val, y_val, g_val, num_groups=NUM_GROUPS, **kwargs)


def test_three_classes_fit_one_vs_rest_like_scikit_learns_classifier():
    """liblinear is binary: with 3 classes each fit is OneVsRestClassifier's, coefficients stacked."""
    from sklearn.multiclass import OneVsRestClassifier

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 120)
    attr = rng.integers(0, 2, y.size)
    x = rng.normal(size=(y.size, 4)) + 2.0 * np.eye(3, 4)[y] + 1.5 * attr[:, None] * np.array([0, 0, 0, 1])
    groups = 2 * y + attr
    result = dfr_on_validation(x, x, y, groups, num_groups=6, num_refits=3, seed=0)
    assert result.model.named_steps["logreg"].coef_.shape == (3, 4)
    assert (result.predict(x) == y).mean() > 0.8  # chance: 1/3
    scaled = StandardScaler().fit_transform(x)
    direct = OneVsRestClassifier(logreg(0.3, 0)).fit(scaled, y)
    from robustml.heads.dfr import _fit
    ours = _fit(scaled, y, 0.3, 100, 0)
    np.testing.assert_array_equal(ours.predict(scaled), direct.predict(scaled))
    np.testing.assert_allclose(ours.coef_, np.vstack([e.coef_ for e in direct.estimators_]))
