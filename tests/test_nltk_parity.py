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
