"""The ``components`` stage: connected components of the verified pairs, the kept document of
each cluster (keep policy), and per partition the pairs (document, kept document) still to
measure. Up to ``components_max_edges`` pairs one task runs the core's greedy rule or union-find
in memory (:func:`_stage_components`); above that, large-star/small-star rounds run as tasks per
edge shard (:func:`_components`), and with ``cluster="greedy"`` the greedy rule then runs once per
shard, over the verified pairs of the whole components the shard holds. Both write the same
files."""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from textsieve import _core
from textsieve.dask.kernels import _pack, _part_of, _unpack
from textsieve.dask.stages import CCPlan, Job, _request
from textsieve.dask.workdir import WorkDir, _load_json, _load_npz, _save_json, _save_npz
from textsieve.errors import TextsieveError

if TYPE_CHECKING:
    from textsieve.dask.driver import _Runner

#: Up to this many verified pairs the components stage is one task running the core's
#: union-find in memory (16 bytes per pair for the edge list plus ~40 bytes per distinct document
#: in it: 100 M pairs ~ 2-4 GB); above it, distributed large-star/small-star rounds.
COMPONENTS_IN_MEMORY_MAX_EDGES = 100_000_000

#: Verified pairs per shard of the distributed components (one task per shard and step): the
#: number of shards is ``ceil(pairs / this)``. A shard's task holds about 100 bytes per pair
#: (both directions of each edge, sorted and deduplicated; measured), about 400 MB at 4 M.
COMPONENTS_SHARD_EDGES = 4_000_000

#: The distributed components give up after this many rounds (a round is a large-star step
#: and a small-star step; they take O(log^2 n) rounds, in practice a handful to about 20).
COMPONENTS_MAX_ROUNDS = 200

#: At most this many verified-pair similarities go into ``comp/clusters.npz`` (the report's
#: histogram) on the distributed path; above it, an evenly spaced sample of them.
COMPONENTS_JACCARD_SAMPLE = 20_000_000


# --------------------------------------------------------------------------------------------
# In memory: one task


