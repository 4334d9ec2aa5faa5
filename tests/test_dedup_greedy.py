"""Greedy dedup (the default): agreement with the brute-force oracle on real text, Rust ==
reference, chains vs connected components, linear cost on copies, input-form and thread
independence, DedupIndex batches, and the CLI's pairs/stats/report on a chain."""

from __future__ import annotations

import functools
import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import textsieve as ts
from textsieve.cli import main
from textsieve.reference import dedup as ref

from tests.test_dedup_api import check_against_reference

STDLIB = Path(os.path.dirname(os.__file__))
THRESHOLD = 0.8  # ts.dedup's default, used throughout


def stdlib_text(name: str) -> str:
    return (STDLIB / name).read_text(encoding="utf-8")


@functools.cache
def prose() -> str:
    """Real English prose: the Python documentation topics shipped with the standard library."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def word_edits(rng: random.Random, text: str, n_edits: int, vocab: list[str]) -> str:
    """``n_edits`` random word replacements, deletions or insertions."""
    words = text.split()
    for _ in range(n_edits):
        op = rng.randrange(3)
        pos = rng.randrange(len(words))
        if op == 0:
            words[pos] = rng.choice(vocab)
        elif op == 1 and len(words) > 1:
            del words[pos]
        else:
            words.insert(pos, rng.choice(vocab))
    return " ".join(words)


@functools.cache
def planted_corpus() -> tuple[str, ...]:
    """~300 base documents of 400-800 chars cut from stdlib sources, ~30% near-duplicates (1-3
    word edits) and some exact copies, shuffled."""
    rng = random.Random(11)
    src = "".join(stdlib_text(f) for f in ("argparse.py", "difflib.py", "textwrap.py"))
    base, pos = [], 0
    while len(base) < 300:
        n = rng.randint(400, 800)
        base.append(src[pos : pos + n])
        pos += n
    vocab = sorted(set(src.split()))
    docs = list(base)
    for b in rng.sample(base, 90):
        docs.append(word_edits(rng, b, rng.randint(1, 3), vocab))
    for b in rng.sample(base, 30):
        docs.append(b)
    rng.shuffle(docs)
    return tuple(docs)


@functools.cache
def real_corpus() -> tuple[str, ...]:
    """400 windows (400-800 chars) at random offsets of stdlib sources and docs: real text
    whose near-duplicates are the natural ones (overlapping windows, repeated code)."""
    rng = random.Random(5)
    src = "".join(stdlib_text(f) for f in ("inspect.py", "pydoc.py")) + prose()[:150_000]
    docs = []
    for _ in range(400):
        n = rng.randint(400, 800)
        start = rng.randrange(len(src) - n)
        docs.append(src[start : start + n])
    return tuple(docs)


CHAIN_LEN, CHAIN_STEP = 600, 45


@functools.cache
def chain_corpus() -> tuple[str, ...]:
    """400 overlapping windows of one long normalized text: neighbours have Jaccard ~0.86,
    windows two apart ~0.75 and far-apart ones ~0."""
    text = ref.normalize(prose())
    return tuple(text[i * CHAIN_STEP : i * CHAIN_STEP + CHAIN_LEN] for i in range(400))


CORPORA = {"planted": planted_corpus, "real": real_corpus, "chain": chain_corpus}
# The fewest removals the oracle must find, so that agreement means something.
MIN_REMOVED = {"planted": 100, "real": 10, "chain": 150}


@functools.cache
def shingle_sets(name: str) -> tuple[frozenset, ...]:
    return tuple(frozenset(ref.shingles(t)) for t in CORPORA[name]())


@functools.cache
def oracle(name: str, keep: str) -> tuple[int, ...]:
    return tuple(ref.greedy_exact(list(CORPORA[name]()), THRESHOLD, keep=keep))


def decision_rank(texts, keep: str) -> np.ndarray:
    """Each document's position in the decision order."""
    n = len(texts)
    order = sorted(range(n), key=lambda d: (-len(texts[d]), d)) if keep == "longest" else range(n)
    rank = np.empty(n, np.int64)
    rank[list(order)] = np.arange(n)
    return rank


def assert_agree(got: set[int], want: set[int], at_least: float = 0.99) -> None:
    both = len(got & want)
    assert both >= at_least * len(got), (sorted(got - want), sorted(want - got))
    assert both >= at_least * len(want), (sorted(got - want), sorted(want - got))


