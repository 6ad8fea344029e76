"""The feature cache: same features as a direct forward pass, reused on later calls, keyed right."""

import logging

import numpy as np
import pytest
import torch

from robustml.data import GroupedTensorDataset
from robustml.data.datasets import image_csv_splits
from robustml.data.datasets.example_files import write_image_csv
from robustml.features import cached_features, feature_key
from robustml.cli.features import extract
from robustml.models import MLP, SmallCNN


def _data(n=10):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (n,), generator=g)
    return GroupedTensorDataset(torch.randn(n, 6, generator=g), y, y.clone(), num_classes=2,
                                attr_names=("a", "b"), name="toy")


def test_features_equal_the_models_penultimate_layer_and_are_reused(tmp_path, caplog, monkeypatch):
    data, model = _data(), MLP((6,), 1, hidden_dims=(5, 3))
    caplog.set_level(logging.INFO, logger="robustml.features")
    first = cached_features(model, data, tmp_path, batch_size=4, progress=False)
    assert isinstance(first, np.memmap) and first.shape == (10, 3) and first.dtype == np.float32
    with torch.no_grad():
        np.testing.assert_allclose(first, model.features(data.x).numpy(), rtol=1e-6)
    assert "extracted 10 x 3" in caplog.text

    def no_forward(x):
        raise AssertionError("the cache should have been reused")

    monkeypatch.setattr(model, "features", no_forward)
    again = cached_features(model, data, tmp_path, progress=False)
    np.testing.assert_array_equal(again, first)
    assert "reusing" in caplog.text


def test_the_key_changes_with_weights_data_and_transform(tmp_path):
    data, model = _data(), MLP((6,), 1, hidden_dims=(4,))
    key = feature_key(model, data)
    other_data = data.replace(x=data.x + 1)
    assert feature_key(model, other_data) != key
    with torch.no_grad():
        model.body[1].weight[0, 0] += 1
    assert feature_key(model, data) != key
    csv = write_image_csv(tmp_path, per_group=4, split_column=True)
    small, large = image_csv_splits(csv, image_size=8), image_csv_splits(csv, image_size=12)
    cnn = SmallCNN((3, 8, 8), 1, channels=(2, 2, 2))
    assert feature_key(cnn, small.train) != feature_key(cnn, large.train)
    assert feature_key(cnn, small.train) != feature_key(cnn, small.val)


def test_the_key_ignores_the_head_that_features_do_not_use():
    data, model = _data(), MLP((6,), 1, hidden_dims=(4,))
    other = MLP((6,), 1, hidden_dims=(4,))
    other.body.load_state_dict(model.body.state_dict())
    assert not torch.equal(other.head.weight, model.head.weight)
    assert feature_key(other, data) == feature_key(model, data)
    with torch.no_grad():
        other.body[1].bias += 1
    assert feature_key(other, data) != feature_key(model, data)


def test_on_disk_features_use_the_evaluation_transform(tmp_path):
    csv = write_image_csv(tmp_path, per_group=4, split_column=True, size=(20, 20))
    train = image_csv_splits(csv, image_size=12, augment=True).train
    model = SmallCNN((3, 12, 12), 1, channels=(3, 3, 3))
    feats = cached_features(model, train, tmp_path / "cache", batch_size=5, progress=False)
    evaluated = train.for_eval()
    with torch.no_grad():
        direct = model.features(torch.stack([evaluated[i]["x"] for i in range(len(train))]))
    np.testing.assert_allclose(feats, direct.numpy(), rtol=1e-5, atol=1e-6)


def test_an_interrupted_extraction_leaves_no_cache_entry(tmp_path, monkeypatch):
    data, model = _data(), MLP((6,), 1, hidden_dims=(3,))
    calls = []
    forward = model.features

    def failing(x):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return forward(x)

    monkeypatch.setattr(model, "features", failing)
    with pytest.raises(KeyboardInterrupt):
        cached_features(model, data, tmp_path, batch_size=4, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_console_script_fills_then_reuses_the_cache(tmp_path, caplog):
    csv = write_image_csv(tmp_path / "images", per_group=4, split_column=True)
    args = ["--cache-dir", str(tmp_path / "cache"), "data=image_csv", f"data.csv={csv}",
            "data.image_size=8", "model=cnn", "model.channels=[2,2,3]"]
    caplog.set_level(logging.INFO, logger="robustml.features")
    assert extract(args) == {"train": (8, 3), "val": (4, 3), "test": (4, 3)}
    assert caplog.text.count("extracted") == 3
    extract(args)
    assert caplog.text.count("reusing") == 3


def test_feature_dataset_keeps_the_metadata_of_an_on_disk_split(tmp_path):
    from robustml.features import feature_dataset

    csv = write_image_csv(tmp_path, per_group=4, split_column=True)
    train = image_csv_splits(csv, image_size=8).train
    model = SmallCNN((3, 8, 8), 1, channels=(2, 2, 3))
    feats = feature_dataset(model, train, tmp_path / "cache", progress=False)
    assert feats.in_memory and feats.x.shape == (len(train), 3)
    assert feats.group_names == train.group_names
    assert torch.equal(feats.group, train.group) and torch.equal(feats.y, train.y)
    np.testing.assert_array_equal(feats.x.numpy(), cached_features(model, train, tmp_path / "cache"))
