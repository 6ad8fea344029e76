"""Losses and predict() refuse malformed input with a message naming the argument."""

from __future__ import annotations

import pytest
import torch

from robustml.losses import ERMLoss, GroupDROLoss, IRMLoss, NonFiniteError, VRExLoss, predict
from robustml.metrics import GroupAccuracy


@pytest.mark.parametrize("make", [ERMLoss, GroupDROLoss, GroupAccuracy])
@pytest.mark.parametrize("num_groups,error,message", [
    (2.5, TypeError, r"num_groups must be an integer >= 1, got 2.5 \(float\)"),
    ("4", TypeError, r"num_groups must be an integer >= 1, got '4' \(str\)"),
    (0, ValueError, r"num_groups must be an integer >= 1, got 0"),
])
def test_num_groups_must_be_a_positive_integer(make, num_groups, error, message):
    with pytest.raises(error, match=message):
        make(num_groups=num_groups)


def test_groups_as_a_python_list_are_refused_with_the_fix():
    with pytest.raises(TypeError, match=r"groups must be an int64 tensor of shape \(2,\), got list; "
                                        r"convert it with torch.as_tensor\(groups\)"):
        ERMLoss(num_groups=2)(torch.zeros(2, 1), torch.tensor([0, 1]), [0, 1])


@pytest.mark.parametrize("make", [ERMLoss, GroupDROLoss])
def test_an_empty_batch_is_refused_not_zero_or_blamed_on_the_learning_rate(make):
    with pytest.raises(ValueError, match=r"logits must have at least one row .* got shape \(0, 1\)"):
        make(num_groups=2)(torch.zeros(0, 1), torch.zeros(0, dtype=torch.int64),
                           torch.zeros(0, dtype=torch.int64))


@pytest.mark.parametrize("caught", [NonFiniteError, ValueError, FloatingPointError])
def test_nonfinite_logits_raise_the_exported_error_a_bad_argument_or_a_divergence_catches(caught):
    with pytest.raises(caught, match="logits are not finite"):
        ERMLoss(num_groups=2)(torch.tensor([[float("nan")], [0.0]]), torch.tensor([0, 1]),
                              torch.tensor([0, 1]))


def test_predict_on_one_dimensional_logits_says_how_to_shape_them():
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\), got \(3,\) .*logits\[:, None\]"):
        predict(torch.zeros(3))


def test_predict_follows_the_binary_convention():
    assert predict(torch.tensor([[-1.0], [2.0]])).tolist() == [0, 1]
    assert predict(torch.tensor([[0.1, 0.9, 0.0], [3.0, 0.0, 0.0]])).tolist() == [1, 0]


@pytest.mark.parametrize("make", [IRMLoss, VRExLoss])
def test_environment_losses_take_envs_as_a_keyword_alias_of_groups(make):
    torch.manual_seed(0)
    logits = torch.randn(8, 1)
    target = torch.randint(0, 2, (8,))
    envs = torch.tensor([0, 1] * 4)
    by_groups = make(num_groups=2).eval()(logits, target, envs)
    by_envs = make(num_groups=2).eval()(logits, target, envs=envs)
    assert torch.equal(by_groups, by_envs)
    with pytest.raises(TypeError, match="once, as groups or as envs, got both"):
        make(num_groups=2)(logits, target, envs, envs=envs)
    with pytest.raises(TypeError, match="got neither"):
        make(num_groups=2)(logits, target)


def test_environment_losses_default_to_the_papers_penalty_weights():
    assert IRMLoss(num_groups=2).penalty_weights == {"irm": 91257.18613115903}
    assert VRExLoss(num_groups=2).penalty_weights == {"vrex": 1e4}