def assert_same_result(a: ts.DedupResult, b: ts.DedupResult, *, same_work: bool = True) -> None:
    """The same decisions; with ``same_work``, the same similarities computed too (``examined``
    is work done: the same for any thread count, but where chunks are cut can change it)."""
    np.testing.assert_array_equal(a.keep, b.keep)
    np.testing.assert_array_equal(a.duplicate_of, b.duplicate_of)
    np.testing.assert_array_equal(a.similarity, b.similarity)  # NaNs compare equal here
    np.testing.assert_array_equal(a.cluster, b.cluster)
    np.testing.assert_array_equal(a.empty, b.empty)
    assert a.pairs.tolist() == b.pairs.tolist()
    if same_work:
        np.testing.assert_array_equal(a.examined, b.examined)
        assert a.stats["n_candidates"] == b.stats["n_candidates"]


# --------------------------------------------------------------------------------------------
# 1. Agreement with the brute-force oracle


@pytest.mark.parametrize("keep", ["first", "longest"])
@pytest.mark.parametrize("name", list(CORPORA))
def test_agrees_with_exact_oracle(name, keep):
    texts = list(CORPORA[name]())
    sets = shingle_sets(name)
    res = ts.dedup(texts, threshold=THRESHOLD, keep=keep)
    want = {d for d, r in enumerate(oracle(name, keep)) if r >= 0}
    got = set(np.flatnonzero(~res.keep).tolist())
    assert len(want) >= MIN_REMOVED[name]
    assert_agree(got, want)

    rank = decision_rank(texts, keep)
    assert (res.duplicate_of[res.keep] == -1).all()
    assert np.isnan(res.similarity[res.keep]).all()
    for d in sorted(got):
        k = int(res.duplicate_of[d])
        assert k >= 0 and res.keep[k], (d, k)
        assert rank[k] < rank[d], (d, k)
        sim = float(res.similarity[d])
        assert sim >= THRESHOLD, (d, k, sim)
        assert sim == ref.jaccard(sets[d], sets[k]), (d, k)
        assert res.cluster[d] == k
    # One pair row per removed document: (kept, removed, similarity), sorted by the removed one.
    removed = np.flatnonzero(~res.keep)
    assert res.pairs["j"].tolist() == removed.tolist()
    assert res.pairs["i"].tolist() == res.duplicate_of[removed].tolist()
    assert res.pairs["jaccard"].tolist() == res.similarity[removed].tolist()
    assert res.stats["n_removed"] == len(got)


# --------------------------------------------------------------------------------------------
# 2. Rust == reference, exactly


@functools.cache
def small_corpus() -> tuple[str, ...]:
    """~60 short documents: distinct prose, near-duplicates, exact copies, a short chain (so
    components chain below the threshold), empty and blank documents."""
    rng = random.Random(3)
    text = ref.normalize(prose()[200_000:])
    vocab = sorted(set(text.split()))
    base = [text[i * 400 : i * 400 + rng.randint(120, 220)] for i in range(30)]
    docs = list(base)
    docs += [word_edits(rng, b, 1, vocab) for b in rng.sample(base, 12)]
    docs += rng.sample(base, 5)
    chain_src = text[50_000:]
    docs += [chain_src[i * 12 : i * 12 + 160] for i in range(8)]
    docs += ["", "   \n", "x"]
    rng.shuffle(docs)
    return tuple(docs)


@pytest.mark.parametrize("verify", ["exact", "minhash"])
@pytest.mark.parametrize("keep", ["first", "longest"])
@pytest.mark.parametrize("cluster", ["greedy", "components"])
def test_rust_equals_reference(cluster, keep, verify):
    texts = list(small_corpus())
    kw = {"threshold": 0.7, "num_perm": 64, "cluster": cluster, "keep": keep, "verify": verify}
    res = check_against_reference(texts, **kw)
    assert 5 <= res.stats["n_removed"] < len(texts) - 10
    if cluster == "greedy" and verify == "exact":
        assert (res.similarity[~res.keep] >= 0.7).all()
    wide = check_against_reference(texts, all_pairs=True, **kw)
    assert (wide.pairs["i"] < wide.pairs["j"]).all()
    assert len(wide.pairs) > 0 and (wide.pairs["jaccard"] >= 0.7).all()
    if cluster == "greedy" and keep == "first":  # every removal is a verified candidate pair
        assert {(i, j) for i, j, _ in res.pairs.tolist()} <= {
            (i, j) for i, j, _ in wide.pairs.tolist()
        }


