"""Dedup beyond one machine: the same answer as :func:`textsieve.dedup`, computed on Dask.

``dedup_dask(inputs, outdir)`` reads the corpus in partitions (one per input file; large plain
JSONL/text files are split at line boundaries), and runs every stage as Dask tasks that read and
write files under ``OUTDIR/_work``, so workers only need a shared filesystem and a rerun skips the
tasks that finished (each task's marker is written last, atomically):

1. ``lines``: split files: count the lines before each partition (for ``FILE:LINE`` ids);
2. ``sign``: read a partition, MinHash signatures and band keys with the Rust kernels, a digest
   of each non-empty text (sent to a shard by digest) and the partition's ids;
3. ``copies``: per digest shard, the classes of exact copies (equal digests; the smallest
   document is the class's rep);
4. ``scatter``: send every ``(band, key, doc)`` of a rep (or a document in no class) to a bucket
   shard chosen by hashing the band key;
5. ``bucket``: per shard, group by ``(band, key)`` and emit the candidate pairs of each bucket,
   routed to the partition of their smaller document;
6. ``edges``: per partition, the distinct candidate pairs, and which documents of other
   partitions their verification needs;
7. ``fetch``: per partition, the texts (or signatures) and copy classes that other partitions
   asked for;
8. ``verify``: per partition, the exact Jaccard of every candidate pair; the pairs at or above the
   threshold, expanded to the members of both classes, plus the pairs within its classes, each
   sent to the partition of its smaller document;
9. ``pairs``: per partition, its verified pairs sorted, with both ids (``pairs.jsonl`` rows);
10. ``components``: connected components of the verified pairs, the kept document of each
    cluster (keep policy), and per partition the pairs (document, kept document) still to
    measure. Up to ``components_max_edges`` pairs (:data:`COMPONENTS_IN_MEMORY_MAX_EDGES`) one
    task runs the core's union-find in memory; above that, large-star/small-star rounds (Kiveris
    et al. 2014) run as tasks per edge shard (``ceil(pairs / components_shard_edges)`` shards)
    until a round changes no edge, and the kept documents and cluster sizes are found shard by
    shard (see :func:`_components`); both write the same files;
11. ``fetch2`` and ``write``: the kept document's text and id for each removed document, its
    exact similarity to it, and the partition's ``kept`` and ``removed`` records.

Then the driver concatenates the partitions into ``kept.jsonl``, ``removed.jsonl`` and
``pairs.jsonl`` and writes ``stats.json`` and ``report.html``, as ``textsieve dedup`` does.

Why the answer is the local engine's: documents get the same global numbers (input order), the
same signatures and band keys (same kernels), and the verified pairs are, as in the local engine,
*every* pair of non-empty documents that share a ``(band, key)`` bucket and reach the threshold.
The candidates are fewer, but lose nothing. Exact copies (equal texts: equal shingle sets, so
equal band keys, similarity 1.0 to each other and the same similarity to any other document)
form classes, found by a 128-bit digest of the text (trusted, not re-verified), and only each
class's rep (its smallest document) goes into the buckets. The candidate edges are one
(rep, copy) edge per copy plus every pair of reps in each bucket: near-linear where buckets are
made of copies, but still ``m(m-1)/2`` for a bucket of ``m`` distinct texts, because a star to
the bucket's smallest document would lose verified pairs: in a bucket ``{a, b, c}`` with
``J(a, b) < t``, ``J(a, c) < t`` and ``J(b, c) >= t`` the star checks only ``(a, b)`` and
``(a, c)``, so ``(b, c)`` (and the cluster it makes) would be missing. Each verified rep pair
``(A, B, x)`` stands for the pairs ``(Ai, Bj, x)`` of the members of both classes, and each
class for its pairs ``(Ai, Aj, 1.0)``; verify writes them all out, so that part of the work is
the size of the output. Verification is the same exact Jaccard over the same 64-bit shingle
hashes (the same ``f64`` division), the components' roots are their smallest documents, as in
the local union-find (large-star/small-star converges to stars around each component's smallest
document too), and the keep policy is the same.

>>> from textsieve.distributed import dedup_dask                        # doctest: +SKIP
>>> stats = dedup_dask(["shards/"], "out/", n_workers=4)                # doctest: +SKIP
>>> stats["n_kept"] + stats["n_removed"] == stats["n_input"]            # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import glob as _glob
import hashlib
import heapq
import json
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

import textsieve.io as _io
from textsieve import _core
from textsieve.dedup import _config, _settings
from textsieve.errors import TextsieveError
from textsieve.io import (
    CorpusReader,
    InputFile,
    MalformedRecordError,
    Record,
    atomic_write,
    expand_inputs,
    record_json_line,
    to_jsonable,
)

__all__ = ["COMPONENTS_IN_MEMORY_MAX_EDGES", "COMPONENTS_SHARD_EDGES", "STAGES", "dedup_dask"]

#: The stages, in order (``stop_after`` takes one of them).
STAGES = (
    "lines",
    "sign",
    "copies",
    "scatter",
    "bucket",
    "edges",
    "fetch",
    "verify",
    "pairs",
    "components",
    "fetch2",
    "write",
)

#: Up to this many verified pairs the components stage is one task running the core's
#: union-find in memory (16 bytes per pair for the edge list plus ~40 bytes per distinct document
#: in it: 100 M pairs ~ 2-4 GB); above it, distributed large-star/small-star rounds.
COMPONENTS_IN_MEMORY_MAX_EDGES = 100_000_000

#: Verified pairs per shard of the distributed components (one task per shard and step): the
#: number of shards is ``ceil(pairs / this)``. A shard's task holds about 100 bytes per pair
#: (both directions of each edge, sorted and deduplicated; measured), about 400 MB at 4 M.
COMPONENTS_SHARD_EDGES = 4_000_000

#: The distributed components give up after this many rounds (a round is a large-star step
#: and a small-star step; they take O(log^2 n) rounds, in practice a handful to about 20).
COMPONENTS_MAX_ROUNDS = 200

#: At most this many verified-pair similarities go into ``comp/clusters.npz`` (the report's
#: histogram) on the distributed path; above it, an evenly spaced sample of them.
COMPONENTS_JACCARD_SAMPLE = 20_000_000

#: Default partition size for splitting large uncompressed JSONL / text files.
DEFAULT_PARTITION_BYTES = 64 << 20

_WORK_VERSION = 2
_EMPTY_SIG = np.uint32(0xFFFFFFFF)
_SHUFFLE_DTYPE = np.dtype([("band", "<u4"), ("key", "<u8"), ("gid", "<u4")])
#: a document's content digest (blake2b, 16 bytes, as two words), its partition and its number
#: there (the sign stage does not know the global numbers yet)
_DIGEST_DTYPE = np.dtype([("d0", "<u8"), ("d1", "<u8"), ("part", "<u4"), ("local", "<u4")])
OUTPUT_FILES = ("kept.jsonl", "removed.jsonl", "pairs.jsonl", "stats.json", "report.html")
REPORT_CLUSTERS = 12
REPORT_MEMBERS = 4


# --------------------------------------------------------------------------------------------
# Small file helpers (every file is written atomically)


@contextlib.contextmanager
def _work_file(path: str, mode: str = "wb") -> Iterator[Any]:
    """Write an intermediate file: a temporary beside it, renamed into place if the block
    succeeds (atomic for other processes; not fsynced, unlike the final outputs)."""
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f".{os.path.basename(path)}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    try:
        kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with open(tmp, mode, **kwargs) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _save_npz(path: str, **arrays: np.ndarray) -> None:
    with _work_file(path, "wb") as fh:
        np.savez(fh, **arrays)


def _load_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _save_json(path: str, obj: Any) -> None:
    with _work_file(path, "w") as fh:
        json.dump(to_jsonable(obj), fh, ensure_ascii=False, allow_nan=False)


def _write_rows(path: str, rows: Iterable[Any]) -> None:
    """JSON lines, encoded as :func:`textsieve.io.write_jsonl` encodes them."""
    with _work_file(path, "w") as fh:
        for row in rows:
            fh.write(_io._dumps(row))
            fh.write("\n")


def _load_json(path: str) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _save_sharded(
    work: str, name: str, p: int, rows: np.ndarray, shard: np.ndarray, ctx: dict[str, Any]
) -> None:
    """Partition ``p``'s rows for a shuffle: one file sorted by shard, and the row range of each
    shard (shard ``s`` reads rows ``cuts[s]:cuts[s+1]``, see :func:`_load_shard`)."""
    order = np.argsort(shard, kind="stable")
    cuts = np.searchsorted(shard[order], np.arange(ctx["n_shards"] + 1)).astype(np.int64)
    with _work_file(_p(work, name, f"from-{p:05d}.npy")) as fh:
        np.save(fh, rows[order])
    with _work_file(_p(work, name, f"from-{p:05d}.cuts.npy")) as fh:
        np.save(fh, cuts)


def _load_shard(work: str, name: str, sh: int, n_parts: int, dtype: np.dtype) -> np.ndarray:
    """Shard ``sh``'s rows of a shuffle, from every partition's file (memory-mapped slices)."""
    chunks = []
    for p in range(n_parts):
        cuts = np.load(_p(work, name, f"from-{p:05d}.cuts.npy"))
        x, y = int(cuts[sh]), int(cuts[sh + 1])
        if x < y:
            rows = np.load(_p(work, name, f"from-{p:05d}.npy"), mmap_mode="r")
            chunks.append(np.array(rows[x:y]))
    return np.concatenate(chunks) if chunks else np.empty(0, dtype)


def _load_all(pattern: str, *names: str) -> list[np.ndarray]:
    """The named arrays of every ``.npz`` file matching ``pattern``, concatenated (empty int64
    arrays when none matches)."""
    zs = [_load_npz(f) for f in sorted(_glob.glob(pattern))]
    return [np.concatenate([z[n] for z in zs]) if zs else np.empty(0, np.int64) for n in names]


def _save_ids(work: str, p: int, ids: list[str]) -> None:
    """Partition ``p``'s ids as one UTF-8 blob and offsets, read back a few at a time with
    :func:`_ids_of` (memory-mapped)."""
    encoded = [i.encode("utf-8", "surrogatepass") for i in ids]
    offsets = np.zeros(len(ids) + 1, np.int64)
    offsets[1:] = np.cumsum([len(e) for e in encoded])
    blob = np.frombuffer(b"".join(encoded) + b"\0", np.uint8)  # never empty: mmap refuses that
    with _work_file(_p(work, "ids", f"part-{p:05d}.npy")) as fh:
        np.save(fh, blob)
    with _work_file(_p(work, "ids", f"part-{p:05d}.offsets.npy")) as fh:
        np.save(fh, offsets)


def _ids_of(work: str, offsets: np.ndarray, gids: np.ndarray) -> list[str]:
    """The ids of documents anywhere in the corpus, in the order of ``gids``."""
    u, inv = np.unique(gids, return_inverse=True)
    names = np.empty(len(u), object)
    owner = _part_of(offsets, u)
    for b in np.unique(owner).tolist():
        sel = np.flatnonzero(owner == b)
        off = np.load(_p(work, "ids", f"part-{b:05d}.offsets.npy"), mmap_mode="r")
        blob = np.load(_p(work, "ids", f"part-{b:05d}.npy"), mmap_mode="r")
        local = u[sel] - int(offsets[b])
        names[sel] = [
            bytes(blob[x:y]).decode("utf-8", "surrogatepass")
            for x, y in zip(off[local].tolist(), off[local + 1].tolist(), strict=True)
        ]
    return names[inv].tolist()


def _marker(work: str, stage: str, idx: int) -> str:
    return os.path.join(work, "done", f"{stage}-{idx:05d}.json")


def _p(work: str, *parts: str) -> str:
    return os.path.join(work, *parts)


# --------------------------------------------------------------------------------------------
# Partitions and reading them


def _plan_partitions(files: list[InputFile], partition_bytes: int) -> list[dict[str, Any]]:
    """One partition per input file; uncompressed JSONL / text files larger than
    ``partition_bytes`` are split at line starts into byte ranges."""
    parts: list[dict[str, Any]] = []
    for fi, inp in enumerate(files):
        base = {"file": fi, "path": inp.path, "format": inp.format, "compression": inp.compression}
        size = os.path.getsize(inp.path)
        if (
            inp.format not in ("jsonl", "text")
            or inp.compression is not None
            or size <= partition_bytes
        ):
            parts.append({**base, "start": None, "end": None})
            continue
        bounds = [0]
        with open(inp.path, "rb") as fh:
            while bounds[-1] + partition_bytes < size:
                fh.seek(bounds[-1] + partition_bytes - 1)
                fh.readline()  # to the start of the next line
                pos = fh.tell()
                if pos >= size:
                    break
                bounds.append(pos)
        bounds.append(size)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            parts.append({**base, "start": a, "end": b})
    return parts


class _RangeReader(CorpusReader):
    """A :class:`CorpusReader` over the lines of one byte range ``[start, end)`` (line-aligned) of
    an uncompressed JSONL or text file, numbered from ``line_base + 1``: record for record what
    reading the whole file yields for those lines (tested against it)."""

    def __init__(self, part: dict[str, Any], line_base: int, **options: Any) -> None:
        super().__init__(part["path"], **options)
        self._start, self._end = int(part["start"]), int(part["end"])
        self._line_base = line_base

    def _raw_lines(self, inp: InputFile) -> Iterator[tuple[int, bytes]]:
        left = self._end - self._start
        with open(inp.path, "rb", buffering=1 << 20) as fh:
            fh.seek(self._start)
            lineno = self._line_base
            while left > 0:
                raw = fh.readline()
                if not raw:
                    return
                left -= len(raw)
                lineno += 1
                yield lineno, raw


def _abs(ctx: dict[str, Any], path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(ctx["cwd"], path)


class _Partition:
    """The records of one partition, as the local engine's reader yields them (same ``source``,
    ids and line numbers), plus the reader's counts for the partition."""

    def __init__(self, ctx: dict[str, Any], p: int, line_base: int = 0) -> None:
        self.part = part = ctx["parts"][p]
        self.source = part["path"]
        self.opened = _abs(ctx, part["path"])
        opts = ctx["reader"]
        if part["start"] is None:
            self.reader: CorpusReader = CorpusReader(self.opened, **opts)
            # the same InputFile the driver found, opened by its absolute path
            self.reader.inputs = [InputFile(self.opened, part["format"], part["compression"])]
        else:
            self.reader = _RangeReader({**part, "path": self.opened}, line_base, **opts)
            self.reader.inputs = [InputFile(self.opened, part["format"], None)]

    def _fix(self, value: str) -> str:
        o, s = self.opened, self.source
        if o == s or not value.startswith(o):
            return value
        return s + value[len(o) :]

    def records(self) -> list[Record]:
        fix = self._fix
        same = self.opened == self.source
        try:
            recs = list(self.reader)
        except MalformedRecordError as exc:
            raise MalformedRecordError(self.source, exc.line, exc.reason) from None
        except TextsieveError as exc:
            raise TextsieveError(fix(str(exc))) from None
        if same:
            return recs
        return [r._replace(source=self.source, id=fix(r.id)) for r in recs]

    def info(self) -> dict[str, Any]:
        r = self.reader
        file_info = dict(r.files[0]) if r.files else {"records": 0, "skipped": 0, "bytes": 0}
        return {
            "records": r.n_records,
            "skipped": r.n_skipped,
            "skipped_examples": [
                s._replace(source=self._fix(s.source))._asdict() for s in r.skipped
            ],
            "blank": r.n_blank,
            "bytes": r.n_bytes,
            "file_bytes": file_info.get("bytes", 0),
        }


