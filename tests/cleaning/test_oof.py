"""Out-of-fold probabilities: the held-out guarantee, input checks and the cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustml.cleaning import (
    cached_probs,
    hash_key,
    out_of_fold_probs,
    stratified_folds,
)


class RecordingFitPredict:
    """Remember every call and return one-hot rows that encode the evaluated index."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.calls: list[tuple[np.ndarray, np.ndarray]] = []

    def __call__(self, train_idx, eval_idx):
        self.calls.append((train_idx.copy(), eval_idx.copy()))
        return np.eye(self.num_classes)[eval_idx % self.num_classes]


def test_every_row_is_predicted_once_by_a_model_that_did_not_see_it():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    fit_predict = RecordingFitPredict(num_classes=3)
    probs = out_of_fold_probs(labels, fit_predict, num_folds=5, progress=False)
    assert len(fit_predict.calls) == 5
    seen = np.concatenate([held for _, held in fit_predict.calls])
    np.testing.assert_array_equal(np.sort(seen), np.arange(100))  # each row exactly once
    for train, held in fit_predict.calls:
        assert np.intersect1d(train, held).size == 0
        np.testing.assert_array_equal(np.union1d(train, held), np.arange(100))
        # Stratified: each held-out fold holds 1/5 of every class.
        np.testing.assert_array_equal(np.bincount(labels[held], minlength=3), [10, 6, 4])
    # Rows land where they belong: row i was predicted as class i % 3.
    np.testing.assert_array_equal(probs.argmax(axis=1), np.arange(100) % 3)
    assert probs.dtype == np.float64 and probs.shape == (100, 3)


def test_folds_depend_on_seed_only():
    labels = np.arange(60) % 2
    first = stratified_folds(labels, num_folds=3, seed=0)
    again = stratified_folds(labels, num_folds=3, seed=0)
    other = stratified_folds(labels, num_folds=3, seed=1)
    for (a, b), (c, d) in zip(first, again):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(first, other))


def test_tensor_output_and_explicit_num_classes():
    labels = np.arange(40) % 2  # class 2 absent but the model predicts 3 classes

    def fit_predict(train_idx, eval_idx):
        return torch.full((len(eval_idx), 3), 1.0 / 3, dtype=torch.float32)

    probs = out_of_fold_probs(labels, fit_predict, num_folds=4, num_classes=3, progress=False)
    np.testing.assert_allclose(probs, 1.0 / 3, rtol=1e-6)


def test_class_with_fewer_examples_than_folds_raises():
    labels = np.array([0] * 20 + [1] * 20 + [2] * 3)
    match = r"class 2 has 3 examples, fewer than num_folds=5.*lower num_folds.*drop"
    with pytest.raises(ValueError, match=match):
        out_of_fold_probs(labels, RecordingFitPredict(3), num_folds=5, progress=False)


def test_empty_labels_raise():
    with pytest.raises(ValueError, match="empty"):
        out_of_fold_probs(np.array([], dtype=int), RecordingFitPredict(2), progress=False)


@pytest.mark.parametrize(("num_folds", "error"), [(1, ValueError), (0, ValueError), (2.5, TypeError),
                                                  (True, TypeError)])
def test_bad_num_folds_raises(num_folds, error):
    with pytest.raises(error, match="num_folds must be an integer >= 2"):
        stratified_folds(np.arange(20) % 2, num_folds=num_folds)


def test_bad_fit_predict_output_raises():
    labels = np.arange(20) % 2
    match = r"shape \(len\(eval_idx\), num_classes\) = \(10, 2\) for fold 0, got shape \(10, 3\)"
    with pytest.raises(ValueError, match=match):
        out_of_fold_probs(labels, lambda tr, ev: np.full((len(ev), 3), 1 / 3), num_folds=2,
                          progress=False)
    with pytest.raises(ValueError, match="fold 0.*sum to 1.*softmax"):
        out_of_fold_probs(labels, lambda tr, ev: np.ones((len(ev), 2)), num_folds=2, progress=False)


def test_hash_key_separates_parts_and_types():
    labels = np.array([0, 1, 1], dtype=np.int64)
    assert hash_key("ab", "c") != hash_key("a", "bc")
    assert hash_key({"a": 1, "b": 2}) == hash_key({"b": 2, "a": 1})
    assert hash_key(labels) != hash_key(labels.astype(np.int32))
    assert hash_key(labels) != hash_key(np.array([0, 1, 0]))
    assert hash_key(labels) == hash_key(torch.tensor([0, 1, 1]))
    assert hash_key(b"\x00") != hash_key("\x00")
    assert len(hash_key("x")) == 64
    assert hash_key({"folds": np.int64(5)}) == hash_key({"folds": 5})
    with pytest.raises(TypeError, match="JSON-serializable, got object"):
        hash_key(object())
    with pytest.raises(TypeError, match="object arrays"):
        hash_key(np.array(["a", None], dtype=object))


def cached(labels, fit_predict, tmp_path, key="k", seed=0):
    """Out-of-fold probabilities through the cache, with the folds' options in the key."""
    return cached_probs(
        labels,
        lambda: out_of_fold_probs(labels, fit_predict, num_folds=3, seed=seed, progress=False),
        cache_dir=tmp_path, key=hash_key(key, {"num_folds": 3, "seed": seed}))


def test_cache_hits_only_for_the_same_labels_and_key(tmp_path):
    labels = np.arange(30) % 3
    fit_predict = RecordingFitPredict(3)
    first = cached(labels, fit_predict, tmp_path)
    assert len(fit_predict.calls) == 3 and len(list(tmp_path.glob("*.npy"))) == 1
    again = cached(labels, fit_predict, tmp_path)
    assert len(fit_predict.calls) == 3  # served from disk
    np.testing.assert_array_equal(first, again)

    flipped = labels.copy()
    flipped[0] = 1
    cached(flipped, fit_predict, tmp_path)
    assert len(fit_predict.calls) == 6  # different labels never hit the cache
    cached(labels, fit_predict, tmp_path, key="other")
    cached(labels, fit_predict, tmp_path, seed=1)
    assert len(fit_predict.calls) == 12
    assert len(list(tmp_path.glob("*.npy"))) == 4
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(TypeError, match="key must be a non-empty str"):
        cached_probs(labels, lambda: first, cache_dir=tmp_path, key="")


def test_corrupt_cache_file_raises(tmp_path):
    labels = np.arange(30) % 3
    cached(labels, RecordingFitPredict(3), tmp_path)
    (path,) = tmp_path.glob("*.npy")
    np.save(path, np.ones((30, 3)))
    with pytest.raises(ValueError, match="cached probabilities.*invalid.*delete the file"):
        cached(labels, RecordingFitPredict(3), tmp_path)
