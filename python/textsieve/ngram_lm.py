"""N-gram language models of every common smoothing, over characters, tokens or token ids, with
ARPA files in and out (``NgramLM``)."""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from textsieve import _core
from textsieve.errors import FileFormatError, TextsieveError, UnknownTokenError
from textsieve.io import atomic_write
from textsieve.ngram import load_state, save_state, state_header
from textsieve.vocab import Vocab

BOS = "<s>"
EOS = "</s>"
FORMAT = "textsieve.ngramlm"
VERSION = 1
SMOOTHINGS = ("kneser-ney", "add-k", "mle", "witten-bell", "absolute-discount", "stupid-backoff")
#: documents per call into the core
CHUNK = 8192

_PADS = {False: "none", True: "both", "none": "none", "both": "both", "sentence": "sentence"}


def _pad_name(pad: Any) -> str:
    try:
        return _PADS[pad]
    except (KeyError, TypeError):
        raise ValueError(
            f"pad: expected False, True (NLTK's pad_both_ends: order-1 <s> and </s>) or "
            f"'sentence' (KenLM's: one <s> as context, one </s>), got {pad!r}"
        ) from None


class NgramLM:
    """An n-gram language model with one of six smoothings.

    ``smoothing``:

    - ``"kneser-ney"`` (default): interpolated Kneser-Ney. Without ``discount``, *modified*
      Kneser-Ney with three discounts per order estimated from counts of counts, exactly as
      KenLM's ``lmplz`` (its ARPA file and scores); with ``discount``, NLTK's
      ``KneserNeyInterpolated``.
    - ``"add-k"`` (``k``, default 1: Laplace; NLTK's ``Lidstone``), ``"mle"``,
      ``"witten-bell"``, ``"absolute-discount"`` (``discount``, default 0.75): NLTK's models,
      formula for formula.
    - ``"stupid-backoff"`` (``alpha``, default 0.4): a *score*, not a probability (the scores
      after a context sum to more than 1); its "perplexity" only ranks documents.

    Documents are strings (characters, with the tokenizer options of :class:`Vocab`), sequences
    of str tokens (word or subword level; a str document is then split on white space), or NumPy
    integer arrays of token ids below ``vocab_size``; ``words=True`` makes str documents word
    sequences from the start (split on white space in Rust, no list of tokens in Python). ``pad``: ``"sentence"`` (default; KenLM's
    ``<s> ... </s>``), ``True`` (NLTK's ``pad_both_ends``: ``order - 1`` of each) or ``False``.

    >>> lm = NgramLM(3).fit([["a", "b", "a"], ["b", "a", "b", "b"]] * 3)
    >>> round(lm.prob(["a"], "b"), 4)
    0.5942
    >>> round(lm.perplexity([["a", "b"]]), 4)
    3.3698
    """

    def __init__(
        self,
        order: int = 3,
        smoothing: str = "kneser-ney",
        *,
        k: float | None = None,
        discount: float | None = None,
        alpha: float | None = None,
        pad: bool | str = "sentence",
        vocab: Vocab | Sequence[str] | _core.WordIndex | None = None,
        vocab_size: int | None = None,
        unk: str | None = "<unk>",
        words: bool = False,
        num_threads: int | None = None,
        **tokenizer_options: Any,
    ) -> None:
        if isinstance(order, bool) or not isinstance(order, int):
            raise TypeError(f"order: expected an int, got {type(order).__name__}")
        if order < 1:
            raise ValueError(f"order: must be at least 1 (1 = unigram, 2 = bigram), got {order}")
        if smoothing not in SMOOTHINGS:
            raise ValueError(
                f"smoothing: expected one of {', '.join(SMOOTHINGS)}, got {smoothing!r}"
            )
        params = {"add-k": "k", "absolute-discount": "discount", "kneser-ney": "discount"}
        params["stupid-backoff"] = "alpha"
        given = {"k": k, "discount": discount, "alpha": alpha}
        for name, value in given.items():
            if value is not None and params.get(smoothing) != name:
                raise ValueError(f"{name}: not a parameter of {smoothing!r} smoothing")
        param = given.get(params.get(smoothing, ""), None)
        self.order = order
        self.smoothing = smoothing
        self.param = None if param is None else float(param)
        if self.param is not None and not (self.param > 0 and math.isfinite(self.param)):
            raise ValueError(
                f"{params[smoothing]}: must be a positive finite number, got {self.param}"
            )
        self.pad = _pad_name(pad)
        self.unk = unk
        self.words = bool(words)
        if self.words and tokenizer_options:
            raise ValueError("tokenizer options apply to characters, not to words=True")
        self.num_threads = num_threads
        self.tokenizer_options = tokenizer_options
        self._kind: str | None = None
        self._vocab: Vocab | None = None
        self._words: Any = None
        self._vocab_size: int | None = None
        if vocab is not None and vocab_size is not None:
            raise ValueError("give vocab= (tokens) or vocab_size= (token ids), not both")
        if isinstance(vocab, Vocab):
            if tokenizer_options:
                raise ValueError("tokenizer options come from the vocabulary when vocab= is given")
            self._set_chars(vocab)
        elif isinstance(vocab, _core.WordIndex):
            # (a vocabulary gathered in the core, as `ngram train` does: no Python str a word)
            want = None if unk is None else vocab.index(unk)
            if vocab.unk != want or (unk is not None and want is None):
                raise ValueError(f"vocab: the index's unknown-word id is not that of {unk!r}")
            if vocab.index(BOS) is not None or vocab.index(EOS) is not None:
                raise ValueError("vocab: the index holds the model's own sentence marks")
            self._kind, self._words, self._vocab_size = "tokens", vocab, len(vocab)
        elif vocab is not None:
            self._set_tokens(list(vocab))
        elif vocab_size is not None:
            if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
                raise ValueError(f"vocab_size: expected a positive int, got {vocab_size!r}")
            self._kind, self._vocab_size = "ids", vocab_size
        self._counts: Any = None
        self._model: Any = None
        self._arpa: bytes | None = None

    # -- vocabulary ------------------------------------------------------------------------
    def _set_chars(self, vocab: Vocab) -> None:
        self._kind, self._vocab, self._vocab_size = "chars", vocab, len(vocab)

    def _set_tokens(self, tokens: list[str]) -> None:
        if self.unk is not None and self.unk not in tokens:
            tokens = [self.unk, *tokens]
        for t in tokens:
            if not isinstance(t, str):
                raise TypeError(f"vocab: expected str tokens, got {type(t).__name__}")
            if t in (BOS, EOS):
                raise ValueError(f"vocab: {t!r} is the model's own sentence mark")
        # the vocabulary is held once, in the core (a dict here held it a second time, about 40
        # MB of the peak for 478,850 words, and the list of str a third, about 30 MB)
        unk = tokens.index(self.unk) if self.unk is not None else None
        try:
            self._words = _core.WordIndex(tokens, unk)
        except ValueError as e:
            if "appears twice" not in str(e):
                raise
            raise ValueError("vocab: a token appears twice") from None
        self._kind, self._vocab_size = "tokens", len(tokens)

    def _build_vocab(self, docs: list[Any]) -> None:
        first = docs[0]
        if isinstance(first, str) and not self.words:
            self._set_chars(
                Vocab.from_texts(
                    docs, unk=self.unk, num_threads=self.num_threads, **self.tokenizer_options
                )
            )
        elif isinstance(first, np.ndarray):
            raise ValueError(
                "vocab_size: documents of token ids need the vocabulary size: "
                "NgramLM(..., vocab_size=V)"
            )
        else:
            if self.tokenizer_options:
                raise ValueError("tokenizer options apply to str documents (characters) only")
            self._set_tokens(_core.WordIndex.distinct(docs))

    @property
    def vocab(self) -> Vocab | list[str] | None:
        """The vocabulary: a :class:`Vocab` (characters), the token list (ids are positions),
        or None for a model over token ids. The token list is made when asked (the core holds
        the words in one string)."""
        if self._kind == "chars":
            return self._vocab
        return self._words.words() if self._kind == "tokens" else None

    @property
    def vocab_size(self) -> int:
        """Token ids the model knows (with ``<unk>``; without ``<s>`` and ``</s>``)."""
        if self._vocab_size is None:
            raise TextsieveError("the model is not fitted yet: call fit(documents) first")
        return self._vocab_size

    def _token_id(self, t: Any, arg: str) -> int:
        """The id of one token (``<s>``/``</s>`` included)."""
        V = self.vocab_size
        if t == BOS:
            return V
        if t == EOS:
            return V + 1
        if self._kind == "ids":
            if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < V:
                raise ValueError(f"{arg}: expected a token id below {V}, got {t!r}")
            return int(t)
        if not isinstance(t, str):
            raise TypeError(f"{arg}: expected a str token, got {type(t).__name__}")
        if self._kind == "chars":
            assert self._vocab is not None
            i = self._vocab._core.id_of(t)
            if i is None:
                if self._vocab.unk is None or len(t) != 1:
                    raise UnknownTokenError(t)
                return int(self._vocab._core.id_of(self._vocab.unk))
            return int(i)
        i = self._words.index(t)
        if i is None:
            if self.unk is None:
                raise UnknownTokenError(t)
            return int(self._words.index(self.unk))
        return int(i)

    def _encode(self, docs: list[Any], arg: str = "documents") -> tuple[np.ndarray, np.ndarray]:
        """``(ids, ends)`` of documents, as uint32 and uint64 arrays."""
        parts: list[np.ndarray] = []
        V = self.vocab_size
        if self._kind == "tokens":
            # str documents or sequences of str tokens, checked and encoded in Rust
            return self._words.encode_documents(docs, arg, num_threads=self.num_threads)
        if self._kind == "chars" and all(map(isinstance, docs, itertools.repeat(str))):
            assert self._vocab is not None
            parts = [a.astype(np.uint32) for a in self._vocab._core.encode_batch(docs)]
        else:
            for i, d in enumerate(docs):
                if isinstance(d, np.ndarray):
                    if self._kind != "ids":
                        raise TypeError(
                            f"{arg}[{i}]: an array of ids, but this model is over "
                            f"{'characters' if self._kind == 'chars' else 'str tokens'}"
                        )
                    if d.ndim != 1 or not np.issubdtype(d.dtype, np.integer):
                        raise TypeError(f"{arg}[{i}]: expected a 1-d array of integer ids")
                    if d.size and (d.min() < 0 or d.max() >= V):
                        bad = d[(d < 0) | (d >= V)][0]
                        raise ValueError(f"{arg}[{i}]: id {bad} is out of range for {V} ids")
                    parts.append(d.astype(np.uint32))
                    continue
                if isinstance(d, str):
                    if self._kind == "chars":
                        assert self._vocab is not None
                        parts.append(self._vocab._core.encode(d).astype(np.uint32))
                        continue
                    if self._kind == "ids":
                        raise TypeError(f"{arg}[{i}]: a str, but this model is over token ids")
                    d = d.split()
                try:
                    ids = [self._token_id(t, f"{arg}[{i}]") for t in d]
                except TypeError:
                    raise TypeError(
                        f"{arg}[{i}]: expected a str, a sequence of str tokens or an array of "
                        f"ids, got {type(d).__name__}"
                    ) from None
                if any(t >= V for t in ids):
                    raise ValueError(f"{arg}[{i}]: <s> and </s> are added by the model (pad=)")
                parts.append(np.asarray(ids, dtype=np.uint32))
        ends = np.cumsum([len(p) for p in parts], dtype=np.uint64)
        ids_all = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)
        return ids_all.astype(np.uint32, copy=False), ends

    @staticmethod
    def _docs(documents: Iterable[Any], arg: str = "documents") -> list[Any]:
        if isinstance(documents, (str, np.ndarray)):
            raise TypeError(
                f"{arg}: expected an iterable of documents, got a single "
                f"{type(documents).__name__}; wrap it in a list"
            )
        return documents if isinstance(documents, list) else list(documents)

    # -- training --------------------------------------------------------------------------
    def fit(self, documents: Iterable[Any]) -> NgramLM:
        """Count ``documents`` (more calls add more counts); the model is estimated from all
        counts at its next use. Without a vocabulary, it is the first call's tokens (that call
        holds its documents in memory); with one (``vocab=``, ``vocab_size=`` or a later call),
        documents are read from the iterable in chunks, as they come."""
        if self._arpa is not None:
            raise TextsieveError("a model read from an ARPA file has no counts to add to")
        if self._kind is None:
            # the vocabulary comes from these documents: they are read twice
            documents = self._docs(documents)
            if not documents:
                raise ValueError("documents: the training set is empty; give at least one document")
            self._build_vocab(documents)
        if self._counts is None:
            self._counts = _core.TokenCounts(self.order, self.vocab_size, self.pad)
        counted = 0
        for chunk in self._chunks(documents):
            ids, ends = self._encode(chunk)
            self._counts.add(ids, ends, num_threads=self.num_threads)
            counted += len(chunk)
        if counted == 0:
            raise ValueError("documents: the training set is empty; give at least one document")
        if self._counts.total(1) == 0:
            raise ValueError("documents: nothing to count (every document is empty)")
        self._model = None
        return self

    def merge(self, other: NgramLM) -> NgramLM:
        """A model with the counts of both (same order, padding and vocabulary): shards counted
        apart add up to the whole."""
        if not isinstance(other, NgramLM):
            raise TypeError(f"other: expected NgramLM, got {type(other).__name__}")
        if self._counts is None or other._counts is None:
            raise TextsieveError("both models must be fitted (ARPA models have no counts)")
        if self.vocab != other.vocab or self._kind != other._kind:
            raise ValueError("other: counts over a different vocabulary cannot be merged")
        out = self._copy_unfitted()
        out._counts = self._counts.copy()
        out._counts.merge(other._counts)
        return out

    def with_smoothing(
        self,
        smoothing: str,
        *,
        k: float | None = None,
        discount: float | None = None,
        alpha: float | None = None,
    ) -> NgramLM:
        """The same counts estimated with another smoothing (no second pass over the data)."""
        if self._counts is None:
            raise TextsieveError("the model has no counts (not fitted, or read from ARPA)")
        probe = NgramLM(self.order, smoothing, k=k, discount=discount, alpha=alpha)
        out = self._copy_unfitted()
        out.smoothing, out.param = probe.smoothing, probe.param
        out._counts = self._counts.copy()
        return out

    def _copy_unfitted(self) -> NgramLM:
        out = NgramLM.__new__(NgramLM)
        out.__dict__.update(self.__dict__)
        out._counts = out._model = None
        return out

    @property
    def model(self) -> Any:
        """The estimated core model (estimated once after each fit)."""
        if self._model is None:
            if self._counts is None:
                raise TextsieveError("the model is not fitted yet: call fit(documents) first")
            param = math.nan if self.param is None else self.param
            self._model = _core.SmoothedModel.estimate(
                self._counts, self.smoothing, param, num_threads=self.num_threads
            )
        return self._model

    @property
    def discounts(self) -> list[tuple[float, float, float]]:
        """Modified Kneser-Ney: the discounts ``(D1, D2, D3+)`` of each order (KenLM's
        ``--discount_fallback`` values 0.5, 1, 1.5 where the counts of counts cannot give them,
        see :attr:`discount_fallback`)."""
        return self.model.discounts

    @property
    def discount_fallback(self) -> list[bool]:
        return self.model.fallback

    def count(self, *tokens: Any) -> int:
        """How often an n-gram (1 to ``order`` tokens, ``<s>``/``</s>`` allowed) was counted."""
        if self._counts is None:
            raise TextsieveError("the model has no counts (not fitted, or read from ARPA)")
        return int(self._counts.count([self._token_id(t, "tokens") for t in tokens]))

    # -- probabilities ---------------------------------------------------------------------
    def _context_ids(self, context: str | Sequence[Any]) -> list[int]:
        if isinstance(context, str) and self._kind == "tokens":
            context = context.split()
        return [self._token_id(t, "context") for t in context]

    def log_prob(self, context: str | Sequence[Any], token: Any) -> float:
        """``ln P(token | context)``. ``context`` may be shorter than ``order - 1`` tokens (the
        model of that lower order answers) or longer (its last ``order - 1`` tokens count);
        ``<s>`` may appear in it, ``</s>`` may be the token."""
        ids = self._context_ids(context)
        t = self._token_id(token, "token")
        if t == self.vocab_size:
            raise ValueError("token: <s> is never predicted")
        return float(self.model.log_prob(ids, t))

    def prob(self, context: str | Sequence[Any], token: Any) -> float:
        """``P(token | context)`` (see :meth:`log_prob`)."""
        return math.exp(self.log_prob(context, token))

    def _chunks(self, documents: Iterable[Any]) -> Iterator[list[Any]]:
        """``documents`` in lists of :data:`CHUNK`, read as they come (streaming)."""
        if isinstance(documents, (str, np.ndarray)):
            self._docs(documents)  # the error for a single document
        it = iter(documents)
        while chunk := list(itertools.islice(it, CHUNK)):
            yield chunk

    def _scores(self, documents: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
        nll, n = [], []
        for chunk in self._chunks(documents):
            ids, ends = self._encode(chunk)
            a, b = self.model.score(ids, ends, num_threads=self.num_threads)
            nll.append(a)
            n.append(b)
        if not nll:
            return np.zeros(0), np.zeros(0, dtype=np.uint64)
        return np.concatenate(nll), np.concatenate(n)

    def total_nll(self, documents: Iterable[Any]) -> tuple[float, int]:
        """``(summed negative log-likelihood in nats, predicted tokens)`` of ``documents``, read
        as they come: shards' sums add up, and ``nll`` is the first over the second."""
        nll, n = self._scores(documents)
        return float(nll.sum()), int(n.sum())

    def nll(self, documents: Iterable[Any]) -> float:
        """Mean negative log-likelihood, nats per predicted token, over all documents (inf when a
        token has probability 0: MLE, or an unseen token under NLTK's smoothings)."""
        nll, total = self.total_nll(documents)
        if total == 0:
            raise ValueError(
                "documents: nothing to score (no document has a token the model predicts)"
            )
        return nll / total

    def perplexity(self, documents: Iterable[Any]) -> float:
        """``exp(mean NLL)`` over every predicted token of every document."""
        return math.exp(self.nll(documents))

    def score(self, documents: Iterable[Any]) -> np.ndarray:
        """Per-document perplexity (float64; NaN for a document with nothing to predict), for
        quality filtering."""
        nll, n = self._scores(documents)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.exp(nll / n)

    def token_log_probs(self, document: Any) -> np.ndarray:
        """``ln P`` of each predicted token of one document, in order (``</s>`` last when
        padded)."""
        ids, _ = self._encode([document], "document")
        return self.model.token_log_probs(ids)

    def sample(
        self, start: Any = (), length: int = 50, *, seed: int = 0, temperature: float = 1.0
    ) -> Any:
        """Generate up to ``length`` tokens after ``start`` (seeded; a padded model stops at
        ``</s>``): a str for a character model, a list of tokens, or an array of ids."""
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"length: must be an int >= 0, got {length!r}")
        start_ids = self._context_ids(start) if len(start) else []
        exclude = None
        if self._kind == "chars" and self._vocab is not None and self._vocab.unk is not None:
            exclude = self._vocab._core.id_of(self._vocab.unk)
        elif self._kind == "tokens" and self.unk is not None and self._words is not None:
            exclude = self._words.index(self.unk)
        ids = self.model.sample(start_ids, length, float(temperature), int(seed), exclude)
        if self._kind == "chars":
            assert self._vocab is not None
            return self._vocab.decode(ids)
        if self._kind == "tokens":
            return self._words.words(list(ids))
        return np.asarray(ids, dtype=np.int64)

    # -- ARPA ------------------------------------------------------------------------------
    def _arpa_words(self) -> tuple[list[str] | Any, int | None]:
        # (a word model's words are the core's index itself, not a list made from it)
        if self._kind == "chars":
            assert self._vocab is not None
            unk = self._vocab.unk
            words = self._vocab.tokens
            return words, (words.index(unk) if unk is not None else None)
        if self._kind == "tokens":
            return self._words, self._words.index(self.unk) if self.unk else None
        return [str(i) for i in range(self.vocab_size)], None

    def to_arpa(self, path: str | os.PathLike[str]) -> None:
        """Write the model as an ARPA file (atomically), for KenLM (``kenlm.Model(path)``) and
        other toolkits: every smoothing but add-k (whose unseen n-grams each have their own
        probability). Tokens are written as they are (ids as decimal numbers); a token with white
        space in it cannot be an ARPA word and is an error. A zero probability is written as
        log10 -99. Modified Kneser-Ney written straight after ``fit`` is written one order at a
        time as it is estimated, without holding the whole model (the same file; the model is
        then estimated at its next use)."""
        words, unk = self._arpa_words()
        if self._model is None and self._counts is not None and self._streams_arpa():
            # modified Kneser-Ney not estimated yet: written order by order as estimated, never
            # holding the whole model (the same file; the model is estimated at its next use)
            with atomic_write(path, "wb") as fh:
                _core.SmoothedModel.write_kneser_ney_arpa(
                    self._counts, fh, words, unk, num_threads=self.num_threads
                )
            return
        model = self.model
        with atomic_write(path, "wb") as fh:
            model.write_arpa(fh, words, unk)

    def _streams_arpa(self) -> bool:
        return self.smoothing == "kneser-ney" and self.param is None

    @classmethod
    def from_arpa(cls, path: str | os.PathLike[str]) -> NgramLM:
        """A model read from an ARPA file (for instance one written by KenLM's ``lmplz``): it
        scores sentences with standard backoff as KenLM does (``<s>`` as context, ``</s>``
        predicted), tokens the file does not have as ``<unk>``. Documents are lists of tokens or
        strings split on white space. A gzip or zstd file (``.arpa.gz``) is read as it is."""
        core, words, unk = _core.SmoothedModel.read_arpa(os.fspath(path))
        return cls._from_arpa_parts(core, words, unk)

    @classmethod
    def _from_arpa_parts(cls, core: Any, words: list[str], unk: int) -> NgramLM:
        lm = cls(core.order, "kneser-ney", pad="sentence", unk=words[unk])
        lm.smoothing = "arpa"
        lm._kind = "tokens"
        lm._vocab_size = len(words)
        lm._words = _core.WordIndex(words, unk)
        lm._model = core
        lm._arpa = b""
        return lm

    # -- persistence -----------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        header: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "order": self.order,
            "smoothing": self.smoothing,
            "param": self.param,
            "pad": self.pad,
            "unk": self.unk,
            "words": self.words,
            "kind": self._kind,
        }
        arrays: dict[str, Any] = {}
        if self._kind == "chars":
            assert self._vocab is not None
            header["vocab"] = self._vocab.to_dict()
        elif self._kind == "tokens":
            header["tokens"] = self._words.words()
        header["vocab_size"] = self._vocab_size
        if self._arpa is not None:
            words, unk = self._arpa_words()
            arrays["arpa"] = np.frombuffer(self.model.arpa_bytes(words, unk), dtype=np.uint8)
        elif self._counts is not None:
            for k in range(1, self.order + 1):
                ids, counts = self._counts.entries(k)
                arrays[f"ids{k}"] = ids.ravel()
                arrays[f"counts{k}"] = counts
            arrays["first_seen"] = self._counts.first_seen()
        return {"header": json.dumps(header), **arrays}

    @classmethod
    def _from_state(cls, state: dict[str, Any], source: str) -> NgramLM:
        try:
            header = state_header(state, source, FORMAT, VERSION, "n-gram model")
            if "arpa" in state:
                data = np.ascontiguousarray(state["arpa"], dtype=np.uint8).tobytes()
                core, words, unk = _core.SmoothedModel.read_arpa_bytes(data, source)
                return cls._from_arpa_parts(core, words, unk)
            smoothing = header["smoothing"]
            param = header["param"]
            kw = {{"add-k": "k", "stupid-backoff": "alpha"}.get(smoothing, "discount"): param}
            lm = cls(
                int(header["order"]),
                smoothing,
                pad=header["pad"],
                unk=header["unk"],
                words=bool(header.get("words", False)),
                **(kw if param is not None else {}),
            )
            kind = header["kind"]
            if kind == "chars":
                lm._set_chars(Vocab.from_dict(header["vocab"], source=source))
            elif kind == "tokens":
                lm._set_tokens(list(header["tokens"]))
            elif kind == "ids":
                lm._kind, lm._vocab_size = "ids", int(header["vocab_size"])
            if "ids1" in state:
                counts = _core.TokenCounts(lm.order, lm.vocab_size, lm.pad)
                for k in range(1, lm.order + 1):
                    counts.set_entries(
                        k,
                        np.ascontiguousarray(state[f"ids{k}"], dtype=np.uint32),
                        np.ascontiguousarray(state[f"counts{k}"], dtype=np.uint64),
                    )
                counts.set_first_seen(np.ascontiguousarray(state["first_seen"], dtype=np.uint32))
                lm._counts = counts
        except (KeyError, ValueError, TypeError) as exc:
            if isinstance(exc, TextsieveError):
                raise
            raise FileFormatError(f"{source}: malformed model file ({exc})") from None
        return lm

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save to one ``.npz`` file (JSON header + count arrays; the ARPA text of a model read
        from one), atomically."""
        save_state(path, self._state())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NgramLM:
        return cls._from_state(load_state(path), os.fspath(path))

    def __getstate__(self) -> dict[str, Any]:
        return self._state()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(NgramLM._from_state(state, "pickle").__dict__)

    def __repr__(self) -> str:
        what = self.smoothing if self.param is None else f"{self.smoothing}, {self.param}"
        fitted = f", V={self._vocab_size}" if self._vocab_size is not None else ""
        state = "" if (self._counts is not None or self._arpa is not None) else ", unfitted"
        return f"NgramLM(order={self.order}, {what}, pad={self.pad!r}{fitted}{state})"
