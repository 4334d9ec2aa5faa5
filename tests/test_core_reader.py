"""The core's corpus reader (``CorpusReader.chunks``) gives the documents, ids, skipped records
and counters that Python's own reading gives, on ordinary and hostile lines, plain and
compressed; truncated and unreadable inputs are errors naming the file."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from textsieve import _core
from textsieve.errors import TextsieveError
from textsieve.io import CorpusReader, MalformedRecordError, record_json_line

HOSTILE = [
    b'{"id": "a", "text": "plain"}\n',
    b'{"text": "no id"}\n',
    b'{"id": null, "text": "null id"}\n',
    b'{"id": 7, "text": "int id"}\n',
    b'{"id": 7.50, "text": "float id"}\n',
    b'{"id": {"b": [1, 2]}, "text": "object id"}\n',
    b'{"id": "x", "text": "first", "text": "last wins"}\n',
    b'{"id": "e", "text": "esc \\n \\t \\" \\\\ \\u00e9 \\ud83d\\ude00"}\n',
    b'{"id": "s", "text": "lone \\ud800 surrogate"}\n',
    b'{"id": "lone \\udc80 id", "text": "ok"}\n',
    b'{"id": "n", "text": "nan elsewhere", "score": NaN}\n',
    b'{"id": "big", "text": "t", "n": ' + b"9" * 5000 + b"}\n",
    b'{"id": "bigid", "text": "t"}\n',
    b'{"id": ' + b"1" * 5000 + b', "text": "huge id"}\n',
    b'   {"id": "lead", "text": "leading space"}   \n',
    b'{"id": "trail", "text": "trailing vt"}\x0b\n',
    b'{"id": "crlf", "text": "windows"}\r\n',
    b"\n",
    b"   \t \x0c \r\n",
    b'{"id": "num", "text": 5}\n',
    b'{"id": "missing"}\n',
    b"[1, 2, 3]\n",
    b'"just a string"\n',
    b'{"id": "bad json", "text": "x"\n',
    b'{"id": "ctl", "text": "raw\x01control"}\n',
    b'{"id": "utf", "text": "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac"}\n',
    b'{"id": "badutf", "text": "caf\xe9"}\n',
    b"[" * 3000 + b"]" * 3000 + b"\n",
    b'{"id": "deep", "text": "d", "x": ' + b"[" * 200 + b"]" * 200 + b"}\n",
    b'{"id": "te\\u0078t key", "te\\u0078t": "escaped key"}\n',
    b'{"id": "last", "text": "no newline at end"}',
]


def read_python(paths: list[Path], **opts: Any) -> tuple[list[tuple[Any, ...]], CorpusReader]:
    reader = CorpusReader(paths, **opts)
    docs = [
        (r.id, r.text, r.line, record_json_line(r, text_field=reader.text_field,
                                                id_field=reader.id_field))
        for r in reader
    ]  # fmt: skip
    return docs, reader


def read_core(
    paths: list[Path], docs: int = 3, **opts: Any
) -> tuple[list[tuple[Any, ...]], CorpusReader]:
    """Documents from the core's chunks (tiny chunks, to cross their edges)."""
    reader = CorpusReader(paths, **opts)
    ids = _core.IdsCore()
    out = []
    for chunk in reader.chunks(docs=docs):
        first = len(ids)
        ids.push_chunk(chunk)
        n = len(chunk)
        import numpy as np

        kept, removed, _, _ = _core.render_chunk(
            chunk, first, np.full(n, -1, np.int64), np.zeros(n), ids, True
        )
        lines = kept.splitlines(keepends=True)
        assert len(lines) == n and not removed
        out.extend((ids[first + k], None, None, lines[k]) for k in range(n))
    return out, reader


def core_texts(paths: list[Path], **opts: Any) -> list[str | None]:
    """The texts the core reads, through a run that stores every text (``keep="longest"``):
    read again from the file by offset when it is not compressed."""
    run = _core.DedupRun(_dedup_config())
    n = 0
    for chunk in CorpusReader(paths, **opts).chunks(docs=5):
        n += len(chunk)
        run.feed_chunk(chunk)
    run.finish()
    return [run.text(d) for d in range(n)]


