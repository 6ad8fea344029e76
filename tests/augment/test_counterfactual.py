"""CounterfactualAugment: labels kept, attribute and group changed, replace/paired layouts."""

import pytest
import torch

from robustml.augment import (ChannelColorRule, CounterfactualAugment, TabularAttributeRule,
                              counterfactual_dataset, flip_all, other_attr)
from robustml.data.contract import GroupedTensorDataset


def color_batch(n: int = 8, num_colors: int = 2, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    attr = torch.randint(0, num_colors, (n,), generator=gen)
    y = torch.randint(0, 2, (n,), generator=gen)
    x = torch.zeros(n, num_colors, 2, 2)
    x[torch.arange(n), attr] = torch.rand(n, 2, 2, generator=gen) + 0.1
    return {"x": x, "y": y, "attr": attr, "group": y * num_colors + attr, "index": torch.arange(n),
            "env": torch.randint(0, 3, (n,), generator=gen)}


def test_replace_p0_is_identity():
    batch = color_batch()
    out = CounterfactualAugment(ChannelColorRule(2), num_attrs=2, p=0.0)(batch)
    for key, value in batch.items():
        assert torch.equal(out[key], value), key
    assert out["is_cf"].dtype == torch.bool and not out["is_cf"].any()


def test_replace_p1_flips_every_example_and_recomputes_groups():
    batch = color_batch()
    out = CounterfactualAugment(ChannelColorRule(2), num_attrs=2, p=1.0)(batch)
    assert torch.equal(out["attr"], 1 - batch["attr"])
    assert torch.equal(out["y"], batch["y"])
    assert torch.equal(out["group"], batch["y"] * 2 + 1 - batch["attr"])
    assert torch.equal(out["index"], batch["index"]) and torch.equal(out["env"], batch["env"])
    assert out["is_cf"].all()
    rows = torch.arange(8)
    torch.testing.assert_close(out["x"][rows, out["attr"]], batch["x"][rows, batch["attr"]])
    assert torch.count_nonzero(out["x"][rows, batch["attr"]]) == 0


def test_replace_swaps_each_example_with_probability_p():
    batch = color_batch(n=4000)
    aug = CounterfactualAugment(ChannelColorRule(2), num_attrs=2, p=0.3,
                                generator=torch.Generator().manual_seed(1))
    out = aug(batch)
    swapped = out["is_cf"]
    assert abs(swapped.float().mean().item() - 0.3) < 0.03
    assert torch.equal(out["attr"], torch.where(swapped, 1 - batch["attr"], batch["attr"]))
    assert torch.equal(out["group"], out["y"] * 2 + out["attr"])
    assert torch.equal(out["x"][~swapped], batch["x"][~swapped])
    assert not torch.equal(out["x"][swapped], batch["x"][swapped])
    again = CounterfactualAugment(ChannelColorRule(2), num_attrs=2, p=0.3,
                                  generator=torch.Generator().manual_seed(1))(batch)
    assert torch.equal(again["is_cf"], swapped) and torch.equal(again["x"], out["x"])


def test_paired_layout():
    batch = color_batch(n=5)
    out = CounterfactualAugment(ChannelColorRule(2), num_attrs=2, mode="paired")(batch)
    assert out["x"].shape == (10, 2, 2, 2)
    assert out["pair"].tolist() == [5, 6, 7, 8, 9, 0, 1, 2, 3, 4]
    assert out["pair"].dtype == torch.int64
    assert out["is_cf"].tolist() == [False] * 5 + [True] * 5
    for key in ("y", "index", "env"):
        assert torch.equal(out[key], torch.cat([batch[key], batch[key]])), key
    assert torch.equal(out["attr"], torch.cat([batch["attr"], 1 - batch["attr"]]))
    assert torch.equal(out["group"], out["y"] * 2 + out["attr"])
    assert torch.equal(out["x"][:5], batch["x"])
    i = torch.arange(10)
    assert torch.equal(out["y"][out["pair"]], out["y"])  # partners share the label
    assert torch.equal(out["attr"][out["pair"]], 1 - out["attr"])
    torch.testing.assert_close(out["x"].sum(1)[out["pair"]], out["x"].sum(1))  # same content
    assert torch.equal(out["pair"][out["pair"]], i)


def test_more_than_two_attrs_never_keeps_the_value_and_covers_the_others():
    attr = torch.arange(4).repeat(2500)
    new = other_attr(attr, 4, generator=torch.Generator().manual_seed(0))
    assert not (new == attr).any()
    for a in range(4):
        counts = torch.bincount(new[attr == a], minlength=4).float() / 2500
        assert counts[a] == 0
        others = counts[torch.arange(4) != a]
        assert torch.all((others - 1 / 3).abs() < 0.04), counts
    batch = color_batch(n=64, num_colors=4)
    out = CounterfactualAugment(ChannelColorRule(4), num_attrs=4, p=1.0)(batch)
    assert not (out["attr"] == batch["attr"]).any()
    assert torch.equal(out["group"], batch["y"] * 4 + out["attr"])


def test_tabular_augment_keeps_other_columns():
    x = torch.tensor([[0.3, 1.0, 0.0], [0.7, 0.0, 1.0]])
    batch = {"x": x, "y": torch.tensor([1, 0]), "attr": torch.tensor([0, 1])}
    out = CounterfactualAugment(TabularAttributeRule(slice(1, 3), torch.eye(2)), num_attrs=2,
                                mode="paired")(batch)
    expected = torch.tensor([[0.3, 1.0, 0.0], [0.7, 0.0, 1.0], [0.3, 0.0, 1.0], [0.7, 1.0, 0.0]])
    torch.testing.assert_close(out["x"], expected, rtol=0, atol=0)
    assert out["group"].tolist() == [2, 1, 3, 0]


def test_invalid_configuration_and_batches():
    rule = ChannelColorRule(2)
    with pytest.raises(ValueError, match="mode must be one of"):
        CounterfactualAugment(rule, num_attrs=2, mode="double")
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\], got 1.5"):
        CounterfactualAugment(rule, num_attrs=2, p=1.5)
    with pytest.raises(ValueError, match=r"num_attrs must equal rule.num_attrs \(2\), got 3"):
        CounterfactualAugment(rule, num_attrs=3)
    with pytest.raises(TypeError, match="rule must be"):
        CounterfactualAugment(None, num_attrs=2)
    aug = CounterfactualAugment(rule, num_attrs=2)
    batch = color_batch()
    with pytest.raises(ValueError, match="key 'y'"):
        aug({k: v for k, v in batch.items() if k != "y"})
    with pytest.raises(ValueError, match=r"batch\['index'\] must have leading dimension 8"):
        aug({**batch, "index": torch.arange(3)})
    with pytest.raises(ValueError, match=r"batch\['attr'\] must lie in \[0, 2\)"):
        aug({**batch, "attr": batch["attr"] + 2})


def make_dataset(counterfactual):
    batch = color_batch(n=10)
    return GroupedTensorDataset(batch["x"], batch["y"], batch["attr"], num_classes=2,
                                attr_names=("red", "green"), attr_key="color",
                                counterfactual=counterfactual, name="toy")


def test_counterfactual_dataset_flips_every_example():
    data = make_dataset(ChannelColorRule(2))
    flipped = counterfactual_dataset(data, batch_size=3)
    assert torch.equal(flipped.y, data.y)
    assert torch.equal(flipped.attr, 1 - data.attr)
    assert torch.equal(flipped.group, data.y * 2 + 1 - data.attr)
    assert flipped.group_names == data.group_names
    torch.testing.assert_close(flipped.x.sum(1), data.x.sum(1))
    direct = flip_all(data.full_batch(), data.counterfactual, num_attrs=2)
    assert torch.equal(direct["x"], flipped.x)


def test_dataset_without_rule_raises():
    with pytest.raises(ValueError, match="dataset 'toy' declares no counterfactual rule"):
        counterfactual_dataset(make_dataset(None))
