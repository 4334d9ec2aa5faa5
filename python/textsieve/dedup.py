"""Near-duplicate detection: shingles, MinHash, LSH, exact verification, clusters.

The work happens in the Rust core (``textsieve._core``) with the GIL released; this module holds
the argument policy, chunking for progress reports, and the result types. The pure-Python
specification of every step is :mod:`textsieve.reference.dedup`.

>>> import textsieve as ts
>>> res = ts.dedup(["the cat sat on the mat", "the cat sat on the mat!", "dogs bark"])
>>> res.keep.tolist()
[True, False, True]
>>> int(res.duplicate_of[1]), round(float(res.similarity[1]), 3)
(0, 0.947)

A document is removed iff an earlier *kept* document that shares an LSH bucket with it is within
the threshold (``cluster="greedy"``, the default): removed documents are always within the
threshold of the document they duplicate, and overlapping texts never chain into one cluster.
``cluster="components"`` gives connected components of the verified pairs instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from textsieve import _core
from textsieve._checks import (
    check_choice,
    check_float,
    check_int,
    check_seed,
    check_threshold,
)
from textsieve.errors import InvalidArgumentError, TextsieveError

if TYPE_CHECKING:
    from textsieve.index import PersistentDedupIndex

__all__ = [
    "PAIR_DTYPE",
    "DedupIndex",
    "DedupResult",
    "DedupSettings",
    "MinHasher",
    "dedup",
    "jaccard",
    "lsh_params",
    "shingles",
]

#: The dtype of :attr:`DedupResult.pairs`.
PAIR_DTYPE = np.dtype([("i", np.int64), ("j", np.int64), ("jaccard", np.float64)])

# The option strings, as types for the signatures and as the tuples the checks use.
Scheme = Literal["native", "datasketch-legacy", "datasketch-affine32"]
Shingle = Literal["char", "word"]
Normalize = Literal["default", "none", "nfkc"]
Verify = Literal["exact", "minhash"]
Keep = Literal["first", "longest"]
Cluster = Literal["greedy", "components"]
Nulls = Literal["error", "empty"]
Errors = Literal["strict", "replace"]
SCHEMES: tuple[str, ...] = get_args(Scheme)
CLUSTERS: tuple[str, ...] = get_args(Cluster)
NULLS: tuple[str, ...] = get_args(Nulls)

# Feed the core this many documents (or characters) at a time, so progress can be reported.
_CHUNK_DOCS = 8192
_CHUNK_CHARS = 8 << 20


def shingles(
    text: str, k: int = 5, *, shingle: Shingle = "char", normalize: Normalize = "default"
) -> set[str]:
    """The shingle set of ``text``: char k-grams (or word k-grams) of the normalized text.

    A non-empty text shorter than ``k`` gives one shingle (the whole text); an empty one none.

    >>> sorted(shingles("Hello  World", k=4))
    [' wor', 'ello', 'hell', 'llo ', 'lo w', 'o wo', 'orld', 'worl']
    """
    return set(_core.shingle_strings(text, check_int("k", k), shingle, normalize))


def jaccard(
    a: str | Iterable[Any],
    b: str | Iterable[Any],
    *,
    k: int = 5,
    shingle: Shingle = "char",
    normalize: Normalize = "default",
) -> float:
    """Exact Jaccard similarity ``|A ∩ B| / |A ∪ B|`` (0.0 when both are empty).

    Two ``str`` are compared by their shingle sets (see :func:`shingles`); anything else is taken
    as two collections of items.

    >>> jaccard({1, 2, 3}, {2, 3, 4})
    0.5
    >>> jaccard("abcdef", "abcdefg", k=3)
    0.8
    """
    if isinstance(a, str) and isinstance(b, str):
        return float(_core.jaccard_texts(a, b, check_int("k", k), shingle, normalize))
    if isinstance(a, str) or isinstance(b, str):
        raise TypeError("jaccard: expected two str or two collections, got one of each")
    sa, sb = set(a), set(b)
    union = len(sa | sb)
    return len(sa & sb) / union if union else 0.0


def lsh_params(
    threshold: float, num_perm: int = 128, *, weights: tuple[float, float] | None = None
) -> tuple[int, int]:
    """``(bands, rows)`` for a threshold.

    Without ``weights``: textsieve's recall-first choice (the most rows that still make a pair at
    the threshold a candidate with probability >= 0.99). With ``weights=(fp, fn)``: datasketch's
    ``_optimal_param`` (``(0.5, 0.5)`` is datasketch's default: 0.8 and 128 give 9 bands of 13).

    >>> lsh_params(0.8, 128), lsh_params(0.8, 128, weights=(0.5, 0.5))
    ((21, 6), (9, 13))
    """
    t = check_threshold("threshold", threshold)
    p = check_int("num_perm", num_perm)
    if weights is None:
        return tuple(_core.recall_params(t, p))  # type: ignore[return-value]
    fp, fn = _check_weights(weights)
    return tuple(_core.optimal_params(t, p, fp, fn))  # type: ignore[return-value]


def _check_weights(weights: Any) -> tuple[float, float]:
    """``(false positive weight, false negative weight)``: finite, >= 0, not both 0."""
    try:
        fp, fn = weights
    except (TypeError, ValueError):
        raise TypeError(f"weights: expected a pair (fp, fn) of numbers, got {weights!r}") from None
    fp = check_float("weights", fp, 0.0)
    fn = check_float("weights", fn, 0.0)
    if fp == 0 and fn == 0:
        raise TextsieveError("weights: the two weights cannot both be 0, got (0, 0)")
    return fp, fn


class MinHasher:
    """MinHash signatures of texts (see ``docs/dedup.md`` for the exact definitions).

    ``scheme`` is ``"native"`` (textsieve's fast 32-bit scheme), ``"datasketch-legacy"`` or
    ``"datasketch-affine32"`` (bit-identical to ``datasketch.MinHash`` fed the same shingles as
    UTF-8 bytes).

    >>> mh = MinHasher(num_perm=64, seed=1)
    >>> sig = mh.signatures(["a text", "another text"])
    >>> sig.shape, sig.dtype.name
    ((2, 64), 'uint32')
    """

    def __init__(
        self,
        num_perm: int = 128,
        seed: int = 1,
        scheme: Scheme = "native",
        shingle: Shingle = "char",
        k: int = 5,
        normalize: Normalize = "default",
    ) -> None:
        self.num_perm = check_int("num_perm", num_perm)
        self.seed = check_seed("seed", seed, scheme)
        self.scheme = scheme
        self.shingle = shingle
        self.k = check_int("k", k)
        self.normalize = normalize
        self._core = _core.MinHasherCore(
            self.num_perm, self.seed, scheme, shingle, self.k, normalize
        )

    def signatures(
        self, texts: Iterable[str], *, num_threads: int | None = None, errors: Errors = "strict"
    ) -> np.ndarray:
        """Signatures, shape ``(n, num_perm)``: uint32 (uint64 for ``datasketch-legacy``)."""
        return self._core.signatures(
            texts, check_int("num_threads", num_threads, optional=True), errors
        )

    def signature(self, text: str, *, errors: Errors = "strict") -> np.ndarray:
        """One text's signature, shape ``(num_perm,)``."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected str, got {type(text).__name__}")
        return self._core.signatures([text], 1, errors)[0]

    @property
    def permutations(self) -> tuple[np.ndarray, np.ndarray]:
        """The permutation parameters ``(a, b)`` as uint64 arrays."""
        return self._core.permutations()

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            MinHasher,
            (self.num_perm, self.seed, self.scheme, self.shingle, self.k, self.normalize),
        )

    def __repr__(self) -> str:
        return (
            f"MinHasher(num_perm={self.num_perm}, seed={self.seed}, scheme={self.scheme!r}, "
            f"shingle={self.shingle!r}, k={self.k}, normalize={self.normalize!r})"
        )


@dataclass
class DedupResult:
    """What :func:`dedup` (or :meth:`DedupIndex.add`) found.

    Arrays are indexed by document position. ``duplicate_of`` is the kept document a removed one
    duplicates (-1 for kept documents) and ``similarity`` its exact Jaccard to it (NaN for kept
    documents; with ``cluster="greedy"`` always >= threshold, with ``"components"`` it can be
    below it when the component is a chain). ``cluster`` is the number of the kept document a
    document belongs to (a kept document is its own). ``examined`` counts the similarities each
    document needed. ``pairs`` has one row per removed document, ``(i, j, jaccard)`` = (its kept
    document, itself, their similarity), sorted by ``j``; with ``all_pairs=True`` it lists instead
    every candidate pair ``i < j`` with ``jaccard >= threshold`` (quadratic in the size of a
    cluster). For :meth:`DedupIndex.add`, document numbers are global (``offset`` + position).
    """

    keep: np.ndarray
    cluster: np.ndarray
    duplicate_of: np.ndarray
    similarity: np.ndarray
    pairs: np.ndarray
    empty: np.ndarray
    examined: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))
    stats: dict[str, Any] = field(default_factory=dict)
    offset: int = 0

    def __len__(self) -> int:
        return len(self.keep)

    def filter(self, rows: Any) -> Any:
        """The kept rows of ``rows``, the collection the documents came from, in the same order:
        a list or any sized iterable (gives a list), a NumPy array, a pandas or polars DataFrame
        or Series, a pyarrow Table, RecordBatch or array, or a Hugging Face ``Dataset``; the
        result has the type of ``rows`` where that type can filter itself.

        >>> import textsieve as ts
        >>> docs = ["a rose is a rose", "a rose is a rose", "tulips"]
        >>> ts.dedup(docs).filter(docs)
        ['a rose is a rose', 'tulips']
        """
        keep = np.asarray(self.keep, dtype=bool)
        try:
            n = len(rows)
        except TypeError:
            raise InvalidArgumentError(
                f"rows must be a sized collection (list, array, DataFrame, Table, Dataset), "
                f"got {type(rows).__name__}"
            ) from None
        if n != len(keep):
            raise InvalidArgumentError(
                f"rows has {n:,} rows but this result is for {len(keep):,} documents"
            )
        family = type(rows).__module__.partition(".")[0]
        if isinstance(rows, np.ndarray):
            return rows[keep]
        if family == "pyarrow":
            import pyarrow as pa

            return rows.filter(pa.array(keep))
        if family == "polars":
            import polars as pl

            return rows.filter(pl.Series(keep))
        if family == "pandas":
            return rows[keep]
        if family == "datasets":
            return rows.select(np.flatnonzero(keep))
        return [row for row, k in zip(rows, keep.tolist()) if k]

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"DedupResult(n_docs={len(self)}, n_kept={int(self.keep.sum())}, "
            f"n_pairs={len(self.pairs)}, n_clusters={s.get('n_clusters')})"
        )