def _count_lines(path: str, start: int, end: int) -> int:
    n = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            chunk = fh.read(min(left, 8 << 20))
            if not chunk:
                break
            left -= len(chunk)
            n += chunk.count(b"\n")
    return n


# --------------------------------------------------------------------------------------------
# The kernels every stage uses


def _hasher(s: dict[str, Any]) -> Any:
    return _core.MinHasherCore(
        s["num_perm"], s["seed"], s["scheme"], s["shingle"], s["k"], s["normalize"]
    )


def _part_of(offsets: np.ndarray, gids: np.ndarray) -> np.ndarray:
    """The partition of each global document number (``offsets``: first number of each)."""
    return np.searchsorted(offsets, gids, side="right") - 1


def _pack(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return (lo.astype(np.uint64) << np.uint64(32)) | hi.astype(np.uint64)


def _unpack(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (p >> np.uint64(32)).astype(np.int64), (p & np.uint64(0xFFFFFFFF)).astype(np.int64)


def _bucket_pairs(band: np.ndarray, key: np.ndarray, gid: np.ndarray) -> np.ndarray:
    """Every pair of documents sharing a ``(band, key)`` bucket, packed ``lo << 32 | hi``, distinct.
    Work is proportional to the number of pairs (a bucket of m documents gives m(m-1)/2)."""
    if len(gid) < 2:
        return np.empty(0, np.uint64)
    order = np.lexsort((gid, key, band))
    band, key, gid = band[order], key[order], gid[order]
    new = np.empty(len(gid), bool)
    new[0] = True
    new[1:] = (band[1:] != band[:-1]) | (key[1:] != key[:-1])
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, len(gid)))
    size_of = np.repeat(sizes, sizes)
    pos = np.arange(len(gid)) - np.repeat(starts, sizes)
    active = np.flatnonzero(size_of >= 2)
    out = []
    d = 1
    while len(active):
        active = active[pos[active] + d < size_of[active]]
        if not len(active):
            break
        out.append(_pack(gid[active], gid[active + d]))
        d += 1
    if not out:
        return np.empty(0, np.uint64)
    return np.unique(np.concatenate(out))


def _ranks(counts: np.ndarray) -> np.ndarray:
    """``0, 1, ..., c - 1`` for each ``c`` in ``counts``, concatenated."""
    counts = np.asarray(counts, np.int64)
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


