"""N-gram counts of any order and the add-k (Lidstone) language model."""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from textsieve import _core
from textsieve.errors import FileFormatError, TextsieveError
from textsieve.io import atomic_write
from textsieve.vocab import Vocab

BOS = "<s>"
EOS = "</s>"
FORMAT = "textsieve.addk"
VERSION = 1


def _texts(texts: Iterable[str], arg: str = "texts") -> list[str]:
    if isinstance(texts, str):
        raise TypeError(
            f"{arg}: expected an iterable of str (documents), got a single str; wrap it in a list"
        )
    return texts if isinstance(texts, list) else list(texts)


def save_state(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """A model's arrays to one compressed ``.npz`` file, atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **state)
    with atomic_write(path, "wb") as fh:
        fh.write(buf.getvalue())


def load_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The arrays :func:`save_state` wrote; a file that is not one is a :class:`FileFormatError`
    naming it."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        # a truncated or corrupt .npz fails in zipfile or zlib, which name no file
        raise FileFormatError(
            f"{os.fspath(path)}: not a textsieve model file, or a damaged one "
            f"({type(exc).__name__}: {exc})"
        ) from None


def state_header(
    state: dict[str, Any], source: str, fmt: str, version: int, what: str
) -> dict[str, Any]:
    """The JSON header of a saved model's state, checked to be of format ``fmt`` (a textsieve
    ``what``) and ``version``."""
    header = json.loads(str(state["header"]))
    if header.get("format") != fmt:
        raise FileFormatError(f"{source}: not a textsieve {what}")
    if header.get("version") != version:
        raise FileFormatError(
            f"{source}: model format version {header.get('version')!r} is not supported "
            f"(expected {version})"
        )
    return header


class NgramCounts:
    """Counts of the n-grams of one order, per document (no n-gram crosses a document boundary).

    Counts are mergeable: counts of two shards added together equal the counts of the whole.

    >>> v = Vocab.from_texts(["abab"])
    >>> c = NgramCounts(2, v).update(["abab"])
    >>> c.to_dict()
    {('a', 'b'): 2, ('b', 'a'): 1}
    >>> (c + NgramCounts(2, v).update(["ba"])).to_dict()[("b", "a")]
    2
    """

    __slots__ = ("_core", "vocab")

    def __init__(self, order: int, vocab: Vocab, *, pad: bool = False) -> None:
        if not isinstance(vocab, Vocab):
            raise TypeError(f"vocab: expected a textsieve.Vocab, got {type(vocab).__name__}")
        if isinstance(order, bool) or not isinstance(order, int):
            raise TypeError(f"order: expected an int, got {type(order).__name__}")
        self.vocab = vocab
        self._core = _core.NgramModel(vocab._core, order, pad)

    @classmethod
    def _wrap(cls, core: _core.NgramModel, vocab: Vocab) -> NgramCounts:
        obj = cls.__new__(cls)
        obj._core = core
        obj.vocab = vocab
        return obj

    @property
    def order(self) -> int:
        return self._core.order

    @property
    def pad(self) -> bool:
        return self._core.pad

    @property
    def total(self) -> int:
        """Number of n-grams counted, with multiplicity."""
        return self._core.total

    def __len__(self) -> int:
        return self._core.distinct

    @property
    def id_tokens(self) -> list[str]:
        """The token of each id: the vocabulary, then ``<s>`` and ``</s>`` when padded."""
        return self.vocab.tokens + ([BOS, EOS] if self.pad else [])

    def update(
        self, texts: Iterable[str], *, errors: str = "strict", num_threads: int | None = None
    ) -> NgramCounts:
        """Count the n-grams of ``texts`` (documents), in parallel; returns ``self``."""
        self._core.fit(_texts(texts), errors=errors, num_threads=num_threads)
        return self

    def merge(self, other: NgramCounts) -> NgramCounts:
        """A new ``NgramCounts`` holding the sum of both."""
        if not isinstance(other, NgramCounts):
            raise TypeError(f"other: expected NgramCounts, got {type(other).__name__}")
        out = NgramCounts._wrap(self._core.copy(), self.vocab)
        out._core.merge(other._core)
        return out

    __add__ = merge

    def _ids(self, tokens: Sequence[str]) -> list[int]:
        """Ids of tokens: ``<s>``/``</s>`` when padded, else the vocabulary's own mapping
        (unknown tokens to ``<unk>``, or ``KeyError`` without one)."""
        special = {BOS: len(self.vocab), EOS: len(self.vocab) + 1} if self.pad else {}
        plain = [t for t in tokens if t not in special]
        mapped = iter(self.vocab.encode_tokens(plain).tolist())
        return [special[t] if t in special else next(mapped) for t in tokens]

    def count(self, *tokens: str) -> int:
        """Count of one n-gram given as its tokens: ``counts.count("a", "b")``."""
        if len(tokens) != self.order:
            raise ValueError(
                f"tokens: an order-{self.order} count needs {self.order} tokens, got {len(tokens)}"
            )
        return self._core.count(self._ids(tokens))

    def to_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, counts)``: an int32 array (m, order) of n-grams in lexicographic id order and
        their uint64 counts."""
        return self._core.entries()

    def to_dict(self) -> dict[tuple[str, ...], int]:
        """``{(token, ...): count}`` for every n-gram seen."""
        ids, counts = self.to_arrays()
        names = self.id_tokens
        return {
            tuple(names[i] for i in row): int(c) for row, c in zip(ids.tolist(), counts.tolist())
        }

    def bigram_matrix(self) -> np.ndarray:
        """The dense V x V matrix of bigram counts (row: context, column: next token), for
        heatmaps; only for order-2 counts over a small vocabulary."""
        return self._core.dense_bigrams()

    def __eq__(self, other: object) -> bool:
        if (
            not isinstance(other, NgramCounts)
            or other.vocab != self.vocab
            or other.pad != self.pad
            or other.order != self.order
        ):
            return False
        a, b = self.to_arrays(), other.to_arrays()
        return bool(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"NgramCounts(order={self.order}, vocab={len(self.vocab)}, distinct={len(self)}, total={self.total})"


class AddKLM:
    """The add-k (Lidstone) n-gram model.

    ``P(token | context) = (count(context, token) + k) / (count(context) + k * V)`` with ``V`` the
    vocabulary size including ``<unk>`` (and ``<s>``, ``</s>`` when ``pad=True``). Texts are
    documents; the vocabulary is built from the training documents unless given.

    >>> lm = AddKLM(order=2, k=0.1).fit(["abab", "ba"])
    >>> round(lm.prob("a", "b"), 4)
    0.913
    >>> round(lm.perplexity(["abba"]), 4)
    3.0217
    """

    def __init__(
        self,
        order: int = 2,
        k: float = 0.1,
        *,
        vocab: Vocab | None = None,
        pad: bool = False,
        unk: str | None = "<unk>",
        num_threads: int | None = None,
        **tokenizer_options: Any,
    ) -> None:
        if isinstance(order, bool) or not isinstance(order, int):
            raise TypeError(f"order: expected an int, got {type(order).__name__}")
        if order < 1:
            raise ValueError(f"order: must be at least 1 (1 = unigram, 2 = bigram), got {order}")
        k = float(k)
        if not (k > 0 and math.isfinite(k)):
            raise ValueError(f"k: must be a positive finite number (e.g. 0.1 or 1.0), got {k}")
        if vocab is not None and not isinstance(vocab, Vocab):
            raise TypeError(f"vocab: expected a textsieve.Vocab, got {type(vocab).__name__}")
        if vocab is not None and tokenizer_options:
            raise ValueError(
                "tokenizer options come from the vocabulary when vocab= is given; pass them to Vocab.from_texts instead"
            )
        self.order = order
        self.k = k
        self.pad = pad
        self.unk = unk
        self.num_threads = num_threads
        self.tokenizer_options = tokenizer_options
        self.vocab = vocab
        self._counts: NgramCounts | None = None

    # -- training --------------------------------------------------------------------------
    def fit(self, texts: Iterable[str], *, errors: str = "strict") -> AddKLM:
        """Count the training documents; without a vocabulary, it is built from them in the same
        pass (each document is tokenized once)."""
        texts = _texts(texts)
        if not texts:
            raise ValueError("texts: the training set is empty; give at least one document")
        if self.vocab is None:
            # the vocabulary and the counts in one pass over the texts
            core = _core.NgramModel.from_texts(
                texts,
                self.order,
                self.pad,
                self.unk,
                errors=errors,
                num_threads=self.num_threads,
                **self.tokenizer_options,
            )
            self.vocab = Vocab._wrap(core.vocab)
            counts = NgramCounts._wrap(core, self.vocab)
        else:
            counts = NgramCounts(self.order, self.vocab, pad=self.pad).update(
                texts, errors=errors, num_threads=self.num_threads
            )
        if counts.total == 0 and self._counts is None:
            raise ValueError(
                f"texts: the training set has no {self.order}-gram inside any document "
                f"(documents too short or empty); give longer documents or a lower order"
            )
        self._check_k(counts)
        self._counts = counts if self._counts is None else self._counts + counts
        return self

    def _check_k(self, counts: NgramCounts) -> None:
        """``count(context) + k * V`` must be a finite float, or every probability is 0 and every
        perplexity inf (the reference raises on the log of 0)."""
        V = counts._core.id_space
        if not math.isfinite(counts.total + self.k * V):
            raise TextsieveError(
                f"k: k * V overflows a float (k={self.k}, V={V}); give k below {1e308 / V:.3g}"
            )

    @classmethod
    def from_counts(cls, counts: NgramCounts, k: float = 0.1) -> AddKLM:
        lm = cls(counts.order, k, vocab=counts.vocab, pad=counts.pad)
        lm._check_k(counts)
        lm._counts = counts
        return lm

    @property
    def counts(self) -> NgramCounts:
        """The model's n-gram counts (order ``self.order``)."""
        if self._counts is None:
            raise TextsieveError("the model is not fitted yet: call fit(texts) first")
        return self._counts

    @property
    def V(self) -> int:
        """The number of tokens the model predicts over."""
        return self.counts._core.id_space

    # -- probabilities ---------------------------------------------------------------------
    def prob(self, context: str | Sequence[str], token: str) -> float:
        """``P(token | context)``; ``context`` holds the last ``order - 1`` tokens (a string of
        characters or a sequence of tokens; ``<s>`` allowed when padded).

        A token the vocabulary does not hold is ``<unk>`` when it is one character; a longer
        string is an error (``prob("a", "bc")`` is not a question a character model answers).
        """
        c = self.counts
        ctx = list(context)
        specials = (BOS, EOS) if self.pad else ()
        for name, t in [*(("context", t) for t in ctx), ("token", token)]:
            if not isinstance(t, str):
                raise TypeError(f"{name}: expected str tokens, got {type(t).__name__}")
            if len(t) != 1 and t not in self.vocab and t not in specials:
                raise TextsieveError(
                    f"{name}: {t!r} is not one token of the vocabulary (tokens are single "
                    f"characters); give one character, or a sequence of tokens as context"
                )
        ids = c._ids([*ctx, token])
        return c._core.prob(ids[:-1], ids[-1], self.k)

    def total_nll(self, texts: Iterable[str], *, errors: str = "strict") -> tuple[float, int]:
        """``(summed negative log-likelihood in nats, predicted tokens)`` of the documents:
        shards' sums add up, and ``nll`` is the first over the second."""
        total, n = self.counts._core.corpus_score(
            _texts(texts), self.k, errors=errors, num_threads=self.num_threads
        )
        return float(total), int(n)

    def nll(self, texts: Iterable[str], *, errors: str = "strict") -> float:
        """Mean negative log-likelihood (nats per predicted token) over all documents."""
        total, n = self.total_nll(texts, errors=errors)
        if n == 0:
            raise ValueError(
                f"texts: nothing to score: no document has more than {self.order - 1} tokens"
            )
        return total / n

    def perplexity(self, texts: Iterable[str], *, errors: str = "strict") -> float:
        """``exp(mean NLL)`` over every predicted token of every document."""
        return math.exp(self.nll(texts, errors=errors))

    def score(self, texts: Iterable[str], *, errors: str = "strict") -> np.ndarray:
        """Per-document perplexity (float64 array; NaN for a document with nothing to predict),
        for quality filtering."""
        nll, n = self.counts._core.score(
            _texts(texts), self.k, errors=errors, num_threads=self.num_threads
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.exp(nll / n)

    def sample(
        self, start: str = "", length: int = 50, *, seed: int = 0, temperature: float = 1.0
    ) -> str:
        """Generate ``length`` tokens after ``start`` (seeded); a padded model may stop early at
        ``</s>``. Returns only the generated text."""
        if length < 0:
            raise ValueError(f"length: must be >= 0, got {length}")
        start_ids = self.vocab.encode(start).tolist() if start else []
        ids = self.counts._core.sample(
            start_ids, int(length), self.k, float(temperature), int(seed)
        )
        return self.vocab.decode(ids)

    # -- persistence -----------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        ids, counts = self.counts.to_arrays()
        header = {
            "format": FORMAT,
            "version": VERSION,
            "order": self.order,
            "k": self.k,
            "pad": self.pad,
            "vocab": self.vocab.to_dict(),
        }
        return {
            "header": json.dumps(header),
            "ids": ids.astype(np.uint32).ravel(),
            "counts": counts,
        }

    @classmethod
    def _from_state(cls, state: dict[str, Any], source: str) -> AddKLM:
        try:
            header = state_header(state, source, FORMAT, VERSION, "add-k model")
            vocab = Vocab.from_dict(header["vocab"], source=source)
            core = _core.NgramModel.from_entries(
                vocab._core,
                int(header["order"]),
                bool(header["pad"]),
                np.ascontiguousarray(state["ids"], dtype=np.uint32),
                np.ascontiguousarray(state["counts"], dtype=np.uint64),
            )
        except (KeyError, ValueError, TypeError) as exc:
            if isinstance(exc, TextsieveError):
                raise
            raise FileFormatError(f"{source}: malformed model file ({exc})") from None
        return cls.from_counts(NgramCounts._wrap(core, vocab), header["k"])

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save to one ``.npz`` file (JSON header + count arrays), atomically."""
        save_state(path, self._state())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AddKLM:
        return cls._from_state(load_state(path), os.fspath(path))

    def __getstate__(self) -> dict[str, Any]:
        if self._counts is None:
            return {
                "unfitted": (
                    self.order,
                    self.k,
                    self.pad,
                    self.unk,
                    self.tokenizer_options,
                    self.vocab,
                )
            }
        return self._state()

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "unfitted" in state:
            order, k, pad, unk, opts, vocab = state["unfitted"]
            self.__init__(order, k, vocab=vocab, pad=pad, unk=unk, **opts)  # type: ignore[misc]
            return
        self.__dict__.update(AddKLM._from_state(state, "pickle").__dict__)

    def __repr__(self) -> str:
        fitted = (
            f", V={self.V}, n-grams={len(self.counts)}"
            if self._counts is not None
            else ", unfitted"
        )
        return f"AddKLM(order={self.order}, k={self.k}, pad={self.pad}{fitted})"