# --------------------------------------------------------------------------------------------
# 3. Chains: greedy stays within the threshold, components chain everything together


def test_chain_greedy_vs_components():
    texts = list(chain_corpus())
    n = len(texts)
    sets = shingle_sets("chain")
    neighbours = [ref.jaccard(sets[i], sets[i + 1]) for i in range(n - 1)]
    far = [ref.jaccard(sets[i], sets[i + 40]) for i in range(0, n - 40, 10)]
    # The corpus is what it claims: a chain of near-duplicates whose ends are unrelated.
    assert min(neighbours) >= THRESHOLD and np.mean(neighbours) < 0.9
    assert ref.jaccard(sets[0], sets[-1]) < 0.05 and np.mean(far) < 0.1

    greedy = ts.dedup(texts, threshold=THRESHOLD)
    oracle_kept = sum(r < 0 for r in oracle("chain", "first"))
    n_kept = int(greedy.keep.sum())
    assert oracle_kept > 0.1 * n
    assert n_kept > 0.1 * n
    assert abs(n_kept - oracle_kept) <= max(1, 0.01 * oracle_kept), (n_kept, oracle_kept)
    sims = greedy.similarity[~greedy.keep]
    assert len(sims) and (sims >= THRESHOLD).all()
    oracle_largest = max(
        np.bincount([d if r < 0 else r for d, r in enumerate(oracle("chain", "first"))])
    )
    largest = np.bincount(greedy.cluster).max()
    assert largest < 0.05 * n and largest <= oracle_largest + 2  # no chaining: small clusters
    assert "warnings" not in greedy.stats or not greedy.stats["warnings"]

    comp = ts.dedup(texts, threshold=THRESHOLD, cluster="components")
    s = comp.stats
    assert s["largest_component"] >= 0.9 * n
    assert np.bincount(comp.cluster).max() == s["largest_component"]
    assert int(comp.keep.sum()) < 0.05 * n
    below = np.flatnonzero(~comp.keep & (comp.similarity < THRESHOLD))
    assert s["n_below_threshold"] == len(below) > 0
    assert s["below_threshold"] == below[:100].tolist()
    assert any("threshold" in w for w in s["warnings"]), s["warnings"]


# --------------------------------------------------------------------------------------------
# 4. Linear cost: copies are compared with their kept document only


def test_exact_copies_linear():
    text = prose()[10_000:10_700]
    others = [prose()[i : i + 500] for i in range(30_000, 33_000, 600)]
    n_copies = 10_000
    texts = [text] + others[:2] + [text] * (n_copies // 2) + others[2:] + [text] * (n_copies // 2)
    res = ts.dedup(texts, threshold=THRESHOLD)
    copies = np.array([d for d, t in enumerate(texts) if t == text and d > 0])
    assert len(copies) == n_copies
    assert not res.keep[copies].any()
    assert (res.duplicate_of[copies] == 0).all()
    assert (res.similarity[copies] == 1.0).all()
    assert (res.examined[copies] == 1).all()
    assert res.keep.sum() == 1 + len(others)
    assert res.stats["n_candidates"] <= n_copies + 50
    assert res.stats["examined_per_doc"]["max"] <= 5


def edited_copies(n: int, seed: int = 0) -> list[str]:
    """A base text and ``n`` copies of it, each with one word (at a random position) replaced
    by a random word."""
    rng = random.Random(seed)
    base = ref.normalize(prose()[40_000:40_700]).split()
    texts = [" ".join(base)]
    for _ in range(n):
        words = list(base)
        words[rng.randrange(len(words))] = "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))
        )
        texts.append(" ".join(words))
    return texts


def test_edited_copies_linear():
    counts = {}
    for n in (2_500, 10_000):
        texts = edited_copies(n)
        assert len(set(texts)) > 0.9 * len(texts)  # (nearly) all distinct
        res = ts.dedup(texts, threshold=THRESHOLD)
        assert res.keep.tolist() == [True] + [False] * n
        assert (res.duplicate_of[1:] == 0).all()
        assert (res.similarity[1:] >= THRESHOLD).all()
        assert res.stats["n_candidates"] <= 3 * len(texts), res.stats["n_candidates"]
        assert int(res.examined.max()) <= 3
        assert int(res.examined.sum()) == res.stats["n_candidates"]
        counts[n] = res.stats["n_candidates"]
    assert counts[10_000] <= 4 * counts[2_500] * 1.1  # linear, not quadratic (16x)


