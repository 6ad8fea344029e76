"""Per-example ``extras`` and dataset-level ``info`` travel with every derived dataset and batch."""

import numpy as np
import pytest
import torch

from robustml.data.contract import GroupedTensorDataset
from robustml.features.splits import as_feature_dataset


def make(n=6):
    x = torch.arange(n * 2, dtype=torch.float32).reshape(n, 2)
    y = torch.tensor([0, 1] * (n // 2))
    return GroupedTensorDataset(
        x, y, torch.zeros(n, dtype=torch.int64), num_classes=2, attr_names=("a",), name="d",
        extras={"x_cf": -x, "identity": torch.arange(n * 3).reshape(n, 3) % 2 == 0},
        info={"tokenizer": "tok", "input_extras": ("x_cf",)})


def test_extras_follow_subset_replace_and_batches():
    ds = make()
    idx = torch.tensor([4, 1])
    sub = ds.subset(idx)
    assert torch.equal(sub.extras["x_cf"], -ds.x[idx])
    assert torch.equal(sub.extras["identity"], ds.extras["identity"][idx])
    assert sub.info["tokenizer"] == "tok"
    batch = ds.get_batch(idx)
    assert torch.equal(batch["x_cf"], -batch["x"])
    assert torch.equal(ds[3]["identity"], ds.extras["identity"][3])
    assert ds.replace(y=1 - ds.y).extras["x_cf"] is ds.extras["x_cf"]
    assert torch.equal(ds.to("cpu").full_batch()["x_cf"], -ds.x)


def test_feature_dataset_keeps_example_extras_and_drops_input_extras():
    ds = make()
    feats = as_feature_dataset(ds, np.ones((len(ds), 4)))
    assert set(feats.extras) == {"identity"}
    assert feats.info["tokenizer"] == "tok"


@pytest.mark.parametrize("extras, message", [
    ({"y": torch.zeros(6)}, "built-in field"),
    ({"z": torch.zeros(5)}, r"shape \(6, \.\.\.\)"),
])
def test_bad_extras_name_the_key(extras, message):
    with pytest.raises(ValueError, match=message):
        GroupedTensorDataset(torch.zeros(6, 2), torch.zeros(6, dtype=torch.int64),
                             torch.zeros(6, dtype=torch.int64), num_classes=1, attr_names=("a",),
                             extras=extras)
