"""Word-pair lexicons on raw text: whole-word, case-preserving swaps, and which side a text mentions.

The one home of raw-text substitution (identity terms or gendered words swapped before
tokenization, as counterfactually augmented data and gender-swap augmentation do). A lexicon is a
list of pairs ``(a, b)``; side A holds the first terms, side B the second.

Matching, as tested in ``tests/augment/test_lexicon.py``:

- Whole words only, case-insensitive: a term matches between word boundaries (Python's ``\\b``
  with Unicode word characters: letters of any script, digits and ``_``). So ``he`` never matches
  inside ``the``, ``he2``, ``he_said`` or ``héhe``; punctuation and apostrophes end a word:
  ``he's`` -> ``she's``, ``his.`` -> ``her.``, ``Her,`` -> ``His,``.
- A hyphen ends a word too: ``she-wolf`` -> ``he-wolf`` (each part of a compound is a word).
- Multi-word terms (``african american``): their words may be separated by spaces or hyphens
  in the text (``African-American``); the separators are kept when both terms have as many
  words, otherwise the partner's words are joined by single spaces. At one position the longest
  term wins (``african american`` before a lone ``african``).
- Case follows the match: ``HE`` -> ``SHE`` (all capitals, two letters or more), ``African
  American`` -> ``European American`` (every word capitalized), ``He`` -> ``She`` (first letter),
  anything else -> the partner as the lexicon spells it (lower case).
- Terms are lower-cased; a term in two pairs, a pair ``(a, a)`` or a pair listed twice in both
  orders is an error. A term is words of word characters, with apostrophes allowed inside a word.

The word-for-word swap knows no grammar: ``her`` is both ``his`` and ``him``, so a one-to-one
lexicon keeps ``his <-> her`` and leaves ``him`` unchanged (the built-in ``gender`` lexicon says so).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import reduce
from importlib import resources
from operator import or_
from pathlib import Path

import torch

from robustml.augment.lookup import partner_map

#: Bit flags of :func:`lexicon_sides`: a text mentions side A, side B, both (3) or neither (0).
SIDE_A, SIDE_B = 1, 2
#: Built-in lexicons, shipped as package data in ``robustml/augment/lexicons/``.
BUILTIN_LEXICONS = {"gender": "gender.txt", "identity": "identity.txt"}

_SEPARATOR = re.compile(r"[\s\-]+")
_WORD = re.compile(r"\w+(?:['\u2019]\w+)*")

Row = str | Sequence[str]  # one text, or a pair (premise, hypothesis)


def _term(term: str, label: str) -> tuple[str, ...]:
    words = tuple(w for w in _SEPARATOR.split(str(term).strip().lower()) if w)
    if not words or not all(_WORD.fullmatch(w) for w in words):
        raise ValueError(f"{label}: a term must be one or more words of letters, digits or _ "
                         f"(apostrophes allowed inside a word), got {term!r}")
    return words


def _case_like(matched: Sequence[str], words: Sequence[str]) -> list[str]:
    text = "".join(matched)
    letters = [c for c in text if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return [w.upper() for w in words]
    if len(matched) > 1 and all(w[:1].isupper() for w in matched):
        return [w[:1].upper() + w[1:] for w in words]
    if text[:1].isupper():
        return [words[0][:1].upper() + words[0][1:], *words[1:]]
    return list(words)


class Lexicon:
    """A list of word pairs, compiled once into one whole-word, case-insensitive pattern.

    Args:
        pairs: ``[(a, b), ...]``: terms of side A and their partners on side B.
        name: Name for reports (a built-in name or a file path).
        labels: Optional name of each pair for error messages (``"file.txt, line 3"``).
    """

    def __init__(self, pairs: Sequence[tuple[str, str]], *, name: str = "",
                 labels: Sequence[str] | None = None) -> None:
        if isinstance(pairs, str) or len(pairs) == 0:
            raise ValueError(f"pairs must hold at least one (a, b) pair, got {pairs!r}")
        labels = list(labels) if labels is not None else [f"pair {i} of {name or 'the lexicon'}"
                                                          for i in range(len(pairs))]
        terms = []
        for pair, label in zip(pairs, labels, strict=True):
            if isinstance(pair, str) or len(pair) != 2:
                raise ValueError(f"{label}: a pair must be two terms (a, b), got {pair!r}")
            terms.append(tuple(" ".join(_term(t, label)) for t in pair))
        self.partner = partner_map(terms, labels=labels)
        self.side: dict[str, int] = {}
        for (a, b), label in zip(terms, labels, strict=True):
            for term, side in ((a, SIDE_A), (b, SIDE_B)):
                if self.side.setdefault(term, side) != side:
                    raise ValueError(f"{label}: the pair ({a!r}, {b!r}) repeats another pair in the "
                                     "other order; list each pair once")
        self.pairs = tuple(dict.fromkeys(terms))
        self.name = name
        # Looked up by casefold: the pattern's IGNORECASE also matches e.g. U+017F for "s".
        self._term = {term.casefold(): term for term in self.partner}
        if len(self._term) != len(self.partner):
            raise ValueError(f"{name or 'the lexicon'}: two terms differ only in case folding, in "
                             f"{sorted(self.partner)}")
        longest_first = sorted(self.partner, key=lambda t: (-len(t), t))
        alternatives = (r"[\s\-]+".join(map(re.escape, t.split(" "))) for t in longest_first)
        self.pattern = re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.IGNORECASE)

    def _lookup(self, words: Sequence[str]) -> str:
        return self._term[" ".join(words).casefold()]

    def _swap_match(self, match: re.Match) -> str:
        text = match.group(0)
        words, separators = _SEPARATOR.split(text), _SEPARATOR.findall(text)
        new = _case_like(words, self.partner[self._lookup(words)].split(" "))
        if len(new) != len(words):
            return " ".join(new)
        return "".join(w + s for w, s in zip(new, [*separators, ""], strict=True))

    def swap(self, text: str) -> str:
        """Return ``text`` with every term replaced by its partner (both directions at once)."""
        return self.pattern.sub(self._swap_match, text)

    def sides(self, text: str) -> int:
        """Return which sides ``text`` mentions: 0, :data:`SIDE_A`, :data:`SIDE_B` or both (3)."""
        found = 0
        for match in self.pattern.finditer(text):
            found |= self.side[self._lookup(_SEPARATOR.split(match.group(0)))]
        return found

    def __repr__(self) -> str:
        return f"Lexicon({self.name!r}, {len(self.pairs)} pairs)"


def read_lexicon_file(path: str | Path) -> Lexicon:
    """Read a lexicon file: one pair per line, ``a,b`` or ``a<TAB>b``; ``#`` starts a comment.

    Blank lines and comments are skipped; a multi-word term is written with spaces
    (``african american,european american``). A malformed line raises ``ValueError`` naming the
    file and the line.
    """
    path = Path(path)
    pairs, labels = [], []
    for number, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        label = f"{path}, line {number}"
        fields = [field.strip() for field in line.split("\t" if "\t" in line else ",")]
        if len(fields) != 2 or not all(fields):
            raise ValueError(f"{label}: expected one pair 'a,b' or 'a<TAB>b', got {raw!r}")
        pairs.append(tuple(fields))
        labels.append(label)
    if not pairs:
        raise ValueError(f"lexicon file {path} holds no pair (one 'a,b' or 'a<TAB>b' per line)")
    return Lexicon(pairs, name=str(path), labels=labels)


def load_lexicon(source: str | Path | Lexicon | Sequence[tuple[str, str]]) -> Lexicon:
    """Return the lexicon ``source`` names: a built-in name, a file, a :class:`Lexicon` or pairs.

    Built-in names (:data:`BUILTIN_LEXICONS`): ``gender`` (gendered words, the gender-swap
    literature) and ``identity`` (identity terms, for CivilComments); files are read by
    :func:`read_lexicon_file`.
    """
    if isinstance(source, Lexicon):
        return source
    if isinstance(source, str) and source in BUILTIN_LEXICONS:
        file = resources.files("robustml.augment") / "lexicons" / BUILTIN_LEXICONS[source]
        with resources.as_file(file) as path:
            lexicon = read_lexicon_file(path)
        lexicon.name = source
        return lexicon
    if isinstance(source, str | Path):
        if not Path(source).is_file():
            raise FileNotFoundError(f"lexicon {str(source)!r} is neither a built-in lexicon "
                                    f"({', '.join(sorted(BUILTIN_LEXICONS))}) nor an existing file")
        return read_lexicon_file(source)
    if not isinstance(source, Sequence):
        raise TypeError(f"lexicon must be a built-in name, a file, a Lexicon or a list of pairs, "
                        f"got {type(source).__name__}")
    return Lexicon(source)


def _rows(texts: Sequence[Row]) -> list[tuple[str, ...] | str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings (or of pairs of strings), got a single str")
    rows = []
    for i, row in enumerate(texts):
        parts = (row,) if isinstance(row, str) else tuple(row) if isinstance(row, Sequence) else None
        if not parts or not all(isinstance(p, str) for p in parts):
            raise TypeError(f"texts[{i}] must be a str or a pair of str, got {row!r}")
        rows.append(row if isinstance(row, str) else parts)
    return rows


def substitute_strings(texts: Sequence[Row], lexicon: str | Path | Lexicon | Sequence[tuple[str, str]]) -> list:
    """Return ``texts`` with every lexicon term swapped for its partner (whole words, case kept).

    Args:
        texts: Strings, or pairs of strings (premise, hypothesis: both are swapped).
        lexicon: Anything :func:`load_lexicon` takes (pairs ``[(a, b), ...]``, a built-in name,
            a file, a :class:`Lexicon`).

    Returns:
        A list of the same length: a string per string, a tuple per pair.
    """
    lexicon = load_lexicon(lexicon)
    return [lexicon.swap(row) if isinstance(row, str) else tuple(map(lexicon.swap, row))
            for row in _rows(texts)]


def lexicon_sides(texts: Sequence[Row], lexicon: str | Path | Lexicon | Sequence[tuple[str, str]]) -> torch.Tensor:
    """Return, per text, which sides of the lexicon it mentions, shape ``(N,)`` int64.

    0: neither, :data:`SIDE_A` (1): only side A's terms, :data:`SIDE_B` (2): only side B's, 3:
    both. For a pair of texts, the sides either text mentions. A dataset defines a lexical
    attribute from it (e.g. attribute 1 where a comment mentions an identity term of side A).
    """
    lexicon = load_lexicon(lexicon)
    sides = [lexicon.sides(row) if isinstance(row, str) else reduce(or_, map(lexicon.sides, row))
             for row in _rows(texts)]
    return torch.tensor(sides, dtype=torch.int64)
