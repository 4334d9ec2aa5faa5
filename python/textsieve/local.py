"""The local dedup engine: ``textsieve dedup`` in this process, streaming.

Records are read chunk by chunk and fed to the Rust core, which keeps fixed-size state per
document (band keys, a digest, an offset): texts it may need again go to a store that moves to
an unlinked temporary file in OUTDIR past 64 MB. With the default rule (greedy, input order) each
chunk is decided as it is fed and its outputs are written at once, so the corpus is read once
and never held in memory. ``keep="longest"``, ``cluster="components"`` and ``all_pairs`` need
every document before the first decision: the inputs are then read a second time to write the
outputs. Progress goes to stderr for each stage.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np

from textsieve import _core
from textsieve._progress import Progress
from textsieve.dedup import DedupSettings, component_warnings, examined_per_doc
from textsieve.io import CorpusReader, json_text
from textsieve.pipeline import (
    REPORT_MEMBERS,
    Outputs,
    OutputSet,
    cluster_sizes,
    kept_parquet,
    largest_clusters,
    output_files,
    write_kept_parquet,
    write_report_to,
)

T = TypeVar("T")

CHUNK_DOCS = 8192
CHUNK_BYTES = 8 << 20


def read_ahead(it: Iterator[T], depth: int = 2) -> Iterator[T]:
    """The items of ``it``, produced by a background thread up to ``depth`` ahead: the next chunk
    is read and parsed (holding the GIL) while the Rust core works on this one (without it).
    An exception in the reader is raised here; closing early stops the reader."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put((None, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((None, done))
        except BaseException as exc:  # handed to the consumer, raised there
            q.put((exc, None))

    thread = threading.Thread(target=produce, name="textsieve-reader", daemon=True)
    thread.start()
    try:
        while True:
            exc, item = q.get()
            if exc is not None:
                raise exc
            if item is done:
                return
            yield item
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                q.get_nowait()
        thread.join()


class BackgroundWriter:
    """Writes decided chunks (:meth:`Outputs.write`) on a thread of its own, in order, so the
    rendering and the file writes (which let go of the GIL) run beside the core's signing of the
    next chunk instead of between two of them. An error in the writer is raised by the next
    :meth:`write` or by :meth:`close`."""

    def __init__(self, out: Outputs, depth: int = 4) -> None:
        self.out = out
        self._q: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="textsieve-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self.out.write(*item)
                except BaseException as exc:  # handed to the main thread
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, chunk: Any, first: int, duplicate_of: Any, similarity: Any) -> None:
        self._raise()
        self._q.put((chunk, first, duplicate_of, similarity))

    def close(self) -> None:
        """Waits for every chunk to be written."""
        self.stop()
        self._raise()

    def stop(self) -> None:
        """Ends the thread after the chunks already given (on an error too; raises nothing)."""
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join()


