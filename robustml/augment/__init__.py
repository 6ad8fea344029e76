"""Batch transforms: counterfactual augmentation (change the spurious attribute, keep the label)."""

from robustml.augment.counterfactual import (CounterfactualAugment, counterfactual_dataset,
                                             flip_all, other_attr)
from robustml.augment.rules import (BackgroundSwapRule, ChannelColorRule, CounterfactualRule,
                                    LexiconRule, TabularAttributeRule, substitute_strings)
from robustml.augment.stress import counterfactual_stress_test, render_stress_table

__all__ = [
    "BackgroundSwapRule", "ChannelColorRule", "CounterfactualAugment", "CounterfactualRule",
    "LexiconRule", "TabularAttributeRule", "counterfactual_dataset", "counterfactual_stress_test",
    "flip_all", "other_attr", "render_stress_table", "substitute_strings",
]
