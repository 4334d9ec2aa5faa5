"""The per-task stage functions. Each is a Dask task: it reads and writes files in the work
directory, and returns a small summary (saved as the task's marker). They take a :class:`Job`,
what every task knows about the run, pickled to the workers; the components stage is in
:mod:`textsieve.dask.components`."""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from textsieve import _core
from textsieve.dask.kernels import (
    _bucket_pairs,
    _Classes,
    _estimate,
    _groups,
    _hasher,
    _pack,
    _part_of,
    _unpack,
)
from textsieve.dask.plan import _abs, _count_lines, _Partition
from textsieve.dask.workdir import (
    WorkDir,
    _load_all,
    _load_json,
    _load_npz,
    _save_json,
    _save_npz,
    _work_file,
    _write_rows,
)
from textsieve.io import Record, record_json_line

#: The stages, in order (``stop_after`` takes one of them).
STAGES = (
    "lines",
    "sign",
    "copies",
    "scatter",
    "bucket",
    "edges",
    "fetch",
    "verify",
    "pairs",
    "components",
    "fetch2",
    "write",
)

_EMPTY_SIG = np.uint32(0xFFFFFFFF)
_SHUFFLE_DTYPE = np.dtype([("band", "<u4"), ("key", "<u8"), ("gid", "<u4")])
#: a document's content digest (blake2b, 16 bytes, as two words), its partition and its number
#: there (the sign stage does not know the global numbers yet)
_DIGEST_DTYPE = np.dtype([("d0", "<u8"), ("d1", "<u8"), ("part", "<u4"), ("local", "<u4")])


@dataclass(frozen=True)
class CCPlan:
    """The distributed components' plan: ``shards`` edge shards for ``edges`` verified pairs,
    and (once they converged) the number of large-star/small-star ``rounds``."""

    shards: int
    edges: int
    rounds: int = 0


@dataclass(frozen=True)
class Job:
    """What every task knows about the run: pickled to the workers with each stage's tasks.
    The driver makes a new one (:func:`dataclasses.replace`) as it learns more: ``line_base``
    after ``lines``, ``offsets`` and ``counts`` after ``sign``, ``cc`` in ``components``."""

    #: the work directory (``OUTDIR/_work``)
    work: WorkDir
    #: the driver's working directory (relative input paths are to it)
    cwd: str
    #: the partitions (rows of :func:`~textsieve.dask.plan._plan_partitions`, from ``plan.json``)
    parts: tuple[dict[str, Any], ...]
    #: the :class:`~textsieve.io.CorpusReader` options
    reader: dict[str, Any]
    #: the dedup settings (:func:`textsieve.dedup._settings`, bands and rows resolved)
    settings: dict[str, Any]
    #: threads for the Rust kernels in each task
    num_threads: int
    #: bucket (and digest) shards
    n_shards: int
    #: the components' limit of the in-memory path, and pairs per shard of the distributed one
    components_max_edges: int
    components_shard_edges: int
    #: per partition: lines before it in its file (split files), first document number, documents
    line_base: tuple[int, ...] = ()
    offsets: tuple[int, ...] = ()
    counts: tuple[int, ...] = ()
    #: the distributed components' plan (set by the components stage above the size limit)
    cc: CCPlan | None = None

    def partition(self, p: int) -> _Partition:
        """Partition ``p``'s records, as the local engine's reader yields them."""
        return _Partition(self.parts[p], self.cwd, self.reader, self.line_base[p])


def _stage_lines(job: Job, p: int) -> dict[str, Any]:
    part = job.parts[p]
    return {"lines": _count_lines(_abs(job.cwd, part["path"]), part["start"], part["end"])}


