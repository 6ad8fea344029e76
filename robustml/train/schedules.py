"""Learning-rate schedules built from config, stepped once per optimizer step."""

from __future__ import annotations

import math

import torch


def warmup_cosine(optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_steps: int = 0,
                  min_factor: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """Return a schedule: linear warm-up over ``warmup_steps``, then cosine decay to ``min_factor``.

    Args:
        optimizer: The optimizer whose learning rates are scaled.
        total_steps: Number of optimizer steps of the run.
        warmup_steps: Steps of linear warm-up from 0 to the base learning rate.
        min_factor: Final learning rate as a fraction of the base learning rate.
    """
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}), got {warmup_steps}")
    if not 0.0 <= min_factor <= 1.0:
        raise ValueError(f"min_factor must be in [0, 1], got {min_factor}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
