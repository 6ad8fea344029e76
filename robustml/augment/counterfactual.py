"""Counterfactual augmentation: change the spurious attribute of a batch, keep the label.

Kaushik, Hovy, Lipton (ICLR 2020), "Learning the Difference that Makes a Difference with
Counterfactually-Augmented Data": train on examples together with minimally edited copies. For a
shortcut, the edit changes the spurious attribute while the label stays, so the attribute stops
predicting the label. The edit itself is the dataset's rule (:mod:`robustml.augment.rules`,
:mod:`robustml.augment.lookup`). Where a rule cannot change a row (a text without a lexicon word;
the rule's ``available``), that row keeps its input and attribute and is not marked ``is_cf``.

Configured once, called in the loop::

    augment = CounterfactualAugment(dataset_rule(dataset), num_attrs=dataset.num_attrs,
                                    mode="paired")
    for batch in loader:
        batch = augment(batch)          # 2B examples: originals, then their counterfactuals
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

from robustml.augment.registry import rule_from_spec
from robustml.augment.rules import CounterfactualRule
from robustml.validation import check_ids, check_int, check_real

if TYPE_CHECKING:  # augment depends on data's contract for types only
    from robustml.data.contract import Batch, GroupedTensorDataset

MODES = ("replace", "paired")


def other_attr(attr: torch.Tensor, num_attrs: int, *,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Return a different attribute value for every example, shape ``(B,)`` int64.

    With two values it is the other one (``1 - attr``); with more, a uniformly random other value
    (``(attr + k) mod num_attrs`` with ``k`` uniform in ``[1, num_attrs)``), drawn from
    ``generator`` (on the generator's device, then moved to ``attr``'s device).
    """
    if num_attrs < 2:
        raise ValueError(f"num_attrs must be at least 2 to change the attribute, got {num_attrs}")
    if num_attrs == 2:
        return 1 - attr
    device = generator.device if generator is not None else attr.device
    shift = torch.randint(1, num_attrs, attr.shape, generator=generator, device=device)
    return (attr + shift.to(attr.device)) % num_attrs


def _check_batch(batch: Batch, num_attrs: int) -> int:
    if not isinstance(batch, dict):
        raise TypeError(f"batch must be a dict of tensors, got {type(batch).__name__}")
    for key in ("x", "y", "attr"):
        if key not in batch:
            raise ValueError(f"batch must contain key {key!r}, got keys {sorted(batch)}")
    for key, value in batch.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"batch[{key!r}] must be a tensor, got {type(value).__name__}")
    if batch["x"].dim() == 0:
        raise ValueError(f"batch['x'] must have shape (B, ...), got {tuple(batch['x'].shape)}")
    size = batch["x"].shape[0]
    for key, value in batch.items():
        if value.dim() == 0 or value.shape[0] != size:
            raise ValueError(f"batch[{key!r}] must have leading dimension {size} (the batch size), "
                             f"got shape {tuple(value.shape)}")
    check_ids("batch['y']", batch["y"], size=size, match="batch['x']")
    check_ids("batch['attr']", batch["attr"], num_attrs, size=size, match="batch['x']")
    return size


def has_counterfactual(rule: CounterfactualRule, batch: Batch) -> torch.Tensor:
    """Return which rows of ``batch`` the rule can change, shape ``(B,)`` bool on ``batch["attr"]``'s device.

    ``rule.available(batch)`` where the rule defines it (:class:`~robustml.augment.lookup.PrecomputedRule`:
    a text without a lexicon word has no counterfactual), every row otherwise.
    """
    attr = batch["attr"]
    available = getattr(rule, "available", None)
    if available is None:
        return torch.ones_like(attr, dtype=torch.bool)
    mask = available(batch)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != attr.shape:
        got = f"{tuple(mask.shape)}, {mask.dtype}" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"rule.available(batch) of {type(rule).__name__} must return a bool tensor "
                         f"of shape {tuple(attr.shape)}, got {got}")
    return mask.to(attr.device)


