"""The cross-fitted fast path: no probability comes from a parameter fitted with its own label."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import robustml.cleaning.crossfit as crossfit_module
import robustml.cleaning.features as features_module
from robustml.cleaning import (CrossFitNetwork, FitSettings, LinearHeads, add_label_noise,
                               cross_fit_probs, find_label_issues, linear_head_oof_probs)
from robustml.cleaning.networks import extract_features, fresh_model, train_classifier
from robustml.models import MLP

ID_SCALE = 1000.0  # column 0 of x holds row / ID_SCALE, so every tensor a model sees names its rows


def rows_of(x: torch.Tensor) -> np.ndarray:
    return np.rint(x[:, 0].double().numpy() * ID_SCALE).astype(np.int64)


def blobs(n=600, dim=10, num_classes=3, rate=0.2, seed=0, spread=3.0):
    """``n`` rows of ``num_classes`` Gaussian blobs with symmetric noise; column 0 is the row id."""
    generator = torch.Generator().manual_seed(seed)
    true = torch.arange(n) % num_classes
    centers = spread * torch.randn(num_classes, dim, generator=generator)
    x = centers[true] + torch.randn(n, dim, generator=generator)
    x[:, 0] = torch.arange(n) / ID_SCALE
    noisy = add_label_noise(true.numpy(), num_classes=num_classes, rate=rate, seed=seed + 1)
    corrupted = np.zeros(n, dtype=bool)
    corrupted[noisy.corrupted] = True
    return x, noisy.labels, corrupted


def test_no_fitted_component_saw_the_example_it_scores(monkeypatch):
    x, labels, _ = blobs(n=300)
    trained, extracted, heads = {}, {}, []
    real_train, real_extract = crossfit_module.train_classifier, crossfit_module.extract_features
    real_heads, real_oof = crossfit_module.linear_head_oof_probs, features_module.out_of_fold_probs

    def record_train(model, xs, ys, *, settings):
        trained[id(model)] = rows_of(xs)
        np.testing.assert_array_equal(ys.numpy(), labels[rows_of(xs)])
        return real_train(model, xs, ys, settings=settings)

    def record_extract(model, xs):
        features = real_extract(model, xs)
        extracted[id(features)] = (id(model), rows_of(xs))
        return features

    def record_heads(features, part_labels, **kwargs):
        model_id, part = extracted[id(features)]
        np.testing.assert_array_equal(part_labels, labels[part])
        folds = []

        def record_oof(fold_labels, fit_predict, **options):
            def wrapped(train_idx, eval_idx):
                folds.append((train_idx, eval_idx, fit_predict(train_idx, eval_idx)))
                return folds[-1][2]
            return real_oof(fold_labels, wrapped, **options)

        monkeypatch.setattr(features_module, "out_of_fold_probs", record_oof)
        out = real_heads(features, part_labels, **kwargs)
        monkeypatch.setattr(features_module, "out_of_fold_probs", real_oof)
        heads.append((model_id, part, folds))
        return out

    monkeypatch.setattr(crossfit_module, "train_classifier", record_train)
    monkeypatch.setattr(crossfit_module, "extract_features", record_extract)
    monkeypatch.setattr(crossfit_module, "linear_head_oof_probs", record_heads)
    method = CrossFitNetwork(fit=FitSettings(min_steps=20, epochs=0, batch_size=None))
    probs = cross_fit_probs(x, labels, num_classes=3, method=method, num_folds=5)

    assert len(trained) == 2 and len(heads) == 2
    scored = np.concatenate([part for _, part, _ in heads])
    np.testing.assert_array_equal(np.sort(scored), np.arange(300))  # every row scored once
    for model_id, part, folds in heads:
        network_rows = trained[model_id]
        assert np.intersect1d(network_rows, part).size == 0  # the network never saw the part
        assert len(folds) == 5
        for train_idx, eval_idx, fold_probs in folds:
            assert np.intersect1d(train_idx, eval_idx).size == 0  # nor did the head
            head_rows, scored_rows = part[train_idx], part[eval_idx]
            # Every label that entered a parameter behind these probabilities, and the rows scored:
            seen = np.union1d(network_rows, head_rows)
            assert np.intersect1d(seen, scored_rows).size == 0
            np.testing.assert_array_equal(probs[scored_rows], fold_probs)


def test_memorizing_feature_network_still_finds_the_errors():
    """The issue's case: 3 classes, 600 rows, 20% noise, networks trained to memorization."""
    x, labels, corrupted = blobs()
    fit = FitSettings(epochs=0, min_steps=800, batch_size=None, lr=0.01)
    method = CrossFitNetwork(build_model=lambda shape, out: MLP(shape, out, hidden_dims=(64,)),
                             fit=fit)
    probs = cross_fit_probs(x, labels, num_classes=3, method=method)
    recall = (find_label_issues(labels, probs).is_issue & corrupted).sum() / corrupted.sum()
    assert recall >= 0.9, recall

    # The same network trained on every label memorizes them (the defect this path removes):
    model = fresh_model(lambda: MLP((10,), 3, hidden_dims=(64,)), seed=0,
                        device=torch.device("cpu"))
    train_classifier(model, x, torch.as_tensor(labels), settings=fit)
    with torch.no_grad():
        assert (model(x).argmax(1).numpy() == labels).mean() >= 0.99  # noisy labels memorized
    in_sample = linear_head_oof_probs(extract_features(model, x), labels, progress=False)
    leaked = (find_label_issues(labels, in_sample).is_issue & corrupted).sum() / corrupted.sum()
    assert leaked < 0.5, leaked


def test_a_network_without_features_is_refused_before_training(monkeypatch):
    x, labels, _ = blobs(n=100)
    monkeypatch.setattr(crossfit_module, "train_classifier",
                        lambda *a, **k: pytest.fail("trained a network it cannot use"))
    method = CrossFitNetwork(build_model=lambda shape, out: torch.nn.Linear(shape[0], out))
    with pytest.raises(TypeError, match=r"model: .*needs a network with \.features\(x\).*Linear"):
        cross_fit_probs(x, labels, num_classes=3, method=method)


def test_too_few_examples_per_part_and_fold_is_named():
    x, labels, _ = blobs(n=100)
    labels = labels.copy()
    labels[:6] = 0
    labels[labels == 2] = 0
    labels[[0, 1, 2, 3, 4, 5, 6, 7, 8]] = 2  # class 2: 9 examples < 2 parts x 5 folds
    with pytest.raises(ValueError, match=r"labels: .*num_parts x num_folds = 2 x 5 = 10.*\(2, 9\)"):
        cross_fit_probs(x, labels, num_classes=3, method=CrossFitNetwork())
    with pytest.raises(ValueError, match="num_parts must be an integer >= 2"):
        CrossFitNetwork(num_parts=1)
    with pytest.raises(ValueError, match="max_iter"):
        LinearHeads(max_iter=0)
