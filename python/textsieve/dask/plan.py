"""Partitions: one per input file, large uncompressed JSONL / text files split at line starts
into byte ranges; reading a partition's records as the local engine's reader yields them; and
counting the lines before each range (for ``FILE:LINE`` ids)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from textsieve.errors import TextsieveError
from textsieve.io import CorpusReader, InputFile, MalformedRecordError, Record

#: Default partition size for splitting large uncompressed JSONL / text files.
DEFAULT_PARTITION_BYTES = 64 << 20


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


def _abs(cwd: str, path: str) -> str:
    """``path`` as the driver meant it: relative paths are to the driver's ``cwd``."""
    return path if os.path.isabs(path) else os.path.join(cwd, path)


class _Partition:
    """The records of one partition, as the local engine's reader yields them (same ``source``,
    ids and line numbers), plus the reader's counts for the partition. ``part`` is a row of
    :func:`_plan_partitions`, ``cwd`` the driver's working directory (relative paths are to it),
    ``reader`` the :class:`CorpusReader` options and ``line_base`` the lines before the range."""

    def __init__(
        self, part: dict[str, Any], cwd: str, reader: dict[str, Any], line_base: int = 0
    ) -> None:
        self.part = part
        self.source = part["path"]
        self.opened = _abs(cwd, part["path"])
        if part["start"] is None:
            self.reader: CorpusReader = CorpusReader(self.opened, **reader)
            # the same InputFile the driver found, opened by its absolute path
            self.reader.inputs = [InputFile(self.opened, part["format"], part["compression"])]
        else:
            self.reader = _RangeReader({**part, "path": self.opened}, line_base, **reader)
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
