"""DedupIndex: shard by shard == one shot, query, save/load, corrupt and foreign files refused."""

import json

import pytest
import textsieve as ts

TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "an unrelated sentence about database indexes",
    "the quick brown fox jumps over the lazy dog!",
    "",
    "an unrelated sentence about database indexes.",
    "something else entirely, nothing alike at all",
    "the quick brown fox jumps over the lazy dogs!",
]


def test_shards_equal_one_shot():
    whole = ts.dedup(TEXTS, threshold=0.7)
    idx = ts.DedupIndex(threshold=0.7)
    a = idx.add(TEXTS[:3])
    b = idx.add(TEXTS[3:])
    assert b.offset == 3 and len(idx) == len(TEXTS)
    assert a.keep.tolist() + b.keep.tolist() == whole.keep.tolist()
    assert a.cluster.tolist() + b.cluster.tolist() == whole.cluster.tolist()
    assert a.duplicate_of.tolist() + b.duplicate_of.tolist() == whole.duplicate_of.tolist()
    assert a.pairs.tolist() + b.pairs.tolist() == whole.pairs.tolist()
    assert b.empty.tolist() == [True, False, False, False]


def test_query_and_ids():
    idx = ts.DedupIndex(threshold=0.7)
    idx.add(TEXTS[:3], ids=["fox", "db", "fox2"])
    hits = idx.query("the quick brown fox jumps over the lazy dog")
    assert [h[0] for h in hits] == ["fox"]  # fox2 was removed: only kept documents are indexed
    assert hits[0][1] == 1.0
    assert [h[0] for h in idx.query(TEXTS[2])] == ["fox"]
    assert idx.query("") == []
    assert idx.query("nothing like it") == []
    assert idx.ids == ["fox", "db", "fox2"]
    with pytest.raises(ts.TextsieveError, match="ids"):
        idx.add(["x"], ids=["a", "b"])
    with pytest.raises(TypeError, match=r"ids\[0\]"):
        idx.add(["x"], ids=[1.5])
    with pytest.raises(TypeError, match="text"):
        idx.query(3)  # type: ignore[arg-type]


def test_save_load_round_trip(tmp_path):
    idx = ts.DedupIndex(threshold=0.7, num_perm=64, seed=7, k=4)
    idx.add(TEXTS[:4], ids=[f"d{i}" for i in range(4)])
    idx.save(tmp_path / "idx")
    back = ts.DedupIndex.load(tmp_path / "idx")
    assert len(back) == 4 and back.ids == idx.ids
    assert back.settings == idx.settings
    assert back.query(TEXTS[0]) == idx.query(TEXTS[0])
    r1, r2 = idx.add(TEXTS[4:]), back.add(TEXTS[4:])
    assert r1.keep.tolist() == r2.keep.tolist()
    assert r1.pairs.tolist() == r2.pairs.tolist()
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["format"] == "textsieve-dedup-index" and manifest["version"] == 1


@pytest.fixture
def saved(tmp_path):
    idx = ts.DedupIndex(threshold=0.7)
    idx.add(TEXTS)
    d = tmp_path / "idx"
    idx.save(d)
    return d


def test_corrupt_index_file_refused(saved):
    p = saved / "index.bin"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(ts.TextsieveError, match=r"index\.bin.*checksum"):
        ts.DedupIndex.load(saved)


def test_corrupt_index_with_matching_manifest_refused(saved):
    # a file whose manifest checksum was updated still fails the core's own checks
    import hashlib

    p = saved / "index.bin"
    data = bytearray(p.read_bytes())
    data[30] ^= 0xFF
    p.write_bytes(bytes(data))
    m = json.loads((saved / "manifest.json").read_text())
    m["files"]["index.bin"]["sha256"] = hashlib.sha256(bytes(data)).hexdigest()
    (saved / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ts.TextsieveError, match=r"index\.bin.*(corrupt|checksum)"):
        ts.DedupIndex.load(saved)


def test_foreign_and_missing_files_refused(saved, tmp_path):
    with pytest.raises(ts.TextsieveError, match="manifest.json.*not found"):
        ts.DedupIndex.load(tmp_path / "nowhere")
    m = json.loads((saved / "manifest.json").read_text())
    (saved / "manifest.json").write_text(json.dumps({**m, "format": "something-else"}))
    with pytest.raises(ts.TextsieveError, match="manifest.json.*not a textsieve"):
        ts.DedupIndex.load(saved)
    (saved / "manifest.json").write_text(json.dumps({**m, "version": 99}))
    with pytest.raises(ts.TextsieveError, match="version 99"):
        ts.DedupIndex.load(saved)
    (saved / "manifest.json").write_text("{not json")
    with pytest.raises(ts.TextsieveError, match="manifest.json"):
        ts.DedupIndex.load(saved)
    (saved / "manifest.json").write_text(json.dumps(m))
    (saved / "ids.json").write_text("[1, 2]")
    with pytest.raises(ts.TextsieveError, match=r"ids\.json.*checksum"):
        ts.DedupIndex.load(saved)
    (saved / "ids.json").unlink()
    with pytest.raises(ts.TextsieveError, match=r"ids\.json.*missing"):
        ts.DedupIndex.load(saved)


def test_foreign_bytes_refused_by_core():
    from textsieve import _core

    with pytest.raises(ts.TextsieveError, match="magic"):
        _core.IndexCore.from_bytes(b"PK\x03\x04 this is a zip file, not an index")
    with pytest.raises(ts.TextsieveError):
        _core.IndexCore.from_bytes(b"")


def test_pickle_round_trip():
    import pickle

    idx = ts.DedupIndex(threshold=0.7)
    idx.add(TEXTS[:4], ids=["a", "b", "c", "d"])
    back = pickle.loads(pickle.dumps(idx))
    assert back.ids == idx.ids and back.settings == idx.settings
    assert back.query(TEXTS[0]) == idx.query(TEXTS[0])
    assert back.add(TEXTS[4:]).keep.tolist() == idx.add(TEXTS[4:]).keep.tolist()
    state = idx.__getstate__()
    with pytest.raises(ts.TextsieveError, match="version"):
        ts.DedupIndex.__new__(ts.DedupIndex).__setstate__({**state, "version": 2})
    with pytest.raises(ts.TextsieveError):
        ts.DedupIndex.__new__(ts.DedupIndex).__setstate__({**state, "index": b"junk"})
