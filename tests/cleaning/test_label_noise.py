"""Synthetic label noise: the noise matrix, the realized rates and the corrupted indices."""

from __future__ import annotations

import numpy as np
import pytest

from robustml.cleaning import add_label_noise, noise_matrix


def test_noise_matrix_matches_hand_computed_values():
    expected_symmetric = np.array([[0.7, 0.15, 0.15], [0.15, 0.7, 0.15], [0.15, 0.15, 0.7]])
    expected_asymmetric = np.array([[0.7, 0.0, 0.3], [0.3, 0.7, 0.0], [0.0, 0.3, 0.7]])
    np.testing.assert_allclose(noise_matrix(num_classes=3, rate=0.3), expected_symmetric)
    np.testing.assert_allclose(
        noise_matrix(num_classes=3, rate=0.3, kind="asymmetric"), expected_asymmetric
    )


@pytest.mark.parametrize("kind", ["symmetric", "asymmetric"])
@pytest.mark.parametrize("num_classes", [2, 5])
def test_realized_noise_follows_the_matrix(kind, num_classes):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, num_classes, 40_000)
    out = add_label_noise(labels, num_classes=num_classes, rate=0.25, kind=kind, seed=3)
    np.testing.assert_allclose(out.noise_matrix.sum(axis=0), 1.0)
    assert out.labels.dtype == np.int64 and out.labels.shape == labels.shape
    # Empirical P(noisy = i | true = j), column-normalized like the noise matrix.
    counts = np.zeros((num_classes, num_classes))
    np.add.at(counts, (out.labels, labels), 1)
    empirical = counts / counts.sum(axis=0, keepdims=True)
    np.testing.assert_allclose(empirical, out.noise_matrix, atol=0.015)
    assert abs(out.corrupted.size / labels.size - 0.25) < 0.01


def test_corrupted_are_exactly_the_changed_indices():
    labels = np.arange(1000) % 7
    out = add_label_noise(labels, num_classes=7, rate=0.3, seed=1)
    np.testing.assert_array_equal(out.corrupted, np.flatnonzero(out.labels != labels))
    assert out.rate == 0.3 and out.kind == "symmetric"
    assert out.labels.min() >= 0 and out.labels.max() < 7


def test_seed_reproduces_and_rate_zero_changes_nothing():
    labels = np.arange(500) % 3
    first = add_label_noise(labels, num_classes=3, rate=0.2, seed=5)
    again = add_label_noise(labels, num_classes=3, rate=0.2, seed=5)
    other = add_label_noise(labels, num_classes=3, rate=0.2, seed=6)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert not np.array_equal(first.labels, other.labels)
    clean = add_label_noise(labels, num_classes=3, rate=0.0, seed=5)
    np.testing.assert_array_equal(clean.labels, labels)
    assert clean.corrupted.size == 0


def test_asymmetric_maps_to_next_class():
    labels = np.arange(3000) % 4
    out = add_label_noise(labels, num_classes=4, rate=0.5, kind="asymmetric", seed=0)
    changed = out.corrupted
    np.testing.assert_array_equal(out.labels[changed], (labels[changed] + 1) % 4)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rate": 1.0}, ValueError, r"rate must lie in \[0, 1\), got 1.0"),
        ({"rate": -0.1}, ValueError, "rate"),
        ({"rate": float("nan")}, ValueError, "rate"),
        ({"kind": "pairwise"}, ValueError, "kind must be one of"),
        ({"num_classes": 1}, ValueError, "num_classes must be an integer >= 2, got 1"),
        ({"num_classes": 2}, ValueError, r"labels must lie in \[0, 2\).*\[0, 2\]"),
    ],
)
def test_bad_options_raise(kwargs, error, match):
    options = {"num_classes": 3, "rate": 0.2, **kwargs}
    with pytest.raises(error, match=match):
        add_label_noise(np.array([0, 1, 2]), **options)


def test_bad_labels_raise():
    with pytest.raises(TypeError, match="integer"):
        add_label_noise(np.array([0.0, 1.0]), num_classes=2, rate=0.1)
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\), got \(2, 2\)"):
        add_label_noise(np.zeros((2, 2), dtype=int), num_classes=2, rate=0.1)
    with pytest.raises(ValueError, match="labels must lie"):
        add_label_noise(np.array([-1, 0]), num_classes=2, rate=0.1)