def _stage_components(job: Job, _: int) -> dict[str, Any]:
    work, s = job.work, job.settings
    offsets = np.asarray(job.offsets)
    n_parts = len(offsets)
    ii, jj = [], []
    for a in range(n_parts):
        z = _load_npz(work.part("pairs", a))
        ii.append(z["i"])
        jj.append(z["j"])
    i = np.concatenate(ii) if ii else np.empty(0, np.int64)
    j = np.concatenate(jj) if jj else np.empty(0, np.int64)
    if len(i) > job.components_max_edges:
        raise TextsieveError(
            f"{len(i):,} verified pairs: more than the {job.components_max_edges:,} the "
            "in-memory components stage takes (components_max_edges); see docs/distributed.md"
        )
    t0 = time.perf_counter()
    # the core's union-find: roots are the smallest document of each component
    nodes, root = (
        a.astype(np.int64)
        for a in _core.connected_components(i.astype(np.uint64), j.astype(np.uint64))
    )
    owner = _part_of(offsets, nodes)
    lengths = np.zeros(len(nodes), np.int64)
    if s["keep"] == "longest":
        for a in np.unique(owner):
            sel = owner == a
            lengths[sel] = _load_npz(work.part("sign", a))["lengths"][nodes[sel] - offsets[a]]
    largest = None
    if s.get("cluster", "greedy") == "greedy":
        # the greedy rule over the verified pairs (pairs below the threshold decide nothing)
        x = (
            np.concatenate([_load_npz(work.part("pairs", a))["jaccard"] for a in range(n_parts)])
            if n_parts
            else np.empty(0)
        )
        rank = np.empty(len(nodes), np.uint64)
        rank[np.lexsort((nodes, -lengths))] = np.arange(len(nodes), dtype=np.uint64)
        dup, _ = _core.greedy_pairs(
            i.astype(np.uint64),
            j.astype(np.uint64),
            x.astype(np.float64),
            nodes.astype(np.uint64),
            rank,
            float(s["threshold"]),
        )
        rep = np.where(dup >= 0, dup, nodes)
        largest = _largest_component(root[np.searchsorted(nodes, i)], root)
    elif s["keep"] == "longest":
        order = np.lexsort((nodes, -lengths, root))
        first = np.ones(len(order), bool)
        first[1:] = root[order][1:] != root[order][:-1]
        roots, reps = root[order][first], nodes[order][first]
        rep = reps[np.searchsorted(roots, root)]
    else:
        rep = root
    # per partition: its documents in clusters, their kept document; round 2 asks for the
    # kept documents' texts and ids
    cuts = np.searchsorted(owner, np.arange(n_parts + 1))
    for a in range(n_parts):
        x, y = cuts[a], cuts[a + 1]
        _save_npz(work.part("comp", a), gid=nodes[x:y], rep=rep[x:y])
        removed = nodes[x:y] != rep[x:y]
        _request(work, "r2", a, offsets, rep[x:y][removed])
    # cluster sizes (clusters with duplicates) for the stats and report
    reps_u, sizes = np.unique(rep, return_counts=True)
    _save_npz(
        work.path("comp", "clusters.npz"),
        rep=reps_u,
        size=sizes,
        jaccard=np.concatenate(
            [_load_npz(work.part("pairs", a))["jaccard"] for a in range(n_parts)]
        )
        if n_parts
        else np.empty(0),
    )
    # with the greedy rule: the largest component, for the record (the distributed path decides
    # one whole component per task; here the task holds them all)
    out: dict[str, Any] = {} if largest is None else {"largest_component": largest}
    return {
        **out,
        "edges": len(i),
        "nodes": len(nodes),
        "components": len(reps_u),
        "mode": f"in memory, {len(i):,} edges <= {job.components_max_edges:,}",
        "seconds": time.perf_counter() - t0,
    }


def _largest_component(edge_root: np.ndarray, node_root: np.ndarray) -> dict[str, int]:
    """The component with the most verified pairs (ties: the most documents, then the smallest
    root), from the root of each pair and of each document: ``{"edges", "nodes", "root"}``
    (zeros when there is none). One task decides it whole under the greedy rule."""
    roots, n_edges = np.unique(edge_root, return_counts=True)
    roots_n, n_nodes = np.unique(node_root, return_counts=True)
    if not len(roots):
        return {"edges": 0, "nodes": 0, "root": -1}
    if not np.array_equal(roots, roots_n):
        raise TextsieveError("components: a component without pairs, or pairs without a root")
    k = int(np.lexsort((roots, -n_nodes, -n_edges))[0])
    return {"edges": int(n_edges[k]), "nodes": int(n_nodes[k]), "root": int(roots[k])}


# --------------------------------------------------------------------------------------------
# Distributed components: large-star / small-star (Kiveris et al. 2014, "Connected Components
# in MapReduce and Beyond"), used when the verified pairs are more than `components_max_edges`.
#
# The edges live in shard files under `cc/`: every step is a task per shard that reads the rows
# routed to it (one file per source task, sorted by destination shard, as in `scatter`), applies
# the star step to each node's neighbours, and routes its output edges to the shards of the next
# step's keys. Rows are `(u, v)`: the edge `{u, v}` as seen from its key `u`. The star steps never
# make more edges than they read, so a shard holds about `edges / shards` rows (plus the
# neighbourhoods of high-degree nodes, which all land in one shard: at the end, a component's
# smallest document has every other member as its neighbour).

