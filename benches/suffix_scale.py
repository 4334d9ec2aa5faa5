"""The suffix index at scale: build time and memory against pydivsufsort (libdivsufsort) on the
same bytes, exact substring dedup of a JSONL corpus end to end, and the batch query rate.

    python benches/suffix_scale.py build   --jsonl CORPUS --mb 100 [--repeat 1]
    python benches/suffix_scale.py dedup   --jsonl CORPUS [--min-length 100] [--check-mb 10]
    python benches/suffix_scale.py queries --jsonl CORPUS --index DIR [--n 100000]

``build``: the first ``--mb`` MB of the corpus's texts, each followed by the byte 0xFF, are
sorted by textsieve (libsais through ``SuffixIndex``) and by ``pydivsufsort.divsufsort`` on the
identical bytes, each in a fresh child process, timed around the sort alone; peak memory is the
child's peak RSS above its RSS before the sort, per corpus byte. The two suffix arrays are
compared element by element (they must be equal).

``dedup``: ``textsieve substrings CORPUS -o OUT --min-length L --json`` as a child process (wall
time and peak RSS from ``RUSAGE_CHILDREN`` of a fresh launcher); then the reference
(``textsieve.reference.suffix.repeated_spans``) on the first ``--check-mb`` MB of the corpus
against ``textsieve.repeated_spans`` on the same documents.

``queries``: builds the index of the corpus into ``--index`` (once), then times ``count_batch``
and ``next_counts_batch`` over ``--n`` substrings of the corpus's documents (5 to 40
characters, seeded), with 1 thread and with every core (wall time, and the process's CPU time:
on a shared machine the threads may get less than a core each), checking 20 counts against a
scan of the corpus bytes and 20 ``next_counts`` against a scan.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import numpy as np


def read_texts(path: str, max_bytes: int | None) -> list[str]:
    texts, size = [], 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            t = json.loads(line)["text"]
            texts.append(t)
            size += len(t.encode("utf-8")) + 1
            if max_bytes is not None and size >= max_bytes:
                break
    return texts


def rss_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds() -> float:
    """User and system CPU time of this process so far (on a shared machine, what a run got)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child_build(kind: str, path: str, mb: float, out: str) -> None:
    texts = read_texts(path, int(mb * 1e6))
    data = b"".join(t.encode("utf-8") + b"\xff" for t in texts)
    n = len(data)
    if kind == "textsieve":
        from textsieve import _core

        b = _core.SuffixBuilderCore()
        b.add_texts(texts)
        del texts
        base = rss_kb("VmRSS")
        t0 = time.perf_counter()
        core = b.finish()
        secs = time.perf_counter() - t0
        peak = rss_kb("VmHWM")
        sa = core.suffix_array()
    else:
        import pydivsufsort

        del texts
        arr = np.frombuffer(data, dtype=np.uint8).copy()  # pydivsufsort refuses read-only
        base = rss_kb("VmRSS")
        t0 = time.perf_counter()
        sa = pydivsufsort.divsufsort(arr)
        secs = time.perf_counter() - t0
        peak = rss_kb("VmHWM")
    np.save(out, sa.astype(np.int64, copy=False))
    json.dump(
        {"kind": kind, "bytes": n, "seconds": secs, "extra_peak_bytes": (peak - base) * 1024},
        sys.stdout,
    )


def run_child(args: list[str]) -> dict:
    r = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if r.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{r.stderr}")
    return json.loads(r.stdout)


def bench_build(ns: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows: dict[str, dict] = {}
        for _ in range(ns.repeat):  # alternated, the fastest of each kept
            for kind in ("textsieve", "pydivsufsort"):
                res = run_child(
                    ["_child", kind, ns.jsonl, str(ns.mb), os.path.join(tmp, f"{kind}.npy")]
                )
                if kind not in rows or res["seconds"] < rows[kind]["seconds"]:
                    rows[kind] = res
        a = np.load(os.path.join(tmp, "textsieve.npy"), mmap_mode="r")
        b = np.load(os.path.join(tmp, "pydivsufsort.npy"), mmap_mode="r")
        equal = bool(a.shape == b.shape and np.array_equal(a, b))
    n = rows["textsieve"]["bytes"]
    print(f"{n / 1e6:,.1f} MB (texts of {ns.jsonl}, 0xFF after each), suffix arrays equal: {equal}")
    print("| sorter | seconds | MB/s | extra peak memory, bytes per input byte |")
    print("|---|---:|---:|---:|")
    for kind, r in rows.items():
        print(
            f"| {kind} | {r['seconds']:.2f} | {n / 1e6 / r['seconds']:.1f} | "
            f"{r['extra_peak_bytes'] / n:.2f} |"
        )
    ratio = rows["pydivsufsort"]["seconds"] / rows["textsieve"]["seconds"]
    print(f"textsieve is {ratio:.2f}x faster than pydivsufsort")
    if not equal:
        raise SystemExit("the suffix arrays differ")


LAUNCHER = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
secs = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"rc": r.returncode, "seconds": secs, "peak_rss": peak,
                  "stdout": r.stdout, "stderr": r.stderr[-2000:]}))
