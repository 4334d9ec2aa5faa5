"""Corpus readers and writers.

Readers turn input files into :class:`Record` objects: one per document, each remembering where
it came from (file and line), its id, its text and its original bytes, so that a kept record can be
written back exactly as it was read. Supported inputs, chosen by file name:

- JSON Lines (``.jsonl``, ``.ndjson``, ``.json``): one JSON object per line; the text is in
  ``text_field`` and the id in ``id_field`` (default id: ``"<file>:<line>"``);
- plain text (any other name): one document per non-blank line, or one document per file with
  ``doc_per_file=True`` (id: the file's path);
- Parquet (``.parquet``, needs ``pyarrow``): one document per row;
- any of these compressed with gzip (``.gz``) or zstd (``.zst``/``.zstd``, needs ``zstandard``).

A directory is walked recursively in sorted order, skipping hidden files and folders. Input files
are only ever opened for reading.

Outputs are written atomically: a temporary file in the target folder, then a rename, so an
interrupted run never leaves half a file behind.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.jsonl").write_text('{"id": "x", "text": "hello"}\\n')
>>> [(r.id, r.text, r.line) for r in read_corpus([folder / "a.jsonl"])]
[('x', 'hello', 1)]
"""

from __future__ import annotations

import contextlib
import decimal
import fnmatch
import glob as glob_module
import gzip
import io
import json
import math
import os
import secrets
import shutil
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from json.encoder import encode_basestring as _encode_str
from json.encoder import encode_basestring_ascii as _encode_str_ascii
from pathlib import Path
from typing import IO, Any, NamedTuple, cast

from textsieve.errors import TextsieveError

__all__ = [
    "CorpusReader",
    "InputFile",
    "MalformedRecordError",
    "MissingDependencyError",
    "Record",
    "SkippedRecord",
    "atomic_write",
    "detect_format",
    "expand_inputs",
    "open_binary",
    "read_corpus",
    "record_json_line",
    "to_jsonable",
    "write_jsonl",
    "write_lines",
    "write_records",
]

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
PARQUET_SUFFIXES = (".parquet", ".pq")
GZIP_SUFFIXES = (".gz", ".gzip")
ZSTD_SUFFIXES = (".zst", ".zstd")
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: the input name that means standard input
STDIN = "-"
FORMATS = ("auto", "jsonl", "text", "parquet")
ON_ERROR = ("stop", "skip")
# How many skipped records stats keep verbatim; the count is always exact.
MAX_SKIPPED_EXAMPLES = 100
# The longest record read (bytes of its line): a longer one is malformed, not a MemoryError.
MAX_RECORD_BYTES = 256 << 20


class _TooLong(NamedTuple):
    """A line over the record limit, read past but not held: its size in bytes."""

    size: int


def too_long(limit: int, size: int) -> str:
    """The reason given for a record over the limit (the core gives the same words)."""
    return f"record longer than {limit} bytes ({size} bytes), the most one record may be"


class MalformedRecordError(TextsieveError):
    """A record that cannot be read: bad JSON, a missing or non-string text field, bad UTF-8.

    The message starts with ``file:line:`` so an editor can jump to it.
    """

    def __init__(self, source: str, line: int, reason: str) -> None:
        super().__init__(f"{source}:{line}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        # (the default would call __init__ with the message alone)
        return (type(self), (self.source, self.line, self.reason), self.__dict__)


class MissingDependencyError(TextsieveError, ImportError):
    """An optional package is needed for this input (zstd, Parquet) and is not installed."""


class Record(NamedTuple):
    """One document of the corpus.

    ``source`` is the file it came from, ``line`` its 1-based line (or row) number there (1 for a
    whole-file document), ``raw`` the original bytes of its line (JSONL and plain text, line ending
    included), the row as a dict (Parquet), or ``None`` (whole-file document); ``format`` is
    ``"jsonl"``, ``"text"``, ``"file"`` or ``"parquet"``.
    """

    source: str
    line: int
    id: str
    text: str
    raw: Any
    format: str


class SkippedRecord(NamedTuple):
    """A record left out by ``on_error="skip"``, and why."""

    source: str
    line: int
    reason: str


class InputFile(NamedTuple):
    """One input file, as found by :func:`expand_inputs`."""

    path: str
    format: str  # jsonl | text | parquet | file
    compression: str | None  # None | gzip | zstd
    #: what the user called it, when that is not ``path`` (``-``: a copy of standard input)
    name: str | None = None

    @property
    def label(self) -> str:
        """The file's name in messages, ids and stats."""
        return self.name if self.name is not None else self.path


# --------------------------------------------------------------------------------------------
# Finding and opening input files


def _split_compression(name: str) -> tuple[str, str | None]:
    lower = name.lower()
    for suffix in GZIP_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)], "gzip"
    for suffix in ZSTD_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)], "zstd"
    return name, None


