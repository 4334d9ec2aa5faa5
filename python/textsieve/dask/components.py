"""The ``components`` stage: connected components of the candidate edges (the buckets' star
edges and the exact-copy classes' edges), written per partition as ``roots/part-N.npz``
(document, root = the smallest document of its component) for the decide stage, which decides
whole components per task. Up to ``components_max_edges`` edges one task runs the core's
union-find in memory (:func:`_stage_components`); above that, large-star/small-star rounds run
as tasks per edge shard (:func:`_components`). Both write the same files."""

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
from textsieve.dask.kernels import _pack, _part_of, _shard_of, _unpack
from textsieve.dask.stages import CCPlan, Job
from textsieve.dask.workdir import WorkDir, _load_json, _load_npz, _save_json, _save_npz
from textsieve.errors import TextsieveError

if TYPE_CHECKING:
    from textsieve.dask.driver import _Runner

#: Up to this many candidate edges the components stage is one task running the core's
#: union-find in memory (16 bytes per edge for the edge list plus ~40 bytes per distinct
#: document in it: 100 M edges ~ 2-4 GB); above it, distributed large-star/small-star rounds.
COMPONENTS_IN_MEMORY_MAX_EDGES = 100_000_000

#: Candidate edges per shard of the distributed components (one task per shard and step): the
#: number of shards is ``ceil(edges / this)``. A shard's task holds about 100 bytes per edge
#: (both directions of each edge, sorted and deduplicated; measured), about 400 MB at 4 M.
COMPONENTS_SHARD_EDGES = 4_000_000

#: The distributed components give up after this many rounds (a round is a large-star step
#: and a small-star step; they take O(log^2 n) rounds, in practice a handful to about 20).
COMPONENTS_MAX_ROUNDS = 200


# --------------------------------------------------------------------------------------------
# In memory: one task


def _largest(root: np.ndarray) -> dict[str, int]:
    """The component with the most documents (ties: the smallest root), from the root of each
    document: ``{"documents", "root"}`` (``0, -1`` when there is none)."""
    roots, sizes = np.unique(root, return_counts=True)
    if not len(roots):
        return {"documents": 0, "root": -1}
    k = int(np.argmax(sizes))  # the first of the largest: the smallest root
    return {"documents": int(sizes[k]), "root": int(roots[k])}


def _save_roots(work: WorkDir, offsets: np.ndarray, nodes: np.ndarray, root: np.ndarray) -> None:
    """``roots/part-N.npz`` of every partition: its documents in components (sorted) and their
    roots."""
    owner = _part_of(offsets, nodes)
    cuts = np.searchsorted(owner, np.arange(len(offsets) + 1))  # nodes sorted
    for a in range(len(offsets)):
        x, y = cuts[a], cuts[a + 1]
        _save_npz(work.part("roots", a), gid=nodes[x:y], root=root[x:y])


def _stage_components(job: Job, _: int) -> dict[str, Any]:
    work = job.work
    offsets = np.asarray(job.offsets)
    ii, jj = [], []
    for a in range(len(offsets)):
        z = _load_npz(work.part("edges", a))
        ii.append(z["i"])
        jj.append(z["j"])
    i = np.concatenate(ii) if ii else np.empty(0, np.int64)
    j = np.concatenate(jj) if jj else np.empty(0, np.int64)
    if len(i) > job.components_max_edges:
        raise TextsieveError(
            f"{len(i):,} candidate edges: more than the {job.components_max_edges:,} the "
            "in-memory components stage takes (components_max_edges); see docs/distributed.md"
        )
    t0 = time.perf_counter()
    # the core's union-find: roots are the smallest document of each component
    nodes, root = (
        a.astype(np.int64)
        for a in _core.connected_components(i.astype(np.uint64), j.astype(np.uint64))
    )
    _save_roots(work, offsets, nodes, root)
    return {
        "edges": len(i),
        "nodes": len(nodes),
        "components": len(np.unique(root)),
        "largest_component": _largest(root),
        "mode": f"in memory, {len(i):,} edges <= {job.components_max_edges:,}",
        "seconds": time.perf_counter() - t0,
    }


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


