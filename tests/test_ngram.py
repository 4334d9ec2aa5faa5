import math
import pickle

import numpy as np
import pytest
import textsieve as ts
from hypothesis import given, settings
from hypothesis import strategies as st
from textsieve import reference as ref

from tests.strategies import ASSIGNED


def test_seed_notebook_figures(seed_split):
    train, val = seed_split
    uni = ts.AddKLM(order=1, k=0.1).fit(train)
    big = ts.AddKLM(order=2, k=0.1).fit(train)
    assert len(uni.vocab) == 116 and uni.V == 116
    assert round(uni.perplexity(val), 4) == 476.3932
    assert round(big.perplexity(val), 4) == 95.9628


def test_seed_near_duplicate_example():
    a = "llmの事前学習では大規模テキストを使う"
    b = "llmの事前学習では大規模なテキストを使う"
    sa = {a[i : i + 3] for i in range(len(a) - 2)}
    sb = {b[i : i + 3] for i in range(len(b) - 2)}
    assert round(len(sa & sb) / len(sa | sb), 4) == 0.7619


@pytest.mark.parametrize("order", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("pad", [False, True])
def test_matches_reference(seed_split, order, pad):
    train, val = seed_split
    lm = ts.AddKLM(order=order, k=0.5, pad=pad).fit(train)
    tr = [ref.char_tokenize(d) for d in train]
    va = [ref.char_tokenize(d) for d in val]
    want = ref.perplexity(tr, va, order=order, k=0.5, pad=pad)
    assert math.isclose(lm.perplexity(val), want, rel_tol=1e-12)
    grams, _ = ref.count_ngrams(tr, order, pad)
    assert lm.counts.to_dict() == dict(grams)
    per_doc = ref.document_perplexities(tr, va, order=order, k=0.5, pad=pad)
    got = lm.score(val)
    for g, (nll, n) in zip(got, per_doc):
        assert (math.isnan(g) and n == 0) or math.isclose(g, math.exp(nll / n), rel_tol=1e-12)


# (characters this Python's Unicode tables know: the reference lowercases with them)
texts = st.lists(st.text(ASSIGNED, min_size=0, max_size=40), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(train=texts, test=texts, order=st.integers(1, 4), k=st.floats(0.01, 3.0), pad=st.booleans())
def test_rust_equals_reference_on_generated_unicode(train, test, order, k, pad):
    train = [t.replace("\ud800", "") for t in train]
    tr = [ref.char_tokenize(d) for d in train]
    va = [ref.char_tokenize(d) for d in test]
    assert [ts.char_tokenize(d) for d in train] == tr
    vocab = ts.Vocab.from_texts(train)
    assert vocab.tokens == ref.build_vocab(tr)
    for d, toks in zip(test, va):
        assert vocab.encode(d).tolist() == ref.encode(toks, vocab.tokens)
    counts = ts.NgramCounts(order, vocab, pad=pad).update(train)
    grams, _ = ref.count_ngrams([ref.encode(t, vocab.tokens) for t in tr], order, pad)
    names = vocab.tokens + ["<s>", "</s>"]
    assert counts.to_dict() == {
        tuple(names[i] if isinstance(i, int) else i for i in g): c for g, c in grams.items()
    }
    lm = ts.AddKLM.from_counts(counts, k)
    per_doc = ref.document_perplexities(tr, va, order=order, k=k, pad=pad)
    n = sum(c for _, c in per_doc)
    if n == 0:
        with pytest.raises(ValueError, match="nothing to score"):
            lm.perplexity(test)
    else:
        want = math.exp(sum(s for s, _ in per_doc) / n)
        assert math.isclose(lm.perplexity(test), want, rel_tol=1e-12)


def test_counts_any_order_per_document_and_mergeable():
    docs = ["abcab", "ba", "c", ""]
    v = ts.Vocab.from_texts(docs)
    for order in range(1, 9):
        whole = ts.NgramCounts(order, v).update(docs)
        parts = ts.NgramCounts(order, v).update(docs[:2]) + ts.NgramCounts(order, v).update(
            docs[2:]
        )
        assert parts == whole
        grams, _ = ref.count_ngrams([ref.char_tokenize(d) for d in docs], order)
        assert whole.to_dict() == dict(grams)
        assert whole.total == sum(grams.values())
    bigrams = ts.NgramCounts(2, v).update(docs)
    assert bigrams.count("b", "a") == 1  # "abcab" has none, "ba" has one
    assert ("b", "c") not in ts.NgramCounts(2, v).update(["ab", "cd"]).to_dict()
    ids, counts = bigrams.to_arrays()
    assert ids.shape == (len(counts), 2) and counts.dtype == np.uint64
    m = bigrams.bigram_matrix()
    assert m.shape == (len(v), len(v)) and m.sum() == bigrams.total
    assert m[v.id_of("a"), v.id_of("b")] == bigrams.count("a", "b")
    with pytest.raises(ts.TextsieveError, match="different vocabulary"):
        bigrams + ts.NgramCounts(2, ts.Vocab.from_texts(["xyz"]))


def test_probabilities_sum_to_one(seed_split):
    train, _ = seed_split
    lm = ts.AddKLM(order=2, k=0.1).fit(train)
    for ctx in ["学", "z", "<unk>"]:
        total = sum(lm.prob([ctx], t) for t in lm.vocab.tokens)
        assert math.isclose(total, 1.0, rel_tol=1e-12)
    c = lm.counts
    want = (c.count("学", "習") + 0.1) / (
        sum(c.count("学", t) for t in lm.vocab.tokens) + 0.1 * 116
    )
    assert math.isclose(lm.prob("学", "習"), want, rel_tol=1e-15)


def test_per_document_scores_and_short_documents(seed_split):
    train, val = seed_split
    lm = ts.AddKLM(order=3, k=0.1).fit(train)
    s = lm.score([*val, "", "あ"])
    assert s.shape == (4,) and np.isnan(s[2]) and np.isnan(s[3])
    # the corpus perplexity weighs documents by their predicted tokens
    nll = np.log(s[:2]) * np.array([len(ts.char_tokenize(d)) - 2 for d in val])
    assert math.isclose(
        math.exp(nll.sum() / sum(len(ts.char_tokenize(d)) - 2 for d in val)),
        lm.perplexity(val),
        rel_tol=1e-12,
    )
    padded = ts.AddKLM(order=3, k=0.1, pad=True).fit(train)
    assert not np.isnan(padded.score([""])[0])  # predicts </s> twice


def test_sampling(seed_split):
    train, _ = seed_split
    lm = ts.AddKLM(order=2, k=0.01).fit(train)
    a = lm.sample("学", 30, seed=3)
    assert a == lm.sample("学", 30, seed=3)
    assert a != lm.sample("学", 30, seed=4)
    assert len(a) == 30 and "<unk>" not in a
    cold = lm.sample("学", 30, seed=3, temperature=0.01)
    assert cold.startswith("習")  # 学 -> 習 is by far the most frequent transition
    with pytest.raises(ts.TextsieveError, match="temperature"):
        lm.sample("学", 5, temperature=0)
    with pytest.raises(ts.TextsieveError, match="start"):
        lm.sample("", 5)
    padded = ts.AddKLM(order=2, k=0.01, pad=True).fit(train)
    assert len(padded.sample("", 500, seed=1)) < 500  # stops at </s>


def test_save_load_pickle(tmp_path, seed_split):
    train, val = seed_split
    lm = ts.AddKLM(order=3, k=0.2, pad=True).fit(train)
    lm.save(tmp_path / "m.npz")
    back = ts.AddKLM.load(tmp_path / "m.npz")
    assert back.perplexity(val) == lm.perplexity(val)
    assert back.counts == lm.counts and back.k == lm.k
    again = pickle.loads(pickle.dumps(lm))
    assert again.perplexity(val) == lm.perplexity(val)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ts.TextsieveError, match="junk.npz"):
        ts.AddKLM.load(tmp_path / "junk.npz")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_arguments():
    with pytest.raises(ValueError, match="k: must be a positive"):
        ts.AddKLM(k=0)
    with pytest.raises(ValueError, match="k: must be a positive"):
        ts.AddKLM(k=-1)
    with pytest.raises(ValueError, match="order: must be at least 1"):
        ts.AddKLM(order=0)
    with pytest.raises(ValueError, match="training set is empty"):
        ts.AddKLM().fit([])
    with pytest.raises(ValueError, match="no 3-gram"):
        ts.AddKLM(order=3).fit(["ab", ""])
    with pytest.raises(TypeError, match=r"texts\[2\]: expected str, got NoneType"):
        ts.AddKLM().fit(["ab", "cd", None])
    with pytest.raises(ValueError, match="lone surrogate"):
        ts.AddKLM().fit(["ab\udfff"])
    assert ts.AddKLM().fit(["ab\udfff"], errors="replace").vocab.tokens[-1] == "\ufffd"
    with pytest.raises(ts.TextsieveError, match="too high"):
        ts.NgramCounts(9, ts.Vocab(["<unk>"] + [chr(0x20000 + i) for i in range(70000)]))
    with pytest.raises(ts.TextsieveError, match="not fitted"):
        ts.AddKLM().perplexity(["a"])


def test_counts_in_every_storage_agree_with_the_reference():
    # key space: dense (small), 64-bit sparse, 128-bit sparse (a 70,001-token vocabulary)
    docs = ["abcabcab", "cab", "bca"]
    big = ts.Vocab(["<unk>", *"abc", *(chr(0x20000 + i) for i in range(69997))])
    small = ts.Vocab.from_texts(docs)
    toks = [ref.char_tokenize(d) for d in docs]
    for vocab, order in [(small, 2), (small, 8), (big, 3), (big, 5)]:
        counts = ts.NgramCounts(order, vocab).update(docs)
        grams, _ = ref.count_ngrams(toks, order)
        assert counts.to_dict() == dict(grams), (len(vocab), order)
        if vocab is small and order <= 5:  # (the reference builds its vocabulary from `docs`)
            lm = ts.AddKLM.from_counts(counts, 0.5)
            want = ref.perplexity(toks, [ref.char_tokenize("abcab")], order=order, k=0.5)
            assert math.isclose(lm.perplexity(["abcab"]), want, rel_tol=1e-12)


options = st.sampled_from(
    [
        {},
        {"normalize": False},
        {"lowercase": False, "punctuation": ts.JA_PUNCTUATION},
        {"keep_spaces": True},
        {"nfkc": True},
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    train=texts,
    order=st.integers(1, 4),
    pad=st.booleans(),
    unk=st.sampled_from(["<unk>", None, "a"]),
    opts=options,
    threads=st.sampled_from([1, 2]),
)
def test_fit_without_a_vocabulary_equals_vocabulary_then_counts(
    train, order, pad, unk, opts, threads
):
    # AddKLM.fit finds the vocabulary and counts in one pass; it must equal the two steps
    train = [t.replace("\ud800", "") + "ΑΣ x" * (i % 2) for i, t in enumerate(train)]
    vocab = ts.Vocab.from_texts(train, unk, **opts)
    if len(vocab) == 0:
        with pytest.raises(ValueError):
            ts.AddKLM(order, unk=unk, num_threads=threads, **opts).fit(train)
        return
    want = ts.NgramCounts(order, vocab, pad=pad).update(train)
    if want.total == 0:
        with pytest.raises(ValueError, match="no"):
            ts.AddKLM(order, unk=unk, pad=pad, num_threads=threads, **opts).fit(train)
        return
    lm = ts.AddKLM(order, unk=unk, pad=pad, num_threads=threads, **opts).fit(train)
    assert lm.vocab == vocab
    assert lm.counts.to_dict() == want.to_dict()
    assert lm.counts.total == want.total and len(lm.counts) == len(want)


def test_same_answers_from_many_python_threads_and_thread_counts():
    # num_threads=1 runs on the calling thread (a pool of its own per thread); Python threads
    # that call at once, and later calls for all cores from the same threads, agree
    from concurrent.futures import ThreadPoolExecutor

    docs = [f"文書{i}では perplexity を{i % 7}回 計算する。" * (1 + i % 5) for i in range(400)]
    train, evals = docs[:360], docs[360:]
    want = ts.AddKLM(order=2).fit(train).perplexity(evals)

    def run(threads):
        lm = ts.AddKLM(order=2, num_threads=threads).fit(train)
        return lm.perplexity(evals), lm.score(evals).tolist()

    ref_scores = ts.AddKLM(order=2).fit(train).score(evals).tolist()
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(run, [1, 1, None, 2, 1, None, 1, 2] * 3))
    for ppl, scores in got:
        assert ppl == pytest.approx(want, rel=1e-12)
        assert scores == pytest.approx(ref_scores, rel=1e-12)


def test_k_that_overflows_the_denominator_is_refused():
    """k * V = inf would make every probability 0 and the perplexity inf; the reference raises on
    the log of 0, so the model refuses such a k instead of answering wrongly."""
    with pytest.raises(ts.TextsieveError, match="k: k \\* V overflows"):
        ts.AddKLM(order=2, k=1e308).fit(["abab", "ba"])
    counts = ts.NgramCounts(2, ts.Vocab.from_texts(["abab"])).update(["abab"])
    with pytest.raises(ts.TextsieveError, match="k: "):
        ts.AddKLM.from_counts(counts, k=1e308)
    lm = ts.AddKLM(order=2, k=1e300).fit(["abab", "ba"])  # large but finite: a uniform model
    assert math.isclose(lm.perplexity(["abba"]), lm.V)


def test_prob_refuses_a_multi_character_token():
    lm = ts.AddKLM(order=2, k=0.1).fit(["abab", "ba"])
    with pytest.raises(ts.TextsieveError, match="token: 'bc' is not one token"):
        lm.prob("a", "bc")
    with pytest.raises(ts.TextsieveError, match="context: 'ab' is not one token"):
        lm.prob(["ab"], "a")
    # an unknown single character is <unk>, and the vocabulary's own tokens are fine
    assert lm.prob("a", "z") == lm.prob("a", "<unk>")
    assert lm.prob(["<unk>"], "a") > 0


def test_load_of_a_truncated_model_names_the_file(tmp_path):
    path = tmp_path / "model.npz"
    ts.AddKLM(order=2).fit(["abab", "ba"]).save(path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(ts.FileFormatError, match=f"cut{cut}.npz") as info:
            ts.AddKLM.load(bad)
        assert isinstance(info.value, ts.TextsieveError)
