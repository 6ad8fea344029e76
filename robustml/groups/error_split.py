"""The error split: each class divided into the examples a reference model gets right and wrong,
and JTT's error set, the wrong ones as indices.

Used as a partition by JTT's analysis (Liu et al., ICML 2021, Sec. 3: the error set of an ERM
model concentrates the worst groups) and by SpuCo's group inference. Part ids are
``2 * target + wrong``: part ``2c`` holds class ``c``'s correctly classified examples, ``2c + 1`` its
misclassified ones.
"""

from __future__ import annotations

import torch

from robustml.validation import check_int


def error_split(preds: torch.Tensor, target: torch.Tensor, *, num_classes: int) -> torch.Tensor:
    """Return the error-split part of every example, ``2 * target + (preds != target)``.

    Args:
        preds: Predicted class ids of the reference model, shape ``(N,)``, int64.
        target: Class labels, shape ``(N,)``, int64, values in ``[0, num_classes)``.
        num_classes: Number of classes ``C``; the partition has ``2 * C`` parts.

    Returns:
        Part ids, shape ``(N,)``, int64, values in ``[0, 2 * num_classes)``.
    """
    num_classes = check_int("num_classes", num_classes, minimum=1)
    for name, value in (("preds", preds), ("target", target)):
        if not isinstance(value, torch.Tensor) or value.dtype != torch.int64 or value.dim() != 1:
            raise TypeError(f"{name} must be an int64 tensor of shape (N,), got "
                            f"{getattr(value, 'dtype', type(value).__name__)} of shape "
                            f"{tuple(getattr(value, 'shape', ()))}")
    if preds.shape != target.shape:
        raise ValueError(f"preds and target must have the same shape, got {tuple(preds.shape)} and "
                         f"{tuple(target.shape)}")
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise ValueError(f"target must lie in [0, {num_classes}), got values in "
                         f"[{int(target.min())}, {int(target.max())}]")
    return 2 * target + (preds != target).long()


def error_split_names(class_names: list[str] | tuple[str, ...]) -> list[str]:
    """Name the parts of :func:`error_split`: ``"y=<c>,reference=right"`` / ``"...=wrong"``."""
    return [f"y={c},reference={kind}" for c in class_names for kind in ("right", "wrong")]


def error_set(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return the indices of the misclassified examples, ``E = {i : preds_i != target_i}`` (sorted).

    JTT's error set (Liu et al., ICML 2021, Eq. 1): the training examples stage one's final model
    gets wrong, found with class labels only; :func:`error_split` is the same idea as a partition.

    Args:
        preds: Stage one's predicted class ids, shape ``(N,)`` int.
        target: Training labels, shape ``(N,)`` int.

    Returns:
        Indices into the training split, shape ``(|E|,)`` int64 on the CPU, increasing.
    """
    if preds.shape != target.shape or preds.dim() != 1:
        raise ValueError(f"preds and target must have the same shape (N,), got {tuple(preds.shape)} "
                         f"and {tuple(target.shape)}")
    return torch.nonzero(preds.cpu() != target.cpu()).flatten().to(torch.int64)
