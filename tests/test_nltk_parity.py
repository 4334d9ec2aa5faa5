"""The add-k model against NLTK's Lidstone on real text (NLTK is in the test extra)."""

import inspect
import json
import math
from itertools import chain

import pytest
import textsieve as ts

from .conftest import DATA_DIR

nltk_lm = pytest.importorskip(
    "nltk.lm", reason="NLTK is not installed (pip install textsieve[test])"
)
from nltk.lm.preprocessing import pad_both_ends, padded_everygram_pipeline  # noqa: E402
from nltk.util import everygrams, ngrams  # noqa: E402


def real_documents() -> list[str]:
    """Paragraphs of real prose: the Japanese manual pages when present, else the standard
    library's own docstrings (which every machine has)."""
    path = DATA_DIR / "manpages_ja.jsonl"
    if path.exists():
        with open(path, encoding="utf-8") as fh:
            docs = [json.loads(line)["text"][:600] for _, line in zip(range(60), fh)]
    else:
        import collections
        import json as json_mod
        import textwrap

        docs = [inspect.getdoc(m) or "" for m in (collections, json_mod, textwrap, inspect)]
        docs += [inspect.getdoc(f) or "" for f in vars(inspect).values() if callable(f)][:50]
    return [d for d in docs if len(d) > 20]


@pytest.mark.parametrize("order,k", [(2, 0.1), (3, 0.5), (1, 1.0)])
def test_lidstone_without_padding(order, k):
    docs = real_documents()
    train, test = docs[: len(docs) * 3 // 4], docs[len(docs) * 3 // 4 :]
    tr = [ts.char_tokenize(d) for d in train]
    te = [ts.char_tokenize(d) for d in test]
    vocab = nltk_lm.Vocabulary(chain.from_iterable(tr), unk_cutoff=1, unk_label="<unk>")
    lid = nltk_lm.Lidstone(k, order, vocabulary=vocab)
    lid.fit([list(everygrams(d, max_len=order)) for d in tr])
    want = lid.perplexity([g for d in te for g in ngrams(d, order)])
    ours = ts.AddKLM(order=order, k=k).fit(train)
    assert len(ours.vocab) == len(vocab)
    assert math.isclose(ours.perplexity(test), want, rel_tol=1e-9)


@pytest.mark.parametrize("order", [2, 3])
def test_lidstone_with_padding(order):
    docs = real_documents()
    train, test = docs[:40], docs[40:]
    tr = [ts.char_tokenize(d) for d in train]
    te = [ts.char_tokenize(d) for d in test]
    data, vocab_words = padded_everygram_pipeline(order, tr)
    lid = nltk_lm.Lidstone(0.1, order)
    lid.fit(data, vocab_words)
    want = lid.perplexity([g for d in te for g in ngrams(pad_both_ends(d, n=order), order)])
    ours = ts.AddKLM(order=order, k=0.1, pad=True).fit(train)
    assert ours.V == len(lid.vocab)
    assert math.isclose(ours.perplexity(test), want, rel_tol=1e-9)


# -- NgramLM: every NLTK model, on NLTK's own unit-test fixtures and on generated documents -------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from nltk.lm.preprocessing import padded_everygrams  # noqa: E402

# (textsieve smoothing and its parameters, the NLTK model of the same name)
FAMILY = {
    "mle": ({}, lambda order: nltk_lm.MLE(order)),
    "add-k": ({"k": 0.1}, lambda order: nltk_lm.Lidstone(0.1, order)),
    "laplace": ({"k": 1.0}, lambda order: nltk_lm.Laplace(order)),
    "witten-bell": ({}, lambda order: nltk_lm.WittenBellInterpolated(order)),
    "absolute-discount": ({}, lambda order: nltk_lm.AbsoluteDiscountingInterpolated(order)),
    "kneser-ney": ({"discount": 0.1}, lambda order: nltk_lm.KneserNeyInterpolated(order)),
    "stupid-backoff": ({}, lambda order: nltk_lm.StupidBackoff(order=order)),
}


def ours(name: str, order: int, **kw) -> ts.NgramLM:
    params, _ = FAMILY[name]
    return ts.NgramLM(order, "add-k" if name == "laplace" else name, **params, **kw)


def nltk_score(model, word, context):
    """NLTK's score, or None where NLTK divides by zero (Kneser-Ney after a context seen only at
    the start of documents, and Kneser-Ney of order 1)."""
    try:
        return model.score(word, context)
    except ZeroDivisionError:
        return None


# NLTK's tests/unit/lm/test_models.py: its vocabulary, its two training sentences (with tokens
# outside the vocabulary, which become <UNK>), and the contexts it scores after
NLTK_VOCAB = ["a", "b", "c", "d", "z"]
NLTK_TRAIN = [list("abcd"), list("egadbe")]
NLTK_CONTEXTS = [(), ("a",), ("c",), ("<s>",), ("b",), ("<UNK>",), ("d",), ("e",), ("r",), ("w",)]
NLTK_CONTEXTS += [("b", "c"), ("a", "b"), ("z", "b"), ("<s>", "<s>"), ("<s>", "a")]


@pytest.mark.parametrize("name", list(FAMILY))
@pytest.mark.parametrize("order", [2, 3])
def test_every_model_on_nltks_unit_test_fixtures(name, order):
    vocab = nltk_lm.Vocabulary(NLTK_VOCAB + ["<s>", "</s>"], unk_cutoff=1)
    model = FAMILY[name][1](order)
    model.vocab = vocab  # the fixtures' vocabulary, as NLTK's tests give it
    model.fit([padded_everygrams(order, s) for s in NLTK_TRAIN])
    lm = ours(name, order, pad=True, vocab=NLTK_VOCAB, unk="<UNK>").fit(NLTK_TRAIN)
    assert lm.vocab_size + 2 == len(vocab)  # with <s> and </s>
    compared = 0
    for context in NLTK_CONTEXTS:
        context = context[len(context) - min(len(context), order - 1) :]
        for word in [*NLTK_VOCAB, "<UNK>", "y", "</s>"]:
            want = nltk_score(model, word, context)
            if want is None:
                continue
            got = lm.prob(list(context), word)
            assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-300), (context, word)
            compared += 1
    assert compared > 50