def _removal_pairs(out: dict[str, Any]) -> np.ndarray:
    """One row per removed document: (its kept document, itself, their similarity)."""
    dup = np.asarray(out["duplicate_of"])
    (pos,) = np.nonzero(dup >= 0)
    pairs = np.empty(len(pos), dtype=PAIR_DTYPE)
    pairs["i"] = dup[pos]
    pairs["j"] = pos + int(out["first_doc"])
    pairs["jaccard"] = np.asarray(out["similarity"])[pos]
    return pairs


def _result(
    out: dict[str, Any], settings: dict[str, Any], seconds: dict[str, float], all_pairs: bool
) -> DedupResult:
    if all_pairs:
        pairs = np.empty(len(out["pair_i"]), dtype=PAIR_DTYPE)
        pairs["i"] = out["pair_i"]
        pairs["j"] = out["pair_j"]
        pairs["jaccard"] = out["pair_jaccard"]
    else:
        pairs = _removal_pairs(out)
    keep = out["keep"]
    examined = out["examined"]
    secs = dict(seconds)
    secs.update(out["seconds"])
    stats = {
        "n_docs": len(keep),
        "n_kept": int(keep.sum()),
        "n_removed": int(len(keep) - keep.sum()),
        "n_empty": int(out["empty"].sum()),
        "n_pairs": len(pairs),
        "n_candidates": int(out["n_candidates"]),
        "examined_per_doc": examined_per_doc(examined),
        "n_clusters": int(out["n_clusters"]),
        **settings,
        "all_pairs": all_pairs,
        "seconds": secs,
    }
    if settings.get("cluster") == "components":
        stats.update(component_warnings(out["cluster"], out["similarity"], settings["threshold"]))
    return DedupResult(
        keep=keep,
        cluster=out["cluster"],
        duplicate_of=out["duplicate_of"],
        similarity=out["similarity"],
        pairs=pairs,
        empty=out["empty"],
        examined=examined,
        stats=stats,
        offset=int(out["first_doc"]),
    )


