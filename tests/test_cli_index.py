"""`textsieve dedup --index DIR [--update]` and `textsieve index ...` end to end."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import textsieve as ts
from textsieve.cli import main

from tests.test_cli_dedup import check_outputs, edit, paragraph, read_jsonl


def records(seed: int, start: int, n: int, pool: list[str]) -> list[dict[str, str]]:
    """Fresh paragraphs, with near and exact copies of earlier ones (of this file or `pool`)."""
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        r = rng.random()
        if pool and r < 0.3:
            text = edit(rng, rng.choice(pool), rng.randint(0, 3))
        else:
            text = paragraph(rng)
        pool.append(text)
        out.append({"id": f"doc{i}", "text": text})
    return out


def write(path: Path, recs: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    return path


def test_dedup_against_an_index_day_by_day(tmp_path, capsys):
    pool: list[str] = []
    days = [records(d, d * 60, 60, pool) for d in range(3)]
    files = [write(tmp_path / f"day{d}.jsonl", recs) for d, recs in enumerate(days)]
    idx = tmp_path / "idx"
    every = [r for recs in days for r in recs]
    whole = ts.dedup([r["text"] for r in every], threshold=0.8)
    assert 20 < int((~whole.keep).sum()) < 100
    kept_ids: list[str] = []
    for d, f in enumerate(files):
        out = tmp_path / f"out{d}"
        assert main(["dedup", str(f), "-o", str(out), "--index", str(idx), "--update", "-q"]) == 0
        stats = check_outputs(out, 60)
        kept_ids += [
            json.loads(line)["id"] for line in (out / "kept.jsonl").read_text().splitlines()
        ]
        removed = read_jsonl(out / "removed.jsonl")
        earlier = {r["id"] for recs in days[:d] for r in recs}
        against = [r for r in removed if r["duplicate_of"] in earlier]
        assert stats["n_removed_vs_index"] == len(against)
        if d:
            assert against  # days after the first find copies of earlier days
    assert kept_ids == [r["id"] for r, k in zip(every, whole.keep) if k]
    # a run without --update reads the index and leaves it alone
    again = tmp_path / "again"
    assert main(["dedup", str(files[1]), "-o", str(again), "--index", str(idx), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["n_kept"] == 0 and stats["index"]["updated"] is False
    assert main(["index", "info", str(idx), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_docs"] == len(kept_ids) and info["n_segments"] == 3
    assert info["bytes_per_doc"] > 0


def test_dedup_with_an_index_feeds_groups_of_chunks(tmp_path, monkeypatch):
    # the reader's chunks go to the index in groups (one lookup pass each); with
    # keep="longest" a document may duplicate a longer one later in its group, in another
    # chunk: every output names it, and the decisions are an add's of each group
    import textsieve.local_index as li

    monkeypatch.setattr(li, "CHUNK_DOCS", 7)
    monkeypatch.setattr(li, "GROUP_DOCS", 30)
    monkeypatch.setattr(li, "GROUP_CHARS", 1 << 40)  # (else a group ends at 4 chunks)
    rng = random.Random(5)
    recs = []
    for i in range(120):
        text = paragraph(rng)
        if i % 3 == 2:  # a longer copy of the one before, in a later chunk of the group
            text = recs[-1]["text"] + " " + paragraph(rng)[:20]
        recs.append({"id": f"doc{i}", "text": text})
    f = write(tmp_path / "in.jsonl", recs)
    idx, out = tmp_path / "idx", tmp_path / "out"
    assert main(["index", "create", str(idx), "--keep", "longest"]) == 0
    assert main(["dedup", str(f), "-o", str(out), "--index", str(idx), "--update", "-q"]) == 0
    check_outputs(out, len(recs))
    removed = {r["id"]: r["duplicate_of"] for r in read_jsonl(out / "removed.jsonl")}
    ids = [r["id"] for r in recs]
    assert any(ids.index(d) > ids.index(r) for r, d in removed.items())  # a later, longer one
    with ts.DedupIndex.open(tmp_path / "api", threshold=0.8, keep="longest") as api:
        # groups of whole chunks, up to the first past 30 documents: 5 chunks of 7
        keep = np.concatenate(
            [api.add([r["text"] for r in recs[g : g + 35]]).keep for g in range(0, 120, 35)]
        )
    assert set(removed) == {r["id"] for r, k in zip(recs, keep) if not k}


def test_index_commands(tmp_path, capsys):
    pool: list[str] = []
    recs = records(5, 0, 80, pool)
    src = write(tmp_path / "a.jsonl", recs)
    idx = tmp_path / "idx"
    assert main(["index", "create", str(idx), "--threshold", "0.7", "--shingle", "word:3"]) == 0
    assert "created" in capsys.readouterr().out
    assert main(["index", "create", str(idx)]) == 1
    capsys.readouterr()
    assert main(["index", "add", str(idx), str(src), "-q"]) == 0
    want = ts.dedup([r["text"] for r in recs], threshold=0.7, shingle="word", k=3)
    with ts.DedupIndex.open(idx, readonly=True) as ro:
        assert len(ro) == int(want.keep.sum())
        assert ro.settings["shingle"] == "word" and ro.settings["k"] == 3
        first_kept = next(i for _, i, _ in ro.documents())
    assert main(["index", "remove", str(idx), first_kept, "nope"]) == 0
    assert "removed 1 of 2" in capsys.readouterr().out
    assert main(["index", "compact", str(idx)]) == 0
    assert "compacted" in capsys.readouterr().out
    assert main(["index", "info", str(idx)]) == 0
    text = capsys.readouterr().out
    assert f"{int(want.keep.sum()) - 1:,} documents" in text
    # the settings of an existing index win over defaults; a different explicit one is an error
    out = tmp_path / "out"
    assert main(["dedup", str(src), "-o", str(out), "--index", str(idx), "-q"]) == 0
    assert main(["dedup", str(src), "-o", str(out), "--index", str(idx), "--threshold", "0.9"]) == 1
    assert "threshold" in capsys.readouterr().err


def test_usage_errors(tmp_path, capsys):
    src = write(tmp_path / "a.jsonl", [{"id": "x", "text": "some text here"}])
    out = tmp_path / "out"
    assert main(["dedup", str(src), "-o", str(out), "--index", str(tmp_path / "none")]) == 1
    assert "--update" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["dedup", str(src), "-o", str(out), "--update"])
    assert exc.value.code == 2
    assert main(["index", "info", str(tmp_path / "none")]) == 1
    assert main(["index", "remove", str(tmp_path / "none")]) == 1


def test_dedup_with_an_index_writes_every_output_shape(tmp_path, capsys):
    """--compress, --annotate and Parquet out give the plain run's decisions."""
    import gzip

    pool: list[str] = []
    day0 = write(tmp_path / "day0.jsonl", records(0, 0, 60, pool))
    day1_recs = records(1, 60, 60, pool)
    day1 = write(tmp_path / "day1.jsonl", day1_recs)
    idx = tmp_path / "idx"
    assert (
        main(
            ["dedup", str(day0), "-o", str(tmp_path / "o0"), "--index", str(idx), "--update", "-q"]
        )
        == 0
    )
    plain = tmp_path / "plain"
    assert main(["dedup", str(day1), "-o", str(plain), "--index", str(idx), "-q"]) == 0
    kept = (plain / "kept.jsonl").read_bytes()
    removed = {r["id"]: r for r in read_jsonl(plain / "removed.jsonl")}
    assert removed and kept

    gz = tmp_path / "gz"
    assert (
        main(["dedup", str(day1), "-o", str(gz), "--index", str(idx), "-q", "--compress", "gzip"])
        == 0
    )
    assert gzip.decompress((gz / "kept.jsonl.gz").read_bytes()) == kept
    assert json.loads((gz / "stats.json").read_text())["parameters"]["compression"] == "gzip"

    ann = tmp_path / "ann"
    assert main(["dedup", str(day1), "-o", str(ann), "--index", str(idx), "-q", "--annotate"]) == 0
    rows = read_jsonl(ann / "annotated.jsonl")
    assert [r["id"] for r in rows] == [r["id"] for r in day1_recs]
    for row in rows:
        dec = row["dedup"]
        assert dec["keep"] is (row["id"] not in removed)
        if not dec["keep"]:
            assert dec["duplicate_of"] == removed[row["id"]]["duplicate_of"]

    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed")
    import pyarrow as pa

    src = tmp_path / "day1.parquet"
    pq.write_table(pa.Table.from_pylist(day1_recs), src)
    out = tmp_path / "pq"
    assert main(["dedup", str(src), "-o", str(out), "--index", str(idx), "-q"]) == 0
    got = pq.read_table(out / "kept.parquet").to_pylist()
    assert got == [json.loads(line) for line in kept.splitlines()]
    assert len(json.loads((idx / "index.json").read_text())["segments"]) == 1  # never updated
