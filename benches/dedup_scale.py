"""``textsieve dedup`` end to end, as a user runs it, at growing corpus sizes, against the bare
MinHash signature kernel on the same texts.

    python benches/dedup_scale.py --docs 50000 250000 [--kind mixed] [--seed 0]
        [--doc-bytes 1000] [--dup-rate 0.24] [--threshold 0.8] [--threads N]
        [--timeout 1800] [--repeat 1] [--workdir DIR] [--json]

For each size: generates the corpus with ``gen_dedup_corpus.py`` (deterministic), runs
``textsieve dedup CORPUS -o OUT -q --json`` as a child process and measures its wall time and peak
RSS (through a small fresh launcher process reading ``RUSAGE_CHILDREN``, so the figure is that
run's own, not the benchmark process's nor the largest of all runs); then, in
another child, loads the texts from the JSONL and times only
``textsieve.MinHasher(num_perm=128, seed=1).signatures(texts)`` (same ``--threads``). Checks the
output: ``stats.json`` has ``n_input`` = documents written = ``n_kept + n_removed``, and
``kept.jsonl`` / ``removed.jsonl`` have that many lines. A run past ``--timeout`` is killed and
reported as ``timeout``; one killed by SIGKILL from elsewhere (the OOM killer, usually) as
``killed (SIGKILL, OOM?)``; the other sizes still run. ``--repeat R`` makes R pairs of runs, each
end-to-end run followed by a kernel run (the machine's speed drifts, so the two are measured
side by side), and reports the fastest of each (and the largest peak RSS); the JSON rows list
every run.

Prints a Markdown table (or, with ``--json``, the rows as a JSON list): docs, MB, end-to-end
seconds, MB/s, peak RSS, kernel seconds, ratio (fastest end-to-end / fastest kernel), the median
of the pairs' ratios, documents removed, the in-process read / dedup / write split from
``stats.json``, and the status. ``--workdir`` keeps the
corpora and outputs there; by default a temporary folder is used and removed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

try:
    from .gen_dedup_corpus import KINDS, generate
except ImportError:  # run as a script
    sys.path.insert(0, os.path.dirname(__file__))
    from gen_dedup_corpus import KINDS, generate  # type: ignore[no-redef]

NUM_PERM = 128
SEED = 1

KERNEL = """\
import json, os, sys, time
import textsieve
path, threads = sys.argv[1], int(sys.argv[2]) or None
with open(path, "rb") as fh:
    texts = [json.loads(line)["text"] for line in fh if line.strip()]
mh = textsieve.MinHasher(num_perm=int(sys.argv[3]), seed=int(sys.argv[4]))
t0 = time.perf_counter()
sig = mh.signatures(texts, num_threads=threads)
t = time.perf_counter() - t0
core = textsieve._core.__file__
print(json.dumps({"kernel_s": t, "n": len(texts), "shape": list(sig.shape),
                  "textsieve": textsieve.__file__, "core": core,
                  "core_mtime": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(
                      os.path.getmtime(core)))}))
"""


def textsieve_command() -> list[str]:
    """The ``textsieve`` console script of this interpreter's environment, as a user runs it."""
    here = os.path.join(os.path.dirname(sys.executable), "textsieve")
    if os.path.isfile(here) and os.access(here, os.X_OK):
        return [here]
    found = shutil.which("textsieve")
    return [found] if found else [sys.executable, "-m", "textsieve"]


# Runs one command and reports its wall time and its own peak RSS. A child's ru_maxrss includes
# the memory of the process it was forked from (Linux counts the pre-exec image), so the command
# is started from this small, fresh interpreter rather than from the benchmark process.
LAUNCHER = """\
import json, os, resource, signal, subprocess, sys, threading, time
timeout, out, err, cmd = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
timed_out = threading.Event()
with open(out, "wb") as o, open(err, "wb") as e:
    t0 = time.perf_counter()
    try:
        p = subprocess.Popen(cmd, stdout=o, stderr=e, start_new_session=True)
    except OSError as exc:
        e.write(f"cannot run {cmd[0]}: {exc}\\n".encode())
        print(json.dumps({"rc": 127, "wall_s": 0.0, "timed_out": False, "maxrss": None}))
        sys.exit()
    def kill():
        timed_out.set()
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    timer = threading.Timer(timeout, kill)
    timer.start()
    rc = p.wait()
    wall = time.perf_counter() - t0
    timer.cancel()
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
scale = 1 if sys.platform == "darwin" else 1024
print(json.dumps({"rc": rc, "wall_s": wall, "timed_out": timed_out.is_set(),
                  "maxrss": ru.ru_maxrss * scale}))
"""


