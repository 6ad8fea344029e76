"""Counterfactual rules: the attribute changes, everything else is kept, bad input raises."""

import pytest
import torch

from robustml.augment import (BackgroundSwapRule, ChannelColorRule, CounterfactualRule, LexiconRule,
                              TabularAttributeRule)


def colored(attr: torch.Tensor, num_colors: int = 2, seed: int = 0) -> torch.Tensor:
    content = torch.rand(len(attr), 3, 3, generator=torch.Generator().manual_seed(seed)) + 0.1
    x = torch.zeros(len(attr), num_colors, 3, 3)
    x[torch.arange(len(attr)), attr] = content
    return x


@pytest.mark.parametrize("rule", [ChannelColorRule(2), BackgroundSwapRule(), LexiconRule([(1, 2)]),
                                  TabularAttributeRule([0], torch.tensor([[0.0], [1.0]]))])
def test_every_rule_follows_the_protocol(rule):
    assert isinstance(rule, CounterfactualRule)
    assert rule.num_attrs == 2


# ChannelColorRule ----------------------------------------------------------------------------
def test_color_moves_content_to_the_new_channel():
    attr = torch.tensor([0, 1, 0, 1])
    x = colored(attr)
    new = 1 - attr
    x_cf = ChannelColorRule(2)({"x": x, "attr": attr}, new)
    for i in range(4):
        torch.testing.assert_close(x_cf[i, new[i]], x[i, attr[i]], rtol=0, atol=0)
        assert torch.count_nonzero(x_cf[i, attr[i]]) == 0
    assert x_cf.dtype == x.dtype and x_cf.shape == x.shape


def test_color_three_channels_and_identity_rows():
    attr = torch.tensor([0, 1, 2])
    x = colored(attr, num_colors=3)
    x_cf = ChannelColorRule(3)({"x": x, "attr": attr}, torch.tensor([2, 1, 0]))
    torch.testing.assert_close(x_cf[1], x[1], rtol=0, atol=0)  # new_attr == attr: unchanged
    torch.testing.assert_close(x_cf[0, 2], x[0, 0], rtol=0, atol=0)
    torch.testing.assert_close(x_cf[2, 0], x[2, 2], rtol=0, atol=0)


def test_color_equals_the_sum_and_one_hot_definition_for_random_attributes():
    # Independent reference: the content (channel sum) written into channel new_attr.
    g = torch.Generator().manual_seed(3)
    attr = torch.randint(0, 4, (64,), generator=g)
    new = torch.randint(0, 4, (64,), generator=g)
    x = colored(attr, num_colors=4, seed=1)
    reference = x.sum(1, keepdim=True) * torch.nn.functional.one_hot(new, 4)[:, :, None, None]
    for check in (True, False):
        out = ChannelColorRule(4, check=check)({"x": x, "attr": attr}, new)
        assert torch.equal(out, reference.to(x.dtype))


def test_color_check_off_skips_only_the_content_check():
    attr = torch.tensor([0, 1])
    x = colored(attr)
    x[0, 1, 0, 0] = 1.0   # content outside channel attr: accepted without the check
    ChannelColorRule(2, check=False)({"x": x, "attr": attr}, 1 - attr)
    with pytest.raises(ValueError, match="new_attr must lie"):
        ChannelColorRule(2, check=False)({"x": x, "attr": attr}, torch.tensor([2, 0]))


def test_color_uint8_keeps_dtype():
    attr = torch.tensor([0, 1])
    x = (colored(attr) * 200).to(torch.uint8)
    x_cf = ChannelColorRule(2)({"x": x, "attr": attr}, 1 - attr)
    assert x_cf.dtype == torch.uint8
    assert torch.equal(x_cf[0, 1], x[0, 0]) and torch.equal(x_cf[1, 0], x[1, 1])


def test_color_rejects_content_outside_attr_channel_and_wrong_channels():
    attr = torch.tensor([0, 1])
    x = colored(attr)
    x[0, 1, 0, 0] = 1.0
    with pytest.raises(ValueError, match="only in channel attr"):
        ChannelColorRule(2)({"x": x, "attr": attr}, 1 - attr)
    with pytest.raises(ValueError, match=r"\(B, 3, ...\)"):
        ChannelColorRule(3)({"x": colored(attr), "attr": attr}, 1 - attr)
    with pytest.raises(ValueError, match="new_attr must lie"):
        ChannelColorRule(2)({"x": colored(attr), "attr": attr}, torch.tensor([2, 0]))
    with pytest.raises(ValueError, match="num_colors"):
        ChannelColorRule(1)