"""


def bench_dedup(ns: argparse.Namespace) -> None:
    import textsieve as ts
    from textsieve.reference import suffix as ref

    size = os.path.getsize(ns.jsonl)
    with tempfile.TemporaryDirectory(dir=ns.workdir) as tmp:
        out = os.path.join(tmp, "out")
        cmd = [
            sys.executable,
            "-m",
            "textsieve",
            "substrings",
            ns.jsonl,
            "-o",
            out,
            "--min-length",
            str(ns.min_length),
            "--json",
        ]
        r = json.loads(
            subprocess.run(
                [sys.executable, "-c", LAUNCHER, *cmd], capture_output=True, text=True, check=True
            ).stdout
        )
        if r["rc"] != 0:
            raise SystemExit(f"textsieve substrings failed: {r['stderr']}")
        stats = json.loads(r["stdout"])
        with open(os.path.join(out, "cleaned.jsonl"), "rb") as fh:
            n_lines = sum(1 for _ in fh)
    print(
        f"textsieve substrings {ns.jsonl} ({size / 1e9:.2f} GB, {stats['n_documents']:,} docs) "
        f"--min-length {ns.min_length}: {r['seconds']:.1f} s wall, peak RSS "
        f"{r['peak_rss'] / 1e9:.2f} GB ({r['peak_rss'] / stats['text_bytes']:.2f} bytes per text "
        f"byte); {stats['n_spans']:,} spans, {stats['removed_fraction']:.2%} of the text removed"
    )
    print(f"in-process timings (s): {stats['timings_s']}")
    assert n_lines == stats["n_documents"], (n_lines, stats["n_documents"])
    texts = read_texts(ns.jsonl, int(ns.check_mb * 1e6))
    t0 = time.perf_counter()
    want = ref.repeated_spans(texts, ns.min_length, "later")
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = [tuple(s) for s in ts.repeated_spans(texts, ns.min_length, "later")]
    t_ts = time.perf_counter() - t0
    ok = got == want
    print(
        f"check on the first {ns.check_mb:g} MB ({len(texts):,} docs): textsieve == reference: "
        f"{ok} ({len(want):,} spans; reference {t_ref:.1f} s, textsieve {t_ts:.2f} s)"
    )
    if not ok:
        raise SystemExit("textsieve and the reference differ")


def bench_queries(ns: argparse.Namespace) -> None:
    import textsieve as ts
    from textsieve.io import CorpusReader

    if os.path.exists(ns.index):
        index = ts.SuffixIndex.open(ns.index)
    else:
        t0 = time.perf_counter()
        index = ts.SuffixIndex.build(CorpusReader([ns.jsonl]), ns.index, show_progress=False)
        print(f"built {ns.index} in {time.perf_counter() - t0:.1f} s")
    rng = random.Random(0)
    queries = []
    while len(queries) < ns.n:
        d = index.document(rng.randrange(index.n_docs))
        if len(d) < 45:
            continue
        i = rng.randrange(len(d) - 41)
        queries.append(d[i : i + rng.randint(5, 40)])
    print(
        f"index: {index.n_bytes / 1e9:.2f} GB, {index.n_docs:,} docs, "
        f"{index.position_bytes}-byte positions; {len(queries):,} queries"
    )
    print("| query | threads | queries/s | queries per CPU second |")
    print("|---|---:|---:|---:|")
    counts = nexts = None
    for name, fn in (
        ("count_batch", index.count_batch),
        ("next_counts_batch", index.next_counts_batch),
    ):
        for threads in (1, os.cpu_count() or 1):
            fn(queries, num_threads=threads)  # untimed: the index's pages read in first
            cpu0, t0 = cpu_seconds(), time.perf_counter()
            res = fn(queries, num_threads=threads)
            secs, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
            print(
                f"| {name} | {threads} | {len(queries) / secs:,.0f} | {len(queries) / cpu:,.0f} |"
            )
            if name == "count_batch":
                counts = res
            else:
                nexts = res
    with open(os.path.join(ns.index, "text.bin"), "rb") as fh:
        corpus = fh.read()
    for q, c in list(zip(queries, counts.tolist()))[:20]:
        pat, n, at = q.encode(), 0, -1
        while (at := corpus.find(pat, at + 1)) >= 0:
            n += 1
        assert n == c, (q, n, c)
    checked = 0
    for q, nc in zip(queries, nexts):
        if nc.length != len(q) or nc.total > 20_000:
            continue  # (every query occurs; the scan below is for a modest number of places)
        pat, follow, at = q.encode(), {}, -1
        while (at := corpus.find(pat, at + 1)) >= 0:
            nxt = corpus[at + len(pat) : at + len(pat) + 4]
            if nxt[:1] not in (b"", b"\xff"):
                c = nxt.decode("utf-8", errors="ignore")[:1]
                follow[c] = follow.get(c, 0) + 1
        assert follow == nc.counts, (q, follow, nc.counts)
        checked += 1
        if checked == 20:
            break
    print(f"20 counts and {checked} next_counts checked against a scan of the corpus bytes")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child_build(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    b = sub.add_parser("build")
    b.add_argument("--jsonl", required=True)
    b.add_argument("--mb", type=float, default=100)
    b.add_argument("--repeat", type=int, default=1)
    d = sub.add_parser("dedup")
    d.add_argument("--jsonl", required=True)
    d.add_argument("--min-length", type=int, default=100)
    d.add_argument("--check-mb", type=float, default=10)
    d.add_argument("--workdir")
    q = sub.add_parser("queries")
    q.add_argument("--jsonl", required=True)
    q.add_argument("--index", required=True)
    q.add_argument("--n", type=int, default=100_000)
    ns = ap.parse_args()
    {"build": bench_build, "dedup": bench_dedup, "queries": bench_queries}[ns.what](ns)


if __name__ == "__main__":
    main()