def _with_attr(batch: Batch, attr: torch.Tensor, num_attrs: int) -> Batch:
    """Return ``batch`` with ``attr`` replaced and ``group = y * num_attrs + attr`` recomputed."""
    return {**batch, "attr": attr, "group": batch["y"] * num_attrs + attr}


def labelled_attr(rule: CounterfactualRule, attr: torch.Tensor, new_attr: torch.Tensor) -> torch.Tensor:
    """Return the attribute the counterfactuals carry: ``new_attr``, or ``attr`` for a rule whose
    swap leaves the attribute as it is (``rule.keeps_attr``, e.g. identity swaps on CivilComments)."""
    return attr if getattr(rule, "keeps_attr", False) else new_attr


def flip_all(batch: Batch, rule: CounterfactualRule, *, num_attrs: int,
             generator: torch.Generator | None = None) -> Batch:
    """Return the counterfactual of every example of ``batch`` that has one (its attribute changed).

    Args:
        batch: Dict with ``x (B, ...)``, ``y (B,)``, ``attr (B,)`` int64 and any keys the rule needs.
        rule: The dataset's counterfactual rule.
        num_attrs: Number of attribute values.
        generator: Optional generator for the new values when ``num_attrs > 2`` (a rule that draws,
            such as :class:`~robustml.augment.rules.BackgroundSwapRule`, uses its own).

    Returns:
        A batch of the same keys with ``x``, ``attr`` and ``group`` replaced, labels kept, and
        ``is_cf`` (bool): the rows that have a counterfactual (every row unless the rule has
        ``available``); the other rows are returned as they are.
    """
    _check_batch(batch, num_attrs)
    changed = has_counterfactual(rule, batch)
    new_attr = torch.where(changed, other_attr(batch["attr"], num_attrs, generator=generator),
                           batch["attr"])
    return _with_attr({**batch, "x": rule(batch, new_attr), "is_cf": changed},
                      labelled_attr(rule, batch["attr"], new_attr), num_attrs)


def dataset_rule(dataset) -> CounterfactualRule:
    """Return the rule ``dataset.counterfactual`` declares; raise ``ValueError`` if it has none.

    A dataset declares its rule as a rule object or, since the data package imports nothing of
    this one, as data: ``{"rule": "channel_color", "num_colors": 2, "check": False}``, built by
    :func:`~robustml.augment.registry.rule_from_spec`.
    """
    rule = getattr(dataset, "counterfactual", None)
    if rule is None:
        raise ValueError(f"dataset {getattr(dataset, 'name', '')!r} declares no counterfactual rule "
                         "(its counterfactual attribute is None)")
    return rule_from_spec(rule) if isinstance(rule, Mapping) else rule


def counterfactual_dataset(dataset: GroupedTensorDataset, *, generator: torch.Generator | None = None,
                           batch_size: int = 4096) -> GroupedTensorDataset:
    """Return the flipped copy of a split: every example that has a counterfactual, changed.

    Examples the rule cannot change (the rule's ``available``) are copied as they are.

    Args:
        dataset: A split with a ``counterfactual`` rule.
        generator: Optional generator for the new attribute values (and ``num_attrs > 2``).
        batch_size: Examples edited at a time (a rule that draws donors in the batch draws them
            among these).

    Returns:
        A dataset with the same labels, environments and metadata, new ``x`` and ``attr``.
    """
    rule = dataset_rule(dataset)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    xs, attrs = [], []
    for idx in torch.arange(len(dataset)).split(batch_size):
        flipped = flip_all(dataset.get_batch(idx), rule, num_attrs=dataset.num_attrs,
                           generator=generator)
        xs.append(flipped["x"])
        attrs.append(flipped["attr"])
    if not xs:
        return dataset.replace()
    return dataset.replace(x=torch.cat(xs), attr=torch.cat(attrs))