def run_measured(cmd: list[str], timeout: float, stdout: str, stderr: str) -> dict[str, Any]:
    """Run ``cmd`` (through the launcher); its wall time, peak RSS in bytes and how it ended."""
    report = stdout + ".launcher"
    launcher = [sys.executable, "-c", LAUNCHER, str(timeout), stdout, stderr, *cmd]
    proc = None
    try:
        with open(report, "wb") as out:
            proc = subprocess.Popen(launcher, stdout=out, stderr=out, start_new_session=True)
            try:
                proc.wait(timeout + 120)
            except subprocess.TimeoutExpired:  # the launcher hung: should not happen
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        with open(report, encoding="utf-8") as fh:
            res = json.loads(fh.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError) as exc:
        rc = proc.returncode if proc is not None else None
        status = f"launcher failed (rc {rc}): {exc}"
        return {"status": status, "rc": None, "wall_s": None, "maxrss": None}
    finally:
        try:
            os.remove(report)
        except OSError:
            pass
    rc = res["rc"]
    if res["timed_out"]:
        status = f"timeout (> {timeout:g}s)"
    elif rc == -signal.SIGKILL:
        status = "killed (SIGKILL, OOM?)"
    elif rc < 0:
        status = f"killed ({signal.Signals(-rc).name})"
    elif rc:
        status = f"exit {rc}: {_last_line(stderr)}"
    else:
        status = "ok"
    return {"status": status, "rc": rc, "wall_s": res["wall_s"], "maxrss": res["maxrss"]}


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 2000))
            lines = fh.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def count_lines(path: str) -> int:
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            n += chunk.count(b"\n")
    return n


def check_output(outdir: str, n_docs: int) -> tuple[dict[str, Any], list[str]]:
    """``stats.json`` and the problems found comparing it with the input and the output files."""
    problems = []
    try:
        with open(os.path.join(outdir, "stats.json"), encoding="utf-8") as fh:
            stats = json.load(fh)
    except (OSError, ValueError) as exc:
        return {}, [f"stats.json: {exc}"]
    n_in, n_kept, n_removed = stats.get("n_input"), stats.get("n_kept"), stats.get("n_removed")
    if n_in != n_docs:
        problems.append(f"n_input {n_in} != {n_docs} documents written")
    if n_kept is None or n_removed is None or n_kept + n_removed != n_in:
        problems.append(f"n_kept {n_kept} + n_removed {n_removed} != n_input {n_in}")
    for name, want in (("kept.jsonl", n_kept), ("removed.jsonl", n_removed)):
        try:
            got = count_lines(os.path.join(outdir, name))
        except OSError as exc:
            problems.append(f"{name}: {exc}")
            continue
        if got != want:
            problems.append(f"{name}: {got} lines, stats say {want}")
    return stats, problems


