"""Rules that look the counterfactual up: in a word-pair table, or in the batch itself.

:class:`LexiconRule` swaps token ids through a table of word pairs (one token per word);
:class:`PrecomputedRule` reads a counterfactual the dataset built before tokenization (a text
whose identity terms were swapped as raw text, :func:`robustml.augment.text.attach_text_counterfactuals`)
or by any other means, so it works whatever ``x`` holds: token ids, features, images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from robustml.augment.rules import rule_inputs

if TYPE_CHECKING:  # augment depends on data's contract for types only
    from robustml.data.contract import Batch


def partner_map(pairs: Sequence[tuple], *, labels: Sequence[str] | None = None) -> dict:
    """Return the symmetric partner map of ``pairs``; raise ``ValueError`` on a self-pair or a conflict.

    Args:
        pairs: ``[(a, b), ...]``; the same pair twice is consistent, a word in two pairs is not.
        labels: Optional name of each pair for the message (``"lexicon.txt, line 3"``).
    """
    labels = list(labels) if labels is not None else [f"pair {i}" for i in range(len(pairs))]
    partner: dict = {}
    where: dict = {}
    conflicts = []
    for (a, b), label in zip(pairs, labels, strict=True):
        if a == b:
            conflicts.append(f"({a!r}, {b!r}) maps a word to itself ({label})")
            continue
        for word, other in ((a, b), (b, a)):
            if partner.setdefault(word, other) != other:
                conflicts.append(f"{word!r} -> {partner[word]!r} ({where[word]}) and {other!r} ({label})")
            where.setdefault(word, label)
    if conflicts:
        raise ValueError(f"pairs (the lexicon) conflict: {'; '.join(conflicts)}; a word may belong "
                         "to one pair only")
    return partner


class LexiconRule:
    """Swap each word of a lexicon pair with its partner in token-id sequences (two-valued attribute).

    Text is ``x`` of shape ``(B, L)`` int64 token ids; every token that belongs to a pair is
    replaced by its partner (e.g. "he" <-> "she") through one lookup table, in the rows whose
    attribute changes; ids outside the table (padding such as -100, unknown ids) are kept. The
    attribute is two-valued (e.g. male/female terms), so the counterfactual value is ``1 - attr``.

    Args:
        pairs: The lexicon, ``[(a, b), ...]``: words (with ``vocab``) or token ids (without).
        vocab: Optional map from word to token id, used to turn word pairs into id pairs.
    """

    num_attrs = 2

    def __init__(self, pairs: Sequence[tuple], vocab: dict[str, int] | None = None) -> None:
        if len(pairs) == 0:
            raise ValueError("pairs must hold at least one (a, b) pair, got an empty lexicon")
        partner = partner_map(pairs)
        if vocab is not None:
            unknown = sorted(w for w in partner if w not in vocab)
            if unknown:
                raise ValueError(f"pairs contain words missing from vocab: {unknown}")
            partner = partner_map([(vocab[a], vocab[b]) for a, b in pairs])
        if not all(isinstance(t, int) and t >= 0 for t in partner):
            raise TypeError("pairs must be non-negative int token ids when vocab is None, got "
                            f"{sorted(map(repr, partner))}")
        self.table = torch.arange(max(partner) + 1)
        self.table[list(partner)] = torch.tensor(list(partner.values()))

    def __call__(self, batch: Batch, new_attr: torch.Tensor) -> torch.Tensor:
        x, attr = rule_inputs(batch, new_attr, self.num_attrs)
        if x.dim() != 2 or x.dtype != torch.int64:
            raise ValueError(f"x must be int64 token ids of shape (B, L), got shape {tuple(x.shape)} "
                             f"and dtype {x.dtype}")
        table = self.table.to(x.device)
        inside = (x >= 0) & (x < table.numel())
        swapped = torch.where(inside, table[x.clamp(0, table.numel() - 1)], x)
        changed = (new_attr != attr).to(x.device)[:, None]
        return torch.where(changed, swapped, x)


class PrecomputedRule:
    """Take each example's counterfactual from ``batch[key]``, stored by the dataset (two-valued attribute).

    ``x_cf = where(changed rows, batch[key], batch["x"])``: ``batch[key]`` has the shape and dtype
    of ``x`` (for text, the ``(B, 3, L)`` int64 token format of the swapped texts; after feature
    extraction, their features). The attribute is two-valued, so the new value is ``1 - attr``.

    Rows without a counterfactual: a text without a lexicon word has ``x_cf`` equal to ``x``, and
    the rule does not claim a change there. :meth:`available` gives the rows that have one: the
    bool flag ``batch[key + "_changed"]`` where the batch carries it (which
    :func:`~robustml.augment.text.attach_text_counterfactuals` stores as a per-example extra, so it
    survives feature extraction, where equal texts may give features that differ in the last
    bits), otherwise the rows where ``batch[key]`` differs from ``x`` in any element. Asking for a
    change in another row raises; :class:`~robustml.augment.counterfactual.CounterfactualAugment`
    keeps those rows as they are (``replace``: never swapped; ``paired``: the second copy is the
    example itself, attribute unchanged, ``is_cf`` False) and the stress test counts them as
    "no counterfactual", outside its flip rates.

    The attribute: when the dataset's attribute is what the swap changes (``brother`` <->
    ``sister`` with the attribute "which relative"), the counterfactual has the other value. When
    the swap leaves it as it is (CivilComments' identity swaps ``muslim`` <-> ``christian`` keep
    "an identity is mentioned"), ``keeps_attr=True`` says so: the counterfactual keeps its
    example's attribute and group in augmented batches, and ``new_attr`` only says which rows to
    change. :func:`~robustml.augment.text.attach_text_counterfactuals` decides which from the texts.

    Args:
        key: The batch key (the dataset's ``extras`` key) of the counterfactual inputs.
        keeps_attr: The swap does not change the dataset's attribute.
    """

    num_attrs = 2

    def __init__(self, key: str = "x_cf", *, keeps_attr: bool = False) -> None:
        if not isinstance(key, str) or not key or key == "x":
            raise ValueError(f"key must name the batch key of the counterfactual inputs (not 'x'), "
                             f"got {key!r}")
        if not isinstance(keeps_attr, bool):
            raise TypeError(f"keeps_attr must be a bool, got {keeps_attr!r}")
        self.keeps_attr = keeps_attr
        self.key = key
        self.changed_key = f"{key}_changed"

    def _x_cf(self, batch: Batch) -> torch.Tensor:
        if self.key not in batch:
            raise ValueError(f"PrecomputedRule needs the counterfactual inputs in batch[{self.key!r}] "
                             f"(the dataset's extras[{self.key!r}]), got keys {sorted(batch)}")
        x, x_cf = batch["x"], batch[self.key]
        if x_cf.shape != x.shape or x_cf.dtype != x.dtype:
            raise ValueError(f"batch[{self.key!r}] must have the shape and dtype of x "
                             f"({tuple(x.shape)}, {x.dtype}), got {tuple(x_cf.shape)}, {x_cf.dtype}")
        return x_cf

    def available(self, batch: Batch) -> torch.Tensor:
        """Return which rows of ``batch`` have a counterfactual, shape ``(B,)`` bool."""
        if "x" not in batch:
            raise ValueError(f"batch must contain key 'x', got keys {sorted(batch)}")
        x, x_cf = batch["x"], self._x_cf(batch)
        if self.changed_key not in batch:
            return (x_cf != x).reshape(x.shape[0], -1).any(dim=1)
        flag = batch[self.changed_key]
        if flag.dtype != torch.bool or flag.shape != (x.shape[0],):
            raise ValueError(f"batch[{self.changed_key!r}] must be a bool tensor of shape "
                             f"({x.shape[0]},), got {tuple(flag.shape)}, {flag.dtype}")
        return flag.to(x.device)

    def __call__(self, batch: Batch, new_attr: torch.Tensor) -> torch.Tensor:
        x, attr = rule_inputs(batch, new_attr, self.num_attrs)
        change = (new_attr != attr).to(x.device)
        missing = change & ~self.available(batch)
        if bool(missing.any()):
            rows = missing.nonzero()[:, 0].tolist()
            raise ValueError(f"rows {rows[:5]}{' ...' if len(rows) > 5 else ''} have no counterfactual "
                             f"(batch[{self.key!r}] equals x there) but new_attr asks to change them; "
                             "change only the rows of rule.available(batch), as "
                             "CounterfactualAugment and the stress test do")
        return torch.where(change.reshape(-1, *([1] * (x.dim() - 1))), self._x_cf(batch), x)
