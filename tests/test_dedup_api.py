"""dedup(): Rust == reference, precision 1.0, thread-count independence, empty texts, errors."""

import math

import numpy as np
import pytest
import textsieve as ts
from hypothesis import given, settings
from hypothesis import strategies as st
from textsieve.reference import dedup as ref

BASE = [
    "the quick brown fox jumps over the lazy dog",
    "a completely different sentence about databases",
    "lorem ipsum dolor sit amet, consectetur adipiscing elit",
]
CORPUS = [
    BASE[0],
    "",
    BASE[1],
    BASE[0] + "!",
    "   ",
    BASE[2],
    BASE[0].replace("lazy", "lazzy"),
    BASE[2] + " sed do eiusmod",
    "",
]


def check_against_reference(texts, **kw):
    got = ts.dedup(texts, **kw)
    want = ref.dedup(texts, **{("norm" if k == "normalize" else k): v for k, v in kw.items()})
    assert got.keep.tolist() == want["keep"]
    assert got.cluster.tolist() == want["cluster"]
    assert got.duplicate_of.tolist() == want["duplicate_of"]
    assert got.empty.tolist() == want["empty"]
    assert got.pairs.tolist() == want["pairs"]
    for a, b in zip(got.similarity.tolist(), want["similarity"], strict=True):
        assert (math.isnan(a) and math.isnan(b)) or a == b
    return got


@pytest.mark.parametrize("keep", ["first", "longest"])
@pytest.mark.parametrize("verify", ["exact", "minhash"])
@pytest.mark.parametrize("threshold", [0.5, 0.8])
def test_matches_reference(keep, verify, threshold):
    check_against_reference(CORPUS, threshold=threshold, keep=keep, verify=verify, num_perm=64)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["aa", "bb", "cc", "dd ", "e", " ", "ff gg"]), max_size=12).map(
            "".join
        ),
        max_size=14,
    ),
    st.sampled_from([0.3, 0.6, 0.9]),
    st.sampled_from(["char", "word"]),
)
def test_matches_reference_hypothesis(texts, threshold, shingle):
    got = check_against_reference(texts, threshold=threshold, num_perm=32, shingle=shingle, k=3)
    assert (got.pairs["jaccard"] >= threshold).all()


def test_result_shape_and_types():
    r = ts.dedup(CORPUS, threshold=0.7)
    n = len(CORPUS)
    assert r.keep.dtype == np.bool_ and r.keep.shape == (n,)
    assert r.cluster.dtype == np.int64 and r.duplicate_of.dtype == np.int64
    assert r.similarity.dtype == np.float64 and r.empty.dtype == np.bool_
    assert r.pairs.dtype.names == ("i", "j", "jaccard")
    assert (r.pairs["i"] < r.pairs["j"]).all()
    assert r.pairs.tolist() == sorted(r.pairs.tolist())
    assert np.isnan(r.similarity[r.keep]).all()
    assert (r.duplicate_of[r.keep] == -1).all()
    assert r.keep[r.duplicate_of[~r.keep]].all()
    s = r.stats
    for key in (
        "n_docs",
        "n_kept",
        "n_removed",
        "n_pairs",
        "n_candidates",
        "n_clusters",
        "bands",
        "rows",
        "threshold",
        "num_perm",
        "seed",
        "scheme",
        "seconds",
    ):
        assert key in s
    assert s["n_kept"] + s["n_removed"] == s["n_docs"] == n
    assert s["n_clusters"] == len(set(r.cluster.tolist()))
    assert {"sign_and_decide", "decide", "total"} <= set(s["seconds"])


def test_precision_is_one():
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(200)]
    texts = [" ".join(rng.choice(words, 40)) for _ in range(60)]
    texts += [t.replace(t.split()[0], "x", 1) for t in texts[:30]]
    r = ts.dedup(texts, threshold=0.6)
    for i, j, jac in r.pairs.tolist():
        exact = ref.jaccard(ref.shingles(texts[i]), ref.shingles(texts[j]))
        assert jac == exact >= 0.6


def test_empty_texts_reported_and_never_matched():
    r = ts.dedup(["", "", "  \n", "abc", "abc"], threshold=0.5)
    assert r.empty.tolist() == [True, True, True, False, False]
    assert r.keep.tolist() == [True, True, True, True, False]
    assert r.pairs.tolist() == [(3, 4, 1.0)]
    assert r.stats["n_empty"] == 3


def test_same_for_any_thread_count():
    rng = np.random.default_rng(5)
    texts = ["".join(rng.choice(list("abcde "), 80)) for _ in range(300)]
    texts += [t[5:] for t in texts[:100]]
    one = ts.dedup(texts, threshold=0.7, num_threads=1)
    for n in (2, 4):
        other = ts.dedup(texts, threshold=0.7, num_threads=n)
        assert other.pairs.tolist() == one.pairs.tolist()
        assert other.keep.tolist() == one.keep.tolist()
        assert other.cluster.tolist() == one.cluster.tolist()


def test_progress_and_generators(monkeypatch):
    import sys

    mod = sys.modules["textsieve.dedup"]  # the module (``textsieve.dedup`` is the function)
    monkeypatch.setattr(mod, "_CHUNK_DOCS", 3)
    calls = []
    texts = [f"doc number {i}" for i in range(10)] + ["doc number 1"]
    r = ts.dedup((t for t in texts), progress=lambda d, b: calls.append((d, b)))
    assert calls[-1] == (11, sum(len(t.encode()) for t in texts))
    assert [c[0] for c in calls] == [3, 6, 9, 11]
    assert r.duplicate_of[10] == 1


