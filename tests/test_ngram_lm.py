import math
import pickle

import numpy as np
import pytest
import textsieve as ts

SMOOTHINGS = [
    ("kneser-ney", {}),
    ("kneser-ney", {"discount": 0.1}),
    ("add-k", {"k": 0.5}),
    ("mle", {}),
    ("witten-bell", {}),
    ("absolute-discount", {"discount": 0.75}),
    ("stupid-backoff", {}),
]


def close(a: float, b: float) -> bool:
    return (math.isinf(a) and a == b) or math.isclose(a, b, rel_tol=1e-12)


@pytest.mark.parametrize("smoothing,kw", SMOOTHINGS)
@pytest.mark.parametrize("pad", ["sentence", True, False])
def test_strings_tokens_and_ids_give_the_same_model(seed_split, smoothing, kw, pad):
    train, val = seed_split
    by_chars = ts.NgramLM(3, smoothing, pad=pad, **kw).fit(train)
    tokens = [ts.char_tokenize(d) for d in train]
    by_tokens = ts.NgramLM(3, smoothing, pad=pad, **kw).fit(tokens)
    names = by_tokens.vocab
    index = {t: i for i, t in enumerate(names)}
    ids = [np.array([index[t] for t in d], dtype=np.int64) for d in tokens]
    by_ids = ts.NgramLM(3, smoothing, pad=pad, vocab_size=len(names), **kw).fit(ids)
    seen = [[t for t in ts.char_tokenize(d) if t in index] for d in val]
    val_ids = [np.array([index[t] for t in d], dtype=np.int32) for d in seen]
    want = by_chars.perplexity(["".join(d) for d in seen])
    assert close(by_tokens.perplexity(seen), want)
    assert close(by_ids.perplexity(val_ids), want)
    assert close(by_chars.prob("日本", "語"), by_tokens.prob(["日", "本"], "語"))
    per_doc = by_chars.score(val)
    assert per_doc.shape == (len(val),)


@pytest.mark.parametrize("order,pad", [(1, False), (2, False), (2, True), (3, True), (5, True)])
def test_add_k_is_addklm(seed_split, order, pad):
    train, val = seed_split
    want = ts.AddKLM(order, 0.3, pad=pad).fit(train)
    got = ts.NgramLM(order, "add-k", k=0.3, pad=pad).fit(train)
    assert math.isclose(got.perplexity(val), want.perplexity(val), rel_tol=1e-12)
    assert np.allclose(got.score(val), want.score(val), rtol=1e-12, equal_nan=True)


def test_shards_merge_to_the_whole_and_fits_add_up(seed_split):
    train, val = seed_split
    whole = ts.NgramLM(4).fit(train)
    a = ts.NgramLM(4, vocab=whole.vocab).fit(train[:3])
    b = ts.NgramLM(4, vocab=whole.vocab).fit(train[3:])
    merged = a.merge(b)
    # (a generator: with the vocabulary known, documents stream in)
    twice = ts.NgramLM(4, vocab=whole.vocab).fit(train[:3]).fit(d for d in train[3:])
    again = whole.with_smoothing("witten-bell").with_smoothing("kneser-ney")
    for lm in (merged, twice, again):
        assert lm.count("学") == whole.count("学") > 0
        assert math.isclose(lm.perplexity(val), whole.perplexity(val), rel_tol=1e-12)
        assert lm.discounts == whole.discounts


def test_token_log_probs_and_shorter_contexts():
    docs = [["a", "b", "a"], ["b", "a", "b", "b"], ["c"]] * 3
    lm = ts.NgramLM(3).fit(docs)
    lp = lm.token_log_probs(["a", "b", "c"])
    assert lp.shape == (4,)  # a, b, c, </s>
    assert math.isclose(lp[0], lm.log_prob(["<s>"], "a"))
    assert math.isclose(lp[1], lm.log_prob(["<s>", "a"], "b"))
    assert math.isclose(lp[3], lm.log_prob(["b", "c"], "</s>"))
    assert math.isclose(-lp.sum() / 4, lm.nll([["a", "b", "c"]]))
    # interpolated down to the uniform distribution: every context sums to one
    for context in [[], ["a"], ["<s>"], ["b", "b"], ["zzz", "a"]]:
        total = sum(lm.prob(context, t) for t in [*lm.vocab, "</s>"])
        assert math.isclose(total, 1.0, rel_tol=1e-9), context
    # stupid backoff is a score: after a context, more than one in all
    sb = ts.NgramLM(3, "stupid-backoff").fit(docs)
    assert sum(sb.prob(["a"], t) for t in [*sb.vocab, "</s>"]) > 1.0


