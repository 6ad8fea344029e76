"""Learning-rate schedules built from config, stepped once per optimizer step."""

from __future__ import annotations

import math

import torch


def _check_warmup(warmup_steps: int, total_steps: int) -> None:
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}), got {warmup_steps}")


def warmup_cosine(optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_steps: int = 0,
                  min_factor: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """Return a schedule: linear warm-up over ``warmup_steps``, then cosine decay to ``min_factor``.

    Args:
        optimizer: The optimizer whose learning rates are scaled.
        total_steps: Number of optimizer steps of the run.
        warmup_steps: Steps of linear warm-up from 0 to the base learning rate.
        min_factor: Final learning rate as a fraction of the base learning rate.
    """
    _check_warmup(warmup_steps, total_steps)
    if not 0.0 <= min_factor <= 1.0:
        raise ValueError(f"min_factor must be in [0, 1], got {min_factor}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def warmup_linear(optimizer: torch.optim.Optimizer, *, total_steps: int,
                  warmup_steps: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """Return BERT's fine-tuning schedule: linear warm-up from 0, then linear decay to 0.

    The factor of step ``s`` (0-based) is ``s / warmup_steps`` during warm-up, then
    ``(total_steps - s) / (total_steps - warmup_steps)``: the definition of ``WarmupLinearSchedule``
    in pytorch_transformers (the Group DRO and JTT code) and of ``transformers``'
    ``get_linear_schedule_with_warmup`` (WILDS).

    Args:
        optimizer: The optimizer whose learning rates are scaled.
        total_steps: Number of optimizer steps of the run.
        warmup_steps: Steps of linear warm-up (the papers' BERT runs: 0).
    """
    _check_warmup(warmup_steps, total_steps)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / warmup_steps
        return max(0.0, (total_steps - step) / (total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
