"""Speed of near-duplicate detection, side by side in one run: textsieve vs datasketch vs rensa
(RMinHash, tokens from Python) vs the pure-Python reference, single thread unless stated.

    pytest benches/bench_dedup.py --benchmark-enable --benchmark-group-by=group,param
    python benches/bench_dedup.py          # MB/s and ratios table on the full corpora

Corpora: Shakespeare paragraphs and the Japanese manual pages from ``../shared/data`` (skipped
when absent). With benchmarks disabled (the default) each runs once on a small slice as a test.
Every timed function's output is checked (reference equality, datasketch bit-identity, pairs).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest
import textsieve as ts
from textsieve import _core
from textsieve.reference import dedup as ref

try:
    from ._dedup_data import manpages, shakespeare_paragraphs
except ImportError:  # run as a script
    sys.path.insert(0, os.path.dirname(__file__))
    from _dedup_data import manpages, shakespeare_paragraphs  # type: ignore[no-redef]

NUM_PERM = 128
SEED = 1


def load(name: str, limit_bytes: int | None) -> list[str] | None:
    docs = shakespeare_paragraphs() if name == "shakespeare" else manpages()
    if docs is None or limit_bytes is None:
        return docs
    out, size = [], 0
    for d in docs:
        size += len(d.encode())
        if size > limit_bytes:
            break
        out.append(d)
    return out


def nbytes(docs: list[str]) -> int:
    return sum(len(d.encode()) for d in docs)


# --- the contenders -------------------------------------------------------------------------


def sig_textsieve(docs, threads=1):
    return ts.MinHasher(NUM_PERM, SEED).signatures(docs, num_threads=threads)


def sig_datasketch(docs):
    from datasketch import MinHash

    # permutations shared from a template, as datasketch's docs advise for many sketches
    perms = MinHash(num_perm=NUM_PERM, seed=SEED).permutations
    out = []
    for d in docs:
        m = MinHash(num_perm=NUM_PERM, seed=SEED, permutations=perms, scheme="affine32")
        m.update_batch([s.encode() for s in ref.shingles(d)])
        out.append(m.hashvalues)
    return np.array(out)


def sig_rensa(docs):
    from rensa import RMinHash

    out = []
    for d in docs:
        m = RMinHash(num_perm=NUM_PERM, seed=SEED)
        m.update(list(ref.shingles(d)))
        out.append(m.digest())
    return out


def sig_reference(docs):
    return [ref.signature(d, NUM_PERM, SEED) for d in docs]


def hashes_of(docs):
    hs = [_core.shingle_hashes(d, 5, "char", "default") for d in docs]
    offsets = np.cumsum([0] + [len(h) for h in hs]).astype(np.int64)
    return np.concatenate(hs) if hs else np.zeros(0, np.uint64), offsets


def sigonly_textsieve(prepared):
    hashes, offsets = prepared
    return ts.MinHasher(NUM_PERM, SEED)._core.signatures_from_hashes(hashes, offsets, 1)


def sigonly_rensa(token_lists):
    from rensa import RMinHash

    out = []
    for toks in token_lists:
        m = RMinHash(num_perm=NUM_PERM, seed=SEED)
        m.update(toks)
        out.append(m.digest())
    return out


def whole_textsieve(docs, threshold=0.8):
    return ts.dedup(docs, threshold=threshold, num_threads=1)


def whole_datasketch(docs, threshold=0.8):
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    perms = MinHash(num_perm=NUM_PERM, seed=SEED).permutations
    sigs = []
    for i, d in enumerate(docs):
        m = MinHash(num_perm=NUM_PERM, seed=SEED, permutations=perms, scheme="affine32")
        m.update_batch([s.encode() for s in ref.shingles(d)])
        lsh.insert(i, m)
        sigs.append(m)
    keep = np.ones(len(docs), bool)
    for i, m in enumerate(sigs):
        if any(j < i and keep[j] and sigs[j].jaccard(m) >= threshold for j in lsh.query(m)):
            keep[i] = False
    return keep


def whole_rensa(docs, threshold=0.8):
    from rensa import RMinHash, RMinHashLSH

    lsh = RMinHashLSH(threshold=threshold, num_perm=NUM_PERM, num_bands=16)
    sigs = []
    for i, d in enumerate(docs):
        m = RMinHash(num_perm=NUM_PERM, seed=SEED)
        m.update(list(ref.shingles(d)))
        lsh.insert(i, m)
        sigs.append(m)
    keep = np.ones(len(docs), bool)
    for i, m in enumerate(sigs):
        if any(j < i and keep[j] and sigs[j].jaccard(m) >= threshold for j in lsh.query(m)):
            keep[i] = False
    return keep


# --- pytest-benchmark -----------------------------------------------------------------------


@pytest.fixture(scope="module", params=["shakespeare", "manpages"])
def corpus(request):
    full = request.config.getoption("benchmark_enable", False)
    docs = load(request.param, None if full else 60_000)
    if not docs:
        pytest.skip("../shared/data is absent")
    return docs


def _check_against_reference(sigs, docs):
    small = sorted(range(len(docs)), key=lambda i: len(docs[i]))[:3]
    for i in small:
        assert np.asarray(sigs[i]).tolist() == ref.signature(docs[i], NUM_PERM, SEED)


@pytest.mark.benchmark(group="dedup-signatures")
def test_signatures_textsieve(benchmark, corpus):
    benchmark.extra_info["bytes"] = nbytes(corpus)
    sigs = benchmark(sig_textsieve, corpus)
    _check_against_reference(sigs, corpus)


@pytest.mark.benchmark(group="dedup-signatures")
def test_signatures_textsieve_2_threads(benchmark, corpus):
    benchmark.extra_info["bytes"] = nbytes(corpus)
    sigs = benchmark(sig_textsieve, corpus, 2)
    np.testing.assert_array_equal(sigs, sig_textsieve(corpus))


@pytest.mark.benchmark(group="dedup-signatures")
def test_signatures_datasketch(benchmark, corpus):
    pytest.importorskip("datasketch")
    benchmark.extra_info["bytes"] = nbytes(corpus)
    sigs = benchmark.pedantic(sig_datasketch, args=(corpus,), rounds=1)
    mine = ts.MinHasher(NUM_PERM, SEED, scheme="datasketch-affine32").signatures(corpus)
    np.testing.assert_array_equal(sigs, mine)


@pytest.mark.benchmark(group="dedup-signatures")
def test_signatures_rensa(benchmark, corpus):
    pytest.importorskip("rensa")
    benchmark.extra_info["bytes"] = nbytes(corpus)
    sigs = benchmark.pedantic(sig_rensa, args=(corpus,), rounds=1)
    assert len(sigs) == len(corpus) and len(sigs[0]) == NUM_PERM


@pytest.mark.benchmark(group="dedup-signatures")
def test_signatures_reference(benchmark, corpus):
    docs = load("shakespeare", 20_000) if len(corpus[0]) < 2000 else corpus[:2]
    benchmark.extra_info["bytes"] = nbytes(docs)
    sigs = benchmark.pedantic(sig_reference, args=(docs,), rounds=1)
    np.testing.assert_array_equal(np.array(sigs, dtype=np.uint32), sig_textsieve(docs))


@pytest.mark.benchmark(group="dedup-signature-only")
def test_signature_only_textsieve(benchmark, corpus):
    prepared = hashes_of(corpus)
    benchmark.extra_info["bytes"] = nbytes(corpus)
    sigs = benchmark(sigonly_textsieve, prepared)
    np.testing.assert_array_equal(sigs, sig_textsieve(corpus))


@pytest.mark.benchmark(group="dedup-signature-only")
def test_signature_only_rensa(benchmark, corpus):
    pytest.importorskip("rensa")
    tokens = [list(ref.shingles(d)) for d in corpus]
    benchmark.extra_info["bytes"] = nbytes(corpus)
    sigs = benchmark(sigonly_rensa, tokens)
    assert len(sigs) == len(corpus)


@pytest.mark.benchmark(group="dedup-whole")
def test_whole_textsieve(benchmark, corpus):
    benchmark.extra_info["bytes"] = nbytes(corpus)
    res = benchmark(whole_textsieve, corpus)
    assert (res.pairs["jaccard"] >= 0.8).all()
    assert res.stats["n_kept"] + res.stats["n_removed"] == len(corpus)


@pytest.mark.benchmark(group="dedup-whole")
def test_whole_datasketch(benchmark, corpus):
    pytest.importorskip("datasketch")
    benchmark.extra_info["bytes"] = nbytes(corpus)
    keep = benchmark.pedantic(whole_datasketch, args=(corpus,), rounds=1)
    assert keep.sum() >= whole_textsieve(corpus).keep.sum() - len(corpus) // 50


@pytest.mark.benchmark(group="dedup-whole")
def test_whole_rensa(benchmark, corpus):
    pytest.importorskip("rensa")
    benchmark.extra_info["bytes"] = nbytes(corpus)
    keep = benchmark.pedantic(whole_rensa, args=(corpus,), rounds=1)
    assert len(keep) == len(corpus)


# --- the table ------------------------------------------------------------------------------


def best(f, *args, repeat=7):
    t_best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f(*args)
        t_best = min(t_best, time.perf_counter() - t)
    return t_best, out


def main() -> None:
    os.environ.setdefault("RAYON_NUM_THREADS", "1")
    for name in ("shakespeare", "manpages"):
        docs = load(name, None)
        if not docs:
            print(f"{name}: ../shared/data is absent")
            continue
        mb = nbytes(docs) / 1e6
        print(f"\n## {name}: {len(docs)} documents, {mb:.1f} MB, char 5-grams, {NUM_PERM} perms")
        rows = []
        t1, s1 = best(sig_textsieve, docs)
        rows.append(("signatures: textsieve (1 thread)", t1))
        t2, s2 = best(sig_textsieve, docs, 2)
        assert (s1 == s2).all()
        rows.append(("signatures: textsieve (2 threads)", t2))
        small = load("shakespeare", 20_000) if name == "shakespeare" else docs[:2]
        tr, sr = best(sig_reference, small, repeat=1)
        assert (np.array(sr, dtype=np.uint32) == sig_textsieve(small)).all()
        rows.append(("signatures: reference (extrapolated)", tr * mb / (nbytes(small) / 1e6)))
        try:
            td, sd = best(sig_datasketch, docs, repeat=1)
            assert (
                sd == ts.MinHasher(NUM_PERM, SEED, scheme="datasketch-affine32").signatures(docs)
            ).all()
            rows.append(("signatures: datasketch", td))
        except ImportError:
            pass
        try:
            trs, _ = best(sig_rensa, docs, repeat=1)
            rows.append(("signatures: rensa (tokens from Python)", trs))
            tokens = [list(ref.shingles(d)) for d in docs]
            tro, _ = best(sigonly_rensa, tokens)
            rows.append(("signature-only: rensa RMinHash.update", tro))
        except ImportError:
            pass
        prepared = hashes_of(docs)
        tso, sso = best(sigonly_textsieve, prepared)
        assert (sso == s1).all()
        rows.append(("signature-only: textsieve from hash64", tso))
        tw, res = best(whole_textsieve, docs)
        rows.append((f"whole dedup: textsieve ({res.stats['n_removed']} removed)", tw))
        for label, f in (("datasketch", whole_datasketch), ("rensa", whole_rensa)):
            try:
                t, keep = best(f, docs, repeat=1)
                rows.append((f"whole dedup: {label} ({int((~keep).sum())} removed)", t))
            except ImportError:
                pass
        for label, t in rows:
            ratio = t / t1
            print(
                f"{label:48s} {t:8.3f} s {mb / t:9.1f} MB/s  {ratio:7.2f}x the time of textsieve-1t"
            )


if __name__ == "__main__":
    main()
