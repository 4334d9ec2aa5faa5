"""The dedup pipeline shared by the engines: the output files, the report and the summary.

An engine (:mod:`textsieve.local`, :mod:`textsieve.distributed`) decides; this module writes
what ``textsieve dedup`` promises in OUTDIR, the same bytes whichever engine decided:

- ``kept.jsonl``: the kept input records, byte for byte as read (plain text and Parquet rows
  become JSON objects), or ``kept.parquet``: the kept rows of Parquet inputs, with their types;
- ``annotated.jsonl`` (``annotate``), instead of kept and removed: every record with its decision;
- ``removed.jsonl``: one row per removed document: id, cluster, the kept document it duplicates,
  their exact Jaccard, and where it came from;
- ``pairs.jsonl``: one row per removed document (``{"id", "duplicate_of", "jaccard"}``), or
  every verified pair (``{"id_a", "id_b", "jaccard"}``) with ``all_pairs``;
- ``stats.json`` and ``report.html``.

The JSON Lines outputs may be compressed (``kept.jsonl.gz``, ``.zst``).

Every file is written atomically. The library never imports the command line; the command line
prints with :func:`print_summary`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np

from textsieve import _core
from textsieve.errors import TextsieveError
from textsieve.io import open_new, open_parquet, temp_path

T = TypeVar("T")

OUTPUT_FILES = ("kept.jsonl", "removed.jsonl", "pairs.jsonl", "stats.json", "report.html")
#: the outputs with ``annotate``: every record with its decision, instead of kept and removed
ANNOTATED_FILES = ("annotated.jsonl", "pairs.jsonl", "stats.json", "report.html")
#: the outputs that ``compression`` compresses, and the suffix each compression adds to them
JSONL_OUTPUTS = ("kept.jsonl", "removed.jsonl", "pairs.jsonl", "annotated.jsonl")
COMPRESSIONS = {"gzip": ".gz", "zstd": ".zst"}


def output_files(annotate: bool = False, parquet: bool = False) -> tuple[str, ...]:
    """The outputs of a run; ``parquet``: the kept rows go to ``kept.parquet``."""
    if annotate:
        return ANNOTATED_FILES
    return ("kept.parquet", *OUTPUT_FILES[1:]) if parquet else OUTPUT_FILES


def kept_parquet(inputs: Sequence[Any], kept_format: str) -> bool:
    """Whether the kept rows are written as Parquet: ``kept_format`` ``"parquet"``, or
    ``"auto"`` and every input is a Parquet file."""
    if kept_format == "auto":
        return bool(inputs) and all(f.format == "parquet" for f in inputs)
    if kept_format == "parquet" and not all(f.format == "parquet" for f in inputs):
        raise TextsieveError("--kept-format parquet needs Parquet inputs only")
    return kept_format == "parquet"


def _text_column(batch: Any, name: str) -> Any:
    """The column a field name picks (a key equal to the whole name, else a path into struct
    columns, as :func:`textsieve.io.get_field`), or None."""
    import pyarrow as pa

    names = batch.schema.names
    if name in names:
        return batch.column(name)
    col = None
    for k, part in enumerate(name.split(".")):
        if k == 0:
            if part not in names:
                return None
            col = batch.column(part)
        elif pa.types.is_struct(col.type) and col.type.get_field_index(part) >= 0:
            col = col.field(part)
        else:
            return None
    return col


def write_kept_parquet(inputs: Sequence[Any], removed: np.ndarray, text_field: str, fh: Any) -> int:
    """The rows of the Parquet ``inputs`` whose document is not ``removed`` (a mask over the
    documents, which are the rows with a string text, in order), with the inputs' columns and
    types, written to the open binary file ``fh``; returns the rows written."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    writer = None
    doc = written = 0
    try:
        for inp in inputs:
            pf = open_parquet(inp.path)
            if writer is None:
                writer = pq.ParquetWriter(fh, pf.schema_arrow)
            elif not pf.schema_arrow.equals(writer.schema):
                raise TextsieveError(
                    f"{inp.label}: its columns differ from the first input's, so the kept rows "
                    "cannot go to one Parquet file (use --kept-format jsonl)"
                )
            for batch in pf.iter_batches(batch_size=1 << 16):
                col = _text_column(batch, text_field)
                if col is None or not (
                    pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
                ):
                    valid = np.zeros(len(batch), bool)
                else:
                    valid = np.asarray(pc.is_valid(col).to_numpy(zero_copy_only=False), bool)
                n = int(valid.sum())
                if doc + n > len(removed):
                    raise RuntimeError(f"{inp.label} has more rows than when it was read")
                keep = valid.copy()
                keep[valid] = ~removed[doc : doc + n]
                doc += n
                writer.write_batch(batch.filter(pa.array(keep)))
                written += int(keep.sum())
        if doc != len(removed):
            raise RuntimeError(f"the Parquet inputs have {doc} documents, not {len(removed)}")
    finally:
        if writer is not None:
            writer.close()
    return written


