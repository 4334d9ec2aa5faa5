"""Exact counts, positions and next-character distributions of any string, and exact substring
dedup, from one suffix array over a corpus (Lee et al. 2022; infini-gram, Liu et al. 2024).

The corpus is its documents' UTF-8 bytes, each followed by the byte 0xFF, which UTF-8 never uses,
so no match crosses two documents. The suffix array (every suffix's start, in sorted order) is
built in the Rust core by libsais (SA-IS), with 32-bit positions below 4 GiB and 64-bit above;
:meth:`SuffixIndex.save` writes it to a directory that :meth:`SuffixIndex.open` maps into memory.

Definitions (strings are Python ``str``; "characters" are code points):

- ``count(s)``: how many times the bytes of ``s`` occur; ``count("")`` is the number of
  characters in the corpus.
- ``next_counts(context)``: the longest suffix of ``context`` that occurs (``length``
  characters, possibly 0), how often it occurs (``total``), and how often each character follows
  it (``counts``). An occurrence at the end of a document has no next character: it is counted in
  ``total`` only, so ``counts`` may sum to less than ``total`` (as infini-gram counts the
  document separator).
- ``prob(context, token)``: ``count(suffix + token) / count(suffix)`` for that longest occurring
  suffix (the unbounded or "infinity" n-gram); ``prob(context, token, n)``: the same with the
  last ``n - 1`` characters of ``context`` (all of it when shorter), NaN when they never occur.
- :func:`repeated_spans`: the byte at position ``p`` of a document is removed when it lies in a
  window of ``min_length`` bytes of that document that also occurs at an earlier position of the
  corpus (``policy="later"``: the first occurrence survives) or anywhere else (``"all"``); a
  character is removed when any of its bytes is. A span is a maximal run of removed bytes:
  ``(document, start, end)`` in bytes of the document's UTF-8 text.

>>> index = SuffixIndex.build(["to be or not to be", "to be is to do"])
>>> index.count("to be")
3
>>> index.locate("to be")
[(0, 0), (0, 13), (1, 0)]
>>> nc = index.next_counts("what is to b")  # " to b" is the longest suffix found
>>> (nc.length, nc.total, nc.counts)
(5, 1, {'e': 1})
>>> index.prob("not to b", "e")
1.0
>>> repeated_spans(["one shared sentence here.", "and one shared sentence here."], 10)
[Span(document=1, start=4, end=29)]
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from textsieve import _core
from textsieve._checks import check_choice, check_int
from textsieve._progress import Progress
from textsieve.io import CorpusReader

__all__ = ["POLICIES", "NextCounts", "Span", "SuffixIndex", "repeated_spans"]

POLICIES = ("later", "all")
CHUNK_DOCS = 8192
CHUNK_BYTES = 8 << 20


class NextCounts(NamedTuple):
    """What follows the longest suffix of a context that occurs (see the module docstring)."""

    length: int
    total: int
    counts: dict[str, int]


class Span(NamedTuple):
    """Removed bytes ``start:end`` of document ``document``'s UTF-8 text."""

    document: int
    start: int
    end: int


def _is_path(x: Any) -> bool:
    return isinstance(x, os.PathLike)


def _texts_or_inputs(texts_or_inputs: Any) -> tuple[str, Any]:
    """``("reader", CorpusReader)`` or ``("texts", list of str)``.

    Inputs are a :class:`~textsieve.io.CorpusReader`, a path given as ``str`` or
    ``os.PathLike``, or an iterable of ``os.PathLike``; an iterable of ``str`` is documents."""
    if isinstance(texts_or_inputs, CorpusReader):
        return "reader", texts_or_inputs
    if isinstance(texts_or_inputs, (str, os.PathLike)):
        return "reader", CorpusReader([texts_or_inputs])
    if isinstance(texts_or_inputs, (bytes, bytearray)):
        raise TypeError("texts_or_inputs: expected documents (str) or paths, got bytes")
    items = list(texts_or_inputs)
    if items and all(_is_path(x) for x in items):
        return "reader", CorpusReader(items)
    if any(_is_path(x) for x in items):
        raise TypeError("texts_or_inputs: a mix of paths and documents")
    return "texts", items


def _gather(
    builder: Any,
    texts_or_inputs: Any,
    show_progress: bool | None,
    ids: Any = None,
) -> CorpusReader | None:
    """Feeds the documents to ``builder`` (and their ids to ``ids``), with progress."""
    kind, source = _texts_or_inputs(texts_or_inputs)
    with Progress(desc="reading", unit="docs", enabled=show_progress) as bar:
        if kind == "texts":
            for i in range(0, len(source), CHUNK_DOCS):
                batch = source[i : i + CHUNK_DOCS]
                builder.add_texts(batch)
                if ids is not None:
                    ids.extend([str(i + j).encode() for j in range(len(batch))])
                bar.update(len(batch))
            return None
        last = 0
        for chunk in source.chunks(CHUNK_DOCS, CHUNK_BYTES):
            builder.add_chunk(chunk)
            if ids is not None:
                ids.push_chunk(chunk)
            bar.update(len(chunk), nbytes=source.n_bytes - last)
            last = source.n_bytes
        return source


def _finish(builder: Any, show_progress: bool | None, width: int | None = None) -> Any:
    with Progress(desc="sorting suffixes", unit="bytes", enabled=show_progress) as bar:
        core = builder.finish(width)
        bar.update(core.n_bytes)
    return core


