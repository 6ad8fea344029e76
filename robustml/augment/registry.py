"""The counterfactual rules by name, so a dataset declares its rule as data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from robustml.augment.lookup import LexiconRule, PrecomputedRule
from robustml.augment.rules import (BackgroundSwapRule, ChannelColorRule, CounterfactualRule,
                                    TabularAttributeRule)

#: Rules a dataset can declare by data, without importing this package:
#: ``counterfactual={"rule": "channel_color", "num_colors": 2, "check": False}``; a text split
#: with counterfactual inputs declares ``{"rule": "precomputed", "key": "x_cf"}``.
RULES_BY_NAME = {"channel_color": ChannelColorRule, "background_swap": BackgroundSwapRule,
                 "tabular_attribute": TabularAttributeRule, "lexicon": LexiconRule,
                 "precomputed": PrecomputedRule}


def rule_from_spec(spec: Mapping[str, Any]) -> CounterfactualRule:
    """Build the rule a dataset declares as data: ``{"rule": <name>, **constructor arguments}``.

    Args:
        spec: ``"rule"`` names one of :data:`RULES_BY_NAME`; the other keys are passed to its
            constructor.

    Raises:
        ValueError: If ``"rule"`` is missing or names no rule.
        TypeError: If the constructor arguments do not fit the rule.
    """
    name = spec.get("rule")
    if name not in RULES_BY_NAME:
        raise ValueError(f"counterfactual['rule'] must be one of {sorted(RULES_BY_NAME)}, got "
                         f"{name!r}")
    options = {key: value for key, value in spec.items() if key != "rule"}
    try:
        return RULES_BY_NAME[name](**options)
    except TypeError as err:
        raise TypeError(f"counterfactual: {name!r} does not take the arguments "
                        f"{sorted(options)}: {err}") from err

