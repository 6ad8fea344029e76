"""Counterfactual stress test on hand-made predictors with hand-checked per-group numbers."""

import pytest
import torch

from robustml.augment import ChannelColorRule, counterfactual_stress_test, render_stress_table
from robustml.data.contract import GroupedTensorDataset

# Group sizes (y, color): (0, red)=3, (0, green)=1, (1, red)=2, (1, green)=4.
Y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
ATTR = torch.tensor([0, 0, 0, 1, 0, 0, 1, 1, 1, 1])


def make_dataset(y=Y, attr=ATTR, counterfactual=ChannelColorRule(2)):
    # Shape: class 0 lights pixel (0, 0), class 1 pixel (1, 1); color: the channel that holds it.
    x = torch.zeros(len(y), 2, 2, 2)
    x[torch.arange(len(y)), attr, y, y] = 1.0
    return GroupedTensorDataset(x, y, attr, num_classes=2, attr_names=("red", "green"),
                                attr_key="color", counterfactual=counterfactual, name="toy")


def from_color(x):
    return (x[:, 1].sum(dim=(1, 2)) > 0).long()


def from_shape(x):
    return (x[:, :, 1, 1].sum(dim=1) > 0).long()


def test_color_predictor_flips_every_prediction():
    m = counterfactual_stress_test(from_color, make_dataset(), batch_size=3)
    assert m["cf_flip_rate"] == 1.0
    # predicts attr: right on (0, red) and (1, green) originals, wrong on their counterfactuals
    assert m["cf_orig_acc_avg"] == pytest.approx(7 / 10)
    assert m["cf_acc_avg"] == pytest.approx(3 / 10)
    expected_cf = {0: 0.0, 1: 1.0, 2: 1.0, 3: 0.0}
    for g, count in enumerate([3, 1, 2, 4]):
        assert m[f"cf_count_group_{g}"] == count
        assert m[f"cf_flip_rate_group_{g}"] == 1.0
        assert m[f"cf_acc_group_{g}"] == expected_cf[g]
        assert m[f"cf_orig_acc_group_{g}"] == 1.0 - expected_cf[g]
    assert m["cf_acc_worst_group"] == 0.0 and m["cf_orig_acc_worst_group"] == 0.0


def test_shape_predictor_is_invariant():
    m = counterfactual_stress_test(from_shape, make_dataset())
    assert m["cf_flip_rate"] == 0.0
    assert m["cf_acc_avg"] == m["cf_orig_acc_avg"] == m["cf_acc_worst_group"] == 1.0
    assert all(m[f"cf_flip_rate_group_{g}"] == 0.0 for g in range(4))


def test_mixed_predictor_and_empty_group():
    # Drop group (0, green); predictor: shape, except it says 1 whenever the green channel is lit.
    keep = torch.tensor([0, 1, 2, 4, 5, 6, 7, 8, 9])
    data = make_dataset(Y[keep], ATTR[keep])

    def predict(x):
        return from_shape(x) | from_color(x)

    m = counterfactual_stress_test(predict, data)
    # (0, red) x3: orig 0 correct; cf green -> 1 wrong, flips. (1, *): always 1, no flips.
    assert m["cf_count_group_1"] == 0 and "cf_acc_group_1" not in m
    assert m["cf_flip_rate_group_0"] == 1.0 and m["cf_acc_group_0"] == 0.0
    assert m["cf_flip_rate_group_2"] == 0.0 and m["cf_acc_group_3"] == 1.0
    assert m["cf_flip_rate"] == pytest.approx(3 / 9)
    assert m["cf_acc_avg"] == pytest.approx(6 / 9)
    assert m["cf_acc_worst_group"] == 0.0 and m["cf_orig_acc_worst_group"] == 1.0
    table = render_stress_table(m, data.group_names)
    lines = table.splitlines()
    assert lines[0] == "| group | count | acc original (%) | acc counterfactual (%) | flip rate (%) |"
    assert lines[2] == "| y=0,color=red | 3 | 100.0 | 0.0 | 100.0 |"
    assert lines[3] == "| y=0,color=green | 0 | - | - | - |"
    assert lines[6] == "| all | 9 | 100.0 | 66.7 | 33.3 |"
    assert lines[7] == "| worst group | | 100.0 | 0.0 | |"


def test_errors():
    with pytest.raises(ValueError, match="dataset 'toy' declares no counterfactual rule"):
        counterfactual_stress_test(from_shape, make_dataset(counterfactual=None))
    with pytest.raises(ValueError, match=r"predict_fn must return integer class ids of shape \(10,\)"):
        counterfactual_stress_test(lambda x: x.sum(dim=(1, 2, 3)), make_dataset())
    with pytest.raises(ValueError, match="batch_size"):
        counterfactual_stress_test(from_shape, make_dataset(), batch_size=0)
    with pytest.raises(ValueError, match="missing keys"):
        render_stress_table({"cf_flip_rate": 0.0}, ["a", "b"])