class SuffixIndex:
    """A suffix array over a corpus, for exact counts, positions and the unbounded n-gram.

    Build with :meth:`build` (from documents or input files), or open a saved one with
    :meth:`open`. Queries are ``str``; offsets are in bytes of a document's UTF-8 text. The batch
    forms release the GIL and run on ``num_threads`` threads (default: all cores).
    """

    def __init__(self, core: Any, path: str | None = None) -> None:
        self._core = core
        self.path = path

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        texts_or_inputs: Any,
        path: str | os.PathLike[str] | None = None,
        *,
        show_progress: bool | None = None,
        position_bytes: int | None = None,
    ) -> SuffixIndex:
        """The index of ``texts_or_inputs``: an iterable of documents (``str``), or input files
        read as ``textsieve dedup`` reads them (a path as ``str``/``os.PathLike``, a list of
        ``os.PathLike``, or a :class:`~textsieve.io.CorpusReader` for the reading options). With
        ``path``, the index is also written there (a new directory) and opened from it.
        ``position_bytes`` (4 or 8) forces the width of the stored positions (default: 4 below
        4 GiB)."""
        if position_bytes is not None:
            check_choice("position_bytes", position_bytes, (4, 8))  # type: ignore[arg-type]
        builder = _core.SuffixBuilderCore()
        _gather(builder, texts_or_inputs, show_progress)
        core = _finish(builder, show_progress, position_bytes)
        if path is None:
            return cls(core)
        core.save(os.fspath(path))
        return cls.open(path)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> SuffixIndex:
        """A saved index, its files mapped into memory (a damaged one raises
        :class:`~textsieve.CorruptDataError`)."""
        return cls(_core.SuffixIndexCore.open(os.fspath(path)), os.fspath(path))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the index to ``path``, a directory that must not exist yet (atomically)."""
        self._core.save(os.fspath(path))

    # -- sizes -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._core.n_docs)

    @property
    def n_docs(self) -> int:
        return int(self._core.n_docs)

    @property
    def n_bytes(self) -> int:
        """Bytes of the corpus, separators included."""
        return int(self._core.n_bytes)

    @property
    def n_chars(self) -> int:
        return int(self._core.n_chars)

    @property
    def position_bytes(self) -> int:
        return int(self._core.position_bytes)

    def document(self, d: int) -> str:
        return str(self._core.document(d))

    def __repr__(self) -> str:
        where = f", path={self.path!r}" if self.path else ""
        return (
            f"SuffixIndex(n_docs={self.n_docs}, n_bytes={self.n_bytes}, "
            f"position_bytes={self.position_bytes}{where})"
        )

    # -- queries -----------------------------------------------------------------------------

    def count(self, s: str) -> int:
        return int(self._core.count(s))

    def count_batch(self, queries: Sequence[str], num_threads: int | None = None) -> np.ndarray:
        """``count`` of each query, as a uint64 array."""
        return self._core.count_batch(queries, num_threads)

    def locate(self, s: str, limit: int | None = None) -> list[tuple[int, int]]:
        """``(document, byte offset)`` of the first ``limit`` occurrences in corpus order."""
        if limit is not None:
            check_int("limit", limit, 0)
        places, _ = self._core.locate(s, limit)
        return places

    def next_counts(self, context: str) -> NextCounts:
        return NextCounts(*self._core.next_counts(context))

    def next_counts_batch(
        self, contexts: Sequence[str], num_threads: int | None = None
    ) -> list[NextCounts]:
        return [NextCounts(*row) for row in self._core.next_counts_batch(contexts, num_threads)]

    def prob(self, context: str, token: str, n: int | None = None) -> float:
        """P(token | context): unbounded (``n=None``) or from the last ``n - 1`` characters."""
        if n is not None:
            check_int("n", n, 1)
        p, _ = self._core.prob(context, token, n)
        return float(p)

    def prob_batch(
        self,
        contexts: Sequence[str],
        tokens: Sequence[str],
        n: int | None = None,
        num_threads: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities, characters of context used)`` for each pair, as arrays."""
        if n is not None:
            check_int("n", n, 1)
        return self._core.prob_batch(contexts, tokens, n, num_threads)

    def repeated_spans(
        self, min_length: int = 100, policy: str = "later", num_threads: int | None = None
    ) -> list[Span]:
        """The repeated spans of every document (see the module docstring), in corpus order."""
        doc, start, end = self.repeated_span_arrays(min_length, policy, num_threads)
        return [Span(*row) for row in zip(doc.tolist(), start.tolist(), end.tolist())]

    def repeated_span_arrays(
        self, min_length: int = 100, policy: str = "later", num_threads: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`repeated_spans` as three uint64 arrays (document, start, end)."""
        check_int("min_length", min_length, 1)
        check_choice("policy", policy, POLICIES)
        return self._core.repeated_spans(min_length, policy, num_threads)


def repeated_spans(
    texts_or_inputs: Any,
    min_length: int = 100,
    policy: str = "later",
    *,
    num_threads: int | None = None,
    show_progress: bool | None = None,
) -> list[Span]:
    """The spans of each document repeated elsewhere in the corpus (exact substring dedup; see
    the module docstring for the definition). ``texts_or_inputs`` as for
    :meth:`SuffixIndex.build`; documents are numbered from 0 in reading order."""
    check_int("min_length", min_length, 1)
    check_choice("policy", policy, POLICIES)
    index = SuffixIndex.build(texts_or_inputs, show_progress=show_progress)
    return index.repeated_spans(min_length, policy, num_threads)


def cleaned_text(text: str, spans: Iterable[Span]) -> str:
    """``text`` without the bytes of ``spans`` (spans of this document, in order)."""
    b = text.encode("utf-8")
    out, at = [], 0
    for s in spans:
        out.append(b[at : s.start])
        at = max(at, s.end)
    out.append(b[at:])
    return b"".join(out).decode("utf-8")