def _stage_sign(job: Job, p: int) -> dict[str, Any]:
    s, work = job.settings, job.work
    t0 = time.perf_counter()
    part = job.partition(p)
    records = part.records()
    texts = [r.text for r in records]
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    sigs = _hasher(s).signatures(texts, job.num_threads, "strict")
    sigs32 = np.ascontiguousarray(sigs, dtype=np.uint32).reshape(len(texts), s["num_perm"])
    empty = (sigs32 == _EMPTY_SIG).all(axis=1) if len(texts) else np.zeros(0, bool)
    keys = (
        _core.band_keys(sigs32, s["bands"], s["rows"])
        if len(texts)
        else np.zeros((0, s["bands"]), np.uint64)
    )
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    arrays = {"keys": keys, "empty": empty, "lengths": lengths}
    if s["verify"] == "minhash":
        arrays["sigs"] = sigs32
    _save_npz(work.part("sign", p), **arrays)
    encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
    n_bytes = sum(map(len, encoded))
    # exact copies: the digest of the very text that was shingled (equal texts, equal shingle
    # sets, equal band keys), sent to a shard by digest for the `copies` stage
    docs = np.flatnonzero(~empty)
    digest = np.frombuffer(
        b"".join(hashlib.blake2b(encoded[i], digest_size=16).digest() for i in docs.tolist()),
        dtype="<u8",
    ).reshape(-1, 2)
    rows = np.empty(len(docs), _DIGEST_DTYPE)
    rows["d0"], rows["d1"] = digest[:, 0], digest[:, 1]
    rows["part"], rows["local"] = p, docs
    work.save_routed(("digests",), p, rows, rows["d0"] % np.uint64(job.n_shards), job.n_shards)
    work.save_ids(p, [r.id for r in records])
    return {
        "n": len(texts),
        "n_empty": int(empty.sum()),
        "n_bytes": n_bytes,
        "reader": part.info(),
        "seconds": {"read": t_read, "signatures": time.perf_counter() - t0},
    }


def _stage_copies(job: Job, sh: int) -> dict[str, Any]:
    """Exact-copy classes of one digest shard: documents with equal digests, the smallest one
    their rep. Writes the class lists (rep, member) to the rep's partition (``classes/``) and
    each copy's rep to the copy's partition (``copyof/``); classes of one are left out."""
    work, offsets = job.work, np.asarray(job.offsets)
    rows = work.load_routed(("digests",), len(offsets), sh, _DIGEST_DTYPE)
    gid = offsets[rows["part"].astype(np.int64)] + rows["local"].astype(np.int64)
    order = np.lexsort((gid, rows["d1"], rows["d0"]))
    gid = gid[order]
    starts, sizes = _groups(rows["d0"][order], rows["d1"][order])
    rep = np.repeat(gid[starts], sizes)
    multi = np.repeat(sizes, sizes) > 1
    rep, member = rep[multi], gid[multi]
    copy = member != rep
    for name, by, arrays in (
        ("classes", rep, {"rep": rep, "member": member}),
        ("copyof", member[copy], {"gid": member[copy], "rep": rep[copy]}),
    ):
        owner = _part_of(offsets, by)
        for a in np.unique(owner).tolist():
            sel = owner == a
            _save_npz(
                work.shard(name, a, sh),
                **{k: v[sel] for k, v in arrays.items()},
            )
    big = sizes[sizes > 1]
    return {
        "classes": len(big),
        "copies": int(big.sum() - len(big)),
        "largest_class": int(big.max()) if len(big) else 0,
    }


def _stage_scatter(job: Job, p: int) -> dict[str, Any]:
    """Partition ``p``'s ``(band, key, doc)`` rows to bucket shards, for its non-empty documents
    that are no exact copy of a smaller one (a copy is in every bucket its rep is in)."""
    work, n_shards = job.work, job.n_shards
    first = int(job.offsets[p])
    z = _load_npz(work.part("sign", p))
    keys, empty = z["keys"], z["empty"]
    docs = np.flatnonzero(~empty)
    (copies,) = _load_all(work.shards("copyof", p), "gid")
    docs = docs[~np.isin(docs, copies - first)]
    n_bands = keys.shape[1]
    key = keys[docs].reshape(-1)
    band = np.tile(np.arange(n_bands, dtype=np.uint32), len(docs))
    rows = np.empty(len(key), _SHUFFLE_DTYPE)
    rows["band"], rows["key"] = band, key
    rows["gid"] = np.repeat(docs + first, n_bands)
    shard = ((key + band.astype(np.uint64)) % np.uint64(n_shards)).astype(np.int64)
    work.save_routed(("shuffle",), p, rows, shard, job.n_shards)
    return {"entries": len(key), "copies_left_out": len(copies)}


