"""The suffix index's answers by brute force: the specification of :mod:`textsieve.suffix`.

Every function takes the corpus as a list of documents (``str``) and scans it; the Rust core
answers the same from a suffix array. Offsets are in bytes of a document's UTF-8 text.

>>> docs = ["abcabc", "xbcx"]
>>> count(docs, "bc")
3
>>> next_counts(docs, "zab")
(2, 2, {'c': 2})
>>> repeated_spans(["hello world", "say hello world"], 5)
[(1, 4, 15)]
"""

from __future__ import annotations

import math


def _encoded(docs: list[str]) -> list[bytes]:
    return [d.encode("utf-8") for d in docs]


def count(docs: list[str], s: str) -> int:
    """Occurrences of ``s`` (overlapping ones too); ``count(docs, "")`` is the number of
    characters."""
    if not s:
        return sum(len(d) for d in docs)
    pat = s.encode("utf-8")
    n = 0
    for b in _encoded(docs):
        at = b.find(pat)
        while at >= 0:
            n += 1
            at = b.find(pat, at + 1)
    return n


def locate(docs: list[str], s: str, limit: int | None = None) -> list[tuple[int, int]]:
    """``(document, byte offset)`` of the first ``limit`` occurrences of a non-empty ``s``."""
    pat = s.encode("utf-8")
    out = []
    for d, b in enumerate(_encoded(docs)):
        at = b.find(pat)
        while at >= 0:
            out.append((d, at))
            at = b.find(pat, at + 1)
    return out if limit is None else out[:limit]


def longest_suffix(docs: list[str], context: str) -> int:
    """Characters of the longest suffix of ``context`` that occurs in the corpus."""
    k = 0
    while k < len(context) and count(docs, context[len(context) - k - 1 :]) > 0:
        k += 1
    return k


def next_counts(docs: list[str], context: str) -> tuple[int, int, dict[str, int]]:
    """``(length, total, counts)``: the longest occurring suffix of ``context`` (``length``
    characters), its occurrences, and how often each character follows it (an occurrence that
    ends a document counts in ``total`` only)."""
    k = longest_suffix(docs, context)
    suffix = context[len(context) - k :]
    counts: dict[str, int] = {}
    for d in docs:
        for at in _starts(d, suffix) if suffix else range(len(d)):
            nxt = at + len(suffix)
            if nxt < len(d):
                counts[d[nxt]] = counts.get(d[nxt], 0) + 1
    return k, count(docs, suffix), dict(sorted(counts.items()))


def _starts(d: str, s: str) -> list[int]:
    out = []
    at = d.find(s)
    while at >= 0:
        out.append(at)
        at = d.find(s, at + 1)
    return out


def prob(docs: list[str], context: str, token: str, n: int | None = None) -> float:
    """``count(suffix + token) / count(suffix)``: the longest occurring suffix (``n=None``) or the
    last ``n - 1`` characters of ``context``; NaN when the suffix never occurs."""
    if n is None:
        k = longest_suffix(docs, context)
    else:
        k = min(n - 1, len(context))
    suffix = context[len(context) - k :]
    denom = count(docs, suffix)
    return count(docs, suffix + token) / denom if denom else math.nan


def repeated_spans(
    docs: list[str], min_length: int, policy: str = "later"
) -> list[tuple[int, int, int]]:
    """``(document, start, end)`` of each maximal run of removed bytes.

    A window is ``min_length`` consecutive bytes of one document. With ``policy="later"`` a window
    is repeated when the same bytes occurred at an earlier position of the corpus (documents in
    order); with ``"all"``, when they occur at any other position. Every byte of a repeated window
    is removed, and so is every character one of whose bytes is.
    """
    if policy not in ("later", "all"):
        raise ValueError(f"policy: expected 'later' or 'all', got {policy!r}")
    encoded = _encoded(docs)
    seen: dict[bytes, int] = {}
    for b in encoded:
        for q in range(len(b) - min_length + 1):
            w = b[q : q + min_length]
            seen[w] = seen.get(w, 0) + 1
    first: set[bytes] = set()
    out = []
    for d, b in enumerate(encoded):
        removed = [False] * len(b)
        for q in range(len(b) - min_length + 1):
            w = b[q : q + min_length]
            if policy == "all":
                repeated = seen[w] > 1
            else:
                repeated = w in first
                first.add(w)
            if repeated:
                for i in range(q, q + min_length):
                    removed[i] = True
        # whole characters: a character goes when any of its bytes does
        at = 0
        for ch in docs[d]:
            width = len(ch.encode("utf-8"))
            if any(removed[at : at + width]):
                for i in range(at, at + width):
                    removed[i] = True
            at += width
        i = 0
        while i < len(b):
            if removed[i]:
                start = i
                while i < len(b) and removed[i]:
                    i += 1
                out.append((d, start, i))
            else:
                i += 1
    return out
