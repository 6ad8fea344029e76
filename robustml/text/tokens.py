"""Tokenize texts once into the text input format, and keep the token tensor in an on-disk cache.

The format (shared by every text data set and model): ``x`` is int64 of shape ``(N, 3, L)``,
``x[:, 0]`` the input ids, ``x[:, 1]`` the attention mask (1 real token, 0 padding), ``x[:, 2]``
the token type ids (0 for single texts; 0 then 1 for pairs), padded to ``L = max_length`` with the
tokenizer's pad id and truncated to ``max_length`` (the three arrays of the Group DRO authors'
MultiNLI features and of WILDS' BERT inputs, which stack them on the last axis, ``(N, L, 3)``).

Pairs are truncated ``longest_first`` (a token is removed from the longer text until the pair
fits), the rule of ``truncation=True`` in ``transformers``, which WILDS uses for CivilComments,
and nearly that of the Group DRO authors' MultiNLI features (``_truncate_seq_pair`` in the GLUE
preprocessing they used): where both texts must be cut, the fast tokenizer gives an odd leftover
token to the second text, theirs to the first (a one-token difference). A text is counted as truncated when tokens were cut from it (or its pair).

A cache entry is ``<cache_dir>/<name>_<key>.npz`` holding the token tensor (int32 on disk) and
the per-row truncation flags; ``key`` hashes the tokenizer's full definition (its
``tokenizer.json``: vocabulary, normalizer, special tokens), ``max_length``, the truncation rule
and the texts, so two tokenizers in different folders never share an entry and a second build with
the same inputs reuses it. Entries are written through :func:`robustml.atomic.atomic_path` (whole
or absent), like the feature cache.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robustml.atomic import atomic_path
from robustml.identity import hash_key
from robustml.validation import check_int

log = logging.getLogger(__name__)
CACHE_VERSION = "robustml.text_tokens/1"  # bump when the same inputs would give other tokens
TRUNCATION = "longest_first"
CHUNK = 8192  # texts encoded per call (the encodings, with their cut-off tokens, are large objects)


@dataclass
class Tokens:
    """Tokenized texts: ``x`` int64 ``(N, 3, max_length)``, ``truncated`` bool ``(N,)``, and
    ``info``: the dataset-level facts every text split carries (``tokenizer``, ``vocab_size``,
    ``pad_token_id``, ``max_length``, ``truncation``); ``cache`` is the entry's path and
    ``reused`` whether it was read from the cache."""

    x: torch.Tensor
    truncated: np.ndarray
    info: dict[str, Any]
    cache: Path | None = None
    reused: bool = False


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Return the full definition of a fast tokenizer as text: its ``tokenizer.json``, and the
    settings :func:`tokenize` reads beside it (the padding token and id, type id and side, the
    truncation side), which ``tokenizer_config.json`` may set differently for the same JSON."""
    beside = (tokenizer.pad_token, tokenizer.pad_token_id, tokenizer.pad_token_type_id,
              tokenizer.padding_side, getattr(tokenizer, "truncation_side", "right"))
    return tokenizer.backend_tokenizer.to_str() + repr(beside)