def output_name(name: str, compression: str | None = None) -> str:
    """The file name of output ``name`` (``kept.jsonl.gz`` for ``kept.jsonl`` with gzip)."""
    if compression is None or name not in JSONL_OUTPUTS:
        return name
    return name + COMPRESSIONS[compression]


def every_output_name() -> set[str]:
    """The name of every file a run may write in OUTDIR, whatever its layout and compression."""
    names = {
        output_name(n, c) for n in (*JSONL_OUTPUTS, *OUTPUT_FILES) for c in (None, *COMPRESSIONS)
    }
    return names | {"kept.parquet"}


def stale_outputs(
    outdir: str, compression: str | None, names: Sequence[str] = OUTPUT_FILES
) -> list[str]:
    """Outputs a previous run left in ``outdir`` under names this run (writing ``names``) does
    not write (another compression, or layout): they must go, so that OUTDIR holds one run."""
    mine = {output_name(n, compression) for n in names}
    every = every_output_name()
    return [
        os.path.join(outdir, name)
        for name in sorted(every - mine)
        if os.path.exists(os.path.join(outdir, name))
    ]


REPORT_CLUSTERS = 12
REPORT_MEMBERS = 4
REPORT_TEXT_CHARS = 2000


def remove_stale_temporaries(outdir: str) -> None:
    """Remove the hidden temporaries of outputs that killed runs left in ``outdir``."""
    for name in sorted(every_output_name()):
        for stale in glob.glob(os.path.join(glob.escape(outdir), f".{name}.*.tmp")):
            with contextlib.suppress(OSError):
                os.unlink(stale)


# How often an OutputSet's temporaries are synced to disk while they are written.
_SYNC_EVERY_S = 1.0


