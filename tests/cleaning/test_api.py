"""The array API: detect_label_issues on plain arrays, its shipped defaults and its errors."""

from __future__ import annotations

import inspect
import re
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from cleaning_data import logreg_fit_predict, make_blobs, precision_recall
from cleanlab.count import estimate_py_and_noise_matrices_from_probabilities
from cleanlab.filter import find_label_issues as cleanlab_find_label_issues
from omegaconf import OmegaConf
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

import robustml.configs
from robustml.cleaning import (CrossFitNetwork, FitSettings, GroupGuard, KFoldNetwork, LinearHeads,
                               default_estimator, detect_label_issues, find_label_issues,
                               linear_head_oof_probs)
from robustml.cleaning.networks import HIDDEN_DIMS

HEADS = LinearHeads()  # the cheapest model, where the test is about the pipeline around it
CONFIG = Path(robustml.configs.__file__).parent / "cleaning" / "confident_learning.yaml"


def test_default_on_tabular_inputs_is_gradient_boosting_cross_validated():
    """Independent reference: the same protocol written with scikit-learn and cleanlab directly."""
    blobs = make_blobs(n=800)
    labels = blobs.noisy.labels
    report = detect_label_issues(blobs.x, labels)
    expected = np.empty((labels.size, 4))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    for train, held in folds.split(blobs.x, labels):
        model = HistGradientBoostingClassifier(random_state=0)
        model.fit(blobs.x[train], labels[train])
        expected[held] = model.predict_proba(blobs.x[held])
    np.testing.assert_allclose(report.pred_probs, expected, atol=1e-6)
    count = int(cleanlab_find_label_issues(labels, expected).sum())  # lowest_label_posterior
    _, noise, _, _ = estimate_py_and_noise_matrices_from_probabilities(labels, expected)
    posterior = [noise[y, y] * p[y] / sum(noise[y, j] * p[j] for j in range(4))
                 for y, p in zip(labels, expected)]
    lowest = np.argsort(posterior, kind="stable")[:count]
    np.testing.assert_array_equal(np.flatnonzero(report.is_issue), np.sort(lowest))
    np.testing.assert_array_equal(report.is_issue, report.is_issue_before_guard)
    assert report.per_group is None and report.quality.shape == labels.shape
    precision, recall = precision_recall(report.is_issue, blobs.corrupted_mask)
    assert precision >= 0.8 and recall >= 0.85, (precision, recall)  # base rate 0.2


def test_every_kind_of_model_is_accepted(blobs):
    labels = blobs.noisy.labels
    heads = detect_label_issues(blobs.x, labels, model=LinearHeads())
    np.testing.assert_allclose(heads.pred_probs,  # L-BFGS stops at 30 iterations, unconverged
                               linear_head_oof_probs(blobs.x, labels, progress=False), atol=2e-3)
    estimator = detect_label_issues(blobs.x, labels, model=LogisticRegression(max_iter=200))
    x32 = blobs.x.astype(np.float32)  # numpy inputs are used as float32, as networks need
    callable_ = detect_label_issues(blobs.x, labels, model=logreg_fit_predict(x32, labels))
    np.testing.assert_allclose(estimator.pred_probs, callable_.pred_probs, atol=1e-6)
    few = FitSettings(epochs=0, min_steps=30)
    for model in (KFoldNetwork(fit=few), CrossFitNetwork(fit=few)):
        report = detect_label_issues(blobs.x.astype(np.float32), labels, model=model)
        assert report.pred_probs.shape == (labels.size, 4)
        assert precision_recall(report.is_issue, blobs.corrupted_mask)[1] >= 0.8