# BackgroundSwapRule --------------------------------------------------------------------------
def test_background_in_batch_donor_hand_computed():
    # One image per attribute value, so each example's donor is the other one.
    x = torch.stack([torch.full((1, 2, 2), 1.0), torch.full((1, 2, 2), 5.0)])
    mask = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.5, 1.0]]])  # (B, H, W)
    attr = torch.tensor([0, 1])
    x_cf = BackgroundSwapRule()({"x": x, "attr": attr, "mask": mask}, 1 - attr)
    expected = torch.tensor([[[[1.0, 5.0], [5.0, 5.0]]], [[[1.0, 1.0], [3.0, 5.0]]]])
    torch.testing.assert_close(x_cf, expected)


def test_every_rule_returns_rows_whose_attribute_stays_exactly_as_they_were():
    # CounterfactualAugment's replace mode relies on this instead of a second select pass.
    attr = torch.tensor([0, 1, 0, 1])
    new = torch.tensor([1, 1, 0, 0])
    keep = new == attr
    cases = [
        (ChannelColorRule(2), {"x": colored(attr)}),
        (BackgroundSwapRule(), {"x": torch.rand(4, 1, 2, 2), "mask": torch.full((4, 2, 2), 0.5)}),
        (TabularAttributeRule([0], torch.tensor([[-0.8165], [1.2247]])),
         {"x": torch.cat([torch.tensor([[-0.81650001], [1.2247], [-0.8165], [1.22470003]]),
                          torch.rand(4, 2)], dim=1)}),
        (LexiconRule([(1, 2)]), {"x": torch.tensor([[1, 2, 3]] * 4)}),
    ]
    for rule, batch in cases:
        out = rule({**batch, "attr": attr}, new)
        assert torch.equal(out[keep], batch["x"][keep]), type(rule).__name__
        assert not torch.equal(out[~keep], batch["x"][~keep]), type(rule).__name__


def test_background_bank_draws_donors_of_the_new_attr():
    bank = torch.tensor([10.0, 11.0, 20.0, 21.0, 22.0]).reshape(5, 1, 1, 1).expand(5, 2, 3, 3).clone()
    bank_attrs = torch.tensor([0, 0, 1, 1, 1])
    x = torch.rand(64, 2, 3, 3)
    mask = (torch.rand(64, 1, 3, 3) > 0.5).float()
    attr = torch.randint(0, 2, (64,))
    rule = BackgroundSwapRule(backgrounds=bank, background_attrs=bank_attrs,
                              generator=torch.Generator().manual_seed(0))
    x_cf = rule({"x": x, "attr": attr, "mask": mask}, 1 - attr)
    torch.testing.assert_close(x_cf * mask, x * mask)  # foreground kept
    background = (x_cf * (1 - mask)).amax(dim=(1, 2, 3))
    for i in range(64):
        if mask[i].min() == 0:  # some background visible
            allowed = {10.0, 11.0} if attr[i] == 1 else {20.0, 21.0, 22.0}
            assert float(background[i]) in allowed
    # every candidate of each attribute value gets drawn: the donor is random, not the first match
    assert set((x_cf * (1 - mask)).amax(dim=(1, 2, 3)).tolist()) >= {10.0, 11.0, 20.0, 21.0, 22.0}
    again = BackgroundSwapRule(backgrounds=bank, background_attrs=bank_attrs,
                               generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again({"x": x, "attr": attr, "mask": mask}, 1 - attr), x_cf)


def test_background_errors():
    x, attr = torch.rand(2, 3, 4, 4), torch.tensor([0, 0])
    good = torch.ones(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"no donor background with attr in \[1\] in the batch"):
        BackgroundSwapRule()({"x": x, "attr": attr, "mask": good}, 1 - attr)
    with pytest.raises(ValueError, match=r"mask.*\(2, 1, 4, 4\).*got \(2, 3, 4, 4\)"):
        BackgroundSwapRule()({"x": x, "attr": attr, "mask": torch.ones(2, 3, 4, 4)}, attr)
    with pytest.raises(ValueError, match=r"mask.*\[0, 1\]"):
        BackgroundSwapRule()({"x": x, "attr": attr, "mask": good * 2}, attr)
    with pytest.raises(ValueError, match="batch\\['mask'\\]"):
        BackgroundSwapRule()({"x": x, "attr": attr}, attr)
    with pytest.raises(ValueError, match="given together"):
        BackgroundSwapRule(backgrounds=torch.rand(2, 3, 4, 4))
    bank = BackgroundSwapRule(backgrounds=torch.rand(2, 3, 5, 5), background_attrs=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="backgrounds must have shape"):
        bank({"x": x, "attr": attr, "mask": good}, 1 - attr)