def _groups(*cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and sizes of the runs of equal rows in sorted columns."""
    n = len(cols[0])
    new = np.zeros(n, bool)
    if n:
        new[0] = True
        for c in cols:
            new[1:] |= c[1:] != c[:-1]
    starts = np.flatnonzero(new)
    return starts, np.diff(np.append(starts, n))


class _Classes:
    """Exact-copy classes: ``rep`` (the class's smallest document) and ``member`` (the rep
    included), sorted by ``(rep, member)``. A document in no class is its own class of one."""

    def __init__(self, rep: np.ndarray, member: np.ndarray) -> None:
        order = np.lexsort((member, rep))
        self.member = member[order].astype(np.int64)
        starts, self.sizes = _groups(rep[order])
        self.starts = starts
        self.reps = rep[order][starts].astype(np.int64)

    def _find(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not len(self.reps):
            return np.zeros(len(g), np.int64), np.zeros(len(g), bool)
        pos = np.minimum(np.searchsorted(self.reps, g), len(self.reps) - 1)
        return pos, self.reps[pos] == g

    def size(self, g: np.ndarray) -> np.ndarray:
        pos, hit = self._find(g)
        return np.where(hit, self.sizes[pos] if len(self.reps) else 1, 1).astype(np.int64)

    def nth(self, g: np.ndarray, k: np.ndarray) -> np.ndarray:
        """The ``k``-th smallest member of the class of rep ``g`` (``k < size(g)``)."""
        pos, hit = self._find(g)
        if not len(self.reps):
            return g
        at = np.minimum(self.starts[pos] + k, len(self.member) - 1)
        return np.where(hit, self.member[at], g)

    def cross(
        self, a: np.ndarray, b: np.ndarray, x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every pair ``(member of a[n], member of b[n])`` with the value ``x[n]``, ordered
        ``lo < hi``: what the rep pair ``(a[n], b[n])`` stands for."""
        sa, sb = self.size(a), self.size(b)
        n = sa * sb
        k = np.repeat(np.arange(len(a)), n)
        t = _ranks(n)
        ai, bj = self.nth(a[k], t // sb[k]), self.nth(b[k], t % sb[k])
        return np.minimum(ai, bj), np.maximum(ai, bj), x[k]

    def within(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Every pair of members ``lo < hi`` of the classes whose rep is in ``[lo, hi)``."""
        sel = np.flatnonzero((self.reps >= lo) & (self.reps < hi))
        starts, sizes = self.starts[sel], self.sizes[sel]
        elem = np.repeat(starts, sizes) + _ranks(sizes)  # indices into member
        later = np.repeat(sizes, sizes) - 1 - _ranks(sizes)  # members after each one
        first = np.repeat(elem, later)
        second = first + 1 + _ranks(later)
        return self.member[first], self.member[second]


def _estimate(a: np.ndarray, b: np.ndarray) -> float:
    return int(np.count_nonzero(a == b)) / len(a) if len(a) else 0.0


# --------------------------------------------------------------------------------------------
# The stages (each a task: reads and writes files under `work`, returns a small summary)


def _stage_lines(ctx: dict[str, Any], p: int) -> dict[str, Any]:
    part = ctx["parts"][p]
    return {"lines": _count_lines(_abs(ctx, part["path"]), part["start"], part["end"])}


def _stage_sign(ctx: dict[str, Any], p: int) -> dict[str, Any]:
    s, work = ctx["settings"], ctx["work"]
    t0 = time.perf_counter()
    part = _Partition(ctx, p, ctx["line_base"][p])
    records = part.records()
    texts = [r.text for r in records]
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    sigs = _hasher(s).signatures(texts, ctx["num_threads"], "strict")
    sigs32 = np.ascontiguousarray(sigs, dtype=np.uint32).reshape(len(texts), s["num_perm"])
    empty = (sigs32 == _EMPTY_SIG).all(axis=1) if len(texts) else np.zeros(0, bool)
    keys = (
        _core.band_keys(sigs32, s["bands"], s["rows"])
        if len(texts)
        else np.zeros((0, s["bands"]), np.uint64)
    )
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    arrays = {"keys": keys, "empty": empty, "lengths": lengths}
    if s["verify"] == "minhash":
        arrays["sigs"] = sigs32
    _save_npz(_p(work, "sign", f"part-{p:05d}.npz"), **arrays)
    encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
    n_bytes = sum(map(len, encoded))
    # exact copies: the digest of the very text that was shingled (equal texts, equal shingle
    # sets, equal band keys), sent to a shard by digest for the `copies` stage
    docs = np.flatnonzero(~empty)
    digest = np.frombuffer(
        b"".join(hashlib.blake2b(encoded[i], digest_size=16).digest() for i in docs.tolist()),
        dtype="<u8",
    ).reshape(-1, 2)
    rows = np.empty(len(docs), _DIGEST_DTYPE)
    rows["d0"], rows["d1"] = digest[:, 0], digest[:, 1]
    rows["part"], rows["local"] = p, docs
    _save_sharded(work, "digests", p, rows, rows["d0"] % np.uint64(ctx["n_shards"]), ctx)
    _save_ids(work, p, [r.id for r in records])
    return {
        "n": len(texts),
        "n_empty": int(empty.sum()),
        "n_bytes": n_bytes,
        "reader": part.info(),
        "seconds": {"read": t_read, "signatures": time.perf_counter() - t0},
    }


def _stage_copies(ctx: dict[str, Any], sh: int) -> dict[str, Any]:
    """Exact-copy classes of one digest shard: documents with equal digests, the smallest one
    their rep. Writes the class lists (rep, member) to the rep's partition (``classes/``) and
    each copy's rep to the copy's partition (``copyof/``); classes of one are left out."""
    work, offsets = ctx["work"], np.asarray(ctx["offsets"])
    rows = _load_shard(work, "digests", sh, len(offsets), _DIGEST_DTYPE)
    gid = offsets[rows["part"].astype(np.int64)] + rows["local"].astype(np.int64)
    order = np.lexsort((gid, rows["d1"], rows["d0"]))
    gid = gid[order]
    starts, sizes = _groups(rows["d0"][order], rows["d1"][order])
    rep = np.repeat(gid[starts], sizes)
    multi = np.repeat(sizes, sizes) > 1
    rep, member = rep[multi], gid[multi]
    copy = member != rep
    for name, by, arrays in (
        ("classes", rep, {"rep": rep, "member": member}),
        ("copyof", member[copy], {"gid": member[copy], "rep": rep[copy]}),
    ):
        owner = _part_of(offsets, by)
        for a in np.unique(owner).tolist():
            sel = owner == a
            _save_npz(
                _p(work, name, f"part-{a:05d}", f"shard-{sh:05d}.npz"),
                **{k: v[sel] for k, v in arrays.items()},
            )
    big = sizes[sizes > 1]
    return {
        "classes": len(big),
        "copies": int(big.sum() - len(big)),
        "largest_class": int(big.max()) if len(big) else 0,
    }


def _stage_scatter(ctx: dict[str, Any], p: int) -> dict[str, Any]:
    """Partition ``p``'s ``(band, key, doc)`` rows to bucket shards, for its non-empty documents
    that are no exact copy of a smaller one (a copy is in every bucket its rep is in)."""
    work, n_shards = ctx["work"], ctx["n_shards"]
    first = int(ctx["offsets"][p])
    z = _load_npz(_p(work, "sign", f"part-{p:05d}.npz"))
    keys, empty = z["keys"], z["empty"]
    docs = np.flatnonzero(~empty)
    (copies,) = _load_all(_p(work, "copyof", f"part-{p:05d}", "shard-*.npz"), "gid")
    docs = docs[~np.isin(docs, copies - first)]
    n_bands = keys.shape[1]
    key = keys[docs].reshape(-1)
    band = np.tile(np.arange(n_bands, dtype=np.uint32), len(docs))
    rows = np.empty(len(key), _SHUFFLE_DTYPE)
    rows["band"], rows["key"] = band, key
    rows["gid"] = np.repeat(docs + first, n_bands)
    shard = ((key + band.astype(np.uint64)) % np.uint64(n_shards)).astype(np.int64)
    _save_sharded(work, "shuffle", p, rows, shard, ctx)
    return {"entries": len(key), "copies_left_out": len(copies)}


def _stage_bucket(ctx: dict[str, Any], sh: int) -> dict[str, Any]:
    work, offsets = ctx["work"], np.asarray(ctx["offsets"])
    rows = _load_shard(work, "shuffle", sh, len(offsets), _SHUFFLE_DTYPE)
    if not len(rows):
        return {"pairs": 0, "entries": 0, "largest_bucket": 0}
    band, key, gid = rows["band"], rows["key"], rows["gid"]
    pairs = _bucket_pairs(band, key, gid.astype(np.int64))
    lo, _ = _unpack(pairs)
    owner = _part_of(offsets, lo)
    cuts = np.searchsorted(owner, np.arange(len(offsets) + 1))  # pairs sorted by lo
    for a in range(len(offsets)):
        x, y = cuts[a], cuts[a + 1]
        if x < y:
            _save_npz(_p(work, "cand", f"part-{a:05d}", f"shard-{sh:05d}.npz"), pairs=pairs[x:y])
    # the largest bucket, for the record (quadratic buckets are what costs)
    order = np.lexsort((key, band))
    _, sizes = _groups(band[order], key[order])
    return {"pairs": len(pairs), "entries": len(gid), "largest_bucket": int(sizes.max())}


def _request(work: str, rnd: str, a: int, offsets: np.ndarray, gids: np.ndarray) -> list[int]:
    """Ask the partitions holding ``gids`` (other than ``a``) for their texts; returns which."""
    need = np.unique(gids)
    owner = _part_of(offsets, need)
    need, owner = need[owner != a], owner[owner != a]
    asked = []
    for b in np.unique(owner):
        _save_npz(_p(work, rnd, "req", f"to-{b:05d}", f"from-{a:05d}.npz"), gids=need[owner == b])
        asked.append(int(b))
    return asked


def _stage_edges(ctx: dict[str, Any], a: int) -> dict[str, Any]:
    work, offsets = ctx["work"], np.asarray(ctx["offsets"])
    files = sorted(_glob.glob(_p(work, "cand", f"part-{a:05d}", "shard-*.npz")))
    pairs = (
        np.unique(np.concatenate([_load_npz(f)["pairs"] for f in files]))
        if files
        else np.empty(0, np.uint64)
    )
    _save_npz(_p(work, "edges", f"part-{a:05d}.npz"), pairs=pairs)
    _, hi = _unpack(pairs)
    asked = _request(work, "r1", a, offsets, hi)
    return {"candidates": len(pairs), "asked": asked}


def _stage_fetch(ctx: dict[str, Any], b: int, rnd: str) -> dict[str, Any]:
    """Answer the requests made to partition ``b``: ids and texts (signatures for
    ``verify="minhash"``) of the asked documents, one file per asking partition."""
    work, offsets = ctx["work"], np.asarray(ctx["offsets"])
    reqs = sorted(_glob.glob(_p(work, rnd, "req", f"to-{b:05d}", "from-*.npz")))
    if not reqs:
        return {"sent": 0}
    first = int(offsets[b])
    recs = _Partition(ctx, b, ctx["line_base"][b]).records()
    sigs = None
    if ctx["settings"]["verify"] == "minhash":
        sigs = _load_npz(_p(work, "sign", f"part-{b:05d}.npz"))["sigs"]
    # round 1 also sends the exact-copy classes of the asked documents (reps of this partition)
    crep, cmember = (
        _load_all(_p(work, "classes", f"part-{b:05d}", "shard-*.npz"), "rep", "member")
        if rnd == "r1"
        else (np.empty(0, np.int64),) * 2
    )
    sent = 0
    for f in reqs:
        a = int(os.path.basename(f)[5:10])
        gids = _load_npz(f)["gids"]
        local = gids - first
        payload = {
            "gid": gids.tolist(),
            "id": [recs[i].id for i in local],
            "text": [recs[i].text for i in local],
        }
        _save_json(_p(work, rnd, "got", f"to-{a:05d}", f"from-{b:05d}.json"), payload)
        if sigs is not None:
            _save_npz(_p(work, rnd, "got", f"to-{a:05d}", f"from-{b:05d}.npz"), sigs=sigs[local])
        asked = np.isin(crep, gids)
        if asked.any():
            _save_npz(
                _p(work, rnd, "got", f"to-{a:05d}", f"from-{b:05d}.classes.npz"),
                rep=crep[asked],
                member=cmember[asked],
            )
        sent += len(gids)
    return {"sent": sent}


class _Docs:
    """Ids, texts and (lazily) shingle sets or signatures of the documents a partition needs:
    its own plus what it fetched in round ``rnd``."""

    def __init__(self, ctx: dict[str, Any], a: int, rnd: str, recs: list[Record]) -> None:
        self.s = s = ctx["settings"]
        self.first = int(ctx["offsets"][a])
        self.recs = recs
        self.other_id: dict[int, str] = {}
        self.other_text: dict[int, str] = {}
        self.other_sig: dict[int, np.ndarray] = {}
        self.own_sigs = None
        work = ctx["work"]
        if s["verify"] == "minhash":
            self.own_sigs = _load_npz(_p(work, "sign", f"part-{a:05d}.npz"))["sigs"]
        for f in sorted(_glob.glob(_p(work, rnd, "got", f"to-{a:05d}", "from-*.json"))):
            got = _load_json(f)
            self.other_id.update(zip(got["gid"], got["id"], strict=True))
            self.other_text.update(zip(got["gid"], got["text"], strict=True))
            if self.own_sigs is not None:
                sigs = _load_npz(f[: -len(".json")] + ".npz")["sigs"]
                self.other_sig.update(zip(got["gid"], sigs, strict=True))
        self._sets: dict[int, np.ndarray] = {}

    def id(self, g: int) -> str:
        i = g - self.first
        return self.recs[i].id if 0 <= i < len(self.recs) else self.other_id[g]

    def text(self, g: int) -> str:
        i = g - self.first
        return self.recs[i].text if 0 <= i < len(self.recs) else self.other_text[g]

    def _sig(self, g: int) -> np.ndarray:
        i = g - self.first
        return self.own_sigs[i] if 0 <= i < len(self.recs) else self.other_sig[g]

    def similarities(self, ii: np.ndarray, jj: np.ndarray, num_threads: int | None) -> np.ndarray:
        """Similarity of each pair ``(ii[n], jj[n])``: the signature estimate, or the exact
        Jaccard of the shingle sets (each document's set built once, in the Rust core)."""
        if self.own_sigs is not None:
            return np.array(
                [_estimate(self._sig(g), self._sig(h)) for g, h in zip(ii.tolist(), jj.tolist())],
                np.float64,
            )
        docs = np.unique(np.concatenate([ii, jj]))
        s = self.s
        return _core.jaccard_pairs(
            [self.text(g) for g in docs.tolist()],
            np.searchsorted(docs, ii).astype(np.uint32),
            np.searchsorted(docs, jj).astype(np.uint32),
            s["k"],
            s["shingle"],
            s["normalize"],
            num_threads,
        )


def _stage_verify(ctx: dict[str, Any], a: int) -> dict[str, Any]:
    """Verify partition ``a``'s candidate pairs (of reps), and send each pair at or above the
    threshold, expanded to the members of both classes, to the partition of its smaller document;
    so are the pairs within the classes whose rep is in ``a`` (similarity 1.0)."""
    work, t = ctx["work"], ctx["settings"]["threshold"]
    offsets = np.asarray(ctx["offsets"])
    first, n = int(offsets[a]), ctx["counts"][a]
    pairs = _load_npz(_p(work, "edges", f"part-{a:05d}.npz"))["pairs"]
    ii, jj = _unpack(pairs)
    docs = _Docs(
        ctx, a, "r1", _Partition(ctx, a, ctx["line_base"][a]).records() if len(pairs) else []
    )
    sim = docs.similarities(ii, jj, ctx["num_threads"]) if len(pairs) else np.empty(0)
    ok = sim >= t
    classes = _Classes(
        *(
            np.concatenate(both)
            for both in zip(
                _load_all(_p(work, "classes", f"part-{a:05d}", "shard-*.npz"), "rep", "member"),
                _load_all(
                    _p(work, "r1", "got", f"to-{a:05d}", "from-*.classes.npz"), "rep", "member"
                ),
                strict=True,
            )
        )
    )
    lo, hi, x = classes.cross(ii[ok], jj[ok], sim[ok])
    wlo, whi = classes.within(first, first + n)
    lo, hi = np.concatenate([lo, wlo]), np.concatenate([hi, whi])
    x = np.concatenate([x, np.ones(len(wlo))])
    owner = _part_of(offsets, lo)
    for c in np.unique(owner).tolist():
        sel = owner == c
        _save_npz(
            _p(work, "xpairs", f"to-{c:05d}", f"from-{a:05d}.npz"),
            i=lo[sel],
            j=hi[sel],
            jaccard=x[sel],
        )
    # the local engine's candidates: every pair of documents sharing a bucket
    in_buckets = int((classes.size(ii) * classes.size(jj)).sum()) + len(wlo)
    return {"pairs": len(x), "candidates": len(pairs), "doc_pairs_in_buckets": in_buckets}


def _stage_pairs(ctx: dict[str, Any], c: int) -> dict[str, Any]:
    """Partition ``c``'s verified pairs (those whose smaller document is in ``c``), sorted, with
    the ids of both documents: ``pairs/part-N.jsonl``, and ``pairs/part-N.npz`` (i, j, jaccard)
    for the components stage."""
    work, offsets = ctx["work"], np.asarray(ctx["offsets"])
    i, j, x = _load_all(_p(work, "xpairs", f"to-{c:05d}", "from-*.npz"), "i", "j", "jaccard")
    x = x.astype(np.float64)
    order = np.argsort(_pack(i, j), kind="stable")
    i, j, x = i[order], j[order], x[order]
    _save_npz(_p(work, "pairs", f"part-{c:05d}.npz"), i=i, j=j, jaccard=x)
    ids = _ids_of(work, offsets, np.concatenate([i, j]))
    id_a, id_b = ids[: len(i)], ids[len(i) :]
    _write_rows(
        _p(work, "pairs", f"part-{c:05d}.jsonl"),
        (
            {"id_a": p, "id_b": q, "jaccard": v}
            for p, q, v in zip(id_a, id_b, x.tolist(), strict=True)
        ),
    )
    return {"pairs": len(x)}


def _stage_components(ctx: dict[str, Any], _: int) -> dict[str, Any]:
    work, s = ctx["work"], ctx["settings"]
    offsets = np.asarray(ctx["offsets"])
    n_parts = len(offsets)
    ii, jj = [], []
    for a in range(n_parts):
        z = _load_npz(_p(work, "pairs", f"part-{a:05d}.npz"))
        ii.append(z["i"])
        jj.append(z["j"])
    i = np.concatenate(ii) if ii else np.empty(0, np.int64)
    j = np.concatenate(jj) if jj else np.empty(0, np.int64)
    if len(i) > ctx["components_max_edges"]:
        raise TextsieveError(
            f"{len(i):,} verified pairs: more than the {ctx['components_max_edges']:,} the "
            "in-memory components stage takes (components_max_edges); see docs/distributed.md"
        )
    t0 = time.perf_counter()
    # the core's union-find: roots are the smallest document of each component
    nodes, root = (
        a.astype(np.int64)
        for a in _core.connected_components(i.astype(np.uint64), j.astype(np.uint64))
    )
    owner = _part_of(offsets, nodes)
    lengths = np.zeros(len(nodes), np.int64)
    if s["keep"] == "longest":
        for a in np.unique(owner):
            sel = owner == a
            lengths[sel] = _load_npz(_p(work, "sign", f"part-{a:05d}.npz"))["lengths"][
                nodes[sel] - offsets[a]
            ]
    if s.get("cluster", "greedy") == "greedy":
        # the greedy rule over the verified pairs (pairs below the threshold decide nothing)
        x = (
            np.concatenate(
                [
                    _load_npz(_p(work, "pairs", f"part-{a:05d}.npz"))["jaccard"]
                    for a in range(n_parts)
                ]
            )
            if n_parts
            else np.empty(0)
        )
        rank = np.empty(len(nodes), np.uint64)
        rank[np.lexsort((nodes, -lengths))] = np.arange(len(nodes), dtype=np.uint64)
        dup, _ = _core.greedy_pairs(
            i.astype(np.uint64),
            j.astype(np.uint64),
            x.astype(np.float64),
            nodes.astype(np.uint64),
            rank,
            float(s["threshold"]),
        )
        rep = np.where(dup >= 0, dup, nodes)
    elif s["keep"] == "longest":
        order = np.lexsort((nodes, -lengths, root))
        first = np.ones(len(order), bool)
        first[1:] = root[order][1:] != root[order][:-1]
        roots, reps = root[order][first], nodes[order][first]
        rep = reps[np.searchsorted(roots, root)]
    else:
        rep = root
    # per partition: its documents in clusters, their kept document; round 2 asks for the
    # kept documents' texts and ids
    cuts = np.searchsorted(owner, np.arange(n_parts + 1))
    for a in range(n_parts):
        x, y = cuts[a], cuts[a + 1]
        _save_npz(_p(work, "comp", f"part-{a:05d}.npz"), gid=nodes[x:y], rep=rep[x:y])
        removed = nodes[x:y] != rep[x:y]
        _request(work, "r2", a, offsets, rep[x:y][removed])
    # cluster sizes (clusters with duplicates) for the stats and report
    reps_u, sizes = np.unique(rep, return_counts=True)
    _save_npz(
        _p(work, "comp", "clusters.npz"),
        rep=reps_u,
        size=sizes,
        jaccard=np.concatenate(
            [_load_npz(_p(work, "pairs", f"part-{a:05d}.npz"))["jaccard"] for a in range(n_parts)]
        )
        if n_parts
        else np.empty(0),
    )
    return {
        "edges": len(i),
        "nodes": len(nodes),
        "components": len(reps_u),
        "mode": f"in memory, {len(i):,} edges <= {ctx['components_max_edges']:,}",
        "seconds": time.perf_counter() - t0,
    }


# --------------------------------------------------------------------------------------------
# Distributed components: large-star / small-star (Kiveris et al. 2014, "Connected Components
# in MapReduce and Beyond"), used when the verified pairs are more than `components_max_edges`.
#
# The edges live in shard files under `cc/`: every step is a task per shard that reads the rows
# routed to it (one file per source task, sorted by destination shard, as in `scatter`), applies
# the star step to each node's neighbours, and routes its output edges to the shards of the next
# step's keys. Rows are `(u, v)`: the edge `{u, v}` as seen from its key `u`. The star steps never
# make more edges than they read, so a shard holds about `edges / shards` rows (plus the
# neighbourhoods of high-degree nodes, which all land in one shard: at the end, a component's
# smallest document has every other member as its neighbour).

_EDGE_DTYPE = np.dtype([("u", "<u4"), ("v", "<u4")])
_ROOT_DTYPE = np.dtype([("node", "<u4"), ("root", "<u4")])
_LENGTH_DTYPE = np.dtype([("node", "<u4"), ("root", "<u4"), ("length", "<i8")])
_REP_DTYPE = np.dtype([("node", "<u4"), ("rep", "<u4")])

_FIB = np.uint64(0x9E3779B97F4A7C15)


def _shard_of(nodes: np.ndarray, n: int) -> np.ndarray:
    """The shard of each document number: multiply-shift (Fibonacci) hashing, then mod ``n``, so
    that neighbouring numbers (one partition's documents) spread over the shards."""
    h = (np.asarray(nodes).astype(np.uint64) * _FIB) >> np.uint64(32)
    return (h % np.uint64(n)).astype(np.int64)


def _distinct(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows ``(u, v)``, sorted by ``u`` then ``v`` (as int64). A sort and a mask:
    NumPy 2's ``np.unique`` hashes first, several times slower on these arrays."""
    p = np.sort(_pack(u, v))
    if len(p):
        new = np.ones(len(p), bool)
        new[1:] = p[1:] != p[:-1]
        p = p[new]
    return _unpack(p)


def _group_starts(u: np.ndarray) -> np.ndarray:
    """Where each run of equal keys starts in the sorted ``u``."""
    new = np.ones(len(u), bool)
    new[1:] = u[1:] != u[:-1]
    return np.flatnonzero(new)


def _large_star(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The large-star step over rows ``(u, v)``: every edge in both directions, grouped by ``u``
    (all rows of a key must be here). For each node ``u`` with neighbours ``N(u)``,
    ``m = min(N(u) + {u})``, and each larger neighbour ``v > u`` is linked to ``m`` instead.

    Returns the new edges ``(hi, lo)`` (``hi > lo``, possibly repeated) and how many of them
    differ from the edge ``(v, u)`` they replace (0: the step changed nothing)."""
    if not len(u):
        e = np.empty(0, np.int64)
        return e, e, 0
    u, v = _distinct(u, v)
    starts = _group_starts(u)
    m = np.minimum(np.minimum.reduceat(v, starts), u[starts])
    m_row = np.repeat(m, np.diff(np.append(starts, len(u))))
    up = v > u
    changed = int(np.count_nonzero(up & (m_row < u)))
    return v[up], m_row[up], changed


def _small_star(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The small-star step over rows ``(u, v)`` with ``v < u``: every edge once, keyed by its
    larger end (all rows of a key must be here). For each node ``u`` with smaller neighbours
    ``N(u)``, ``m = min(N(u))``, and ``u`` and every other ``v`` in ``N(u)`` are linked to ``m``.

    Returns the new edges ``(hi, lo)`` (``hi > lo``, possibly repeated) and how many of them
    differ from the edge ``(u, v)`` they replace (0: the step changed nothing)."""
    if not len(u):
        e = np.empty(0, np.int64)
        return e, e, 0
    u, v = _distinct(u, v)
    starts = _group_starts(u)
    m = np.minimum.reduceat(v, starts)
    m_row = np.repeat(m, np.diff(np.append(starts, len(u))))
    moved = v != m_row
    hi = np.concatenate([u[starts], v[moved]])
    lo = np.concatenate([m, m_row[moved]])
    return hi, lo, int(np.count_nonzero(moved))


def _star_roots(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The components of a converged graph, rows ``(u, v)`` (every edge in both directions,
    grouped by ``u``): each component is a star whose centre is its smallest document, and the
    centre's rows list all its members. Returns ``(nodes, root)`` for the centres among the keys
    here and their members, sorted by root then node. Raises if the graph is not made of stars
    (a leaf with more than one neighbour)."""
    if not len(u):
        e = np.empty(0, np.int64)
        return e, e
    u, v = _distinct(u, v)
    starts = _group_starts(u)
    keys = u[starts]
    lowest = np.minimum.reduceat(v, starts)
    degree = np.diff(np.append(starts, len(u)))
    centre = lowest > keys
    if (degree[~centre] != 1).any():
        raise TextsieveError("components: large-star/small-star stopped before converging")
    rows = np.repeat(centre, degree)
    nodes = np.concatenate([keys[centre], v[rows]])
    root = np.concatenate([keys[centre], u[rows]])
    order = np.lexsort((nodes, root))
    return nodes[order], root[order]


def _star_components(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Connected components of the edges ``(i, j)`` by alternating large-star and small-star
    steps until a round changes nothing, in one process: the computation the distributed
    stages do shard by shard (what the tests compare with the union-find). Returns ``(nodes,
    root, rounds)``, nodes sorted, root = the smallest document of each node's component."""
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    hi, lo = np.maximum(i, j), np.minimum(i, j)
    keep = hi != lo  # a self-loop joins nothing
    hi, lo = hi[keep], lo[keep]
    rounds = 0
    while True:
        rounds += 1
        if rounds > COMPONENTS_MAX_ROUNDS:
            raise TextsieveError(f"components: no convergence in {COMPONENTS_MAX_ROUNDS} rounds")
        hi, lo, c1 = _large_star(np.concatenate([hi, lo]), np.concatenate([lo, hi]))
        hi, lo, c2 = _small_star(hi, lo)
        if c1 == 0 and c2 == 0:
            break
    nodes, root = _star_roots(np.concatenate([hi, lo]), np.concatenate([lo, hi]))
    order = np.argsort(nodes, kind="stable")
    return nodes[order], root[order], rounds


def _route(
    work: str, step: str, src: int, dest: np.ndarray, n_dest: int, dtype: np.dtype, **cols: Any
) -> int:
    """Write task ``src``'s rows of ``step`` as one file sorted by destination (a shard or a
    partition), and the row range of each destination beside it (read by :func:`_gather`)."""
    order = np.argsort(dest, kind="stable")
    rows = np.empty(len(order), dtype)
    for name, col in cols.items():
        rows[name] = np.asarray(col)[order]
    cuts = np.searchsorted(dest[order], np.arange(n_dest + 1)).astype(np.int64)
    with _work_file(_p(work, "cc", step, f"from-{src:05d}.npy")) as fh:
        np.save(fh, rows)
    with _work_file(_p(work, "cc", step, f"from-{src:05d}.cuts.npy")) as fh:
        np.save(fh, cuts)
    return len(rows)


def _gather(work: str, step: str, n_src: int, dest: int, dtype: np.dtype) -> np.ndarray:
    """The rows of ``step`` routed to ``dest``, from each of its ``n_src`` source files."""
    chunks = []
    for t in range(n_src):
        cuts = np.load(_p(work, "cc", step, f"from-{t:05d}.cuts.npy"))
        x, y = int(cuts[dest]), int(cuts[dest + 1])
        if x < y:
            rows = np.load(_p(work, "cc", step, f"from-{t:05d}.npy"), mmap_mode="r")
            chunks.append(np.array(rows[x:y]))
    return np.concatenate(chunks) if chunks else np.empty(0, dtype)


def _route_edges(
    ctx: dict[str, Any], step: str, src: int, hi: np.ndarray, lo: np.ndarray, both: bool
) -> int:
    """Route the edges ``(hi, lo)`` to the shards of the next step: keyed by both ends (for
    large-star, which needs every neighbour of a node) or by the larger one (for small-star)."""
    hi, lo = _distinct(hi, lo)
    if both:
        u, v = np.concatenate([hi, lo]), np.concatenate([lo, hi])
    else:
        u, v = hi, lo
    n = ctx["cc"]["shards"]
    return _route(ctx["work"], step, src, _shard_of(u, n), n, _EDGE_DTYPE, u=u, v=v)


def _stage_cc_init(ctx: dict[str, Any], a: int) -> dict[str, Any]:
    """A partition's verified pairs, routed to the shards of the first large-star step."""
    z = _load_npz(_p(ctx["work"], "pairs", f"part-{a:05d}.npz"))
    return {"edges": _route_edges(ctx, "init", a, z["j"], z["i"], both=True)}


def _stage_cc_large(ctx: dict[str, Any], s: int, r: int) -> dict[str, Any]:
    n = ctx["cc"]["shards"]
    src, n_src = ("init", len(ctx["parts"])) if r == 1 else (f"small-r{r - 1:03d}", n)
    rows = _gather(ctx["work"], src, n_src, s, _EDGE_DTYPE)
    hi, lo, changed = _large_star(rows["u"].astype(np.int64), rows["v"].astype(np.int64))
    out = _route_edges(ctx, f"large-r{r:03d}", s, hi, lo, both=False)
    return {"rows_in": len(rows), "rows_out": out, "changed": changed}


def _stage_cc_small(ctx: dict[str, Any], s: int, r: int) -> dict[str, Any]:
    n = ctx["cc"]["shards"]
    rows = _gather(ctx["work"], f"large-r{r:03d}", n, s, _EDGE_DTYPE)
    hi, lo, changed = _small_star(rows["u"].astype(np.int64), rows["v"].astype(np.int64))
    out = _route_edges(ctx, f"small-r{r:03d}", s, hi, lo, both=True)
    return {"rows_in": len(rows), "rows_out": out, "changed": changed}


def _save_cluster_sizes(work: str, s: int, root: np.ndarray, rep: np.ndarray) -> int:
    """A shard's clusters (its rows sorted by root): kept document and size of each."""
    starts = _group_starts(root)
    _save_npz(
        _p(work, "cc", "clusters", f"shard-{s:05d}.npz"),
        rep=rep[starts],
        size=np.diff(np.append(starts, len(root))).astype(np.int64),
    )
    return len(starts)


def _stage_cc_roots(ctx: dict[str, Any], s: int) -> dict[str, Any]:
    """After convergence: each centre (a component's smallest document) in this shard lists its
    members. With ``keep="first"`` the root is the kept document: cluster sizes, and (document,
    kept document) routed to the document's partition; with ``keep="longest"`` (document, root)
    go to the document's partition to fetch its length."""
    work, n = ctx["work"], ctx["cc"]["shards"]
    offsets = np.asarray(ctx["offsets"])
    rows = _gather(work, f"small-r{ctx['cc']['rounds']:03d}", n, s, _EDGE_DTYPE)
    nodes, root = _star_roots(rows["u"].astype(np.int64), rows["v"].astype(np.int64))
    owner, n_parts = _part_of(offsets, nodes), len(offsets)
    if ctx["settings"]["keep"] == "first":
        n_comp = _save_cluster_sizes(work, s, root, root)
        _route(work, "reps", s, owner, n_parts, _REP_DTYPE, node=nodes, rep=root)
    else:
        n_comp = len(_group_starts(root))
        _route(work, "roots", s, owner, n_parts, _ROOT_DTYPE, node=nodes, root=root)
    return {"nodes": len(nodes), "components": n_comp}


def _stage_cc_lengths(ctx: dict[str, Any], a: int) -> dict[str, Any]:
    """``keep="longest"``: a partition's documents in clusters with their lengths, routed to the
    shard of their root."""
    work, n = ctx["work"], ctx["cc"]["shards"]
    rows = _gather(work, "roots", n, a, _ROOT_DTYPE)
    first = int(ctx["offsets"][a])
    lengths = (
        _load_npz(_p(work, "sign", f"part-{a:05d}.npz"))["lengths"][
            rows["node"].astype(np.int64) - first
        ]
        if len(rows)
        else np.empty(0, np.int64)
    )
    dest = _shard_of(rows["root"], n)
    _route(
        work, "lengths", a, dest, n, _LENGTH_DTYPE,
        node=rows["node"], root=rows["root"], length=lengths,
    )  # fmt: skip
    return {"nodes": len(rows)}


def _stage_cc_reps(ctx: dict[str, Any], s: int) -> dict[str, Any]:
    """``keep="longest"``: per root of this shard, the member with the most characters (ties to
    the smallest number), as in the in-memory path; cluster sizes, and (document, kept document)
    routed to the document's partition."""
    work, offsets = ctx["work"], np.asarray(ctx["offsets"])
    rows = _gather(work, "lengths", len(offsets), s, _LENGTH_DTYPE)
    node, root = rows["node"].astype(np.int64), rows["root"].astype(np.int64)
    order = np.lexsort((node, -rows["length"], root))
    node, root = node[order], root[order]
    starts = _group_starts(root)
    rep = np.repeat(node[starts], np.diff(np.append(starts, len(root))))
    n_comp = _save_cluster_sizes(work, s, root, rep)
    owner = _part_of(offsets, node)
    _route(work, "reps", s, owner, len(offsets), _REP_DTYPE, node=node, rep=rep)
    return {"nodes": len(node), "components": n_comp}


def _stage_cc_parts(ctx: dict[str, Any], a: int) -> dict[str, Any]:
    """A partition's documents in clusters and their kept documents (``comp/part-N.npz``, as the
    in-memory path writes it), and round 2's requests for the kept documents' texts."""
    work, offsets = ctx["work"], np.asarray(ctx["offsets"])
    rows = _gather(work, "reps", ctx["cc"]["shards"], a, _REP_DTYPE)
    order = np.argsort(rows["node"], kind="stable")
    gid, rep = rows["node"][order].astype(np.int64), rows["rep"][order].astype(np.int64)
    _save_npz(_p(work, "comp", f"part-{a:05d}.npz"), gid=gid, rep=rep)
    _request(work, "r2", a, offsets, rep[gid != rep])
    return {"nodes": len(gid), "removed": int(np.count_nonzero(gid != rep))}


def _stage_cc_clusters(ctx: dict[str, Any], _: int) -> dict[str, Any]:
    """``comp/clusters.npz`` from the shards' cluster sizes (one row per cluster with duplicates,
    sorted by kept document) and the verified pairs' similarities for the report's histogram:
    all of them up to :data:`COMPONENTS_JACCARD_SAMPLE`, else every k-th in pair order."""
    work, n_parts = ctx["work"], len(ctx["parts"])
    parts = [
        _load_npz(_p(work, "cc", "clusters", f"shard-{s:05d}.npz"))
        for s in range(ctx["cc"]["shards"])
    ]
    rep = np.concatenate([z["rep"] for z in parts]).astype(np.int64)
    size = np.concatenate([z["size"] for z in parts]).astype(np.int64)
    order = np.argsort(rep, kind="stable")
    step = max(1, math.ceil(ctx["cc"]["edges"] / COMPONENTS_JACCARD_SAMPLE))
    jac, seen = [], 0
    for a in range(n_parts):
        x = _load_npz(_p(work, "pairs", f"part-{a:05d}.npz"))["jaccard"]
        jac.append(x[(-seen) % step :: step])  # global positions 0, step, 2 step, ...
        seen += len(x)
    jaccard = np.concatenate(jac) if jac else np.empty(0)
    _save_npz(_p(work, "comp", "clusters.npz"), rep=rep[order], size=size[order], jaccard=jaccard)
    return {"clusters": len(rep), "jaccard": len(jaccard), "jaccard_every": step}


def _stage_write(ctx: dict[str, Any], a: int) -> dict[str, Any]:
    work, rs = ctx["work"], ctx["reader"]
    recs = _Partition(ctx, a, ctx["line_base"][a]).records()
    comp = _load_npz(_p(work, "comp", f"part-{a:05d}.npz"))
    first = int(ctx["offsets"][a])
    docs = _Docs(ctx, a, "r2", recs)
    rep_of = dict(zip(comp["gid"].tolist(), comp["rep"].tolist(), strict=True))
    removed_rows = []
    pair_rows = []
    kept_lines = []
    gone = [
        (first + n, rep_of[first + n])
        for n in range(len(recs))
        if rep_of.get(first + n, first + n) != first + n
    ]
    if gone:
        gg, rr = (np.array(c, np.int64) for c in zip(*gone, strict=True))
        sims = dict(
            zip(gg.tolist(), docs.similarities(gg, rr, ctx["num_threads"]).tolist(), strict=True)
        )
    else:
        sims = {}
    for local, rec in enumerate(recs):
        g = first + local
        r = rep_of.get(g, g)
        if r == g:
            kept_lines.append(
                record_json_line(rec, text_field=rs["text_field"], id_field=rs["id_field"])
            )
            continue
        x = sims[g]
        jac = x if math.isfinite(x) else None
        removed_rows.append(
            {
                "id": rec.id,
                "cluster": r,
                "duplicate_of": docs.id(r),
                "jaccard": jac,
                "source": rec.source,
                "line": rec.line,
            }
        )
        pair_rows.append({"id": rec.id, "duplicate_of": docs.id(r), "jaccard": jac})
    with _work_file(_p(work, "kept", f"part-{a:05d}.jsonl"), "wb") as fh:
        fh.writelines(kept_lines)
    _write_rows(_p(work, "removed", f"part-{a:05d}.jsonl"), removed_rows)
    _write_rows(_p(work, "removals", f"part-{a:05d}.jsonl"), pair_rows)
    _save_npz(
        _p(work, "removed", f"part-{a:05d}.npz"),
        gid=np.array(sorted(sims), np.int64),
        jaccard=np.array([sims[g] for g in sorted(sims)], np.float64),
    )
    return {"kept": len(kept_lines), "removed": len(removed_rows)}


def _stage_snippets(ctx: dict[str, Any], a: int, gids: list[int]) -> dict[int, tuple[str, str]]:
    """Ids and the first 2000 characters of a few documents of partition ``a`` (for the report)."""
    recs = _Partition(ctx, a, ctx["line_base"][a]).records()
    first = int(ctx["offsets"][a])
    return {g: (recs[g - first].id, recs[g - first].text[:2000]) for g in gids}


_STAGE_FUNCS: dict[str, Callable[..., dict[str, Any]]] = {
    "lines": _stage_lines,
    "sign": _stage_sign,
    "copies": _stage_copies,
    "scatter": _stage_scatter,
    "bucket": _stage_bucket,
    "edges": _stage_edges,
    "fetch": lambda ctx, i: _stage_fetch(ctx, i, "r1"),
    "verify": _stage_verify,
    "pairs": _stage_pairs,
    "components": _stage_components,
    "fetch2": lambda ctx, i: _stage_fetch(ctx, i, "r2"),
    "write": _stage_write,
    # the distributed components (run by `_components` instead of "components" above the size
    # limit); "-rNNN" in a stage's name is the round, passed on
    "components-init": _stage_cc_init,
    "components-large": _stage_cc_large,
    "components-small": _stage_cc_small,
    "components-roots": _stage_cc_roots,
    "components-lengths": _stage_cc_lengths,
    "components-reps": _stage_cc_reps,
    "components-parts": _stage_cc_parts,
    "components-clusters": _stage_cc_clusters,
}


def _call_stage(stage: str, ctx: dict[str, Any], idx: int) -> dict[str, Any]:
    """Run task ``idx`` of ``stage``; a name ending in ``-rNNN`` is a round of a stage."""
    m = re.fullmatch(r"(.+)-r(\d+)", stage)
    if m:
        return _STAGE_FUNCS[m.group(1)](ctx, idx, int(m.group(2)))
    return _STAGE_FUNCS[stage](ctx, idx)


def _run_task(stage: str, idx: int, ctx: dict[str, Any]) -> dict[str, Any]:
    """Run one task unless its marker says it is done; the marker (written last, atomically)
    holds the task's summary."""
    marker = _marker(ctx["work"], stage, idx)
    if os.path.exists(marker):
        return _load_json(marker)
    import resource

    t0 = time.perf_counter()
    try:
        out = _call_stage(stage, ctx, idx)
    except TextsieveError as exc:
        # MalformedRecordError and friends do not survive pickling; the message is what counts
        raise TextsieveError(str(exc)) from None
    out["task_seconds"] = time.perf_counter() - t0
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["pid"] = os.getpid()
    _save_json(marker, out)
    return out


# --------------------------------------------------------------------------------------------
# The driver


def _fingerprint(
    settings: dict[str, Any],
    reader: dict[str, Any],
    files: list[InputFile],
    partition_bytes: int,
    n_shards: int | None,
) -> str:
    stat = []
    for f in files:
        st = os.stat(f.path)
        stat.append([os.path.abspath(f.path), f.format, f.compression, st.st_size, st.st_mtime_ns])
    blob = json.dumps(
        [_WORK_VERSION, settings, reader, stat, partition_bytes, n_shards],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class _Runner:
    """Submits a stage's tasks (skipping those whose marker exists) and gathers their summaries
    in order; the first failure in partition order is raised."""

    def __init__(self, client: Any, ctx: dict[str, Any], log: Callable[[str], Any] | None) -> None:
        self.client = client
        self.ctx = ctx
        self.log = log
        self.report: dict[str, dict[str, Any]] = {}

    def run(self, stage: str, indices: Iterable[int]) -> dict[int, dict[str, Any]]:
        t0 = time.perf_counter()
        scattered = self.client.scatter([self.ctx], broadcast=True, hash=False)[0]
        futures: dict[int, Any] = {}
        results: dict[int, dict[str, Any]] = {}
        for i in indices:
            m = _marker(self.ctx["work"], stage, i)
            if os.path.exists(m):
                results[i] = _load_json(m)
            else:
                futures[i] = self.client.submit(
                    _run_task,
                    stage,
                    i,
                    scattered,
                    pure=False,
                    key=f"textsieve-{stage}-{i}-{time.time_ns()}",
                )
        if futures:
            from distributed import wait

            wait(list(futures.values()))
            for i, f in futures.items():
                results[i] = f.result()
        secs = time.perf_counter() - t0
        self.report[stage] = {
            "tasks": len(results),
            "ran": len(futures),
            "skipped": len(results) - len(futures),
            "seconds": round(secs, 4),
        }
        if self.log:
            self.log(
                f"{stage}: {len(futures)} task(s) run, {len(results) - len(futures)} already done, {secs:.2f}s"
            )
        return results


def _components(
    runner: _Runner,
    ctx: dict[str, Any],
    n_edges: int,
    stage: Callable[[str, Iterable[int]], dict[int, dict[str, Any]]],
) -> dict[str, Any]:
    """The ``components`` stage: one task with the core's union-find when the ``n_edges``
    verified pairs are at most ``components_max_edges``; else large-star/small-star rounds over
    edge shards until a round changes nothing, then the kept documents and cluster sizes shard by
    shard. Both write the same ``comp/`` files and ``r2`` requests. Returns the stage's summary
    (``mode`` says which ran); the distributed path's steps are reported as one stage."""
    limit = ctx["components_max_edges"]
    if n_edges <= limit:
        return stage("components", [0])[0]
    if ctx["settings"].get("cluster", "greedy") == "greedy":
        raise TextsieveError(
            f"{n_edges:,} verified pairs: the greedy rule runs in one task of up to "
            f"components_max_edges={limit:,} pairs; raise components_max_edges, or use "
            "cluster='components' (distributed large-star/small-star)"
        )
    t0 = time.perf_counter()
    work, n_parts = ctx["work"], len(ctx["parts"])
    n_sh = max(1, math.ceil(n_edges / max(1, ctx["components_shard_edges"])))
    # the shard files and markers of another shard count are of no use: start the rounds afresh
    plan = {"shards": n_sh, "edges": n_edges}
    plan_path = _p(work, "cc", "plan.json")
    if not os.path.exists(plan_path) or _load_json(plan_path) != plan:
        shutil.rmtree(_p(work, "cc"), ignore_errors=True)
        for m in _glob.glob(_p(work, "done", "components-[a-z]*.json")):
            os.unlink(m)
        _save_json(plan_path, plan)
    ctx["cc"] = {**plan, "rounds": 0}
    names = ["components-init"]
    stage("components-init", range(n_parts))
    rounds = 0
    while True:
        rounds += 1
        if rounds > COMPONENTS_MAX_ROUNDS:
            raise TextsieveError(f"components: no convergence in {COMPONENTS_MAX_ROUNDS} rounds")
        names += [f"components-large-r{rounds:03d}", f"components-small-r{rounds:03d}"]
        large = stage(names[-2], range(n_sh))
        small = stage(names[-1], range(n_sh))
        # a round that changed no edge: every component is a star around its smallest document
        if sum(x["changed"] for x in (*large.values(), *small.values())) == 0:
            break
    ctx["cc"]["rounds"] = rounds
    roots = stage("components-roots", range(n_sh))
    names.append("components-roots")
    if ctx["settings"]["keep"] == "longest":
        stage("components-lengths", range(n_parts))
        stage("components-reps", range(n_sh))
        names += ["components-lengths", "components-reps"]
    stage("components-parts", range(n_parts))
    clusters = stage("components-clusters", [0])[0]
    names += ["components-parts", "components-clusters"]
    # one line in stats.json -> dask.stages for all the steps
    steps = [runner.report.pop(n) for n in names]
    runner.report["components"] = {
        key: sum(x[key] for x in steps) for key in ("tasks", "ran", "skipped", "seconds")
    }
    runner.report["components"]["seconds"] = round(runner.report["components"]["seconds"], 4)
    runner.report["components"]["rounds"] = rounds
    sampled = "" if clusters["jaccard_every"] == 1 else ", similarities sampled"
    return {
        "edges": n_edges,
        "nodes": sum(x["nodes"] for x in roots.values()),
        "components": sum(x["components"] for x in roots.values()),
        "rounds": rounds,
        "shards": n_sh,
        "mode": f"distributed large-star/small-star, {rounds} rounds, {n_sh} shards, "
        f"{n_edges:,} edges > {limit:,}{sampled}",
        "seconds": time.perf_counter() - t0,
    }


def _concat(parts: Sequence[str], target: str) -> None:
    with atomic_write(target, "wb") as out:
        for f in parts:
            with open(f, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)


def dedup_dask(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    scheduler: str | None = None,
    n_workers: int = 2,
    processes: bool = True,
    threshold: float = 0.8,
    num_perm: int = 128,
    seed: int = 1,
    scheme: str = "native",
    shingle: str = "char",
    k: int = 5,
    normalize: str = "default",
    bands: int | None = None,
    rows: int | None = None,
    verify: str = "exact",
    keep: str = "first",
    cluster: str = "greedy",
    all_pairs: bool = False,
    num_threads: int = 1,
    text_field: str = "text",
    id_field: str | None = "id",
    doc_per_file: bool = False,
    on_error: str = "stop",
    format: str = "auto",
    glob: str | None = None,
    exclude_dirs: Sequence[str] = (),
    partition_bytes: int = DEFAULT_PARTITION_BYTES,
    n_shards: int | None = None,
    components_max_edges: int = COMPONENTS_IN_MEMORY_MAX_EDGES,
    components_shard_edges: int = COMPONENTS_SHARD_EDGES,
    merge: bool = True,
    stop_after: str | None = None,
    client: Any = None,
    log: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Dedup the corpus in ``inputs`` on Dask and write the outputs of ``textsieve dedup`` to
    ``output_dir``; returns the stats (also written to ``stats.json``).

    With no ``scheduler`` (address such as ``"tcp://10.0.0.5:8786"``) and no ``client``, a
    ``distributed.LocalCluster`` of ``n_workers`` workers (processes, or threads with
    ``processes=False``; one thread each, the Rust kernels use ``num_threads``) is started and
    closed again. Workers must see ``inputs`` and ``output_dir`` at the same paths (a shared
    filesystem on a real cluster).

    The options are those of :func:`textsieve.dedup` and :class:`textsieve.io.CorpusReader`, and
    the result is the same: same kept documents, clusters, pairs and similarities. Intermediate
    files go to ``output_dir/_work``; a rerun with the same inputs and options skips every task
    that finished (``stop_after`` stops after the named stage of :data:`STAGES`). Each partition
    holds at most ``partition_bytes`` of a splittable file; ``n_shards`` bucket shards (default:
    one per partition). The verified pairs' connected components run in one task, in memory, up
    to ``components_max_edges`` pairs, and above that as distributed large-star/small-star rounds
    over shards of ``components_shard_edges`` pairs. ``merge=False`` leaves ``kept/``, ``removed/`` and ``pairs/`` as one file
    per partition instead of concatenating them.
    """
    t_start = time.perf_counter()
    settings = _settings(
        threshold, num_perm, seed, scheme, shingle, k, normalize, bands, rows, verify, keep, cluster
    )
    settings["all_pairs"] = bool(all_pairs)
    if verify not in ("exact", "minhash"):
        raise TextsieveError(f"verify: expected 'exact' or 'minhash', got {verify!r}")
    if keep not in ("first", "longest"):
        raise TextsieveError(f"keep: expected 'first' or 'longest', got {keep!r}")
    cfg = _config(settings)
    settings["bands"], settings["rows"] = cfg.bands, cfg.rows
    if stop_after is not None and stop_after not in STAGES:
        raise TextsieveError(f"stop_after: expected one of {', '.join(STAGES)}, got {stop_after!r}")
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    inputs = [os.fspath(x) for x in inputs]
    reader_opts = {
        "text_field": text_field,
        "id_field": id_field,
        "doc_per_file": doc_per_file,
        "on_error": on_error,
        "format": format,
    }
    files = expand_inputs(
        inputs, doc_per_file=doc_per_file, format=format, glob=glob, exclude_dirs=exclude_dirs
    )
    outdir = os.path.abspath(os.fspath(output_dir))
    work = os.path.join(outdir, "_work")
    fp = _fingerprint(settings, reader_opts, files, partition_bytes, n_shards)
    plan_path = os.path.join(work, "plan.json")
    plan = _load_json(plan_path) if os.path.exists(plan_path) else None
    if plan is None or plan.get("fingerprint") != fp:
        shutil.rmtree(work, ignore_errors=True)  # other inputs or options: start afresh
        parts = _plan_partitions(files, partition_bytes)
        plan = {"fingerprint": fp, "parts": parts}
        _save_json(plan_path, plan)
    parts = plan["parts"]
    n_parts = len(parts)
    ctx: dict[str, Any] = {
        "work": work,
        "cwd": os.getcwd(),
        "parts": parts,
        "reader": reader_opts,
        "settings": settings,
        "num_threads": num_threads,
        "n_shards": n_shards or max(1, n_parts),
        "components_max_edges": components_max_edges,
        "components_shard_edges": components_shard_edges,
        "line_base": [0] * n_parts,
        "offsets": [0] * n_parts,
        "counts": [0] * n_parts,
    }

    own_client = own_cluster = None
    if client is None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise TextsieveError(
                "the Dask engine needs Dask: pip install textsieve[dask]"
            ) from None
        if scheduler:
            client = own_client = Client(scheduler)
        else:
            own_cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=None,
                silence_logs=40,
            )
            client = own_client = Client(own_cluster)
    try:
        runner = _Runner(client, ctx, log)
        stats = _drive(runner, ctx, files, inputs, outdir, stop_after, merge, t_start)
        if stats is not None:
            stats["parameters"]["scheduler"] = scheduler or (
                "client" if own_client is None else "LocalCluster"
            )
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()
    return stats if stats is not None else {"stopped_after": stop_after, "stages": runner.report}


def _worker_peaks(client: Any) -> dict[str, float]:
    def peak() -> float:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    try:
        return {addr: round(mb, 1) for addr, mb in client.run(peak).items()}
    except Exception:  # a client without workers it can reach
        return {}


def _drive(
    runner: _Runner,
    ctx: dict[str, Any],
    files: list[InputFile],
    inputs: list[str],
    outdir: str,
    stop_after: str | None,
    merge: bool,
    t_start: float,
) -> dict[str, Any] | None:
    work, parts, s = ctx["work"], ctx["parts"], ctx["settings"]
    n_parts = len(parts)
    everything = range(n_parts)
    stage_t: dict[str, float] = {}

    def stage(name: str, idx: Iterable[int]) -> dict[int, dict[str, Any]] | None:
        t0 = time.perf_counter()
        out = runner.run(name, idx)
        stage_t[name] = time.perf_counter() - t0
        return out

    # 1. line numbers where files are split
    split = [p for p in everything if parts[p]["start"] is not None]
    lines = stage("lines", split)
    base = 0
    for p in everything:
        if parts[p]["start"] is None:
            continue
        if parts[p]["start"] == 0:
            base = 0
        ctx["line_base"][p] = base
        base += lines[p]["lines"]
    if stop_after == "lines":
        return None
    # 2. signatures
    signed = stage("sign", everything)
    counts = [signed[p]["n"] for p in everything]
    offsets = (
        np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        if n_parts
        else np.zeros(0, np.int64)
    )
    n_docs = int(sum(counts))
    if n_docs > 0xFFFFFFFF:
        raise TextsieveError("texts: more than 4,294,967,295 documents in one run")
    ctx["offsets"] = offsets.tolist()
    ctx["counts"] = counts
    if stop_after == "sign":
        return None
    # 3. exact-copy classes (by content digest)
    copies = stage("copies", range(ctx["n_shards"]))
    if stop_after == "copies":
        return None
    # 4-6. shuffle by band key (reps only), candidate pairs, per-partition edge lists
    stage("scatter", everything)
    if stop_after == "scatter":
        return None
    buckets = stage("bucket", range(ctx["n_shards"]))
    if stop_after == "bucket":
        return None
    edges = stage("edges", everything)
    if stop_after == "edges":
        return None
    asked = sorted({b for e in edges.values() for b in e["asked"]})
    # 6-7. verification
    stage("fetch", asked)
    if stop_after == "fetch":
        return None
    verified = stage("verify", everything)
    if stop_after == "verify":
        return None
    paired = stage("pairs", everything)
    if stop_after == "pairs":
        return None
    # 8. components, keep policy: in memory or distributed, decided by the number of pairs
    comp = _components(runner, ctx, sum(v["pairs"] for v in paired.values()), stage)
    stage_t["components"] = comp["seconds"]
    if stop_after == "components":
        return None
    # 9. join back
    stage("fetch2", everything)
    if stop_after == "fetch2":
        return None
    written = stage("write", everything)
    if stop_after == "write":
        return None

    # outputs
    t0 = time.perf_counter()
    paths = {name: os.path.join(outdir, name) for name in OUTPUT_FILES}
    names = [f"part-{p:05d}.jsonl" for p in everything]
    # pairs.jsonl: one row per removed document, or every verified pair with all_pairs
    pair_sub = "pairs" if s["all_pairs"] else "removals"
    if merge:
        for out, sub in (
            ("kept.jsonl", "kept"),
            ("removed.jsonl", "removed"),
            ("pairs.jsonl", pair_sub),
        ):
            _concat([os.path.join(work, sub, n) for n in names], paths[out])
    else:
        for sub in ("kept", "removed", "pairs"):
            dest = os.path.join(outdir, sub)
            os.makedirs(dest, exist_ok=True)
            src = pair_sub if sub == "pairs" else sub
            for n in names:
                shutil.copyfile(os.path.join(work, src, n), os.path.join(dest, n))
            paths[f"{sub}.jsonl"] = dest
    n_kept = sum(w["kept"] for w in written.values())
    n_removed = sum(w["removed"] for w in written.values())
    clusters = _load_npz(os.path.join(work, "comp", "clusters.npz"))
    multi = clusters["size"] > 1
    multi_sizes = clusters["size"][multi].tolist()
    multi_reps = clusters["rep"][multi].tolist()
    n_clusters = (
        n_kept if s["cluster"] == "greedy" else n_docs - (comp["nodes"] - comp["components"])
    )
    shown = _report_clusters(runner, ctx, multi_reps, multi_sizes)
    n_pairs = sum(v["pairs"] for v in paired.values())
    n_candidates = sum(v["doc_pairs_in_buckets"] for v in verified.values())
    n_copies = sum(c["copies"] for c in copies.values())
    reader_info = [signed[p]["reader"] for p in everything]
    n_skipped = sum(r["skipped"] for r in reader_info)
    skipped = [ex for r in reader_info for ex in r["skipped_examples"]][: _io.MAX_SKIPPED_EXAMPLES]
    n_bytes_read = sum(r["bytes"] for r in reader_info)
    n_empty = sum(signed[p]["n_empty"] for p in everything)
    file_rows = []
    for fi, f in enumerate(files):
        mine = [p for p in everything if parts[p]["file"] == fi]
        file_rows.append(
            {
                "path": f.path,
                "format": f.format,
                "compression": f.compression,
                "records": sum(signed[p]["reader"]["records"] for p in mine),
                "skipped": sum(signed[p]["reader"]["skipped"] for p in mine),
                "bytes": sum(signed[p]["reader"]["file_bytes"] for p in mine),
                "partitions": len(mine),
            }
        )
    largest = max(multi_sizes, default=1 if n_docs else 0)
    summary = {
        "input files": len(files),
        "documents in": n_docs,
        "kept": n_kept,
        "removed": n_removed,
        "clusters with duplicates": len(multi_sizes),
        "verified pairs": n_pairs,
        "empty documents": n_empty,
        "skipped bad records": n_skipped,
        "threshold": s["threshold"],
        "shingles": f"{s['shingle']}:{s['k']}",
        "permutations": s["num_perm"],
        "seed": s["seed"],
        "keep": s["keep"],
        "MB read": round(n_bytes_read / 1e6, 2),
        "engine": f"dask, {n_parts} partitions",
    }
    from textsieve.report import write_report

    write_report(
        paths["report.html"],
        similarities=clusters["jaccard"].tolist(),
        cluster_sizes=multi_sizes,
        clusters=shown,
        summary=summary,
        threshold=s["threshold"],
        subtitle=", ".join(inputs[:3])
        + (f" and {len(inputs) - 3} more" if len(inputs) > 3 else ""),
    )
    t_write = time.perf_counter() - t0 + stage_t.get("write", 0.0)
    t_total = time.perf_counter() - t_start
    t_read = stage_t.get("lines", 0.0) + stage_t.get("sign", 0.0)
    from textsieve import __version__

    sign_secs = {"read": 0.0, "signatures": 0.0}
    for v in signed.values():
        for key in sign_secs:
            sign_secs[key] += v["seconds"][key]
    stats: dict[str, Any] = {
        "textsieve": __version__,
        "n_input": n_docs,
        "n_kept": n_kept,
        "n_removed": n_removed,
        "n_input_equals_kept_plus_removed": n_docs == n_kept + n_removed,
        "n_clusters": n_clusters,
        "n_clusters_with_duplicates": len(multi_sizes),
        "largest_cluster": largest,
        "n_pairs": n_pairs if s["all_pairs"] else n_removed,
        "n_examined": n_pairs,
        "n_empty": n_empty,
        "n_skipped": n_skipped,
        "skipped": skipped,
        "n_blank_lines": sum(r["blank"] for r in reader_info),
        "input_bytes": n_bytes_read,
        "inputs": inputs,
        "input_files": file_rows,
        "parameters": {
            "threshold": s["threshold"],
            "num_perm": s["num_perm"],
            "seed": s["seed"],
            "shingle": s["shingle"],
            "k": s["k"],
            "keep": s["keep"],
            "cluster": s["cluster"],
            "all_pairs": s["all_pairs"],
            **{k_: v for k_, v in ctx["reader"].items()},
            "engine": "dask",
            "threads": ctx["num_threads"],
            "partitions": n_parts,
            "shards": ctx["n_shards"],
        },
        "timings_s": {
            "read": round(t_read, 4),
            "dedup": round(t_total - t_read - t_write, 4),
            "write": round(t_write, 4),
            "total": round(t_total, 4),
        },
        "throughput": {
            "docs_per_s": round(n_docs / t_total, 1) if t_total > 0 else None,
            "mb_per_s": round(n_bytes_read / 1e6 / t_total, 2) if t_total > 0 else None,
        },
        "dedup_stats": {
            "n_docs": n_docs,
            "n_kept": n_kept,
            "n_removed": n_removed,
            "n_empty": n_empty,
            "n_pairs": n_pairs if s["all_pairs"] else n_removed,
            "n_verified_pairs": n_pairs,
            "n_candidates": n_candidates,
            "n_clusters": n_clusters,
            **{k_: v for k_, v in s.items()},
            "seconds": {
                "signatures": sign_secs["signatures"],
                "read": sign_secs["read"],
                "components": comp["seconds"],
            },
            "n_bytes": sum(signed[p]["n_bytes"] for p in everything),
        },
        "dask": {
            "stages": runner.report,
            "components": comp["mode"],
            "largest_bucket": max((b["largest_bucket"] for b in buckets.values()), default=0),
            "exact_copies": n_copies,
            "copy_classes": sum(c["classes"] for c in copies.values()),
            "largest_copy_class": max((c["largest_class"] for c in copies.values()), default=0),
            "candidate_edges": sum(v["candidates"] for v in verified.values()) + n_copies,
            "task_peak_rss_mb": {
                name: round(
                    max(
                        (
                            _load_json(m)["peak_rss_mb"]
                            for m in _glob.glob(os.path.join(work, "done", f"{name}-*.json"))
                        ),
                        default=0.0,
                    ),
                    1,
                )
                for name in STAGES
            },
            "worker_peak_rss_mb": _worker_peaks(runner.client),
        },
        "outdir": outdir,
        "outputs": {name: os.path.abspath(p) for name, p in paths.items()},
    }
    with atomic_write(paths["stats.json"], "w") as fh:
        json.dump(to_jsonable(stats), fh, indent=2, ensure_ascii=False, allow_nan=False)
        fh.write("\n")
    return stats


def _report_clusters(
    runner: _Runner, ctx: dict[str, Any], reps: list[int], sizes: list[int]
) -> list[dict[str, Any]]:
    """The largest clusters with a few members each, as the local command shows them."""
    work = ctx["work"]
    offsets = np.asarray(ctx["offsets"])
    top = heapq.nsmallest(
        REPORT_CLUSTERS, zip(sizes, reps, strict=True), key=lambda t: (-t[0], t[1])
    )
    if not top:
        return []
    top_reps = np.array([r for _, r in top], np.int64)
    members: dict[int, list[int]] = {int(r): [] for r in top_reps}
    sims: dict[int, float] = {}
    for a in range(len(offsets)):
        comp = _load_npz(_p(work, "comp", f"part-{a:05d}.npz"))
        sel = np.isin(comp["rep"], top_reps)
        if not sel.any():
            continue
        for g, r in zip(comp["gid"][sel].tolist(), comp["rep"][sel].tolist(), strict=True):
            members[r].append(g)
        rem = _load_npz(_p(work, "removed", f"part-{a:05d}.npz"))
        sims.update(zip(rem["gid"].tolist(), rem["jaccard"].tolist(), strict=True))
    chosen: dict[int, list[int]] = {}
    for _, r in top:
        idxs = sorted(members[r])
        removed = sorted((g for g in idxs if g != r), key=lambda g: -(sims.get(g, -1.0)))
        chosen[r] = ([r] + removed)[:REPORT_MEMBERS]
    want = sorted({g for gs in chosen.values() for g in gs})
    by_part: dict[int, list[int]] = {}
    for g, a in zip(want, _part_of(offsets, np.array(want)).tolist(), strict=True):
        by_part.setdefault(a, []).append(g)
    futs = {
        a: runner.client.submit(_stage_snippets, ctx, a, gs, pure=False)
        for a, gs in by_part.items()
    }
    got: dict[int, tuple[str, str]] = {}
    for f in futs.values():
        got.update(f.result())
    shown = []
    for size, r in top:
        shown.append(
            {
                "cluster": r,
                "size": size,
                "members": [
                    {
                        "id": got[g][0],
                        "text": got[g][1],
                        "kept": g == r,
                        "jaccard": None if g == r else sims.get(g),
                    }
                    for g in chosen[r]
                ],
            }
        )
    return shown


def run_command(
    args: Any,
    inputs: list[str],
    outdir: str,
    doc_per_file: bool,
    glob: str | None,
    on_error: str,
    exclude_dirs: Sequence[str],
) -> int:
    """``textsieve dedup --engine dask``: the parsed arguments of ``textsieve dedup``, run on Dask;
    prints what the local command prints (stats as JSON with ``--json``)."""
    shingle, k = args.shingle
    quiet = args.quiet or args.json

    def log(msg: str) -> None:
        if not quiet:
            print(f"dask: {msg}", file=sys.stderr)

    stats = dedup_dask(
        inputs,
        outdir,
        scheduler=getattr(args, "scheduler", None),
        n_workers=getattr(args, "workers", 2) or 2,
        threshold=args.threshold,
        num_perm=args.num_perm,
        seed=args.seed,
        shingle=shingle,
        k=k,
        keep=args.keep,
        cluster=args.cluster,
        all_pairs=args.all_pairs,
        num_threads=args.threads or 1,
        text_field=args.text_field,
        id_field=args.id_field,
        doc_per_file=doc_per_file,
        on_error=on_error,
        format=args.format,
        glob=glob,
        exclude_dirs=exclude_dirs,
        log=log,
    )
    if args.json:
        print(json.dumps(to_jsonable(stats), ensure_ascii=False, allow_nan=False))
    elif not args.quiet:
        from textsieve.pipeline import print_summary

        print_summary(stats)
    return 0