def test_groups_get_the_guarded_report_and_nothing_is_written(blobs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    labels, groups = blobs.noisy.labels, np.arange(blobs.x.shape[0]) % 3
    free = detect_label_issues(blobs.x, labels, groups=groups, guard=GroupGuard(), model=HEADS)
    guarded = detect_label_issues(blobs.x, labels, groups=groups,
                                  guard=GroupGuard(max_fraction=0.1, protect_groups=[1]),
                                  model=HEADS)
    np.testing.assert_array_equal(free.is_issue, guarded.is_issue_before_guard)
    assert not (guarded.is_issue & ~guarded.is_issue_before_guard).any()  # a subset
    assert not guarded.is_issue[groups == 1].any()
    counts = np.bincount(groups)
    for row in guarded.per_group:
        g = row["group"]
        assert row["count"] == counts[g]
        assert row["flagged_before"] == free.is_issue[groups == g].sum() > 0
        assert row["flagged"] == guarded.is_issue[groups == g].sum() <= 0.1 * counts[g]
    assert os.listdir(tmp_path) == []  # no file unless asked
    detect_label_issues(blobs.x, labels, groups=groups, guard=GroupGuard(max_fraction=0.1),
                        model=HEADS, csv_path=tmp_path / "out" / "issues.csv")
    lines = (tmp_path / "out" / "issues.csv").read_text().splitlines()
    assert lines[0] == "index,given_label,suggested_label,quality,group,action"
    assert len(lines) - 1 == free.is_issue.sum()
    assert {line.rsplit(",", 1)[1] for line in lines[1:]} == {"flagged", "guarded"}


@pytest.mark.parametrize(("x", "labels", "kwargs", "error", "match"), [
    (np.array([[0.0, np.nan], [np.inf, 1], [1, 1], [2, 2]]), [0, 1, 0, 1], {}, ValueError,
     r"x must be finite, got NaN or inf in 2 of 4 rows \(first: row 0\)"),
    (np.zeros((5, 2)), [0, 1, 0, 1], {}, ValueError, r"x must have one row per label \(4 rows\), got 5 rows"),
    (np.zeros((4, 2)), [0, 1, 0, 1], {"groups": [0, 0, 1, 1]}, ValueError,
     "groups were given without a guard"),
    (np.zeros((4, 2)), [0, 1, 0, 1], {"guard": GroupGuard()}, ValueError,
     "guard was given without groups"),
    (np.zeros((4, 2)), [0, 1, 0, 1], {"model": "boosting"}, ValueError, "model must be 'auto'"),
    (np.zeros((4, 2)), [0, 1, 0, 1], {"model": 3}, TypeError, "model must be .* got int"),
    (np.zeros((4, 2)), [0, 1, 0, 1], {"groups": [0, 1], "guard": GroupGuard()}, ValueError,
     "groups must have one entry per label"),
    (np.zeros((4, 2, 2)), [0, 1, 0, 1], {"model": LinearHeads()}, ValueError,
     r"LinearHeads needs features of shape \(N, D\)"),
])
def test_bad_inputs_name_the_argument(x, labels, kwargs, error, match):
    with pytest.raises(error, match=match):
        detect_label_issues(x, np.array(labels), num_folds=2, **kwargs)


def test_a_class_with_a_single_example_is_named():
    labels = np.array([0, 1] * 10 + [2])
    with pytest.raises(ValueError, match="labels: class 2 has a single example.*num_folds=5"):
        detect_label_issues(np.random.default_rng(0).normal(size=(21, 3)), labels)


def test_a_network_without_features_is_refused():
    method = CrossFitNetwork(build_model=lambda shape, out: torch.nn.Linear(shape[0], out))
    with pytest.raises(TypeError, match=r"model: .*\.features\(x\).*KFoldNetwork"):
        detect_label_issues(np.zeros((40, 3)), np.arange(40) % 2, model=method)


def test_one_set_of_defaults_for_config_and_python():
    """configs/cleaning/confident_learning.yaml and the Python classes ship the same defaults."""
    cfg = OmegaConf.load(CONFIG)
    fit, heads, crossfit = FitSettings(), LinearHeads(), CrossFitNetwork()
    assert (cfg.epochs, cfg.min_steps, cfg.batch_size, cfg.lr) == \
        (fit.epochs, fit.min_steps, fit.batch_size, fit.lr)
    assert (cfg.head.C, cfg.head.max_iter) == (heads.C, heads.max_iter)
    assert crossfit.fit == fit and crossfit.head == heads and cfg.num_parts == crossfit.num_parts
    assert KFoldNetwork().fit == fit
    assert cfg.model._target_ == "robustml.models.MLP"
    assert tuple(cfg.model.hidden_dims) == HIDDEN_DIMS and cfg.model.dropout == 0.0
    assert cfg.estimator._target_ == "sklearn.ensemble.HistGradientBoostingClassifier"
    assert set(cfg.estimator) == {"_target_", "random_state"}
    assert default_estimator(7).get_params() == HistGradientBoostingClassifier(
        random_state=7).get_params()
    api = inspect.signature(detect_label_issues).parameters
    issues = inspect.signature(find_label_issues).parameters
    assert cfg.method == api["model"].default == "auto"
    assert cfg.num_folds == api["num_folds"].default
    assert cfg.filter_by == api["filter_by"].default == issues["filter_by"].default
    assert cfg.quality_method == api["quality_method"].default == issues["quality_method"].default
    for name in ("num_folds",):
        assert inspect.signature(linear_head_oof_probs).parameters[name].default == cfg[name]
    assert (inspect.signature(linear_head_oof_probs).parameters["max_iter"].default,
            inspect.signature(linear_head_oof_probs).parameters["C"].default) == \
        (heads.max_iter, heads.C)
    assert GroupGuard().max_fraction == cfg.guard.max_fraction
    assert list(GroupGuard().protect_groups) == list(cfg.guard.protect_groups)


def test_readme_clean_labels_example_runs(capsys):
    readme = (Path(robustml.__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Clean labels", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md (Clean labels)", "exec"), {})
    out = capsys.readouterr().out
    flagged, hits, corrupted = (int(v) for v in
                                re.findall(r"\d+", out.splitlines()[0])[:3])
    assert hits >= 0.8 * corrupted and hits >= 0.6 * flagged, out
    assert "'flagged_before'" in out


@pytest.mark.parametrize("name", ["num_classes", "num_groups"])
def test_fractional_counts_are_named(name):
    x, labels = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    with pytest.raises(TypeError, match=f"{name} must be an integer >= 1, got"):
        detect_label_issues(x, labels, **{name: 2.7})