# --------------------------------------------------------------------------------------------
# 5. Independence from threads, input form and chunking; nulls


def test_same_for_threads_inputs_and_chunks(monkeypatch):
    texts = list(planted_corpus())
    one = ts.dedup(texts, num_threads=1)
    assert not one.keep.all()
    for threads in (2, None):
        assert_same_result(one, ts.dedup(texts, num_threads=threads))
    assert_same_result(one, ts.dedup(t for t in texts))
    assert_same_result(one, ts.dedup(np.array(texts, dtype=object)))
    assert_same_result(one, ts.dedup(tuple(texts), num_threads=2))
    mod = sys.modules["textsieve.dedup"]  # the module (``textsieve.dedup`` is the function)
    for chunk in (1, 7, 100):
        monkeypatch.setattr(mod, "_CHUNK_DOCS", chunk)
        assert_same_result(one, ts.dedup(iter(texts), num_threads=2), same_work=False)


def test_pyarrow_inputs():
    pa = pytest.importorskip("pyarrow")
    texts = list(planted_corpus())
    one = ts.dedup(texts)
    assert_same_result(one, ts.dedup(pa.array(texts)))
    assert_same_result(one, ts.dedup(pa.array(texts, type=pa.large_string())))
    cuts = [0, 1, 50, 51, 200, len(texts)]
    chunked = pa.chunked_array([texts[a:b] for a, b in zip(cuts, cuts[1:])], type=pa.string())
    assert chunked.num_chunks == 5
    assert_same_result(one, ts.dedup(chunked))
    with_null = texts[:7] + [None] + texts[7:]
    with pytest.raises(ts.TextsieveError, match=r"texts\[7\]"):
        ts.dedup(pa.array(with_null))
    assert_same_result(
        ts.dedup(texts[:7] + [""] + texts[7:]), ts.dedup(pa.array(with_null), nulls="empty")
    )


def test_nulls():
    texts = list(planted_corpus())[:80]
    texts[3] = texts[2]  # so that something is removed
    with_null = texts[:40] + [None] + texts[40:]
    for form in (list, iter, lambda x: np.array(x, dtype=object)):
        with pytest.raises(ts.TextsieveError, match=r"texts\[40\]: a null"):
            ts.dedup(form(with_null))
        got = ts.dedup(form(with_null), nulls="empty")
        want = ts.dedup(texts[:40] + [""] + texts[40:])
        assert_same_result(got, want)
        assert got.empty[40] and got.keep[40] and got.duplicate_of[40] == -1
        assert got.empty.sum() == 1 and not got.keep[3]
    with pytest.raises(ts.TextsieveError, match=r"texts\[0\]"):
        ts.dedup([None, "a"])
    with pytest.raises(ts.TextsieveError, match="nulls"):
        ts.dedup(["a"], nulls="skip")


# --------------------------------------------------------------------------------------------
# 6. DedupIndex in batches == one dedup call


@pytest.mark.parametrize("round_trip", [False, True])
@pytest.mark.parametrize("k", [1, 3, 10])
def test_index_batches_equal_one_call(k, round_trip, tmp_path):
    texts = list(planted_corpus())
    whole = ts.dedup(texts, keep="first")
    idx = ts.DedupIndex(threshold=THRESHOLD, keep="first")
    parts = []
    bounds = np.linspace(0, len(texts), k + 1).astype(int)
    for b, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        if round_trip and b == k // 2:
            idx.save(tmp_path / "idx")
            idx = ts.DedupIndex.load(tmp_path / "idx")
            assert len(idx) == lo
        r = idx.add(texts[lo:hi])
        assert r.offset == lo and len(r) == hi - lo
        parts.append(r)
    assert len(idx) == len(texts)
    assert np.concatenate([r.keep for r in parts]).tolist() == whole.keep.tolist()
    dup = np.concatenate([r.duplicate_of for r in parts])
    assert dup.tolist() == whole.duplicate_of.tolist()
    np.testing.assert_array_equal(np.concatenate([r.similarity for r in parts]), whole.similarity)
    assert np.concatenate([r.cluster for r in parts]).tolist() == whole.cluster.tolist()
    assert sum((r.pairs.tolist() for r in parts), []) == whole.pairs.tolist()