class OutputSet:
    """The output files of one run in OUTDIR, written as hidden temporaries and renamed into place
    together by :meth:`commit`, which Ctrl-C does not stop; ``stats.json`` goes last,
    so it marks a complete run, and a previous run's ``stats.json`` is removed first, so one run's
    stats never sit beside another run's files. Leaving the block without a commit removes the
    temporaries; entering it removes those that killed runs left behind."""

    def __init__(
        self, outdir: str, names: Sequence[str] = OUTPUT_FILES, compression: str | None = None
    ) -> None:
        self.outdir, self.names, self.compression = outdir, tuple(names), compression
        self._tmp: dict[str, Path] = {}
        self._open: list[IO[Any]] = []

    def path(self, name: str) -> str:
        """Where output ``name`` lands (with its compression's suffix)."""
        return os.path.join(self.outdir, output_name(name, self.compression))

    def __enter__(self) -> OutputSet:
        os.makedirs(self.outdir, exist_ok=True)
        remove_stale_temporaries(self.outdir)
        self._stop = threading.Event()
        self._syncer = threading.Thread(
            target=self._sync_behind, name="textsieve-outputs-sync", daemon=True
        )
        self._syncer.start()
        return self

    def _sync_behind(self) -> None:
        """Every second, hands the disk what the temporaries hold so far (``fdatasync`` lets
        the other threads run), so that the commit's ``fsync`` has little left: with it all at
        the end, a 1 GB ``kept.jsonl`` held the run for over a second with the cores idle."""
        sync = getattr(os, "fdatasync", os.fsync)
        while not self._stop.wait(_SYNC_EVERY_S):
            for fh in list(self._open):
                # a file closed meanwhile has no number (or a stale one: a sync of another
                # file does no harm)
                with contextlib.suppress(OSError, ValueError):
                    sync(fh.fileno())

    def _stop_syncing(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
            self._syncer.join()

    def open(self, name: str, mode: str = "w") -> IO[Any]:
        """The temporary file that becomes ``name`` (closed by :meth:`commit`)."""
        tmp = temp_path(self.path(name))
        self._tmp[name] = tmp
        compression = self.compression if name in JSONL_OUTPUTS else None
        fh = open_new(tmp, mode, compression=compression)
        self._open.append(fh)
        return fh

    def commit(self, *, last: bool = False) -> None:
        """Rename every file into place. ``last``: the process ends right after (the command
        line), so Ctrl-C stays ignored: a run whose outputs are in place has finished."""
        self._stop_syncing()
        for fh in self._open:
            if not fh.closed:
                fh.flush()
                os.fsync(fh.fileno())
                fh.close()
        order = [n for n in self.names if n in self._tmp and n != "stats.json"]
        with _sigint_held(keep=last):
            others = stale_outputs(self.outdir, self.compression, self.names)
            for stale in [self.path("stats.json"), *others]:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(stale)
            for name in order + (["stats.json"] if "stats.json" in self._tmp else []):
                os.replace(self._tmp.pop(name), self.path(name))

    def __exit__(self, *exc: Any) -> None:
        self._stop_syncing()
        for fh in self._open:
            with contextlib.suppress(OSError):
                fh.close()
        for tmp in self._tmp.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


@contextlib.contextmanager
def _sigint_held(keep: bool = False) -> Iterator[None]:
    """Ctrl-C is ignored inside the block (and after it with ``keep``): the renames of a commit
    are the point of no return, so a Ctrl-C there comes too late and the run completes (main
    thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        if not keep:
            signal.signal(signal.SIGINT, old)


class Outputs:
    """``kept.jsonl``, ``removed.jsonl`` and ``pairs.jsonl`` of an :class:`OutputSet`, written
    chunk by chunk as decisions arrive; the lines are made by the core
    (``_core.render_chunk``), the ids of every document are in ``ids`` (``_core.IdsCore``)."""

    def __init__(
        self,
        files: OutputSet,
        *,
        ids: Any,
        all_pairs: bool,
        annotate: bool = False,
        parquet: bool = False,
    ) -> None:
        self.ids, self.all_pairs, self.annotate = ids, all_pairs, annotate
        self.n_kept = self.n_removed = self.n_pairs = self.n_same_id = 0
        # with annotate, every record goes to annotated.jsonl and no removed rows are written;
        # kept rows as Parquet are written at the end (write_kept_parquet)
        self._kept: IO[bytes] | None = None
        if annotate or not parquet:
            self._kept = files.open("annotated.jsonl" if annotate else "kept.jsonl", "wb")
        self._removed: IO[bytes] | None = None if annotate else files.open("removed.jsonl", "wb")
        self._pairs: IO[bytes] = files.open("pairs.jsonl", "wb")

    def write(
        self, chunk: Any, first: int, duplicate_of: np.ndarray, similarity: np.ndarray
    ) -> None:
        """A sealed chunk (``_core.ChunkCore``) of documents numbered ``first..`` with their
        decisions (``-1``: kept)."""
        dup = np.ascontiguousarray(duplicate_of, dtype=np.int64)
        sim = np.ascontiguousarray(similarity, dtype=np.float64)
        kept, removed, pairs, same_id = _core.render_chunk(
            chunk, first, dup, sim, self.ids, not self.all_pairs, self.annotate
        )
        self.n_same_id += same_id
        if self._kept is not None:
            self._kept.write(kept)
        if self._removed is not None:
            self._removed.write(removed)
        self._pairs.write(pairs)
        n_removed = int((dup >= 0).sum())
        self.n_kept += len(dup) - n_removed
        self.n_removed += n_removed
        if not self.all_pairs:
            self.n_pairs += n_removed

    def write_all_pairs(self, i: np.ndarray, j: np.ndarray, jac: np.ndarray) -> None:
        """Every verified pair (``all_pairs``), sorted as given."""
        step = 1 << 16
        i = np.ascontiguousarray(i, dtype=np.uint64)
        j = np.ascontiguousarray(j, dtype=np.uint64)
        jac = np.ascontiguousarray(jac, dtype=np.float64)
        for start in range(0, len(i), step):
            end = start + step
            self._pairs.write(
                _core.render_pairs(self.ids, i[start:end], j[start:end], jac[start:end])
            )
        self.n_pairs += len(i)


def cluster_sizes(duplicate_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(kept document, size)`` of every cluster with duplicates (its kept document included),
    sorted by kept document."""
    dup = np.asarray(duplicate_of)
    reps, counts = np.unique(dup[dup >= 0], return_counts=True)
    return reps, counts + 1


def largest_clusters(
    duplicate_of: np.ndarray,
    similarity: np.ndarray,
    id_of: Callable[[int], str],
    text_of: Callable[[int], str | None],
    limit: int = REPORT_CLUSTERS,
) -> list[dict[str, Any]]:
    """The ``limit`` largest clusters, each with its kept document and its most similar removed
    members (ids, texts and similarities) for the report."""
    dup = np.asarray(duplicate_of)
    reps, sizes = cluster_sizes(dup)
    # largest first, ties by kept document (reps are sorted): a stable sort of the sizes
    order = np.argsort(-sizes, kind="stable")[:limit]
    top = list(zip(sizes[order].tolist(), reps[order].tolist()))
    if not top:
        return []
    wanted = {r for _, r in top}
    members: dict[int, list[int]] = {r: [] for r in wanted}
    for d in np.flatnonzero(np.isin(dup, list(wanted))).tolist():
        members[int(dup[d])].append(d)
    sim = np.asarray(similarity, dtype=np.float64)
    shown = []
    texts: dict[int, str | None] = {}
    for size, rep in top:
        # the most similar members whose text the engine kept (a streaming run keeps a few)
        removed = []
        for d in sorted(members[rep], key=lambda d: (-sim[d], d)):
            texts[d] = text_of(d)
            if texts[d] is not None:
                removed.append(d)
                if len(removed) == REPORT_MEMBERS - 1:
                    break
        texts[rep] = text_of(rep)
        chosen = [(rep, True, None)] + [(d, False, float(sim[d])) for d in removed]
        shown.append(
            {
                "cluster": rep,
                "size": size,
                "members": [
                    {
                        "id": id_of(d),
                        "text": (texts[d] or "")[:REPORT_TEXT_CHARS],
                        "kept": kept,
                        "jaccard": jac,
                    }
                    for d, kept, jac in chosen
                ],
            }
        )
    return shown


def write_report_to(
    fh: IO[str],
    *,
    similarities: np.ndarray,
    duplicate_of: np.ndarray,
    shown: list[dict[str, Any]],
    summary: dict[str, Any],
    threshold: float,
    inputs: Sequence[str],
    warnings: Sequence[str] = (),
    below_threshold: Sequence[tuple[str, str, float]] = (),
) -> None:
    """The report page (:func:`textsieve.report.render_report`) written to an open file: the
    cluster sizes come from ``duplicate_of``."""
    from textsieve.report import render_report

    _, sizes = cluster_sizes(duplicate_of)
    page = render_report(
        similarities=similarities,
        cluster_sizes=sizes.tolist(),
        clusters=shown,
        summary=summary,
        threshold=threshold,
        warnings=warnings,
        below_threshold=below_threshold,
        subtitle=", ".join(inputs[:3])
        + (f" and {len(inputs) - 3} more" if len(inputs) > 3 else ""),
    )
    fh.write(page)


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "0%"


def print_summary(stats: dict[str, Any], out: Callable[[str], Any] = print) -> None:
    """The human summary of a finished run (what ``textsieve dedup`` prints)."""
    n, t = stats["n_input"], stats["timings_s"]
    cluster = stats.get("parameters", {}).get("cluster", "greedy")
    out(
        f"{n:,} documents from {len(stats['input_files']):,} file(s), "
        f"{stats['input_bytes'] / 1e6:,.1f} MB: kept {stats['n_kept']:,}, removed "
        f"{stats['n_removed']:,} ({_pct(stats['n_removed'], n)}) in "
        f"{stats['n_clusters_with_duplicates']:,} clusters ({cluster}); "
        f"{stats.get('n_examined', 0):,} similarities computed"
    )
    for w in stats.get("warnings", []):
        out(f"warning: {w}")
    if stats.get("n_empty"):
        out(f"{stats['n_empty']:,} empty document(s) kept as they are (never matched)")
    if stats["n_skipped"]:
        first = stats["skipped"][0]
        out(
            f"skipped {stats['n_skipped']:,} malformed record(s), first at "
            f"{first['source']}:{first['line']}: {first['reason']}"
        )
    out(
        f"time: read {t['read']:.2f}s, dedup {t['dedup']:.2f}s, write {t['write']:.2f}s, "
        f"total {t['total']:.2f}s"
    )
    names = [os.path.basename(path) for path in stats["outputs"].values()]
    out(f"wrote {', '.join(names)} to {stats['outdir']}")


def chunks(
    items: Iterable[T], docs: int, chars: int, text: Callable[[T], Any] = lambda r: r.text
) -> Iterator[list[T]]:
    """``items`` (records, or texts with ``text=`` the identity) in lists of at most ``docs``
    documents or about ``chars`` characters (of ``text(item)`` where it is a str)."""
    chunk: list[T] = []
    size = 0
    for item in items:
        chunk.append(item)
        t = text(item)
        if isinstance(t, str):
            size += len(t)
        if len(chunk) >= docs or size >= chars:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk
