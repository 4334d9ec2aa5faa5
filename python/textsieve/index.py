"""A persistent, incremental near-duplicate index on disk: dedup new data against everything
kept before, across runs, without holding the old corpus in memory.

An index is a directory that is its own small database::

    index.json          the manifest: format version, settings, segments, tombstones, checksum
    seg-00000001.tsx    one immutable segment per add (or per compaction): the kept documents'
                        numbers, ids, LZ4-compressed texts and sorted band tables (memory-mapped)
    tomb-00000004.bin   the documents removed by remove() (sorted uint32), when there are any
    LOCK                held by the one process that may write

Every change writes new files, syncs them, then commits a new manifest by atomic rename: a
process killed at any point leaves the index as it was at the last commit (files of an
unfinished change are deleted the next time a writer opens it). One process writes (the lock
file; a second writer gets a clear error); any number may read (``readonly=True``).

The rule is :func:`textsieve.dedup`'s greedy one: a document is a duplicate iff a live kept
document of the index, or a kept document earlier in its batch, shares an LSH bucket with it and
is within the threshold. Adding a corpus in any number of batches keeps exactly what one
``dedup`` call on the whole corpus keeps.

>>> import tempfile, textsieve as ts
>>> with ts.DedupIndex.open(tempfile.mkdtemp(), threshold=0.7) as idx:
...     idx.add(["the cat sat on the mat", "dogs bark at night"], ids=["a", "b"]).keep.tolist()
...     idx.add(["the cat sat on the mat!"]).keep.tolist()
...     [(i, round(j, 3)) for i, j in idx.query("the cat sat on the mat!")]
...     len(idx)
[True, True]
[False]
[('a', 0.947)]
2
"""

from __future__ import annotations

import collections
import contextlib
import gc
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from pathlib import Path
from typing import Any

import numpy as np

from textsieve import _core
from textsieve._checks import check_int
from textsieve.dedup import (
    DedupResult,
    DedupSettings,
    Errors,
    Nulls,
    _chunks,
    _result,
)
from textsieve.errors import CorruptDataError, InvalidArgumentError, TextsieveError

__all__ = ["PersistentDedupIndex", "is_index", "upgrade"]

FORMAT = "textsieve-dedup-index-dir"
VERSION = 1
MANIFEST = "index.json"
LOCK = "LOCK"
#: The format of a directory written by the in-memory ``DedupIndex.save``.
OLD_FORMAT = "textsieve-dedup-index"
_SEGMENT = re.compile(r"^(seg-\d+(-\d+)?\.tsx|tomb-\d+\.bin)$")
#: The most documents one segment holds (band entries keep a 24-bit position).
MAX_SEGMENT_DOCS = 1 << 24
_PAGE = 8192
# Documents are looked up in the index this many (or characters) at a time: one lookup pass
# reads each segment's filter once, and with 8,192 documents a pass a probe of the filter cost
# about three times what it does with 65,536 (a cache line read for nearly every probe).
FEED_DOCS = 65536
FEED_CHARS = 64 << 20


class IndexLockedError(TextsieveError):
    """Another process holds the index's write lock."""