_EDGE_DTYPE = np.dtype([("u", "<u4"), ("v", "<u4")])
_ROOT_DTYPE = np.dtype([("node", "<u4"), ("root", "<u4")])
_LENGTH_DTYPE = np.dtype([("node", "<u4"), ("root", "<u4"), ("length", "<i8")])
_REP_DTYPE = np.dtype([("node", "<u4"), ("rep", "<u4")])
_PAIR_DTYPE = np.dtype([("i", "<u4"), ("j", "<u4"), ("root", "<u4"), ("jaccard", "<f8")])

_FIB = np.uint64(0x9E3779B97F4A7C15)


def _cc(job: Job) -> CCPlan:
    """The edge shards' plan, which :func:`_components` sets before the distributed steps."""
    if job.cc is None:
        raise TextsieveError("components: the distributed steps run without a plan")
    return job.cc


def _shard_of(nodes: np.ndarray, n: int) -> np.ndarray:
    """The shard of each document number: multiply-shift (Fibonacci) hashing, then mod ``n``, so
    that neighbouring numbers (one partition's documents) spread over the shards."""
    h = (np.asarray(nodes).astype(np.uint64) * _FIB) >> np.uint64(32)
    return (h % np.uint64(n)).astype(np.int64)


def _distinct(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows ``(u, v)``, sorted by ``u`` then ``v`` (as int64). A sort and a mask:
    NumPy 2's ``np.unique`` hashes first, several times slower on these arrays."""
    p = np.sort(_pack(u, v))
    if len(p):
        new = np.ones(len(p), bool)
        new[1:] = p[1:] != p[:-1]
        p = p[new]
    return _unpack(p)


def _group_starts(u: np.ndarray) -> np.ndarray:
    """Where each run of equal keys starts in the sorted ``u``."""
    new = np.ones(len(u), bool)
    new[1:] = u[1:] != u[:-1]
    return np.flatnonzero(new)


def _large_star(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The large-star step over rows ``(u, v)``: every edge in both directions, grouped by ``u``
    (all rows of a key must be here). For each node ``u`` with neighbours ``N(u)``,
    ``m = min(N(u) + {u})``, and each larger neighbour ``v > u`` is linked to ``m`` instead.

    Returns the new edges ``(hi, lo)`` (``hi > lo``, possibly repeated) and how many of them
    differ from the edge ``(v, u)`` they replace (0: the step changed nothing)."""
    if not len(u):
        e = np.empty(0, np.int64)
        return e, e, 0
    u, v = _distinct(u, v)
    starts = _group_starts(u)
    m = np.minimum(np.minimum.reduceat(v, starts), u[starts])
    m_row = np.repeat(m, np.diff(np.append(starts, len(u))))
    up = v > u
    changed = int(np.count_nonzero(up & (m_row < u)))
    return v[up], m_row[up], changed


def _small_star(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The small-star step over rows ``(u, v)`` with ``v < u``: every edge once, keyed by its
    larger end (all rows of a key must be here). For each node ``u`` with smaller neighbours
    ``N(u)``, ``m = min(N(u))``, and ``u`` and every other ``v`` in ``N(u)`` are linked to ``m``.

    Returns the new edges ``(hi, lo)`` (``hi > lo``, possibly repeated) and how many of them
    differ from the edge ``(u, v)`` they replace (0: the step changed nothing)."""
    if not len(u):
        e = np.empty(0, np.int64)
        return e, e, 0
    u, v = _distinct(u, v)
    starts = _group_starts(u)
    m = np.minimum.reduceat(v, starts)
    m_row = np.repeat(m, np.diff(np.append(starts, len(u))))
    moved = v != m_row
    hi = np.concatenate([u[starts], v[moved]])
    lo = np.concatenate([m, m_row[moved]])
    return hi, lo, int(np.count_nonzero(moved))


def _star_roots(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The components of a converged graph, rows ``(u, v)`` (every edge in both directions,
    grouped by ``u``): each component is a star whose centre is its smallest document, and the
    centre's rows list all its members. Returns ``(nodes, root)`` for the centres among the keys
    here and their members, sorted by root then node. Raises if the graph is not made of stars
    (a leaf with more than one neighbour)."""
    if not len(u):
        e = np.empty(0, np.int64)
        return e, e
    u, v = _distinct(u, v)
    starts = _group_starts(u)
    keys = u[starts]
    lowest = np.minimum.reduceat(v, starts)
    degree = np.diff(np.append(starts, len(u)))
    centre = lowest > keys
    if (degree[~centre] != 1).any():
        raise TextsieveError("components: large-star/small-star stopped before converging")
    rows = np.repeat(centre, degree)
    nodes = np.concatenate([keys[centre], v[rows]])
    root = np.concatenate([keys[centre], u[rows]])
    order = np.lexsort((nodes, root))
    return nodes[order], root[order]


def _star_components(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Connected components of the edges ``(i, j)`` by alternating large-star and small-star
    steps until a round changes nothing, in one process: the computation the distributed
    stages do shard by shard (what the tests compare with the union-find). Returns ``(nodes,
    root, rounds)``, nodes sorted, root = the smallest document of each node's component."""
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    hi, lo = np.maximum(i, j), np.minimum(i, j)
    keep = hi != lo  # a self-loop joins nothing
    hi, lo = hi[keep], lo[keep]
    rounds = 0
    while True:
        rounds += 1
        if rounds > COMPONENTS_MAX_ROUNDS:
            raise TextsieveError(f"components: no convergence in {COMPONENTS_MAX_ROUNDS} rounds")
        hi, lo, c1 = _large_star(np.concatenate([hi, lo]), np.concatenate([lo, hi]))
        hi, lo, c2 = _small_star(hi, lo)
        if c1 == 0 and c2 == 0:
            break
    nodes, root = _star_roots(np.concatenate([hi, lo]), np.concatenate([lo, hi]))
    order = np.argsort(nodes, kind="stable")
    return nodes[order], root[order], rounds


def _route(
    work: WorkDir,
    step: str,
    src: int,
    dest: np.ndarray,
    n_dest: int,
    dtype: np.dtype,
    **cols: Any,
) -> int:
    """Write task ``src``'s rows of ``step`` (the columns ``cols``) as one file sorted by
    destination (a shard or a partition), and the row range of each destination beside it (read
    by :func:`_gather`)."""
    rows = np.empty(len(dest), dtype)
    for name, col in cols.items():
        rows[name] = np.asarray(col)
    work.save_routed(("cc", step), src, rows, dest, n_dest)
    return len(rows)


def _gather(work: WorkDir, step: str, n_src: int, dest: int, dtype: np.dtype) -> np.ndarray:
    """The rows of ``step`` routed to ``dest``, from each of its ``n_src`` source files."""
    return work.load_routed(("cc", step), n_src, dest, dtype)


def _route_edges(job: Job, step: str, src: int, hi: np.ndarray, lo: np.ndarray, both: bool) -> int:
    """Route the edges ``(hi, lo)`` to the shards of the next step: keyed by both ends (for
    large-star, which needs every neighbour of a node) or by the larger one (for small-star)."""
    hi, lo = _distinct(hi, lo)
    if both:
        u, v = np.concatenate([hi, lo]), np.concatenate([lo, hi])
    else:
        u, v = hi, lo
    n = _cc(job).shards
    return _route(job.work, step, src, _shard_of(u, n), n, _EDGE_DTYPE, u=u, v=v)


def _stage_cc_init(job: Job, a: int) -> dict[str, Any]:
    """A partition's verified pairs, routed to the shards of the first large-star step."""
    z = _load_npz(job.work.part("pairs", a))
    return {"edges": _route_edges(job, "init", a, z["j"], z["i"], both=True)}


def _stage_cc_large(job: Job, s: int, r: int) -> dict[str, Any]:
    n = _cc(job).shards
    src, n_src = ("init", len(job.parts)) if r == 1 else (f"small-r{r - 1:03d}", n)
    rows = _gather(job.work, src, n_src, s, _EDGE_DTYPE)
    hi, lo, changed = _large_star(rows["u"].astype(np.int64), rows["v"].astype(np.int64))
    out = _route_edges(job, f"large-r{r:03d}", s, hi, lo, both=False)
    return {"rows_in": len(rows), "rows_out": out, "changed": changed}


def _stage_cc_small(job: Job, s: int, r: int) -> dict[str, Any]:
    n = _cc(job).shards
    rows = _gather(job.work, f"large-r{r:03d}", n, s, _EDGE_DTYPE)
    hi, lo, changed = _small_star(rows["u"].astype(np.int64), rows["v"].astype(np.int64))
    out = _route_edges(job, f"small-r{r:03d}", s, hi, lo, both=True)
    return {"rows_in": len(rows), "rows_out": out, "changed": changed}


def _save_cluster_sizes(work: WorkDir, s: int, root: np.ndarray, rep: np.ndarray) -> int:
    """A shard's clusters (its rows sorted by root): kept document and size of each."""
    starts = _group_starts(root)
    _save_npz(
        work.path("cc", "clusters", f"shard-{s:05d}.npz"),
        rep=rep[starts],
        size=np.diff(np.append(starts, len(root))).astype(np.int64),
    )
    return len(starts)


def _stage_cc_roots(job: Job, s: int) -> dict[str, Any]:
    """After convergence: each centre (a component's smallest document) in this shard lists its
    members. With ``cluster="components"`` and ``keep="first"`` the root is the kept document:
    cluster sizes, and (document, kept document) routed to the document's partition; else
    (``keep="longest"``, or ``cluster="greedy"``) (document, root) go to the document's
    partition, to fetch its length, or to send its pairs to the root's shard."""
    work, n = job.work, _cc(job).shards
    offsets = np.asarray(job.offsets)
    rows = _gather(work, f"small-r{_cc(job).rounds:03d}", n, s, _EDGE_DTYPE)
    nodes, root = _star_roots(rows["u"].astype(np.int64), rows["v"].astype(np.int64))
    owner, n_parts = _part_of(offsets, nodes), len(offsets)
    if job.settings["keep"] == "first" and job.settings.get("cluster", "greedy") != "greedy":
        n_comp = _save_cluster_sizes(work, s, root, root)
        _route(work, "reps", s, owner, n_parts, _REP_DTYPE, node=nodes, rep=root)
    else:
        n_comp = len(_group_starts(root))
        _route(work, "roots", s, owner, n_parts, _ROOT_DTYPE, node=nodes, root=root)
    return {"nodes": len(nodes), "components": n_comp}


def _stage_cc_lengths(job: Job, a: int) -> dict[str, Any]:
    """``keep="longest"``: a partition's documents in clusters with their lengths, routed to the
    shard of their root."""
    work, n = job.work, _cc(job).shards
    rows = _gather(work, "roots", n, a, _ROOT_DTYPE)
    first = int(job.offsets[a])
    lengths = (
        _load_npz(work.part("sign", a))["lengths"][rows["node"].astype(np.int64) - first]
        if len(rows)
        else np.empty(0, np.int64)
    )
    dest = _shard_of(rows["root"], n)
    _route(
        work, "lengths", a, dest, n, _LENGTH_DTYPE,
        node=rows["node"], root=rows["root"], length=lengths,
    )  # fmt: skip
    return {"nodes": len(rows)}


def _stage_cc_gpairs(job: Job, a: int) -> dict[str, Any]:
    """``cluster="greedy"``: partition ``a``'s verified pairs (``i`` is in ``a``), each with the
    root of its component (from the ``(document, root)`` rows the shards sent), routed to the
    root's shard, where the whole component is; with ``keep="longest"`` also its documents in
    components with their lengths, as :func:`_stage_cc_lengths` routes them."""
    work, n = job.work, _cc(job).shards
    rows = _gather(work, "roots", n, a, _ROOT_DTYPE)
    order = np.argsort(rows["node"], kind="stable")
    node, root = rows["node"][order].astype(np.int64), rows["root"][order].astype(np.int64)
    z = _load_npz(work.part("pairs", a))
    i = z["i"].astype(np.int64)
    pos = np.searchsorted(node, i)
    if len(i) and (pos.max() >= len(node) or not np.array_equal(node[pos], i)):
        raise TextsieveError(f"components: partition {a} has pairs of documents without a root")
    root_i = root[pos]
    _route(
        work, "gpairs", a, _shard_of(root_i, n), n, _PAIR_DTYPE,
        i=i, j=z["j"], root=root_i, jaccard=z["jaccard"],
    )  # fmt: skip
    out = {"pairs": len(i), "nodes": len(node)}
    if job.settings["keep"] == "longest":
        out["lengths"] = _stage_cc_lengths(job, a)["nodes"]
    return out


def _stage_cc_greedy(job: Job, s: int) -> dict[str, Any]:
    """``cluster="greedy"``: the greedy rule (``_core.greedy_pairs``) over the verified pairs of
    this shard's components (each one whole: its root is here), in decision order (node order,
    or with ``keep="longest"`` most characters first, ties to the smallest number; only the
    order within a component matters); cluster sizes, and (document, kept document) routed to
    the document's partition. Records the largest component it decided."""
    work, offsets = job.work, np.asarray(job.offsets)
    n_parts = len(offsets)
    rows = _gather(work, "gpairs", n_parts, s, _PAIR_DTYPE)
    i, j = rows["i"].astype(np.int64), rows["j"].astype(np.int64)
    edge_root = rows["root"].astype(np.int64)
    nodes = np.unique(np.concatenate([i, j]))
    node_root = np.empty(len(nodes), np.int64)
    node_root[np.searchsorted(nodes, i)] = edge_root
    node_root[np.searchsorted(nodes, j)] = edge_root
    lengths = np.zeros(len(nodes), np.int64)
    if job.settings["keep"] == "longest":
        lr = _gather(work, "lengths", n_parts, s, _LENGTH_DTYPE)
        order = np.argsort(lr["node"], kind="stable")
        if not np.array_equal(lr["node"][order].astype(np.int64), nodes):
            raise TextsieveError(f"components: shard {s}'s lengths and pairs differ in documents")
        lengths = lr["length"][order].astype(np.int64)
    rank = np.empty(len(nodes), np.uint64)
    rank[np.lexsort((nodes, -lengths))] = np.arange(len(nodes), dtype=np.uint64)
    dup, _ = _core.greedy_pairs(
        i.astype(np.uint64),
        j.astype(np.uint64),
        rows["jaccard"].astype(np.float64),
        nodes.astype(np.uint64),
        rank,
        float(job.settings["threshold"]),
    )
    rep = np.where(dup >= 0, dup, nodes)
    reps_u, sizes = np.unique(rep, return_counts=True)
    _save_npz(
        work.path("cc", "clusters", f"shard-{s:05d}.npz"),
        rep=reps_u.astype(np.int64),
        size=sizes.astype(np.int64),
    )
    owner = _part_of(offsets, nodes)
    _route(work, "reps", s, owner, n_parts, _REP_DTYPE, node=nodes, rep=rep)
    largest = _largest_component(edge_root, node_root)
    return {
        "edges": len(i),
        "nodes": len(nodes),
        "components": len(np.unique(edge_root)),
        "removed": int(np.count_nonzero(dup >= 0)),
        "largest_component": largest,
    }


def _stage_cc_reps(job: Job, s: int) -> dict[str, Any]:
    """``keep="longest"``: per root of this shard, the member with the most characters (ties to
    the smallest number), as in the in-memory path; cluster sizes, and (document, kept document)
    routed to the document's partition."""
    work, offsets = job.work, np.asarray(job.offsets)
    rows = _gather(work, "lengths", len(offsets), s, _LENGTH_DTYPE)
    node, root = rows["node"].astype(np.int64), rows["root"].astype(np.int64)
    order = np.lexsort((node, -rows["length"], root))
    node, root = node[order], root[order]
    starts = _group_starts(root)
    rep = np.repeat(node[starts], np.diff(np.append(starts, len(root))))
    n_comp = _save_cluster_sizes(work, s, root, rep)
    owner = _part_of(offsets, node)
    _route(work, "reps", s, owner, len(offsets), _REP_DTYPE, node=node, rep=rep)
    return {"nodes": len(node), "components": n_comp}


def _stage_cc_parts(job: Job, a: int) -> dict[str, Any]:
    """A partition's documents in clusters and their kept documents (``comp/part-N.npz``, as the
    in-memory path writes it), and round 2's requests for the kept documents' texts."""
    work, offsets = job.work, np.asarray(job.offsets)
    rows = _gather(work, "reps", _cc(job).shards, a, _REP_DTYPE)
    order = np.argsort(rows["node"], kind="stable")
    gid, rep = rows["node"][order].astype(np.int64), rows["rep"][order].astype(np.int64)
    _save_npz(work.part("comp", a), gid=gid, rep=rep)
    _request(work, "r2", a, offsets, rep[gid != rep])
    return {"nodes": len(gid), "removed": int(np.count_nonzero(gid != rep))}


def _stage_cc_clusters(job: Job, _: int) -> dict[str, Any]:
    """``comp/clusters.npz`` from the shards' cluster sizes (one row per cluster with duplicates,
    sorted by kept document) and the verified pairs' similarities for the report's histogram:
    all of them up to :data:`COMPONENTS_JACCARD_SAMPLE`, else every k-th in pair order."""
    work, n_parts = job.work, len(job.parts)
    parts = [
        _load_npz(work.path("cc", "clusters", f"shard-{s:05d}.npz")) for s in range(_cc(job).shards)
    ]
    rep = np.concatenate([z["rep"] for z in parts]).astype(np.int64)
    size = np.concatenate([z["size"] for z in parts]).astype(np.int64)
    order = np.argsort(rep, kind="stable")
    step = max(1, math.ceil(_cc(job).edges / COMPONENTS_JACCARD_SAMPLE))
    jac, seen = [], 0
    for a in range(n_parts):
        x = _load_npz(work.part("pairs", a))["jaccard"]
        jac.append(x[(-seen) % step :: step])  # global positions 0, step, 2 step, ...
        seen += len(x)
    jaccard = np.concatenate(jac) if jac else np.empty(0)
    _save_npz(work.path("comp", "clusters.npz"), rep=rep[order], size=size[order], jaccard=jaccard)
    return {"clusters": len(rep), "jaccard": len(jaccard), "jaccard_every": step}


def _components(
    runner: _Runner,
    n_edges: int,
    stage: Callable[[str, Iterable[int]], dict[int, dict[str, Any]]],
) -> dict[str, Any]:
    """The ``components`` stage: one task with the core's greedy rule or union-find when the
    ``n_edges`` verified pairs are at most ``components_max_edges``; else large-star/small-star
    rounds over edge shards until a round changes nothing, then the kept documents and cluster
    sizes shard by shard. With ``cluster="greedy"`` each shard holds whole components (every
    member is in its root's shard): the verified pairs go to their root's shard
    (``components-gpairs``) and one task per shard runs the greedy rule over them
    (``components-greedy``), so the largest component is decided in one task; the summary's
    ``largest_component`` (and ``mode``) says how large. Both paths write the same ``comp/``
    files and ``r2`` requests. Returns the stage's summary (``mode`` says which ran); the
    distributed path's steps are reported as one stage.

    ``stage(name, indices)`` runs a stage's tasks with ``runner.job``; this puts the edge
    shards' plan (:class:`~textsieve.dask.stages.CCPlan`) in it."""
    job = runner.job
    limit = job.components_max_edges
    if n_edges <= limit:
        return stage("components", [0])[0]
    greedy = job.settings.get("cluster", "greedy") == "greedy"
    t0 = time.perf_counter()
    work, n_parts = job.work, len(job.parts)
    n_sh = max(1, math.ceil(n_edges / max(1, job.components_shard_edges)))
    # the shard files and markers of another shard count are of no use: start the rounds afresh
    plan = {"shards": n_sh, "edges": n_edges}
    plan_path = work.path("cc", "plan.json")
    if not os.path.exists(plan_path) or _load_json(plan_path) != plan:
        shutil.rmtree(work.path("cc"), ignore_errors=True)
        for m in work.glob("done", "components-[a-z]*.json"):
            os.unlink(m)
        _save_json(plan_path, plan)
    runner.job = replace(job, cc=CCPlan(shards=n_sh, edges=n_edges))
    names = ["components-init"]
    stage("components-init", range(n_parts))
    rounds = 0
    while True:
        rounds += 1
        if rounds > COMPONENTS_MAX_ROUNDS:
            raise TextsieveError(f"components: no convergence in {COMPONENTS_MAX_ROUNDS} rounds")
        names += [f"components-large-r{rounds:03d}", f"components-small-r{rounds:03d}"]
        large = stage(names[-2], range(n_sh))
        small = stage(names[-1], range(n_sh))
        # a round that changed no edge: every component is a star around its smallest document
        if sum(x["changed"] for x in (*large.values(), *small.values())) == 0:
            break
    runner.job = replace(runner.job, cc=replace(_cc(runner.job), rounds=rounds))
    roots = stage("components-roots", range(n_sh))
    names.append("components-roots")
    largest = None
    if greedy:
        # each component's pairs (and lengths) to its root's shard; the greedy rule per shard
        stage("components-gpairs", range(n_parts))
        decided = stage("components-greedy", range(n_sh))
        names += ["components-gpairs", "components-greedy"]
        largest = max(
            (x["largest_component"] for x in decided.values()),
            key=lambda c: (c["edges"], c["nodes"], -c["root"]),
            default={"edges": 0, "nodes": 0, "root": -1},
        )
    elif job.settings["keep"] == "longest":
        stage("components-lengths", range(n_parts))
        stage("components-reps", range(n_sh))
        names += ["components-lengths", "components-reps"]
    stage("components-parts", range(n_parts))
    clusters = stage("components-clusters", [0])[0]
    names += ["components-parts", "components-clusters"]
    # one line in stats.json -> dask.stages for all the steps
    steps = [runner.report.pop(n) for n in names]
    runner.report["components"] = {
        key: sum(x[key] for x in steps) for key in ("tasks", "ran", "skipped", "seconds")
    }
    runner.report["components"]["seconds"] = round(runner.report["components"]["seconds"], 4)
    runner.report["components"]["rounds"] = rounds
    sampled = "" if clusters["jaccard_every"] == 1 else ", similarities sampled"
    out: dict[str, Any] = {}
    if largest is not None:
        out["largest_component"] = largest
        sampled = (
            f", greedy rule per shard, largest component {largest['edges']:,} edges and "
            f"{largest['nodes']:,} documents in one task{sampled}"
        )
    return {
        **out,
        "edges": n_edges,
        "nodes": sum(x["nodes"] for x in roots.values()),
        "components": sum(x["components"] for x in roots.values()),
        "rounds": rounds,
        "shards": n_sh,
        "mode": f"distributed large-star/small-star, {rounds} rounds, {n_sh} shards, "
        f"{n_edges:,} edges > {limit:,}{sampled}",
        "seconds": time.perf_counter() - t0,
    }
