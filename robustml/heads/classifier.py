"""A trained model with a refitted last layer: the base model's features, then a head from
:mod:`robustml.heads` (DFR's or AFR's linear layer, DPE's prototype ensemble), and the saved form
of such a head (``checkpoints/<method>_head.pt``: tensors and plain values only)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustml.heads.prototypes import PrototypeEnsembleHead


class LinearHead(nn.Module):
    """A fixed linear last layer: ``features @ weight.T + bias``.

    Args:
        weight: ``(C_out, D)`` (one row for two classes: class 1 when positive).
        bias: ``(C_out,)``.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight.float())
        self.register_buffer("bias", bias.float())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(features.float(), self.weight, self.bias)


class HeadClassifier(nn.Module):
    """A base model whose last layer is replaced: ``head(base.features(x))``.

    Args:
        base: The model whose ``features(x)`` the head was fitted on.
        head: A module from features ``(N, D)`` to logits in robustml's convention.
    """

    def __init__(self, base: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.base = base
        self.head = head

    @property
    def predict_rows(self) -> int | None:
        """The base model's rows per prediction block, if it bounds them (a transformer's)."""
        return getattr(self.base, "predict_rows", None)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the base model's penultimate features, shape ``(N, D)``."""
        return self.base.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the head's logits."""
        return self.head(self.features(x))


def head_state(head: nn.Module) -> dict[str, Any]:
    """Return the saved form of a :class:`LinearHead` or :class:`PrototypeEnsembleHead`."""
    if isinstance(head, LinearHead):
        return {"kind": "linear", "weight": head.weight, "bias": head.bias}
    if isinstance(head, PrototypeEnsembleHead):
        return {"kind": "prototypes", "prototypes": head.prototypes, "scales": head.scales,
                "standardize": head.standardize}
    raise TypeError(f"head must be a LinearHead or a PrototypeEnsembleHead, got {type(head).__name__}")


def head_from_state(state: dict[str, Any]) -> nn.Module:
    """Rebuild a head saved by :func:`head_state` (a state without ``kind`` is a linear head)."""
    kind = state.get("kind", "linear")
    if kind == "linear":
        return LinearHead(state["weight"], state["bias"])
    if kind == "prototypes":
        return PrototypeEnsembleHead(state["prototypes"], state["scales"], bool(state["standardize"]))
    raise ValueError(f"a saved head's kind must be 'linear' or 'prototypes', got {kind!r}")
