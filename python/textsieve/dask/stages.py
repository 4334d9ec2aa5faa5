"""The per-task stage functions. Each is a Dask task: it reads and writes files in the work
directory, and returns a small summary (saved as the task's marker). They take a :class:`Job`,
what every task knows about the run, pickled to the workers; the components stage (of the
candidate edges) is in :mod:`textsieve.dask.components`."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from textsieve import _core
from textsieve.dask.kernels import (
    _bucket_stars,
    _groups,
    _hasher,
    _pack,
    _part_of,
    _shard_of,
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
from textsieve.dedup import _config
from textsieve.io import record_json_line

#: The stages, in order (``stop_after`` takes one of them).
STAGES = (
    "lines",
    "sign",
    "copies",
    "scatter",
    "bucket",
    "edges",
    "components",
    "fetch",
    "decide",
    "pairs",
    "write",
)

_EMPTY_SIG = np.uint32(0xFFFFFFFF)
_SHUFFLE_DTYPE = np.dtype([("band", "<u4"), ("key", "<u8"), ("gid", "<u4")])
#: a document's content digest (blake2b, 16 bytes, as two words), its partition and its number
#: there (the sign stage does not know the global numbers yet)
_DIGEST_DTYPE = np.dtype([("d0", "<u8"), ("d1", "<u8"), ("part", "<u4"), ("local", "<u4")])


@dataclass(frozen=True)
class CCPlan:
    """The distributed components' plan: ``shards`` edge shards for ``edges`` candidate edges,
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
    #: bucket, digest and decide shards
    n_shards: int
    #: the components' limit of the in-memory path, and edges per shard of the distributed one
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
    _save_npz(work.part("sign", p), keys=keys, empty=empty)
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
    """Per bucket shard: the star edges of each ``(band, key)`` bucket (its smallest document
    with every other member), routed to the partition of their smaller document."""
    work, offsets = job.work, np.asarray(job.offsets)
    rows = work.load_routed(("shuffle",), len(offsets), sh, _SHUFFLE_DTYPE)
    if not len(rows):
        return {"edges": 0, "entries": 0, "largest_bucket": 0}
    band, key, gid = rows["band"], rows["key"], rows["gid"]
    edges = _bucket_stars(band, key, gid.astype(np.int64))
    lo, _ = _unpack(edges)
    owner = _part_of(offsets, lo)
    cuts = np.searchsorted(owner, np.arange(len(offsets) + 1))  # edges sorted by lo
    for a in range(len(offsets)):
        x, y = cuts[a], cuts[a + 1]
        if x < y:
            _save_npz(work.shard("cand", a, sh), edges=edges[x:y])
    # the largest bucket, for the record (with every pair of a bucket verified, it was the cost)
    order = np.lexsort((key, band))
    _, sizes = _groups(band[order], key[order])
    return {"edges": len(edges), "entries": len(gid), "largest_bucket": int(sizes.max())}


def _stage_edges(job: Job, a: int) -> dict[str, Any]:
    """Partition ``a``'s candidate edges (those whose smaller document is in ``a``): its distinct
    star edges, and an edge from each exact-copy class's rep (in ``a``) to each other member, so
    that a class is decided with its rep. ``edges/part-N.npz`` (``i < j``)."""
    work = job.work
    files = work.shards("cand", a)
    stars = (
        np.unique(np.concatenate([_load_npz(f)["edges"] for f in files]))
        if files
        else np.empty(0, np.uint64)
    )
    i, j = _unpack(stars)
    rep, member = _load_all(work.shards("classes", a), "rep", "member")
    copy = member != rep
    _save_npz(
        work.part("edges", a),
        i=np.concatenate([i, rep[copy]]).astype(np.int64),
        j=np.concatenate([j, member[copy]]).astype(np.int64),
    )
    return {"star_edges": len(stars), "copy_edges": int(copy.sum())}


