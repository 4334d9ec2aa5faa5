"""Recall and precision of ``textsieve.dedup`` against brute-force exact all-pairs Jaccard.

    pytest benches/bench_accuracy.py -s --benchmark-enable     # full corpora, prints the table

Corpora: (a) real Shakespeare paragraphs plus copies with 1, 3, 5, 10 and 20 percent random
character edits; (b) the Japanese manual pages. Ground truth: every pair with exact Jaccard >=
threshold over the same char 5-gram sets (a scipy sparse product). With benchmarks disabled (the
default) a small slice runs as a test. Skipped when ``../shared/data`` is absent.
"""

from __future__ import annotations

import pytest
import textsieve as ts

from ._dedup_data import manpages, planted, true_pairs

THRESHOLDS = (0.5, 0.7, 0.8, 0.9)


def _corpus(name: str, full: bool) -> list[str] | None:
    if name == "planted":
        return planted(n_originals=1000 if full else 60)
    docs = manpages()
    return None if docs is None else (docs if full else docs[:120])


def measure(docs: list[str], threshold: float, **kw) -> dict[str, float]:
    truth = true_pairs(docs, threshold)
    # every verified pair (all_pairs): the LSH's recall of true pairs, whatever the clustering
    res = ts.dedup(docs, threshold=threshold, all_pairs=True, **kw)
    found = {(int(i), int(j)): float(s) for i, j, s in res.pairs.tolist()}
    hit = len(found.keys() & truth.keys())
    return {
        "true": len(truth),
        "found": len(found),
        "recall": hit / len(truth) if truth else 1.0,
        "precision": hit / len(found) if found else 1.0,
        "candidates": res.stats["n_candidates"],
        "jaccard_equal": all(truth[p] == found[p] for p in found.keys() & truth.keys()),
    }


@pytest.mark.parametrize("name", ["planted", "manpages"])
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_recall_and_precision(request, name, threshold):
    full = request.config.getoption("benchmark_enable", False)
    docs = _corpus(name, full)
    if docs is None:
        pytest.skip("../shared/data is absent")
    m = measure(docs, threshold)
    print(f"\n{name} ({len(docs)} docs) threshold {threshold}: {m}")
    assert m["precision"] == 1.0
    assert m["jaccard_equal"]
    assert m["recall"] >= 0.99


@pytest.mark.parametrize("name", ["planted", "manpages"])
def test_datasketch_params_for_comparison(request, name):
    """datasketch's own LSH choice at 0.8 (9 bands x 13 rows) misses true pairs near the threshold."""
    full = request.config.getoption("benchmark_enable", False)
    docs = _corpus(name, full)
    if docs is None:
        pytest.skip("../shared/data is absent")
    ds = measure(docs, 0.8, bands=9, rows=13, scheme="datasketch-affine32")
    ours = measure(docs, 0.8)
    print(f"\n{name} at 0.8: datasketch params {ds}; textsieve default {ours}")
    assert ours["recall"] >= ds["recall"]
