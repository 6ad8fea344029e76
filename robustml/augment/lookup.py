"""Rules that look the counterfactual up: in a word-pair table.

:class:`LexiconRule` swaps token ids through a table of word pairs (one token per word).
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

