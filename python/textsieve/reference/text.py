"""Reference: normalization, char tokenization, vocabulary, n-gram counts, add-k perplexity."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter

SEED_PUNCTUATION = "。､，,.!?！？"
BOS, EOS = "<s>", "</s>"


def normalize(text, lowercase=True, punctuation=SEED_PUNCTUATION, nfkc=False):
    if nfkc:
        text = unicodedata.normalize("NFKC", text)
    if lowercase:
        text = text.lower()
    text = text.strip()
    for p in punctuation:
        text = text.replace(p, " ")
    return re.sub(r"\s+", " ", text)


def char_tokenize(text, keep_spaces=False, normalize_text=True, **options):
    if not normalize_text:
        return list(text)
    text = normalize(text, **options)
    return [c for c in text if keep_spaces or c != " "]


def build_vocab(docs_tokens, unk="<unk>"):
    chars = sorted({t for doc in docs_tokens for t in doc if t != unk})
    return ([unk] if unk is not None else []) + chars


def encode(tokens, vocab, unk="<unk>"):
    index = {t: i for i, t in enumerate(vocab)}
    return [index[t] if t in index else index[unk] for t in tokens]


def _sequence(tokens, order, pad):
    if pad:
        return [BOS] * (order - 1) + list(tokens) + [EOS] * (order - 1)
    return list(tokens)


def count_ngrams(docs_tokens, order, pad=False):
    """(n-gram counts, context counts); no n-gram crosses a document."""
    grams, contexts = Counter(), Counter()
    for doc in docs_tokens:
        seq = _sequence(doc, order, pad)
        for i in range(len(seq) - order + 1):
            gram = tuple(seq[i : i + order])
            grams[gram] += 1
            contexts[gram[:-1]] += 1
    return grams, contexts


def addk_prob(grams, contexts, gram, k, V):
    return (grams[tuple(gram)] + k) / (contexts[tuple(gram[:-1])] + k * V)


def _map_unknown(doc, vocab, unk):
    known = set(vocab)
    return [t if t in known else unk for t in doc]


def train_addk(train_tokens, order=2, unk="<unk>", pad=False):
    """(vocab, n-gram counts, context counts) of the training documents."""
    vocab = build_vocab(train_tokens, unk)
    grams, contexts = count_ngrams([_map_unknown(d, vocab, unk) for d in train_tokens], order, pad)
    return vocab, grams, contexts


def score_documents(model, eval_tokens, order=2, k=0.1, unk="<unk>", pad=False):
    """[(nll sum, number of predicted tokens)] per evaluation document under a trained model."""
    vocab, grams, contexts = model
    # an order-1 model pads nothing (no context), as NLTK's pad_both_ends(n=1)
    V = len(vocab) + (2 if pad and order > 1 else 0)
    out = []
    for doc in eval_tokens:
        seq = _sequence(_map_unknown(doc, vocab, unk), order, pad)
        nll, n = 0.0, 0
        for i in range(len(seq) - order + 1):
            nll -= math.log(addk_prob(grams, contexts, seq[i : i + order], k, V))
            n += 1
        out.append((nll, n))
    return out


def document_perplexities(train_tokens, eval_tokens, order=2, k=0.1, unk="<unk>", pad=False):
    """[(nll sum, number of predicted tokens)] per evaluation document."""
    model = train_addk(train_tokens, order, unk, pad)
    return score_documents(model, eval_tokens, order, k, unk, pad)


def perplexity(train_tokens, eval_tokens, order=2, k=0.1, unk="<unk>", pad=False):
    scores = document_perplexities(train_tokens, eval_tokens, order, k, unk, pad)
    nll = sum(s for s, _ in scores)
    n = sum(c for _, c in scores)
    return math.exp(nll / n)
