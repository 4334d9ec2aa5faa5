"""Benches of the n-gram model family (``ts.NgramLM``), each figure measured side by side in one
run, each result checked before it is reported.

    python benches/ngram_family.py speed [--copies 8]   estimation against lmplz, scoring
                                                         against kenlm.Model.score
    python benches/ngram_family.py speed --corpus FILE --estimation-only [--repeat 3]
                                                         the same on FILE's lines (documents of
                                                         words separated by spaces)
    python benches/ngram_family.py shakespeare           validation nats per character of every
                                                         smoothing, orders 2-8 (Tiny Shakespeare)

``speed`` needs KenLM's ``lmplz`` (benches/build_lmplz.sh; $LMPLZ or ./.lmplz/bin/lmplz) and the
``kenlm`` module; both read Tiny Shakespeare from ../shared/data (see its README).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import textsieve as ts

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def lmplz_binary() -> str:
    for candidate in (os.environ.get("LMPLZ"), str(ROOT / ".lmplz" / "bin" / "lmplz")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("lmplz")
    if not found:
        sys.exit("lmplz not found: run benches/build_lmplz.sh (or set $LMPLZ)")
    return found


# Runs argv[2:] as a child of this small process and writes the child's peak resident memory
# (KB) to argv[1]. A child started straight from the bench would carry the bench's own peak into
# its figure: Linux keeps a process's peak across exec, and subprocess starts children with
# vfork, whose peak before exec is its parent's.
MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(cmd: list[str], stdin=None, stdout=None) -> tuple[float, float]:
    """(seconds, peak resident MB) of one child process (started through a small one, so that
    the figure is the child's own)."""
    with tempfile.TemporaryDirectory() as tmp:
        peak = Path(tmp) / "peak"
        t = time.perf_counter()
        p = subprocess.run(
            [sys.executable, "-c", MEASURE, str(peak), *cmd],
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.DEVNULL,
        )
        took = time.perf_counter() - t
        if p.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed with status {p.returncode}")
        return took, int(peak.read_text()) / 1024


def read_arpa(path: Path) -> dict[tuple[str, ...], tuple[float, float]]:
    out: dict[tuple[str, ...], tuple[float, float]] = {}
    k = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line or line.startswith("ngram ") or line in ("\\data\\", "\\end\\"):
                continue
            if line.startswith("\\"):
                k = int(line[1 : line.index("-")])
                continue
            # fields are tab-separated and words space-separated (a word may hold other white
            # space, such as U+3000, which `split()` would cut)
            f = line.split("\t")
            words = tuple(f[1].split(" "))
            assert len(words) == k, line
            out[words] = (float(f[0]), float(f[2]) if len(f) > 2 else 0.0)
    return out


FIT = """
import sys, textsieve as ts
with open(sys.argv[1], encoding="utf-8") as fh:
    docs = [line.rstrip("\\n") for line in fh]
ts.NgramLM(int(sys.argv[3]), words=True).fit(docs).to_arpa(sys.argv[2])
"""


def speed(
    copies: int, order: int, source: Path | None = None, scoring: bool = True, repeat: int = 3
) -> None:
    import kenlm

    text = (source or DATA).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip()]
    cut = len(lines) * 9 // 10
    train, evals = lines[:cut] * copies, lines[cut:]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "train.txt"
        corpus.write_text("\n".join(train) + "\n", encoding="utf-8")
        mb = corpus.stat().st_size / 1e6
        name = source.name if source else "Tiny Shakespeare"
        print(f"{name}, words, {copies} copies of the first 90% of lines ({mb:.1f} MB)")
        print(
            f"cores: {os.cpu_count()}; both tools use them all; load average {os.getloadavg()[0]:.1f}"
        )
        theirs, ours = Path(tmp) / "lmplz.arpa", Path(tmp) / "textsieve.arpa"
        lmplz = [lmplz_binary(), "-o", str(order), "-S", "1G", "-T", tmp, "--discount_fallback"]
        # the library (documents read into a list, as fit needs them without a vocabulary) and
        # the command line (the file read twice, never held)
        runs = {
            "lmplz -S 1G": lmplz,
            "NgramLM.fit.to_arpa": [sys.executable, "-c", FIT, str(corpus), str(ours), str(order)],
            "textsieve ngram train": [
                *(sys.executable, "-m", "textsieve", "ngram", "train", "--train", str(corpus)),
                *("--words", "--smoothing", "kneser-ney", "--order", str(order), "-o", str(ours)),
                "-q",
            ],
        }
        # each tool `repeat` times, in turn (so that a change of the machine's load falls on
        # all of them): the best time and the largest peak; every textsieve file is checked
        # against lmplz's (the same n-grams, log10 values within 1e-4)
        times: dict[str, list[float]] = {label: [] for label in runs}
        peaks: dict[str, list[float]] = {label: [] for label in runs}
        a: dict[tuple[str, ...], tuple[float, float]] = {}
        worst = 0.0
        for _ in range(repeat):
            for label, cmd in runs.items():
                if label.startswith("lmplz"):
                    with open(corpus, "rb") as src, open(theirs, "wb") as dst:
                        t, peak = run_measured(cmd, stdin=src, stdout=dst)
                else:
                    t, peak = run_measured(cmd)
                times[label].append(t)
                peaks[label].append(peak)
                if label.startswith("lmplz"):
                    a = a or read_arpa(theirs)
                    continue
                b = read_arpa(ours)
                assert set(a) == set(b), "the two ARPA files hold different n-grams"
                worst = max(
                    worst, max(max(abs(a[g][0] - b[g][0]), abs(a[g][1] - b[g][1])) for g in a)
                )
                assert worst < 1e-4, worst
                ours.unlink()
                del b
        print(f"estimation, {order}-gram modified Kneser-Ney to an ARPA file ({len(a):,} n-grams;")
        print(f"  largest difference of a log10 value {worst:.1e}); best of {repeat} runs each")
        t_lmplz, mem_lmplz = min(times["lmplz -S 1G"]), max(peaks["lmplz -S 1G"])
        for label in runs:
            t, peak = min(times[label]), max(peaks[label])
            line = f"  {label:<22} {t:7.2f} s  {peak:6.0f} MB peak"
            if not label.startswith("lmplz"):
                line += f": {t_lmplz / t:.2f}x the speed, {peak / mem_lmplz:.2f}x the memory"
            print(line)
        print()
        if not scoring:
            return

        model = kenlm.Model(str(theirs))
        lm = ts.NgramLM.from_arpa(theirs)
        sents = evals * 10
        n_tokens = sum(len(s.split()) + 1 for s in sents)

        def best(f, repeat=3):
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                value = f()
                times.append(time.perf_counter() - t)
            return min(times), value

        t_kenlm, want = best(lambda: sum(model.score(s, bos=True, eos=True) for s in sents))
        print(
            f"scoring {len(sents):,} sentences ({n_tokens:,} tokens) with lmplz's {order}-gram ARPA"
        )
        print(f"  kenlm.Model.score loop     {n_tokens / t_kenlm / 1e6:6.2f} M tokens/s")
        # KenLM's query core without the loop: every sentence joined into one call (one <s> and
        # one </s> in all), so Python's cost per call drops out of its figure
        joined = " ".join(sents)
        n_joined = len(joined.split()) + 1
        t_one, _ = best(lambda: model.score(joined, bos=True, eos=True))
        print(
            f"  kenlm, one call for all    {n_joined / t_one / 1e6:6.2f} M tokens/s "
            f"(the loop is {t_kenlm / n_tokens / (t_one / n_joined):.2f}x its time a token)"
        )
        for threads in (1, None):
            lm.num_threads = threads
            t, got = best(lambda: -lm.nll(sents) * n_tokens)
            got_log10 = got / math.log(10)
            assert math.isclose(got_log10, want, rel_tol=1e-6), (got_log10, want)
            label = "1 thread" if threads == 1 else f"{os.cpu_count()} threads"
            print(
                f"  NgramLM.score, {label:<10}  {n_tokens / t / 1e6:6.2f} M tokens/s "
                f"({t_kenlm / t:.1f}x kenlm)"
            )


