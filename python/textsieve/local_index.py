"""``textsieve dedup NEW... --index DIR [--update]``: the local engine against an on-disk index.

The inputs are read chunk by chunk and each chunk is decided against the index and the kept
documents before it in the run (:class:`textsieve.index.PersistentDedupIndex`'s rule), then its
outputs are written at once: the same files as :func:`textsieve.local.dedup_local`
(``kept.jsonl``, ``removed.jsonl``, ``pairs.jsonl``, ``stats.json``, ``report.html``). A removed
document names the document it duplicates by its id, whether that one was earlier in the run or
in the index. With ``update`` the kept documents are added to the index as one segment,
committed after the outputs (a run stopped before the end leaves the index as it was).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from textsieve import _core
from textsieve._progress import Progress
from textsieve.dedup import examined_per_doc
from textsieve.index import FEED_CHARS, FEED_DOCS, PersistentDedupIndex
from textsieve.io import CorpusReader, to_jsonable
from textsieve.local import CHUNK_BYTES, CHUNK_DOCS, BackgroundWriter, read_ahead
from textsieve.pipeline import (
    Outputs,
    OutputSet,
    cluster_sizes,
    kept_parquet,
    largest_clusters,
    output_files,
    write_kept_parquet,
    write_report_to,
)

# The command looks its input up in groups of this many documents (or bytes): half what an
# API call does at a time (FEED_DOCS), because it holds two groups in flight (one fed, one
# waiting for its decisions), each with its records and texts. With 65,536 the tenth 1 GB add
# of the bench peaked 250 MB higher (1.73-1.80 GB against 1.48-1.55) in the same CPU time
# (five alternating rounds); with 16,384 it took 5% more CPU for 105 MB less.
GROUP_DOCS = FEED_DOCS // 2
GROUP_CHARS = FEED_CHARS // 2


def _groups(chunks: Iterable[Any]) -> Iterator[list[Any]]:
    """The reader's chunks in groups of about :data:`GROUP_DOCS` documents (or
    :data:`GROUP_CHARS` bytes), fed to the index together: one lookup pass each."""
    group: list[Any] = []
    docs = 0
    for chunk in chunks:
        group.append(chunk)
        docs += len(chunk)
        if docs >= GROUP_DOCS or len(group) * CHUNK_BYTES >= GROUP_CHARS:
            yield group
            group, docs = [], 0
    if group:
        yield group


def dedup_with_index(
    make_reader: Callable[[], CorpusReader],
    outdir: str,
    index: PersistentDedupIndex,
    *,
    update: bool = False,
    num_threads: int | None = None,
    text_field: str = "text",
    id_field: str | None = "id",
    inputs: list[str] | None = None,
    show_progress: bool | None = None,
    parameters: dict[str, Any] | None = None,
    compression: str | None = None,
    annotate: bool = False,
    kept_format: str = "auto",
    last: bool = False,
) -> dict[str, Any]:
    """Dedup the corpus ``make_reader()`` yields against ``index`` (and within itself) into
    ``outdir``; with ``update``, add its kept documents to the index. Returns the stats.
    ``compression``, ``annotate`` and ``kept_format`` choose the outputs as for
    :func:`textsieve.local.dedup_local`."""
    t_start = time.perf_counter()
    settings = index.settings
    reader = make_reader()
    parquet = not annotate and kept_parquet(reader.inputs, kept_format)
    index._check_open()
    # (the segment written in the background is waited for before the write lock is let go,
    # whatever happens: `waits` closes first)
    with index._writing() if update else contextlib.nullcontext(), contextlib.ExitStack() as waits:
        snap = index._snap
        # (an add begins its segment in the index's folder: its texts are written there as
        # they are kept)
        batch = snap.batch(index.path if update else outdir, write=update)
        first = int(batch.next)
        # Outputs name documents by position in `ids`: the run's documents, and before each
        # chunk the index documents it duplicates (positions are assigned in that order, so a
        # duplicate's position is always before its own)
        ids = _core.IdsCore()
        index_pos: dict[int, int] = {}
        run_pos = np.zeros(0, np.int64)  # run document -> position
        dup_all: list[np.ndarray] = []  # per run document: the position it duplicates, or -1
        sim_all: list[np.ndarray] = []
        examined: list[np.ndarray] = []
        n_empty = n_vs_index = 0
        t_read = t_feed = 0.0
        with OutputSet(outdir, output_files(annotate, parquet), compression) as files:
            out = Outputs(files, ids=ids, all_pairs=False, annotate=annotate, parquet=parquet)
            writer = BackgroundWriter(out)
            with (
                contextlib.ExitStack() as cleanup,
                Progress(desc="dedup", unit="docs", enabled=show_progress) as bar,
            ):
                cleanup.callback(writer.stop)
                n = 0
                last_bytes = 0
                # the core decides each group while it signs the next one: a group's
                # decisions come back with the next call (the last group's with `flush`), and
                # its records wait here until then
                waiting: collections.deque[list[Any]] = collections.deque()

                def take(decided: dict[str, Any] | None) -> None:
                    nonlocal n, last_bytes, run_pos, n_vs_index, n_empty
                    if decided is None:
                        return
                    group = waiting.popleft()
                    dup_g = np.asarray(decided["duplicate_of"], dtype=np.int64)
                    in_index = (dup_g >= 0) & (dup_g < first)
                    old = sorted({int(d) for d in dup_g[in_index]} - set(index_pos))
                    if old:
                        names = snap.ids_of(old)
                        ids.extend([str(x).encode("utf-8", "surrogatepass") for x in names])
                        for k, d in enumerate(old):
                            index_pos[d] = len(ids) - len(old) + k
                    n_vs_index += int(in_index.sum())
                    # every document of the group has its position before any is written: with
                    # keep="longest" a document may duplicate a later one of the group
                    size_g = len(dup_g)
                    if n + size_g > len(run_pos):  # grown by doubling: linear in the run
                        run_pos = np.resize(run_pos, max(2 * len(run_pos), n + size_g))
                    starts = []
                    at = n
                    for chunk in group:
                        starts.append(len(ids))
                        ids.push_chunk(chunk)
                        run_pos[at : at + len(chunk)] = np.arange(starts[-1], len(ids))
                        at += len(chunk)
                    pos_g = np.full(size_g, -1, np.int64)
                    new = dup_g >= first
                    pos_g[new] = run_pos[dup_g[new] - first]
                    for i in np.flatnonzero(in_index).tolist():
                        pos_g[i] = index_pos[int(dup_g[i])]
                    sim_g = np.asarray(decided["similarity"], dtype=np.float64)
                    at = 0
                    for chunk, start in zip(group, starts):
                        size = len(chunk)
                        pos, sim = pos_g[at : at + size], sim_g[at : at + size]
                        writer.write(chunk, start, pos, sim)
                        at += size
                        n += size
                        bar.update(size, nbytes=reader.n_bytes - last_bytes)
                        last_bytes = reader.n_bytes
                    dup_all.append(pos_g)
                    sim_all.append(sim_g)
                    examined.append(np.asarray(decided["examined"]))
                    n_empty += int(np.asarray(decided["empty"]).sum())

                # each group is fed on a thread of its own while this one takes the decisions
                # of the group before (taken between feeds, they left the core idle about 6%
                # of an add); the next group is read only once the core is done with this
                # one, so that no more groups are held than before
                in_flight: _Background | None = None
                waits.callback(lambda: in_flight is not None and in_flight.wait())
                decided = None
                t0 = time.perf_counter()
                for group in _groups(read_ahead(reader.chunks(CHUNK_DOCS, CHUNK_BYTES))):
                    t1 = time.perf_counter()
                    t_read += t1 - t0
                    if not waiting and n == 0:
                        # the documents to come, from the first group's bytes a document: the
                        # core makes its tables of kept documents for them once
                        expected = reader.expected_docs(
                            sum(len(c) for c in group), sum(c.n_bytes for c in group)
                        )
                        if expected:
                            batch.expect(expected)
                    waiting.append(group)
                    in_flight = _Background(batch.feed_chunks, group, num_threads, name="feed")
                    take(decided)
                    t1 = time.perf_counter()
                    decided = in_flight.result()
                    in_flight = None
                    t0 = time.perf_counter()
                    t_feed += t0 - t1
                take(decided)
                t1 = time.perf_counter()
                take(batch.flush(num_threads))
                t_feed += time.perf_counter() - t1
                writer.close()
            # with --update the segment is written (not committed) while the outputs and the
            # report are made: the core's work on both cores beside this thread's Python
            segment = _Background(index._write_segment, batch, name="segment") if update else None
            if segment is not None:
                waits.callback(segment.wait)
            run_pos = run_pos[:n]
            dup_run = np.concatenate(dup_all) if dup_all else np.zeros(0, np.int64)
            sim_run = np.concatenate(sim_all) if sim_all else np.zeros(0)
            # the report's arrays are over positions (index documents are kept, never removed)
            dup_pos = np.full(len(ids), -1, np.int64)
            sim_pos = np.full(len(ids), np.nan)
            dup_pos[run_pos] = dup_run
            sim_pos[run_pos] = sim_run
            index_doc = {p: d for d, p in index_pos.items()}

            def text_of(p: int) -> str | None:
                # a position is an index document's, or a run document's (increasing in order)
                d = index_doc.get(p)
                return batch.text(first + int(np.searchsorted(run_pos, p)) if d is None else d)

            removed = dup_run >= 0
            n_removed = int(removed.sum())
            if parquet:
                write_kept_parquet(
                    reader.inputs, removed, text_field, files.open("kept.parquet", "wb")
                )
            reps, sizes = cluster_sizes(dup_pos)
            summary = {
                "input files": len(reader.files),
                "documents in": n,
                "kept": n - n_removed,
                "removed": n_removed,
                "removed as duplicates of the index": n_vs_index,
                "index": str(index.path),
                "documents in the index before": len(snap),
                "index updated": bool(update),
                "empty documents": n_empty,
                "skipped bad records": reader.n_skipped,
                "threshold": settings["threshold"],
                "shingles": f"{settings['shingle']}:{settings['k']}",
                "permutations": settings["num_perm"],
                "MB read": round(reader.n_bytes / 1e6, 2),
            }
            write_report_to(
                files.open("report.html"),
                similarities=sim_run[removed],
                duplicate_of=dup_pos,
                shown=largest_clusters(dup_pos, sim_pos, ids.__getitem__, text_of),
                summary=summary,
                threshold=settings["threshold"],
                inputs=inputs or [],
            )
            total = time.perf_counter() - t_start
            from textsieve import __version__

            ex = np.concatenate(examined) if examined else np.zeros(0, np.uint32)
            stats: dict[str, Any] = {
                "textsieve": __version__,
                "n_input": n,
                "n_kept": n - n_removed,
                "n_removed": n_removed,
                "n_input_equals_kept_plus_removed": True,
                "n_removed_vs_index": n_vs_index,
                "n_removed_within_input": n_removed - n_vs_index,
                "n_clusters_with_duplicates": len(reps),
                "largest_cluster": int(sizes.max()) if len(sizes) else min(n, 1),
                "n_pairs": n_removed,
                "n_removed_with_same_id": out.n_same_id,
                "n_examined": int(ex.sum()),
                "examined_per_doc": examined_per_doc(ex),
                "warnings": [],
                "n_empty": n_empty,
                "n_skipped": reader.n_skipped,
                "skipped": [r._asdict() for r in reader.skipped],
                "n_blank_lines": reader.n_blank,
                "input_bytes": reader.n_bytes,
                "inputs": inputs or [],
                "input_files": reader.files,
                "index": {
                    "path": os.path.abspath(index.path),
                    "n_docs_before": len(snap),
                    "updated": bool(update),
                },
                "parameters": {
                    **{k: settings[k] for k in ("threshold", "num_perm", "seed", "shingle", "k")},
                    "keep": settings["keep"],
                    "cluster": "greedy",
                    "all_pairs": False,
                    "text_field": text_field,
                    "id_field": id_field,
                    **(parameters or {}),
                    "compression": compression,
                    "annotate": annotate,
                    "kept_format": kept_format,
                },
                "timings_s": {
                    "read": round(t_read, 4),
                    "dedup": round(t_feed, 4),
                    "write": round(max(total - t_read - t_feed, 0.0), 4),
                    "total": round(total, 4),
                },
                "throughput": {
                    "docs_per_s": round(n / total, 1) if total > 0 else None,
                    "mb_per_s": round(reader.n_bytes / 1e6 / total, 2) if total > 0 else None,
                },
                "outdir": os.path.abspath(outdir),
                "outputs": {name: os.path.abspath(files.path(name)) for name in files.names},
            }
            if update:
                stats["index"]["n_docs_after"] = len(snap) + int(batch.kept)
            fh = files.open("stats.json")
            json.dump(to_jsonable(stats), fh, indent=2, ensure_ascii=False, allow_nan=False)
            fh.write("\n")
            # the outputs first: a run stopped between the two leaves the index as it was, and
            # running it again gives the same outputs
            files.commit(last=last)
        if segment is not None:
            index._finish(snap, batch, segment.result())
    return stats


class _Background:
    """``fn(*args)`` on a daemon thread (``textsieve-{name}``); :meth:`result` waits for it and
    returns its value or raises its exception. A process that ends meanwhile (Ctrl-C) does not
    wait for it: what it leaves is an uncommitted segment file, as a killed add does."""

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str) -> None:
        self._value: Any = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._value = fn(*args)
            except BaseException as exc:  # handed to the caller by result()
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"textsieve-{name}", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> Any:
        self.wait()
        if self._error is not None:
            raise self._error
        return self._value
