"""Text data sets as in-memory grouped splits: read the text columns, apply the empty-text policy,
tokenize once (cached, :mod:`~robustml.text.tokens`) and cut the splits.

Every split is a :class:`~robustml.data.contract.GroupedTensorDataset` whose ``x`` is the text
input format (int64 ``(N, 3, max_length)``: input ids, attention mask, token type ids), so the
full-batch protocol, samplers, metrics and the feature cache work on it unchanged. Its ``info``
holds ``tokenizer`` (the setting's value), ``vocab_size``, ``pad_token_id``, ``max_length``,
``truncation``, ``text_columns``, ``empty_text`` (the policy), ``empty_texts`` (texts of the split
that were empty, kept as ``""``, or dropped from the data set before splitting) and
``truncated`` (rows of the split that lost tokens at ``max_length``); the splits' description
repeats the counts.

Empty texts: a cell that is missing (NaN) or holds only whitespace. ``empty_text="keep"`` (the
default) keeps the example with the empty string as its text (the model sees only the special
tokens); ``"drop"`` removes it. Either way the count is reported.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from robustml.data.checks import check_split_sizes, empty_group_note, format_counts
from robustml.data.contract import DataSplits, GroupedTensorDataset
from robustml.text.tokens import cached_tokens

EMPTY_TEXT_RULES = ("keep", "drop")
TRUNCATED_SHARE = 0.1  # above it, a warning: max_length cuts the texts the model is meant to read
EMPTY_SHARE = 0.5      # above it, a warning: the text column is mostly empty
SPLIT_NAMES = ("train", "val", "test")


def check_empty_text(empty_text: Any) -> str:
    """Return ``empty_text`` when it is a valid policy; raise naming the setting otherwise."""
    if empty_text not in EMPTY_TEXT_RULES:
        raise ValueError(f"empty_text must be one of {list(EMPTY_TEXT_RULES)} (keep an empty text as "
                         f"'' or drop its row; counted either way), got {empty_text!r}")
    return empty_text


def empty_texts(frame: Any, columns: Sequence[str]) -> np.ndarray:
    """Return a bool mask of the rows whose text is missing or blank in any of ``columns``."""
    mask = np.zeros(len(frame), dtype=bool)
    for column in columns:
        values = frame[column]
        mask |= (values.isna() | values.astype(str).str.strip().eq("")).to_numpy()
    return mask


def warn_if_degenerate(truncated: np.ndarray, empty: np.ndarray, columns: Sequence[str],
                       max_length: int) -> None:
    """Warn, in one line naming what to change, when over :data:`TRUNCATED_SHARE` of the texts
    were cut at ``max_length`` or over :data:`EMPTY_SHARE` of them are empty."""
    if len(truncated) and truncated.mean() > TRUNCATED_SHARE:
        warnings.warn(f"{int(truncated.sum()):,} of {len(truncated):,} rows ({truncated.mean():.0%}) are "
                      f"longer than max_length={max_length} tokens and were truncated; raise max_length "
                      "(data.max_length) to keep more of each text", stacklevel=3)
    if len(empty) and empty.mean() > EMPTY_SHARE:
        warnings.warn(f"{int(empty.sum()):,} of {len(empty):,} rows ({empty.mean():.0%}) have an empty text "
                      f"in column(s) {list(columns)}; check that these are the columns that hold the texts",
                      stacklevel=3)


def text_splits(frame: Any, *, text_columns: Sequence[str], y: np.ndarray, attr: np.ndarray,
                split: np.ndarray, num_classes: int, class_names: Sequence[str],
                attr_names: Sequence[str], attr_key: str, tokenizer: str, max_length: int,
                cache_dir: str | None, empty_text: str, name: str, description: str,
                source: str, extras: Mapping[str, np.ndarray] | None = None,
                info: Mapping[str, Any] | None = None, split_hint: str = "",
                counterfactual_lexicon: str | None = None) -> DataSplits:
    """Tokenize the rows of ``frame`` and return their train/val/test splits.

    Args:
        frame: The rows, one per example (a :class:`pandas.DataFrame`).
        text_columns: One column (single texts) or two (pairs: text, text_pair).
        y, attr, split: Per-row class ids, attribute ids and split ids (0 train, 1 val, 2 test).
        num_classes, class_names, attr_names, attr_key: The grouped-data contract's metadata.
        tokenizer: The ``tokenizer`` setting (local folder, ``package:<module>`` or Hub name).
        max_length: Tokens per row.
        cache_dir: Folder of the token cache, or ``None``.
        empty_text: ``"keep"`` or ``"drop"`` (see the module docstring).
        name: Data set name (reports, cache file names).
        description: Opening sentences of the splits' description.
        source: The file the rows come from, for errors.
        extras: Per-row arrays carried into every split as ``extras`` (e.g. overlapping groups).
        info: Data-set facts added to every split's ``info``.
        split_hint: What to change when a split is empty.
        counterfactual_lexicon: A lexicon of word pairs (``identity``, ``gender`` or a file;
            :func:`robustml.augment.load_lexicon`): each split gets its texts' counterfactuals
            (the pairs swapped in the raw text, then tokenized the same way, cached) as
            ``extras["x_cf"]`` and the rule that reads them
            (:func:`robustml.augment.attach_text_counterfactuals`); ``None``: no counterfactual.
    """
    empty_text = check_empty_text(empty_text)
    if len(text_columns) not in (1, 2):
        raise ValueError(f"text_columns must name one column (single texts) or two (pairs), got "
                         f"{list(text_columns)}")
    bad = sorted(set(np.unique(np.asarray(split)).tolist()) - {0, 1, 2})
    if bad:
        raise ValueError(f"{source}: split ids must be 0 (train), 1 (val) or 2 (test), got {bad[:5]}")
    empty = empty_texts(frame, text_columns)
    split_empty = {s: int(empty[np.asarray(split) == s_id].sum()) for s_id, s in enumerate(SPLIT_NAMES)}
    kept = np.flatnonzero(~empty if empty_text == "drop" else np.ones(len(frame), dtype=bool))
    # The kept rows ordered by split (stable: file order within a split), so that each split's
    # tokens are a slice of one tensor, not a copy (CivilComments' tokens take 3.2 GB at 300).
    rows = kept[np.argsort(np.asarray(split)[kept], kind="stable")]
    texts = [frame[c].fillna("").astype(str).where(~empty, "").to_numpy()[rows].tolist() for c in text_columns]
    tokens = cached_tokens(tokenizer, texts[0], texts[1] if len(texts) == 2 else None,
                           max_length=max_length, cache_dir=cache_dir, name=name)
    warn_if_degenerate(tokens.truncated, empty, text_columns, max_length)
    y, attr, split = (torch.from_numpy(np.asarray(a, dtype=np.int64)[rows]) for a in (y, attr, split))
    extra = {k: torch.as_tensor(np.asarray(v)[rows]) for k, v in (extras or {}).items()}
    ends = np.searchsorted(split.numpy(), np.arange(len(SPLIT_NAMES) + 1))
    datasets = {}
    for s_id, s in enumerate(SPLIT_NAMES):
        part = slice(int(ends[s_id]), int(ends[s_id + 1]))
        datasets[s] = GroupedTensorDataset(
            tokens.x[part], y[part], attr[part], num_classes=num_classes, attr_names=attr_names,
            attr_key=attr_key, class_names=class_names, name=name,
            extras={k: v[part] for k, v in extra.items()},
            info={**tokens.info, "text_columns": tuple(text_columns), "empty_text": empty_text,
                  "empty_texts": split_empty[s], "truncated": int(tokens.truncated[part].sum()),
                  **(info or {})})
    check_split_sizes({s: len(d) for s, d in datasets.items()}, source=source, how=split_hint)
    if counterfactual_lexicon is not None:
        from robustml.augment import attach_text_counterfactuals, lexicon_sides, load_lexicon  # a lexicon only
        from robustml.augment.text import swap_is_attribute
        rows_of = list(zip(*texts)) if len(texts) == 2 else texts[0]
        lexicon = load_lexicon(counterfactual_lexicon)
        sides = lexicon_sides(rows_of, lexicon)   # one pass over the texts, sliced per split below
        # Decided once over every split, so that all splits agree on what a swap does.
        keeps_attr = not swap_is_attribute(sides, attr)

        def encode(swapped: list) -> torch.Tensor:
            firsts, seconds = (swapped, None) if len(texts) == 1 else map(list, zip(*swapped))
            return cached_tokens(tokenizer, firsts, seconds, max_length=max_length, cache_dir=cache_dir,
                                 name=f"{name}_cf").x

        for s_id, s in enumerate(SPLIT_NAMES):
            part = slice(int(ends[s_id]), int(ends[s_id + 1]))
            datasets[s] = attach_text_counterfactuals(datasets[s], rows_of[part], lexicon, encode,
                                                      keeps_attr=keeps_attr, sides=sides[part])
    did = "dropped" if empty_text == "drop" else "kept as ''"
    counts = ", ".join(f"{s} {len(d):,} ({d.info['truncated']:,} truncated, {split_empty[s]:,} empty "
                       f"{did})" for s, d in datasets.items())
    cache = ("" if tokens.cache is None else
             f" Tokens {'reused from' if tokens.reused else 'written to'} the cache {tokens.cache}.")
    tokenized = (f"Texts of column(s) {', '.join(text_columns)} tokenized with {tokenizer} to {max_length} "
                 f"tokens (truncation {tokens.info['truncation']}): {counts}.{cache}")
    groups = " ".join(f"{s.capitalize()} group counts: {format_counts(d)}." for s, d in datasets.items())
    swapped = "" if counterfactual_lexicon is None else (
        f" Counterfactuals: lexicon {counterfactual_lexicon} swapped in the raw texts; texts changed "
        + ", ".join(f"{s} {d.info['cf_texts_changed']:,}" for s, d in datasets.items())
        + ("; the swap leaves the attribute as it is (counterfactuals keep their group)"
           if datasets["train"].info["counterfactual_keeps_attr"] else
           f"; the swap changes the attribute {attr_key}") + ".")
    text = " ".join(p for p in (description, tokenized + swapped, groups, empty_group_note(datasets)) if p)
    return DataSplits(datasets["train"], datasets["val"], datasets["test"], description=text)

