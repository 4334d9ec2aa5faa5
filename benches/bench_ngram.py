"""Tokenize, count, perplexity and the whole pipeline: Rust vs the pure-Python reference vs NLTK
and KenLM (when installed), on the same text in the same run.

    pytest benches/bench_ngram.py --benchmark-enable --benchmark-group-by=group

With benchmarks disabled (the default in pyproject), each runs once on a small slice as a test.
The full side-by-side table with ratios: ``textsieve bench``.
"""

from __future__ import annotations

import math

import pytest
from textsieve import reference as ref
from textsieve.bench import load_corpus, split, write_arpa
from textsieve.ngram import AddKLM, NgramCounts
from textsieve.vocab import Vocab


@pytest.fixture(scope="module", params=["shakespeare", "manpages"])
def corpus(request):
    enabled = request.config.getoption("benchmark_enable", False)
    label, docs = load_corpus(request.param, limit_bytes=None if enabled else 150_000)
    train, evals = split(docs)
    return label, train, evals


@pytest.mark.benchmark(group="tokenize")
def test_tokenize_rust(benchmark, corpus):
    _, train, _ = corpus
    vocab = Vocab.from_texts(train)
    ids = benchmark(vocab.encode_batch, train, num_threads=1)
    assert [a.tolist() for a in ids[:50]] == [
        ref.encode(ref.char_tokenize(d), vocab.tokens) for d in train[:50]
    ]


@pytest.mark.benchmark(group="tokenize")
def test_tokenize_reference(benchmark, corpus):
    _, train, _ = corpus
    toks = benchmark.pedantic(lambda: [ref.char_tokenize(d) for d in train], rounds=1)
    assert sum(map(len, toks)) > 0


@pytest.mark.benchmark(group="count")
def test_count_rust(benchmark, corpus):
    _, train, _ = corpus
    vocab = Vocab.from_texts(train)
    counts = benchmark(lambda: NgramCounts(3, vocab).update(train, num_threads=1))
    grams, _ = ref.count_ngrams([ref.char_tokenize(d) for d in train[:100]], 3)
    assert counts.total >= sum(grams.values()) > 0


@pytest.mark.benchmark(group="count")
def test_count_reference(benchmark, corpus):
    _, train, _ = corpus
    toks = [ref.char_tokenize(d) for d in train]
    grams, _ = benchmark.pedantic(ref.count_ngrams, args=(toks, 3), rounds=1)
    assert sum(grams.values()) > 0


@pytest.mark.benchmark(group="perplexity")
def test_perplexity_rust(benchmark, corpus):
    _, train, evals = corpus
    lm = AddKLM(order=2, k=0.1, num_threads=1).fit(train)
    got = benchmark(lm.perplexity, evals)
    want = ref.perplexity(
        [ref.char_tokenize(d) for d in train], [ref.char_tokenize(d) for d in evals], 2, 0.1
    )
    assert math.isclose(got, want, rel_tol=1e-9)


@pytest.mark.benchmark(group="perplexity")
def test_perplexity_reference(benchmark, corpus):
    _, train, evals = corpus
    model = ref.train_addk([ref.char_tokenize(d) for d in train], 2)
    ev = [ref.char_tokenize(d) for d in evals]
    scores = benchmark.pedantic(ref.score_documents, args=(model, ev, 2, 0.1), rounds=1)
    assert sum(n for _, n in scores) > 0


@pytest.mark.benchmark(group="perplexity")
def test_perplexity_kenlm(benchmark, corpus, tmp_path):
    kenlm = pytest.importorskip("kenlm", reason="KenLM is not installed (a bench peer)")
    _, train, evals = corpus
    lm = AddKLM(order=2, k=0.1).fit(train)
    if len(lm.vocab) > 400:
        pytest.skip("the dense ARPA export is for small vocabularies")
    write_arpa(lm, tmp_path / "m.arpa")
    model = kenlm.Model(str(tmp_path / "m.arpa"))
    sents = [
        " ".join(f"u{ord(c):x}" if c in lm.vocab else "<unk>" for c in lm.vocab.tokenize(d))
        for d in evals
    ]
    sents = [s for s in sents if " " in s]
    total = benchmark(lambda: sum(model.score(s, bos=False, eos=False) for s in sents))
    n = sum(s.count(" ") for s in sents)
    got = 10 ** (-(total - len(sents) * math.log10(1 / len(lm.vocab))) / n)
    assert math.isclose(got, lm.perplexity(evals), rel_tol=1e-5)


@pytest.mark.benchmark(group="pipeline")
def test_pipeline_rust(benchmark, corpus):
    _, train, evals = corpus
    got = benchmark(lambda: AddKLM(order=2, k=0.1, num_threads=1).fit(train).perplexity(evals))
    assert 1 < got < 1000


@pytest.mark.benchmark(group="pipeline")
def test_pipeline_reference(benchmark, corpus):
    _, train, evals = corpus

    def run():
        return ref.perplexity(
            [ref.char_tokenize(d) for d in train], [ref.char_tokenize(d) for d in evals], 2, 0.1
        )

    got = benchmark.pedantic(run, rounds=1)
    assert math.isclose(got, AddKLM(order=2, k=0.1).fit(train).perplexity(evals), rel_tol=1e-9)


@pytest.mark.benchmark(group="pipeline")
def test_pipeline_nltk(benchmark, corpus):
    nltk_lm = pytest.importorskip("nltk.lm", reason="NLTK is not installed (a bench peer)")
    from itertools import chain

    from nltk.util import everygrams, ngrams

    _, train, evals = corpus
    train, evals = train[: max(1, len(train) // 20)], evals[: max(1, len(evals) // 20)]

    def run():
        tr = [ref.char_tokenize(d) for d in train]
        vocab = nltk_lm.Vocabulary(chain.from_iterable(tr), unk_cutoff=1, unk_label="<unk>")
        lid = nltk_lm.Lidstone(0.1, 2, vocabulary=vocab)
        lid.fit([list(everygrams(d, max_len=2)) for d in tr])
        return lid.perplexity([g for d in evals for g in ngrams(ref.char_tokenize(d), 2)])

    got = benchmark.pedantic(run, rounds=1)
    assert math.isclose(got, AddKLM(order=2, k=0.1).fit(train).perplexity(evals), rel_tol=1e-9)
