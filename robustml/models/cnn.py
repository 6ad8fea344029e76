"""A small convolutional network for small images (MNIST-sized and smaller)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Three 3x3 convolutions with ReLU, one 2x2 max-pool, global average pooling and a linear head.

    It has no batch-dependent layers, so a full batch may be computed in row chunks.

    Args:
        input_shape: ``(channels, height, width)`` of one example.
        num_outputs: Number of logits.
        channels: Output channels of the three convolutions.
    """

    def __init__(self, input_shape: Sequence[int], num_outputs: int, *,
                 channels: Sequence[int] = (32, 64, 64)) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (channels, height, width), got {tuple(input_shape)}")
        if len(channels) != 3:
            raise ValueError(f"channels must list three widths, got {tuple(channels)}")
        c1, c2, c3 = channels
        self.body = nn.Sequential(
            nn.Conv2d(input_shape[0], c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(c3, num_outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the pooled representation, shape ``(N, channels[-1])``."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits, shape ``(N, num_outputs)``."""
        return self.head(self.body(x))