def tokenize(tokenizer: Any, texts: Sequence[str], pairs: Sequence[str] | None = None, *,
             max_length: int) -> tuple[torch.Tensor, np.ndarray]:
    """Return ``(x, truncated)``: the texts (and their pairs) in the text input format.

    The tokenizer's own fast backend does the work in one batch (a copy with truncation and
    padding set to ``max_length``), which equals ``tokenizer(texts, pairs, padding="max_length",
    truncation="longest_first", max_length=max_length)`` and also says which rows lost tokens.

    Args:
        tokenizer: A fast tokenizer (:func:`robustml.models.pretrained.load_tokenizer`).
        texts: The first (or only) text of each example.
        pairs: The second text of each example (MultiNLI's hypothesis), or ``None``.
        max_length: Tokens per row, special tokens included.

    Returns:
        ``x`` int64 ``(N, 3, max_length)`` and ``truncated`` bool ``(N,)``.
    """
    max_length = check_int("max_length", max_length, minimum=2 if pairs is None else 3)
    if pairs is not None and len(pairs) != len(texts):
        raise ValueError(f"pairs must hold one text per example ({len(texts)}), got {len(pairs)}")
    backend = copy.deepcopy(tokenizer.backend_tokenizer)
    backend.enable_truncation(max_length, strategy=TRUNCATION,
                              direction=getattr(tokenizer, "truncation_side", "right"))
    backend.enable_padding(length=max_length, pad_id=tokenizer.pad_token_id, pad_token=tokenizer.pad_token,
                           pad_type_id=tokenizer.pad_token_type_id, direction=tokenizer.padding_side)
    inputs = list(texts) if pairs is None else list(zip(texts, pairs))
    x = np.zeros((len(inputs), 3, max_length), dtype=np.int64)
    truncated = np.zeros(len(inputs), dtype=bool)
    for start in range(0, len(inputs), CHUNK):  # chunks: the encodings of 448,000 comments at once
        encodings = backend.encode_batch(inputs[start:start + CHUNK], add_special_tokens=True)
        x[start:start + len(encodings), 0] = [e.ids for e in encodings]
        x[start:start + len(encodings), 1] = [e.attention_mask for e in encodings]
        x[start:start + len(encodings), 2] = [e.type_ids for e in encodings]
        truncated[start:start + len(encodings)] = [bool(e.overflowing) for e in encodings]
    return torch.from_numpy(x), truncated


def token_info(tokenizer: Any, setting: str, max_length: int) -> dict[str, Any]:
    """Return the ``info`` entries of the text input format for ``tokenizer`` (named ``setting``)."""
    return {"tokenizer": setting, "vocab_size": len(tokenizer), "pad_token_id": int(tokenizer.pad_token_id),
            "max_length": int(max_length), "truncation": TRUNCATION}


def cached_tokens(tokenizer_name: str, texts: Sequence[str], pairs: Sequence[str] | None = None, *,
                  max_length: int, cache_dir: str | Path | None, name: str = "text") -> Tokens:
    """Return the tokens of ``texts`` (and ``pairs``), from the cache when an entry matches.

    Args:
        tokenizer_name: A local folder, ``package:<module>`` or a Hub name
            (:func:`robustml.models.pretrained.load_tokenizer`; offline, a Hub name outside the
            cache fails with :class:`~robustml.models.pretrained.PretrainedUnavailable`).
        texts: The first (or only) text of each example; every one a ``str``.
        pairs: The second texts, or ``None``.
        max_length: Tokens per row.
        cache_dir: Folder of the cache entries; ``None`` tokenizes without a cache.
        name: Prefix of the entry's file name (the data set's name).
    """
    from robustml.models.pretrained import load_tokenizer  # transformers: only where texts are built
    if tokenizer_name is None:
        raise ValueError("tokenizer is null: name the tokenizer (data.tokenizer=<folder, package:<module> "
                         "or Hub name>); it follows model.name, which is null for a model built from "
                         "its config alone")
    tokenizer = load_tokenizer(tokenizer_name, setting="tokenizer")
    max_length = check_int("max_length", max_length, minimum=2)
    if tokenizer.pad_token_id is None:
        raise ValueError(f"tokenizer={tokenizer_name!r} has no padding token; the text input format "
                         "pads every row to max_length, so use a tokenizer with a pad token")
    info = token_info(tokenizer, tokenizer_name, max_length)
    if cache_dir is None:
        x, truncated = tokenize(tokenizer, texts, pairs, max_length=max_length)
        return Tokens(x, truncated, info)
    key = hash_key(CACHE_VERSION, tokenizer_fingerprint(tokenizer), max_length, TRUNCATION,
                   list(texts), None if pairs is None else list(pairs))
    path = Path(cache_dir) / f"{name}_{key[:20]}.npz"
    if path.is_file():
        with np.load(path) as entry:
            x, truncated = torch.from_numpy(entry["x"].astype(np.int64)), entry["truncated"]
        log.info("text cache: reusing %s (%d texts)", path, len(texts))
        return Tokens(x, truncated, info, path, reused=True)
    x, truncated = tokenize(tokenizer, texts, pairs, max_length=max_length)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, x=x.numpy().astype(np.int32), truncated=truncated)
    log.info("text cache: tokenized %d texts into %s", len(texts), path)
    return Tokens(x, truncated, info, path)
