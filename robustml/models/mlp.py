"""Multi-layer perceptron: the IRM paper's Colored MNIST model."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

import torch
from torch import nn


class MLP(nn.Module):
    """Flatten the input, apply ``[Linear, ReLU] * len(hidden_dims)``, then a linear head.

    The IRM paper's Colored MNIST model (Arjovsky et al. 2019) is ``MLP((2, 14, 14), 1,
    hidden_dims=(390, 390))``: 392 -> 390 -> 390 -> 1 with Xavier-uniform weights and zero biases,
    which is the initialization used here.

    Args:
        input_shape: Shape of one example, e.g. ``(2, 14, 14)``.
        num_outputs: Number of logits (1 for binary cross-entropy, C for C-way cross-entropy).
        hidden_dims: Width of each hidden layer.
        dropout: Dropout probability after each hidden activation (0 disables).
    """

    def __init__(self, input_shape: Sequence[int], num_outputs: int, *,
                 hidden_dims: Sequence[int] = (390, 390), dropout: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = prod(input_shape)
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_outputs)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the penultimate representation, shape ``(N, hidden_dims[-1])``."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits, shape ``(N, num_outputs)``."""
        return self.head(self.body(x))