def test_unseen_tokens_under_each_smoothing():
    lm = ts.NgramLM(2, "kneser-ney").fit([["a", "b"]] * 5)
    # <unk> takes the uniform share of the discounted mass, as in lmplz
    assert 0 < lm.prob(["a"], "never") == lm.prob(["a"], "<unk>") < 0.5
    assert math.isinf(ts.NgramLM(2, "mle").fit([["a", "b"]]).perplexity([["b", "a"]]))
    assert math.isinf(ts.NgramLM(2, "witten-bell").fit([["a", "b"]]).perplexity([["zz"]]))


def test_a_token_vocabulary_given():
    # the vocabulary is indexed once, in the core: lookups, <unk>, sampling and errors through it
    vocab = [f"w{i}" for i in range(5000)]
    lm = ts.NgramLM(2, "kneser-ney", vocab=vocab).fit([vocab[:50], vocab[10:60]])
    assert lm.vocab_size == 5001 and lm.vocab[0] == "<unk>" and lm.vocab[1:] == vocab
    assert lm.prob(["w10"], "w11") > lm.prob(["w10"], "w4999") > 0
    assert lm.prob(["w10"], "not-in-it") == lm.prob(["w10"], "<unk>")
    assert "<unk>" not in lm.sample(["w10"], 200, seed=1)
    strict = ts.NgramLM(2, "mle", vocab=vocab, unk=None).fit([vocab[:50]])
    with pytest.raises(ts.UnknownTokenError):
        strict.prob(["w1"], "not-in-it")
    with pytest.raises(ValueError, match="vocab: a token appears twice"):
        ts.NgramLM(2, vocab=["a", "b", "a"])
    # the token list is made from the core's index when asked (no Python list is kept)
    index = lm._words
    assert index.words() == lm.vocab and index.words([3, 0, 3]) == ["w2", "<unk>", "w2"]
    with pytest.raises(ValueError, match="ids: 5001 is not an id"):
        index.words([5001])
    assert not hasattr(lm, "_tokens")


def test_a_vocabulary_gathered_in_the_core():
    # `ngram train --words` gathers its words chunk by chunk in a WordSet: the same words as
    # `distinct`, numbered in code point order after <unk>, and a model over them is the model
    # over the same token list
    chunks = [["b a  <s> c", "é z"], [["a", "q", "</s>"]], ["c\u3000b x"]]
    gathered = ts._core.WordSet()
    for c in chunks:
        gathered.update(c)
    every = [d for c in chunks for d in c]
    assert len(gathered) == len(ts._core.WordIndex.distinct(every)) == 7
    assert gathered.index().words() == ts._core.WordIndex.distinct(every)
    index = gathered.index("<unk>")
    assert index.words() == ["<unk>", *ts._core.WordIndex.distinct(every)]
    assert gathered.index("b").words()[:2] == ["b", "a"]
    docs = ["a b c", "z q é a"]
    built = ts.NgramLM(3, vocab=index).fit(docs)
    listed = ts.NgramLM(3, vocab=ts._core.WordIndex.distinct(every)).fit(docs)
    assert built.vocab == listed.vocab and close(built.perplexity(docs), listed.perplexity(docs))
    for bad in (gathered.index(), ts._core.WordIndex(["<unk>", "a"])):
        with pytest.raises(ValueError, match="unknown-word id"):
            ts.NgramLM(3, vocab=bad)
    with pytest.raises(ValueError, match="unknown-word id"):
        ts.NgramLM(3, vocab=index, unk=None)
    with pytest.raises(ValueError, match="sentence marks"):
        ts.NgramLM(3, vocab=ts._core.WordIndex(["<unk>", "<s>"], 0))
    with pytest.raises(TypeError, match=r"documents\[0\]"):
        gathered.update([3])