def dedup_local(
    make_reader: Callable[[], CorpusReader],
    outdir: str,
    settings: DedupSettings,
    *,
    all_pairs: bool = False,
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
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Dedup the corpus ``make_reader()`` yields into ``outdir``; returns ``(stats, extra)``,
    ``extra`` holding what a caller may show: ``ids`` (``_core.IdsCore``) and the removal
    arrays ``duplicate_of`` / ``similarity``. ``make_reader`` is called again for a second pass
    when the rule cannot decide as it reads. The outputs are renamed into place together at the
    end, ``stats.json`` last, so an OUTDIR with it holds one complete run; ``parameters`` are
    added to its ``parameters``. ``compression`` (``"gzip"``, ``"zstd"``) compresses the JSON
    Lines outputs (``kept.jsonl.gz``...); ``annotate`` writes every record with its decision to
    ``annotated.jsonl`` instead of ``kept.jsonl`` and ``removed.jsonl``; ``kept_format``
    ``"parquet"`` (``"auto"``: when every input is Parquet) writes the kept rows to
    ``kept.parquet`` with their columns and types. ``last``: the process ends after this call (the command line),
    so Ctrl-C stays ignored once the outputs are in place."""
    t_start = time.perf_counter()
    threshold = settings.threshold
    run = _core.DedupRun(
        settings.config(), bool(all_pairs), spill_dir=outdir, samples=REPORT_MEMBERS - 1
    )
    ids = _core.IdsCore()
    reader = make_reader()
    parquet = not annotate and kept_parquet(reader.inputs, kept_format)
    t_read = t_feed = 0.0
    bar_opts: dict[str, Any] = {"unit": "docs", "enabled": show_progress}
    with OutputSet(outdir, output_files(annotate, parquet), compression) as files:
        out = Outputs(files, ids=ids, all_pairs=all_pairs, annotate=annotate, parquet=parquet)
        desc = "dedup" if run.streaming else "reading and signing"
        writer = BackgroundWriter(out)
        with contextlib.ExitStack() as cleanup, Progress(desc=desc, **bar_opts) as bar:
            cleanup.callback(writer.stop)
            n = 0
            t0 = time.perf_counter()
            last_bytes = 0
            # a chunk's decisions come with the next feed (the core signs one chunk while it
            # decides the one before): its records wait here until then
            waiting: collections.deque[tuple[int, Any]] = collections.deque()

            def write(dec: dict[str, Any]) -> None:
                if len(dec["duplicate_of"]) == 0:
                    return
                first, chunk = waiting.popleft()
                writer.write(chunk, first, dec["duplicate_of"], dec["similarity"])

            for chunk in read_ahead(reader.chunks(CHUNK_DOCS, CHUNK_BYTES)):
                t1 = time.perf_counter()
                t_read += t1 - t0
                ids.push_chunk(chunk)
                size = len(chunk)
                if n == 0 and run.streaming:
                    # the documents to come, from the first chunk's bytes a document: the core
                    # sizes its tables of kept documents once, instead of growing them by steps
                    expected = reader.expected_docs(size, chunk.n_bytes)
                    if expected:
                        run.expect(expected)
                _, _, dec = run.feed_chunk(chunk, num_threads)
                if dec is not None:
                    waiting.append((n, chunk))
                    write(dec)
                n += size
                bar.update(size, nbytes=reader.n_bytes - last_bytes)
                last_bytes = reader.n_bytes
                t0 = time.perf_counter()
                t_feed += t0 - t1
            t1 = time.perf_counter()
            if run.streaming and waiting:
                write(run.flush(num_threads))
            writer.close()
        if run.streaming:
            res = run.finish(num_threads)
        else:
            # keep=longest, components, all_pairs: every decision is made here, in the core
            # (a step at a time, so the bar moves and Ctrl-C is seen between steps)
            what = "pairs+docs" if settings.cluster == "components" else "docs"
            with Progress(desc="deciding", unit=what, enabled=show_progress) as bar:
                shown = 0
                while True:
                    done, bar.total = run.step(num_threads)
                    bar.update(done - shown)
                    shown = done
                    if done >= bar.total:
                        break
                res = run.finish(num_threads)
        t_finish = time.perf_counter() - t1
        duplicate_of = np.asarray(res["duplicate_of"])
        similarity = np.asarray(res["similarity"], dtype=np.float64)
        t_write0 = time.perf_counter()
        if not run.streaming:
            # the second pass: the decisions are known, the records are read again to be written
            again = make_reader()
            with Progress(total=n, desc="writing", **bar_opts) as bar:
                m = 0
                for chunk in again.chunks(CHUNK_DOCS, CHUNK_BYTES):
                    size = len(chunk)
                    out.write(chunk, m, duplicate_of[m : m + size], similarity[m : m + size])
                    m += size
                    bar.update(size)
            if m != n:
                raise RuntimeError(f"the second read of the inputs gave {m} documents, not {n}")
        if all_pairs:
            out.write_all_pairs(res["pair_i"], res["pair_j"], res["pair_jaccard"])
        if parquet:
            fh = files.open("kept.parquet", "wb")
            write_kept_parquet(reader.inputs, duplicate_of >= 0, text_field, fh)
        stats = _stats(
            reader, res, n, duplicate_of, similarity, settings.as_dict(), ids, run, files, out,
            outdir,
            inputs or [], threshold, all_pairs, text_field, id_field,
            {"read": t_read, "feed": t_feed, "finish": t_finish, "start": t_start,
             "write0": t_write0},
        )  # fmt: skip
        stats["parameters"].update(
            parameters or {}, compression=compression, annotate=annotate, kept_format=kept_format
        )
        fh = files.open("stats.json")
        fh.write(json_text(stats, indent=2))
        fh.write("\n")
        files.commit(last=last)
    return stats, {"ids": ids, "duplicate_of": duplicate_of, "similarity": similarity}


def _stats(
    reader: CorpusReader,
    res: dict[str, Any],
    n: int,
    duplicate_of: np.ndarray,
    similarity: np.ndarray,
    settings: dict[str, Any],
    ids: Any,
    run: Any,
    files: OutputSet,
    out: Outputs,
    outdir: str,
    inputs: list[str],
    threshold: float,
    all_pairs: bool,
    text_field: str,
    id_field: str | None,
    t: dict[str, float],
) -> dict[str, Any]:
    from textsieve import __version__

    removed = duplicate_of >= 0
    n_removed = int(removed.sum())
    n_kept = n - n_removed
    reps, sizes = cluster_sizes(duplicate_of)
    warnings: list[str] = []
    below: list[tuple[str, str, float]] = []
    extra: dict[str, Any] = {}
    if settings["cluster"] == "components":
        extra = component_warnings(res["cluster"], similarity, threshold)
        warnings = extra["warnings"]
        below = [
            (ids[d], ids[int(duplicate_of[d])], float(similarity[d]))
            for d in extra["below_threshold"][:50]
        ]
    if out.n_same_id:
        warnings.append(
            f"{out.n_same_id:,} removed document(s) have the same id as the document they "
            "duplicate: ids repeat across the inputs (name another field with --id-field, or "
            "--id-field '' for FILE:LINE ids)"
        )
    n_pairs = len(res["pair_i"]) if all_pairs else n_removed
    summary = {
        "input files": len(reader.files),
        "documents in": n,
        "kept": n_kept,
        "removed": n_removed,
        "clusters with duplicates": len(reps),
        "clustering": settings["cluster"],
        "pairs listed": n_pairs,
        "empty documents": int(np.asarray(res["empty"]).sum()),
        "skipped bad records": reader.n_skipped,
        "threshold": threshold,
        "shingles": f"{settings['shingle']}:{settings['k']}",
        "permutations": settings["num_perm"],
        "seed": settings["seed"],
        "keep": settings["keep"],
        "MB read": round(reader.n_bytes / 1e6, 2),
    }
    shown = largest_clusters(duplicate_of, similarity, ids.__getitem__, run.text)
    write_report_to(
        files.open("report.html"),
        similarities=similarity[removed],
        duplicate_of=duplicate_of,
        shown=shown,
        summary=summary,
        threshold=threshold,
        inputs=inputs,
        warnings=warnings,
        below_threshold=below,
    )
    now = time.perf_counter()
    total = now - t["start"]
    t_write = now - t["write0"]
    return {
        "textsieve": __version__,
        "n_input": n,
        "n_kept": n_kept,
        "n_removed": n_removed,
        "n_input_equals_kept_plus_removed": True,
        "n_clusters": n_kept,
        "n_clusters_with_duplicates": len(reps),
        "largest_cluster": int(sizes.max()) if len(sizes) else min(n, 1),
        "n_pairs": n_pairs,
        "n_removed_with_same_id": out.n_same_id,
        "n_examined": int(res["n_candidates"]),
        "examined_per_doc": examined_per_doc(np.asarray(res["examined"])),
        "warnings": warnings,
        "n_empty": int(np.asarray(res["empty"]).sum()),
        "n_skipped": reader.n_skipped,
        "skipped": [r._asdict() for r in reader.skipped],
        "n_blank_lines": reader.n_blank,
        "input_bytes": reader.n_bytes,
        "inputs": inputs,
        "input_files": reader.files,
        "parameters": {
            "threshold": threshold,
            "num_perm": settings["num_perm"],
            "seed": settings["seed"],
            "shingle": settings["shingle"],
            "k": settings["k"],
            "keep": settings["keep"],
            "cluster": settings["cluster"],
            "all_pairs": all_pairs,
            "text_field": text_field,
            "id_field": id_field,
        },
        "timings_s": {
            "read": round(t["read"], 4),
            "dedup": round(t["feed"] + t["finish"], 4),
            "write": round(t_write, 4),
            "total": round(total, 4),
        },
        "throughput": {
            "docs_per_s": round(n / total, 1) if total > 0 else None,
            "mb_per_s": round(reader.n_bytes / 1e6 / total, 2) if total > 0 else None,
        },
        "dedup_stats": {
            "bands": settings["bands"],
            "rows": settings["rows"],
            "stored_text_bytes": int(res["stored_bytes"]),
            "texts_spilled_to_disk": bool(res["spilled"]),
            "seconds": dict(res["seconds"]),
            **{k: v for k, v in extra.items() if k != "warnings"},
        },
        "outdir": os.path.abspath(outdir),
        "outputs": {name: os.path.abspath(files.path(name)) for name in files.names},
    }