def examined_per_doc(examined: np.ndarray) -> dict[str, float | int]:
    """Mean and largest number of similarities a document needed."""
    if not len(examined):
        return {"mean": 0.0, "max": 0}
    return {"mean": float(examined.mean()), "max": int(examined.max())}


#: A component with more members than this is reported as giant.
GIANT_COMPONENT = 1000


def component_warnings(cluster: Any, similarity: Any, threshold: float) -> dict[str, Any]:
    """What connected components hide: the largest component, and the removed documents whose
    similarity to their kept document is below the threshold (chained in)."""
    cluster = np.asarray(cluster)
    sim = np.asarray(similarity, dtype=np.float64)
    sizes = np.unique(cluster, return_counts=True)[1] if len(cluster) else np.zeros(0, int)
    below = np.flatnonzero(~np.isnan(sim) & (sim < threshold))
    largest = int(sizes.max()) if len(sizes) else 0
    warnings = []
    if len(below):
        warnings.append(
            f"{len(below):,} removed documents are below the threshold ({threshold}) to the "
            f"document kept for them (connected components chain); the lowest is "
            f"{float(sim[below].min()):.3f}. cluster='greedy' never does this."
        )
    if largest > GIANT_COMPONENT:
        warnings.append(f"a giant component of {largest:,} documents")
    return {
        "largest_component": largest,
        "n_below_threshold": len(below),
        "below_threshold": [int(x) for x in below[:100]],
        "warnings": warnings,
    }


