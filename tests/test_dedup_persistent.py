"""The on-disk dedup index (textsieve.index): batches == one dedup, check, query_many, remove,
compact, merge, reopen, threads, two writers, kill -9, corrupt and foreign files, upgrade."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import textsieve as ts
from textsieve.index import IndexLockedError

THRESHOLD = 0.7


def corpus(n: int, seed: int = 0) -> list[str]:
    """Documents with planted near-duplicates (edits of earlier ones), exact copies and empties."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(400)]
    docs: list[str] = []
    for _ in range(n):
        r = rng.random()
        if docs and r < 0.3:
            base = rng.choice(docs).split(" ")
            for _ in range(rng.randint(0, 4)):
                base[rng.randrange(len(base))] = rng.choice(words)
            docs.append(" ".join(base))
        elif docs and r < 0.35:
            docs.append(rng.choice(docs))
        elif r < 0.37:
            docs.append("")
        else:
            docs.append(" ".join(rng.choice(words) for _ in range(rng.randint(8, 40))))
    return docs


TEXTS = corpus(1200)


def open_index(path, **kw):
    return ts.DedupIndex.open(path, threshold=THRESHOLD, **kw)


@pytest.mark.parametrize("k", [1, 3, 10])
def test_k_batches_equal_one_dedup(tmp_path, k):
    whole = ts.dedup(TEXTS, threshold=THRESHOLD)
    assert 100 < int((~whole.keep).sum()) < len(TEXTS) - 100
    bounds = np.linspace(0, len(TEXTS), k + 1).astype(int)
    with open_index(tmp_path / "idx") as idx:
        parts = [idx.add(TEXTS[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        assert len(idx) == int(whole.keep.sum())
        assert idx.n_docs == len(TEXTS)
    keep = np.concatenate([p.keep for p in parts])
    assert keep.tolist() == whole.keep.tolist()
    dup = np.concatenate([p.duplicate_of for p in parts])
    assert dup.tolist() == whole.duplicate_of.tolist()
    pairs = np.concatenate([p.pairs for p in parts])
    assert pairs.tolist() == whole.pairs.tolist()
    assert [p.offset for p in parts] == bounds[:-1].tolist()
    # and after reopening: the same index, the same answers
    with open_index(tmp_path / "idx") as idx:
        assert len(idx) == int(whole.keep.sum())
        again = idx.check(TEXTS[:200])
        # every document of the corpus is now a duplicate of what is indexed, or empty
        assert (again.keep == again.empty).all()


def test_an_add_told_its_size_decides_alike(tmp_path, monkeypatch):
    # a list tells the core how many documents come (it sizes its tables of kept documents from
    # the share kept once 16,384 are decided); an iterator does not: the same decisions
    import textsieve.index

    monkeypatch.setattr(textsieve.index, "FEED_DOCS", 4096)
    texts = corpus(34_000, seed=3)
    with open_index(tmp_path / "a") as a, open_index(tmp_path / "b") as b:
        told, untold = a.add(texts), b.add(iter(texts))
        assert len(a) == len(b) == int(told.keep.sum())
    assert 5_000 < int((~told.keep).sum()) < 30_000
    assert told.keep.tolist() == untold.keep.tolist()
    assert told.duplicate_of.tolist() == untold.duplicate_of.tolist()


def test_segments_written_directly_or_not_are_the_same(tmp_path, monkeypatch):
    # segments are written in 1 MB blocks with direct I/O where the file system takes it, and
    # through the page cache with TEXTSIEVE_DIRECT_IO=0: the same bytes, read back alike
    first = [t for t in corpus(9_000, seed=5) if t]
    texts = first * 2  # a segment of several blocks; every copy is found
    segments = []
    for direct in ("1", "0"):
        monkeypatch.setenv("TEXTSIEVE_DIRECT_IO", direct)
        path = tmp_path / f"direct-{direct}"
        with open_index(path) as idx:
            r = idx.add(texts)
            assert int(r.keep[len(first) :].sum()) == 0
            assert idx.check(texts[:50]).keep.tolist() == [False] * 50
        (seg,) = sorted(path.glob("seg-*.tsx"))
        segments.append(seg.read_bytes())
        with open_index(path, readonly=True) as idx:
            assert len(idx) == int(r.keep.sum())
            kept = [t for _, _, t in idx.documents()]
        assert kept == [t for t, k in zip(texts, r.keep) if k]
    assert len(segments[0]) > 3 << 20
    assert segments[0] == segments[1]


def test_keep_longest_batches(tmp_path):
    texts = TEXTS[:300]
    whole = ts.dedup(texts, threshold=THRESHOLD, keep="longest")
    with ts.DedupIndex.open(tmp_path / "i", threshold=THRESHOLD, keep="longest") as idx:
        assert idx.add(texts).keep.tolist() == whole.keep.tolist()
        # kept longest first, so out of number order: the segment's band tables still name
        # each kept document, which finds itself among its hits (an empty one has none)
        docs = [(i, t) for _, i, t in idx.documents()]
        assert [t for _, t in docs] == [t for t, k in zip(texts, whole.keep) if k]
        hits = idx.query_many([t for _, t in docs])
        found = [(i, 1.0) in h for (i, t), h in zip(docs, hits) if t]
        assert all(found) and len(found) > 200


def test_check_decides_without_adding(tmp_path):
    with open_index(tmp_path / "idx") as idx:
        idx.add(TEXTS[:600])
        n, gen = len(idx), idx.info()["generation"]
        checked = idx.check(TEXTS[600:])
        assert len(idx) == n and idx.info()["generation"] == gen
        added = idx.add(TEXTS[600:])
        assert checked.keep.tolist() == added.keep.tolist()
        assert checked.duplicate_of.tolist() == added.duplicate_of.tolist()


def test_query_many_equals_the_in_memory_index(tmp_path):
    mem = ts.DedupIndex(threshold=THRESHOLD)
    mem.add(TEXTS[:800], ids=[f"d{i}" for i in range(800)])
    with open_index(tmp_path / "idx") as idx:
        idx.add(TEXTS[:300], ids=[f"d{i}" for i in range(300)])
        idx.add(TEXTS[300:800], ids=[f"d{i}" for i in range(300, 800)])
        # new texts, and indexed ones (each finds itself, a copy settled without shingling)
        probes = TEXTS[800:] + TEXTS[:100] + ["", "nothing like any document at all in this corpus"]
        got = idx.query_many(probes)
        assert got == [mem.query(t) for t in probes]
        assert sum(map(len, got)) > 50
        assert sum(1 for hits in got[-102:-2] if hits and hits[0][1] == 1.0) >= 50
        assert idx.query(probes[0]) == got[0]
        with pytest.raises(TypeError, match="text"):
            idx.query(3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="single str"):
            idx.query_many("one text")


def test_ids(tmp_path):
    with open_index(tmp_path / "idx") as idx:
        idx.add(TEXTS[:5], ids=["a", 7, "c", np.int64(9), "e"])
        docs = list(idx.documents())
        kept = ts.dedup(TEXTS[:5], threshold=THRESHOLD).keep
        want = [x for x, k in zip(["a", 7, "c", 9, "e"], kept) if k]
        assert [i for _, i, _ in docs] == want
        assert [t for _, _, t in docs] == [t for t, k in zip(TEXTS[:5], kept) if k]
        with pytest.raises(ts.InvalidArgumentError, match="ids"):
            idx.add(["x", "y"], ids=["a"])
        with pytest.raises(ts.InvalidArgumentError, match="ids"):
            idx.add(["x"], ids=["a", "b"])
        with pytest.raises(TypeError, match=r"ids\[0\]"):
            idx.add(["x"], ids=[1.5])
        with pytest.raises(ts.TextsieveError, match=r"texts\[1\].*null"):
            idx.add(["x", None])  # type: ignore[list-item]
        assert len(idx) == len(want)  # failed adds added nothing
        default = idx.add(["a brand new document about something else entirely"])
        assert idx.query("a brand new document about something else entirely")[0][0] == (
            default.offset
        )


def test_remove_compact_and_replay(tmp_path):
    """After add/remove/compact, a fresh index fed the same adds and removes decides alike."""
    ops: list[tuple[str, list]] = []
    for b in range(4):
        ops.append(("add", list(range(b * 300, (b + 1) * 300))))
        ops.append(("remove", list(range(b * 300 + 1, b * 300 + 300, 7))))
    results = {}
    for name, compact in (("a", True), ("b", False)):
        decisions = []
        with open_index(tmp_path / name) as idx:
            for op, docs in ops:
                if op == "add":
                    decisions.append(idx.add([TEXTS[i] for i in docs], ids=docs).keep.tolist())
                    if compact:
                        idx.compact()
                else:
                    idx.remove(docs)
            results[name] = (decisions, idx.query_many(TEXTS), len(idx), idx.n_segments)
    assert results["a"][:3] == results["b"][:3]
    assert results["a"][3] == 1 and results["b"][3] > 1
    # removed documents are never reported, and removing frees their near-duplicates
    with open_index(tmp_path / "c") as idx:
        first = idx.add(TEXTS[:400], ids=list(range(400)))
        kept_ids = [i for i, k in enumerate(first.keep) if k]
        victim = next(i for i in kept_ids if any(d == i for d in first.duplicate_of.tolist()))
        copies = [j for j, d in enumerate(first.duplicate_of.tolist()) if d == victim]
        assert idx.remove([victim, "no-such-id"]) == 1
        assert idx.remove([victim]) == 0
        assert all(victim not in [h[0] for h in hits] for hits in idx.query_many(TEXTS[:400]))
        again = idx.check([TEXTS[victim]] + [TEXTS[j] for j in copies])
        assert again.keep[0]
        assert len(idx) == len(kept_ids) - 1
        idx.compact()
        assert len(idx) == len(kept_ids) - 1
        assert idx.info()["n_removed"] == 0


def test_merge(tmp_path):
    with open_index(tmp_path / "a") as a, open_index(tmp_path / "b") as b:
        a.add(TEXTS[:500], ids=[f"a{i}" for i in range(500)])
        b.add(TEXTS[500:], ids=[f"b{i}" for i in range(500, len(TEXTS))])
        b_docs = list(b.documents())
        res = a.merge(b)
        with open_index(tmp_path / "ref") as ref:
            ref.add(TEXTS[:500], ids=[f"a{i}" for i in range(500)])
            want = ref.add([t for _, _, t in b_docs], ids=[i for _, i, _ in b_docs])
            assert res.keep.tolist() == want.keep.tolist()
            assert len(a) == len(ref)
            assert a.query_many(TEXTS[:50]) == ref.query_many(TEXTS[:50])
    with (
        ts.DedupIndex.open(tmp_path / "other", threshold=0.9) as c,
        open_index(tmp_path / "a") as a,
    ):
        with pytest.raises(ts.InvalidArgumentError, match="threshold"):
            a.merge(c)


def test_open_rules(tmp_path):
    with open_index(tmp_path / "idx", num_perm=64, seed=3) as idx:
        idx.add(TEXTS[:10])
        assert idx.settings["num_perm"] == 64 and idx.settings["seed"] == 3
    with ts.DedupIndex.open(tmp_path / "idx") as idx:  # settings come from the index
        assert idx.settings["num_perm"] == 64 and len(idx) > 0
    with pytest.raises(ts.InvalidArgumentError, match="num_perm.*64"):
        ts.DedupIndex.open(tmp_path / "idx", num_perm=128)
    with pytest.raises(ts.TextsieveError, match="not a dedup index"):
        ts.DedupIndex.open(tmp_path / "nowhere", create=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "data.txt").write_text("x")
    with pytest.raises(ts.TextsieveError, match="not empty"):
        ts.DedupIndex.open(tmp_path / "full")
    with pytest.raises(ts.InvalidArgumentError, match="cluster"):
        ts.DedupIndex.open(tmp_path / "comp", cluster="components")
    with pytest.raises(ts.TextsieveError, match="threshold"):
        ts.DedupIndex.open(tmp_path / "bad", threshold=1.5)
    idx = ts.DedupIndex.open(tmp_path / "idx")
    idx.close()
    with pytest.raises(ts.TextsieveError, match="closed"):
        idx.add(["x"])
    with pytest.raises(ts.TextsieveError, match="closed"):
        idx.query_many(["x"])
    with ts.DedupIndex.open(tmp_path / "idx", readonly=True) as ro:
        with pytest.raises(ts.TextsieveError, match="read-only"):
            ro.add(["x"])


def test_threads_share_one_index(tmp_path):
    """Adds serialize, queries run beside them; ids never drift from their texts."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    errors: list[BaseException] = []
    idx = open_index(tmp_path / "idx")
    texts = TEXTS[:800]

    def writer(w: int) -> None:
        try:
            for a in range(w * 20, 800, 160):
                part = list(range(a, a + 20))
                idx.add([texts[i] for i in part], ids=part)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for i in range(30):
                for hits in idx.query_many(texts[i * 10 : i * 10 + 10]):
                    for doc_id, sim in hits:
                        assert sim >= THRESHOLD and 0 <= doc_id < 800
                len(idx)
                idx.check(texts[:20])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        threads += [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors
    assert idx.n_docs == 800
    docs = list(idx.documents())
    assert len(docs) == len(idx) > 100
    for _, doc_id, text in docs:
        assert texts[doc_id] == text  # the id is the text's position: no drift
    # decisions are those of some serial order of the batches: re-adding finds every document
    assert (idx.check(texts).keep == idx.check(texts).empty).all()
    idx.close()


LOCK_SCRIPT = """
import sys, textsieve as ts
from textsieve.index import IndexLockedError
try:
    ts.DedupIndex.open(sys.argv[1])
except IndexLockedError as exc:
    print("LOCKED", exc)
    sys.exit(3)
with ts.DedupIndex.open(sys.argv[1], readonly=True) as ro:
    print("READ", len(ro))
"""


def test_two_writers(tmp_path):
    with open_index(tmp_path / "idx") as idx:
        idx.add(TEXTS[:50])
        p = subprocess.run(
            [sys.executable, "-c", LOCK_SCRIPT, str(tmp_path / "idx")],
            capture_output=True,
            text=True,
        )
        assert p.returncode == 3, p.stderr
        assert "LOCKED" in p.stdout and "another process" in p.stdout
        assert str(os.getpid()) in p.stdout
        with pytest.raises(IndexLockedError):  # also within one process
            ts.DedupIndex.open(tmp_path / "idx")
    # released: a second writer may now open it, and a reader beside it
    with ts.DedupIndex.open(tmp_path / "idx") as idx:
        with ts.DedupIndex.open(tmp_path / "idx", readonly=True) as ro:
            assert len(ro) == len(idx)
            idx.add(TEXTS[50:100])
            assert len(ro) < len(idx)
            ro.refresh()
            assert len(ro) == len(idx)


KILL_SCRIPT = """
import sys, textsieve as ts
texts = [l.rstrip("\\n") for l in open(sys.argv[2], encoding="utf-8")]
with ts.DedupIndex.open(sys.argv[1], threshold=THRESHOLD) as idx:
    i = 0
    while True:
        part = texts[(i * 250) % len(texts):(i * 250) % len(texts) + 250]
        print("ADDING", len(part), flush=True)
        idx.add(part)
        print("COMMITTED", i, idx.n_docs, len(idx), flush=True)
        if i % 3 == 2:
            idx.compact()
            print("COMPACTED", i, flush=True)
        i += 1
""".replace("THRESHOLD", repr(THRESHOLD))


@pytest.mark.parametrize("delay", [0.4, 0.9, 1.7])
def test_kill_9_leaves_the_last_commit(tmp_path, delay):
    src = tmp_path / "texts.txt"
    src.write_text("\n".join(t.replace("\n", " ") for t in TEXTS) + "\n", encoding="utf-8")
    d = tmp_path / "idx"
    p = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(d), str(src)],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    out, _ = p.communicate()
    # (whole lines only: the kill may cut the last one short)
    lines = out.split("\n")[:-1]
    committed = [line.split() for line in lines if line.startswith("COMMITTED")]
    adding = [int(line.split()[1]) for line in lines if line.startswith("ADDING")]
    with open_index(d) as idx:
        # the state is that of the last add reported, or of one that committed unreported
        # (the last batch of the file is shorter than 250 texts, so its size is printed)
        states = [(0, 0)] + [(int(c[2]), int(c[3])) for c in committed]
        pending = adding[len(committed)] if len(adding) > len(committed) else 0
        assert (idx.n_docs, len(idx)) in states or (
            idx.n_docs == states[-1][0] + pending and len(idx) >= states[-1][1]
        )
        # nothing of an unfinished change is left, and the index works
        names = {p.name for p in d.iterdir()}
        manifest = json.loads((d / "index.json").read_text())
        live = {e["file"] for e in manifest["segments"]}
        assert {n for n in names if n.startswith("seg-")} == live
        assert not [n for n in names if n.endswith(".tmp")]
        n = idx.n_docs
        idx.add(TEXTS[:10])
        assert idx.n_docs == n + 10


def _segment(d):
    return sorted(p for p in d.iterdir() if p.name.startswith("seg-"))[0]


def test_corrupt_segment_refused(tmp_path):
    d = tmp_path / "idx"
    with open_index(d) as idx:
        idx.add(TEXTS[:300])
    seg = _segment(d)
    good = seg.read_bytes()
    bad = bytearray(good)
    bad[len(bad) - 200] ^= 0xFF
    seg.write_bytes(bytes(bad))
    with pytest.raises(ts.CorruptDataError, match=f"{seg.name}.*checksum"):
        open_index(d, verify=True)
    bad[20] ^= 0xFF  # in the header: seen without reading the whole file
    seg.write_bytes(bytes(bad))
    with pytest.raises(ts.CorruptDataError, match=seg.name):
        open_index(d)
    seg.write_bytes(good[: len(good) // 2])
    with pytest.raises(ts.CorruptDataError, match=seg.name):
        open_index(d)
    seg.write_bytes(b"PK\x03\x04 not a segment at all" * 10)
    with pytest.raises(ts.CorruptDataError, match=f"{seg.name}.*magic"):
        open_index(d)
    seg.unlink()
    with pytest.raises(FileNotFoundError, match=seg.name):
        open_index(d)
    seg.write_bytes(good)
    with open_index(d) as idx:
        assert len(idx) > 0


def test_foreign_segment_and_manifest_refused(tmp_path):
    with open_index(tmp_path / "a") as a, ts.DedupIndex.open(tmp_path / "b", threshold=0.9) as b:
        a.add(TEXTS[:100])
        b.add(TEXTS[:100])
    seg_a, seg_b = _segment(tmp_path / "a"), _segment(tmp_path / "b")
    seg_a.write_bytes(seg_b.read_bytes())
    with pytest.raises(ts.CorruptDataError, match=f"{seg_a.name}.*(foreign|other settings)"):
        open_index(tmp_path / "a")
    m = tmp_path / "b" / "index.json"
    data = json.loads(m.read_text())
    data["n_docs"] += 1
    m.write_text(json.dumps(data))
    with pytest.raises(ts.CorruptDataError, match="index.json.*checksum"):
        ts.DedupIndex.open(tmp_path / "b")
    m.write_text("{oops")
    with pytest.raises(ts.CorruptDataError, match="index.json"):
        ts.DedupIndex.open(tmp_path / "b")


def test_upgrade_of_a_saved_index(tmp_path):
    mem = ts.DedupIndex(threshold=THRESHOLD, num_perm=64, seed=5)
    mem.add(TEXTS[:400], ids=[f"d{i}" for i in range(400)])
    mem.save(tmp_path / "old")
    with pytest.raises(ts.TextsieveError, match="upgrade"):
        ts.DedupIndex.open(tmp_path / "old", readonly=True)
    with ts.DedupIndex.open(tmp_path / "old") as idx:
        assert idx.settings == mem.settings
        assert idx.n_docs == len(mem) == 400
        assert len(idx) == int(mem._core.kept().sum())
        probes = TEXTS[400:600]
        assert idx.query_many(probes) == [mem.query(t) for t in probes]
        assert idx.add(probes).keep.tolist() == mem.add(probes).keep.tolist()
    assert ts.DedupIndex.load(tmp_path / "old").ids[:3] == ["d0", "d1", "d2"]  # old files kept


def test_auto_compact_and_info(tmp_path):
    seen = []
    with open_index(tmp_path / "idx", auto_compact=2) as idx:
        for a in range(0, 1200, 200):
            idx.add(TEXTS[a : a + 200], progress=lambda n, b: seen.append((n, b)))
            assert idx.n_segments <= 2
        info = idx.info()
        assert info["n_docs"] == len(idx) == int(ts.dedup(TEXTS, threshold=THRESHOLD).keep.sum())
        assert info["n_numbered"] == len(TEXTS) and info["bytes_per_doc"] > 0
        assert info["settings"] == idx.settings
        assert "n_docs=" in repr(idx)
    assert seen and seen[-1][0] == 200 and seen[-1][1] > 0
    assert "closed" in repr(idx)
