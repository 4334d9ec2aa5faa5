"""The suffix index (`textsieve.SuffixIndex`, `textsieve.repeated_spans`) against the brute-force
reference (`textsieve.reference.suffix`), on examples and on hypothesis-generated corpora."""

from __future__ import annotations

import json
import math
import os
import pathlib
import threading

import numpy as np
import pytest
import textsieve as ts
from hypothesis import given, settings
from hypothesis import strategies as st
from textsieve.reference import suffix as ref
from textsieve.suffix import Span, cleaned_text

# a small alphabet so that repeats are common; multi-byte characters so that spans and counts
# meet character boundaries
ALPHABET = "ab é\u00fc\u4e2d\U0001f600"
docs_st = st.lists(st.text(alphabet=ALPHABET, max_size=40), max_size=8)
query_st = st.text(alphabet=ALPHABET, min_size=0, max_size=5)


def same_prob(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=0)


@settings(max_examples=150, deadline=None)
@given(docs_st, st.integers(1, 12), st.sampled_from(["later", "all"]))
def test_repeated_spans_equal_the_reference(docs, min_length, policy):
    got = ts.repeated_spans(docs, min_length, policy)
    assert [tuple(s) for s in got] == ref.repeated_spans(docs, min_length, policy)
    for s in got:  # never cut a character
        docs[s.document].encode()[s.start : s.end].decode("utf-8")


@settings(max_examples=100, deadline=None)
@given(docs_st, st.lists(query_st, min_size=1, max_size=6), st.sampled_from([4, 8]))
def test_queries_equal_the_reference(docs, queries, width):
    index = ts.SuffixIndex.build(docs, position_bytes=width)
    assert index.position_bytes == width
    counts = index.count_batch(queries)
    assert counts.dtype == np.uint64
    for q, c in zip(queries, counts.tolist()):
        assert index.count(q) == c == ref.count(docs, q)
        if q:
            assert index.locate(q) == ref.locate(docs, q)
            assert index.locate(q, 2) == ref.locate(docs, q, 2)
        assert tuple(index.next_counts(q)) == ref.next_counts(docs, q)
        for n in (None, 1, 2, 4):
            assert same_prob(index.prob(q, "a", n), ref.prob(docs, q, "a", n)), (q, n)
    batch = index.next_counts_batch(queries)
    assert [tuple(b) for b in batch] == [ref.next_counts(docs, q) for q in queries]
    p, k = index.prob_batch(queries, ["b"] * len(queries))
    for q, pi, ki in zip(queries, p.tolist(), k.tolist()):
        assert same_prob(pi, ref.prob(docs, q, "b"))
        assert ki == ref.longest_suffix(docs, q)


def test_infini_gram_example():
    index = ts.SuffixIndex.build(["to be or not to be", "to be is to do"])
    nc = index.next_counts("what is to b")
    assert nc.length == 5 and nc.total == 1 and nc.counts == {"e": 1}  # " to b"
    # the end of a document counts in the total only
    nc = index.next_counts("not to be")
    assert (nc.length, nc.total, nc.counts) == (9, 1, {})
    assert index.prob("not to be", "x") == 0.0
    assert index.prob("xyz", "t", 1) == ref.prob(["to be or not to be", "to be is to do"], "", "t")
    assert math.isnan(index.prob("xyz", "t", 2))


def test_saved_index_is_mapped_and_answers_the_same(tmp_path):
    docs = ["the cat sat on the mat", "the dog sat", "", "caté"]
    built = ts.SuffixIndex.build(docs, tmp_path / "idx")
    assert built.path == os.fspath(tmp_path / "idx")
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == [
        "docs.bin",
        "manifest.json",
        "sa.bin",
        "text.bin",
    ]
    again = ts.SuffixIndex.open(tmp_path / "idx")
    assert len(again) == 4 and again.document(3) == "caté"
    for q in ["the", "sat", "é", "at", "zzz"]:
        assert again.count(q) == built.count(q) == ref.count(docs, q)
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["position_bytes"] == 4 and manifest["documents"] == 4
    with pytest.raises(ts.InvalidArgumentError, match="already exists"):
        again.save(tmp_path / "idx")


def test_a_damaged_index_is_corrupt_data(tmp_path):
    ts.SuffixIndex.build(["hello world"], tmp_path / "idx")
    (tmp_path / "idx" / "sa.bin").write_bytes(b"\0" * 7)
    with pytest.raises(ts.CorruptDataError, match="sa.bin"):
        ts.SuffixIndex.open(tmp_path / "idx")
    with pytest.raises(OSError, match="manifest.json"):  # a file that cannot be read
        ts.SuffixIndex.open(tmp_path / "nothing")


def test_built_from_files_as_dedup_reads_them(tmp_path):
    rows = [{"id": "a", "text": "shared passage one"}, {"id": "b", "text": "x shared passage"}]
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    (tmp_path / "d.txt").write_text("line one\nshared passage\n")
    index = ts.SuffixIndex.build([path, tmp_path / "d.txt"])
    assert len(index) == 4
    assert index.count("shared passage") == 3
    assert index.locate("shared passage") == [(0, 0), (1, 2), (3, 0)]
    assert ts.SuffixIndex.build(str(path)).count("shared") == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": 3}\n')
    with pytest.raises(ts.TextsieveError, match="bad.jsonl:2"):
        ts.SuffixIndex.build(bad)


def test_bad_arguments_name_themselves():
    index = ts.SuffixIndex.build(["abc"])
    with pytest.raises(ts.TextsieveError, match="min_length"):
        index.repeated_spans(0)
    with pytest.raises(ts.TextsieveError, match="policy"):
        index.repeated_spans(3, "first")
    with pytest.raises(ts.TextsieveError, match="position_bytes"):
        ts.SuffixIndex.build(["abc"], position_bytes=2)
    with pytest.raises(TypeError):
        ts.SuffixIndex.build([pathlib.Path("x"), "text"])
    with pytest.raises(ts.InvalidArgumentError, match="s"):
        index.count("\ud800")
    with pytest.raises(ts.InvalidArgumentError, match="tokens"):
        index.prob_batch(["a"], ["b", "c"])


def test_batch_queries_release_the_gil_and_agree():
    docs = ["abcab" * 50, "bca" * 40]
    index = ts.SuffixIndex.build(docs)
    queries = ["ab", "ca", "bcab", "x", "abcabcab"] * 200
    want = [ref.count(docs, q) for q in queries[:5]] * 200
    results = {}

    def work(i: int) -> None:
        results[i] = index.count_batch(queries, num_threads=2).tolist()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == want for r in results.values())
    assert index.count_batch(queries, num_threads=1).tolist() == want


def test_cleaned_text_cuts_spans():
    text = "keep SPAN keep"
    assert cleaned_text(text, [Span(0, 5, 10)]) == "keep keep"


def test_an_empty_corpus_builds_saves_and_answers(tmp_path):
    index = ts.SuffixIndex.build([], tmp_path / "idx")
    assert len(index) == 0 and index.count("a") == 0 and index.locate("a") == []
    assert index.next_counts("abc") == (0, 0, {})
    assert math.isnan(index.prob("a", "b"))
    assert index.repeated_spans(1) == []
    assert len(ts.SuffixIndex.open(tmp_path / "idx")) == 0
