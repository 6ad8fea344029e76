"""Counterfactual rules: how each kind of dataset changes its spurious attribute.

A rule is a callable ``rule(batch, new_attr) -> x_cf`` with an attribute ``num_attrs``. It
receives a batch dict (``x`` of shape ``(B, ...)``, ``attr`` of shape ``(B,)`` int64, plus any
extra keys the rule needs, such as ``mask``) and the attribute each example should have,
``new_attr`` of shape ``(B,)``, and returns inputs of the same shape and dtype as ``x`` in which
only the spurious attribute has changed (Kaushik, Hovy, Lipton, ICLR 2020: a minimal edit of the
spurious content, label kept). Rows whose ``new_attr`` equals ``attr`` come back unchanged (every
rule; :class:`~robustml.augment.counterfactual.CounterfactualAugment` relies on it). Every rule
is one whole-batch tensor operation, with no Python loop over examples.

A rule that cannot change every example (a text without a lexicon word has no counterfactual)
also has ``available(batch) -> (B,) bool``, the rows it can change; the augmentation and the
stress test ask it for a change only there. A rule without ``available`` changes every row.
This module holds the rules that compute the edit from ``x`` (images, tables); the rules that
look it up are in :mod:`robustml.augment.lookup`, the registry by name in
:mod:`robustml.augment.registry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch

from robustml.validation import check_ids, check_int

if TYPE_CHECKING:  # augment depends on data's contract for types only
    from robustml.data.contract import Batch


@runtime_checkable
class CounterfactualRule(Protocol):
    """The protocol every rule follows: ``rule(batch, new_attr) -> x_cf`` plus ``num_attrs``."""

    num_attrs: int

    def __call__(self, batch: Batch, new_attr: torch.Tensor) -> torch.Tensor: ...


def rule_inputs(batch: Batch, new_attr: torch.Tensor, num_attrs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(batch["x"], batch["attr"])`` after checking both and ``new_attr`` (every rule's first step)."""
    for key in ("x", "attr"):
        if key not in batch:
            raise ValueError(f"batch must contain key {key!r}, got keys {sorted(batch)}")
    x, attr = batch["x"], batch["attr"]
    check_ids("batch['attr']", attr, num_attrs, size=x.shape[0], match="batch['x']")
    check_ids("new_attr", new_attr, num_attrs, size=x.shape[0], match="batch['x']")
    return x, attr


class ChannelColorRule:
    """Recolor images whose content lies in exactly one color channel (Colored MNIST).

    Inputs ``x`` have shape ``(B, num_colors, ...)`` and example ``i`` holds its content in
    channel ``attr[i]`` only, every other channel zero. The counterfactual swaps channels
    ``attr[i]`` and ``new_attr[i]`` of example ``i``, which moves the content to channel
    ``new_attr[i]`` and leaves zeros everywhere else: one gather of the rows' channels, a single
    read of ``x`` and a single write (the cost that keeps augmentation cheap on full batches).

    Args:
        num_colors: Number of color channels, which is also the number of attribute values.
        check: Verify on every call that each example's other channels are zero (one extra pass
            over ``x``). A dataset that builds its images this way declares the rule with
            ``check=False``; leave it on for data you did not construct.
    """

    def __init__(self, num_colors: int, *, check: bool = True) -> None:
        self.num_attrs = check_int("num_colors", num_colors, minimum=2)
        self.check = bool(check)

    def __call__(self, batch: Batch, new_attr: torch.Tensor) -> torch.Tensor:
        x, attr = rule_inputs(batch, new_attr, self.num_attrs)
        if x.dim() < 2 or x.shape[1] != self.num_attrs:
            raise ValueError(f"x must have shape (B, {self.num_attrs}, ...), got {tuple(x.shape)}")
        b, c = x.shape[:2]
        attr, new_attr = attr.to(x.device), new_attr.to(x.device)
        if self.check:
            shape = (-1, c, *([1] * (x.dim() - 2)))
            current = torch.nn.functional.one_hot(attr, c).bool().reshape(shape)
            if bool((x.masked_fill(current, 0) != 0).any()):
                raise ValueError("x must hold its content only in channel attr (other channels "
                                 "zero); found non-zero values in another channel")
        rows = torch.arange(b, device=x.device)
        source = torch.arange(c, device=x.device).repeat(b, 1)  # (B, C): output channel <- input
        source[rows, new_attr] = attr
        source[rows, attr] = new_attr   # after the line above, so new_attr == attr stays identity
        flat = (rows[:, None] * c + source).reshape(-1)
        return x.reshape(b * c, -1).index_select(0, flat).view_as(x)


