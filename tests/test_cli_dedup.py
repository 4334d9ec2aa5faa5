"""`textsieve dedup` end to end on real files in tmp_path, plus the HTML report."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from textsieve.cli import main
from textsieve.commands.dedup import parse_shingle
from textsieve.report import cluster_size_bins, render_report, similarity_bins, write_report

# The command needs the dedup engine; the report and argument helpers above do not.
try:
    import textsieve.dedup  # noqa: F401

    HAVE_DEDUP = True
except ImportError:
    HAVE_DEDUP = False
needs_dedup = pytest.mark.skipif(not HAVE_DEDUP, reason="textsieve.dedup is not built yet")
try:
    import distributed  # noqa: F401

    HAVE_DASK = True
except ImportError:
    HAVE_DASK = False

OUTPUTS = ("kept.jsonl", "removed.jsonl", "pairs.jsonl", "stats.json", "report.html")


def paragraph(rng: random.Random, n_words: int = 60) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return " ".join(
        "".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(n_words)
    )


def edit(rng: random.Random, text: str, n_edits: int) -> str:
    chars = list(text)
    for _ in range(n_edits):
        chars[rng.randrange(len(chars))] = rng.choice("abcdefghijklmnopqrstuvwxyz")
    return "".join(chars)


def make_corpus(seed: int = 7) -> tuple[list[dict[str, str]], set[str]]:
    """30 distinct paragraphs, plus exact and lightly edited copies of some of them; returns the
    records and the ids of the copies (which a dedup at 0.8 must remove)."""
    rng = random.Random(seed)
    records = [{"id": f"doc{i}", "text": paragraph(rng)} for i in range(30)]
    copies = set()
    for i in range(0, 30, 3):
        records.append({"id": f"copy{i}", "text": records[i]["text"]})
        copies.add(f"copy{i}")
    for i in range(1, 30, 5):
        records.append({"id": f"near{i}", "text": edit(rng, records[i]["text"], 2)})
        copies.add(f"near{i}")
    order = list(range(30, len(records)))
    rng.shuffle(order)
    return records[:30] + [records[i] for i in order], copies


def write_jsonl_bytes(path: Path, records: list[dict[str, str]]) -> bytes:
    # Varied spacing and key order, so byte-identity of kept lines means something.
    lines = []
    for n, r in enumerate(records):
        if n % 2:
            lines.append(
                json.dumps({"text": r["text"], "id": r["id"], "n": n}, separators=(",", ":"))
            )
        else:
            lines.append(json.dumps(r, ensure_ascii=True, indent=None))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(data)
    return data


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p): sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_outputs(out: Path, n_expected: int) -> dict:
    """The invariants every run must satisfy; returns stats.json."""
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)  # no temp files left
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    kept = (out / "kept.jsonl").read_bytes().splitlines()
    removed = read_jsonl(out / "removed.jsonl")
    assert stats["n_input"] == n_expected
    assert stats["n_input"] == stats["n_kept"] + stats["n_removed"]
    assert stats["n_input_equals_kept_plus_removed"] is True
    assert len(kept) == stats["n_kept"] and len(removed) == stats["n_removed"]
    for key in ("read", "dedup", "write", "total"):
        assert stats["timings_s"][key] >= 0
    pairs = read_jsonl(out / "pairs.jsonl")
    assert len(pairs) == stats["n_pairs"]
    threshold = stats["parameters"]["threshold"]
    assert all(p["jaccard"] >= threshold - 1e-12 for p in pairs)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<script" not in page
    return stats


def cli(*argv: str | os.PathLike[str]) -> int:
    return main(["dedup", *map(str, argv)])


# --------------------------------------------------------------------------------------------
# End to end


@needs_dedup
def test_jsonl_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records, copies = make_corpus()
    src = tmp_path / "in" / "corpus.jsonl"
    src.parent.mkdir()
    data = write_jsonl_bytes(src, records)
    before = sha(src)
    out = tmp_path / "out"
    assert cli(src, "-o", out) == 0
    assert sha(src) == before
    stats = check_outputs(out, len(records))

    removed = read_jsonl(out / "removed.jsonl")
    removed_ids = {r["id"] for r in removed}
    assert copies <= removed_ids  # exact and lightly edited copies all go
    assert all(r["id"].startswith("doc") for r in records if r["id"] not in removed_ids)
    input_lines = data.splitlines(keepends=True)
    kept_lines = (out / "kept.jsonl").read_bytes().splitlines(keepends=True)
    # Kept lines are input lines, byte for byte and in input order.
    kept_set = set(kept_lines)
    assert kept_lines == [line for line in input_lines if line in kept_set]
    kept_ids = {json.loads(line)["id"] for line in kept_lines}
    assert kept_ids | removed_ids == {r["id"] for r in records}
    assert not kept_ids & removed_ids
    for r in removed:
        assert r["duplicate_of"] in kept_ids
        assert r["jaccard"] is None or 0.0 <= r["jaccard"] <= 1.0
        assert r["source"] == str(src) and r["line"] >= 31
    exact = {r["id"]: r for r in removed if r["id"].startswith("copy")}
    for rid, r in exact.items():
        assert r["duplicate_of"] == "doc" + rid[4:] and r["jaccard"] == 1.0
    pairs = read_jsonl(out / "pairs.jsonl")
    # one row per removed document, the same as removed.jsonl says, always within the threshold
    assert [(p["id"], p["duplicate_of"], p["jaccard"]) for p in pairs] == [
        (r["id"], r["duplicate_of"], r["jaccard"]) for r in removed
    ]
    assert all(p["jaccard"] >= 0.8 for p in pairs)
    assert ("copy0", "doc0", 1.0) in {(p["id"], p["duplicate_of"], p["jaccard"]) for p in pairs}
    assert stats["parameters"]["threshold"] == 0.8 and stats["parameters"]["num_perm"] == 128
    assert stats["input_files"][0]["path"] == str(src)
    assert stats["n_skipped"] == 0

    captured = capsys.readouterr()
    assert "kept" in captured.out and "removed" in captured.out
    assert captured.err == ""  # no progress bar when stderr is not a terminal


@needs_dedup
def test_json_output_parses_and_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records, _ = make_corpus(3)
    src = tmp_path / "c.jsonl"
    write_jsonl_bytes(src, records)
    assert cli(src, "-o", tmp_path / "o1", "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n_input"] == len(records) == printed["n_kept"] + printed["n_removed"]
    assert cli(src, "-o", tmp_path / "o2", "--quiet") == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


@needs_dedup
def test_options_reach_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(1)
    base = paragraph(rng)
    rows = [
        {"url": "short", "body": base},
        {"url": "long", "body": base + " tail"},
        {"url": "other", "body": paragraph(rng)},
    ]
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "o"
    argv = [src, "-o", out, "--text-field", "body", "--id-field", "url", "--keep", "longest"]
    argv += ["--threshold", "0.7", "--num-perm", "64", "--seed", "5", "--shingle", "word:2"]
    assert cli(*argv, "--json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert (
        stats["parameters"]
        | {
            "threshold": 0.7,
            "num_perm": 64,
            "seed": 5,
            "shingle": "word",
            "k": 2,
            "keep": "longest",
        }
        == stats["parameters"]
    )
    removed = read_jsonl(out / "removed.jsonl")
    assert [(r["id"], r["duplicate_of"]) for r in removed] == [("short", "long")]


@needs_dedup
def test_compressed_text_and_tree_inputs(tmp_path: Path) -> None:
    records, copies = make_corpus(11)
    half = len(records) // 2
    gz = tmp_path / "a.jsonl.gz"
    gz.write_bytes(gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records[:half])))
    inputs = [gz]
    rest = records[half:]
    zstandard = None
    try:
        import zstandard
    except ImportError:
        pass
    if zstandard is not None:
        zst = tmp_path / "b.jsonl.zst"
        payload = b"".join(json.dumps(r).encode() + b"\n" for r in rest)
        zst.write_bytes(zstandard.ZstdCompressor().compress(payload))
        inputs.append(zst)
    else:
        plain = tmp_path / "b.jsonl"
        plain.write_text("".join(json.dumps(r) + "\n" for r in rest), encoding="utf-8")
        inputs.append(plain)
    before = {p: sha(p) for p in inputs}
    out = tmp_path / "out"
    assert cli(*inputs, "-o", out, "--quiet") == 0
    stats = check_outputs(out, len(records))
    assert copies <= {r["id"] for r in read_jsonl(out / "removed.jsonl")}
    assert [f["compression"] for f in stats["input_files"]] == (
        ["gzip", "zstd"] if zstandard is not None else ["gzip", None]
    )
    assert {p: sha(p) for p in inputs} == before

    # One document per line of plain text.
    txt = tmp_path / "lines.txt"
    txt.write_text("\n".join(r["text"] for r in records) + "\n", encoding="utf-8")
    out = tmp_path / "out_txt"
    assert cli(txt, "-o", out, "--quiet") == 0
    check_outputs(out, len(records))
    kept = read_jsonl(out / "kept.jsonl")
    assert all(set(k) == {"id", "text"} and k["id"].startswith(f"{txt}:") for k in kept)

    # One document per file over a directory tree.
    tree = tmp_path / "tree"
    for n, r in enumerate(records):
        sub = tree / f"part{n % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{r['id']}.txt").write_text(r["text"], encoding="utf-8")
    tree_before = tree_hashes(tree)
    out = tmp_path / "out_tree"
    assert cli(tree, "--doc-per-file", "-o", out, "--quiet") == 0
    check_outputs(out, len(records))
    removed_names = {Path(r["id"]).stem for r in read_jsonl(out / "removed.jsonl")}
    # The first file of each cluster in walk order is kept; one of each copy pair goes.
    assert len(removed_names) == len(copies)
    assert tree_hashes(tree) == tree_before


@needs_dedup
def test_parquet_input(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    records, copies = make_corpus(5)
    path = tmp_path / "c.parquet"
    pq.write_table(
        pa.table({"id": [r["id"] for r in records], "text": [r["text"] for r in records]}), path
    )
    out = tmp_path / "out"
    assert cli(path, "-o", out, "--quiet", "--kept-format", "jsonl") == 0
    check_outputs(out, len(records))
    assert copies <= {r["id"] for r in read_jsonl(out / "removed.jsonl")}
    assert {tuple(sorted(k)) for k in read_jsonl(out / "kept.jsonl")} == {("id", "text")}


@needs_dedup
@pytest.mark.parametrize("keep", ["first", "longest"])
def test_parquet_in_parquet_out(tmp_path: Path, keep: str) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    records, copies = make_corpus(5)
    n = len(records)
    # types JSON would lose (bytes, timestamps), a nested text field, and rows with no text
    table = pa.table(
        {
            "id": [r["id"] for r in records],
            "doc": [{"body": r["text"]} for r in records],
            "blob": [r["id"].encode() for r in records],
            "when": pa.array(range(n), pa.timestamp("ms")),
        }
    )
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(table.slice(0, n // 2), a)
    nulls = table.slice(n // 2).set_column(1, "doc", pa.array([None] * (n - n // 2 - 1) + [{"body": None}], table.schema.field("doc").type))  # fmt: skip
    pq.write_table(pa.concat_tables([table.slice(n // 2), nulls]), b)
    out = tmp_path / "out"
    argv = [a, b, "-o", out, "-q", "--text-field", "doc.body", "--on-error", "skip", "--keep", keep]
    assert cli(*argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "kept.parquet", "pairs.jsonl", "removed.jsonl", "report.html", "stats.json"
    ]  # fmt: skip
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["n_input"] == n and stats["n_skipped"] == n - n // 2
    kept = pq.read_table(out / "kept.parquet")
    assert kept.schema == table.schema  # columns and types kept
    removed = {r["id"] for r in read_jsonl(out / "removed.jsonl")}
    assert copies <= removed
    want = table.filter(pa.array([r["id"] not in removed for r in records]))
    assert kept.equals(want) and kept.num_rows == stats["n_kept"]
    if keep == "first" and HAVE_DASK:  # the Dask engine writes the same rows
        assert cli(*argv, "-o", tmp_path / "dask", "--engine", "dask") == 0
        assert pq.read_table(tmp_path / "dask" / "kept.parquet").equals(kept)
    # asked for JSON Lines: the rows as JSON objects, and the Parquet file of the last run goes
    assert cli(*argv, "--kept-format", "jsonl") == 0
    assert not (out / "kept.parquet").exists()
    assert len(read_jsonl(out / "kept.jsonl")) == stats["n_kept"]


@needs_dedup
def test_empty_documents_and_empty_corpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "e.jsonl"
    src.write_text(
        '{"text": ""}\n{"text": ""}\n{"text": "same words here"}\n{"text": "same words here"}\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    assert cli(src, "-o", out) == 0
    assert "2 empty document(s)" in capsys.readouterr().out
    stats = check_outputs(out, 4)
    assert stats["n_empty"] == 2 and stats["n_removed"] == 1  # empty texts never match
    assert [r["line"] for r in read_jsonl(out / "removed.jsonl")] == [4]
    # Run again into the same folder: outputs replaced, nothing left over.
    assert cli(src, "-o", out, "--quiet") == 0
    check_outputs(out, 4)

    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n  \n", encoding="utf-8")
    out = tmp_path / "out_blank"
    assert cli(blank, "-o", out, "--json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["n_input"] == 0 and stats["n_blank_lines"] == 2
    check_outputs(out, 0)


# --------------------------------------------------------------------------------------------
# Bad input


@needs_dedup
def test_malformed_line_stops_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records, _ = make_corpus()
    src = tmp_path / "c.jsonl"
    data = write_jsonl_bytes(src, records)
    lines = data.splitlines(keepends=True)
    lines.insert(4, b'{"id": "broken", "text": \n')
    lines.insert(9, b'{"id": "no text"}\n')
    src.write_bytes(b"".join(lines))
    before = sha(src)
    out = tmp_path / "out"
    assert cli(src, "-o", out) == 1
    err = capsys.readouterr().err
    assert f"{src}:5:" in err and "malformed JSON" in err
    assert not (out / "kept.jsonl").exists()

    assert cli(src, "-o", out, "--on-error", "skip", "--json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["n_skipped"] == 2
    assert [(s["line"], s["source"]) for s in stats["skipped"]] == [(5, str(src)), (10, str(src))]
    assert "no 'text' field" in stats["skipped"][1]["reason"]
    check_outputs(out, len(records))
    assert sha(src) == before


def test_missing_input_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(tmp_path / "absent.jsonl", "-o", tmp_path / "out") == 1
    assert "absent.jsonl: no such file or directory" in capsys.readouterr().err


def test_output_over_an_input_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "kept.jsonl"
    src.write_text('{"text": "a"}\n', encoding="utf-8")
    before = sha(src)
    assert cli(src, "-o", tmp_path) == 1
    assert "is an input file" in capsys.readouterr().err
    assert sha(src) == before
    target = tmp_path / "a_file"
    target.write_text("x", encoding="utf-8")
    assert cli(src, "-o", target) == 1


def test_dask_engine_without_dask_is_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: (
            None if name.split(".")[0] in {"dask", "distributed"} else real_find_spec(name, *a)
        ),
    )
    src = tmp_path / "c.jsonl"
    src.write_text('{"text": "a"}\n', encoding="utf-8")
    assert cli(src, "-o", tmp_path / "out", "--engine", "dask") == 1
    assert "pip install textsieve[dask]" in capsys.readouterr().err


@needs_dedup
def test_dask_engine_gives_the_local_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("dask")
    pytest.importorskip("distributed")
    records, copies = make_corpus(13)
    src = tmp_path / "c.jsonl"
    write_jsonl_bytes(src, records)
    assert cli(src, "-o", tmp_path / "local", "--quiet") == 0
    assert cli(src, "-o", tmp_path / "dask", "--engine", "dask", "--workers", "1", "--json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["n_input"] == len(records) == stats["n_kept"] + stats["n_removed"]
    for name in ("kept.jsonl", "removed.jsonl"):
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    assert copies <= {r["id"] for r in read_jsonl(tmp_path / "dask" / "removed.jsonl")}


@pytest.mark.parametrize(
    "argv",
    [
        ["--threshold", "1.5"],
        ["--threshold", "abc"],
        ["--num-perm", "0"],
        ["--shingle", "byte:3"],
        ["--shingle", "char:x"],
        ["--keep", "last"],
        ["--on-error", "ignore"],
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, argv: list[str]) -> None:
    src = tmp_path / "c.jsonl"
    src.write_text('{"text": "a"}\n', encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        cli(src, "-o", tmp_path / "out", *argv)
    assert info.value.code == 2


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--num-perm", "100000"),
        ("--num-perm", "99999999999999999999999"),
        ("--seed", str(2**64)),
        ("--seed", "-1"),
        ("--shingle", "char:5000"),
        ("--threshold", "nan"),
        ("--threads", "0"),
    ],
)
def test_out_of_range_flags_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    """Values the core would refuse are refused by argparse: exit 2, one line naming the flag,
    no traceback, nothing written."""
    src = tmp_path / "c.jsonl"
    src.write_text('{"text": "a"}\n', encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        cli(src, "-o", tmp_path / "out", flag, value)
    assert info.value.code == 2
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if "error:" in x]
    assert line.startswith(f"textsieve dedup: error: argument {flag}: ")
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_missing_input_or_output_exit_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        cli("-o", tmp_path / "out")
    assert info.value.code == 2
    src = tmp_path / "c.jsonl"
    src.write_text('{"text": "a"}\n', encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        cli(src)
    assert info.value.code == 2


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli("--help")
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--demo" in text and "--on-error" in text


def test_exit_codes_of_the_real_process(tmp_path: Path) -> None:
    def run(*argv: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "textsieve", "dedup", *map(str, argv)],
            capture_output=True,
            text=True,
            timeout=300,
        )

    assert run("--threshold", "2", "x.jsonl", "-o", tmp_path).returncode == 2
    result = run(tmp_path / "missing.jsonl", "-o", tmp_path / "out")
    assert result.returncode == 1 and "missing.jsonl" in result.stderr
    if HAVE_DEDUP:
        src = tmp_path / "c.jsonl"
        src.write_text('{"text": "a b c d e f"}\n{"text": "a b c d e f"}\n', encoding="utf-8")
        result = run(src, "-o", tmp_path / "ok", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["n_removed"] == 1
        assert result.stderr == ""


# --------------------------------------------------------------------------------------------
# --demo


@needs_dedup
def test_demo_on_the_standard_library(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert cli("--demo", "-o", out, "--json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["n_input"] > 100  # every Python ships hundreds of .py files
    assert stats["n_input"] == stats["n_kept"] + stats["n_removed"]
    assert stats["parameters"]["doc_per_file"] is True
    assert all(e["jaccard"] >= 0.8 for e in stats["examples"])
    check_outputs(out, stats["n_input"])


@needs_dedup
def test_demo_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("--demo", "-o", tmp_path / "demo") == 0
    text = capsys.readouterr().out
    assert "standard library" in text and "files" in text and "report.html" in text


# --------------------------------------------------------------------------------------------
# Helpers and the report


def test_parse_shingle() -> None:
    assert parse_shingle("char:5") == ("char", 5)
    assert parse_shingle("word:3") == ("word", 3)
    assert parse_shingle("word") == ("word", 3)
    assert parse_shingle("CHAR") == ("char", 5)


def test_id_store_round_trips() -> None:
    from textsieve import _core

    ids = _core.IdsCore()
    values = ["a", "", "héllo", "\ud800lone", "x" * 1000, "doc:12"]
    ids.extend([v.encode("utf-8", "surrogatepass") for v in values])
    assert len(ids) == len(values)
    assert [ids[i] for i in range(len(values))] == values


def test_report_escapes_and_draws(tmp_path: Path) -> None:
    evil = '<script>alert("x")</script> & <b>bold</b>'
    clusters = [
        {
            "cluster": 3,
            "size": 6,
            "members": [
                {"id": "<id1>", "text": evil, "kept": True, "jaccard": None},
                {"id": "id2", "text": evil + " more", "kept": False, "jaccard": 0.93},
            ],
        }
    ]
    path = tmp_path / "r" / "report.html"
    write_report(
        path,
        similarities=[0.8, 0.85, 0.93, 1.0],
        cluster_sizes=[1, 1, 6, 2, 2],
        clusters=clusters,
        summary={"documents in": 12, "kept": 7},
        threshold=0.8,
        subtitle="<corpus>",
    )
    page = path.read_text(encoding="utf-8")
    assert "<script" not in page and "<b>" not in page and "&lt;script&gt;" in page
    assert "&lt;id1&gt;" in page and "&lt;corpus&gt;" in page
    assert page.count("<svg") == 2 and "<mark>" in page and "0.930" in page
    assert "and 4 more" in page
    # The charts are well-formed SVG with one bar (and tooltip) per bin.
    charts = [ET.fromstring(m) for m in re.findall(r"<svg.*?</svg>", page, flags=re.S)]
    ns = "{http://www.w3.org/2000/svg}"
    assert [len(c.findall(f"{ns}rect")) for c in charts] == [20, 2]
    assert charts[1].find(f"{ns}rect/{ns}title").text == "2: 2"
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_report_without_duplicates() -> None:
    page = render_report(similarities=[], cluster_sizes=[1, 1, 1], clusters=[], summary={})
    assert "No duplicates were found" in page and "nothing to show" in page


def test_report_bins() -> None:
    labels, counts = similarity_bins([0.8, 0.85, 0.9, 1.0, 1.0], threshold=0.8, n_bins=4)
    assert labels == ["0.80", "0.85", "0.90", "0.95"] and counts == [1, 1, 1, 2]
    assert sum(similarity_bins([0.31, 0.99], threshold=0.5)[1]) == 2
    assert cluster_size_bins([1, 2, 2, 5]) == (["2", "5"], [2, 1])
    labels, counts = cluster_size_bins(range(2, 100), max_bars=5)
    assert sum(counts) == 98 and labels[0] == "2" and labels[-1] == "65-128"
    # a corpus's sizes come as an array, counted by NumPy: the same bars
    import numpy as np

    sizes = [1, 2, 2, 5, 3, 2, 40, 7, 7]
    for bars in (24, 3):
        assert cluster_size_bins(np.array(sizes), bars) == cluster_size_bins(sizes, bars)


def test_largest_clusters_are_largest_first_ties_by_kept_document() -> None:
    import numpy as np
    from textsieve.pipeline import largest_clusters

    # clusters: 0 {0, 1, 2}, 3 {3, 4}, 5 {5, 6, 7}, 8 {8, 9}; 10 stands alone
    dup = np.array([-1, 0, 0, -1, 3, -1, 5, 5, -1, 8, -1])
    sim = np.where(dup >= 0, 0.9, np.nan)
    shown = largest_clusters(dup, sim, lambda d: f"d{d}", lambda d: f"text {d}", limit=3)
    assert [(c["cluster"], c["size"]) for c in shown] == [(0, 3), (5, 3), (3, 2)]
    assert [m["id"] for m in shown[1]["members"]] == ["d5", "d6", "d7"]


@needs_dedup
def test_rerun_replaces_the_whole_output_set(tmp_path: Path) -> None:
    records, _ = make_corpus(5)
    src = tmp_path / "c.jsonl"
    write_jsonl_bytes(src, records)
    out = tmp_path / "o"
    assert cli(src, "-o", out, "-q") == 0
    first = {name: (out / name).read_bytes() for name in OUTPUTS}
    # a killed run's temporaries, and a run with other settings into the same folder
    stale = out / ".kept.jsonl.999.deadbeef.tmp"
    stale.write_bytes(b"half a file")
    assert cli(src, "-o", out, "-q", "--threshold", "0.95") == 0
    assert not stale.exists()
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["parameters"]["threshold"] == 0.95
    kept = (out / "kept.jsonl").read_bytes().splitlines()
    assert len(kept) == stats["n_kept"] >= json.loads(first["stats.json"])["n_kept"]


def _tick_labels(svg: str) -> list[str]:
    """The y-axis tick labels of a report chart (the texts right-aligned left of the plot)."""
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    return [t.text or "" for t in root.iter(f"{ns}text") if t.get("text-anchor") == "end"]


def test_report_count_axes_have_whole_short_ticks() -> None:
    from textsieve.report import bar_chart_svg

    # 25 clusters at most: whole ticks, never 6.2 / 12.5 / 18.8 clusters
    labels = _tick_labels(bar_chart_svg(["2", "3"], [25, 4], title="t", xlabel="x"))
    assert labels and all(lab.isdigit() for lab in labels), labels
    # over a million pairs: compact labels that fit the 52-pixel margin (not a clipped 000,000)
    labels = _tick_labels(bar_chart_svg(["0.80", "0.85"], [1_234_567, 10], title="t", xlabel="x"))
    assert labels == ["0", "500k", "1M", "1.5M"]
    assert all(len(lab) <= 5 for lab in labels)


def test_report_says_which_clusters_it_counts() -> None:
    page = render_report(similarities=[0.9], cluster_sizes=[2], threshold=0.8)
    assert "Largest clusters with duplicates" in page and ">clusters with duplicates<" in page


def _run_stdin(argv: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "textsieve", *argv], input=data, capture_output=True, timeout=300
    )


@needs_dedup
@pytest.mark.parametrize("keep", ["first", "longest"])
def test_standard_input_is_read_like_a_file(tmp_path: Path, keep: str) -> None:
    records, _ = make_corpus()
    src = tmp_path / "corpus.jsonl"
    data = write_jsonl_bytes(src, records)
    assert cli(src, "-o", tmp_path / "file", "--keep", keep, "-q") == 0
    want = (tmp_path / "file" / "kept.jsonl").read_bytes()
    for name, payload in (("plain", data), ("gzip", gzip.compress(data))):
        out = tmp_path / name
        result = _run_stdin(["dedup", "-", "-o", str(out), "--keep", keep, "-q"], payload)
        assert result.returncode == 0, result.stderr
        stats = check_outputs(out, len(records))  # the copy of stdin is gone too
        assert (out / "kept.jsonl").read_bytes() == want
        assert stats["input_files"][0]["path"] == "-"
        assert stats["input_files"][0]["compression"] == ("gzip" if name == "gzip" else None)
    # plain text is sniffed: ids name "-" and the line
    result = _run_stdin(["dedup", "-", "-o", str(tmp_path / "text"), "-q"], b"a b c\nd e f\n")
    assert result.returncode == 0, result.stderr
    assert read_jsonl(tmp_path / "text" / "kept.jsonl") == [
        {"id": "-:1", "text": "a b c"},
        {"id": "-:2", "text": "d e f"},
    ]
    bad = _run_stdin(["dedup", "-", "-o", str(tmp_path / "bad")], b'{"text": "x"}\n{"text": 1}\n')
    assert bad.returncode == 1 and b"-:2: field 'text' is a number" in bad.stderr
    twice = _run_stdin(["dedup", "-", "-", "-o", str(tmp_path / "twice")], data)
    assert twice.returncode == 2 and b"can be given once" in twice.stderr


def test_ngram_reads_standard_input(tmp_path: Path) -> None:
    model = tmp_path / "m.npz"
    assert main(["ngram", "train", "--train", str(_text_file(tmp_path)), "-o", str(model)]) == 0
    result = _run_stdin(["ngram", "score", str(model), "-"], b'{"id": "a", "text": "the cat"}\n')
    assert result.returncode == 0, result.stderr
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["id"] == "a" and row["perplexity"] > 1
    both = _run_stdin(["ngram", "perplexity", "--train", "-", "--eval", "-"], b"the cat\n")
    assert both.returncode == 1 and b"standard input was read already" in both.stderr


def _text_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.txt"
    path.write_text("the cat sat on the mat\nthe dog sat on the log\n", encoding="utf-8")
    return path


@needs_dedup
@pytest.mark.parametrize("engine", ["local", "dask"])
def test_compressed_outputs(tmp_path: Path, engine: str) -> None:
    if engine == "dask":
        pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    zstandard = pytest.importorskip("zstandard", reason="zstandard is not installed")
    records, _ = make_corpus()
    src = tmp_path / "corpus.jsonl"
    write_jsonl_bytes(src, records)
    out = tmp_path / "out"
    assert cli(src, "-o", out, "-q") == 0
    plain = {n: (out / n).read_bytes() for n in ("kept.jsonl", "removed.jsonl", "pairs.jsonl")}
    unpack = {".gz": gzip.decompress, ".zst": lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b)}  # fmt: skip
    for compression, suffix in (("gzip", ".gz"), ("zstd", ".zst")):
        argv = [src, "-o", out, "-q", "--compress", compression, "--engine", engine]
        assert cli(*argv) == 0
        names = sorted(p.name for p in out.iterdir() if p.name != "_work")  # Dask's restart state
        # the previous run's uncompressed (or other) outputs are gone: one run per folder
        assert names == sorted([f"{n}{suffix}" for n in plain] + ["report.html", "stats.json"])
        for name, want in plain.items():
            assert unpack[suffix]((out / f"{name}{suffix}").read_bytes()) == want
        stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
        assert stats["parameters"]["compression"] == compression
        assert stats["outputs"]["kept.jsonl"].endswith(f"kept.jsonl{suffix}")


def test_ngram_scores_compressed_when_the_name_asks(tmp_path: Path) -> None:
    model = tmp_path / "m.npz"
    train = _text_file(tmp_path)
    assert main(["ngram", "train", "--train", str(train), "-o", str(model)]) == 0
    out = tmp_path / "scores.jsonl.gz"
    assert main(["ngram", "score", str(model), str(train), "-o", str(out), "-q"]) == 0
    rows = [json.loads(line) for line in gzip.decompress(out.read_bytes()).splitlines()]
    assert [r["id"] for r in rows] == [f"{train}:1", f"{train}:2"]


@needs_dedup
@pytest.mark.parametrize("engine", ["local", "dask"])
def test_annotate_writes_every_record_with_its_decision(tmp_path: Path, engine: str) -> None:
    if engine == "dask":
        pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    records, copies = make_corpus()
    src = tmp_path / "corpus.jsonl"
    data = write_jsonl_bytes(src, records)
    split = tmp_path / "split"
    assert cli(src, "-o", split, "-q") == 0
    removed = {r["id"]: r for r in read_jsonl(split / "removed.jsonl")}
    assert set(removed) == copies
    out = tmp_path / "split"  # the same folder: the split run's files make way
    assert cli(src, "-o", out, "-q", "--annotate", "--engine", engine) == 0
    names = sorted(p.name for p in out.iterdir() if p.name != "_work")
    assert names == ["annotated.jsonl", "pairs.jsonl", "report.html", "stats.json"]
    lines = (out / "annotated.jsonl").read_bytes().splitlines(keepends=True)
    originals = data.splitlines(keepends=True)
    assert len(lines) == len(originals) == len(records)
    for n, (line, original) in enumerate(zip(lines, originals)):
        row = json.loads(line)
        decision = row.pop("dedup")
        # the record's own bytes come first, unchanged, then the added field
        assert line.startswith(original.rstrip(b"}\n")) and row == json.loads(original)
        if row["id"] in removed:
            want = removed[row["id"]]
            assert decision == {
                "keep": False,
                "cluster": want["cluster"],
                "duplicate_of": want["duplicate_of"],
                "jaccard": want["jaccard"],
            }
        else:
            assert decision == {"keep": True, "cluster": n, "duplicate_of": None, "jaccard": None}
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["parameters"]["annotate"] is True and stats["n_removed"] == len(copies)
    assert stats["n_kept"] == len(records) - len(copies)
    if engine == "dask":  # the same bytes as the local engine
        local = tmp_path / "local"
        assert cli(src, "-o", local, "-q", "--annotate") == 0
        assert (local / "annotated.jsonl").read_bytes() == (out / "annotated.jsonl").read_bytes()


def test_annotated_record_shapes() -> None:
    from textsieve import _core

    assert _core.annotate_record(b"{}", 3, None, float("nan")) == (
        b'{"dedup": {"keep": true, "cluster": 3, "duplicate_of": null, "jaccard": null}}\n'
    )
    got = _core.annotate_record(b' { "a" : [1, {"b": 2}] } \r\n', 0, "k\u00e9".encode(), 0.875)
    assert got == (
        b' { "a" : [1, {"b": 2}] , "dedup": {"keep": false, "cluster": 0, '
        b'"duplicate_of": "k\xc3\xa9", "jaccard": 0.875}} \r\n'
    )
    assert json.loads(got)["a"] == [1, {"b": 2}]


@needs_dedup
def test_lone_surrogate_ids_round_trip_in_both_engines(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "ids.jsonl"
    src.write_text(
        '{"id": "a\\ud800", "text": "hello world foo bar"}\n'
        '{"id": "b", "text": "hello world foo bar"}\n'
        '{"id": "c\\udfff", "text": "hello world foo bar"}\n',
        encoding="utf-8",
    )
    assert cli(src, "-o", tmp_path / "local", "-q") == 0
    removed = read_jsonl(tmp_path / "local" / "removed.jsonl")
    assert [(r["id"], r["duplicate_of"]) for r in removed] == [
        ("b", "a\ud800"),
        ("c\udfff", "a\ud800"),
    ]
    assert "a\\ud800" in (tmp_path / "local" / "report.html").read_text(encoding="utf-8")
    pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    assert cli(src, "-o", tmp_path / "dask", "-q", "--engine", "dask") == 0
    for name in ("kept.jsonl", "removed.jsonl", "pairs.jsonl"):
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()


@needs_dedup
def test_dask_reports_a_bad_record_without_worker_tracebacks(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    src = tmp_path / "bad.jsonl"
    src.write_text('{"text": "hello world"}\n{"text": 5}\n', encoding="utf-8")
    capfd.readouterr()
    assert cli(src, "-o", tmp_path / "out", "--engine", "dask") == 1
    err = capfd.readouterr().err
    assert "bad.jsonl:2: field 'text' is a number, not a string" in err
    assert "Traceback" not in err and "Compute Failed" not in err


@needs_dedup
def test_dask_run_failing_while_writing_leaves_no_stats_of_another_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    from textsieve.dask import driver

    records, _ = make_corpus(5)
    src = tmp_path / "c.jsonl"
    write_jsonl_bytes(src, records)
    out = tmp_path / "o"
    assert cli(src, "-o", out, "-q") == 0
    (out / ".removed.jsonl.999.deadbeef.tmp").write_bytes(b"half a file")
    calls = []
    real = driver._concat

    def concat(parts: list[str], target: str) -> None:
        calls.append(target)
        if len(calls) == 2:  # kept.jsonl has landed, removed.jsonl has not
            raise OSError(28, "No space left on device")
        real(parts, target)

    monkeypatch.setattr(driver, "_concat", concat)
    assert cli(src, "-o", out, "-q", "--engine", "dask", "--threshold", "0.95") == 1
    assert not (out / "stats.json").exists()  # the folder claims no complete run
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


@needs_dedup
@pytest.mark.parametrize("engine", ["local", "dask"])
def test_file_names_that_are_not_utf8_reach_stats_and_summary(tmp_path: Path, engine: str) -> None:
    if engine == "dask":
        pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    src = os.fsencode(tmp_path) + b"/bad\xff.txt"
    Path(os.fsdecode(src)).write_bytes(b"a b c d\na b c d\n")
    out = os.fsencode(tmp_path) + b"/out\xfe"
    argv = [sys.executable, "-m", "textsieve", "dedup", src, "-o", out, "--engine", engine]
    result = subprocess.run([*argv, "--json"], capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["inputs"] == [os.fsdecode(src)] and stats["n_removed"] == 1
    kept = read_jsonl(Path(os.fsdecode(out)) / "kept.jsonl")
    assert kept == [{"id": f"{os.fsdecode(src)}:1", "text": "a b c d"}]
    saved = json.loads((Path(os.fsdecode(out)) / "stats.json").read_text(encoding="utf-8"))
    assert saved["inputs"] == stats["inputs"]
    summary = subprocess.run(argv, capture_output=True, timeout=300)
    assert summary.returncode == 0 and b"kept 1, removed 1" in summary.stdout