def _cc(job: Job) -> CCPlan:
    """The edge shards' plan, which :func:`_components` sets before the distributed steps."""
    if job.cc is None:
        raise TextsieveError("components: the distributed steps run without a plan")
    return job.cc


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
    """A partition's candidate edges, routed to the shards of the first large-star step."""
    z = _load_npz(job.work.part("edges", a))
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


def _stage_cc_roots(job: Job, s: int) -> dict[str, Any]:
    """After convergence: each centre (a component's smallest document) in this shard lists its
    members; ``(document, root)`` go to the document's partition. Records the largest
    component here."""
    work, n = job.work, _cc(job).shards
    offsets = np.asarray(job.offsets)
    rows = _gather(work, f"small-r{_cc(job).rounds:03d}", n, s, _EDGE_DTYPE)
    nodes, root = _star_roots(rows["u"].astype(np.int64), rows["v"].astype(np.int64))
    owner = _part_of(offsets, nodes)
    _route(work, "roots", s, owner, len(offsets), _ROOT_DTYPE, node=nodes, root=root)
    return {
        "nodes": len(nodes),
        "components": len(_group_starts(root)),
        "largest_component": _largest(root),
    }


def _stage_cc_parts(job: Job, a: int) -> dict[str, Any]:
    """A partition's documents in components and their roots (``roots/part-N.npz``, as the
    in-memory path writes it)."""
    work = job.work
    rows = _gather(work, "roots", _cc(job).shards, a, _ROOT_DTYPE)
    order = np.argsort(rows["node"], kind="stable")
    _save_npz(
        work.part("roots", a),
        gid=rows["node"][order].astype(np.int64),
        root=rows["root"][order].astype(np.int64),
    )
    return {"nodes": len(rows)}


def _components(
    runner: _Runner,
    n_edges: int,
    stage: Callable[[str, Iterable[int]], dict[int, dict[str, Any]]],
) -> dict[str, Any]:
    """The ``components`` stage: one task with the core's union-find when the ``n_edges``
    candidate edges are at most ``components_max_edges``; else large-star/small-star rounds over
    edge shards until a round changes nothing, then each component's members, from its root's
    shard, to their partitions. Both paths write the same ``roots/`` files. Returns the stage's
    summary (``mode`` says which ran, ``largest_component`` the component with the most
    documents); the distributed path's steps are reported as one stage.

    ``stage(name, indices)`` runs a stage's tasks with ``runner.job``; this puts the edge
    shards' plan (:class:`~textsieve.dask.stages.CCPlan`) in it."""
    job = runner.job
    limit = job.components_max_edges
    if n_edges <= limit:
        return stage("components", [0])[0]
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
    stage("components-parts", range(n_parts))
    names += ["components-roots", "components-parts"]
    # one line in stats.json -> dask.stages for all the steps
    steps = [runner.report.pop(n) for n in names]
    runner.report["components"] = {
        key: sum(x[key] for x in steps) for key in ("tasks", "ran", "skipped", "seconds")
    }
    runner.report["components"]["seconds"] = round(runner.report["components"]["seconds"], 4)
    runner.report["components"]["rounds"] = rounds
    largest = max(
        (x["largest_component"] for x in roots.values()),
        key=lambda c: (c["documents"], -c["root"]),
        default={"documents": 0, "root": -1},
    )
    return {
        "edges": n_edges,
        "nodes": sum(x["nodes"] for x in roots.values()),
        "components": sum(x["components"] for x in roots.values()),
        "largest_component": largest,
        "rounds": rounds,
        "shards": n_sh,
        "mode": f"distributed large-star/small-star, {rounds} rounds, {n_sh} shards, "
        f"{n_edges:,} edges > {limit:,}",
        "seconds": time.perf_counter() - t0,
    }