def is_index(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a directory holding an on-disk dedup index."""
    return (Path(path) / MANIFEST).is_file()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")


def _read_manifest(d: Path) -> dict[str, Any]:
    mpath = d / MANIFEST
    try:
        data = mpath.read_bytes()
    except FileNotFoundError:
        raise TextsieveError(f"{mpath}: not found; {d} is not a dedup index") from None
    try:
        m = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptDataError(f"{mpath}: not a dedup index manifest ({exc})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise CorruptDataError(f"{mpath}: not a dedup index manifest (format is not {FORMAT!r})")
    if m.get("version") != VERSION:
        raise CorruptDataError(
            f"{mpath}: index format version {m.get('version')!r}; this textsieve reads "
            f"version {VERSION}"
        )
    if m.get("checksum") != _sha256(_canonical(m)):
        raise CorruptDataError(f"{mpath}: checksum mismatch (the manifest is corrupt)")
    return m


def _settings_of(m: dict[str, Any], where: Path) -> DedupSettings:
    try:
        return DedupSettings(**m["settings"])
    except (KeyError, TypeError, TextsieveError) as exc:
        raise CorruptDataError(f"{where}: bad settings in the manifest ({exc})") from None


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector paused: the answers of a batch query are hundreds of thousands
    of new lists and tuples (no cycles among them), and each few hundred made the collector run
    over every object the caller holds (its list of texts too): 8% of ``query_many``'s time."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class PersistentDedupIndex:
    """An on-disk dedup index (see the module's documentation); made by :meth:`open` (or
    ``DedupIndex.open``).

    One object may be shared by threads: adds, removes and compactions run one at a time;
    ``check``, ``query_many`` and ``len`` read the last committed state and run beside them.
    Batch calls release the GIL and use every core (``num_threads`` to limit).
    """

    path: Path

    def __init__(self) -> None:  # pragma: no cover - made by open()
        raise TypeError("use PersistentDedupIndex.open(path) or DedupIndex.open(path)")

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        create: bool = True,
        *,
        readonly: bool = False,
        verify: bool = False,
        num_threads: int | None = None,
        auto_compact: int | None = None,
        **settings: Any,
    ) -> PersistentDedupIndex:
        """Open the index in directory ``path``, creating it with ``settings`` (the keyword
        arguments of :class:`~textsieve.DedupSettings`) when it does not exist and ``create``.

        Settings given for an existing index must equal its own. ``readonly=True`` opens
        without the write lock (any number of readers, beside one writer). Opening reads the
        manifest and each segment's header (its checksum, size and settings are checked, so a
        truncated or foreign segment is refused), never the whole index; ``verify=True`` also
        checks the checksum of every section of every segment (one sequential read of the
        files; ``textsieve index info`` does it).
        ``auto_compact=N`` compacts after an add that leaves more than N segments. A directory
        saved by the in-memory ``DedupIndex.save`` is upgraded in place (its files are left
        as they were).
        """
        self = cls.__new__(cls)
        self.path = Path(path)
        self.readonly = bool(readonly)
        self.verify = bool(verify)
        self.num_threads = check_int("num_threads", num_threads, optional=True)
        self.auto_compact = check_int("auto_compact", auto_compact, optional=True)
        self._lock = threading.RLock()
        self._lock_file: Any = None
        self._closed = False
        d = self.path
        if not (d / MANIFEST).exists():
            old = d / "manifest.json"
            if old.is_file():
                if readonly:
                    raise TextsieveError(
                        f"{d}: an index saved by DedupIndex.save; open it once without "
                        "readonly=True (or run: textsieve index upgrade "
                        f"{d}) to upgrade it"
                    )
                self._take_lock()
                try:
                    upgrade(d, _locked=True)
                except BaseException:
                    self._release_lock()
                    raise
            elif not create:
                raise TextsieveError(f"{d / MANIFEST}: not found; {d} is not a dedup index")
            else:
                if readonly:
                    raise TextsieveError(f"{d}: no index to open read-only")
                if d.exists() and not d.is_dir():
                    raise TextsieveError(f"{d}: exists and is not a directory")
                if d.is_dir() and any(p.name != LOCK for p in d.iterdir()):
                    raise TextsieveError(
                        f"{d}: the directory is not empty and holds no dedup index"
                    )
                d.mkdir(parents=True, exist_ok=True)
                s = DedupSettings(**settings)
                if s.cluster != "greedy":
                    raise InvalidArgumentError(
                        "cluster: a dedup index is greedy (cluster='greedy'); components need "
                        "the whole corpus"
                    )
                self._take_lock()
                if not (d / MANIFEST).exists():
                    _commit(d, s, 0, [], None, 0)
        if not readonly and self._lock_file is None:
            self._take_lock()
        try:
            self._load(settings)
            if not readonly:
                self._collect_garbage()
        except BaseException:
            self._release_lock()
            raise
        return self

    def _take_lock(self) -> None:
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        fh = open(self.path / LOCK, "a+")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            who = fh.read().strip() or "?"
            fh.close()
            raise IndexLockedError(
                f"{self.path}: another process (pid {who}) is writing to this index; "
                "one writer at a time (open it with readonly=True to read)"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_file = fh

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                self._lock_file.close()
            self._lock_file = None

    def _load(self, given: dict[str, Any]) -> None:
        for attempt in range(5):
            m = _read_manifest(self.path)
            try:
                self._set_state(m)
                break
            except FileNotFoundError:
                # a writer compacted between the manifest and its segments: read it again
                if attempt == 4:
                    raise
                time.sleep(0.05)
        mine = self.settings
        for name, value in given.items():
            if name not in mine:
                raise InvalidArgumentError(f"{name}: not a dedup setting")
            if value is not None and mine[name] != value:
                raise InvalidArgumentError(
                    f"{name}: the index at {self.path} was made with {name}={mine[name]!r}, "
                    f"not {value!r}"
                )

    def _set_state(self, m: dict[str, Any]) -> None:
        d = self.path
        s = _settings_of(m, d / MANIFEST)
        config = s.config()
        segs = []
        for e in m.get("segments", []):
            p = d / e["file"]
            if not p.exists():
                raise FileNotFoundError(p)
            seg = _core.SegmentCore.open(str(p), config, self.verify)
            if seg.bytes != e["bytes"] or seg.header_crc != e["header_crc"] or seg.n != e["docs"]:
                raise CorruptDataError(
                    f"{p}: does not match the manifest (size or header checksum): the file "
                    "is corrupt or from another index"
                )
            segs.append(seg)
        tombs = np.zeros(0, np.uint32)
        t = m.get("tombstones")
        if t:
            p = d / t["file"]
            data = p.read_bytes()
            if _sha256(data) != t["sha256"] or len(data) != 4 * t["count"]:
                raise CorruptDataError(f"{p}: checksum mismatch (the tombstones are corrupt)")
            tombs = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        self._settings = s
        self._config = config
        self._manifest = m
        self._snap = _core.SnapshotCore(config, segs, tombs.tolist(), int(m["n_docs"]))

    def _collect_garbage(self) -> None:
        """Deletes files of changes that never committed (a process killed mid-add)."""
        m = self._manifest
        live = {e["file"] for e in m["segments"]}
        if m.get("tombstones"):
            live.add(m["tombstones"]["file"])
        for p in self.path.iterdir():
            stale = _SEGMENT.match(p.name) and p.name not in live
            if stale or (p.name.startswith(".") and p.name.endswith(".tmp")):
                with contextlib.suppress(OSError):
                    p.unlink()

    def refresh(self) -> None:
        """Reads the last committed state again (a reader following a writer)."""
        self._check_open()
        with self._lock:
            self._load({})

    # ------------------------------------------------------------------ properties
    @property
    def settings(self) -> dict[str, Any]:
        """The settings the index was made with (bands and rows filled in)."""
        return self._settings.as_dict()

    def __len__(self) -> int:
        """Documents in the index: kept by an add and not removed."""
        return len(self._snap)

    @property
    def n_docs(self) -> int:
        """Documents numbered so far: every document ever given to :meth:`add`."""
        return int(self._snap.n_docs)

    @property
    def n_segments(self) -> int:
        return len(self._snap.segments)

    def info(self) -> dict[str, Any]:
        """What the index holds and its size on disk."""
        snap = self._snap
        seg_bytes = sum(s.bytes for s in snap.segments)
        n = len(snap)
        return {
            "path": str(self.path),
            "n_docs": len(snap),
            "n_numbered": int(snap.n_docs),
            "n_removed": len(snap.tombstones),
            "n_segments": len(snap.segments),
            "bytes": seg_bytes,
            "bytes_per_doc": seg_bytes / n if n else 0.0,
            "generation": self._manifest["generation"],
            "settings": self.settings,
        }

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"n_docs={len(self)}"
        return f"PersistentDedupIndex({str(self.path)!r}, {state})"

    # ------------------------------------------------------------------ reading
    def _check_open(self) -> None:
        if self._closed:
            raise TextsieveError(f"{self.path}: the index is closed")

    def _feed_all(
        self,
        batch: Any,
        texts: Iterable[str],
        ids: Iterable[Any] | None,
        errors: Errors,
        nulls: Nulls,
        progress: Callable[[int, int], Any] | None,
    ) -> tuple[dict[str, Any], int]:
        id_iter: Iterator[Any] | None = None if ids is None else iter(_id_list(ids))
        if isinstance(texts, Sized):  # the core makes its tables of kept texts for them once
            batch.expect(len(texts))
        chunks: Iterable[list[str]] = _chunks(texts, nulls, FEED_DOCS, FEED_CHARS)
        if self._settings.keep == "longest":  # longest first within the whole batch
            chunks = [[t for c in chunks for t in c]]

        def pairs() -> Iterator[tuple[list[str], list[Any]]]:
            n_done = 0
            for chunk in chunks:
                if id_iter is None:
                    chunk_ids: list[Any] = list(range(batch.next, batch.next + len(chunk)))
                else:
                    chunk_ids = [x for _, x in zip(range(len(chunk)), id_iter)]
                    if len(chunk_ids) != len(chunk):
                        raise InvalidArgumentError(
                            "ids: fewer ids than texts (the ids ran out at text "
                            f"{n_done + len(chunk_ids)})"
                        )
                n_done += len(chunk)
                yield chunk, chunk_ids
            if id_iter is not None and next(id_iter, None) is not None:
                raise InvalidArgumentError(f"ids: more ids than texts ({n_done} texts)")

        return self._feed_pairs(batch, pairs(), errors, progress)

    def _feed_pairs(
        self,
        batch: Any,
        pairs: Iterable[tuple[list[str], list[Any]]],
        errors: Errors,
        progress: Callable[[int, int], Any] | None,
    ) -> tuple[dict[str, Any], int]:
        """Feeds ``(texts, ids)`` chunks to ``batch``; the decisions as ``dedup``'s dict."""
        first = batch.next
        parts: dict[str, list[np.ndarray]] = {
            "duplicate_of": [],
            "similarity": [],
            "examined": [],
            "empty": [],
        }
        n_bytes = 0
        # the core decides each chunk while it signs the next: a chunk's decisions come back
        # with the next call (the last with ``flush``)
        sizes: collections.deque[tuple[int, int]] = collections.deque()
        n_done = [0, 0]

        def take(out: dict[str, Any] | None) -> None:
            if out is None:
                return
            for k in parts:
                parts[k].append(out[k])
            docs, nbytes = sizes.popleft()
            n_done[0] += docs
            n_done[1] += nbytes
            if progress is not None:
                progress(n_done[0], n_done[1])

        for chunk, chunk_ids in pairs:
            size = sum(len(t.encode("utf-8", "surrogatepass")) for t in chunk)
            n_bytes += size
            sizes.append((len(chunk), size))
            take(batch.feed(chunk, chunk_ids, self.num_threads, errors))
        take(batch.flush(self.num_threads))
        out = {
            k: np.concatenate(v) if v else np.zeros(0, dtype)
            for (k, v), dtype in zip(parts.items(), (np.int64, np.float64, np.uint32, bool))
        }
        dup = out["duplicate_of"]
        keep = dup < 0
        out.update(
            first_doc=first,
            keep=keep,
            cluster=np.where(keep, np.arange(first, first + len(dup)), dup),
            n_candidates=int(out["examined"].sum()),
            n_clusters=int(keep.sum()),
            seconds={},
        )
        return out, n_bytes

    def _result(self, out: dict[str, Any], n_bytes: int, t0: float) -> DedupResult:
        res = _result(out, self.settings, {}, False)
        res.stats["seconds"]["total"] = time.perf_counter() - t0
        res.stats["n_bytes"] = n_bytes
        return res

    def check(
        self,
        texts: Iterable[str],
        *,
        errors: Errors = "strict",
        nulls: Nulls = "error",
        progress: Callable[[int, int], Any] | None = None,
    ) -> DedupResult:
        """The decisions :meth:`add` would make for ``texts``, without adding them."""
        self._check_open()
        t0 = time.perf_counter()
        batch = self._snap.batch(write=False)
        out, n_bytes = self._feed_all(batch, texts, None, errors, nulls, progress)
        return self._result(out, n_bytes, t0)

    def query_many(
        self, texts: Iterable[str], *, errors: Errors = "strict"
    ) -> list[list[tuple[Any, float]]]:
        """For each text, every document of the index within the threshold:
        ``[(id, jaccard)]``, best first (an empty text matches nothing)."""
        self._check_open()
        snap = self._snap
        res: list[list[tuple[Any, float]]] = []
        for chunk in _chunks(texts, "error", FEED_DOCS, FEED_CHARS):
            with _no_cycle_collection():
                hits = snap.query_many(chunk, self.num_threads, errors)
                res.extend([(i, j) for _, i, j in h] for h in hits)
        return res

    def query(self, text: str, *, errors: Errors = "strict") -> list[tuple[Any, float]]:
        """Documents of the index within the threshold of ``text``: ``[(id, jaccard)]``."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected str, got {type(text).__name__}")
        return self.query_many([text], errors=errors)[0]

    def documents(self, start: int = 0) -> Iterator[tuple[int, Any, str]]:
        """The documents of the index in number order: ``(number, id, text)``."""
        self._check_open()
        snap = self._snap
        at = start
        while True:
            page = snap.documents(at, _PAGE)
            if not page:
                return
            yield from page
            at = page[-1][0] + 1

    # ------------------------------------------------------------------ writing
    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        self._check_open()
        if self.readonly:
            raise TextsieveError(f"{self.path}: the index was opened read-only")
        with self._lock:
            self._check_open()
            yield

    def _commit(
        self, segments: list[Any], tombstones: np.ndarray | None, n_docs: int, gen: int
    ) -> None:
        m = _commit(self.path, self._settings, gen, segments, tombstones, n_docs)
        self._manifest = m
        tombs = [] if tombstones is None else np.asarray(tombstones).tolist()
        self._snap = _core.SnapshotCore(self._config, segments, tombs, n_docs)

    def _next_gen(self) -> int:
        return int(self._manifest["generation"]) + 1

    def add(
        self,
        texts: Iterable[str],
        ids: Iterable[Any] | None = None,
        *,
        errors: Errors = "strict",
        nulls: Nulls = "error",
        progress: Callable[[int, int], Any] | None = None,
    ) -> DedupResult:
        """Dedup ``texts`` against the index and within themselves, then add the kept ones
        (one new segment, committed at the end: an add interrupted adds nothing).

        ``ids`` (str or int, one per text; default the document numbers) name documents in
        :meth:`query_many` results and :meth:`remove`. The result's ``duplicate_of``,
        ``cluster`` and ``pairs`` use global document numbers (``result.offset`` is the first).
        """
        with self._writing():
            t0 = time.perf_counter()
            snap = self._snap
            batch = snap.batch(self.path)
            out, n_bytes = self._feed_all(batch, texts, ids, errors, nulls, progress)
            self._finish(snap, batch)
            return self._result(out, n_bytes, t0)

    def _finish(self, snap: Any, batch: Any, written: tuple[int, Any] | None = None) -> None:
        """Writes a batch's segment and commits it (the write lock held); ``written``: the
        ``(generation, segment)`` that :meth:`_write_segment` gave, when the caller wrote it."""
        gen, seg = written if written is not None else self._write_segment(batch)
        segs = list(snap.segments) + ([seg] if seg is not None else [])
        self._commit(segs, self._tombstones(snap), int(batch.next), gen)
        if self.auto_compact is not None and len(segs) > self.auto_compact:
            self.compact()

    def _write_segment(self, batch: Any) -> tuple[int, Any]:
        """Writes a batch's segment file, not yet committed (the write lock held): its
        generation and the segment (None when nothing was kept)."""
        gen = self._next_gen()
        return gen, batch.write(str(self.path / f"seg-{gen:08d}.tsx"))

    @staticmethod
    def _tombstones(snap: Any) -> np.ndarray | None:
        t = snap.tombstones
        return t if len(t) else None

    def remove(self, ids: Iterable[Any]) -> int:
        """Removes the documents with these ids (tombstones, honoured by every query and
        add); returns how many were removed. Unknown ids are ignored."""
        with self._writing():
            ids = _id_list(ids)
            snap = self._snap
            found = snap.docs_with_ids(ids)
            if not len(found):
                return 0
            tombs = np.union1d(snap.tombstones, found).astype(np.uint32)
            self._commit(list(snap.segments), tombs, int(snap.n_docs), self._next_gen())
            return len(found)

    def compact(self) -> dict[str, Any]:
        """Merges the segments into as few as fit (2^24 documents each), dropping removed
        documents. Returns the numbers of segments before and after."""
        with self._writing():
            snap = self._snap
            segs = list(snap.segments)
            before = len(segs)
            tombs = snap.tombstones
            if before <= 1 and not len(tombs):
                return {"segments_before": before, "segments_after": before}
            gen = self._next_gen()
            groups: list[tuple[int, int]] = []
            start, size = 0, 0
            for i, s in enumerate(segs):
                if size + s.n > MAX_SEGMENT_DOCS and i > start:
                    groups.append((start, i))
                    start, size = i, 0
                size += s.n
            groups.append((start, len(segs)))
            new: list[Any] = []
            for k, (a, b) in enumerate(groups):
                seg = snap.compact_into(a, b, str(self.path / f"seg-{gen:08d}-{k}.tsx"))
                if seg is not None:
                    new.append(seg)
            self._commit(new, None, int(snap.n_docs), gen)
            self._collect_garbage()
            return {"segments_before": before, "segments_after": len(new)}

    def merge(
        self,
        other: PersistentDedupIndex | str | os.PathLike[str],
        *,
        progress: Callable[[int, int], Any] | None = None,
    ) -> DedupResult:
        """Adds the documents of another index (same settings), in its order and with its
        ids, deduplicated against this one as :meth:`add` does."""
        src = (
            other
            if isinstance(other, PersistentDedupIndex)
            else PersistentDedupIndex.open(other, create=False, readonly=True)
        )
        try:
            return self._merge_from(src, progress)
        finally:
            if src is not other:
                src.close()

    def _merge_from(
        self, src: PersistentDedupIndex, progress: Callable[[int, int], Any] | None
    ) -> DedupResult:
        if src.settings != self.settings:
            diff = sorted(k for k in self.settings if src.settings.get(k) != self.settings[k])
            raise InvalidArgumentError(
                f"other: the indexes were made with different settings ({', '.join(diff)})"
            )

        def pages() -> Iterator[tuple[list[str], list[Any]]]:
            snap, at = src._snap, 0
            while page := snap.documents(at, _PAGE):
                yield [t for _, _, t in page], [i for _, i, _ in page]
                at = page[-1][0] + 1

        pairs: Iterable[tuple[list[str], list[Any]]] = pages()
        if self._settings.keep == "longest":  # longest first over the whole of `other`
            every = list(pairs)
            pairs = [([t for p in every for t in p[0]], [i for p in every for i in p[1]])]
        with self._writing():
            t0 = time.perf_counter()
            snap = self._snap
            batch = snap.batch(self.path)
            out, n_bytes = self._feed_pairs(batch, pairs, "strict", progress)
            self._finish(snap, batch)
            return self._result(out, n_bytes, t0)

    def close(self) -> None:
        """Releases the write lock; the object cannot be used after."""
        with self._lock:
            self._closed = True
            self._release_lock()

    def __enter__(self) -> PersistentDedupIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._release_lock()


def _id_list(ids: Iterable[Any]) -> list[Any]:
    if isinstance(ids, (str, bytes)):
        raise TypeError("ids: expected an iterable of ids, got a single str; wrap it in a list")
    out = list(ids)
    for i, v in enumerate(out):
        if isinstance(v, np.integer):
            out[i] = v = int(v)
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise TypeError(f"ids[{i}]: expected str or int, got {type(v).__name__}")
    return out


def _commit(
    d: Path,
    settings: DedupSettings,
    gen: int,
    segments: list[Any],
    tombstones: np.ndarray | None,
    n_docs: int,
) -> dict[str, Any]:
    """Writes the tombstones (when any) and the manifest of generation ``gen``, then renames
    the manifest into place: the commit."""
    from textsieve.io import atomic_write

    tomb_entry = None
    if tombstones is not None and len(tombstones):
        data = np.asarray(tombstones, dtype="<u4").tobytes()
        name = f"tomb-{gen:08d}.bin"
        with atomic_write(d / name, "wb") as fh:
            fh.write(data)
        tomb_entry = {"file": name, "count": len(tombstones), "sha256": _sha256(data)}
    m: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "generation": gen,
        "settings": settings.as_dict(),
        "n_docs": n_docs,
        "segments": [
            {
                "file": Path(s.path).name,
                "docs": s.n,
                "bytes": s.bytes,
                "header_crc": s.header_crc,
                "first": s.first,
                "last": s.last,
            }
            for s in segments
        ],
        "tombstones": tomb_entry,
    }
    m["checksum"] = _sha256(_canonical(m))
    with atomic_write(d / MANIFEST) as fh:
        json.dump(m, fh, indent=1)
        fh.write("\n")
    _fsync_dir(d)
    return m


def upgrade(path: str | os.PathLike[str], *, _locked: bool = False) -> None:
    """Upgrades, in place, a directory saved by the in-memory ``DedupIndex.save`` into an
    on-disk index with the same settings, documents, numbers and ids (the old files stay)."""
    from textsieve.dedup import DedupIndex

    d = Path(path)
    if (d / MANIFEST).exists():
        return
    if not _locked:  # opening it upgrades it, under the lock
        PersistentDedupIndex.open(d, create=False).close()
        return
    old = DedupIndex.load(d)
    s = DedupSettings(**{k: v for k, v in old.settings.items() if k != "cluster"})
    config = s.config()
    snap = _core.SnapshotCore(config, [], [], 0)
    batch = snap.batch(d)
    kept = old._core.kept_documents()
    ids = old.ids
    for at in range(0, len(kept), _PAGE):
        page = kept[at : at + _PAGE]
        batch.import_docs([n for n, _ in page], [t for _, t in page], [ids[n] for n, _ in page])
    batch.skip_to(len(old))
    seg = batch.write(str(d / "seg-00000001.tsx"))
    _commit(d, s, 1, [seg] if seg is not None else [], None, len(old))