class CounterfactualAugment:
    """Batch transform that adds or substitutes counterfactual examples.

    Args:
        rule: The dataset's counterfactual rule (``rule(batch, new_attr) -> x_cf``).
        num_attrs: Number of attribute values; must equal ``rule.num_attrs``.
        mode: ``"replace"``: each example is swapped for its counterfactual with probability ``p``
            (batch size kept). ``"paired"``: the batch becomes ``2B`` examples, the originals
            followed by their counterfactuals in the same order (Kaushik et al. 2020's paired
            data; the layout :class:`~robustml.losses.consistency.CounterfactualConsistencyPenalty`
            needs).
        p: Swap probability in ``replace`` mode, in ``[0, 1]``.
        generator: Optional ``torch.Generator`` for the swaps and the new values (reproducible).

    Returned batch: ``x``, ``attr`` and ``group = y * num_attrs + attr`` updated (``attr`` kept
    where the rule's swap keeps it, ``rule.keeps_attr``), labels kept,
    ``is_cf`` (bool, which examples are counterfactual) added. Rows the rule cannot change (its
    ``available``; a text without a lexicon word) are never swapped in ``replace`` mode and are
    their own second copy in ``paired`` mode (attribute kept, ``is_cf`` False: the consistency
    penalty then compares an example with itself, zero unless dropout differs between the copies); in ``paired`` mode every other key is
    duplicated and ``pair`` (int64) gives each example's partner: ``pair[i] = i + B`` and
    ``pair[i + B] = i``.
    """

    def __init__(self, rule: CounterfactualRule, *, num_attrs: int, mode: str = "replace",
                 p: float = 0.5, generator: torch.Generator | None = None) -> None:
        if rule is None or not callable(rule):
            raise TypeError(f"rule must be a counterfactual rule (callable), got {rule!r}")
        num_attrs = check_int("num_attrs", num_attrs, minimum=2)
        if getattr(rule, "num_attrs", num_attrs) != num_attrs:
            raise ValueError(f"num_attrs must equal rule.num_attrs ({rule.num_attrs}), got "
                             f"{num_attrs}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not 0.0 <= check_real("p", p) <= 1.0:
            raise ValueError(f"p must lie in [0, 1], got {p}")
        self.rule, self.num_attrs, self.mode, self.p = rule, num_attrs, mode, float(p)
        self.generator = generator

    def __call__(self, batch: Batch) -> Batch:
        size = _check_batch(batch, self.num_attrs)
        attr = batch["attr"]
        new_attr = other_attr(attr, self.num_attrs, generator=self.generator)
        changed = has_counterfactual(self.rule, batch)
        if self.mode == "paired":
            new_attr = torch.where(changed, new_attr, attr)
            x_cf = self.rule(batch, new_attr)
            out = {key: torch.cat([value, value]) for key, value in batch.items()}
            out["x"] = torch.cat([batch["x"], x_cf])
            pair = torch.arange(size, device=attr.device)
            out["pair"] = torch.cat([pair + size, pair])
            out["is_cf"] = torch.cat([torch.zeros_like(changed), changed])
            return _with_attr(out, torch.cat([attr, labelled_attr(self.rule, attr, new_attr)]),
                              self.num_attrs)
        device = self.generator.device if self.generator is not None else attr.device
        swap = (torch.rand(size, generator=self.generator, device=device) < self.p).to(attr.device)
        swap = swap & changed
        new_attr = torch.where(swap, new_attr, attr)
        # Every rule returns the rows whose attribute stays as they are, so one call does it all.
        out = {**batch, "x": self.rule(batch, new_attr), "is_cf": swap}
        return _with_attr(out, labelled_attr(self.rule, attr, new_attr), self.num_attrs)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(rule={type(self.rule).__name__}, num_attrs={self.num_attrs}, "
                f"mode={self.mode!r}, p={self.p})")
