"""A stateful per-group accuracy meter that accumulates counts over batches and processes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn

from robustml.metrics.functional import (_accuracy_from_counts, _check_inputs, _check_num_groups,
                                         _check_train_counts, per_group_counts)


class GroupAccuracy(nn.Module):
    """Accumulate per-group correct and total counts; report per-group and worst-group accuracy.

    The stateful twin of :func:`robustml.metrics.group_accuracy` (the worst-group evaluation of
    Sagawa et al., ICLR 2020): feeding the same examples in any chunks gives the same dict.

    The counts are int64 buffers of shape ``(num_groups,)``, so ``.to(device)`` moves them; inputs
    on another device are counted there and the counts moved to the meter's device. The buffers
    are not persistent (not in ``state_dict()``): an evaluation pass starts over after a resume.

    Multiple processes (opt-in, ``sync_processes=True``): :meth:`compute` sums the counts of all
    processes of ``process_group`` (an all-reduce, so every process must call it) and every
    process gets the global result; the local counts are left unchanged. With NCCL, keep the
    meter on the GPU. By default :meth:`compute` runs no collective, initialized process group or
    not, and reports this process's examples only.

    Args:
        num_groups: Number of groups.
        train_counts: Optional group counts of the training set, shape ``(num_groups,)``; adds
            ``acc_weighted_avg`` to the result.
        validate_args: Check the inputs of every :meth:`update`; pass ``False`` in hot loops. The
            constructor's arguments are always checked.
        sync_processes: Sum the counts over the processes of ``process_group`` in
            :meth:`compute` (needs an initialized ``torch.distributed`` process group).
        process_group: Group to all-reduce over with ``sync_processes``; ``None`` is the default
            (world) group.

    Example:
        >>> meter = GroupAccuracy(num_groups=2)
        >>> meter.update(torch.tensor([1, 0]), torch.tensor([1, 1]), torch.tensor([0, 1]))
        >>> meter.compute()["acc_worst_group"]
        0.0
    """

    correct: torch.Tensor
    total: torch.Tensor

    def __init__(self, num_groups: int, *,
                 train_counts: torch.Tensor | Sequence[float] | None = None,
                 validate_args: bool = True, sync_processes: bool = False,
                 process_group: dist.ProcessGroup | None = None) -> None:
        super().__init__()
        if process_group is not None and not sync_processes:
            raise ValueError("process_group is the group that sync_processes=True sums the counts "
                             "over, so it needs sync_processes=True, got sync_processes=False")
        self.num_groups = _check_num_groups(num_groups)
        self.train_counts = (None if train_counts is None
                             else _check_train_counts(train_counts, self.num_groups))
        self.validate_args = bool(validate_args)
        self.sync_processes = bool(sync_processes)
        self.process_group = process_group
        self.register_buffer("correct", torch.zeros(self.num_groups, dtype=torch.int64),
                             persistent=False)
        self.register_buffer("total", torch.zeros(self.num_groups, dtype=torch.int64),
                             persistent=False)

    @torch.no_grad()
    def update(self, preds: torch.Tensor, target: torch.Tensor, groups: torch.Tensor) -> None:
        """Add a batch to the counts.

        Args:
            preds: Predicted class ids, shape ``(N,)``, int64.
            target: True class ids, shape ``(N,)``, int64.
            groups: Group ids, shape ``(N,)``, int64, values in ``[0, num_groups)``.
        """
        if self.validate_args:
            _check_inputs(preds, target, groups, self.num_groups)
        device = self.total.device
        self.total += per_group_counts(groups, num_groups=self.num_groups).to(device)
        self.correct += per_group_counts(groups[preds == target],
                                         num_groups=self.num_groups).to(device)

    @torch.no_grad()
    def compute(self) -> dict[str, float]:
        """Return the dict of :func:`robustml.metrics.group_accuracy` for all examples so far."""
        correct, total = self.correct, self.total
        if self.sync_processes:
            counts = torch.stack([correct, total])  # a copy: the local state stays local
            dist.all_reduce(counts, op=dist.ReduceOp.SUM, group=self.process_group)
            correct, total = counts[0], counts[1]
        return _accuracy_from_counts(correct, total, self.train_counts)

    def reset(self) -> None:
        """Zero the counts."""
        self.correct.zero_()
        self.total.zero_()

    def extra_repr(self) -> str:
        return f"num_groups={self.num_groups}"