def _stage_bucket(job: Job, sh: int) -> dict[str, Any]:
    work, offsets = job.work, np.asarray(job.offsets)
    rows = work.load_routed(("shuffle",), len(offsets), sh, _SHUFFLE_DTYPE)
    if not len(rows):
        return {"pairs": 0, "entries": 0, "largest_bucket": 0}
    band, key, gid = rows["band"], rows["key"], rows["gid"]
    pairs = _bucket_pairs(band, key, gid.astype(np.int64))
    lo, _ = _unpack(pairs)
    owner = _part_of(offsets, lo)
    cuts = np.searchsorted(owner, np.arange(len(offsets) + 1))  # pairs sorted by lo
    for a in range(len(offsets)):
        x, y = cuts[a], cuts[a + 1]
        if x < y:
            _save_npz(work.shard("cand", a, sh), pairs=pairs[x:y])
    # the largest bucket, for the record (quadratic buckets are what costs)
    order = np.lexsort((key, band))
    _, sizes = _groups(band[order], key[order])
    return {"pairs": len(pairs), "entries": len(gid), "largest_bucket": int(sizes.max())}


def _request(work: WorkDir, rnd: str, a: int, offsets: np.ndarray, gids: np.ndarray) -> list[int]:
    """Ask the partitions holding ``gids`` (other than ``a``) for their texts; returns which."""
    need = np.unique(gids)
    owner = _part_of(offsets, need)
    need, owner = need[owner != a], owner[owner != a]
    asked = []
    for b in np.unique(owner):
        _save_npz(work.letter((rnd, "req"), b, a), gids=need[owner == b])
        asked.append(int(b))
    return asked


def _stage_edges(job: Job, a: int) -> dict[str, Any]:
    work, offsets = job.work, np.asarray(job.offsets)
    files = work.shards("cand", a)
    pairs = (
        np.unique(np.concatenate([_load_npz(f)["pairs"] for f in files]))
        if files
        else np.empty(0, np.uint64)
    )
    _save_npz(work.part("edges", a), pairs=pairs)
    _, hi = _unpack(pairs)
    asked = _request(work, "r1", a, offsets, hi)
    return {"candidates": len(pairs), "asked": asked}


def _stage_fetch(job: Job, b: int, rnd: str) -> dict[str, Any]:
    """Answer the requests made to partition ``b``: ids and texts (signatures for
    ``verify="minhash"``) of the asked documents, one file per asking partition."""
    work, offsets = job.work, np.asarray(job.offsets)
    reqs = work.letters((rnd, "req"), b)
    if not reqs:
        return {"sent": 0}
    first = int(offsets[b])
    recs = job.partition(b).records()
    sigs = None
    if job.settings["verify"] == "minhash":
        sigs = _load_npz(work.part("sign", b))["sigs"]
    # round 1 also sends the exact-copy classes of the asked documents (reps of this partition)
    crep, cmember = (
        _load_all(work.shards("classes", b), "rep", "member")
        if rnd == "r1"
        else (np.empty(0, np.int64),) * 2
    )
    sent = 0
    for f in reqs:
        a = int(os.path.basename(f)[5:10])
        gids = _load_npz(f)["gids"]
        local = gids - first
        payload = {
            "gid": gids.tolist(),
            "id": [recs[i].id for i in local],
            "text": [recs[i].text for i in local],
        }
        _save_json(work.letter((rnd, "got"), a, b, "json"), payload)
        if sigs is not None:
            _save_npz(work.letter((rnd, "got"), a, b), sigs=sigs[local])
        asked = np.isin(crep, gids)
        if asked.any():
            _save_npz(
                work.letter((rnd, "got"), a, b, "classes.npz"),
                rep=crep[asked],
                member=cmember[asked],
            )
        sent += len(gids)
    return {"sent": sent}