def detect_format(
    path: str | os.PathLike[str], *, doc_per_file: bool = False, format: str = "auto"
) -> InputFile:
    """Decide how to read ``path`` from its name: ``InputFile(path, format, compression)``.

    >>> detect_format("corpus/part-0.jsonl.zst")
    InputFile(path='corpus/part-0.jsonl.zst', format='jsonl', compression='zstd', name=None)
    >>> detect_format("notes.txt.gz", doc_per_file=True).format
    'file'
    """
    if format not in FORMATS:
        raise TextsieveError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    path = os.fspath(path)
    inner, compression = _split_compression(os.path.basename(path))
    inner = inner.lower()
    if format == "auto":
        if inner.endswith(PARQUET_SUFFIXES):
            format = "parquet"
        elif inner.endswith(JSONL_SUFFIXES):
            format = "jsonl"
        else:
            format = "text"
    if format == "parquet":
        if compression is not None:
            raise TextsieveError(
                f"{path}: a Parquet file compresses itself; remove the outer {compression} layer"
            )
    elif doc_per_file:
        format = "file"
    return InputFile(path, format, compression)


def expand_inputs(
    paths: Iterable[str | os.PathLike[str]],
    *,
    doc_per_file: bool = False,
    format: str = "auto",
    glob: str | None = None,
    exclude_dirs: Sequence[str] = (),
    stdin: str | None = None,
) -> list[InputFile]:
    """List the input files named by ``paths``, walking directories recursively in sorted order.

    Hidden files and folders (name starting with ``.``) inside a directory are skipped, as are
    folders named in ``exclude_dirs``; ``glob`` (for example ``"*.py"``) filters file names found
    in directories. A path that does not exist, or a directory holding no input file, is an error.
    ``-`` stands for standard input, read from ``stdin``, the copy :func:`stdin_copy` made.
    """
    found: list[InputFile] = []
    for given in paths:
        p = os.fspath(given)
        if p == STDIN:
            if stdin is None:
                raise TextsieveError(
                    "'-' (standard input) needs a copy on disk: read it with stdin_copy()"
                )
            found.append(sniff_format(stdin, doc_per_file=doc_per_file, format=format))
        elif os.path.isdir(p):
            before = len(found)
            for root, dirs, files in os.walk(p, onerror=_walk_error):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in exclude_dirs)
                for name in sorted(files):
                    if name.startswith(".") or (glob and not fnmatch.fnmatch(name, glob)):
                        continue
                    full = os.path.join(root, name)
                    if os.path.isfile(full):
                        found.append(detect_format(full, doc_per_file=doc_per_file, format=format))
            if len(found) == before:
                what = f"matching {glob!r} " if glob else ""
                raise TextsieveError(f"{p}: no input files {what}in this directory")
        elif os.path.exists(p):
            found.append(detect_format(p, doc_per_file=doc_per_file, format=format))
        else:
            raise TextsieveError(f"{p}: no such file or directory")
    return found


