"""MultiNLI with annotated negations, as the Group DRO paper uses it (Sagawa et al., ICLR 2020).

Premise/hypothesis pairs with three labels (contradiction 0, entailment 1, neutral 2); the
spurious attribute is whether the hypothesis contains a negation word (``nobody``, ``no``,
``never``, ``nothing``; the list the paper takes from Gururangan et al., 2018), found as the
authors' script finds it: punctuation removed, lower-cased, split on spaces. Groups are label x
negation (6 groups). The splits are the paper's random 50/20/30 re-split of MultiNLI's train and
dev sets, read from the authors' ``metadata_random.csv``.

Files (under ``root/multinli/``), the ones the authors' ``dataset_scripts/generate_multinli.py``
reads, in their published layout:

- ``multinli_1.0/multinli_1.0_train.jsonl``, ``multinli_1.0_dev_matched.jsonl``,
  ``multinli_1.0_dev_mismatched.jsonl``: MultiNLI 1.0 (Williams et al., 2018), one JSON object per
  line with ``gold_label``, ``sentence1`` (premise) and ``sentence2`` (hypothesis), from
  https://cims.nyu.edu/~sbowman/multinli/multinli_1.0.zip;
- ``metadata_random.csv``: the Group DRO repository's ``dataset_metadata/multinli/metadata_random.csv``
  (an index column, ``gold_label``, ``sentence2_has_negation``, ``split``): its index is the row's
  position in the three files concatenated in that order; rows whose ``gold_label`` is ``-`` (no
  majority label) are absent from it.

The negation attribute is the metadata's (the paper's); it is also recomputed from the
hypotheses, and the number of rows where the two differ is reported. Pairs are truncated
``longest_first`` to ``max_length`` (128 in the paper's BERT features).
"""

from __future__ import annotations

import string
import shutil
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from robustml.atomic import atomic_path
from robustml.data.checks import check_columns
from robustml.data.contract import DataSplits
from robustml.data.missing import missing_data_error
from robustml.text.splits import text_splits
from robustml.validation import check_bool

FILES = ("multinli_1.0_train.jsonl", "multinli_1.0_dev_matched.jsonl", "multinli_1.0_dev_mismatched.jsonl")
METADATA = "metadata_random.csv"
MNLI_URL = "https://cims.nyu.edu/~sbowman/multinli/multinli_1.0.zip"
METADATA_URL = ("https://raw.githubusercontent.com/kohpangwei/group_DRO/master/dataset_metadata/"
                f"multinli/{METADATA}")
CLASS_NAMES = ("contradiction", "entailment", "neutral")
NEGATION_WORDS = ("nobody", "no", "never", "nothing")
METADATA_COLUMNS = ("gold_label", "sentence2_has_negation", "split")
LAYOUT = (f"Expected multinli/multinli_1.0/{{{','.join(FILES)}}} (MultiNLI 1.0, {MNLI_URL}) and "
          f"multinli/{METADATA} (the Group DRO repository's dataset_metadata/multinli/{METADATA}: "
          "index, gold_label, sentence2_has_negation, split).")


def has_negation(hypothesis: str) -> bool:
    """Return whether ``hypothesis`` holds a negation word, by the Group DRO script's rule."""
    words = hypothesis.translate(str.maketrans("", "", string.punctuation)).lower().split(" ")
    return any(word in words for word in NEGATION_WORDS)


def find_multinli(root: str | Path) -> tuple[Path, Path]:
    """Return ``(folder of the jsonl files, metadata file)`` under ``root``."""
    root = Path(root)
    for base in (root / "multinli", root):
        folder, metadata = base / "multinli_1.0", base / METADATA
        if all((folder / name).is_file() for name in FILES) and metadata.is_file():
            return folder, metadata
    missing = [f"multinli/multinli_1.0/{name}" for name in FILES
               if not (root / "multinli" / "multinli_1.0" / name).is_file()]
    if not (root / "multinli" / METADATA).is_file():
        missing.append(f"multinli/{METADATA}")
    raise missing_data_error("MultiNLI", root, missing, layout=LAYOUT,
                             download_hint="When online, pass download=true to download both.")


def download_multinli(root: str | Path) -> tuple[Path, Path]:
    """Download MultiNLI 1.0 and the paper's metadata into ``root/multinli`` (atomic writes).

    Neither source publishes a checksum; the files are checked by content when read (the metadata
    must index rows of the three files, with the same labels).
    """
    base = Path(root) / "multinli"
    archive = base / "multinli_1.0.zip"
    if not archive.is_file():
        with atomic_path(archive) as tmp:
            urllib.request.urlretrieve(MNLI_URL, tmp)  # noqa: S310 (a fixed https URL)
    with zipfile.ZipFile(archive) as handle:
        for name in FILES:
            with handle.open(f"multinli_1.0/{name}") as source, atomic_path(base / "multinli_1.0" / name) as tmp, \
                    open(tmp, "wb") as out:
                shutil.copyfileobj(source, out)  # streamed: the training file is 300 MB
    if not (base / METADATA).is_file():
        with atomic_path(base / METADATA) as tmp:
            urllib.request.urlretrieve(METADATA_URL, tmp)  # noqa: S310
    return find_multinli(root)


