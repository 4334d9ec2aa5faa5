"""The character vocabulary: ``["<unk>"] + sorted(distinct chars)``, encoding to int32 arrays."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from textsieve import _core
from textsieve.errors import TextsieveError
from textsieve.io import atomic_write

FORMAT = "textsieve.vocab"
VERSION = 1


class Vocab:
    """An ordered set of character tokens, with an optional unknown token.

    The tokenizer options travel with the vocabulary, so ``encode`` tokenizes text the same way
    the vocabulary was built.

    >>> v = Vocab.from_texts(["ba", "ca。"])
    >>> v.tokens
    ['<unk>', 'a', 'b', 'c']
    >>> v.encode("abz").tolist()
    [1, 2, 0]
    >>> v.decode([2, 1])
    'ba'
    >>> Vocab.from_texts(["Hi!"], unk=None, normalize=False).tokens
    ['!', 'H', 'i']
    """

    __slots__ = ("_core",)

    def __init__(
        self,
        tokens: Sequence[str],
        unk: str | None = "<unk>",
        *,
        normalize: bool = True,
        lowercase: bool = True,
        punctuation: str = _core.SEED_PUNCTUATION,
        nfkc: bool = False,
        keep_spaces: bool = False,
    ) -> None:
        self._core = _core.Vocab(
            list(tokens),
            unk,
            normalize=normalize,
            lowercase=lowercase,
            punctuation=punctuation,
            nfkc=nfkc,
            keep_spaces=keep_spaces,
        )

    @classmethod
    def _wrap(cls, core: _core.Vocab) -> Vocab:
        obj = cls.__new__(cls)
        obj._core = core
        return obj

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        unk: str | None = "<unk>",
        *,
        normalize: bool = True,
        lowercase: bool = True,
        punctuation: str = _core.SEED_PUNCTUATION,
        nfkc: bool = False,
        keep_spaces: bool = False,
        errors: str = "strict",
        num_threads: int | None = None,
    ) -> Vocab:
        """``[unk] + sorted(distinct tokens)`` by code point over all ``texts`` (documents).

        ``normalize=False`` takes every character as it is (the ``sorted(set(text))`` style).
        """
        return cls._wrap(
            _core.Vocab.from_texts(
                texts,
                unk,
                normalize=normalize,
                lowercase=lowercase,
                punctuation=punctuation,
                nfkc=nfkc,
                keep_spaces=keep_spaces,
                errors=errors,
                num_threads=num_threads,
            )
        )

    # -- lookups ---------------------------------------------------------------------------
    @property
    def tokens(self) -> list[str]:
        return self._core.tokens

    @property
    def unk(self) -> str | None:
        return self._core.unk

    @property
    def unk_id(self) -> int | None:
        return self._core.unk_id

    @property
    def options(self) -> dict[str, Any]:
        """The tokenizer options (keyword arguments of ``Vocab``)."""
        normalize, lowercase, punctuation, nfkc, keep_spaces = self._core.options
        return {
            "normalize": normalize,
            "lowercase": lowercase,
            "punctuation": punctuation,
            "nfkc": nfkc,
            "keep_spaces": keep_spaces,
        }

    def __len__(self) -> int:
        return len(self._core)

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and self._core.id_of(token) is not None

    def __iter__(self):
        return iter(self._core.tokens)

    def id_of(self, token: str) -> int:
        """The id of ``token``; ``KeyError`` if it is not in the vocabulary."""
        i = self._core.id_of(token)
        if i is None:
            raise KeyError(f"token {token!r} is not in the vocabulary")
        return i

    def token_of(self, id: int) -> str:
        """The token of ``id``; ``IndexError`` if out of range."""
        t = self._core.token_of(int(id))
        if t is None:
            raise IndexError(f"id {id} is out of range for a vocabulary of {len(self)}")
        return t

    # -- encoding --------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[str]:
        return self._core.tokenize(text)

    def encode(self, text: str, *, errors: str = "strict") -> np.ndarray:
        """Token ids of ``text`` as an int32 array (unknown characters map to ``unk_id``)."""
        return self._core.encode(text, errors=errors)

    def encode_batch(
        self, texts: Iterable[str], *, errors: str = "strict", num_threads: int | None = None
    ) -> list[np.ndarray]:
        """``encode`` over many documents, in parallel with the GIL released."""
        return self._core.encode_batch(texts, errors=errors, num_threads=num_threads)

    def encode_tokens(self, tokens: Sequence[str]) -> np.ndarray:
        """Ids of already tokenized tokens."""
        return self._core.encode_tokens(list(tokens))

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        arr = np.asarray(ids)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(
                f"ids: expected a 1-d sequence of ints, got {arr.dtype} of shape {arr.shape}"
            )
        return self._core.decode(np.ascontiguousarray(arr, dtype=np.int64))

    # -- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "tokens": self.tokens,
            "unk": self.unk,
            **self.options,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "data") -> Vocab:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TextsieveError(
                f"{source}: not a textsieve vocabulary (format {FORMAT!r} expected)"
            )
        if data.get("version") != VERSION:
            raise TextsieveError(
                f"{source}: vocabulary format version {data.get('version')!r} is not supported (expected {VERSION})"
            )
        try:
            opts = {
                k: data[k] for k in ("normalize", "lowercase", "punctuation", "nfkc", "keep_spaces")
            }
            return cls(data["tokens"], data["unk"], **opts)
        except (KeyError, TypeError) as exc:
            raise TextsieveError(f"{source}: malformed vocabulary ({exc})") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Vocab:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TextsieveError(f"vocabulary JSON is malformed: {exc}") from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary as JSON (atomically)."""
        with atomic_write(path) as fh:
            fh.write(self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocab:
        with open(path, encoding="utf-8") as fh:
            try:
                data = json.load(fh)
            except json.JSONDecodeError as exc:
                raise TextsieveError(f"{os.fspath(path)}: not valid JSON ({exc})") from None
        return cls.from_dict(data, source=os.fspath(path))

    def __getstate__(self) -> dict[str, Any]:
        return self.to_dict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._core = Vocab.from_dict(state, source="pickle")._core

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self._core == other._core

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        head = "".join(t for t in self.tokens[:12] if len(t) == 1)
        return f"Vocab({len(self)} tokens, unk={self.unk!r}, first={head!r})"