def sniff_format(path: str, *, doc_per_file: bool = False, format: str = "auto") -> InputFile:
    """How to read ``path``, the copy of standard input, from its first bytes: gzip or zstd by
    their magic numbers, then JSON Lines when the first non-blank character is ``{``, plain text
    otherwise (``format`` other than ``"auto"`` decides instead). Its name is ``-``."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    compression = "gzip" if head[:2] == GZIP_MAGIC else "zstd" if head == ZSTD_MAGIC else None
    if format == "auto":
        with open_binary(path, compression) as fh:
            first = fh.read(1 << 16).removeprefix(b"\xef\xbb\xbf").lstrip()
        format = "jsonl" if first.startswith(b"{") else "text"
    if format == "parquet":
        raise TextsieveError("-: standard input cannot be Parquet; give the file's path")
    if doc_per_file:
        format = "file"
    return InputFile(path, format, compression, name=STDIN)


_stdin_taken = False


@contextlib.contextmanager
def stdin_copy(directory: str | os.PathLike[str]) -> Iterator[str]:
    """A copy of standard input in a hidden file of ``directory`` (removed at the end), so that
    ``-`` can be read twice and by offset like any file; yields its path. Copies left by killed
    runs are removed first. Standard input can be copied once per process."""
    global _stdin_taken
    if _stdin_taken:
        raise TextsieveError("-: standard input was read already; it can be one input only")
    _stdin_taken = True
    directory = os.fspath(directory)
    for stale in glob_module.glob(os.path.join(glob_module.escape(directory), ".stdin.*.tmp")):
        with contextlib.suppress(OSError):
            os.unlink(stale)
    fd, path = tempfile.mkstemp(prefix=".stdin.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _walk_error(exc: OSError) -> None:
    """A folder that cannot be listed is an error, as an unreadable file is (``os.walk``
    would skip it and its documents silently)."""
    raise TextsieveError(f"{exc.filename}: cannot read this directory: {exc.strerror}") from exc


def _zstandard(what: str = "reading .zst files") -> Any:
    try:
        import zstandard
    except ImportError:
        raise MissingDependencyError(
            f"{what} needs the zstandard package: pip install textsieve[zstd]"
        ) from None
    return zstandard


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError(
            "reading Parquet files needs the pyarrow package: pip install textsieve[parquet]"
        ) from None
    return pq


def open_parquet(path: str) -> Any:
    """A ``pyarrow.parquet.ParquetFile`` read a row group's columns a buffered megabyte at a
    time, not each row group whole ahead of its batches (pyarrow's default): over 1 million
    rows of about 1 KB in row groups of 100,000, a pass of ``iter_batches`` peaked at 214 MB
    against 751 MB, and ``textsieve ngram train`` at 419-445 MB against 942-971 MB
    (``textsieve dedup`` 854-922 MB against 1.34 GB), in about the same time."""
    return _pyarrow_parquet().ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)


class _ZstdFrames(io.RawIOBase):
    """The decompressed bytes of a zstd file of one or more frames (as pzstd or appending
    writes), refusing a file that ends inside a frame: a truncated file is an error, not a
    shorter corpus."""

    def __init__(self, raw: IO[bytes], path: str) -> None:
        self._raw, self._path = raw, path
        self._zstd = _zstandard()
        self._dobj = self._zstd.ZstdDecompressor().decompressobj()
        self._pending = b""
        self._at = 0
        self._in_frame = False

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        while not self._pending:
            block = self._raw.read(1 << 20)
            if not block:
                if self._in_frame:
                    raise TextsieveError(
                        f"{self._path}: cannot decompress: the file ends in the middle of a "
                        "zstd frame (truncated?)"
                    )
                return 0
            while block:
                try:
                    self._pending += self._dobj.decompress(block)
                except self._zstd.ZstdError as exc:
                    raise TextsieveError(f"{self._path}: cannot decompress: {exc}") from exc
                self._in_frame = not self._dobj.eof
                block = self._dobj.unused_data if self._dobj.eof else b""
                if self._dobj.eof:
                    self._dobj = self._zstd.ZstdDecompressor().decompressobj()
                    self._in_frame = bool(block)
        n = min(len(buf), len(self._pending) - self._at)
        buf[:n] = self._pending[self._at : self._at + n]
        self._at += n
        if self._at == len(self._pending):
            self._pending, self._at = b"", 0
        return n


@contextlib.contextmanager
def open_binary(
    path: str | os.PathLike[str], compression: str | None = "auto", *, name: str | None = None
) -> Iterator[IO[bytes]]:
    """Open ``path`` for reading bytes, decompressing gzip or zstd (``"auto"``: by file name);
    errors call the file ``name`` when given."""
    path = os.fspath(path)
    if compression == "auto":
        compression = _split_compression(os.path.basename(path))[1]
    if compression == "zstd":
        with open(path, "rb") as raw:
            with io.BufferedReader(_ZstdFrames(raw, name or path), buffer_size=1 << 20) as fh:
                yield fh
    elif compression == "gzip":
        with gzip.open(path, "rb") as gz:
            yield cast(IO[bytes], gz)
    else:
        with open(path, "rb", buffering=1 << 20) as fh:
            yield fh


# --------------------------------------------------------------------------------------------
# Reading


def _label(name: str) -> bytes:
    """A file name or id as bytes for the core (lone surrogates kept, as ``surrogatepass``)."""
    return name.encode("utf-8", "surrogatepass")


def _bad_unicode(text: str) -> bool:
    # Lone surrogates (from "\ud800" escapes in JSON) cannot be encoded to UTF-8 for hashing.
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class CorpusReader:
    """Iterate over the documents of one or more input files (see the module docstring).

    After (or during) iteration, ``files`` lists the inputs with their record counts,
    ``n_records`` counts the documents yielded, ``n_skipped`` the malformed records left out with
    ``on_error="skip"`` (``skipped`` keeps the first 100 with their reasons), ``n_blank`` the blank
    lines passed over, and ``n_bytes`` the (decompressed) bytes read so far.

    With ``on_error="stop"`` (the default) the first malformed record raises
    :class:`MalformedRecordError`, whose message names the file and line. A line longer than
    ``max_record`` bytes (256 MiB) is a malformed record: it is read past, never held.
    """

    max_record: int = MAX_RECORD_BYTES

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        text_field: str = "text",
        id_field: str | None = "id",
        doc_per_file: bool = False,
        on_error: str = "stop",
        format: str = "auto",
        glob: str | None = None,
        exclude_dirs: Sequence[str] = (),
        stdin: str | None = None,
    ) -> None:
        if on_error not in ON_ERROR:
            raise TextsieveError(f"on_error must be 'stop' or 'skip', got {on_error!r}")
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        self.inputs = expand_inputs(
            paths,
            doc_per_file=doc_per_file,
            format=format,
            glob=glob,
            exclude_dirs=exclude_dirs,
            stdin=stdin,
        )
        self.text_field = text_field
        self.id_field = id_field or None
        self.on_error = on_error
        self.files: list[dict[str, Any]] = []
        self.n_records = 0
        self.n_skipped = 0
        self.n_blank = 0
        self.n_bytes = 0
        self.skipped: list[SkippedRecord] = []

    def expected_docs(self, docs: int, nbytes: int) -> int | None:
        """About how many documents the inputs hold, from ``docs`` documents read in ``nbytes``
        bytes, when each input is an uncompressed JSON Lines or plain-text file (their sizes
        tell); else None. A hint for sizing, not a promise."""
        total = 0
        for inp in self.inputs:
            if inp.compression is not None or inp.format not in ("jsonl", "text"):
                return None
            try:
                total += os.path.getsize(inp.path)
            except OSError:
                return None
        return total * docs // nbytes if nbytes > 0 else None

    # A record that cannot be used: raise, or count and remember it.
    def _bad(self, source: str, line: int, reason: str, info: dict[str, Any]) -> None:
        if self.on_error == "stop":
            raise MalformedRecordError(source, line, reason)
        self.n_skipped += 1
        info["skipped"] += 1
        if len(self.skipped) < MAX_SKIPPED_EXAMPLES:
            self.skipped.append(SkippedRecord(source, line, reason))

    def __iter__(self) -> Iterator[Record]:
        return self._records(self.inputs)

    def _records(self, inputs: Sequence[InputFile]) -> Iterator[Record]:
        decompress_errors: tuple[type[BaseException], ...] = (
            EOFError,
            gzip.BadGzipFile,
            zlib.error,
            *_zstd_errors(),
        )
        for inp in inputs:
            info = self._file_info(inp)
            if inp.format == "parquet":
                records = self._read_parquet(inp, info)
            elif inp.format == "file":
                records = self._read_file(inp, info)
            else:
                records = self._read_lines(inp, info)
            try:
                for record in records:
                    info["records"] += 1
                    self.n_records += 1
                    yield record
            except decompress_errors as exc:
                raise TextsieveError(f"{inp.label}: cannot decompress: {exc}") from exc

    def _file_info(self, inp: InputFile) -> dict[str, Any]:
        info: dict[str, Any] = {
            "path": inp.label,
            "format": inp.format,
            "compression": inp.compression,
            "records": 0,
            "skipped": 0,
            "bytes": 0,
        }
        self.files.append(info)
        return info

    def chunks(self, docs: int = 8192, nbytes: int = 8 << 20) -> Iterator[Any]:
        """The documents in sealed chunks of the core (``_core.ChunkCore``, one file each, at
        most ``docs`` documents or about ``nbytes`` bytes), for an engine that hands them to the
        core without making a Python object per document. JSON Lines and plain-text files are
        read, decompressed and parsed by the core on a background thread; a line it does not take
        (see ``textsieve._core.ChunkReader``) is judged here by the same rules as iteration, so
        both give the same documents. Other formats are read as records, then chunked. Counters
        and ``files`` are kept as by iteration; a record over ``max_record`` bytes is malformed.
        """
        i = 0
        while i < len(self.inputs):
            j = self._core_run(i)
            if j == i:
                yield from self._record_chunks(i, docs, nbytes)
                i += 1
                continue
            yield from self._core_chunks(i, j, docs, nbytes)
            i = j

    def texts(self, docs: int = 8192) -> Iterator[list[str]]:
        """The documents' texts in lists of ``docs`` (the last may be shorter): the documents
        iteration gives, in order, with the same counters and ``files``. JSON Lines and
        plain-text files are parsed by the core as for :meth:`chunks` (no record object a
        document, small files gathered); other formats give their records' texts (no JSON line
        made for each, as a core chunk of them needs)."""
        if isinstance(docs, bool) or not isinstance(docs, int) or docs < 1:
            raise ValueError(f"docs: expected an integer of at least 1, got {docs!r}")
        out: list[str] = []
        i = 0
        while i < len(self.inputs):
            j = self._core_run(i)
            if j == i:
                parts: Iterator[list[str]] = (
                    [r.text] for r in self._records(self.inputs[i : i + 1])
                )
                i += 1
            else:
                parts = (c.texts() for c in self._core_chunks(i, j, docs, 8 << 20))
                i = j
            for part in parts:
                out.extend(part)
                while len(out) >= docs:
                    yield out[:docs]
                    out = out[docs:]
        if out:
            yield out

    def _core_run(self, i: int) -> int:
        """The end of the run of inputs from ``i`` that the core reads (JSON Lines, text)."""
        j = i
        while j < len(self.inputs) and self.inputs[j].format in ("jsonl", "text"):
            j += 1
        return j

    def _core_chunks(self, i: int, j: int, docs: int, nbytes: int) -> Iterator[Any]:
        """Inputs ``i`` to ``j`` (JSON Lines, text) read by the core, in chunks."""
        from textsieve import _core

        reader = _core.ChunkReader(
            [
                (os.fsencode(inp.path), _label(inp.label), inp.format, inp.compression)
                for inp in self.inputs[i:j]
            ],
            self.text_field,
            self.id_field,
            docs,
            nbytes,
            self.max_record,
        )
        try:
            info: dict[str, Any] = {}
            current = -1
            for chunk in reader:
                if chunk.file != current:
                    current = chunk.file
                    info = self._file_info(self.inputs[i + current])
                self._settle(chunk, self.inputs[i + current], info)
                yield chunk
        finally:
            reader.close()

    def _settle(self, chunk: Any, inp: InputFile, info: dict[str, Any]) -> None:
        """Counts a chunk from the core, judges its deferred lines, and seals it."""
        self.n_bytes += chunk.n_bytes
        info["bytes"] += chunk.n_bytes
        self.n_blank += chunk.n_blank
        jsonl = inp.format == "jsonl"
        for k, lineno, body, reason in chunk.deferred():
            if reason is not None:
                self._bad(inp.label, lineno, reason, info)
                continue
            record = self._line_record(inp.label, lineno, body, jsonl, info)
            if record is not None:
                chunk.resolve(k, record.text, _label(record.id))
        chunk.seal()
        info["records"] += len(chunk)
        self.n_records += len(chunk)

    def _record_chunks(self, i: int, docs: int, nbytes: int) -> Iterator[Any]:
        """The records of input ``i`` (read here), in core chunks."""
        from textsieve import _core

        inp = self.inputs[i]
        label = _label(inp.label)
        tf, idf = self.text_field, self.id_field
        batch: list[Record] = []
        size = 0

        def make() -> Any:
            return _core.ChunkCore.from_records(
                i,
                label,
                [r.line for r in batch],
                [_label(r.id) for r in batch],
                [r.text for r in batch],
                [record_json_line(r, text_field=tf, id_field=idf) for r in batch],
            )

        before = len(self.files)
        for record in self._records(self.inputs[i : i + 1]):
            batch.append(record)
            size += len(record.text)
            if len(batch) >= docs or size >= nbytes:
                yield make()
                batch, size = [], 0
        if batch or len(self.files) == before:
            yield make()

    def _raw_lines(self, inp: InputFile) -> Iterator[tuple[int, bytes | _TooLong]]:
        """``(line number, line bytes)`` of a line-oriented input (a line over the record limit
        is not held: its size comes instead); a subclass reading part of a file (a byte range,
        for a distributed engine) overrides only this."""
        limit = self.max_record
        with open_binary(inp.path, inp.compression, name=inp.label) as fh:
            lineno = 0
            while raw := fh.readline(limit + 1):
                lineno += 1
                if len(raw) <= limit:
                    yield lineno, raw
                    continue
                size = len(raw)
                while not raw.endswith(b"\n") and (raw := fh.readline(1 << 20)):
                    size += len(raw)
                yield lineno, _TooLong(size)

    def _read_lines(self, inp: InputFile, info: dict[str, Any]) -> Iterator[Record]:
        source = inp.label
        jsonl = inp.format == "jsonl"
        for lineno, raw in self._raw_lines(inp):
            if isinstance(raw, _TooLong):
                self.n_bytes += raw.size
                info["bytes"] += raw.size
                self._bad(source, lineno, too_long(self.max_record, raw.size), info)
                continue
            size = len(raw)
            self.n_bytes += size
            info["bytes"] += size
            body = raw
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                body = raw[3:]
            if body[:1].isspace() and not body.strip():
                self.n_blank += 1
                continue
            record = self._line_record(source, lineno, body, jsonl, info)
            if record is not None:
                yield record

    def _line_record(
        self, source: str, lineno: int, body: bytes, jsonl: bool, info: dict[str, Any]
    ) -> Record | None:
        """The record of one non-blank line (``body``: without a byte-order mark), or ``None``
        when it is malformed and skipped (with ``on_error="stop"`` that raises)."""
        try:
            line = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            reason = f"not valid UTF-8 ({exc.reason} at byte {exc.start})"
            self._bad(source, lineno, reason, info)
            return None
        if not jsonl:
            text = line.rstrip("\r\n")
            return Record(source, lineno, f"{source}:{lineno}", text, body, "text")
        text_field, id_field = self.text_field, self.id_field
        obj = _parse_json_line(line)
        if isinstance(obj, _Invalid):
            self._bad(source, lineno, obj.reason or _json_error(line), info)
            return None
        if type(obj) is not dict:
            self._bad(source, lineno, f"expected a JSON object, got {_json_type(obj)}", info)
            return None
        text = get_field(obj, text_field)
        if type(text) is not str:
            if text is _INVALID:
                reason = f"no {text_field!r} field"
            else:
                reason = f"field {text_field!r} is {_json_type(text)}, not a string"
            self._bad(source, lineno, reason, info)
            return None
        # Lone surrogates can only come from \u escapes; look for those first.
        if b"\\u" in body and _bad_unicode(text):
            self._bad(source, lineno, f"field {text_field!r} holds a lone surrogate", info)
            return None
        rid = get_field(obj, id_field, None) if id_field is not None else None
        if rid is None:
            rid = f"{source}:{lineno}"
        elif type(rid) is not str:
            rid = json.dumps(rid, ensure_ascii=False, default=str)
        # A byte-order mark belongs to the file, not to its first record.
        return Record(source, lineno, rid, text, body, "jsonl")

    def _read_file(self, inp: InputFile, info: dict[str, Any]) -> Iterator[Record]:
        with open_binary(inp.path, inp.compression, name=inp.label) as fh:
            data = fh.read()
        self.n_bytes += len(data)
        info["bytes"] += len(data)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            self._bad(inp.label, line, f"not valid UTF-8 ({exc.reason} at byte {exc.start})", info)
            return
        yield Record(inp.label, 1, inp.label, text, None, "file")

    def _read_parquet(self, inp: InputFile, info: dict[str, Any]) -> Iterator[Record]:
        source = inp.path
        try:
            pf = open_parquet(source)
        except MissingDependencyError:
            raise
        except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError family
            raise TextsieveError(f"{source}: cannot read Parquet file: {exc}") from exc
        names = pf.schema_arrow.names
        if self.text_field not in names and self.text_field.partition(".")[0] not in names:
            raise TextsieveError(
                f"{source}: no column {self.text_field!r} (columns: {', '.join(names)}); "
                "choose one with --text-field"
            )
        text_field, id_field = self.text_field, self.id_field
        row = 0
        for batch in _parquet_batches(pf, source):
            for obj in batch.to_pylist():
                row += 1
                text = get_field(obj, text_field, None)
                if not isinstance(text, str):
                    self._bad(
                        source,
                        row,
                        f"column {text_field!r} is {_json_type(text)}, not a string",
                        info,
                    )
                    continue
                size = len(text.encode("utf-8", "surrogatepass"))
                self.n_bytes += size
                info["bytes"] += size
                rid = get_field(obj, id_field, None) if id_field is not None else None
                rid = (
                    f"{source}:{row}"
                    if rid is None
                    else (rid if isinstance(rid, str) else str(rid))
                )
                yield Record(source, row, rid, text, obj, "parquet")


def _parquet_batches(pf: Any, source: str) -> Iterator[Any]:
    """The record batches of a Parquet file; a corrupt page is an error naming the file and the
    rows read before it (pyarrow's own message names neither)."""
    batches = pf.iter_batches(batch_size=8192)
    rows = 0
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # ArrowInvalid, OSError, ... from a damaged page
            raise TextsieveError(
                f"{source}: cannot read Parquet file after row {rows}: {exc}"
            ) from exc
        rows += batch.num_rows
        yield batch


class _Invalid:
    """Not a JSON value; ``reason`` when the usual JSON error message would not say why."""

    __slots__ = ("reason",)

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason


_INVALID = _Invalid()


def get_field(obj: dict[str, Any], name: str, default: Any = _INVALID) -> Any:
    """The value of field ``name`` in a record: the key equal to ``name`` if there is one, else
    ``name`` read as a path of keys into nested objects (``meta.url``); ``default`` when absent.

    >>> get_field({"meta": {"url": "u"}, "a.b": 1}, "meta.url"), get_field({"a.b": 1}, "a.b")
    ('u', 1)
    """
    if name in obj:
        return obj[name]
    if "." not in name:
        return default
    value: Any = obj
    for part in name.split("."):
        if type(value) is not dict or part not in value:
            return default
        value = value[part]
    return value


def set_field(obj: dict[str, Any], name: str, value: Any) -> None:
    """Set the field :func:`get_field` reads (the key equal to ``name``, else the nested one)."""
    if name in obj or "." not in name:
        obj[name] = value
        return
    *path, last = name.split(".")
    target: Any = obj
    for part in path:
        target = target[part]
    target[last] = value


# The C scanner behind json.loads, called directly: most of json.loads' cost on short lines is
# Python-level wrapping. Anything unusual falls back to json.loads for its exact behaviour.
_scan_once = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _parse_json_line(line: str) -> Any:
    """The JSON value on ``line`` (trailing whitespace allowed), or an :class:`_Invalid`."""
    try:
        obj, end = _scan_once(line, 0)
    except (StopIteration, ValueError, RecursionError):
        obj, end = _INVALID, 0
    if obj is not _INVALID and (end == len(line) or line[end:].isspace()):
        return obj
    try:  # leading whitespace, trailing garbage, or a real error
        return json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return _INVALID
    except ValueError:  # an integer longer than Python converts (4,300 digits): valid JSON
        pass
    try:
        return json.loads(line, parse_int=_parse_int)
    except (ValueError, RecursionError):
        return _INVALID


def _parse_int(digits: str) -> int | decimal.Decimal:
    try:
        return int(digits)
    except ValueError:
        return decimal.Decimal(digits)


def _json_error(line: str) -> str:
    try:
        json.loads(line)
    except json.JSONDecodeError as exc:
        return f"malformed JSON: {exc.msg} (column {exc.colno})"
    except RecursionError:
        return "malformed JSON: nested too deeply"
    return "malformed JSON"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _zstd_errors() -> tuple[type[BaseException], ...]:
    try:
        import zstandard
    except ImportError:
        return ()
    return (zstandard.ZstdError,)


def read_corpus(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str], **options: Any
) -> Iterator[Record]:
    """Yield the :class:`Record` of every document in ``paths``; options as :class:`CorpusReader`."""
    return iter(CorpusReader(paths, **options))


