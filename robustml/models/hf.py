"""A Hugging Face ``transformers`` sequence classifier on robustml's tokenized text splits.

``HFClassifier((3, 128), 3, name="bert-base-uncased")`` loads
``AutoModelForSequenceClassification`` by name (a local folder, ``package:<module>`` or a Hub
name, see :mod:`robustml.models.pretrained`), moves its last linear layer out as ``head`` and
keeps the rest as the body, so that ``features(x)`` is what that layer reads (BERT: the pooled
``[CLS]`` output) and DFR, AFR, DPE, the audit, cleaning and the feature cache work unchanged.

Inputs follow the text format of robustml's text splits: ``x`` int64 of shape ``(B, 3, L)``,
``x[:, 0]`` token ids, ``x[:, 1]`` attention mask (1 real token, 0 padding), ``x[:, 2]`` token
type ids. Each batch is trimmed to the last column that holds a real token of some row; the
masked columns cut off change no output (beyond float rounding: the attention sums run over
fewer zeros).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from robustml.data.contract import GroupedDataset
from robustml.models.backbones import last_linear
from robustml.models.pretrained import import_transformers, resolve_pretrained, unavailable


def _build_network(name: str | None, num_outputs: int, pretrained: bool,
                   config: Mapping[str, Any] | None) -> nn.Module:
    """Return ``AutoModelForSequenceClassification`` with ``num_outputs`` labels (see the class)."""
    transformers = import_transformers()
    overrides = {**dict(config or {}), "num_labels": num_outputs}
    if name is None:
        if pretrained:
            raise ValueError("model.pretrained=true needs model.name (a folder, package:<module> or "
                             "a Hugging Face Hub name); got model.name=null")
        if "model_type" not in overrides:
            raise ValueError("model.name=null builds the network from model.config alone, which then "
                             f"needs a model_type (e.g. 'bert'); got keys {sorted(overrides)}")
        model_type = overrides.pop("model_type")
        try:
            hf_config = transformers.AutoConfig.for_model(model_type, **overrides)
        except ValueError as error:
            raise ValueError(f"model.config.model_type={model_type!r} is not a transformers "
                             f"model type: {error}") from error
        return transformers.AutoModelForSequenceClassification.from_config(hf_config)
    source = resolve_pretrained(name, setting="model.name")
    try:
        if pretrained:
            # A fine-tuned classifier with another number of labels gets a new last layer.
            return transformers.AutoModelForSequenceClassification.from_pretrained(
                source, ignore_mismatched_sizes=True, **overrides)
        hf_config = transformers.AutoConfig.from_pretrained(source, **overrides)
    except OSError as error:
        raise unavailable(name, error, setting="model.name") from error
    return transformers.AutoModelForSequenceClassification.from_config(hf_config)


class HFClassifier(nn.Module):
    """``AutoModelForSequenceClassification`` with robustml's model interface.

    Args:
        input_shape: ``(3, max_length)``: one tokenized text (ids, mask, token types).
        num_outputs: Number of logits (1 for a binary task, robustml's convention).
        name: A local folder written by ``save_pretrained``, ``package:<module>`` or a Hub name
            (``bert-base-uncased``); ``None`` builds from ``config`` alone.
        pretrained: Load the checkpoint's weights (its classification layer too when it has one
            with ``num_outputs`` outputs; otherwise that layer is new, as for
            ``bert-base-uncased``); ``False`` initializes every weight randomly from the
            checkpoint's config.
        config: Config values that override the checkpoint's (``hidden_dropout_prob``), or, with
            ``name=None``, the whole config with its ``model_type`` (a tiny BERT for tests).
        gradient_checkpointing: Recompute activations in the backward pass (less GPU memory).

    Raises:
        ValueError: ``input_shape`` is not ``(3, L)``, ``L`` exceeds the network's position
            embeddings, or the settings contradict each other (named).
        PretrainedUnavailable: ``name`` is neither a folder nor loadable from the Hub (offline).
    """

    #: Rows per forward block when a whole in-memory split is predicted (evaluation, features):
    #: a transformer's activations grow with rows x length (BERT-base, 8,192 rows of 300 tokens:
    #: about 30 GB per feed-forward activation in float32), and small blocks trim more padding.
    predict_rows = 256

    def __init__(self, input_shape: Sequence[int], num_outputs: int, *,
                 name: str | None = "bert-base-uncased", pretrained: bool = True,
                 config: Mapping[str, Any] | None = None, gradient_checkpointing: bool = False) -> None:
        super().__init__()
        if len(input_shape) != 2 or input_shape[0] != 3:
            raise ValueError("model=hf reads tokenized text: input_shape must be (3, max_length) "
                             f"(token ids, attention mask, token type ids), got {tuple(input_shape)}; "
                             "use a text data config (data.tokenizer, data.max_length)")
        net = _build_network(name, num_outputs, pretrained, config)
        limit = getattr(net.config, "max_position_embeddings", None)
        if limit is not None and input_shape[1] > limit:
            raise ValueError(f"data.max_length={input_shape[1]} exceeds the {limit} positions of "
                             f"model.name={name!r}: expected data.max_length <= {limit}")
        parent, attribute, last = last_linear(net)
        if last.out_features != num_outputs:
            raise ValueError(f"the last linear layer of {type(net).__name__} has {last.out_features} "
                             f"outputs, not the {num_outputs} labels asked for: it is not the "
                             "classification layer, so features(x) cannot be defined by it")
        setattr(parent, attribute, nn.Identity())
        if gradient_checkpointing:  # renamed in transformers 5.x; the old name warns
            enable = getattr(net, "activation_checkpointing_enable", None) or net.gradient_checkpointing_enable
            enable()
        self.name = name
        self.body = net
        self.head = last
        self._token_types = "token_type_ids" in inspect.signature(net.forward).parameters

    def _inputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return the network's keyword inputs of ``x``, trimmed to the last real-token column."""
        if x.dim() != 3 or x.shape[1] != 3 or x.dtype.is_floating_point:
            raise ValueError("model=hf expects x of integer dtype and shape (batch, 3, length) "
                             f"(ids, mask, token types), got {x.dtype} {tuple(x.shape)}")
        mask = x[:, 1]
        used = mask.any(0).nonzero()
        length = int(used.max()) + 1 if used.numel() else 1
        inputs = {"input_ids": x[:, 0, :length], "attention_mask": mask[:, :length]}
        if self._token_types:
            inputs["token_type_ids"] = x[:, 2, :length]
        return inputs

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Return what ``head`` reads (BERT: the pooled ``[CLS]`` output), shape ``(B, D)``."""
        return self.body(**self._inputs(x)).logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return float32 logits, shape ``(B, num_outputs)``."""
        return self.head(self.features(x)).float()

    def check_inputs(self, split: GroupedDataset) -> None:
        """Raise ``ValueError`` when ``split`` was not tokenized for this network.

        Compares the split's ``info`` (written by the text data sets: ``tokenizer``,
        ``vocab_size``, ``pad_token_id``) and its largest token and token-type ids with the
        network's config (``vocab_size``, ``pad_token_id``, ``type_vocab_size``).
        """
        info, config = split.info, self.body.config
        if "tokenizer" not in info:
            raise ValueError(f"model=hf reads tokenized text, but the {split.name or 'data'} split has "
                             "no info['tokenizer']: use a text data config (data.tokenizer, "
                             "data.max_length)")
        pair = f"data.tokenizer={info['tokenizer']!r} and model.name={self.name!r}"
        vocab = getattr(config, "vocab_size", None)
        if vocab is not None and int(info.get("vocab_size", 0)) > vocab:
            raise ValueError(f"{pair} do not match: the tokenizer has {info['vocab_size']} tokens, "
                             f"the model's embeddings {vocab}; expected the model's own tokenizer "
                             "(set data.tokenizer to model.name)")
        pads = info.get("pad_token_id"), getattr(config, "pad_token_id", None)
        if None not in pads and int(pads[0]) != int(pads[1]):
            raise ValueError(f"{pair} do not match: padding id {pads[0]} in the data, {pads[1]} in "
                             "the model's config; expected the model's own tokenizer (set "
                             "data.tokenizer to model.name)")
        if not split.in_memory or len(split) == 0:
            return
        largest = int(split.x[:, 0].max())
        if vocab is not None and largest >= vocab:
            raise ValueError(f"{pair} do not match: the {split.name or 'data'} split holds token id "
                             f"{largest}, the model has {vocab} embeddings; expected the model's own "
                             "tokenizer (set data.tokenizer to model.name)")
        types = getattr(config, "type_vocab_size", None)
        largest_type = int(split.x[:, 2].max())
        if self._token_types and types is not None and largest_type >= types:
            raise ValueError(f"model.name={self.name!r} has {types} token type(s), but the "
                             f"{split.name or 'data'} split holds token type id {largest_type} "
                             "(text pairs): use a model with segment embeddings (BERT) for pairs")