@pytest.mark.parametrize("smoothing,kw", SMOOTHINGS)
def test_save_load_and_pickle(tmp_path, seed_split, smoothing, kw):
    train, val = seed_split
    lm = ts.NgramLM(3, smoothing, **kw).fit(train)
    lm.save(tmp_path / "m.npz")
    for back in (ts.NgramLM.load(tmp_path / "m.npz"), pickle.loads(pickle.dumps(lm))):
        assert back.smoothing == smoothing
        assert close(back.perplexity(val), lm.perplexity(val))
        assert back.sample("日", 10, seed=3) == lm.sample("日", 10, seed=3)
    unfitted = pickle.loads(pickle.dumps(ts.NgramLM(2, "add-k", k=0.2)))
    assert unfitted.param == 0.2 and "unfitted" in repr(unfitted)


def test_arpa_round_trip_and_models_read_from_arpa(tmp_path, seed_split):
    train, val = seed_split
    words = [d.split() for d in ["the cat sat", "the dog sat", "a cat ran", "the cat ran"]]
    lm = ts.NgramLM(3).fit(words)
    # words=True: str documents are word sequences from the first fit on
    as_text = ts.NgramLM(3, words=True).fit([" ".join(w) for w in words])
    assert as_text.vocab == lm.vocab
    assert as_text.perplexity(["the cat ran"]) == lm.perplexity([["the", "cat", "ran"]])
    lm.to_arpa(tmp_path / "m.arpa")
    back = ts.NgramLM.from_arpa(tmp_path / "m.arpa")
    for s in [["the", "cat", "sat"], ["a", "dog"], ["unseen"], []]:
        assert np.allclose(back.token_log_probs(s), lm.token_log_probs(s), rtol=1e-12)
    assert math.isclose(back.perplexity(["the dog ran"]), lm.perplexity([["the", "dog", "ran"]]))
    # pickles and saves carry the ARPA text
    back.save(tmp_path / "a.npz")
    for again in (pickle.loads(pickle.dumps(back)), ts.NgramLM.load(tmp_path / "a.npz")):
        assert math.isclose(again.perplexity(["a cat sat"]), back.perplexity(["a cat sat"]))
    with pytest.raises(ts.TextsieveError, match="ARPA file has no counts"):
        back.fit(["the cat"])


def test_bad_arguments_and_files(tmp_path):
    with pytest.raises(ValueError, match="smoothing"):
        ts.NgramLM(2, "good-turing")
    with pytest.raises(ValueError, match="k: not a parameter"):
        ts.NgramLM(2, "witten-bell", k=0.1)
    with pytest.raises(ValueError, match="discount: must be"):
        ts.NgramLM(2, "kneser-ney", discount=-1)
    with pytest.raises(ValueError, match="pad"):
        ts.NgramLM(2, pad="left")
    with pytest.raises(ValueError, match="vocab_size"):
        ts.NgramLM(2).fit([np.array([1, 2])])
    with pytest.raises(ValueError, match="out of range"):
        ts.NgramLM(2, vocab_size=3).fit([np.array([1, 3])])
    with pytest.raises(TypeError, match="single str"):
        ts.NgramLM(2).fit("abc")
    with pytest.raises(ts.TextsieveError, match="not fitted"):
        ts.NgramLM(2).perplexity(["a"])
    lm = ts.NgramLM(2, "add-k").fit(["ab"])
    with pytest.raises(ts.InvalidArgumentError, match="add-k"):
        lm.to_arpa(tmp_path / "x.arpa")
    assert not (tmp_path / "x.arpa").exists()
    spaced = ts.NgramLM(2, keep_spaces=True, normalize=False).fit(["a b"])
    with pytest.raises(ts.InvalidArgumentError, match="cannot be an ARPA word"):
        spaced.to_arpa(tmp_path / "x.arpa")
    (tmp_path / "bad.arpa").write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1\ta\tb\tc\n\\end\\\n")
    with pytest.raises(ts.CorruptDataError, match=r"bad.arpa:5"):
        ts.NgramLM.from_arpa(tmp_path / "bad.arpa")
    with pytest.raises(FileNotFoundError):
        ts.NgramLM.from_arpa(tmp_path / "missing.arpa")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ts.FileFormatError):
        ts.NgramLM.load(tmp_path / "junk.npz")