class BackgroundSwapRule:
    """Keep each image's foreground and paste the background of an image of another attribute.

    ``x_cf = mask * x + (1 - mask) * x_donor`` (Waterbirds: a bird on the other kind of place).
    The donor of example ``i`` is drawn uniformly among the images whose attribute equals
    ``new_attr[i]``: from the ``backgrounds`` bank when one is given (bare backgrounds, so no
    donor foreground leaks in), otherwise from the batch itself (the donor's own foreground then
    shows wherever it does not overlap example ``i``'s mask).

    Args:
        num_attrs: Number of attribute values (background kinds).
        masks_key: Batch key of the foreground masks, shape ``(B, 1, H, W)`` or ``(B, H, W)``,
            values in ``[0, 1]`` (1 = foreground).
        backgrounds: Optional bank of backgrounds, shape ``(K, C, H, W)``.
        background_attrs: Attribute of each bank background, shape ``(K,)`` int64; required with
            ``backgrounds``.
        generator: Optional ``torch.Generator`` for the donor draws (reproducible).
    """

    def __init__(self, num_attrs: int = 2, *, masks_key: str = "mask",
                 backgrounds: torch.Tensor | None = None,
                 background_attrs: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> None:
        if int(num_attrs) < 2:
            raise ValueError(f"num_attrs must be at least 2, got {num_attrs}")
        self.num_attrs = int(num_attrs)
        self.masks_key = masks_key
        if (backgrounds is None) != (background_attrs is None):
            raise ValueError("backgrounds and background_attrs must be given together, got "
                             f"backgrounds={'set' if backgrounds is not None else None}, "
                             f"background_attrs={'set' if background_attrs is not None else None}")
        if backgrounds is not None:
            if backgrounds.dim() != 4:
                raise ValueError(f"backgrounds must have shape (K, C, H, W), got {tuple(backgrounds.shape)}")
            check_ids("background_attrs", background_attrs, self.num_attrs, size=backgrounds.shape[0],
                      match="backgrounds")
        self.backgrounds, self.background_attrs = backgrounds, background_attrs
        self.generator = generator

    def __call__(self, batch: Batch, new_attr: torch.Tensor) -> torch.Tensor:
        x, attr = rule_inputs(batch, new_attr, self.num_attrs)
        if x.dim() != 4:
            raise ValueError(f"x must have shape (B, C, H, W) for BackgroundSwapRule, got {tuple(x.shape)}")
        mask = self._mask(batch, x)
        if self.backgrounds is None:
            pool, pool_attrs, source = x, attr, "in the batch"
        else:
            pool, pool_attrs, source = self.backgrounds, self.background_attrs, "in backgrounds"
            if pool.shape[1:] != x.shape[1:]:
                raise ValueError(f"backgrounds must have shape (K, {', '.join(map(str, x.shape[1:]))}) "
                                 f"to match x, got {tuple(pool.shape)}")
        candidates = new_attr.to(pool_attrs.device)[:, None] == pool_attrs[None, :]  # (B, K)
        missing = ~candidates.any(dim=1)
        if bool(missing.any()):
            values = sorted(set(new_attr[missing.to(new_attr.device)].tolist()))
            raise ValueError(f"no donor background with attr in {values} {source}; give a "
                             "backgrounds bank or use batches that contain every attribute value")
        device = self.generator.device if self.generator is not None else candidates.device
        scores = torch.rand(candidates.shape, generator=self.generator, device=device)
        donor = scores.to(candidates.device).masked_fill(~candidates, -1.0).argmax(dim=1)
        x_donor = pool[donor.to(pool.device)].to(device=x.device, dtype=x.dtype)
        swapped = (mask * x + (1 - mask) * x_donor).to(x.dtype)
        changed = (new_attr != attr).to(x.device).reshape(-1, 1, 1, 1)
        return torch.where(changed, swapped, x)   # new_attr == attr: the example itself

    def _mask(self, batch: Batch, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        if self.masks_key not in batch:
            raise ValueError(f"BackgroundSwapRule needs foreground masks in batch[{self.masks_key!r}], "
                             f"got keys {sorted(batch)}")
        mask = batch[self.masks_key]
        if mask.shape == (b, h, w):
            mask = mask.unsqueeze(1)
        if mask.shape != (b, 1, h, w):
            raise ValueError(f"batch[{self.masks_key!r}] (the mask) must have shape ({b}, 1, {h}, {w}) "
                             f"or ({b}, {h}, {w}), got {tuple(mask.shape)}")
        if mask.numel() and (float(mask.min()) < 0 or float(mask.max()) > 1):
            raise ValueError(f"batch[{self.masks_key!r}] (the mask) must lie in [0, 1], got values in "
                             f"[{float(mask.min())}, {float(mask.max())}]")
        return mask.to(device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float32)


class TabularAttributeRule:
    """Overwrite the columns that encode a declared attribute of tabular features.

    Features ``x`` have shape ``(B, D)``; the attribute occupies ``columns`` and value ``a`` is
    encoded as ``values[a]``: a row of the identity for a one-hot encoding, ``[[0.], [1.]]`` for a
    scalar 0/1 column, or standardized values. The counterfactual writes ``values[new_attr]`` into
    those columns. The current columns must equal ``values[attr]`` (up to float tolerance),
    otherwise the attribute does not come from the declared encoding and a ``ValueError`` is raised.

    Args:
        columns: The attribute's columns, a ``slice`` or a list of column indices.
        values: Encoding of each attribute value, shape ``(num_attrs, width)`` with ``width`` the
            number of columns; rows must differ.
    """

    def __init__(self, columns: slice | Sequence[int], values: torch.Tensor) -> None:
        if not isinstance(columns, slice | Sequence) or isinstance(columns, str):
            raise TypeError(f"columns must be a slice or a list of ints, got {type(columns).__name__}")
        if values.dim() != 2 or values.shape[0] < 2:
            raise ValueError(f"values must have shape (num_attrs >= 2, width), got {tuple(values.shape)}")
        if torch.unique(values, dim=0).shape[0] != values.shape[0]:
            raise ValueError(f"values must encode each attribute value differently, got rows {values.tolist()}")
        if not isinstance(columns, slice) and len(columns) != values.shape[1]:
            raise ValueError(f"columns {list(columns)} must select {values.shape[1]} columns (the width "
                             f"of values), got {len(columns)}")
        self.columns = columns
        self.values = values
        self.num_attrs = values.shape[0]

    def __call__(self, batch: Batch, new_attr: torch.Tensor) -> torch.Tensor:
        x, attr = rule_inputs(batch, new_attr, self.num_attrs)
        if x.dim() != 2:
            raise ValueError(f"x must have shape (B, D) for TabularAttributeRule, got {tuple(x.shape)}")
        cols = torch.arange(x.shape[1], device=x.device)[self.columns] if isinstance(self.columns, slice) \
            else torch.as_tensor(list(self.columns), dtype=torch.int64, device=x.device)
        if cols.numel() != self.values.shape[1] or (cols.numel() and (
                int(cols.min()) < -x.shape[1] or int(cols.max()) >= x.shape[1])):
            raise ValueError(f"columns {self.columns} must select {self.values.shape[1]} of the "
                             f"{x.shape[1]} columns of x (the width of values), got {cols.tolist()}")
        values = self.values.to(device=x.device, dtype=x.dtype)
        current = x[:, cols]
        mismatch = ~torch.isclose(current, values[attr.to(x.device)], rtol=1e-5, atol=1e-6).all(dim=1)
        if bool(mismatch.any()):
            row = int(mismatch.nonzero()[0, 0])
            raise ValueError(f"x[{row}, columns] = {current[row].tolist()} is not the declared encoding "
                             f"of attr {int(attr[row])} ({values[attr[row]].tolist()}); the attribute "
                             f"is outside the declared set {self.values.tolist()}")
        x_cf = x.clone()
        changed = (new_attr != attr).to(x.device)[:, None]
        x_cf[:, cols] = torch.where(changed, values[new_attr.to(x.device)], current)
        return x_cf
