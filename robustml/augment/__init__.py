"""Batch transforms: counterfactual augmentation (change the spurious attribute, keep the label)."""

from robustml.augment.counterfactual import (CounterfactualAugment, counterfactual_dataset,
                                             flip_all, has_counterfactual, other_attr)
from robustml.augment.lexicon import (BUILTIN_LEXICONS, SIDE_A, SIDE_B, Lexicon, lexicon_sides,
                                      load_lexicon, read_lexicon_file, substitute_strings)
from robustml.augment.lookup import LexiconRule, PrecomputedRule
from robustml.augment.registry import RULES_BY_NAME, rule_from_spec
from robustml.augment.rules import (BackgroundSwapRule, ChannelColorRule, CounterfactualRule,
                                    TabularAttributeRule)
from robustml.augment.stress import counterfactual_stress_test, render_stress_table
from robustml.augment.text import attach_text_counterfactuals

__all__ = [
    "BUILTIN_LEXICONS", "RULES_BY_NAME", "SIDE_A", "SIDE_B", "BackgroundSwapRule", "ChannelColorRule",
    "CounterfactualAugment", "CounterfactualRule", "Lexicon", "LexiconRule", "PrecomputedRule",
    "TabularAttributeRule", "attach_text_counterfactuals", "counterfactual_dataset",
    "counterfactual_stress_test", "flip_all", "has_counterfactual", "lexicon_sides", "load_lexicon",
    "other_attr", "read_lexicon_file", "render_stress_table", "rule_from_spec", "substitute_strings",
]