def same_documents(paths: list[Path], **opts: Any) -> tuple[CorpusReader, CorpusReader]:
    py, a = read_python(paths, **opts)
    core, b = read_core(paths, **opts)
    assert [(i, raw) for i, _, _, raw in core] == [(i, raw) for i, _, _, raw in py]
    assert core_texts(paths, **opts) == [t for _, t, _, _ in py]
    for name in ("n_records", "n_skipped", "n_blank", "n_bytes"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.skipped == b.skipped
    assert a.files == b.files
    same_texts(paths, [t for _, t, _, _ in py], a, **opts)
    return a, b


def same_texts(
    paths: list[Path], expected: list[str], by_records: CorpusReader, **opts: Any
) -> None:
    """``CorpusReader.texts`` gives the texts iteration gives, in full lists of 3 but the last,
    with the same counters, skipped records and files."""
    c = CorpusReader(paths, **opts)
    parts = list(c.texts(3))
    assert all(len(part) == 3 for part in parts[:-1]) and all(parts)
    assert [t for part in parts for t in part] == expected
    for name in ("n_records", "n_skipped", "n_blank", "n_bytes"):
        assert getattr(by_records, name) == getattr(c, name), name
    assert by_records.skipped == c.skipped
    assert by_records.files == c.files


def test_hostile_lines_read_as_python_reads_them(tmp_path: Path) -> None:
    p = tmp_path / "hostile.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + b"".join(HOSTILE))
    a, _ = same_documents([p], on_error="skip")
    assert a.n_skipped >= 8 and a.n_blank == 2
    reasons = " ".join(s.reason for s in a.skipped)
    assert "lone surrogate" in reasons and "not valid UTF-8" in reasons
    # integers longer than Python converts (4,300 digits) are valid JSON: read, no crash
    assert {"big", "bigid"} <= {r.id for r in CorpusReader([p], on_error="skip")}


def test_texts_match_python(tmp_path: Path) -> None:
    p = tmp_path / "hostile.jsonl"
    p.write_bytes(b"".join(HOSTILE))
    reader = CorpusReader([p], on_error="skip")
    want = [r.text for r in reader]
    # keep="longest" stores every text in the run: read them back
    run = _core.DedupRun(_dedup_config())
    for chunk in CorpusReader([p], on_error="skip").chunks(docs=4):
        run.feed_chunk(chunk)
    run.finish()
    assert [run.text(d) for d in range(len(want))] == want


def _dedup_config() -> Any:
    from textsieve.dedup import DedupSettings

    return DedupSettings(keep="longest").config()


def test_stop_on_error_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"text": "a"}\n{"text": 5}\n')
    with pytest.raises(MalformedRecordError, match=r"bad\.jsonl:2: field 'text' is a number"):
        list(CorpusReader([p]).chunks())


