"""Input checks of the losses: malformed arguments raise before any math runs.

Every check names the argument, what was expected and what was received (``ValueError`` or
``TypeError``); id arrays go through the package's one id check,
:func:`robustml.validation.check_ids`. Non-finite logits raise :class:`NonFiniteError`, which is
both a ``ValueError`` (a bad argument) and a ``FloatingPointError`` (what a diverging training run
sees), so callers that catch either keep working.
"""

from __future__ import annotations

import torch

from robustml.validation import check_ids, check_real


class NonFiniteError(ValueError, FloatingPointError):
    """Raised when logits or a loss hold NaN or infinity."""


def _first_nonfinite(name: str, values: torch.Tensor) -> str:
    """Return ``"nan at logits[i, j]"``-style text for the first non-finite entry of ``values``."""
    position = tuple(int(i) for i in (~torch.isfinite(values)).nonzero()[0])
    return f"{float(values[position])} at {name}[{', '.join(map(str, position))}]"


def check_logits(logits: torch.Tensor) -> None:
    """Raise unless ``logits`` is a finite floating-point tensor of shape ``(N, C)``.

    Raises:
        TypeError: If ``logits`` is not a floating-point tensor.
        ValueError: If it is not 2-D.
        NonFiniteError: If an entry is NaN or infinite.
    """
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a floating-point tensor of shape (N, C), got "
                        f"{type(logits).__name__}")
    if logits.dim() != 2:
        hint = (" (one logit per example is shape (N, 1): use logits[:, None])"
                if logits.dim() == 1 else "")
        raise ValueError(f"logits must have shape (N, C), got {tuple(logits.shape)}{hint}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating point, got dtype {logits.dtype}")
    if logits.numel() and not bool(torch.isfinite(logits.detach()).all()):
        raise NonFiniteError(f"logits are not finite: expected finite numbers, got "
                             f"{_first_nonfinite('logits', logits.detach())}; in training this means the "
                             f"model diverged (lower the learning rate) or the inputs hold NaN/inf")


def check_inputs(logits: torch.Tensor, target: torch.Tensor, groups: torch.Tensor | None = None,
                 *, num_groups: int | None = None) -> None:
    """Raise ``ValueError``/``TypeError`` naming the argument when the loss inputs are malformed.

    Args:
        logits: Shape ``(N, C)``, floating point, finite, ``N >= 1``.
        target: Shape ``(N,)``, int64 class ids in ``[0, max(C, 2))``.
        groups: Optional shape ``(N,)``, int64 ids in ``[0, num_groups)``.
        num_groups: Number of groups (or environments) the ids must lie below.
    """
    check_logits(logits)
    n, c = logits.shape
    if n == 0:
        raise ValueError(f"logits must have at least one row (the loss of an empty batch is "
                         f"undefined), got shape (0, {c})")
    check_ids("target", target, max(c, 2), size=n, match="logits")
    if groups is not None:
        check_ids("groups", groups, num_groups, size=n, match="logits")
        if groups.device != logits.device:
            raise ValueError(f"groups must be on the device of logits ({logits.device}), got "
                             f"{groups.device}")
    if target.device != logits.device:
        raise ValueError(f"target must be on the device of logits ({logits.device}), got "
                         f"{target.device}")


def check_finite(loss: torch.Tensor, name: str = "loss") -> torch.Tensor:
    """Return ``loss`` unchanged, or raise :class:`NonFiniteError` if it is NaN or infinite."""
    if not bool(torch.isfinite(loss).all()):
        raise NonFiniteError(f"{name} is not finite ({loss.detach().flatten()[:4].tolist()}); "
                             "lower the learning rate or check the inputs for NaN/inf")
    return loss


def check_weight(weight: torch.Tensor | None, num_examples: int) -> None:
    """Raise ``ValueError``/``TypeError`` naming ``weight`` unless it is ``None`` or valid.

    Valid per-example weights are a floating-point tensor of shape ``(N,)``, finite, ``>= 0``
    and not all zero (a batch with no weight has no loss).

    Args:
        weight: Optional per-example weights, shape ``(N,)``.
        num_examples: ``N``, the number of rows of the logits.
    """
    if weight is None:
        return
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a floating-point tensor of shape ({num_examples},) or "
                        f"None, got {type(weight).__name__}")
    if weight.shape != (num_examples,):
        raise ValueError(f"weight must have shape ({num_examples},) to match logits, got "
                         f"{tuple(weight.shape)}")
    if not weight.is_floating_point():
        raise TypeError(f"weight must be floating point, got dtype {weight.dtype}")
    values = weight.detach()
    bad = ~torch.isfinite(values) | (values < 0)
    if bool(bad.any()):
        position = int(bad.nonzero()[0, 0])
        raise ValueError(f"weight must be finite and >= 0, got weight[{position}]="
                         f"{float(values[position])}")
    if not bool((values > 0).any()):
        raise ValueError(f"weight must have at least one entry > 0, got all {num_examples} "
                         "entries 0")


def check_nonnegative(name: str, value: float) -> float:
    """Return ``value`` as a float; raise naming ``name`` unless it is a finite number >= 0."""
    return check_real(name, value, minimum=0.0)
