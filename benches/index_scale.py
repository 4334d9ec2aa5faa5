"""The on-disk dedup index at scale: a corpus added in batches, each timed beside a plain
``textsieve dedup`` of the same batch, then ``check`` / ``query_many`` against the full index.

    python benches/index_scale.py CORPUS.jsonl --batch 1000000 --batches 10 --work DIR
        [--queries 100000] [--threshold 0.8] [--json OUT.json]

For each batch (the next ``--batch`` lines of CORPUS, written to DIR as a file of its own), in
one run and side by side:

- ``textsieve dedup BATCH -o OUT``: the batch alone (the reference time);
- ``textsieve dedup BATCH -o OUT --index DIR/idx --update``: against the index, then added;

each a fresh process whose peak RSS is read from ``os.wait4``. Reported per batch: both times,
their ratio (target: within 1.5x), the add time against the first batch's (target: the 10th
within 1.3x of the 1st), peak RSS (target: at most 2 GB), and the index's size on disk per
document. The runs are checked: the kept and removed counts of the two runs of a batch add up,
and every document the index run keeps is kept by the plain run.

Then ``--queries`` fresh documents (``gen_dedup_corpus.documents`` with seed 1, whose
duplicates are of themselves, not of the index) and as many documents of the corpus (all
indexed or duplicates of indexed ones) are given to ``check`` and ``query_many`` of the index
opened read-only, in this process: documents per second (target: at least 50,000), and checked:
every corpus document is a duplicate (or empty) and every hit is within the threshold.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(cmd: list[str]) -> tuple[float, float, dict]:
    """Runs ``cmd``; (seconds, peak RSS in GB, its --json stats)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    secs = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {p.returncode}")
    return secs, usage.ru_maxrss * 1024 / 1e9, json.loads(out)


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
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    idx = a.work / "idx"
    if idx.exists():
        shutil.rmtree(idx)
    exe = [sys.executable, "-m", "textsieve"]
    rows = []
    for b, path, n in split(a.corpus, a.batch, a.batches, a.work):
        out_plain, out_index = a.work / "out-plain", a.work / "out-index"
        plain = run([*exe, "dedup", str(path), "-o", str(out_plain), "-q", "--json",
                     "--threshold", str(a.threshold)])  # fmt: skip
        added = run([*exe, "dedup", str(path), "-o", str(out_index), "-q", "--json",
                     "--threshold", str(a.threshold), "--index", str(idx), "--update"])  # fmt: skip
        sp, si = plain[2], added[2]
        assert sp["n_input"] == si["n_input"] == n
        assert si["n_kept"] + si["n_removed"] == n
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
            "dedup_s": round(plain[0], 2),
            "dedup_peak_rss_gb": round(plain[1], 3),
            "add_s": round(added[0], 2),
            "add_peak_rss_gb": round(added[1], 3),
            "add_over_dedup": round(added[0] / plain[0], 3),
            "kept": si["n_kept"],
            "removed_vs_index": si["n_removed_vs_index"],
            "index_docs": info["n_docs"],
            "index_bytes_per_doc": round(info["bytes_per_doc"], 1),
        }
        row["add_over_first_add"] = round(added[0] / (rows[0]["add_s"] if rows else added[0]), 3)
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
                t0 = time.perf_counter()
                checked = index.check(texts)
                t_check = time.perf_counter() - t0
                t0 = time.perf_counter()
                hits = index.query_many(texts)
                t_query = time.perf_counter() - t0
                assert all(j >= a.threshold for h in hits for _, j in h)
                if name == "indexed":
                    assert (checked.keep == checked.empty).all()
                    assert all(h or not t.strip() for h, t in zip(hits, texts))
                q = {
                    "queries": name,
                    "docs": len(texts),
                    "check_docs_per_s": round(len(texts) / t_check),
                    "query_many_docs_per_s": round(len(texts) / t_query),
                    "with_hits": sum(1 for h in hits if h),
                }
                print(json.dumps(q), flush=True)
                result[f"query_{name}"] = q
    if a.json:
        a.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