# TabularAttributeRule ------------------------------------------------------------------------
def test_tabular_one_hot_columns():
    values = torch.eye(3)
    x = torch.tensor([[0.5, 1.0, 0.0, 0.0, 7.0], [0.1, 0.0, 0.0, 1.0, 8.0]])
    attr = torch.tensor([0, 2])
    x_cf = TabularAttributeRule(slice(1, 4), values)({"x": x, "attr": attr}, torch.tensor([1, 0]))
    expected = torch.tensor([[0.5, 0.0, 1.0, 0.0, 7.0], [0.1, 1.0, 0.0, 0.0, 8.0]])
    torch.testing.assert_close(x_cf, expected, rtol=0, atol=0)
    torch.testing.assert_close(x, torch.tensor([[0.5, 1.0, 0.0, 0.0, 7.0],
                                                [0.1, 0.0, 0.0, 1.0, 8.0]]))  # input untouched


@pytest.mark.parametrize("values", [[[0.0], [1.0]], [[-0.8165], [1.2247]]])
def test_tabular_scalar_column(values):
    values = torch.tensor(values)
    attr = torch.tensor([0, 1, 1])
    x = torch.rand(3, 4)
    x[:, 2] = values[attr, 0]
    x_cf = TabularAttributeRule([2], values)({"x": x, "attr": attr}, 1 - attr)
    torch.testing.assert_close(x_cf[:, 2], values[1 - attr, 0])
    torch.testing.assert_close(x_cf[:, [0, 1, 3]], x[:, [0, 1, 3]], rtol=0, atol=0)


def test_tabular_rejects_attribute_outside_declared_set():
    rule = TabularAttributeRule([0, 1], torch.eye(2))
    x = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # row 1 encodes no declared value
    with pytest.raises(ValueError, match=r"x\[1, columns\].*outside the declared set"):
        rule({"x": x, "attr": torch.tensor([0, 1])}, torch.tensor([1, 0]))
    with pytest.raises(ValueError, match=r"batch\['attr'\] must lie"):
        rule({"x": torch.eye(2), "attr": torch.tensor([0, 2])}, torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="select 2"):
        TabularAttributeRule([0, 1, 2], torch.eye(2))
    with pytest.raises(ValueError, match=r"select 2 of the 4 columns.*got \[1, 2, 3\]"):
        TabularAttributeRule(slice(1, None), torch.eye(2))({"x": torch.rand(2, 4), "attr": torch.tensor([0, 1])},
                                                           torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="differently"):
        TabularAttributeRule([0], torch.tensor([[1.0], [1.0]]))


# LexiconRule ---------------------------------------------------------------------------------
VOCAB = {"<pad>": 0, "he": 1, "she": 2, "man": 3, "woman": 4, "is": 5, "tall": 6}


def test_lexicon_swaps_ids_both_ways():
    rule = LexiconRule([("he", "she"), ("man", "woman")], VOCAB)
    x = torch.tensor([[1, 5, 6, 0], [2, 5, 4, -100], [3, 5, 6, 9]])
    attr = torch.tensor([0, 1, 0])
    x_cf = rule({"x": x, "attr": attr}, 1 - attr)
    expected = torch.tensor([[2, 5, 6, 0], [1, 5, 3, -100], [4, 5, 6, 9]])
    assert torch.equal(x_cf, expected)
    # rows whose attribute does not change are kept
    same = rule({"x": x, "attr": attr}, torch.tensor([1, 1, 0]))
    assert torch.equal(same, torch.stack([expected[0], x[1], x[2]]))


def test_lexicon_errors():
    with pytest.raises(ValueError, match=r"'he' -> 'she' \(pair 0\) and 'him' \(pair 1\)"):
        LexiconRule([("he", "she"), ("he", "him")])
    with pytest.raises(ValueError, match="maps a word to itself"):
        LexiconRule([("he", "he")], VOCAB)
    with pytest.raises(ValueError, match=r"missing from vocab: \['girl'\]"):
        LexiconRule([("boy", "girl")], {"boy": 1})
    with pytest.raises(TypeError, match="token ids"):
        LexiconRule([("he", "she")])
    with pytest.raises(ValueError, match="int64 token ids"):
        LexiconRule([(1, 2)])({"x": torch.rand(2, 3), "attr": torch.tensor([0, 1])}, torch.tensor([1, 0]))
    LexiconRule([("he", "she"), ("she", "he")], VOCAB)  # the same pair twice is consistent
