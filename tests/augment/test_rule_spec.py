"""Rules declared as data by a dataset (the data package imports nothing of augment)."""

from __future__ import annotations

import pytest
import torch

from robustml.augment import ChannelColorRule
from robustml.augment.counterfactual import dataset_rule
from robustml.augment.registry import RULES_BY_NAME, rule_from_spec
from robustml.data.datasets.colored import COUNTERFACTUAL
from robustml.data.datasets.colored_digits import colored_digits_splits


def test_colored_datasets_declare_the_channel_swap_as_data():
    splits = colored_digits_splits(seed=0)
    assert splits.train.counterfactual == COUNTERFACTUAL == {"rule": "channel_color",
                                                             "num_colors": 2, "check": False}
    rule = dataset_rule(splits.test)
    assert isinstance(rule, ChannelColorRule) and rule.num_attrs == 2 and rule.check is False
    batch = splits.test.get_batch(torch.arange(8))
    direct = ChannelColorRule(2)(batch, 1 - batch["attr"])       # the checked rule agrees
    assert torch.equal(rule(batch, 1 - batch["attr"]), direct)


def test_rule_objects_pass_through_and_bad_specs_are_named():
    class WithRule:
        counterfactual = ChannelColorRule(3)
        name = "toy"

    assert dataset_rule(WithRule()) is WithRule.counterfactual
    with pytest.raises(ValueError, match=r"counterfactual\['rule'\] must be one of .*, got 'paint'"):
        rule_from_spec({"rule": "paint"})
    with pytest.raises(TypeError, match="'channel_color' does not take the arguments"):
        rule_from_spec({"rule": "channel_color", "colours": 2})
    assert set(RULES_BY_NAME) == {"channel_color", "background_swap", "tabular_attribute",
                                  "lexicon", "precomputed"}
