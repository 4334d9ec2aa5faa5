"""Shingles, hash64 and Jaccard: Rust == reference, on examples and hypothesis input."""

import pytest
import textsieve as ts
from hypothesis import given, settings
from hypothesis import strategies as st
from textsieve import _core
from textsieve.reference import dedup as ref

from tests.strategies import ASSIGNED

TEXT = st.text(st.one_of(ASSIGNED, st.sampled_from(list(" \t\n\u3000ΣσςAaİ"))), max_size=40)


def test_examples():
    assert ts.shingles("Abcd", k=3) == {"abc", "bcd"}
    assert ts.shingles("Hi", k=5) == {"hi"}  # shorter than k: one shingle, the whole text
    assert ts.shingles("  \n ", k=5) == set()  # empty after normalization: no shingles
    assert ts.shingles("The cat  the CAT", k=2, shingle="word") == {"the cat", "cat the"}
    assert ts.shingles("one two", k=5, shingle="word") == {"one two"}
    assert ts.shingles("ＡＢ", k=2, normalize="nfkc") == {"ab"}
    assert ts.shingles("AB", k=2, normalize="none") == {"AB"}


def test_whitespace_is_unicode_white_space():
    # \x1c is whitespace to str.split() but not Unicode White_Space; U+3000 is both
    assert ts.shingles("a\x1cb", k=3) == {"a\x1cb"}
    assert ts.shingles("a\u3000b", k=3) == {"a b"}


@settings(max_examples=300, deadline=None)
@given(
    TEXT,
    st.integers(1, 9),
    st.sampled_from(["char", "word"]),
    st.sampled_from(["default", "none", "nfkc"]),
)
def test_rust_matches_reference(text, k, shingle, norm):
    assert ts.shingles(text, k=k, shingle=shingle, normalize=norm) == ref.shingles(
        text, k, shingle, norm
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_hash64_matches_reference(data):
    assert _core.hash64(data) == ref.hash64(data)


@settings(max_examples=100, deadline=None)
@given(TEXT, st.integers(1, 8))
def test_hash_set_is_hash_of_shingles(text, k):
    got = _core.shingle_hashes(text, k, "char", "default").tolist()
    assert got == sorted({ref.hash64(s.encode()) for s in ref.shingles(text, k)})


@settings(max_examples=100, deadline=None)
@given(TEXT, TEXT)
def test_jaccard_of_texts(a, b):
    assert ts.jaccard(a, b) == ref.jaccard(ref.shingles(a), ref.shingles(b))


def test_jaccard_sets_and_errors():
    assert ts.jaccard({1, 2, 3}, {2, 3, 4}) == 0.5
    assert ts.jaccard(set(), set()) == 0.0
    assert ts.jaccard("", "") == 0.0  # empty texts never match
    with pytest.raises(TypeError):
        ts.jaccard("abc", {"abc"})


def test_bad_input():
    with pytest.raises(ts.TextsieveError, match="k"):
        ts.shingles("abc", k=0)
    with pytest.raises(ts.TextsieveError, match="shingle"):
        ts.shingles("abc", shingle="line")
    with pytest.raises(ts.TextsieveError, match="normalize"):
        ts.shingles("abc", normalize="upper")
    with pytest.raises(TypeError, match="text"):
        ts.shingles(b"abc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="surrogate"):
        ts.shingles("a\ud800b")
