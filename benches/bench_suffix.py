"""Suffix array construction (libsais through ``ts.SuffixIndex``) against pydivsufsort
(libdivsufsort) on the same bytes, and the batch query rate.

    pytest benches/bench_suffix.py --benchmark-enable --benchmark-group-by=group

With benchmarks disabled (the default in pyproject), each runs once on a small slice as a test.
At scale (100 MB to 1 GB, memory per byte, ``textsieve substrings`` end to end):
``python benches/suffix_scale.py``.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import textsieve as ts
from textsieve import _core
from textsieve.bench import load_corpus


@pytest.fixture(scope="module", params=["shakespeare", "manpages"])
def corpus(request):
    enabled = request.config.getoption("benchmark_enable", False)
    label, docs = load_corpus(request.param, limit_bytes=None if enabled else 200_000)
    data = b"".join(d.encode("utf-8") + b"\xff" for d in docs)
    return label, docs, data


def build_sa(docs: list[str]) -> np.ndarray:
    b = _core.SuffixBuilderCore()
    b.add_texts(docs)
    return b.finish().suffix_array()


@pytest.mark.benchmark(group="suffix-array")
def test_build_textsieve(benchmark, corpus):
    _, docs, data = corpus
    sa = benchmark(build_sa, docs)
    assert len(sa) == len(data)
    # sorted: each suffix not above the next on their first 4 KB (a sample)
    for i in random.Random(0).sample(range(1, len(sa)), 200):
        a, b = int(sa[i - 1]), int(sa[i])
        assert data[a : a + 4096] <= data[b : b + 4096]


@pytest.mark.benchmark(group="suffix-array")
def test_build_pydivsufsort(benchmark, corpus):
    pydivsufsort = pytest.importorskip("pydivsufsort")
    _, docs, data = corpus
    arr = np.frombuffer(data, dtype=np.uint8).copy()  # pydivsufsort refuses read-only arrays
    sa = benchmark(pydivsufsort.divsufsort, arr)
    assert np.array_equal(sa.astype(np.int64), build_sa(docs).astype(np.int64))


@pytest.mark.benchmark(group="suffix-queries")
def test_count_batch(benchmark, corpus):
    _, docs, data = corpus
    index = ts.SuffixIndex.build(docs)
    rng = random.Random(1)
    queries = []
    for _ in range(20_000):
        d = docs[rng.randrange(len(docs))]
        if len(d) > 12:
            i = rng.randrange(len(d) - 11)
            queries.append(d[i : i + rng.randint(3, 10)])
    counts = benchmark(index.count_batch, queries, num_threads=1)
    for q, c in list(zip(queries, counts.tolist()))[:20]:
        pat, n, at = q.encode(), 0, -1
        while (at := data.find(pat, at + 1)) >= 0:
            n += 1
        assert n == c