@dataclass(frozen=True)
class DedupSettings:
    """Every setting that decides a dedup result, validated once, here: a wrong value is a
    :class:`~textsieve.TextsieveError` (or ``TypeError``) naming the setting. ``bands`` and
    ``rows`` are filled in (chosen for recall when not given). The same object drives
    :func:`dedup`, :class:`DedupIndex`, the local engine and the Dask engine.

    >>> s = DedupSettings(threshold=0.8)
    >>> (s.bands, s.rows, s.cluster)
    (21, 6, 'greedy')
    """

    threshold: float = 0.8
    num_perm: int = 128
    seed: int = 1
    scheme: Scheme = "native"
    shingle: Shingle = "char"
    k: int = 5
    normalize: Normalize = "default"
    bands: int | None = None
    rows: int | None = None
    verify: Verify = "exact"
    keep: Keep = "first"
    cluster: Cluster = "greedy"

    def __post_init__(self) -> None:
        check_choice("cluster", self.cluster, CLUSTERS)
        check_choice("scheme", self.scheme, SCHEMES)
        checked = {
            "threshold": check_threshold("threshold", self.threshold),
            "num_perm": check_int("num_perm", self.num_perm),
            "seed": check_seed("seed", self.seed, self.scheme),
            "k": check_int("k", self.k),
            "bands": check_int("bands", self.bands, optional=True),
            "rows": check_int("rows", self.rows, optional=True),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        # the core checks the rest (names, bands x rows) and chooses bands and rows
        core = self.config()
        object.__setattr__(self, "bands", core.bands)
        object.__setattr__(self, "rows", core.rows)

    def config(self) -> Any:
        """The core's settings object (``_core.DedupConfig``)."""
        return _core.DedupConfig(
            self.threshold,
            self.num_perm,
            self.seed,
            self.scheme,
            self.shingle,
            self.k,
            self.normalize,
            self.bands,
            self.rows,
            self.verify,
            self.keep,
            self.cluster,
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _settings(
    threshold: Any,
    num_perm: Any,
    seed: Any,
    scheme: Scheme,
    shingle: Shingle,
    k: Any,
    normalize: Normalize,
    bands: Any,
    rows: Any,
    verify: Verify,
    keep: Keep,
    cluster: Cluster = "greedy",
) -> dict[str, Any]:
    """:class:`DedupSettings` as a dict (for the Dask engine's job files)."""
    return DedupSettings(
        threshold, num_perm, seed, scheme, shingle, k, normalize, bands, rows, verify, keep, cluster
    ).as_dict()


def _config(s: dict[str, Any]) -> Any:
    names = DedupSettings.__dataclass_fields__
    return DedupSettings(**{k: v for k, v in s.items() if k in names}).config()


def _columns(texts: Any) -> Iterable[Any]:
    """The documents as Python objects; pyarrow arrays a batch at a time (never whole)."""
    if isinstance(texts, str):
        raise TypeError(
            "texts: expected an iterable of str (documents), got a single str; wrap it in a list"
        )
    if (type(texts).__module__ or "").startswith("pyarrow"):
        chunks = getattr(texts, "chunks", None)
        return (
            v
            for arr in (chunks if chunks is not None else [texts])
            for start in range(0, len(arr), _CHUNK_DOCS)
            for v in arr.slice(start, _CHUNK_DOCS).to_pylist()
        )
    if isinstance(texts, np.ndarray) and texts.ndim != 1:
        raise TypeError(f"texts: expected a 1-D array, got shape {texts.shape}")
    try:
        return iter(texts)
    except TypeError:
        raise TypeError(f"texts: expected an iterable of str, got {type(texts).__name__}") from None


def _chunks(
    texts: Iterable[str],
    nulls: Nulls = "error",
    docs: int | None = None,
    chars: int | None = None,
) -> Iterable[list[str]]:
    """``texts`` in lists of ``docs`` documents or ``chars`` characters (default
    :data:`_CHUNK_DOCS`, :data:`_CHUNK_CHARS`)."""
    from textsieve.pipeline import chunks

    check_choice("nulls", nulls, NULLS)

    def no_nulls() -> Iterator[Any]:
        for pos, t in enumerate(_columns(texts)):
            if t is None:
                if nulls == "error":
                    raise TextsieveError(
                        f"texts[{pos}]: a null (None) document; pass nulls='empty' to treat "
                        "nulls as empty documents"
                    )
                t = ""
            yield t

    return chunks(no_nulls(), docs or _CHUNK_DOCS, chars or _CHUNK_CHARS, text=lambda t: t)


def dedup(
    texts: Iterable[str],
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    seed: int = 1,
    scheme: Scheme = "native",
    shingle: Shingle = "char",
    k: int = 5,
    normalize: Normalize = "default",
    bands: int | None = None,
    rows: int | None = None,
    verify: Verify = "exact",
    keep: Keep = "first",
    cluster: Cluster = "greedy",
    all_pairs: bool = False,
    num_threads: int | None = None,
    progress: Callable[[int, int], Any] | None = None,
    errors: Errors = "strict",
    nulls: Nulls = "error",
) -> DedupResult:
    """Find the near-duplicates of a corpus and choose the documents to keep.

    Candidates come from MinHash + LSH (bands x rows chosen for recall unless given) and are
    verified by their exact Jaccard similarity of shingle sets (``verify="exact"``) or by the
    signature estimate (``verify="minhash"``).

    ``cluster="greedy"`` (the default): documents are taken in input order (``keep="longest"``:
    longest first, ties in input order); a document is removed iff an earlier *kept* document
    sharing an LSH bucket with it has similarity >= ``threshold``, and ``duplicate_of`` is the
    most similar such document (ties: the earliest). No chains, cost linear in the corpus, and
    the same answer as :class:`DedupIndex` fed in batches. ``cluster="components"``: connected
    components of the verified pairs (what text-dedup and datatrove do), one document kept per
    component (the first, or the longest); chains can join documents far below the threshold, so
    ``stats`` warns about them.

    ``texts``: any iterable of str, a NumPy object array, or a pyarrow (Chunked)Array of strings;
    a null is an error naming its position (``nulls="error"``) or an empty document
    (``nulls="empty"``). Empty texts are reported in ``.empty``, kept and never matched.
    ``all_pairs=True`` also verifies every candidate pair and lists those at or above the
    threshold in ``.pairs`` (quadratic in cluster size: m copies give m(m-1)/2 pairs).
    ``progress(n_docs_done, n_bytes_done)`` is called as the work advances. ``num_threads``
    (default: all cores, or ``RAYON_NUM_THREADS``) never changes the result.

    >>> r = dedup(["a b c d e f g", "a b c d e f g h", "", "x y z"], threshold=0.7)
    >>> r.keep.tolist(), r.empty.tolist(), r.pairs.tolist()
    ([True, False, True, True], [False, False, True, False], [(0, 1, 0.8181818181818182)])
    """
    s = DedupSettings(
        threshold, num_perm, seed, scheme, shingle, k, normalize, bands, rows, verify, keep, cluster
    )
    settings = s.as_dict()
    threads = check_int("num_threads", num_threads, optional=True)
    all_pairs = bool(all_pairs)
    run = _core.DedupRun(s.config(), all_pairs)
    t0 = time.perf_counter()
    done_docs = done_bytes = 0
    for chunk in _chunks(texts, nulls):
        n, b, _ = run.feed(chunk, threads, errors)
        done_docs += n
        done_bytes += b
        if progress is not None:
            progress(done_docs, done_bytes)
    done, total = run.step(threads)
    while done < total:  # keep="longest", components: a block a call, Ctrl-C seen between them
        done, total = run.step(threads)
    out = run.finish(threads)
    total = time.perf_counter() - t0
    res = _result(out, settings, {}, all_pairs)
    res.stats["seconds"]["total"] = total
    res.stats["n_bytes"] = done_bytes
    return res


_FORMAT = "textsieve-dedup-index"
_VERSION = 1
_FILES = ("index.bin", "ids.json")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DedupIndex:
    """A persistent near-duplicate index: dedup shard after shard against everything seen.

    The rule is :func:`dedup`'s greedy one: a document is removed iff a kept document of the
    index, or one earlier in its batch, shares a bucket with it and is within the threshold. So
    adding a corpus in batches keeps exactly what one ``dedup`` call over it keeps (with
    ``keep="longest"``, longest first within each batch). Documents are numbered in the order
    they are added; ``ids`` (str or int, default the document number) name them in :meth:`query`
    results. The index keeps the texts of its kept documents (exact verification needs them).

    >>> idx = DedupIndex(threshold=0.7)
    >>> idx.add(["the cat sat on the mat", "dogs bark at night"], ids=["a", "b"]).keep.tolist()
    [True, True]
    >>> idx.add(["the cat sat on the mat!"]).keep.tolist()
    [False]
    >>> [(i, round(j, 3)) for i, j in idx.query("the cat sat on the mat!")]
    [('a', 0.947)]
    """

    def __init__(
        self,
        threshold: float = 0.8,
        num_perm: int = 128,
        seed: int = 1,
        *,
        scheme: Scheme = "native",
        shingle: Shingle = "char",
        k: int = 5,
        normalize: Normalize = "default",
        bands: int | None = None,
        rows: int | None = None,
        verify: Verify = "exact",
        keep: Keep = "first",
        num_threads: int | None = None,
    ) -> None:
        settings = DedupSettings(
            threshold, num_perm, seed, scheme, shingle, k, normalize, bands, rows, verify, keep
        )
        self._core = _core.IndexCore(settings.config())
        self._ids: list[Any] = []
        self.num_threads = check_int("num_threads", num_threads, optional=True)

    @property
    def settings(self) -> dict[str, Any]:
        """The settings the index was made with (bands and rows filled in)."""
        return dict(self._core.settings())

    @property
    def ids(self) -> list[Any]:
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._core)

    def __repr__(self) -> str:
        s = self.settings
        return f"DedupIndex(n_docs={len(self)}, threshold={s['threshold']}, num_perm={s['num_perm']}, scheme={s['scheme']!r})"

    def add(
        self,
        texts: Iterable[str],
        ids: Iterable[Any] | None = None,
        *,
        errors: Errors = "strict",
        progress: Callable[[int, int], Any] | None = None,
    ) -> DedupResult:
        """Dedup a shard against the index and within itself, then add it.

        The result's arrays cover the shard; ``duplicate_of``, ``cluster`` and ``pairs`` use
        global document numbers (``result.offset`` is the shard's first number).
        """
        if isinstance(texts, str):
            raise TypeError(
                "texts: expected an iterable of str (documents), got a single str; wrap it in a list"
            )
        texts = list(texts)
        n_old = len(self)
        if ids is None:
            new_ids: list[Any] = list(range(n_old, n_old + len(texts)))
        else:
            new_ids = list(ids)
            if len(new_ids) != len(texts):
                raise TextsieveError(
                    f"ids: expected {len(texts)} ids (one per text), got {len(new_ids)}"
                )
            for i, v in enumerate(new_ids):
                if isinstance(v, bool) or not isinstance(v, (str, int)):
                    raise TypeError(f"ids[{i}]: expected str or int, got {type(v).__name__}")
        t0 = time.perf_counter()
        out = self._core.add(texts, self.num_threads, errors)
        self._ids.extend(new_ids)
        settings = self.settings
        res = _result(out, settings, {}, False)
        res.stats["seconds"]["total"] = time.perf_counter() - t0
        res.stats["n_bytes"] = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
        if progress is not None:
            progress(len(texts), res.stats["n_bytes"])
        return res

    def query(self, text: str, *, errors: Errors = "strict") -> list[tuple[Any, float]]:
        """Kept documents with Jaccard >= threshold to ``text``: ``[(id, jaccard)]``, best first."""
        return [(self._ids[d], j) for d, j in self._core.query(text, errors)]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to a directory: ``index.bin``, ``ids.json`` and a checksummed
        ``manifest.json`` (each file written atomically)."""
        from textsieve.io import atomic_write

        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        blobs = {
            "index.bin": bytes(self._core.to_bytes()),
            "ids.json": json.dumps(self._ids, ensure_ascii=False).encode("utf-8"),
        }
        for name, data in blobs.items():
            with atomic_write(d / name, "wb") as fh:
                fh.write(data)
        manifest = {
            "format": _FORMAT,
            "version": _VERSION,
            "n_docs": len(self),
            "settings": self.settings,
            "files": {
                name: {"sha256": _sha256(data), "bytes": len(data)} for name, data in blobs.items()
            },
        }
        with atomic_write(d / "manifest.json") as fh:
            json.dump(manifest, fh, indent=2)
            fh.write("\n")

    def __getstate__(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "index": bytes(self._core.to_bytes()),
            "ids": list(self._ids),
            "num_threads": self.num_threads,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise TextsieveError("DedupIndex: the pickled state is not a textsieve dedup index")
        if state.get("version") != _VERSION:
            raise TextsieveError(
                f"DedupIndex: pickled format version {state.get('version')!r}; "
                f"this textsieve reads version {_VERSION}"
            )
        core = _core.IndexCore.from_bytes(state["index"])
        ids = state["ids"]
        if not isinstance(ids, list) or len(ids) != len(core):
            raise TextsieveError(f"DedupIndex: expected {len(core)} ids in the pickled state")
        self._core, self._ids, self.num_threads = core, ids, state.get("num_threads")

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], create: bool = True, **kwargs: Any
    ) -> PersistentDedupIndex:
        """The on-disk, incremental index in directory ``path`` (created with the settings in
        ``kwargs`` when absent): see :class:`textsieve.index.PersistentDedupIndex`."""
        from textsieve.index import PersistentDedupIndex

        return PersistentDedupIndex.open(path, create, **kwargs)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, num_threads: int | None = None) -> DedupIndex:
        """Read an index written by :meth:`save`; a corrupt or foreign file raises
        :class:`~textsieve.TextsieveError` naming the file."""
        d = Path(path)
        mpath = d / "manifest.json"
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TextsieveError(f"{mpath}: not found; {d} is not a saved DedupIndex") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TextsieveError(f"{mpath}: not a textsieve dedup index manifest ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
            raise TextsieveError(
                f"{mpath}: not a textsieve dedup index manifest (format is not {_FORMAT!r})"
            )
        if manifest.get("version") != _VERSION:
            raise TextsieveError(
                f"{mpath}: dedup index format version {manifest.get('version')!r}; this textsieve reads version {_VERSION}"
            )
        files = manifest.get("files")
        blobs: dict[str, bytes] = {}
        for name in _FILES:
            fpath = d / name
            entry = files.get(name) if isinstance(files, dict) else None
            if not isinstance(entry, dict):
                raise TextsieveError(f"{mpath}: no checksum for {name}")
            try:
                data = fpath.read_bytes()
            except FileNotFoundError:
                raise TextsieveError(f"{fpath}: missing from the saved index") from None
            if _sha256(data) != entry.get("sha256"):
                raise TextsieveError(
                    f"{fpath}: checksum mismatch (the file is corrupt or was changed)"
                )
            blobs[name] = data
        self = cls.__new__(cls)
        self.num_threads = check_int("num_threads", num_threads, optional=True)
        try:
            self._core = _core.IndexCore.from_bytes(blobs["index.bin"])
        except TextsieveError as exc:
            raise TextsieveError(f"{d / 'index.bin'}: {exc}") from None
        try:
            ids = json.loads(blobs["ids.json"].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TextsieveError(f"{d / 'ids.json'}: not valid JSON ({exc})") from None
        if not isinstance(ids, list) or len(ids) != len(self._core):
            raise TextsieveError(f"{d / 'ids.json'}: expected a list of {len(self._core)} ids")
        self._ids = ids
        return self