# --------------------------------------------------------------------------------------------
# Writing


def temp_path(path: str | os.PathLike[str]) -> Path:
    """A fresh hidden temporary name beside ``path`` (``.NAME.PID.RANDOM.tmp``)."""
    path = Path(path)
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def open_new(
    tmp: Path, mode: str = "w", encoding: str | None = "utf-8", *, compression: str | None = None
) -> IO:
    """Create ``tmp`` (which must not exist) with the mode a plain ``open()`` would give it,
    compressing what is written with ``compression`` (see :func:`compressing`)."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    if compression is None:
        if "b" in mode:
            return os.fdopen(fd, mode)
        return os.fdopen(fd, mode, encoding=encoding, newline="")
    raw = compressing(os.fdopen(fd, "wb"), compression)
    if "b" in mode:
        return raw
    return io.TextIOWrapper(raw, encoding=encoding, newline="", write_through=True)


class _CompressedFile(io.BufferedIOBase):
    """A compressor writing into a raw file; closing ends the stream, flushes the file to disk
    and closes it (``flush`` alone does nothing, so the stream is never cut into pieces)."""

    def __init__(self, inner: Any, raw: IO[bytes]) -> None:
        super().__init__()
        self._inner, self._raw = inner, raw

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._inner.write(data)
        return len(data)

    def fileno(self) -> int:
        return self._raw.fileno()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._inner.close()
            self._raw.flush()
            os.fsync(self._raw.fileno())
        finally:
            self._raw.close()
            super().close()


def output_compression(path: str | os.PathLike[str]) -> str | None:
    """The compression an output's name asks for: ``"gzip"`` (``.gz``), ``"zstd"`` (``.zst``)."""
    return _split_compression(os.path.basename(os.fspath(path)))[1]


