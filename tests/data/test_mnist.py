"""Plain MNIST splits and the optional synthetic label noise (MNIST, Colored MNIST, any dataset)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

import robustml.data.datasets.colored_mnist as colored_mnist_module
import robustml.data.datasets.mnist as mnist_module
from robustml.cleaning import noise_matrix
from robustml.data.datasets import (colored_digits_splits, colored_mnist_splits, label_noise_of,
                                    mnist_splits, with_label_noise)
from robustml.pipeline.instantiate import build_from
from support import compose_train


def test_with_label_noise_changes_exactly_the_recorded_labels():
    train = colored_digits_splits(seed=0).train
    noisy = with_label_noise(train, 0.3, seed=2)
    changed = np.flatnonzero((noisy.y != train.y).numpy())
    np.testing.assert_array_equal(changed, noisy.noise.corrupted)
    assert 0.2 < changed.size / len(train) < 0.4
    np.testing.assert_array_equal(noisy.noise.labels, noisy.y.numpy())
    np.testing.assert_allclose(noisy.noise.noise_matrix, noise_matrix(num_classes=2, rate=0.3))
    assert noisy.x is train.x and torch.equal(noisy.attr, train.attr)
    assert torch.equal(noisy.group, noisy.y * 2 + noisy.attr)  # groups follow the noisy labels
    assert label_noise_of(train) is None  # the input is left alone
    again = with_label_noise(train, 0.3, seed=2)
    assert torch.equal(again.y, noisy.y)
    clean = with_label_noise(train, 0.0, seed=2)
    assert clean.noise is None and torch.equal(clean.y, train.y)


def test_moving_a_noisy_dataset_keeps_its_noise_record():
    noisy = with_label_noise(colored_digits_splits(seed=0).train, 0.3, seed=2)
    assert noisy.to("cpu") is noisy   # already there
    moved = noisy.to("cpu:0")         # another device spelling takes the copying path
    assert moved is not noisy and moved.noise is noisy.noise
    assert torch.equal(moved.y, noisy.y) and moved.counterfactual is noisy.counterfactual


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(rate=1.0), ValueError, "rate"),
    (dict(rate=0.2, kind="uniform"), ValueError, "kind"),
])
def test_with_label_noise_rejects_bad_options(kwargs, error, match):
    train = colored_digits_splits(seed=0).train
    with pytest.raises(error, match=match):
        with_label_noise(train, **kwargs)


def test_with_label_noise_needs_a_grouped_dataset():
    with pytest.raises(TypeError, match="GroupedTensorDataset"):
        with_label_noise(torch.zeros(3), 0.1)


@functools.cache
def load_raw_mnist(root: str) -> tuple[torch.Tensor, ...]:
    return colored_mnist_module._load_mnist(root, False)


@pytest.fixture
def raw_mnist(mnist_root, monkeypatch):
    """Load MNIST once per test session and serve it to both dataset builders."""
    raw = load_raw_mnist(str(mnist_root))
    monkeypatch.setattr(mnist_module, "_load_mnist", lambda root, download: raw)
    monkeypatch.setattr(colored_mnist_module, "_load_mnist", lambda root, download: raw)
    return mnist_root, raw


def test_mnist_splits_layout_and_train_only_noise(raw_mnist):
    root, (train_images, train_digits, test_images, test_digits) = raw_mnist
    splits = mnist_splits(root, seed=3, label_noise_rate=0.2)
    assert [len(s) for _, s in splits.items()] == [50_000, 10_000, 10_000]
    assert splits.input_shape == (1, 28, 28) and splits.train.x.dtype == torch.float32
    assert splits.num_classes == splits.num_groups == 10
    assert splits.group_names[3] == "y=3,attr=all"
    torch.testing.assert_close(splits.val.x[5, 0], train_images[50_005].float() / 255)
    torch.testing.assert_close(splits.test.x[7, 0], test_images[7].float() / 255)
    assert float(splits.train.x.min()) == 0.0 and float(splits.train.x.max()) == 1.0
    assert torch.equal(splits.val.y, train_digits[50_000:])
    assert torch.equal(splits.test.y, test_digits)
    assert label_noise_of(splits.val) is None and label_noise_of(splits.test) is None
    changed = np.flatnonzero((splits.train.y != train_digits[:50_000]).numpy())
    np.testing.assert_array_equal(changed, splits.train.noise.corrupted)
    assert abs(changed.size / 50_000 - 0.2) < 0.01
    assert torch.equal(splits.train.group, splits.train.y)  # groups are the classes
    assert "rate 0.2" in splits.description


def test_colored_mnist_label_noise_rate_touches_train_labels_only(raw_mnist):
    root, _ = raw_mnist
    clean = colored_mnist_splits(root, seed=1)
    noisy = colored_mnist_splits(root, seed=1, label_noise_rate=0.2)
    assert label_noise_of(clean.train) is None
    assert torch.equal(noisy.train.x, clean.train.x) and torch.equal(noisy.train.attr,
                                                                     clean.train.attr)
    changed = np.flatnonzero((noisy.train.y != clean.train.y).numpy())
    np.testing.assert_array_equal(changed, noisy.train.noise.corrupted)
    for split in ("val", "test"):
        assert torch.equal(getattr(noisy, split).y, getattr(clean, split).y)
    assert "Synthetic label noise" in noisy.description


def test_mnist_config_builds_the_splits(raw_mnist):
    root, _ = raw_mnist
    cfg = compose_train(["data=mnist", f"paths.data_root={root}", "data.label_noise_rate=0.1"])
    splits = build_from(cfg, "data")
    assert splits.train.noise.rate == 0.1 and splits.num_classes == 10