# --------------------------------------------------------------------------------------------
# 7. CLI on the chain


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def chain_jsonl(tmp_path) -> Path:
    path = tmp_path / "chain.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i, t in enumerate(chain_corpus()):
            fh.write(json.dumps({"id": f"w{i}", "text": t}) + "\n")
    return path


def test_cli_chain(chain_jsonl, tmp_path):
    texts = list(chain_corpus())
    ids = [f"w{i}" for i in range(len(texts))]

    out = tmp_path / "greedy"
    assert main(["dedup", str(chain_jsonl), "-o", str(out), "-q"]) == 0
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    pairs = read_jsonl(out / "pairs.jsonl")
    removed = read_jsonl(out / "removed.jsonl")
    kept = {r["id"] for r in read_jsonl(out / "kept.jsonl")}
    assert len(pairs) == stats["n_removed"] == len(removed) > 0.1 * len(texts)
    assert [p["id"] for p in pairs] == [r["id"] for r in removed]
    for p in pairs:
        assert set(p) == {"id", "duplicate_of", "jaccard"}
        assert p["jaccard"] >= THRESHOLD
        assert p["duplicate_of"] in kept and p["id"] not in kept
    want = ts.dedup(texts, threshold=THRESHOLD)
    assert [(p["duplicate_of"], p["id"], p["jaccard"]) for p in pairs] == [
        (ids[i], ids[j], jac) for i, j, jac in want.pairs.tolist()
    ]
    assert not stats["warnings"]

    out = tmp_path / "components"
    assert main(["dedup", str(chain_jsonl), "-o", str(out), "--cluster", "components", "-q"]) == 0
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["warnings"] and any("threshold" in w for w in stats["warnings"])
    assert stats["largest_cluster"] >= 0.9 * len(texts)
    assert "below the threshold" in (out / "report.html").read_text(encoding="utf-8")
    below = [p for p in read_jsonl(out / "pairs.jsonl") if p["jaccard"] < THRESHOLD]
    assert len(below) == stats["dedup_stats"]["n_below_threshold"] > 0

    out = tmp_path / "all"
    assert main(["dedup", str(chain_jsonl), "-o", str(out), "--all-pairs", "-q"]) == 0
    rows = read_jsonl(out / "pairs.jsonl")
    assert rows and all(set(r) == {"id_a", "id_b", "jaccard"} for r in rows)
    assert all(r["jaccard"] >= THRESHOLD for r in rows)
    assert len(rows) == len(ts.dedup(texts, threshold=THRESHOLD, all_pairs=True).pairs)
    listed = {(r["id_a"], r["id_b"]) for r in rows}
    assert {(p["duplicate_of"], p["id"]) for p in pairs} <= listed
    assert len(rows) > len(pairs)


def copies_of_removed_texts() -> list[str]:
    """Random-word documents, three edited copies of each, then exact copies of some of them at
    the end: copies of *removed* texts, settled by their text's match in the same chunk (one
    similarity) or compared again in a later one."""
    rng = random.Random(0)
    words = [f"w{i}" for i in range(400)]
    base = [" ".join(rng.choice(words) for _ in range(60)) for _ in range(40)]
    docs = list(base)
    for b in base:
        for _ in range(3):
            t = b.split()
            for _ in range(rng.randint(2, 8)):
                t[rng.randrange(len(t))] = rng.choice(words)
            docs.append(" ".join(t))
    rng.shuffle(docs)
    return docs + [docs[i] for i in rng.sample(range(len(docs)), 40)]


def test_copies_of_removed_texts_any_chunking(monkeypatch):
    """Decisions never depend on the chunking; the work may (a copy of a removed text decided
    in the same chunk reuses its match), and is the same for any thread count."""
    texts = copies_of_removed_texts()
    one = ts.dedup(texts, num_threads=1)
    first: dict[str, int] = {}
    reused = 0
    for i, t in enumerate(texts):
        o = first.setdefault(t, i)
        if o != i and one.duplicate_of[o] >= 0:
            assert one.duplicate_of[i] == one.duplicate_of[o]
            reused += one.examined[i] < one.examined[o]
    assert reused >= 3  # the case is there
    mod = sys.modules["textsieve.dedup"]
    for chunk in (1, 7, 50):
        monkeypatch.setattr(mod, "_CHUNK_DOCS", chunk)
        assert_same_result(one, ts.dedup(iter(texts), num_threads=2), same_work=False)
        assert_same_result(
            ts.dedup(iter(texts), num_threads=1), ts.dedup(iter(texts), num_threads=2)
        )