def _stage_fetch(job: Job, a: int) -> dict[str, Any]:
    """Send the texts of partition ``a``'s documents in candidate components to the decide
    shard of their component: ``texts/to-S/from-N.json`` (number, root, text). An exact copy
    of a smaller document travels as the number of its class's rep instead of its text (the
    rep is in the same component)."""
    work = job.work
    roots = _load_npz(work.part("roots", a))
    gid, root = roots["gid"], roots["root"]
    if not len(gid):
        return {"sent": 0, "copies": 0}
    first = int(job.offsets[a])
    copies, copy_rep = _load_all(work.shards("copyof", a), "gid", "rep")
    rep_of = dict(zip(copies.tolist(), copy_rep.tolist(), strict=True))
    recs = job.partition(a).records()
    dest = _shard_of(root, job.n_shards)  # whole components per decide shard
    sent = 0
    for s in np.unique(dest).tolist():
        sel = dest == s
        g, r = gid[sel].tolist(), root[sel].tolist()
        payload: dict[str, list[Any]] = {"gid": [], "root": [], "text": [], "copy_of": []}
        for x, y in zip(g, r, strict=True):
            payload["gid"].append(x)
            payload["root"].append(y)
            c = rep_of.get(x, -1)
            payload["copy_of"].append(c)
            payload["text"].append(recs[x - first].text if c < 0 else "")
        _save_json(work.letter(("texts",), s, a, "json"), payload)
        sent += len(g)
    return {"sent": sent, "copies": len(rep_of)}


#: Documents fed to the core at a time by the decide stage.
_DECIDE_CHUNK = 8192


def _stage_decide(job: Job, s: int) -> dict[str, Any]:
    """Decide the candidate components of shard ``s`` with the core's own dedup (the local
    engine's rule and settings) over their documents in input order. A document's decision
    depends only on the documents sharing a bucket with it, all in its component, and the order
    of a subset is the order of the corpus (also longest first), so the decisions are the
    corpus's: kept document (the cluster), similarity, and with ``all_pairs`` every candidate
    pair at or above the threshold. Sends ``(document, kept document, similarity, examined)``
    to each document's partition (``decided/``) and the pairs to their smaller document's
    partition (``xpairs/``). One component is decided in one task: the summary says how large
    the largest was (documents)."""
    work, settings = job.work, job.settings
    offsets = np.asarray(job.offsets)
    t0 = time.perf_counter()
    gids: list[int] = []
    roots: list[int] = []
    texts: list[str] = []
    copy_of: list[int] = []
    for f in work.letters(("texts",), s, "json"):
        got = _load_json(f)
        gids += got["gid"]
        roots += got["root"]
        texts += got["text"]
        copy_of += got["copy_of"]
    gid = np.array(gids, np.int64)
    root = np.array(roots, np.int64)
    order = np.argsort(gid, kind="stable")
    gid, root = gid[order], root[order]
    pos = {g: n for n, g in enumerate(gid.tolist())}
    ordered = [texts[k] for k in order.tolist()]
    for n, k in enumerate(order.tolist()):
        if copy_of[k] >= 0:
            ordered[n] = ordered[pos[copy_of[k]]]  # the rep's text (the same string)
    del texts
    all_pairs = bool(settings.get("all_pairs"))
    run = _core.DedupRun(_config(settings), all_pairs)
    n_bytes = 0
    for x in range(0, len(ordered), _DECIDE_CHUNK):
        n_bytes += run.feed(ordered[x : x + _DECIDE_CHUNK], job.num_threads, "strict")[1]
    done, total = run.step(job.num_threads)
    while done < total:
        done, total = run.step(job.num_threads)
    res = run.finish(job.num_threads)
    dup = np.asarray(res["duplicate_of"], np.int64)
    kept_as = np.where(dup >= 0, gid[np.maximum(dup, 0)], -1)
    sim = np.asarray(res["similarity"], np.float64)
    examined = np.asarray(res["examined"], np.int64)
    owner = _part_of(offsets, gid)
    for a in np.unique(owner).tolist():
        sel = owner == a
        _save_npz(
            work.letter(("decided",), a, s),
            gid=gid[sel],
            dup=kept_as[sel],
            jaccard=sim[sel],
            examined=examined[sel],
        )
    n_pairs = 0
    if all_pairs:
        pi = gid[np.asarray(res["pair_i"], np.int64)]
        pj = gid[np.asarray(res["pair_j"], np.int64)]
        px = np.asarray(res["pair_jaccard"], np.float64)
        n_pairs = len(px)
        owner = _part_of(offsets, pi)
        for a in np.unique(owner).tolist():
            sel = owner == a
            _save_npz(work.letter(("xpairs",), a, s), i=pi[sel], j=pj[sel], jaccard=px[sel])
    comps, sizes = np.unique(root, return_counts=True)
    k = int(np.argmax(sizes)) if len(sizes) else -1
    return {
        "documents": len(gid),
        "bytes": n_bytes,
        "components": len(comps),
        "largest_component": {
            "documents": int(sizes[k]) if k >= 0 else 0,
            "root": int(comps[k]) if k >= 0 else -1,
        },
        "removed": int(np.count_nonzero(dup >= 0)),
        "examined": int(examined.sum()),
        "most_examined": int(examined.max()) if len(examined) else 0,
        "n_candidates": int(res["n_candidates"]),
        "pairs": n_pairs,
        "seconds": time.perf_counter() - t0,
    }


