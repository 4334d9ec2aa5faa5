"""Distributed (large-star/small-star) vs in-memory (Rust union-find) components of the Dask
engine, on a synthetic graph of candidate edges fed straight to the ``components`` stage.

    python benches/components_graph.py [--chains 200] [--chain-len 5000] [--random 2000000]
        [--shard-edges 4000000 ...] [--workers 2]

The graph: ``--chains`` paths of ``--chain-len`` documents each, numbered at random (long paths
take the most rounds), plus about ``--random`` edges in random components of 2 to 60 documents
(a random tree plus as many extra edges), over 8 partitions. Each run checks that the
distributed path wrote the in-memory path's ``roots/`` files. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np


def graph(rng: np.random.Generator, chains: int, chain_len: int, n_random: int):
    n_chain = chains * chain_len
    # random components: sizes 2..60, a random tree (each node joins an earlier one) + extras
    sizes = []
    total = 0
    while total < n_random:  # ~2 edges per node beyond the first
        s = int(rng.integers(2, 61))
        sizes.append(s)
        total += 2 * s - 2
    sizes = np.array(sizes, np.int64)
    n_docs = n_chain + int(sizes.sum()) + 1000  # and some documents in no pair
    label = rng.permutation(n_docs)  # document numbers in random order
    i, j = [], []
    ids = np.arange(n_chain).reshape(chains, chain_len)
    i.append(ids[:, :-1].ravel())
    j.append(ids[:, 1:].ravel())
    starts = n_chain + np.concatenate([[0], np.cumsum(sizes)[:-1]])
    size_of = np.repeat(sizes, sizes)
    base = np.repeat(starts, sizes)
    pos = np.arange(len(size_of)) - (base - n_chain)
    child = pos > 0
    parent = base[child] + (rng.random(child.sum()) * pos[child]).astype(np.int64)
    i.append(base[child] + pos[child])
    j.append(parent)
    extra = base + (rng.random(len(base)) * size_of).astype(np.int64)
    extra2 = base + (rng.random(len(base)) * size_of).astype(np.int64)
    ok = extra != extra2
    i.append(extra[ok])
    j.append(extra2[ok])
    a, b = label[np.concatenate(i)], label[np.concatenate(j)]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    p = np.unique((lo.astype(np.uint64) << np.uint64(32)) | hi.astype(np.uint64))
    return (
        n_docs,
        (p >> np.uint64(32)).astype(np.int64),
        (p & np.uint64(0xFFFFFFFF)).astype(np.int64),
    )


def _vm_hwm_mb() -> float:
    """This process's peak RSS (``VmHWM``: unlike ``ru_maxrss``, not inherited from the process
    that started it, here the benchmark holding the graph)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chains", type=int, default=200)
    ap.add_argument("--chain-len", type=int, default=5000)
    ap.add_argument("--random", type=int, default=2_000_000)
    ap.add_argument("--shard-edges", type=int, nargs="+", default=[4_000_000, 1_000_000])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--parts", type=int, default=8)
    args = ap.parse_args()

    from distributed import Client, LocalCluster
    from textsieve import distributed as d

    rng = np.random.default_rng(1)
    n_docs, lo, hi = graph(rng, args.chains, args.chain_len, args.random)
    offsets = np.linspace(0, n_docs, args.parts + 1).astype(np.int64)[:-1]
    owner = d._part_of(offsets, lo)
    root = tempfile.mkdtemp(prefix="cc-bench-")
    print(f"{len(lo):,} edges, {n_docs:,} documents, {args.parts} partitions", file=sys.stderr)

    def fresh(name: str) -> d.WorkDir:
        work = d.WorkDir(os.path.join(root, name))
        for a in range(args.parts):
            sel = owner == a
            d._save_npz(work.part("edges", a), i=lo[sel], j=hi[sel])
        return work

    rows = []
    want = None
    for shard_edges in [None, *args.shard_edges]:
        name = "memory" if shard_edges is None else f"lss-{shard_edges}"
        work = fresh(name)
        job = d.Job(
            work=work,
            cwd=os.getcwd(),
            parts=({},) * args.parts,
            reader={},
            settings={},
            num_threads=1,
            n_shards=1,
            components_max_edges=len(lo) if shard_edges is None else 0,
            components_shard_edges=shard_edges or 1,
            offsets=tuple(offsets.tolist()),
        )
        # a fresh cluster per run: the peak RSS is each worker process's since it started
        with (
            LocalCluster(
                n_workers=args.workers,
                threads_per_worker=1,
                dashboard_address=None,
                silence_logs=40,
            ) as cluster,
            Client(cluster) as client,
        ):
            runner = d._Runner(client, job, None)
            t0 = time.perf_counter()
            comp = d._components(runner, len(lo), runner.run)
            secs = time.perf_counter() - t0
            peak = max(client.run(_vm_hwm_mb).values())
        got = {
            f: dict(np.load(work.path("roots", f))) for f in sorted(os.listdir(work.path("roots")))
        }
        if want is None:
            want = got
        else:  # the distributed path wrote the in-memory path's files
            assert got.keys() == want.keys()
            for f in got:
                for k in got[f]:
                    assert np.array_equal(got[f][k], want[f][k]), (f, k)
        rows.append(
            (
                comp["mode"].split(",")[0],
                comp.get("shards", 1),
                comp.get("rounds", "n/a"),
                runner.report["components"]["tasks"],
                secs,
                peak,
            )
        )
        print(comp["mode"], f"{secs:.1f}s", file=sys.stderr)
    shutil.rmtree(root)
    print(f"\n{len(lo):,} edges, {n_docs:,} documents\n")
    print("| path | shards | rounds | tasks | wall time | peak RSS of a worker |")
    print("|---|---|---|---|---|---|")
    for mode, sh, rounds, tasks, secs, peak in rows:
        print(f"| {mode} | {sh} | {rounds} | {tasks} | {secs:.1f} s | {peak:.0f} MB |")


if __name__ == "__main__":
    main()