def test_keep_longest():
    r = ts.dedup(
        ["the cat sat on the mat", "the cat sat on the mat!!"], threshold=0.7, keep="longest"
    )
    assert r.keep.tolist() == [False, True]
    assert r.duplicate_of.tolist() == [1, -1]
    assert r.cluster.tolist() == [1, 1]


def test_bad_input():
    with pytest.raises(TypeError, match="single str"):
        ts.dedup("abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="iterable"):
        ts.dedup(5)  # type: ignore[arg-type]
    with pytest.raises(ts.TextsieveError, match=r"texts\[2\]: a null"):
        ts.dedup(["a", "b", None])  # type: ignore[list-item]
    assert ts.dedup(["a", None], nulls="empty").empty.tolist() == [False, True]
    with pytest.raises(TypeError, match=r"texts\[1\]: expected str, got int"):
        ts.dedup(["a", 5])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"texts\[1\]: contains a lone surrogate"):
        ts.dedup(["a", "\ud800"])
    assert ts.dedup(["a", "\ud800"], errors="replace").stats["n_docs"] == 2
    for kw, word in [
        ({"threshold": 1.5}, "threshold"),
        ({"num_perm": 0}, "num_perm"),
        ({"scheme": "md5"}, "scheme"),
        ({"verify": "maybe"}, "verify"),
        ({"keep": "last"}, "keep"),
        ({"k": 0}, "k"),
        ({"shingle": "line"}, "shingle"),
        ({"normalize": "upper"}, "normalize"),
        ({"num_threads": 0}, "num_threads"),
        ({"errors": "ignore"}, "errors"),
    ]:
        with pytest.raises(ValueError, match=word):
            ts.dedup(["a b c"], **kw)


def test_settings_are_validated_once_and_filled_in():
    s = ts.DedupSettings(threshold=0.7, num_perm=64)
    from textsieve.dedup import lsh_params

    assert (s.bands, s.rows) == lsh_params(0.7, 64)
    assert ts.DedupSettings(bands=16).rows == 8
    for bad, match in [
        ({"cluster": "chains"}, "cluster"),
        ({"scheme": "md5"}, "scheme"),
        ({"threshold": 0.0}, "threshold"),
        ({"keep": "last"}, "keep"),
        ({"verify": "fuzzy"}, "verify"),
        ({"normalize": "upper"}, "normalize"),
        ({"shingle": "line"}, "shingle"),
        ({"bands": 20, "rows": 7}, "bands"),
    ]:
        with pytest.raises(ts.TextsieveError, match=match):
            ts.DedupSettings(**bad)
    with pytest.raises(TypeError, match="num_perm"):
        ts.DedupSettings(num_perm="128")  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        s.threshold = 0.5  # type: ignore[misc]


def test_option_strings_are_literal_types():
    """The signatures say which strings an option takes (for editors and type checkers)."""
    import typing

    from textsieve.dedup import CLUSTERS, NULLS, SCHEMES

    hints = typing.get_type_hints(ts.dedup)
    for name, allowed in [
        ("scheme", SCHEMES),
        ("cluster", CLUSTERS),
        ("nulls", NULLS),
        ("keep", ("first", "longest")),
        ("verify", ("exact", "minhash")),
        ("shingle", ("char", "word")),
        ("normalize", ("default", "none", "nfkc")),
        ("errors", ("strict", "replace")),
    ]:
        assert typing.get_args(hints[name]) == allowed, name
    assert typing.get_args(typing.get_type_hints(ts.MinHasher.__init__)["scheme"]) == SCHEMES


FILTER_DOCS = ["a rose is a rose is a rose", "tulips in spring", "a rose is a rose is a rose!"]


def test_filter_keeps_the_kept_rows_in_the_type_given():
    res = ts.dedup(FILTER_DOCS, threshold=0.5)
    want = [d for d, k in zip(FILTER_DOCS, res.keep) if k]
    assert len(want) == 2
    assert res.filter(FILTER_DOCS) == want
    assert res.filter(tuple(FILTER_DOCS)) == want
    arr = res.filter(np.array(FILTER_DOCS, dtype=object))
    assert isinstance(arr, np.ndarray) and arr.tolist() == want
    with pytest.raises(ts.InvalidArgumentError, match="rows has 2 rows but this result is for 3"):
        res.filter(FILTER_DOCS[:2])
    with pytest.raises(ts.InvalidArgumentError, match="rows must be a sized collection"):
        res.filter(iter(FILTER_DOCS))


@pytest.mark.parametrize("lib", ["pyarrow", "pandas", "polars"])
def test_filter_dataframes_and_tables(lib):
    mod = pytest.importorskip(lib, reason=f"{lib} is not installed")
    res = ts.dedup(FILTER_DOCS, threshold=0.5)
    want = [d for d, k in zip(FILTER_DOCS, res.keep) if k]
    data = {"text": FILTER_DOCS, "n": [1, 2, 3]}
    if lib == "pyarrow":
        table = res.filter(mod.table(data))
        assert isinstance(table, mod.Table) and table.column("text").to_pylist() == want
        assert res.filter(mod.chunked_array([FILTER_DOCS[:1], FILTER_DOCS[1:]])).to_pylist() == want
        assert table.column("n").type == mod.int64()
    elif lib == "pandas":
        frame = res.filter(mod.DataFrame(data))
        assert frame["text"].tolist() == want and frame.index.tolist() == [0, 1]
    else:
        frame = res.filter(mod.DataFrame(data))
        assert isinstance(frame, mod.DataFrame) and frame["text"].to_list() == want