SMOOTHINGS = [
    ("add-k", {"k": 0.01}),
    ("mle", {}),
    ("witten-bell", {}),
    ("absolute-discount", {"discount": 0.75}),
    ("kneser-ney", {"discount": 0.75}),
    ("kneser-ney", {}),
    ("stupid-backoff", {}),
]


def shakespeare(orders: list[int]) -> None:
    text = DATA.read_text(encoding="utf-8")
    cut = len(text) * 9 // 10
    train, val = text[:cut], text[cut:]
    names = [s + (f" {next(iter(kw.values()))}" if kw else "") for s, kw in SMOOTHINGS]
    names[5] = "modified kneser-ney"
    print("validation nats per character, Tiny Shakespeare (nanoGPT split, raw characters)")
    print("| order | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for order in orders:
        t = time.perf_counter()
        base = ts.NgramLM(order, "kneser-ney", pad=False, normalize=False).fit([train])
        row = []
        for smoothing, kw in SMOOTHINGS:
            nll = base.with_smoothing(smoothing, **kw).nll([val])
            row.append("inf" if math.isinf(nll) else f"{nll:.3f}")
        took = time.perf_counter() - t
        print(f"| {order} | " + " | ".join(row) + f" |   ({took:.0f} s)", flush=True)
    print("\n(stupid backoff is a score, not a probability: its figure is no likelihood)")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="what", required=True)
    q = sub.add_parser("speed")
    q.add_argument("--copies", type=int, default=8)
    q.add_argument("--order", type=int, default=5)
    q.add_argument("--corpus", type=Path, help="a text file to use instead of Tiny Shakespeare")
    q.add_argument("--estimation-only", action="store_true", help="time estimation alone")
    q.add_argument("--repeat", type=int, default=3, help="runs of each estimation (best time)")
    q = sub.add_parser("shakespeare")
    q.add_argument("--orders", default="2,3,4,5,6,7,8")
    args = p.parse_args()
    if args.what == "speed" and args.corpus is not None:
        speed(args.copies, args.order, args.corpus, not args.estimation_only, args.repeat)
        return
    if not DATA.exists():
        sys.exit(f"{DATA} is absent")
    if args.what == "speed":
        speed(args.copies, args.order, None, not args.estimation_only, args.repeat)
    else:
        shakespeare([int(o) for o in args.orders.split(",")])


if __name__ == "__main__":
    main()
