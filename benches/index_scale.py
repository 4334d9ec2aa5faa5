"""The on-disk dedup index at scale: a corpus added in batches, each timed beside a plain
``textsieve dedup`` of the same batch, then ``check`` / ``query_many`` against the full index.

    python benches/index_scale.py CORPUS.jsonl --batch 1000000 --batches 10 --work DIR
        [--queries 100000] [--query-rounds 2] [--threshold 0.8] [--json OUT.json] [--reuse]

For each batch (the next ``--batch`` lines of CORPUS, written to DIR as a file of its own), in
one run and side by side:

- ``textsieve dedup BATCH -o OUT``: the batch alone (the reference time);
- ``textsieve dedup BATCH -o OUT --index DIR/idx --update``: against the index, then added;
- the plain ``textsieve dedup`` again (``--no-bracket``: not): the add is compared with the mean
  of the runs before and after it, so that a drift of the machine's speed during the minute
  the three take weighs on both sides alike;

each a fresh process. Reported per batch: the wall and CPU time of both (the machine may be
shared: CPU time compares two runs fairly), their ratio (target: within 1.5x), the add time
against the first batch's (target: the 10th within 1.3x of the 1st), peak RSS from ``os.wait4``
(target: at most 2 GB) and its anonymous and file-backed (mapped segments) parts sampled from
``/proc``, and the index's size on disk per document. ``--reference 0,9`` runs the plain
dedup on those batches only (its time hardly varies from batch to batch; the run takes half as
long). The runs are checked: the kept and removed counts of the two runs of a batch add up,
and every document the index run keeps is kept by the plain run.

Then ``--queries`` fresh documents (``gen_dedup_corpus.documents`` with seed 1, whose
duplicates are of themselves, not of the index) and as many documents of the corpus (all
indexed or duplicates of indexed ones) are given to ``check`` and ``query_many`` of the index
opened read-only, in this process: documents per second (target: at least 50,000), and checked:
every corpus document is a duplicate (or empty) and every hit is within the threshold. Each set
is checked and queried ``--query-rounds`` times: the first round of the process also maps the
index's filters and faults in the allocator's first memory (a one-time cost of about a
quarter of that round's time); ``later_rounds`` are what a caller that keeps the index open
sees.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _memory(pid: int) -> tuple[int, int]:
    """(anonymous, file-backed) resident bytes of a process, from /proc (0, 0 when gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
        kb = [int(fields[k].split()[0]) for k in ("RssAnon", "RssFile")]
        return kb[0] * 1024, kb[1] * 1024
    except (OSError, KeyError, ValueError):
        return 0, 0


def run(cmd: list[str]) -> dict:
    """Runs ``cmd``: wall and CPU seconds, peak RSS (all, and its anonymous and file-backed
    parts, sampled every 0.2 s), its --json stats. The machine is shared: CPU time, not wall
    time, is what two runs side by side are compared by."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            anon, file = _memory(p.pid)
            peak[0], peak[1] = max(peak[0], anon), max(peak[1], file)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    assert p.stdout is not None
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    done.set()
    thread.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    secs = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {p.returncode}")
    return {
        "wall_s": secs,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_gb": usage.ru_maxrss * 1024 / 1e9,
        "peak_anon_gb": peak[0] / 1e9,
        "peak_file_gb": peak[1] / 1e9,
        "stats": json.loads(out),
    }


def split(corpus: Path, batch: int, n_batches: int, work: Path):
    """Yields the path of each batch's file (written when asked for, deleted after use)."""
    with open(corpus, "rb") as fh:
        for b in range(n_batches):
            path = work / f"batch{b}.jsonl"
            with open(path, "wb") as out:
                n = 0
                for line in itertools.islice(fh, batch):
                    out.write(line)
                    n += 1
            if n == 0:
                path.unlink()
                return
            yield b, path, n
            path.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--batch", type=int, default=1_000_000)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--queries", type=int, default=100_000)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument(
        "--query-rounds",
        type=int,
        default=2,
        help="times each query set is checked and queried in the one process (default 2)",
    )
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--reference",
        default="all",
        metavar="all|B,B...",
        help="the batches also run by plain textsieve dedup (all: every one)",
    )
    ap.add_argument(
        "--bracket",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run each reference dedup again after the add and compare with the mean of the "
        "two (default; --no-bracket: once, before)",
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="keep DIR/idx as it is (built by an earlier run) and only run the queries",
    )
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    idx = a.work / "idx"
    if idx.exists() and not a.reuse:
        shutil.rmtree(idx)
    exe = [sys.executable, "-m", "textsieve"]
    rows = []
    for b, path, n in split(a.corpus, a.batch, 0 if a.reuse else a.batches, a.work):
        out_plain, out_index = a.work / "out-plain", a.work / "out-index"
        reference = a.reference == "all" or str(b) in a.reference.split(",")
        plain_cmd = [*exe, "dedup", str(path), "-o", str(out_plain), "-q", "--json",
                     "--threshold", str(a.threshold)]  # fmt: skip
        plains = [run(plain_cmd)] if reference else []
        added = run([*exe, "dedup", str(path), "-o", str(out_index), "-q", "--json",
                     "--threshold", str(a.threshold), "--index", str(idx), "--update"])  # fmt: skip
        if reference and a.bracket:
            plains.append(run(plain_cmd))
        plain = plains[0] if plains else None
        si = added["stats"]
        assert si["n_input"] == n and si["n_kept"] + si["n_removed"] == n
        if plain is not None:
            sp = plain["stats"]
            assert sp["n_input"] == n
            assert si["n_removed_within_input"] == sp["n_removed"] or b > 0
            assert si["n_kept"] <= sp["n_kept"]
        info = json.loads(
            subprocess.run(
                [*exe, "index", "info", str(idx), "--json", "--no-verify"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        row = {
            "batch": b,
            "docs": n,
            "add_wall_s": round(added["wall_s"], 2),
            "add_cpu_s": round(added["cpu_s"], 2),
            "add_peak_rss_gb": round(added["peak_rss_gb"], 3),
            "add_peak_anon_gb": round(added["peak_anon_gb"], 3),
            "add_peak_file_gb": round(added["peak_file_gb"], 3),
            "kept": si["n_kept"],
            "removed_vs_index": si["n_removed_vs_index"],
            "index_docs": info["n_docs"],
            "index_segments": info["n_segments"],
            "index_bytes_per_doc": round(info["bytes_per_doc"], 1),
            "load_avg": round(os.getloadavg()[0], 2),
        }
        if plain is not None:
            # the mean of the runs before and after the add (with --bracket): the machine's
            # speed drifts over a minute, and one run before would carry all of the drift
            wall = sum(p["wall_s"] for p in plains) / len(plains)
            cpu = sum(p["cpu_s"] for p in plains) / len(plains)
            row.update(
                dedup_wall_s=round(wall, 2),
                dedup_cpu_s=round(cpu, 2),
                dedup_runs_wall_s=[round(p["wall_s"], 2) for p in plains],
                dedup_runs_cpu_s=[round(p["cpu_s"], 2) for p in plains],
                add_over_dedup_cpu=round(added["cpu_s"] / cpu, 3),
                add_over_dedup_wall=round(added["wall_s"] / wall, 3),
                dedup_peak_rss_gb=round(max(p["peak_rss_gb"] for p in plains), 3),
            )
        first = rows[0] if rows else row
        row["add_cpu_over_first"] = round(row["add_cpu_s"] / first["add_cpu_s"], 3)
        row["add_wall_over_first"] = round(row["add_wall_s"] / first["add_wall_s"], 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result: dict = {"batches": rows}
    if a.queries:
        sys.path.insert(0, str(HERE))
        import textsieve as ts
        from gen_dedup_corpus import documents

        fresh = [t for _, t in documents(a.queries, seed=1)]
        with open(a.corpus, encoding="utf-8") as fh:
            old = [json.loads(line)["text"] for line in itertools.islice(fh, a.queries)]
        with ts.DedupIndex.open(idx, readonly=True, verify=False) as index:
            for name, texts in (("fresh", fresh), ("indexed", old)):
                # the first round of a process also maps the index's filters and grows the
                # allocator's memory; later rounds are what a long-running caller sees
                rounds = []
                for _ in range(a.query_rounds):
                    t0, c0 = time.perf_counter(), time.process_time()
                    checked = index.check(texts)
                    t_check, c_check = time.perf_counter() - t0, time.process_time() - c0
                    t0, c0 = time.perf_counter(), time.process_time()
                    hits = index.query_many(texts)
                    t_query, c_query = time.perf_counter() - t0, time.process_time() - c0
                    assert all(j >= a.threshold for h in hits for _, j in h)
                    if name == "indexed":
                        assert (checked.keep == checked.empty).all()
                        assert all(h or not t.strip() for h, t in zip(hits, texts))
                    rounds.append(
                        {
                            "check_docs_per_s": round(len(texts) / t_check),
                            "check_docs_per_cpu_s": round(len(texts) / c_check),
                            "query_many_docs_per_s": round(len(texts) / t_query),
                            "query_many_docs_per_cpu_s": round(len(texts) / c_query),
                        }
                    )
                q = {
                    "queries": name,
                    "docs": len(texts),
                    **rounds[0],
                    "later_rounds": rounds[1:],
                    "cpus": os.cpu_count(),
                    "load_avg": round(os.getloadavg()[0], 2),
                    "with_hits": sum(1 for h in hits if h),
                    # this process's, so far: the query texts too, and the index's pages
                    "peak_rss_gb": round(
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 3
                    ),
                }
                print(json.dumps(q), flush=True)
                result[f"query_{name}"] = q
    if a.json:
        a.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