def test_plain_text_and_fields(tmp_path: Path) -> None:
    t = tmp_path / "lines.txt"
    t.write_bytes(b'first line\r\n\n  \nsecond "quoted" \\ line\nbad \xff\nlast')
    same_documents([t], on_error="skip")
    j = tmp_path / "fields.jsonl"
    j.write_text('{"url": "u1", "body": "b1", "text": "t"}\n{"body": "b2"}\n')
    same_documents([j], text_field="body", id_field="url")
    same_documents([j], text_field="body", id_field=None)
    same_documents([t], text_field="same", id_field="same", on_error="skip")


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_compressed_inputs(tmp_path: Path, suffix: str) -> None:
    body = b"".join(
        json.dumps({"id": f"d{i}", "text": f"document {i} " * 30}).encode() + b"\n"
        for i in range(3000)
    )
    if suffix == ".gz":
        data = gzip.compress(body[: len(body) // 2]) + gzip.compress(body[len(body) // 2 :])
    else:
        zstd = pytest.importorskip("zstandard")
        c = zstd.ZstdCompressor()
        data = c.compress(body[:1000]) + c.compress(body[1000:])  # two frames
    p = tmp_path / f"c.jsonl{suffix}"
    p.write_bytes(data)
    a, _ = same_documents([p])
    assert a.n_records == 3000
    cut = tmp_path / f"cut.jsonl{suffix}"
    cut.write_bytes(data[: len(data) * 3 // 4])
    with pytest.raises(TextsieveError, match=r"cut\.jsonl.*cannot decompress"):
        list(CorpusReader([cut]).chunks())
    with pytest.raises(TextsieveError, match=r"cut\.jsonl.*cannot decompress"):
        list(CorpusReader([cut], on_error="skip").chunks())


def test_record_size_limit(tmp_path: Path) -> None:
    p = tmp_path / "long.jsonl"
    p.write_bytes(b'{"text": "short"}\n{"text": "' + b"x" * 5000 + b'"}\n{"text": "after"}\n')

    class Small(CorpusReader):
        max_record = 1000

    reader = Small([p], on_error="skip")
    ids = _core.IdsCore()
    n = 0
    for chunk in reader.chunks():
        ids.push_chunk(chunk)
        n += len(chunk)
    assert n == 2 and reader.n_skipped == 1
    assert reader.skipped[0].line == 2 and "longer than 1000 bytes" in reader.skipped[0].reason
    assert reader.n_bytes == p.stat().st_size
    with pytest.raises(MalformedRecordError, match=r"long\.jsonl:2: record longer"):
        list(Small([p]).chunks())
    # Python's reader (other commands, Dask, --doc-per-file's neighbours) says the same
    py = Small([p], on_error="skip")
    assert [r.text for r in py] == ["short", "after"]
    assert py.skipped == reader.skipped and py.n_bytes == reader.n_bytes
    gz = tmp_path / "long.jsonl.gz"
    gz.write_bytes(gzip.compress(p.read_bytes()))
    assert [r.text for r in Small([gz], on_error="skip")] == ["short", "after"]


def test_several_files_empty_ones_and_other_formats(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n')
    (tmp_path / "b.jsonl").write_text("")
    (tmp_path / "c.txt").write_text("two\nthree\n")
    (tmp_path / "d.jsonl").write_text('{"text": "four"}\n')
    paths = [tmp_path / n for n in ("a.jsonl", "b.jsonl", "c.txt", "d.jsonl")]
    a, b = same_documents(paths)
    assert [f["records"] for f in b.files] == [1, 0, 2, 1]
    # one document per file goes through Python's records, then into the same chunks
    same_documents(paths, doc_per_file=True)


def test_texts_of_parquet_between_line_files(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed")
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed")
    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n{"text": 2}\n{"text": "two"}\n')
    pq.write_table(
        pa.table({"id": ["p1", "p2", "p3", "p4"], "text": ["three", None, "four", "five"]}),
        tmp_path / "b.parquet",
    )
    (tmp_path / "c.txt").write_text("six\nseven\n")
    paths = [tmp_path / n for n in ("a.jsonl", "b.parquet", "c.txt")]
    a = CorpusReader(paths, on_error="skip")
    expected = [r.text for r in a]
    assert expected == ["one", "two", "three", "four", "five", "six", "seven"]
    assert a.n_skipped == 2
    same_texts(paths, expected, a, on_error="skip")
    with pytest.raises(ValueError, match="docs: expected an integer of at least 1, got 0"):
        next(CorpusReader(paths).texts(0))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "secret.jsonl"
    p.write_text('{"text": "x"}\n')
    p.chmod(0)
    with pytest.raises(TextsieveError, match=r"secret\.jsonl: cannot open"):
        list(CorpusReader([p]).chunks())


def test_file_names_that_are_not_utf8(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.txt")  # a lone surrogate (surrogateescape)
    p = tmp_path / name
    p.write_text("hello\n")
    core, _ = read_core([p])
    py, _ = read_python([p])
    assert core == [(py[0][0], None, None, py[0][3])]
    assert "\\udce9" in py[0][3].decode("ascii")  # escaped: the line is UTF-8 and reads back
    assert json.loads(py[0][3])["id"] == f"{p}:1"


def test_unreadable_directory_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "b.jsonl").write_text('{"text": "y"}\n')
    real = os.scandir

    def scandir(path: Any = ".") -> Any:  # as for a folder without read permission
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(TextsieveError, match=r"locked: cannot read this directory"):
        CorpusReader([tmp_path])


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF)))
def test_core_quotes_strings_as_python(s: str) -> None:
    from textsieve.io import quote

    assert _core.quote_json(s.encode("utf-8", "surrogatepass")) == quote(s)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=20))
def test_core_writes_floats_as_python(xs: list[float]) -> None:
    import numpy as np

    ids = _core.IdsCore()
    ids.extend([b"a"])
    n = len(xs)
    rows = _core.render_pairs(
        ids, np.zeros(n, np.uint64), np.zeros(n, np.uint64), np.array(xs, np.float64)
    )
    want = [repr(x) if np.isfinite(x) else "null" for x in xs]
    got = [line.rsplit(b": ", 1)[1][:-1].decode() for line in rows.splitlines()]
    assert got == want


def _corpus_lines(n: int = 400) -> bytes:
    import random

    rng = random.Random(5)
    words = [f"w{i}" for i in range(300)]
    base = [" ".join(rng.choice(words) for _ in range(80)) for _ in range(n // 4)]
    lines = []
    for i in range(n):
        text = base[i % len(base)]
        if i >= len(base):  # a planted near copy, with escapes in its JSON
            cut = rng.randrange(len(text))
            text = text[:cut] + ' "q"\n\té ' + text[cut:]
        lines.append(json.dumps({"id": f"d{i}", "text": text}).encode() + b"\n")
    return b"".join(lines)


@pytest.mark.parametrize("opts", [[], ["--keep", "longest"], ["--cluster", "components"]])
def test_plain_inputs_are_read_again_not_copied(tmp_path: Path, opts: list[str]) -> None:
    """Texts of an uncompressed input are read again from it by offset (nothing copied to the
    store); the answer is the one a compressed copy of the file gives (whose texts are copied)."""
    from textsieve.cli import main

    data = _corpus_lines()
    plain, packed = tmp_path / "c.jsonl", tmp_path / "c.jsonl.gz"
    plain.write_bytes(data)
    packed.write_bytes(gzip.compress(data))
    outs = {}
    for p in (plain, packed):
        out = tmp_path / f"out-{p.name}"
        assert main(["dedup", str(p), "-o", str(out), "-q", *opts]) == 0
        outs[p.name] = out
    a, b = outs["c.jsonl"], outs["c.jsonl.gz"]
    assert (a / "kept.jsonl").read_bytes() == (b / "kept.jsonl").read_bytes()
    assert (a / "pairs.jsonl").read_bytes() == (b / "pairs.jsonl").read_bytes()
    sa = json.loads((a / "stats.json").read_text())
    sb = json.loads((b / "stats.json").read_text())
    assert sa["n_removed"] == sb["n_removed"] > 50
    assert sa["dedup_stats"]["stored_text_bytes"] == 0
    assert sb["dedup_stats"]["stored_text_bytes"] > 0


def test_input_changed_during_the_run_is_an_error(tmp_path: Path) -> None:
    from textsieve.dedup import DedupSettings

    p = tmp_path / "c.jsonl"
    p.write_bytes(_corpus_lines())
    run = _core.DedupRun(DedupSettings(keep="longest").config())
    for chunk in CorpusReader([p]).chunks(docs=64):
        run.feed_chunk(chunk)
    p.write_bytes(b"[]\n" * 10_000)  # the lines are gone
    with pytest.raises(TextsieveError, match=r"c\.jsonl: the line at byte \d+ no longer reads"):
        while run.step()[0] < run.step()[1]:
            pass
        run.finish()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(st.characters(codec=None)), st.text(max_size=8), st.booleans()),
        min_size=1,
        max_size=12,
    )
)
def test_any_json_string_reads_as_python_reads_it(rows: list[tuple[str, str, bool]]) -> None:
    """Escapes of every kind (\\uXXXX, surrogate pairs, lone surrogates, control characters), as
    ASCII or raw UTF-8: the core's documents and skips are Python's."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "h.jsonl"
        with open(p, "wb") as fh:
            for text, rid, ascii_only in rows:
                line = json.dumps({"text": text, "id": rid}, ensure_ascii=ascii_only)
                fh.write(line.encode("utf-8", "surrogatepass") + b"\n")
        same_documents([p], on_error="skip")


def test_python_reader_refuses_truncated_zstd(tmp_path: Path) -> None:
    """The reader every other command and the Dask engine use: a zstd file cut anywhere inside a
    frame is an error naming it (it was read as a shorter corpus), several frames still read."""
    zstd = pytest.importorskip("zstandard")
    body = b"".join(b'{"text": "line %d"}\n' % i for i in range(20000))
    c = zstd.ZstdCompressor()
    data = c.compress(body[:100_000]) + c.compress(body[100_000:])
    whole = tmp_path / "whole.jsonl.zst"
    whole.write_bytes(data)
    assert sum(1 for _ in CorpusReader([whole])) == 20000
    for frac in (0.1, 0.5, 0.9):
        cut = tmp_path / f"cut{frac}.txt.zst"
        cut.write_bytes(data[: int(len(data) * frac)])
        with pytest.raises(TextsieveError, match=r"cut.*ends in the middle of a zstd frame"):
            list(CorpusReader([cut], on_error="skip"))


def test_ids_repeated_across_inputs_are_warned(tmp_path: Path) -> None:
    """``{"id": "doc0", "duplicate_of": "doc0"}`` says nothing: the run counts such rows and
    warns that ids repeat across the inputs."""
    from textsieve.cli import main

    text = "the same words in the same order, " * 8
    for name in ("a", "b"):
        (tmp_path / f"{name}.jsonl").write_text(
            json.dumps({"id": "doc0", "text": text}) + "\n"
            + json.dumps({"id": "doc1", "text": f"{name} something else entirely " * 9}) + "\n"
        )  # fmt: skip
    out = tmp_path / "out"
    assert main(["dedup", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), "-o", str(out),
                 "-q"]) == 0  # fmt: skip
    stats = json.loads((out / "stats.json").read_text())
    assert stats["n_removed"] == 1 and stats["n_removed_with_same_id"] == 1
    assert any("same id as the document they duplicate" in w for w in stats["warnings"])


def test_corrupt_parquet_page_names_the_file(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    p = tmp_path / "t.parquet"
    rows = [f"row {i} " + "words " * 40 for i in range(20000)]
    pq.write_table(pa.table({"text": rows}), p, compression="snappy", row_group_size=5000)
    data = bytearray(p.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 2000] = bytes(2000)  # a damaged page in the middle, the footer intact
    p.write_bytes(bytes(data))
    with pytest.raises(TextsieveError, match=r"t\.parquet: cannot read Parquet file"):
        list(CorpusReader([p]))


def test_dotted_fields_reach_into_nested_objects(tmp_path: Path) -> None:
    p = tmp_path / "nested.jsonl"
    rows = [
        {"meta": {"url": "u1", "lang": "en"}, "content": {"body": "first text"}},
        {"content": {"body": "second text"}, "meta": {"url": 7}},
        {"content.body": "the whole name wins", "content": {"body": "not this"}, "meta": {}},
        {"content": {"body": "deep \\u00e9 text"}, "meta": {"url": None}},
        {"content": "not an object"},
        {"content": {"body": 5}},
        {"content": {"other": "x"}},
        {"content": {"body": "a", "body2": "b"}, "meta": {"url": "u\ud800"}},
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    opts = {"text_field": "content.body", "id_field": "meta.url", "on_error": "skip"}
    a, _ = same_documents([p], **opts)
    docs = list(CorpusReader([p], **opts))
    assert [(d.id, d.text) for d in docs[:3]] == [
        ("u1", "first text"),
        ("7", "second text"),
        (f"{p}:3", "the whole name wins"),
    ]
    assert a.n_skipped == 3
    assert {s.reason for s in a.skipped} == {
        "no 'content.body' field",
        "field 'content.body' is a number, not a string",
    }
    # the core parses nested records itself: only the bad ones go back to Python
    reader = _core.ChunkReader(
        [(os.fsencode(p), os.fsencode(p), "jsonl", None)], "content.body", "meta.url", 100,
        1 << 20, 1 << 20,
    )  # fmt: skip
    deferred = [k for chunk in reader for k in chunk.deferred()]
    assert len(deferred) == 5  # the int id, three bad texts, the surrogate id


def test_dotted_fields_in_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed")
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed")
    p = tmp_path / "nested.parquet"
    table = pa.table(
        {"meta": [{"url": "a"}, {"url": "b"}], "doc": [{"body": "x y"}, {"body": "z w"}]}
    )
    pq.write_table(table, p)
    docs = list(CorpusReader([p], text_field="doc.body", id_field="meta.url"))
    assert [(d.id, d.text) for d in docs] == [("a", "x y"), ("b", "z w")]
    with pytest.raises(TextsieveError, match="no column 'body.doc'"):
        list(CorpusReader([p], text_field="body.doc"))