def _stage_pairs(job: Job, c: int) -> dict[str, Any]:
    """``all_pairs``: partition ``c``'s verified pairs (those whose smaller document is in
    ``c``), sorted, with the ids of both documents: ``pairs/part-N.jsonl``."""
    work, offsets = job.work, np.asarray(job.offsets)
    i, j, x = _load_all(work.letters(("xpairs",), c), "i", "j", "jaccard")
    x = x.astype(np.float64)
    order = np.argsort(_pack(i, j), kind="stable")
    i, j, x = i[order], j[order], x[order]
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
    """Partition ``a``'s outputs from the decisions the decide shards sent it: ``kept/``,
    ``removed/`` and ``removals/`` (``pairs.jsonl`` rows) part files, and ``removed/part-N.npz``
    (each removed document's kept document and similarity, for the stats and the report)."""
    work, rs = job.work, job.reader
    recs = job.partition(a).records()
    first = int(job.offsets[a])
    gid, dup, jac, examined = _load_all(
        work.letters(("decided",), a), "gid", "dup", "jaccard", "examined"
    )
    gone = dup >= 0
    order = np.argsort(gid[gone], kind="stable")
    g_rm, r_rm = gid[gone][order].astype(np.int64), dup[gone][order].astype(np.int64)
    x_rm = jac[gone][order].astype(np.float64)
    names = dict(zip(r_rm.tolist(), work.ids_of(np.asarray(job.offsets), r_rm), strict=True))
    rep_of = dict(zip(g_rm.tolist(), zip(r_rm.tolist(), x_rm.tolist()), strict=True))
    removed_rows = []
    pair_rows = []
    kept_lines = []
    annotate = bool(job.settings.get("annotate"))
    for local, rec in enumerate(recs):
        g = first + local
        line = record_json_line(rec, text_field=rs["text_field"], id_field=rs["id_field"])
        if g not in rep_of:
            kept_lines.append(_core.annotate_record(line, g, None, math.nan) if annotate else line)
            continue
        r, x = rep_of[g]
        sim = x if math.isfinite(x) else None
        if annotate:
            label = names[r].encode("utf-8", "surrogatepass")
            kept_lines.append(_core.annotate_record(line, r, label, x))
        removed_rows.append(
            {
                "id": rec.id,
                "cluster": r,
                "duplicate_of": names[r],
                "jaccard": sim,
                "source": rec.source,
                "line": rec.line,
            }
        )
        pair_rows.append({"id": rec.id, "duplicate_of": names[r], "jaccard": sim})
    with _work_file(work.part("kept", a, "jsonl"), "wb") as fh:
        fh.writelines(kept_lines)
    _write_rows(work.part("removed", a, "jsonl"), removed_rows)
    _write_rows(work.part("removals", a, "jsonl"), pair_rows)
    _save_npz(work.part("removed", a), gid=g_rm, rep=r_rm, jaccard=x_rm)
    return {
        "kept": len(kept_lines) - len(removed_rows) * annotate,
        "removed": len(removed_rows),
        "examined": int(examined.sum()),
        "most_examined": int(examined.max()) if len(examined) else 0,
    }


def _stage_snippets(job: Job, a: int, gids: list[int]) -> dict[int, tuple[str, str]]:
    """Ids and the first 2000 characters of a few documents of partition ``a`` (for the report)."""
    recs = job.partition(a).records()
    first = int(job.offsets[a])
    return {g: (recs[g - first].id, recs[g - first].text[:2000]) for g in gids}
