"""`textsieve substrings` end to end on real files in tmp_path."""

from __future__ import annotations

import json
import random

import pytest
from textsieve.cli import main
from textsieve.reference import suffix as ref
from textsieve.substrings import OUTPUT_FILES


def paragraph(rng: random.Random, n_words: int) -> str:
    return " ".join(
        "".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 7))) for _ in range(n_words)
    )


def make_records(seed: int = 3) -> list[dict]:
    """Documents that share a boilerplate line and quote each other's paragraphs."""
    rng = random.Random(seed)
    boiler = "Copyright (c) the authors. All rights reserved — ünïcode ✓."
    paras = [paragraph(rng, 30) for _ in range(12)]
    records = []
    for i in range(20):
        parts = [paragraph(rng, 8), rng.choice(paras), paragraph(rng, 5)]
        if i % 3 == 0:
            parts.append(boiler)
        records.append({"id": f"d{i}", "meta": {"n": i, "f": 1.5}, "text": "\n".join(parts)})
    return records


def write_jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")


@pytest.mark.parametrize("policy", ["later", "all"])
def test_outputs_follow_the_definition(tmp_path, capsys, policy):
    records = make_records()
    src = tmp_path / "in.jsonl"
    write_jsonl(src, records)
    before = src.read_bytes()
    out = tmp_path / "out"
    rc = main(
        ["substrings", str(src), "-o", str(out), "--min-length", "40", "--policy", policy, "-q"]
    )
    assert rc == 0
    assert src.read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    texts = [r["text"] for r in records]
    want = ref.repeated_spans(texts, 40, policy)
    assert want, "the corpus must have repeats"
    rows = [json.loads(line) for line in (out / "spans.jsonl").read_text("utf-8").splitlines()]
    assert [(r["document"], r["start"], r["end"]) for r in rows] == [
        (f"d{d}", s, e) for d, s, e in want
    ]
    assert all(r["bytes"] == r["end"] - r["start"] for r in rows)
    cleaned = (out / "cleaned.jsonl").read_text("utf-8").splitlines()
    assert len(cleaned) == len(records)
    for i, (line, rec) in enumerate(zip(cleaned, records)):
        got = json.loads(line)
        b = rec["text"].encode()
        keep, at = [], 0
        for d, s, e in want:
            if d == i:
                keep.append(b[at:s])
                at = e
        keep.append(b[at:])
        assert got["text"] == b"".join(keep).decode()
        assert got["id"] == rec["id"] and got["meta"] == rec["meta"]
        if not any(d == i for d, _, _ in want):  # untouched records are copied byte for byte
            assert line == json.dumps(rec, ensure_ascii=False)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["n_documents"] == 20 and stats["n_spans"] == len(want)
    assert stats["removed_bytes"] == sum(e - s for _, s, e in want)
    assert "<svg" in (out / "report.html").read_text()


def test_dry_run_writes_only_spans_and_json(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, make_records())
    out = tmp_path / "out"
    rc = main(["substrings", str(src), "-o", str(out), "--min-length", "40", "--dry-run", "--json"])
    assert rc == 0
    assert [p.name for p in out.iterdir()] == ["spans.jsonl"]
    stats = json.loads(capsys.readouterr().out)
    assert stats["n_spans"] == len((out / "spans.jsonl").read_text().splitlines()) > 0


def test_plain_text_lines_become_records(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("alpha beta gamma delta\nzeta alpha beta gamma delta\n\nomega\n")
    out = tmp_path / "out"
    assert main(["substrings", str(src), "-o", str(out), "--min-length", "10", "-q"]) == 0
    lines = [json.loads(x) for x in (out / "cleaned.jsonl").read_text().splitlines()]
    assert [x["text"] for x in lines] == ["alpha beta gamma delta", "zeta ", "omega"]
    assert lines[1]["id"].endswith("in.txt:2")


def test_a_malformed_record_names_file_and_line(tmp_path, capsys):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"text": "fine"}\n{"text": 5}\n')
    out = tmp_path / "out"
    assert main(["substrings", str(src), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "bad.jsonl:2" in err
    assert not (out / "stats.json").exists()
    assert main(["substrings", str(src), "-o", str(out), "--on-error", "skip", "-q"]) == 0
    assert json.loads((out / "stats.json").read_text())["n_skipped"] == 1


def test_usage_errors_exit_2(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, make_records())
    with pytest.raises(SystemExit) as exc:
        main(["substrings", str(src), "-o", str(tmp_path / "o"), "--min-length", "0"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["substrings", str(src), "-o", str(tmp_path / "o"), "--policy", "first"])
    assert exc.value.code == 2


def test_standard_input(tmp_path):
    import subprocess
    import sys

    line = '{"id": "%s", "text": "%s"}\n'
    shared = "the same long passage of boilerplate text appears in both documents here"
    data = (line % ("a", "first " + shared) + line % ("b", "second " + shared)).encode()
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "textsieve", "substrings", "-", "-o", str(out), "-q"]
    result = subprocess.run([*argv, "--min-length", "40"], input=data, capture_output=True)
    assert result.returncode == 0, result.stderr
    cleaned = [json.loads(x) for x in (out / "cleaned.jsonl").read_text().splitlines()]
    assert cleaned[0]["text"] == "first " + shared and shared not in cleaned[1]["text"]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # the copy is gone


def test_dotted_text_field_is_cleaned_in_place(tmp_path):
    shared = "the same long passage of boilerplate text appears in both documents here"
    src = tmp_path / "n.jsonl"
    rows = [
        {"id": "a", "doc": {"body": "first " + shared}},
        {"id": "b", "doc": {"body": "2 " + shared}},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    argv = ["substrings", str(src), "-o", str(out), "-q", "--min-length", "40"]
    assert main([*argv, "--text-field", "doc.body"]) == 0
    cleaned = [json.loads(x) for x in (out / "cleaned.jsonl").read_text().splitlines()]
    assert cleaned[0] == rows[0]
    assert set(cleaned[1]) == {"id", "doc"} and shared not in cleaned[1]["doc"]["body"]