def nltk_perplexity(name, order, pad, train, test):
    """NLTK's perplexity of ``test`` as its documentation sets a model up (padded with
    ``padded_everygram_pipeline``, or unpadded everygrams over the training vocabulary), or None
    where NLTK raises."""
    model = FAMILY[name][1](order)
    if pad:
        data, words = padded_everygram_pipeline(order, train)
        model.fit(data, words)
        grams = [g for d in test for g in ngrams(pad_both_ends(d, n=order), order)]
    else:
        model.fit([list(everygrams(d, max_len=order)) for d in train], chain.from_iterable(train))
        grams = [g for d in test for g in ngrams(d, order)]
    if not grams:
        return None
    try:
        return model.perplexity(grams)
    except ZeroDivisionError:
        return None


docs = st.lists(st.lists(st.sampled_from("abcde"), max_size=9), min_size=1, max_size=5)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(
    train=docs,
    test=docs,
    order=st.integers(1, 5),
    pad=st.booleans(),
    name=st.sampled_from(list(FAMILY)),
)
def test_every_model_matches_nltk_on_generated_documents(train, test, order, pad, name):
    if not any(train):
        return
    test = [[t if t in {x for d in train for x in d} else "<UNK>" for t in d] for d in test]
    want = nltk_perplexity(name, order, pad, train, test)
    lm = ours(name, order, pad=pad, unk="<UNK>").fit(train)
    if want is None:
        return
    got = lm.perplexity(test)
    if math.isinf(want):
        # a token with probability 0 (unseen under MLE, or unknown to a model without add-k):
        # textsieve gives the same 0, so the same infinite perplexity
        assert math.isinf(got)
    else:
        assert math.isclose(got, want, rel_tol=1e-9)


def test_where_nltk_divides_by_zero_textsieve_backs_off():
    # "b a" only ever starts a document: as a Kneser-Ney context its continuation count is 0,
    # and NLTK raises ZeroDivisionError; textsieve treats it as an unseen context (all weight on
    # the lower order, as NLTK does for contexts without counts)
    train = [list("bab"), list("aab")]
    model = nltk_lm.KneserNeyInterpolated(3, discount=0.1)
    model.fit([list(everygrams(d, max_len=3)) for d in train], chain.from_iterable(train))
    with pytest.raises(ZeroDivisionError):
        model.score("b", ("b",))
    lm = ts.NgramLM(3, "kneser-ney", discount=0.1, pad=False).fit(train)
    assert math.isclose(lm.prob(["b"], "b"), lm.prob([], "b"), rel_tol=1e-12)
    assert math.isclose(lm.prob(["a"], "b"), model.score("b", ("a",)), rel_tol=1e-9)


def test_order_one_padding_matches_nltk():
    # NLTK pads nothing for order 1: fit(["a"]) then perplexity(["a"]) with k=1 is 1.5
    data, words = padded_everygram_pipeline(1, [["a"]])
    lid = nltk_lm.Laplace(1)
    lid.fit(data, words)
    want = lid.perplexity([("a",)])
    assert math.isclose(want, 1.5)
    assert math.isclose(ts.AddKLM(1, 1.0, pad=True).fit(["a"]).perplexity(["a"]), want)
    assert math.isclose(ts.NgramLM(1, "add-k", k=1.0, pad=True).fit(["a"]).perplexity(["a"]), want)