def read_pairs(folder: Path) -> pd.DataFrame:
    """Return the three jsonl files concatenated (``gold_label``, ``sentence1``, ``sentence2``)."""
    frames = []
    for name in FILES:
        frame = pd.read_json(folder / name, lines=True, dtype=False)
        check_columns(list(frame.columns), ("gold_label", "sentence1", "sentence2"), source=str(folder / name))
        frames.append(frame[["gold_label", "sentence1", "sentence2"]])
    return pd.concat(frames, ignore_index=True)


def multinli_splits(root: str | Path, *, tokenizer: str = "bert-base-uncased", max_length: int = 128,
                    cache_dir: str | None = "text_cache", empty_text: str = "keep",
                    download: bool = False) -> DataSplits:
    """Return the Group DRO paper's MultiNLI splits, tokenized as pairs (in memory).

    Args:
        root: Data root holding ``multinli/`` (see the module docstring for the layout).
        tokenizer: Local folder, ``package:<module>`` or Hub name of the tokenizer.
        max_length: Tokens per pair (128 in the paper).
        cache_dir: Folder of the token cache (relative to the working directory), or ``None``.
        empty_text: ``keep`` an empty premise or hypothesis as ``""`` or ``drop`` the pair.
        download: Download the files first when absent (needs internet).

    Raises:
        FileNotFoundError: A file is missing (the expected layout is named).
        ValueError: The metadata indexes rows the files lack, or its labels differ from theirs.
    """
    download = check_bool("download", download)
    try:
        folder, metadata_path = find_multinli(root)
    except FileNotFoundError:
        if not download:
            raise
        folder, metadata_path = download_multinli(root)
    pairs = read_pairs(folder)
    meta = pd.read_csv(metadata_path, index_col=0)
    check_columns(list(meta.columns), METADATA_COLUMNS, source=str(metadata_path))
    outside = meta.index[(meta.index < 0) | (meta.index >= len(pairs))]
    if len(outside):
        raise ValueError(f"{metadata_path} indexes row(s) {outside[:5].tolist()} but the three files in "
                         f"{folder} hold {len(pairs):,} rows; the metadata belongs to MultiNLI 1.0's "
                         f"files in the order {', '.join(FILES)}")
    rows = pairs.loc[meta.index].reset_index(drop=True)
    codes = rows["gold_label"].map({name: i for i, name in enumerate(CLASS_NAMES)})
    y = meta["gold_label"].to_numpy()
    differ = np.flatnonzero(codes.to_numpy() != y)
    if len(differ) or set(np.unique(y)) - {0, 1, 2}:
        first = int(meta.index[differ[0]]) if len(differ) else None
        raise ValueError(f"{metadata_path}: {len(differ):,} row(s) have another gold_label than the files "
                         f"in {folder} (first at index {first}); the metadata's labels must be "
                         f"{dict(enumerate(CLASS_NAMES))} of the same rows")
    attr = meta["sentence2_has_negation"].to_numpy(dtype=np.int64)
    recomputed = rows["sentence2"].fillna("").astype(str).map(has_negation).to_numpy()
    disagree = int((recomputed != attr.astype(bool)).sum())
    split = meta["split"].to_numpy(dtype=np.int64)
    description = (
        f"MultiNLI with annotated negations (Sagawa et al. 2020) from {folder} and {metadata_path} "
        f"({len(meta):,} pairs): labels {', '.join(CLASS_NAMES)}; groups label x negation in the "
        f"hypothesis ({', '.join(NEGATION_WORDS)}; the metadata's attribute, which the rule recomputed "
        f"from the hypotheses contradicts in {disagree:,} rows); the paper's random splits (column 'split').")
    return text_splits(
        rows, text_columns=("sentence1", "sentence2"), y=y.astype(np.int64), attr=attr, split=split,
        num_classes=3, class_names=CLASS_NAMES, attr_names=("no_negation", "negation"),
        attr_key="negation", tokenizer=tokenizer, max_length=max_length, cache_dir=cache_dir,
        empty_text=empty_text, name="multinli", description=description, source=str(metadata_path),
        split_hint="The paper's metadata has pairs of every split (0 train, 1 val, 2 test).")
