"""An inferred partition attached to a split, and the selection metrics that read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from robustml.metrics import group_accuracy


@dataclass
class InferredGroups:
    """A partition of one split inferred without group labels (``dataset.inferred``).

    Attributes:
        ids: Part of every example, shape ``(N,)``, int64, on the split's metadata device.
        num_parts: Number of parts (the same on every split of a run).
        names: Name of each part (``"y=0,reference=wrong"``, ``"y=1,cluster=2"``, ``"env=0"``).
        method: ``"error_split"``, ``"eiil"`` or ``"clustering"``.
        details: What the method chose (clusters per class, silhouette scores, EIIL's penalty,
            the reference model), for the report.
    """

    ids: torch.Tensor
    num_parts: int
    names: list[str]
    method: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ids.dtype != torch.int64 or self.ids.dim() != 1:
            raise TypeError(f"ids must be an int64 tensor of shape (N,), got {self.ids.dtype} of "
                            f"shape {tuple(self.ids.shape)}")
        if len(self.names) != self.num_parts:
            raise ValueError(f"names must name the {self.num_parts} parts, got {len(self.names)}")
        if self.ids.numel() and (int(self.ids.min()) < 0 or int(self.ids.max()) >= self.num_parts):
            raise ValueError(f"ids must lie in [0, {self.num_parts}), got values in "
                             f"[{int(self.ids.min())}, {int(self.ids.max())}]")

    def counts(self) -> torch.Tensor:
        """Return the number of examples in each part, shape ``(num_parts,)``."""
        return torch.bincount(self.ids, minlength=self.num_parts)


def selection_metrics(preds: torch.Tensor, target: torch.Tensor, *, num_classes: int,
                      inferred: InferredGroups | None = None) -> dict[str, float]:
    """Return the accuracies that select a model without group labels.

    ``acc_worst_class`` is the lowest per-class accuracy; with an inferred partition,
    ``acc_worst_inferred_group`` is the lowest accuracy over its non-empty parts and
    ``acc_inferred_group_<k>`` each part's accuracy.

    Args:
        preds: Predicted class ids, shape ``(N,)``.
        target: Class labels, shape ``(N,)``.
        num_classes: Number of classes.
        inferred: The split's inferred partition, or ``None``.
    """
    out = {"acc_worst_class": group_accuracy(preds, target, target, num_groups=num_classes)["acc_worst_group"]}
    if inferred is not None:
        parts = group_accuracy(preds, target, inferred.ids.to(preds.device), num_groups=inferred.num_parts)
        out["acc_worst_inferred_group"] = parts["acc_worst_group"]
        out.update({f"acc_inferred_group_{k}": parts[f"acc_group_{k}"] for k in range(inferred.num_parts)})
    return out
