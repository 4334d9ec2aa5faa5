"""The on-disk dedup index's segment filters (segment format version 2 on) and shingle counts
(version 4 on): a damaged filter is refused naming the file, and segments of version 1 (no
filter) or 3 (no shingle counts) are still read, decide alike and are rewritten whole by
``compact``."""

from __future__ import annotations

import json
import struct
import zlib

import pytest
import textsieve as ts
from textsieve.index import _canonical, _sha256

from tests.test_dedup_persistent import TEXTS, open_index

HEAD = 48  # magic, version, bands, docs, keyed docs, directory bits, sections, fingerprint


def _segments(d):
    return sorted(p for p in d.iterdir() if p.name.startswith("seg-"))


def _sections(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each section of a segment file."""
    (ns,) = struct.unpack_from("<I", data, 36)
    return [struct.unpack_from("<QQ", data, HEAD + 24 * s) for s in range(ns)]


def _downgrade(seg, version: int) -> None:
    """Rewrites a segment of this version (5) as version 1 wrote it (no filter and no shingle
    counts: the last two sections, last in the file too) or as version 3 did (no shingle
    counts). Its texts stay as stored (LZ4 blocks after their sketches), which every version's
    reader reads (the zstd frames of versions 1 and 2 are read back in a Rust test)."""
    data = seg.read_bytes()
    was, _, _, _, _, ns = struct.unpack_from("<IIQQII", data, 8)
    assert was == 5
    keep = ns - (2 if version == 1 else 1)
    cut, _ = _sections(data)[keep]
    head = bytearray(data[: HEAD + 24 * keep])
    struct.pack_into("<I", head, 8, version)
    struct.pack_into("<I", head, 36, keep)
    head += struct.pack("<II", zlib.crc32(head), 0)
    seg.write_bytes(bytes(head) + data[len(head) : cut])


def _fix_manifest(d) -> None:
    """Records the segments' new sizes and header checksums in the manifest."""
    mpath = d / "index.json"
    m = json.loads(mpath.read_text())
    for e in m["segments"]:
        data = (d / e["file"]).read_bytes()
        (ns,) = struct.unpack_from("<I", data, 36)
        e["bytes"] = len(data)
        (e["header_crc"],) = struct.unpack_from("<I", data, HEAD + 24 * ns)
    m["checksum"] = _sha256(_canonical(m))
    mpath.write_text(json.dumps(m))


def test_a_damaged_filter_is_refused_naming_the_file(tmp_path):
    d = tmp_path / "idx"
    with open_index(d) as idx:
        idx.add(TEXTS[:400])
    (seg,) = _segments(d)
    data = seg.read_bytes()
    sections = _sections(data)
    at, length = sections[-2]  # the filter, before the shingle counts
    assert at % 64 == 0 and length % 64 == 0 and length > 0
    assert at + length == sections[-1][0]
    bad = bytearray(data)
    bad[at + length // 2] ^= 0x10
    seg.write_bytes(bytes(bad))
    with pytest.raises(
        ts.CorruptDataError, match=f"{seg.name}.*checksum.*section {len(sections) - 2}"
    ):
        open_index(d, verify=True)
    seg.write_bytes(data[: at + length // 2])  # cut inside the filter
    with pytest.raises(ts.CorruptDataError, match=seg.name):
        open_index(d)


@pytest.mark.parametrize("version", [1, 3])
def test_old_segments_still_work(tmp_path, version):
    new, old = tmp_path / "new", tmp_path / "old"
    for d in (new, old):
        with open_index(d) as idx:
            idx.add(TEXTS[:300])
            idx.add(TEXTS[300:600])
            idx.remove([5, 310])
    for seg in _segments(old):
        _downgrade(seg, version)
    _fix_manifest(old)
    probes = TEXTS[550:900]
    with open_index(new) as a, open_index(old, verify=True) as b:
        assert len(a) == len(b) > 0
        assert a.query_many(probes) == b.query_many(probes)
        assert a.check(probes).keep.tolist() == b.check(probes).keep.tolist()
        ra, rb = a.add(TEXTS[600:]), b.add(TEXTS[600:])
        assert ra.keep.tolist() == rb.keep.tolist()
        assert ra.duplicate_of.tolist() == rb.duplicate_of.tolist()
        assert any(not k for k in rb.keep)
        b.compact()  # rewrites the old segments whole (the counts they lack unknown)
        assert a.query_many(probes) == b.query_many(probes)
    for seg in _segments(old):
        assert struct.unpack_from("<I", seg.read_bytes(), 8) == (5,)
    with open_index(old, verify=True) as b:
        assert len(b) == len(a)