class _Docs:
    """Ids, texts and (lazily) shingle sets or signatures of the documents a partition needs:
    its own plus what it fetched in round ``rnd``."""

    def __init__(self, job: Job, a: int, rnd: str, recs: list[Record]) -> None:
        self.s = s = job.settings
        self.first = int(job.offsets[a])
        self.recs = recs
        self.other_id: dict[int, str] = {}
        self.other_text: dict[int, str] = {}
        self.other_sig: dict[int, np.ndarray] = {}
        self.own_sigs = None
        work = job.work
        if s["verify"] == "minhash":
            self.own_sigs = _load_npz(work.part("sign", a))["sigs"]
        for f in work.letters((rnd, "got"), a, "json"):
            got = _load_json(f)
            self.other_id.update(zip(got["gid"], got["id"], strict=True))
            self.other_text.update(zip(got["gid"], got["text"], strict=True))
            if self.own_sigs is not None:
                sigs = _load_npz(f[: -len(".json")] + ".npz")["sigs"]
                self.other_sig.update(zip(got["gid"], sigs, strict=True))
        self._sets: dict[int, np.ndarray] = {}

    def id(self, g: int) -> str:
        i = g - self.first
        return self.recs[i].id if 0 <= i < len(self.recs) else self.other_id[g]

    def text(self, g: int) -> str:
        i = g - self.first
        return self.recs[i].text if 0 <= i < len(self.recs) else self.other_text[g]

    def _sig(self, g: int) -> np.ndarray:
        i = g - self.first
        return self.own_sigs[i] if 0 <= i < len(self.recs) else self.other_sig[g]

    def similarities(self, ii: np.ndarray, jj: np.ndarray, num_threads: int | None) -> np.ndarray:
        """Similarity of each pair ``(ii[n], jj[n])``: the signature estimate, or the exact
        Jaccard of the shingle sets (each document's set built once, in the Rust core)."""
        if self.own_sigs is not None:
            return np.array(
                [_estimate(self._sig(g), self._sig(h)) for g, h in zip(ii.tolist(), jj.tolist())],
                np.float64,
            )
        docs = np.unique(np.concatenate([ii, jj]))
        s = self.s
        return _core.jaccard_pairs(
            [self.text(g) for g in docs.tolist()],
            np.searchsorted(docs, ii).astype(np.uint32),
            np.searchsorted(docs, jj).astype(np.uint32),
            s["k"],
            s["shingle"],
            s["normalize"],
            num_threads,
        )