def test_sampling_is_seeded_and_stops_at_the_end():
    lm = ts.NgramLM(2).fit([["a", "b", "c"]] * 4)
    a = lm.sample(["a"], 20, seed=1)
    assert a == lm.sample(["a"], 20, seed=1)
    assert all(t in {"a", "b", "c"} for t in a) and len(a) <= 20
    assert isinstance(ts.NgramLM(2, vocab_size=4).fit([np.array([0, 1, 2])]).sample(), np.ndarray)


def test_padded_addk_bigram_exports_to_kenlm(tmp_path, seed_split):
    # bench.write_arpa raised IndexError on a padded model (its <s> and </s> had no names)
    from textsieve.bench import write_arpa

    train, val = seed_split
    lm = ts.AddKLM(2, 0.1, pad=True).fit(train)
    write_arpa(lm, tmp_path / "m.arpa")
    kenlm = pytest.importorskip("kenlm", reason="the kenlm module is not installed")
    model = kenlm.Model(str(tmp_path / "m.arpa"))
    for doc, ppl in zip(val, lm.score(val)):
        chars = lm.vocab.tokenize(doc)
        sent = " ".join(f"u{ord(c):x}" if c in lm.vocab else "<unk>" for c in chars)
        log10 = model.score(sent, bos=True, eos=True)
        assert math.isclose(10 ** (-log10 / (len(chars) + 1)), ppl, rel_tol=1e-6)


def test_a_document_that_is_not_tokens_is_named():
    """Both the vocabulary pass (fit) and encoding (score) name the bad document or token."""
    lm = ts.NgramLM(2).fit([["a", "b"]])
    for call in (ts.NgramLM(2).fit, lm.score):
        with pytest.raises(TypeError, match=r"documents\[0\]\[1\]: expected a str token"):
            call([["a", 1]])
        with pytest.raises(TypeError, match=r"documents\[0\]: expected a str or a sequence"):
            call([5])


@pytest.mark.parametrize("pad", ["sentence", True, False])
@pytest.mark.parametrize("order", [1, 3, 5])
def test_arpa_written_before_the_model_is_estimated_is_the_same_file(
    tmp_path, seed_split, pad, order
):
    # to_arpa straight after fit writes each order as it is estimated (the model is never held);
    # after a lookup it writes the estimated model: the two files are the same, byte for byte
    train, _ = seed_split
    docs = [d.split() for d in train]
    streamed = ts.NgramLM(order, pad=pad).fit(docs)
    streamed.to_arpa(tmp_path / "streamed.arpa")
    held = ts.NgramLM(order, pad=pad).fit(docs)
    held.prob(["the"], "cat")
    held.to_arpa(tmp_path / "held.arpa")
    assert (tmp_path / "streamed.arpa").read_bytes() == (tmp_path / "held.arpa").read_bytes()
    # the model is estimated when it is used after all
    everything = [t for d in docs for t in d]
    got, want = streamed.token_log_probs(everything), held.token_log_probs(everything)
    assert len(want) and np.array_equal(got, want)
    assert streamed.discounts == held.discounts


def test_arpa_written_as_estimated_reports_a_failing_file():
    class Full:
        def write(self, data: bytes) -> int:
            raise OSError("no space left")

    lm = ts.NgramLM(3).fit([["a", "b", "c"], ["b", "c", "a"]])
    words, unk = lm._arpa_words()
    with pytest.raises(OSError, match="no space left"):
        ts._core.SmoothedModel.write_kneser_ney_arpa(lm._counts, Full(), words, unk)