def measure(n_docs: int, args: argparse.Namespace, workdir: str) -> dict[str, Any]:
    tag = f"{args.kind}-{n_docs}-s{args.seed}"
    corpus = os.path.join(workdir, f"corpus-{tag}.jsonl")
    outdir = os.path.join(workdir, f"out-{tag}")
    row: dict[str, Any] = {"docs": n_docs, "kind": args.kind, "seed": args.seed}

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"[{n_docs:,} docs] {msg}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    if os.path.exists(corpus) and args.reuse:
        # made by an earlier run with the same arguments (the generator is deterministic)
        info = {"bytes": os.path.getsize(corpus), "exact": 0, "edited": 0, "data": "reused"}
    else:
        info = generate(
            corpus,
            n_docs,
            args.seed,
            args.kind,
            dup_rate=args.dup_rate,
            doc_bytes=args.doc_bytes,
            data=None if args.no_data else (args.data or "auto"),
        )
    row["gen_s"] = round(time.perf_counter() - t0, 2)
    row["bytes"] = info["bytes"]
    row["mb"] = info["bytes"] / 1e6
    row["planted_copies"] = int(info["exact"]) + int(info["edited"])
    row["data"] = info["data"]
    log(f"corpus: {row['mb']:,.1f} MB in {row['gen_s']}s ({row['planted_copies']:,} copies)")

    cmd = textsieve_command() + ["dedup", corpus, "-o", outdir, "-q", "--json"]
    cmd += ["--threshold", str(args.threshold), "--num-perm", str(NUM_PERM), "--seed", str(SEED)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    row["command"] = " ".join(cmd)
    row["loadavg_before"] = []
    kcmd = [sys.executable, "-c", KERNEL, corpus, str(args.threads or 0), str(NUM_PERM)]
    kcmd.append(str(SEED))
    kout = os.path.join(workdir, f"kernel-{tag}")
    row["kernel_runs_s"] = []
    row["kernel_peak_rss_gb"] = None
    row["kernel_status"] = "not run" if args.no_kernel else "ok"

    def end_to_end(rep: int) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        shutil.rmtree(outdir, ignore_errors=True)
        row["loadavg_before"].append(os.getloadavg()[0] if hasattr(os, "getloadavg") else None)
        log(f"textsieve dedup ({rep + 1}/{args.repeat}) ...")
        e2e = run_measured(cmd, args.timeout, outdir + ".stdout", outdir + ".stderr")
        stats: dict[str, Any] = {}
        problems: list[str] = []
        if e2e["status"] == "ok":
            stats, problems = check_output(outdir, n_docs)
            try:
                with open(outdir + ".stdout", encoding="utf-8") as fh:
                    printed = json.load(fh)
                if printed.get("n_input") != stats.get("n_input"):
                    problems.append("--json output disagrees with stats.json")
            except (OSError, ValueError) as exc:
                problems.append(f"--json output: {exc}")
            if problems:
                e2e["status"] = "bad output: " + "; ".join(problems)
        log(
            f"end to end: {e2e['status']}, {_f(e2e['wall_s'], '.1f')}s, "
            f"{_f(e2e['maxrss'] and e2e['maxrss'] / 1e9, '.2f')} GB"
        )
        return e2e, stats, problems

    def kernel(rep: int) -> float | None:
        log(f"signature kernel ({rep + 1}/{args.repeat}) ...")
        k = run_measured(kcmd, args.timeout, kout + ".stdout", kout + ".stderr")
        row["kernel_status"] = k["status"]
        if k["maxrss"] is not None:
            row["kernel_peak_rss_gb"] = max(row["kernel_peak_rss_gb"] or 0, k["maxrss"] / 1e9)
        seconds = None
        if k["status"] == "ok":
            try:
                with open(kout + ".stdout", encoding="utf-8") as fh:
                    kres = json.loads(fh.read().strip().splitlines()[-1])
                seconds = kres["kernel_s"]
                for key in ("textsieve", "core", "core_mtime"):
                    row[key] = kres.get(key)
                if kres["n"] != n_docs:
                    row["kernel_status"] = f"read {kres['n']} texts, not {n_docs}"
                    seconds = None
            except (OSError, ValueError, IndexError, KeyError) as exc:
                row["kernel_status"] = f"no result: {exc}"
        log(f"kernel: {row['kernel_status']}, {_f(k['wall_s'], '.2f')}s with loading")
        return seconds

    # each end-to-end run is followed by a kernel run, so that the machine's drift (tens of
    # percent within an hour on a shared machine) touches both alike; each pair gives a ratio
    runs: list[tuple[dict[str, Any], dict[str, Any], list[str]]] = []
    pair_ratios: list[float] = []
    for rep in range(args.repeat):
        runs.append(end_to_end(rep))
        if runs[-1][0]["status"] != "ok":
            break
        if row["kernel_status"] == "ok" and not args.no_kernel:
            seconds = kernel(rep)
            if seconds is not None:
                row["kernel_runs_s"].append(seconds)
                pair_ratios.append(runs[-1][0]["wall_s"] / seconds)
    ok = [r for r in runs if r[0]["status"] == "ok"]
    e2e, stats, problems = (
        min(ok, key=lambda r: r[0]["wall_s"]) if len(ok) == len(runs) else runs[-1]
    )
    rss = [r[0]["maxrss"] for r in runs if r[0]["maxrss"] is not None]
    row["status"] = e2e["status"]
    row["e2e_s"] = e2e["wall_s"]  # the fastest of the repeats
    row["e2e_runs_s"] = [r[0]["wall_s"] for r in runs]
    row["peak_rss_gb"] = max(rss) / 1e9 if rss else None
    row["mb_per_s"] = row["mb"] / e2e["wall_s"] if e2e["status"] == "ok" else None
    if stats:
        row["n_kept"] = stats.get("n_kept")
        row["n_removed"] = stats.get("n_removed")
        row["n_pairs"] = stats.get("n_pairs")
        row["largest_cluster"] = stats.get("largest_cluster")
        row["timings_s"] = stats.get("timings_s")
        row["problems"] = problems
    row["kernel_s"] = None
    if row["kernel_runs_s"] and row["kernel_status"] == "ok":
        row["kernel_s"] = min(row["kernel_runs_s"])
        if row["status"] == "ok":
            row["ratio"] = row["e2e_s"] / row["kernel_s"]
            row["pair_ratios"] = pair_ratios
            row["pair_ratio_median"] = statistics.median(pair_ratios)

    if not args.workdir:  # a temporary folder: free the disk for the next size
        for p in (corpus, outdir + ".stdout", outdir + ".stderr"):
            if os.path.exists(p):
                os.remove(p)
        shutil.rmtree(outdir, ignore_errors=True)
    return row


def cpu_model() -> str:
    """The CPU's model name and whether it has AVX-512 (the kernel's widest path), from
    ``/proc/cpuinfo``; the platform's processor name elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            info = fh.read()
    except OSError:
        return platform.processor() or "unknown"
    name = next(
        (
            line.split(":", 1)[1].strip()
            for line in info.splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    return f"{name}, {'AVX-512' if ' avx512f' in info else 'no AVX-512'}"


def _f(x: Any, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| docs | MB | end-to-end s | MB/s | peak RSS GB | kernel s | ratio | ratio of pairs | n_removed "
        "| read / dedup / write s | status |"
    )
    lines = [head, "|" + "---:|" * 10 + "---|"]
    for r in rows:
        t = r.get("timings_s") or {}
        split = (
            f"{t['read']:.1f} / {t['dedup']:.1f} / {t['write']:.1f}"
            if {"read", "dedup", "write"} <= t.keys()
            else "-"
        )
        status = r["status"]
        if r.get("kernel_status", "ok") != "ok":
            status += f"; kernel: {r['kernel_status']}"
        lines.append(
            f"| {r['docs']:,} | {r['mb']:,.1f} | {_f(r.get('e2e_s'), '.2f')} "
            f"| {_f(r.get('mb_per_s'), '.2f')} | {_f(r.get('peak_rss_gb'), '.2f')} "
            f"| {_f(r.get('kernel_s'), '.2f')} | {_f(r.get('ratio'), '.2f')} "
            f"| {_f(r.get('pair_ratio_median'), '.2f')} "
            f"| {_f(r.get('n_removed'), ',')} | {split} | {status} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--docs", type=int, nargs="+", default=[50_000, 250_000], help="corpus sizes")
    ap.add_argument("--kind", choices=KINDS, default="mixed", help="corpus shape (mixed)")
    ap.add_argument("--seed", type=int, default=0, help="corpus seed (0)")
    ap.add_argument("--dup-rate", type=float, help="planted copies (generator default by kind)")
    ap.add_argument("--doc-bytes", type=int, default=1000, help="typical document size (1000)")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="use the corpus already in --workdir from an earlier run with the same arguments",
    )
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--data", metavar="DIR", help="data folder (default: ../shared/data if present)")
    g.add_argument("--no-data", action="store_true", help="standard library text only")
    ap.add_argument("--threshold", type=float, default=0.8, help="dedup --threshold (0.8)")
    ap.add_argument("--threads", type=int, help="threads for dedup and kernel (default: all)")
    ap.add_argument(
        "--timeout", type=float, default=1800, help="seconds per child run before it is killed"
    )
    ap.add_argument("--workdir", help="keep corpora and outputs here (default: a temp folder)")
    ap.add_argument("--no-kernel", action="store_true", help="skip the signature kernel runs")
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs of each command; the fastest is reported (1)"
    )
    ap.add_argument("--json", action="store_true", help="print the rows as JSON, not a table")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)
    if any(n < 1 for n in args.docs):
        ap.error("--docs: sizes must be >= 1")
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")

    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
        workdir = args.workdir
    else:
        workdir = tempfile.mkdtemp(prefix="textsieve-dedup-scale-")
    rows = []
    try:
        for n in args.docs:
            rows.append(measure(n, args, workdir))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    if args.json:
        meta = {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "threshold": args.threshold,
            "cpu": cpu_model(),
        }
        print(json.dumps([{**meta, **r} for r in rows], indent=1))
    else:
        print(table(rows))
        print(
            f"\n{args.kind} corpus (seed {args.seed}), threshold {args.threshold}, "
            f"{args.threads or 'all'} thread(s) of {os.cpu_count()} CPUs; ratio = end-to-end s "
            f"/ kernel s (MinHasher({NUM_PERM}, seed={SEED}).signatures only); "
            f"CPU: {cpu_model()}"
        )
        for r in rows:
            if r.get("core"):
                print(
                    f"{r['docs']:,} docs: textsieve from {os.path.dirname(r['textsieve'])} "
                    f"(_core built {r['core_mtime']}); end-to-end runs "
                    f"{', '.join(_f(t, '.2f') for t in r['e2e_runs_s'])} s, kernel runs "
                    f"{', '.join(_f(t, '.2f') for t in r.get('kernel_runs_s', []))} s; "
                    f"load average before the runs "
                    f"{', '.join(_f(x, '.1f') for x in r['loadavg_before'])}"
                )
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
