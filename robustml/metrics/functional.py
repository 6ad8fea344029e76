"""Per-group accuracy as a pure function: predictions in, a flat dict of accuracies out.

The summary is the worst-group evaluation of Sagawa et al. (ICLR 2020, "Distributionally Robust
Neural Networks", Sec. 2 and 5): the accuracy of every group ``g``, ``acc_g = correct_g / n_g``, and
the worst-group accuracy ``min_g acc_g``, beside two averages: the plain sample average and the
average weighted by the training distribution, ``sum_g p_train(g) * acc_g``, which is what the
Waterbirds papers (Sagawa et al. 2020; Kirichenko et al., ICLR 2023) report as "average accuracy".

The function shares its argument checks and its count-to-accuracy step with the stateful
:class:`robustml.metrics.GroupAccuracy`, so the two give identical results (the torchmetrics pattern
of a functional twin beside a stateful class).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from robustml.validation import check_ids, check_int


def per_group_counts(groups: torch.Tensor, *, num_groups: int) -> torch.Tensor:
    """Count the examples of each group.

    Args:
        groups: Group ids, shape ``(N,)``, integer dtype, values in ``[0, num_groups)``.
        num_groups: Number of groups.

    Returns:
        Counts, shape ``(num_groups,)``, int64, on the device of ``groups``.

    Raises:
        ValueError: If ``groups`` is not 1-D or holds an id outside ``[0, num_groups)``.
        TypeError: If ``groups`` is not a tensor with an integer dtype.
    """
    check_ids("groups", groups, num_groups, any_int=True)
    return torch.bincount(groups, minlength=num_groups)


def _check_num_groups(num_groups: int) -> int:
    """Return ``num_groups`` as an int, or raise if it is not a positive integer."""
    return check_int("num_groups", num_groups, minimum=1)


def _check_train_counts(train_counts: torch.Tensor | Sequence[float], num_groups: int,
                        *, validate_args: bool = True) -> tuple[float, ...]:
    """Return the training set's group counts as a tuple of floats, checked if asked."""
    try:
        counts = torch.as_tensor(train_counts).detach().to("cpu", torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"train_counts must be a tensor or a sequence of numbers, got "
                        f"{type(train_counts).__name__}") from err
    if validate_args:
        if counts.shape != (num_groups,):
            raise ValueError(f"train_counts must have shape ({num_groups},) (one count per group), "
                             f"got {tuple(counts.shape)}")
        if not bool(torch.isfinite(counts).all()) or bool((counts < 0).any()):
            raise ValueError(f"train_counts must be finite and non-negative, got {counts.tolist()}")
        if float(counts.sum()) <= 0:
            raise ValueError(f"train_counts must have a positive sum, got {counts.tolist()}")
    return tuple(counts.tolist())


def _check_inputs(preds: torch.Tensor, target: torch.Tensor, groups: torch.Tensor,
                  num_groups: int) -> None:
    """Raise ``ValueError``/``TypeError`` naming the argument when an input is malformed."""
    check_ids("preds", preds)
    for name, value in (("target", target), ("groups", groups)):
        check_ids(name, value, num_groups if name == "groups" else None, size=preds.shape[0],
                  match="preds")
        if value.device != preds.device:
            raise ValueError(f"{name} must be on the device of preds ({preds.device}), "
                             f"got {value.device}")


def _accuracy_from_counts(correct: torch.Tensor, total: torch.Tensor,
                          train_counts: tuple[float, ...] | None) -> dict[str, float]:
    """Turn per-group correct and total counts, shape ``(num_groups,)``, into the result dict.

    Empty groups get NaN accuracy and are left out of the worst group, the group mean and the
    train-prior-weighted average, whose weights are renormalized over the non-empty groups.
    """
    correct_list = [int(c) for c in correct.tolist()]
    total_list = [int(n) for n in total.tolist()]
    accs = [c / n if n else math.nan for c, n in zip(correct_list, total_list)]
    present = [g for g, n in enumerate(total_list) if n]

    result: dict[str, float] = {}
    for g, (acc, n) in enumerate(zip(accs, total_list)):
        result[f"acc_group_{g}"] = acc
        result[f"count_group_{g}"] = n
    worst = min(present, key=lambda g: accs[g]) if present else -1  # ties: the lowest id
    result["acc_worst_group"] = accs[worst] if present else math.nan
    result["worst_group"] = worst
    num_examples = sum(total_list)
    result["acc_avg"] = sum(correct_list) / num_examples if num_examples else math.nan
    result["acc_group_mean"] = (sum(accs[g] for g in present) / len(present) if present
                                else math.nan)
    if train_counts is not None:
        weight_sum = sum(train_counts[g] for g in present)
        result["acc_weighted_avg"] = (sum(train_counts[g] * accs[g] for g in present) / weight_sum
                                      if weight_sum > 0 else math.nan)
    return result


