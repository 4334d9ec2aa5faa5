"""Corpus readers and writers (textsieve.io) on real files written into tmp_path."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from textsieve.errors import TextsieveError
from textsieve.io import (
    CorpusReader,
    MalformedRecordError,
    MissingDependencyError,
    atomic_write,
    detect_format,
    expand_inputs,
    read_corpus,
    record_json_line,
    to_jsonable,
    write_jsonl,
    write_records,
)

JSONL_BYTES = (
    b'{"id": "a", "text": "first document"}\n'
    b"\n"
    b'{"text": "no id here", "meta": {"k": [1, 2]}}\r\n'
    b'{"id": 7, "text": "numeric id \\u00e9\xc3\xa9"}\n'
    b'{"id": "last", "text": "no newline at the end"}'
)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p): sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]


@pytest.fixture
def jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(JSONL_BYTES)
    return path


# --------------------------------------------------------------------------------------------
# JSONL


def test_jsonl_records_ids_lines_and_raw_bytes(jsonl: Path) -> None:
    reader = CorpusReader(jsonl)
    records = list(reader)
    src = str(jsonl)
    assert [r.id for r in records] == ["a", f"{src}:3", "7", "last"]
    assert [r.line for r in records] == [1, 3, 4, 5]
    assert [r.text for r in records] == [
        "first document",
        "no id here",
        "numeric id \u00e9\u00e9",
        "no newline at the end",
    ]
    assert all(r.source == src and r.format == "jsonl" for r in records)
    # The raw bytes are the input lines exactly, line endings included.
    assert b"".join(r.raw for r in records) == JSONL_BYTES.replace(b"\n\n", b"\n", 1)
    assert records[1].raw.endswith(b"\r\n")
    assert reader.n_records == 4 and reader.n_blank == 1 and reader.n_skipped == 0
    assert reader.n_bytes == len(JSONL_BYTES)
    assert reader.files == [
        {
            "path": src,
            "format": "jsonl",
            "compression": None,
            "records": 4,
            "skipped": 0,
            "bytes": len(JSONL_BYTES),
        }
    ]


def test_custom_fields_and_no_id_field(tmp_path: Path) -> None:
    path = tmp_path / "c.ndjson"
    path.write_text('{"url": "u1", "content": "x"}\n{"content": "y"}\n', encoding="utf-8")
    records = list(read_corpus(path, text_field="content", id_field="url"))
    assert [(r.id, r.text) for r in records] == [("u1", "x"), (f"{path}:2", "y")]
    records = list(read_corpus(path, text_field="content", id_field=None))
    assert [r.id for r in records] == [f"{path}:1", f"{path}:2"]


BAD_LINES = [
    (b"not json at all", "malformed JSON"),
    (b'{"text": "unterminated', "malformed JSON"),
    (b'{"id": "x"}', "no 'text' field"),
    (b'{"text": 42}', "field 'text' is a number, not a string"),
    (b'{"text": null}', "field 'text' is null, not a string"),
    (b'{"text": ["a"]}', "field 'text' is an array, not a string"),
    (b'["text"]', "expected a JSON object, got an array"),
    (b'{"text": "\\ud800"}', "lone surrogate"),
    (b'{"text": "caf\xe9"}', "not valid UTF-8"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
def test_malformed_line_stops_with_file_and_line(tmp_path: Path, line: bytes, reason: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "fine"}\n' + line + b'\n{"text": "after"}\n')
    with pytest.raises(MalformedRecordError) as info:
        list(read_corpus(path))
    message = str(info.value)
    assert message.startswith(f"{path}:3: ")
    assert reason in message
    assert info.value.line == 3 and info.value.source == str(path)
    assert isinstance(info.value, TextsieveError) and isinstance(info.value, ValueError)


def test_on_error_skip_counts_and_remembers(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [b'{"text": "ok"}'] + [line for line, _ in BAD_LINES] + [b'{"text": "end"}']
    path.write_bytes(b"\n".join(lines) + b"\n")
    reader = CorpusReader(path, on_error="skip")
    records = list(reader)
    assert [r.text for r in records] == ["ok", "end"]
    assert [r.line for r in records] == [1, len(lines)]
    assert reader.n_skipped == len(BAD_LINES)
    assert [s.line for s in reader.skipped] == list(range(2, 2 + len(BAD_LINES)))
    for skipped, (_, reason) in zip(reader.skipped, BAD_LINES, strict=True):
        assert reason in skipped.reason and skipped.source == str(path)
    assert reader.files[0]["skipped"] == len(BAD_LINES)


def test_bad_on_error_value() -> None:
    with pytest.raises(TextsieveError, match="on_error"):
        CorpusReader([], on_error="ignore")


# --------------------------------------------------------------------------------------------
# Compression


def test_gzip_reads_like_plain(jsonl: Path, tmp_path: Path) -> None:
    gz = tmp_path / "corpus.jsonl.gz"
    gz.write_bytes(gzip.compress(JSONL_BYTES))
    plain = list(read_corpus(jsonl))
    packed = list(read_corpus(gz))
    assert [(r.text, r.line, r.raw) for r in packed] == [(r.text, r.line, r.raw) for r in plain]
    assert packed[0].source == str(gz)
    assert detect_format(gz) == (str(gz), "jsonl", "gzip", None)


def test_zstd_reads_like_plain_across_frames(jsonl: Path, tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    zst = tmp_path / "corpus.jsonl.zst"
    # Two frames, as pzstd or an appending writer produce.
    cut = JSONL_BYTES.index(b"\n", 50) + 1
    cctx = zstandard.ZstdCompressor()
    zst.write_bytes(cctx.compress(JSONL_BYTES[:cut]) + cctx.compress(JSONL_BYTES[cut:]))
    plain = list(read_corpus(jsonl))
    packed = list(read_corpus(zst))
    assert [(r.text, r.line, r.raw) for r in packed] == [(r.text, r.line, r.raw) for r in plain]
    assert detect_format(zst).compression == "zstd"


def test_zstd_missing_package_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zst = tmp_path / "corpus.jsonl.zst"
    zst.write_bytes(b"\x28\xb5\x2f\xfd")
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install textsieve\[zstd\]"):
        list(read_corpus(zst))


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    gz = tmp_path / "broken.jsonl.gz"
    gz.write_bytes(gzip.compress(JSONL_BYTES)[:-12])
    with pytest.raises(TextsieveError, match="broken.jsonl.gz: cannot decompress"):
        list(read_corpus(gz))


# --------------------------------------------------------------------------------------------
# Plain text and directory trees


def test_text_one_document_per_line(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_bytes(b"\xef\xbb\xbfalpha beta\r\n\n   \ngamma\nlast line")
    reader = CorpusReader(path)
    records = list(reader)
    assert [(r.text, r.line, r.id) for r in records] == [
        ("alpha beta", 1, f"{path}:1"),
        ("gamma", 4, f"{path}:4"),
        ("last line", 5, f"{path}:5"),
    ]
    assert reader.n_blank == 2
    assert records[1].raw == b"gamma\n" and records[1].format == "text"
    assert json.loads(record_json_line(records[0])) == {"id": f"{path}:1", "text": "alpha beta"}


def test_text_gzip_and_bad_utf8(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt.gz"
    path.write_bytes(gzip.compress(b"one\ntw\xffo\nthree\n"))
    with pytest.raises(MalformedRecordError, match=r"lines\.txt\.gz:2: not valid UTF-8"):
        list(read_corpus(path))
    reader = CorpusReader(path, on_error="skip")
    assert [r.text for r in reader] == ["one", "three"]
    assert reader.n_skipped == 1


def make_tree(root: Path) -> None:
    (root / "b" / "deep").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "a.py").write_text("print('a')\n", encoding="utf-8")
    (root / "b" / "x.py").write_text("x = 1\n", encoding="utf-8")
    (root / "b" / "notes.txt").write_text("some notes\nmore\n", encoding="utf-8")
    (root / "b" / "deep" / "z.py").write_bytes(b"\xef\xbb\xbfz = 'bom'\n")
    (root / "b" / "deep" / "w.py.gz").write_bytes(gzip.compress(b"w = 2\n"))
    (root / ".hidden" / "secret.py").write_text("hidden\n", encoding="utf-8")
    (root / ".dotfile").write_text("hidden too\n", encoding="utf-8")


def test_doc_per_file_walks_sorted_and_skips_hidden(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    make_tree(root)
    records = list(read_corpus(root, doc_per_file=True))
    rel = [os.path.relpath(r.id, root) for r in records]
    assert rel == ["a.py", "b/notes.txt", "b/x.py", "b/deep/w.py.gz", "b/deep/z.py"]
    by_name = {os.path.basename(r.id): r for r in records}
    assert by_name["notes.txt"].text == "some notes\nmore\n"
    assert by_name["z.py"].text == "z = 'bom'\n"  # the byte-order mark is not text
    assert by_name["w.py.gz"].text == "w = 2\n"
    assert all(r.format == "file" and r.line == 1 and r.raw is None for r in records)
    assert json.loads(record_json_line(by_name["x.py"], text_field="content", id_field="path")) == {
        "path": str(root / "b" / "x.py"),
        "content": "x = 1\n",
    }
    only_py = list(read_corpus(root, doc_per_file=True, glob="*.py"))
    assert [os.path.basename(r.id) for r in only_py] == ["a.py", "x.py", "z.py"]
    pruned = list(read_corpus(root, doc_per_file=True, exclude_dirs=["deep"]))
    assert len(pruned) == 3


def test_doc_per_file_bad_utf8_file(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("fine", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes(b"line one\ncaf\xe9\n")
    with pytest.raises(MalformedRecordError, match=r"latin1\.txt:2: not valid UTF-8"):
        list(read_corpus(tmp_path, doc_per_file=True))
    reader = CorpusReader(tmp_path, doc_per_file=True, on_error="skip")
    assert [os.path.basename(r.id) for r in reader] == ["good.txt"]
    assert reader.n_skipped == 1


def test_directory_mixes_formats_by_name(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "from jsonl"}\n', encoding="utf-8")
    (tmp_path / "b.txt").write_text("from text\n", encoding="utf-8")
    records = list(read_corpus(tmp_path))
    assert [(r.text, r.format) for r in records] == [("from jsonl", "jsonl"), ("from text", "text")]
    forced = list(read_corpus(tmp_path / "a.jsonl", format="text"))
    assert forced[0].text == '{"text": "from jsonl"}'


def test_missing_paths_and_empty_directories(tmp_path: Path) -> None:
    with pytest.raises(TextsieveError, match="no such file or directory"):
        expand_inputs([tmp_path / "nope.jsonl"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(TextsieveError, match="no input files"):
        expand_inputs([tmp_path / "empty"])
    with pytest.raises(TextsieveError, match="format must be"):
        detect_format("x.jsonl", format="csv")


def test_reading_never_modifies_inputs(tmp_path: Path, jsonl: Path) -> None:
    make_tree(tmp_path / "tree")
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress(JSONL_BYTES))
    before = tree_hashes(tmp_path)
    stat_before = {p: os.stat(p).st_mtime_ns for p in before}
    list(read_corpus([tmp_path], on_error="skip"))
    list(read_corpus([tmp_path / "tree"], doc_per_file=True))
    assert tree_hashes(tmp_path) == before
    assert {p: os.stat(p).st_mtime_ns for p in before} == stat_before


# --------------------------------------------------------------------------------------------
# Parquet


def test_parquet_rows(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "docs.parquet"
    table = pa.table({"id": [10, 11, 12], "text": ["one", None, "three"], "score": [0.5, 1.0, 2.0]})
    pq.write_table(table, path)
    with pytest.raises(MalformedRecordError, match=r"docs\.parquet:2: column 'text' is null"):
        list(read_corpus(path))
    reader = CorpusReader(path, on_error="skip")
    records = list(reader)
    assert [(r.id, r.text, r.line, r.format) for r in records] == [
        ("10", "one", 1, "parquet"),
        ("12", "three", 3, "parquet"),
    ]
    assert reader.n_skipped == 1
    assert json.loads(record_json_line(records[1])) == {"id": 12, "text": "three", "score": 2.0}
    with pytest.raises(TextsieveError, match="no column 'body'"):
        list(read_corpus(path, text_field="body"))


def test_parquet_missing_package_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "docs.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingDependencyError, match=r"pip install textsieve\[parquet\]"):
        list(read_corpus(path))


# --------------------------------------------------------------------------------------------
# Writers


def test_write_records_keeps_jsonl_bytes(jsonl: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "kept.jsonl"
    records = list(read_corpus(jsonl))
    assert write_records(out, records) == 4
    written = out.read_bytes()
    # Identical to the input lines (blank line dropped, a newline added after the last one).
    assert written == JSONL_BYTES.replace(b"\n\n", b"\n", 1) + b"\n"
    assert no_temp_files(out.parent)


def test_write_jsonl_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl"
    assert write_jsonl(out, [{"a": 1, "nan": float("nan")}, {"b": "é"}]) == 2
    assert out.read_text(encoding="utf-8") == '{"a": 1, "nan": null}\n{"b": "é"}\n'

    def boom():
        yield {"a": 2}
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_jsonl(out, boom())
    # The old file is intact and no temporary file is left behind.
    assert out.read_text(encoding="utf-8").startswith('{"a": 1')
    assert no_temp_files(tmp_path)
    with pytest.raises(RuntimeError):
        write_jsonl(tmp_path / "never.jsonl", boom())
    assert not (tmp_path / "never.jsonl").exists()
    assert no_temp_files(tmp_path)


def test_atomic_write_mode_follows_umask(tmp_path: Path) -> None:
    out = tmp_path / "x.txt"
    with atomic_write(out) as fh:
        fh.write("hi")
    mask = os.umask(0o022)
    os.umask(mask)
    assert os.stat(out).st_mode & 0o777 == 0o666 & ~mask


def test_to_jsonable() -> None:
    value = {
        "a": np.int64(3),
        "b": np.array([1.5, np.nan]),
        "c": (np.float32(0.25), math.inf),
        "d": b"bytes",
        1: Path("p"),
    }
    assert to_jsonable(value) == {
        "a": 3,
        "b": [1.5, None],
        "c": [0.25, None],
        "d": "bytes",
        "1": "p",
    }
    json.dumps(to_jsonable(value), allow_nan=False)