def compressing(raw: IO[bytes], compression: str | None) -> IO[bytes]:
    """``raw`` itself, or a writer compressing into it (gzip level 6 without a time stamp, zstd
    level 3: the same bytes on every run); closing it closes ``raw``."""
    if compression is None:
        return raw
    if compression == "gzip":
        inner: Any = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0)
    else:
        zstd = _zstandard("writing .zst files")
        inner = zstd.ZstdCompressor(level=3).stream_writer(raw, closefd=False)
    return cast(IO[bytes], _CompressedFile(inner, raw))


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it onto ``path`` only if the block succeeds.
    A name ending in ``.gz`` or ``.zst`` is written compressed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the name is known before the file exists, so an interrupt at any point can remove it
    tmp = temp_path(path)
    try:
        fh = open_new(tmp, mode, encoding, compression=output_compression(path))
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def to_jsonable(value: Any) -> Any:
    """Make ``value`` JSON-safe: NumPy scalars and arrays to Python, NaN/inf to ``None``,
    bytes to text, dates and other objects to their ``str``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    tolist = getattr(value, "tolist", None)  # NumPy scalars and arrays
    if callable(tolist):
        return to_jsonable(tolist())
    return str(value)


def quote(s: str) -> str:
    """``s`` as a JSON string literal; a lone surrogate is escaped so the output stays UTF-8."""
    if s.isascii():
        return _encode_str(s)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return _encode_str_ascii(s)
    return _encode_str(s)


def json_text(obj: Any, indent: int | None = None) -> str:
    """``obj`` as a JSON document for a file or the terminal (stats, summaries): UTF-8 as is,
    unless a string holds a lone surrogate (an id or a file name that is not UTF-8), which the
    whole document then escapes, so it can always be written and reads back the same."""
    value = to_jsonable(obj)
    text = json.dumps(value, ensure_ascii=False, indent=indent, allow_nan=False)
    if text.isascii() or not _bad_unicode(text):
        return text
    return json.dumps(value, ensure_ascii=True, indent=indent, allow_nan=False)


def _dumps(obj: Any) -> str:
    """One JSON value as textsieve's outputs write it: UTF-8 as is, except that a string holding
    a lone surrogate is escaped whole (as :func:`quote`), so the line stays UTF-8."""
    value = to_jsonable(obj)
    line = json.dumps(value, ensure_ascii=False, allow_nan=False)
    if line.isascii() or not _bad_unicode(line):
        return line
    return _dumps_escaped(value)


def _dumps_escaped(value: Any) -> str:
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, dict):
        items = (f"{quote(str(k))}: {_dumps_escaped(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_dumps_escaped, value)) + "]"
    return json.dumps(value, allow_nan=False)


_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, check_circular=False).encode


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Any]) -> int:
    """Write one JSON value per line to ``path`` atomically; returns the number of lines.

    Values go through :func:`to_jsonable` when plain JSON cannot hold them (NumPy numbers, NaN).
    """
    n = 0
    with atomic_write(path, "w") as fh:
        write = fh.write
        for row in rows:
            try:
                line = _encode(row)
            except (TypeError, ValueError):
                line = _dumps(row)
            write(line)
            write("\n")
            n += 1
    return n


def write_lines(path: str | os.PathLike[str], lines: Iterable[str]) -> int:
    """Write already formatted text lines (each ending in a newline) to ``path`` atomically."""
    n = 0
    with atomic_write(path, "w") as fh:
        write = fh.write
        for line in lines:
            write(line)
            n += 1
    return n


def record_json_line(
    record: Record, *, text_field: str = "text", id_field: str | None = "id"
) -> bytes:
    """The JSONL line for ``record`` in an output corpus, newline included.

    A JSONL record is returned as its original bytes, untouched (a newline is added only when the
    input's last line had none); a plain-text line, a whole file or a Parquet row becomes a new
    JSON object.
    """
    if record.format == "jsonl":
        raw = record.raw
        return raw if raw.endswith(b"\n") else raw + b"\n"
    if record.format == "parquet":
        return (_dumps(record.raw) + "\n").encode("utf-8")
    # as the core writes a plain-text record (textsieve.output): a string holding a lone
    # surrogate (from a file name that is not UTF-8) is escaped, so the line stays UTF-8
    text = f"{quote(text_field)}: {quote(record.text)}}}\n"
    if (id_field or "id") == text_field:
        return ("{" + text).encode("utf-8")
    return f"{{{quote(id_field or 'id')}: {quote(record.id)}, {text}".encode()


def write_records(
    path: str | os.PathLike[str],
    records: Iterable[Record],
    *,
    text_field: str = "text",
    id_field: str | None = "id",
) -> int:
    """Write ``records`` as JSONL to ``path`` atomically (see :func:`record_json_line`)."""
    n = 0
    with atomic_write(path, "wb") as fh:
        for record in records:
            fh.write(record_json_line(record, text_field=text_field, id_field=id_field))
            n += 1
    return n
