"""Counterfactual inputs of a tokenized text split: the lexicon's terms swapped in the raw texts, then encoded.

For text the swap happens before tokenization (a word may become several tokens, and the
partner may tokenize differently), so the dataset carries the counterfactual's tokens beside
``x`` and declares :class:`~robustml.augment.lookup.PrecomputedRule`, which reads them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from robustml.augment.lexicon import Lexicon, Row, lexicon_sides, load_lexicon, substitute_strings

if TYPE_CHECKING:  # augment depends on data's contract for types only
    from robustml.data.contract import GroupedTensorDataset


def attach_text_counterfactuals(dataset: GroupedTensorDataset, texts: Sequence[Row],
                                lexicon: str | Path | Lexicon | Sequence[tuple[str, str]],
                                encode: Callable[[list], torch.Tensor], *,
                                key: str = "x_cf", keeps_attr: bool | None = None,
                                sides: torch.Tensor | None = None) -> GroupedTensorDataset:
    """Return ``dataset`` with the counterfactual of every text as ``extras[key]`` and the rule that reads it.

    A text dataset calls it once per split when a data setting names a lexicon
    (``data.counterfactual_lexicon=identity``, ``gender`` or a file), with the texts it
    tokenized and the same tokenization::

        split = attach_text_counterfactuals(split, texts, cfg.counterfactual_lexicon,
                                            encode=lambda rows: tokenize(rows, tokenizer, max_length))

    Each text's terms are swapped by :func:`~robustml.augment.lexicon.substitute_strings`
    (whole words, case kept; both texts of a pair) and the results encoded by ``encode``. A row
    has a counterfactual where its encoding changed: a text without a lexicon word has none
    (``x_cf`` equals ``x``), and neither has a text whose only lexicon words lie beyond
    ``max_length`` (truncated away) or tokenize to the same ids.

    Args:
        dataset: An in-memory text split: ``x`` int64 of shape ``(N, 3, L)`` (input ids,
            attention mask, token type ids) and a two-valued attribute.
        texts: The split's raw texts in row order, ``N`` strings, or ``N`` pairs (premise,
            hypothesis) for pair inputs: the texts ``x`` was encoded from.
        lexicon: Anything :func:`~robustml.augment.lexicon.load_lexicon` takes: a built-in
            name, a file of pairs, a :class:`~robustml.augment.lexicon.Lexicon` or pairs.
        encode: The encoding that made ``x``: a list of rows (strings or pairs, as ``texts``)
            -> int64 tensor ``(N, 3, L)`` (same tokenizer, ``max_length`` and padding).
        key: The extras key of the counterfactual inputs.
        keeps_attr: Whether the swap leaves the attribute as it is; ``None``: read off this
            split's texts (see below). A data set of several splits decides once over all of
            them and passes it, so that every split agrees.
        sides: The texts' :func:`~robustml.augment.lexicon.lexicon_sides` where the caller has
            computed them (a data set deciding ``keeps_attr`` over all splits); ``None``: computed here.

    Returns:
        The split with ``extras[key]`` (``(N, 3, L)`` int64), ``extras[key + "_changed"]``
        (``(N,)`` bool, the rows with a counterfactual), ``counterfactual = {"rule":
        "precomputed", "key": key}``, and in ``info``: ``key`` added to ``"input_extras"``,
        ``"counterfactual_lexicon"`` (the lexicon's name), ``"cf_texts_with_lexicon_word"`` and
        ``"cf_texts_changed"`` (counts), ``"counterfactual_keeps_attr"``. Warns when no row changed.

    Whether the swap changes the dataset's attribute is read off the texts: when every text that
    mentions one side of the lexicon only has the attribute value of that side (side A = one
    value, side B = the other: the attribute *is* the lexicon's side, as "which relative" in the
    offline example), a counterfactual has the other value; otherwise (CivilComments' "an
    identity is mentioned" under identity swaps) the rule is declared with ``keeps_attr=True``
    and counterfactuals keep their example's attribute and group.

    Raises:
        ValueError: ``x`` is not in the text format, the attribute is not two-valued, ``texts``
            does not have one row per example, or ``encode`` does not reproduce ``x`` on a text
            without a lexicon word (another tokenization, or texts out of row order).
    """
    x = dataset.x
    if x.dim() != 3 or x.shape[1] != 3 or x.dtype != torch.int64:
        raise ValueError(f"dataset.x must be int64 of shape (N, 3, L) (input ids, attention mask, "
                         f"token type ids), got {tuple(x.shape)}, {x.dtype}")
    if dataset.num_attrs != 2:
        raise ValueError(f"a lexicon swap changes a two-valued attribute, but dataset "
                         f"{dataset.name!r} has {dataset.num_attrs} attribute values {dataset.attr_names}")
    if isinstance(texts, str) or len(texts) != len(dataset):
        got = "a single str" if isinstance(texts, str) else f"{len(texts)} rows"
        raise ValueError(f"texts must hold one text (or pair) per example of {dataset.name!r} "
                         f"({len(dataset)}), in row order; got {got}")
    lexicon = load_lexicon(lexicon)
    if sides is None:
        sides = lexicon_sides(texts, lexicon)
    elif sides.shape != (len(dataset),):
        raise ValueError(f"sides must hold one value per example ({len(dataset)}), got shape {tuple(sides.shape)}")
    mentions = sides != 0
    x_cf = encode(substitute_strings(texts, lexicon))
    if not isinstance(x_cf, torch.Tensor) or x_cf.shape != x.shape or x_cf.dtype != x.dtype:
        got = f"{tuple(x_cf.shape)}, {x_cf.dtype}" if isinstance(x_cf, torch.Tensor) else type(x_cf).__name__
        raise ValueError(f"encode must return an int64 tensor of x's shape {tuple(x.shape)}, got {got}")
    x_cf = x_cf.to(x.device)
    changed = (x_cf != x).reshape(len(dataset), -1).any(dim=1)
    stray = (changed & ~mentions.to(x.device)).nonzero()[:, 0].tolist()
    if stray:
        raise ValueError(f"encode does not reproduce x: row {stray[0]} (a text without a lexicon word) "
                         f"encodes differently ({len(stray)} such rows); encode must be the tokenization "
                         "that made x (same tokenizer, max_length and padding) and texts in x's row order")
    counts = {"cf_texts_with_lexicon_word": int(mentions.sum()), "cf_texts_changed": int(changed.sum())}
    if counts["cf_texts_changed"] == 0:
        warnings.warn(f"no text of {dataset.name!r} changes under lexicon {lexicon.name!r} "
                      f"({counts['cf_texts_with_lexicon_word']} of {len(dataset)} mention a term, "
                      "all beyond max_length or tokenized alike): counterfactual augmentation and the "
                      "stress test have nothing to change; use a lexicon whose terms the texts contain",
                      stacklevel=2)
    if keeps_attr is None:
        keeps_attr = not swap_is_attribute(sides, dataset.attr.cpu())
    info = {**dataset.info, **counts, "counterfactual_lexicon": lexicon.name,
            "counterfactual_keeps_attr": keeps_attr,
            "input_extras": tuple(dict.fromkeys((*dataset.info.get("input_extras", ()), key)))}
    extras = {**dataset.extras, key: x_cf, f"{key}_changed": changed}
    return dataset.replace(extras=extras, info=info, counterfactual={"rule": "precomputed", "key": key,
                                                                     "keeps_attr": keeps_attr})


def swap_is_attribute(sides: torch.Tensor, attr: torch.Tensor) -> bool:
    """Return whether the two-valued ``attr`` is the lexicon side of every text mentioning one side.

    Args:
        sides: :func:`~robustml.augment.lexicon.lexicon_sides` of the texts (1: side A only,
            2: side B only), shape ``(N,)``.
        attr: The texts' attribute values (0 or 1), shape ``(N,)``.

    Returns:
        ``True`` when some text mentions one side only and, over all such texts, ``attr`` equals
        ``side - 1`` everywhere or ``2 - side`` everywhere; ``False`` otherwise.
    """
    one_side = (sides == 1) | (sides == 2)
    if not bool(one_side.any()):
        return False
    side_value = (sides[one_side] - 1).to(attr.dtype)
    values = attr.to(sides.device)[one_side]
    return bool((values == side_value).all()) or bool((values == 1 - side_value).all())