def _stage_verify(job: Job, a: int) -> dict[str, Any]:
    """Verify partition ``a``'s candidate pairs (of reps), and send each pair at or above the
    threshold, expanded to the members of both classes, to the partition of its smaller document;
    so are the pairs within the classes whose rep is in ``a`` (similarity 1.0). Without
    ``all_pairs`` only the pairs with a rep are sent (:meth:`_Classes.cross_star`)."""
    work, t = job.work, job.settings["threshold"]
    offsets = np.asarray(job.offsets)
    first, n = int(offsets[a]), job.counts[a]
    pairs = _load_npz(work.part("edges", a))["pairs"]
    ii, jj = _unpack(pairs)
    docs = _Docs(job, a, "r1", job.partition(a).records() if len(pairs) else [])
    sim = docs.similarities(ii, jj, job.num_threads) if len(pairs) else np.empty(0)
    ok = sim >= t
    classes = _Classes(
        *(
            np.concatenate(both)
            for both in zip(
                _load_all(work.shards("classes", a), "rep", "member"),
                _load_all(work.letters(("r1", "got"), a, "classes.npz"), "rep", "member"),
                strict=True,
            )
        )
    )
    if job.settings.get("all_pairs"):  # every pair is listed: expand the classes fully
        lo, hi, x = classes.cross(ii[ok], jj[ok], sim[ok])
        wlo, whi = classes.within(first, first + n)
    else:  # only pairs with a rep decide anything: linear in the copies
        lo, hi, x = classes.cross_star(ii[ok], jj[ok], sim[ok])
        wlo, whi = classes.within_star(first, first + n)
    lo, hi = np.concatenate([lo, wlo]), np.concatenate([hi, whi])
    x = np.concatenate([x, np.ones(len(wlo))])
    owner = _part_of(offsets, lo)
    for c in np.unique(owner).tolist():
        sel = owner == c
        _save_npz(
            work.letter(("xpairs",), c, a),
            i=lo[sel],
            j=hi[sel],
            jaccard=x[sel],
        )
    # the local engine's candidates: every pair of documents sharing a bucket
    sizes = classes.sizes[(classes.reps >= first) & (classes.reps < first + n)]
    in_buckets = int((classes.size(ii) * classes.size(jj)).sum() + (sizes * (sizes - 1) // 2).sum())
    return {"pairs": len(x), "candidates": len(pairs), "doc_pairs_in_buckets": in_buckets}


def _stage_pairs(job: Job, c: int) -> dict[str, Any]:
    """Partition ``c``'s verified pairs (those whose smaller document is in ``c``), sorted, with
    the ids of both documents: ``pairs/part-N.jsonl``, and ``pairs/part-N.npz`` (i, j, jaccard)
    for the components stage."""
    work, offsets = job.work, np.asarray(job.offsets)
    i, j, x = _load_all(work.letters(("xpairs",), c), "i", "j", "jaccard")
    x = x.astype(np.float64)
    order = np.argsort(_pack(i, j), kind="stable")
    i, j, x = i[order], j[order], x[order]
    _save_npz(work.part("pairs", c), i=i, j=j, jaccard=x)
    ids = work.ids_of(offsets, np.concatenate([i, j]))
    id_a, id_b = ids[: len(i)], ids[len(i) :]
    _write_rows(
        work.part("pairs", c, "jsonl"),
        (
            {"id_a": p, "id_b": q, "jaccard": v}
            for p, q, v in zip(id_a, id_b, x.tolist(), strict=True)
        ),
    )
    return {"pairs": len(x)}


def _stage_write(job: Job, a: int) -> dict[str, Any]:
    work, rs = job.work, job.reader
    recs = job.partition(a).records()
    comp = _load_npz(work.part("comp", a))
    first = int(job.offsets[a])
    docs = _Docs(job, a, "r2", recs)
    rep_of = dict(zip(comp["gid"].tolist(), comp["rep"].tolist(), strict=True))
    removed_rows = []
    pair_rows = []
    kept_lines = []
    gone = [
        (first + n, rep_of[first + n])
        for n in range(len(recs))
        if rep_of.get(first + n, first + n) != first + n
    ]
    if gone:
        gg, rr = (np.array(c, np.int64) for c in zip(*gone, strict=True))
        sims = dict(
            zip(gg.tolist(), docs.similarities(gg, rr, job.num_threads).tolist(), strict=True)
        )
    else:
        sims = {}
    annotate = bool(job.settings.get("annotate"))
    for local, rec in enumerate(recs):
        g = first + local
        r = rep_of.get(g, g)
        line = record_json_line(rec, text_field=rs["text_field"], id_field=rs["id_field"])
        if r == g:
            kept_lines.append(_core.annotate_record(line, g, None, math.nan) if annotate else line)
            continue
        x = sims[g]
        jac = x if math.isfinite(x) else None
        if annotate:
            label = docs.id(r).encode("utf-8", "surrogatepass")
            kept_lines.append(_core.annotate_record(line, r, label, x))
        removed_rows.append(
            {
                "id": rec.id,
                "cluster": r,
                "duplicate_of": docs.id(r),
                "jaccard": jac,
                "source": rec.source,
                "line": rec.line,
            }
        )
        pair_rows.append({"id": rec.id, "duplicate_of": docs.id(r), "jaccard": jac})
    with _work_file(work.part("kept", a, "jsonl"), "wb") as fh:
        fh.writelines(kept_lines)
    _write_rows(work.part("removed", a, "jsonl"), removed_rows)
    _write_rows(work.part("removals", a, "jsonl"), pair_rows)
    _save_npz(
        work.part("removed", a),
        gid=np.array(sorted(sims), np.int64),
        jaccard=np.array([sims[g] for g in sorted(sims)], np.float64),
    )
    return {"kept": len(kept_lines) - len(removed_rows) * annotate, "removed": len(removed_rows)}


def _stage_snippets(job: Job, a: int, gids: list[int]) -> dict[int, tuple[str, str]]:
    """Ids and the first 2000 characters of a few documents of partition ``a`` (for the report)."""
    recs = job.partition(a).records()
    first = int(job.offsets[a])
    return {g: (recs[g - first].id, recs[g - first].text[:2000]) for g in gids}
