"""MinHash signatures: Rust == reference; bit-identical to datasketch; thread-count independent."""

import pickle

import numpy as np
import pytest
import textsieve as ts
from hypothesis import given, settings
from hypothesis import strategies as st
from textsieve.reference import dedup as ref

SCHEMES = ["native", "datasketch-legacy", "datasketch-affine32"]
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "日本語のマニュアルページ — ls(1) はディレクトリの内容を表示する",
    "short",
    "a",
    "",
    "Σίσυφος ΣΙΣΥΦΟΣ  \t whitespace\u3000runs",
    "x" * 300 + "y" * 5,
]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_rust_matches_reference(scheme, seed):
    mh = ts.MinHasher(num_perm=24, seed=seed, scheme=scheme)
    got = mh.signatures(TEXTS)
    for row, text in zip(got, TEXTS, strict=True):
        assert row.tolist() == ref.signature(text, 24, seed, scheme)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=30), st.integers(1, 6), st.sampled_from(SCHEMES), st.integers(0, 2**32 - 1))
def test_rust_matches_reference_hypothesis(text, k, scheme, seed):
    mh = ts.MinHasher(num_perm=8, seed=seed, scheme=scheme, k=k)
    want = ref.signature(_replace(text), 8, seed, scheme, "char", k)
    assert mh.signature(text, errors="replace").tolist() == want


def _replace(text):
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


@pytest.mark.parametrize(
    "scheme,ds_scheme", [("datasketch-legacy", "legacy"), ("datasketch-affine32", "affine32")]
)
@pytest.mark.parametrize("seed", [0, 1, 42, 2**31 + 5, 2**32 - 1])
@pytest.mark.parametrize("num_perm", [1, 7, 128, 256])
def test_bit_identical_to_datasketch(scheme, ds_scheme, seed, num_perm):
    datasketch = pytest.importorskip("datasketch")
    mh = ts.MinHasher(num_perm=num_perm, seed=seed, scheme=scheme)
    got = mh.signatures(TEXTS)
    for row, text in zip(got, TEXTS, strict=True):
        m = datasketch.MinHash(num_perm=num_perm, seed=seed, scheme=ds_scheme)
        for s in ts.shingles(text):
            m.update(s.encode("utf-8"))
        assert row.dtype == m.hashvalues.dtype
        np.testing.assert_array_equal(row, m.hashvalues)
    m = datasketch.MinHash(num_perm=num_perm, seed=seed, scheme=ds_scheme)
    a, b = mh.permutations
    np.testing.assert_array_equal(a, np.asarray(m.permutations[0], dtype=np.uint64))
    np.testing.assert_array_equal(b, np.asarray(m.permutations[1], dtype=np.uint64))


def test_dtypes_and_shapes():
    assert ts.MinHasher(16).signatures(["abc"]).dtype == np.uint32
    assert ts.MinHasher(16, scheme="datasketch-affine32").signatures(["abc"]).dtype == np.uint32
    assert ts.MinHasher(16, scheme="datasketch-legacy").signatures(["abc"]).dtype == np.uint64
    assert ts.MinHasher(16).signatures([]).shape == (0, 16)
    assert (ts.MinHasher(16).signature("   ") == 0xFFFFFFFF).all()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_same_for_any_thread_count(scheme):
    texts = [f"document {i} " + "lorem ipsum " * (i % 17) for i in range(500)]
    mh = ts.MinHasher(64, seed=3, scheme=scheme)
    one = mh.signatures(texts, num_threads=1)
    for n in (2, 3, 8):
        np.testing.assert_array_equal(mh.signatures(texts, num_threads=n), one)


def test_native_estimates_jaccard_without_bias():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(3000)]
    errs = []
    mh = ts.MinHasher(256, seed=5, shingle="word", k=1)
    for _ in range(40):
        base = list(rng.choice(words, 300, replace=False))
        other = base[: int(rng.integers(50, 300))] + list(rng.choice(words, 100, replace=False))
        a, b = " ".join(base), " ".join(other)
        s = mh.signatures([a, b])
        est = float((s[0] == s[1]).mean())
        errs.append(est - ts.jaccard(a, b, k=1, shingle="word"))
    assert abs(np.mean(errs)) < 0.02
    assert np.std(errs) < 0.06  # sqrt(J(1-J)/256) <= 0.031


def test_pickle_and_repr():
    mh = ts.MinHasher(32, seed=9, scheme="datasketch-affine32", k=4)
    back = pickle.loads(pickle.dumps(mh))
    np.testing.assert_array_equal(back.signatures(TEXTS), mh.signatures(TEXTS))
    assert "seed=9" in repr(mh)


def test_bad_input():
    with pytest.raises(ts.TextsieveError, match="num_perm"):
        ts.MinHasher(0)
    with pytest.raises(ts.TextsieveError, match="seed"):
        ts.MinHasher(16, seed=-1)
    with pytest.raises(ts.TextsieveError, match="seed"):
        ts.MinHasher(16, seed=2**32, scheme="datasketch-legacy")
    with pytest.raises(TypeError, match="seed"):
        ts.MinHasher(16, seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(ts.TextsieveError, match="scheme"):
        ts.MinHasher(16, scheme="sha256")
    mh = ts.MinHasher(16)
    with pytest.raises(TypeError, match="single str"):
        mh.signatures("abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"texts\[1\]: expected str, got int"):
        mh.signatures(["a", 1])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"texts\[0\].*surrogate"):
        mh.signatures(["a\udc80"])
    assert mh.signatures(["a\udc80"], errors="replace").shape == (1, 16)
    with pytest.raises(ts.TextsieveError, match="num_threads"):
        mh.signatures(["a"], num_threads=0)
