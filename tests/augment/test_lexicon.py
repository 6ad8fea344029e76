"""Raw-text word-pair swaps: whole words, case kept, the edge cases the module documents, lexicon files."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from robustml.augment import (BUILTIN_LEXICONS, SIDE_A, SIDE_B, Lexicon, lexicon_sides, load_lexicon,
                              read_lexicon_file, substitute_strings)
from support import REPO

PAIRS = [("he", "she"), ("his", "her"), ("man", "woman"), ("african american", "european american"),
         ("african", "asian")]


@pytest.mark.parametrize("text, expected", [
    ("He is a man.", "She is a woman."),                       # sentence start, full stop
    ("SHE met the woman; the", "HE met the man; the"),          # all caps, 'he' inside 'the' kept
    ("he's right", "she's right"),                              # apostrophe ends the word
    ("he\u2019s right", "she\u2019s right"),                    # typographic apostrophe too
    ("his. Her, HIS!", "her. His, HER!"),                       # punctuation after the word
    ("(he)", "(she)"), ('"she"', '"he"'),
    ("she-wolf", "he-wolf"),                                    # a hyphen splits a compound
    ("manhole, woman2, he_said, _he, 2he", "manhole, woman2, he_said, _he, 2he"),  # \w neighbours
    ("héhe, éhe, heé, 他he", "héhe, éhe, heé, 他he"),           # Unicode letters are word characters
    ("he—she", "she—he"),                                       # an em dash is not a word character
    ("hE", "she"),                                              # mixed case: the lexicon's spelling
    ("African American art", "European American art"),         # longest term first, Title kept
    ("African-American art", "European-American art"),         # hyphen between words kept
    ("african\n american", "european\n american"),              # whitespace between words kept
    ("AFRICAN AMERICAN", "EUROPEAN AMERICAN"), ("African american", "European american"),
    ("African art", "Asian art"),                               # the shorter term alone
    ("africanamerican", "africanamerican"),
])
def test_edge_cases(text, expected):
    assert substitute_strings([text], PAIRS) == [expected]


def test_partner_with_a_different_word_count_is_joined_by_spaces():
    assert substitute_strings(["a Gay-ish x", "LGBT-friendly"], [("lgbt", "straight people")]) == \
        ["a Gay-ish x", "STRAIGHT PEOPLE-friendly"]


def test_pairs_of_texts_are_both_swapped_and_row_types_kept():
    out = substitute_strings(["he", ("He said", "and she?")], PAIRS)
    assert out == ["she", ("She said", "and he?")]


def test_lexicon_sides_hand_checked():
    texts = ["he", "her", "he and her", "the theme", "African American", ("no", "she"), ("he", "she")]
    assert lexicon_sides(texts, PAIRS).tolist() == [SIDE_A, SIDE_B, 3, 0, SIDE_A, SIDE_B, 3]


@pytest.mark.parametrize("pairs, message", [
    ([("he", "she"), ("he", "him")], r"'he' -> 'she' \(pair 0 of the lexicon\) and 'him'"),
    ([("he", "she"), ("He", "him")], "conflict"),
    ([("he", "he")], "maps a word to itself"),
    ([("he", "she"), ("she", "he")], "repeats another pair in the other order"),
    ([("he!", "she")], "a term must be one or more words"),
    ([("", "she")], "a term must be one or more words"),
    ([("he", "she", "it")], r"a pair must be two terms \(a, b\)"),
    ([], "at least one"),
])
def test_bad_lexicons(pairs, message):
    with pytest.raises(ValueError, match=message):
        Lexicon(pairs)


def test_bad_texts():
    with pytest.raises(TypeError, match="single str"):
        substitute_strings("he", PAIRS)
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str or a pair of str, got nan"):
        substitute_strings(["he", float("nan")], PAIRS)
    with pytest.raises(TypeError, match="lexicon must be a built-in name"):
        load_lexicon(3)
    with pytest.raises(FileNotFoundError, match="neither a built-in lexicon .*gender.*nor an existing file"):
        load_lexicon("no_such_lexicon.txt")


# Properties ---------------------------------------------------------------------------------
WORD_PAIRS = [("he", "she"), ("his", "her"), ("king", "queen"), ("boy", "girl")]
PARTNER = {**dict(WORD_PAIRS), **{b: a for a, b in WORD_PAIRS}}
NEUTRAL = ["the", "theme", "sheep", "there", "kingdom", "a", "hers", "herald", "xhe", "boyish"]
STYLES = {"lower": str.lower, "title": str.title, "upper": str.upper}
SEPARATORS = [" ", ", ", ". ", " (", ") ", "'s ", "-", "; ", "\n"]

words = st.tuples(st.sampled_from(sorted(PARTNER) + NEUTRAL), st.sampled_from(sorted(STYLES)))
texts = st.lists(st.tuples(words, st.sampled_from(SEPARATORS)), min_size=1, max_size=12)


def render(parts, swap=False):
    """Build the text from (word, style) parts and separators; with swap, map each pair word."""
    out = []
    for (word, style), separator in parts:
        out.append(STYLES[style](PARTNER.get(word, word) if swap else word) + separator)
    return "".join(out)


@settings(max_examples=200, deadline=None)
@given(texts)
def test_swap_matches_a_word_by_word_reference_and_swaps_back(parts):
    text = render(parts)
    once = substitute_strings([text], WORD_PAIRS)[0]
    assert once == render(parts, swap=True)      # each pair word mapped, case style kept
    assert substitute_strings([once], WORD_PAIRS)[0] == text


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(PARTNER)), st.text(st.characters(categories=("L", "Nd")), min_size=1, max_size=3),
       st.sampled_from(["prefix", "suffix", "underscore"]))
def test_a_pair_word_inside_a_longer_word_is_never_changed(word, extra, where):
    embedded = {"prefix": extra + word, "suffix": word + extra, "underscore": word + "_" + extra}[where]
    assume(embedded.casefold() not in PARTNER)   # "s" + "he" is the word "she", not a part of one
    text = f"x {embedded} y"
    assert substitute_strings([text], WORD_PAIRS) == [text]


@pytest.mark.parametrize("style", sorted(STYLES))
def test_case_is_kept(style):
    case = STYLES[style]
    assert substitute_strings([f"{case('queen')} and {case('his')}"], WORD_PAIRS) == \
        [f"{case('king')} and {case('her')}"]


# Lexicon files ------------------------------------------------------------------------------
def test_lexicon_file_with_comments_tabs_and_multi_word_terms(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("\ufeff# my pairs\n\nhe,she   # pronouns\nMuslim\tChristian\n"
                    " african american , european american \n", encoding="utf-8")
    lexicon = read_lexicon_file(path)
    assert lexicon.pairs == (("he", "she"), ("muslim", "christian"),
                             ("african american", "european american"))
    assert lexicon.name == str(path)
    assert load_lexicon(str(path)).pairs == lexicon.pairs
    assert substitute_strings(["A Muslim man"], path) == ["A Christian man"]


@pytest.mark.parametrize("line", ["he,she,it", "he", ",she", "he,", "he\tshe\tit", "he\t"])
def test_malformed_lines_name_the_file_and_line(tmp_path, line):
    path = tmp_path / "bad.txt"
    path.write_text(f"# header\nman,woman\n{line}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.txt, line 3: expected one pair 'a,b' or 'a<TAB>b', got"):
        read_lexicon_file(path)


def test_file_conflicts_and_bad_terms_name_their_lines(tmp_path):
    path = tmp_path / "clash.txt"
    path.write_text("he,she\nboy,girl\nhe,him\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"'he' -> 'she' \(.*clash\.txt, line 1\) and 'him' \(.*line 3\)"):
        read_lexicon_file(path)
    path.write_text("he,she\nhe's,she's\n", encoding="utf-8")
    assert read_lexicon_file(path).pairs[1] == ("he's", "she's")   # apostrophe inside a term
    path.write_text("he,she\n'he,she'\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"clash\.txt, line 2: a term must be"):
        read_lexicon_file(path)
    path.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no pair"):
        read_lexicon_file(path)


@pytest.mark.parametrize("name, cited, pair", [("gender", "Zhao", ("he", "she")),
                                               ("identity", "Dixon", ("gay", "straight"))])
def test_builtin_lexicons_load_cite_their_sources_and_ship_with_the_wheel(name, cited, pair):
    lexicon = load_lexicon(name)
    assert lexicon.name == name and pair in lexicon.pairs and len(lexicon.pairs) >= 10
    path = REPO / "robustml" / "augment" / "lexicons" / BUILTIN_LEXICONS[name]
    assert cited in path.read_text(encoding="utf-8")
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert package_data["robustml.augment"] == ["lexicons/*.txt"]