def group_accuracy(preds: torch.Tensor, target: torch.Tensor, groups: torch.Tensor, *,
                   num_groups: int, train_counts: torch.Tensor | Sequence[float] | None = None,
                   validate_args: bool = True) -> dict[str, float]:
    """Compute per-group, worst-group and average accuracy.

    Args:
        preds: Predicted class ids, shape ``(N,)``, int64.
        target: True class ids, shape ``(N,)``, int64.
        groups: Group ids, shape ``(N,)``, int64, values in ``[0, num_groups)``.
        num_groups: Number of groups.
        train_counts: Optional group counts of the training set, shape ``(num_groups,)``; adds
            ``acc_weighted_avg``.
        validate_args: Check the arguments (shapes, dtypes, devices, id range). Pass ``False`` in
            hot loops; an id ``>= num_groups`` still raises.

    Returns:
        A flat dict; accuracies are fractions in ``[0, 1]``:

        - ``acc_group_<g>``: accuracy of group ``g``, NaN if the group has no example;
        - ``count_group_<g>``: number of examples of group ``g`` (int);
        - ``acc_worst_group``: lowest accuracy over non-empty groups (NaN if all are empty);
        - ``worst_group``: id of that group, the lowest id on ties (-1 if all are empty);
        - ``acc_avg``: fraction of all examples predicted correctly;
        - ``acc_group_mean``: unweighted mean of the non-empty groups' accuracies;
        - ``acc_weighted_avg`` (only with ``train_counts``): ``sum_g p_train(g) * acc_g`` with
          ``p_train`` renormalized over the groups that are non-empty here (NaN if those groups
          have no training example).

    Raises:
        ValueError: If a shape, device, id range, ``num_groups`` or ``train_counts`` is invalid.
        TypeError: If an input is not an int64 tensor or ``num_groups`` is not an integer.

    Example:
        >>> preds, target = torch.tensor([1, 0, 1, 1]), torch.tensor([1, 1, 1, 0])
        >>> group_accuracy(preds, target, torch.tensor([0, 0, 1, 1]), num_groups=2)["acc_worst_group"]
        0.5
    """
    if validate_args:
        num_groups = _check_num_groups(num_groups)
        _check_inputs(preds, target, groups, num_groups)
    counts = None if train_counts is None else _check_train_counts(
        train_counts, num_groups, validate_args=validate_args)
    total = per_group_counts(groups, num_groups=num_groups)
    correct = per_group_counts(groups[preds == target], num_groups=num_groups)
    return _accuracy_from_counts(correct, total, counts)


def prediction_shares(preds: torch.Tensor, *, num_classes: int) -> dict[str, float]:
    """Return ``{"pred_share_<c>": share}``: the fraction of ``preds`` that predict each class.

    A model that predicts one class for almost every example has one share near 1 (the health
    check ``one_class_predictor`` reads these). Empty ``preds`` give NaN shares.

    Args:
        preds: Predicted class ids, shape ``(N,)``, integer dtype, values in ``[0, num_classes)``.
        num_classes: Number of classes.

    Example:
        >>> prediction_shares(torch.tensor([1, 1, 1, 0]), num_classes=2)
        {'pred_share_0': 0.25, 'pred_share_1': 0.75}
    """
    num_classes = check_int("num_classes", num_classes, minimum=1)
    check_ids("preds", preds, num_classes, any_int=True)
    counts = torch.bincount(preds, minlength=num_classes).tolist()
    total = sum(counts)
    return {f"pred_share_{c}": n / total if total else math.nan for c, n in enumerate(counts)}


