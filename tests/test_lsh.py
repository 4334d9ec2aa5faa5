"""LSH: bands x rows as datasketch, the recall-first default, band keys, candidates."""

import math

import numpy as np
import pytest
import textsieve as ts
from textsieve import _core
from textsieve.reference import dedup as ref


def test_datasketch_example():
    from textsieve.dedup import lsh_params

    assert lsh_params(0.8, 128, weights=(0.5, 0.5)) == (9, 13)


@pytest.mark.parametrize("num_perm", [16, 64, 128, 256])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 0.8, 0.9, 0.95])
def test_same_params_as_datasketch(threshold, num_perm):
    lsh = pytest.importorskip("datasketch.lsh")
    from textsieve.dedup import lsh_params

    assert lsh_params(threshold, num_perm, weights=(0.5, 0.5)) == lsh._optimal_param(
        threshold, num_perm, 0.5, 0.5
    )
    assert lsh_params(threshold, num_perm, weights=(0.2, 0.8)) == lsh._optimal_param(
        threshold, num_perm, 0.2, 0.8
    )


@pytest.mark.parametrize("threshold", [0.5, 0.8])
def test_rust_matches_reference_params(threshold):
    assert _core.optimal_params(threshold, 64, 0.5, 0.5) == ref.optimal_params(threshold, 64)
    for p in (16, 128, 256):
        assert _core.recall_params(threshold, p) == ref.recall_params(threshold, p)


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.8, 0.9])
def test_recall_params_reach_recall(threshold):
    from textsieve.dedup import lsh_params

    b, r = lsh_params(threshold, 128)
    assert b * r <= 128
    assert ref.collision_probability(threshold, b, r) >= 0.99
    assert lsh_params(0.8, 128) == (21, 6)


def test_band_keys_match_reference():
    sigs = ts.MinHasher(24, seed=2).signatures(["some text here", "other text", ""])
    for bands, rows in [(4, 6), (3, 7), (24, 1), (1, 24)]:
        keys = _core.band_keys(sigs, bands, rows)
        assert keys.shape == (3, bands)
        for row, k in zip(sigs.tolist(), keys.tolist(), strict=True):
            assert k == ref.band_keys(row, bands, rows)
    with pytest.raises(ValueError, match="bands"):
        _core.band_keys(sigs, 5, 5)


def test_candidates_match_reference():
    rng = np.random.default_rng(1)
    base = ["".join(rng.choice(list("abcdefgh "), 60)) for _ in range(15)]
    texts = base + [t[:50] + "zz" for t in base] + ["", ""]
    for bands, rows in [(16, 2), (8, 4)]:
        kw = dict(threshold=0.5, num_perm=32, bands=bands, rows=rows, all_pairs=True)
        got = ts.dedup(texts, **kw)
        want = ref.dedup(texts, **kw)
        assert got.pairs.tolist() == want["pairs"]
        assert len(got.pairs) > 10


def test_explicit_bands_rows():
    r = ts.dedup(["abc def", "abc deg"], threshold=0.5, bands=16)
    assert (r.stats["bands"], r.stats["rows"]) == (16, 8)
    r = ts.dedup(["abc def", "abc deg"], threshold=0.5, rows=5)
    assert (r.stats["bands"], r.stats["rows"]) == (25, 5)
    with pytest.raises(ts.TextsieveError, match="bands"):
        ts.dedup(["a"], bands=20, rows=7)
    with pytest.raises(ts.TextsieveError, match="threshold"):
        ts.dedup(["a"], threshold=0.0)


@pytest.mark.parametrize(
    "weights", [(math.nan, 0.5), (0.5, math.inf), (-1, -1), (-0.5, 1.0), (0, 0)]
)
def test_lsh_params_checks_the_weights(weights):
    """NaN, negative or all-zero weights used to give (1, 1) or (128, 1) without a word."""
    from textsieve.dedup import lsh_params

    with pytest.raises(ts.TextsieveError, match="weights"):
        lsh_params(0.8, 128, weights=weights)
    with pytest.raises(TypeError, match="weights"):
        lsh_params(0.8, 128, weights=0.5)
