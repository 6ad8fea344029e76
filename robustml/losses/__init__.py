"""Robust objectives. One contract: ``forward(logits, target, groups) -> scalar loss``."""

from robustml.losses.base import GroupLoss, StepSignals
from robustml.losses.checks import NonFiniteError
from robustml.losses.compose import PenalizedLoss
from robustml.losses.consistency import CounterfactualConsistencyPenalty
from robustml.losses.erm import ERMLoss
from robustml.losses.functional import (classification_loss, irm_penalty, irm_penalty_autograd,
                                        mean_irm_penalty, num_outputs_for, predict, probabilities,
                                        scale_gradients, vrex_penalty)
from robustml.losses.group_dro import GroupDROLoss
from robustml.losses.irm import IRMLoss, IRMPenalty
from robustml.losses.vrex import VRExLoss, VRExPenalty

__all__ = ["GroupLoss", "StepSignals", "ERMLoss", "GroupDROLoss", "IRMPenalty", "IRMLoss", "VRExPenalty",
           "VRExLoss", "PenalizedLoss", "CounterfactualConsistencyPenalty", "NonFiniteError",
           "classification_loss", "num_outputs_for", "predict", "probabilities", "irm_penalty",
           "irm_penalty_autograd", "mean_irm_penalty", "vrex_penalty", "scale_gradients"]