#: ``extras`` key of a split's overlapping attributes: bool ``(N, K)``, row ``i`` has attribute ``k``
#: (an example may have several, or none); their names are ``info[OVERLAP_NAMES]``.
OVERLAP_EXTRA = "overlap_attrs"
OVERLAP_NAMES = "overlap_attr_names"
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def overlap_group_accuracy(preds: torch.Tensor, target: torch.Tensor, members: torch.Tensor, *,
                           names: Sequence[str], num_classes: int) -> dict[str, float]:
    """Accuracy on overlapping groups: each attribute ``k`` x class ``c``, and the worst over them.

    Group ``(k, c)`` holds the examples with attribute ``k`` (``members[:, k]``) and class ``c``;
    examples without the attribute are in none of its groups, and one example can be in several
    groups (WILDS' CivilComments evaluation: each identity x label, worst over the 16 groups).

    Args:
        preds: Predicted class ids, shape ``(N,)``.
        target: True class ids, shape ``(N,)``.
        members: Bool ``(N, K)``: which attributes each example has.
        names: ``K`` attribute names of letters, digits, ``_``, ``.`` and ``-`` (they become keys).
        num_classes: Number of classes.

    Returns:
        ``overlap_acc_<name>_y<c>`` (NaN for an empty group) and ``overlap_count_<name>_y<c>`` for
        every attribute and class, ``overlap_acc_worst_group`` (lowest over non-empty groups,
        NaN if none) and ``overlap_worst_group`` (its index ``k * num_classes + c``, -1 if none).
    """
    num_classes = check_int("num_classes", num_classes, minimum=1)
    check_ids("preds", preds)
    check_ids("target", target, num_classes, size=preds.shape[0], match="preds")
    if members.dim() != 2 or members.shape != (preds.shape[0], len(names)) or members.dtype != torch.bool:
        raise ValueError(f"members must be a bool tensor of shape ({preds.shape[0]}, {len(names)}) "
                         f"(examples x attribute names), got {members.dtype} {tuple(members.shape)}")
    bad = [name for name in names if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name)]
    if bad:
        raise ValueError(f"names must be made of letters, digits, '_', '.' and '-' (they become metric "
                         f"keys), got {bad}")
    members = members.to(preds.device)
    correct = (preds == target.to(preds.device))
    result: dict[str, float] = {}
    accs = []
    for k, name in enumerate(names):
        for c in range(num_classes):
            rows = members[:, k] & (target.to(preds.device) == c)
            n = int(rows.sum())
            acc = int((correct & rows).sum()) / n if n else math.nan
            result[f"overlap_acc_{name}_y{c}"], result[f"overlap_count_{name}_y{c}"] = acc, n
            accs.append(acc)
    present = [i for i, acc in enumerate(accs) if not math.isnan(acc)]
    worst = min(present, key=lambda i: accs[i]) if present else -1  # ties: the lowest index
    result["overlap_acc_worst_group"] = accs[worst] if present else math.nan
    result["overlap_worst_group"] = worst
    return result


def declared_overlap_metrics(preds: torch.Tensor, target: torch.Tensor, extras: Mapping[str, torch.Tensor],
                             info: Mapping[str, Any], *, num_classes: int) -> dict[str, float]:
    """Return :func:`overlap_group_accuracy` for a split that declares overlapping attributes
    (``extras[OVERLAP_EXTRA]`` with names ``info[OVERLAP_NAMES]``), else ``{}``.

    The one reader of the declaration: evaluation and the audit call it with a dataset's
    ``extras`` and ``info``.
    """
    members = extras.get(OVERLAP_EXTRA)
    if members is None:
        return {}
    if OVERLAP_NAMES not in info:
        raise ValueError(f"extras[{OVERLAP_EXTRA!r}] declares overlapping attributes but "
                         f"info[{OVERLAP_NAMES!r}] does not name them")
    return overlap_group_accuracy(preds, target, members, names=info[OVERLAP_NAMES], num_classes=num_classes)
