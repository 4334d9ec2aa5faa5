"""Re-run the outside audit's findings (issue 13) against the installed textsieve and print a
Markdown table of today's answers: python benches/audit_hardening.py (needs zstandard; the Dask
rows need dask[distributed]). Each row is one finding; the tests that guard each are in tests/."""

import gzip
import json
import os
import pickle
import random
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import textsieve as ts
import zstandard
from textsieve.dedup import lsh_params

rows = []


def row(item, answer):
    rows.append((item, answer))
    print(f"| {item} | {answer} |", flush=True)


T = Path(tempfile.mkdtemp())


def cli(*a, inp=None, timeout=120):
    r = subprocess.run(
        [sys.executable, "-m", "textsieve", *(x if isinstance(x, bytes) else str(x) for x in a)],
        input=inp,
        capture_output=True,
        timeout=timeout,
    )
    return r.returncode, (r.stderr.decode(errors="replace").strip().splitlines() or [""])[-1][:150]


def err(f):
    try:
        f()
        return "no error"
    except BaseException as e:
        return f"{type(e).__name__}: {str(e)[:110]}"


docs = [f"document number {i % 50} with some words in it" for i in range(400)]
# 1 fork
code = textwrap.dedent("""
import os, textsieve as ts, multiprocessing as mp
docs=[f'doc {i%30} words words' for i in range(300)]
ts.dedup(docs); ts.MinHasher().signatures(docs)
pid=os.fork()
if pid==0:
    r=ts.dedup(docs); os._exit(0 if r.keep.sum()==30 else 3)
_,st=os.waitpid(pid,0)
ctx=mp.get_context('fork')
with ctx.Pool(2) as p: out=p.map(len, [ts.dedup(docs).keep for _ in range(2)])
print(os.WEXITSTATUS(st), out)
""")
r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, text=True)
row(
    "1. fork after a pool call",
    f"child dedup exit {r.stdout.split()[0] if r.stdout else '?'}, fork Pool(2) ok: {r.stdout.strip()} (timeout 60 s: none)",
)
# 2 truncated zstd

lines = b"".join(
    json.dumps({"id": f"d{i}", "text": f"text {i} " * 20}).encode() + b"\n" for i in range(20000)
)
z = zstandard.ZstdCompressor().compress(lines)
(T / "cut.jsonl.zst").write_bytes(z[: len(z) // 2])
row(
    "2. .jsonl.zst cut at 50%",
    "exit {}: {}".format(*cli("dedup", T / "cut.jsonl.zst", "-o", T / "o2")),
)
row(
    "2. same, --on-error skip",
    "exit {}: {}".format(*cli("dedup", T / "cut.jsonl.zst", "-o", T / "o2b", "--on-error", "skip")),
)

rnd = random.Random(1)
txt = "".join(" ".join(str(rnd.random()) for _ in range(8)) + "\n" for _ in range(20000)).encode()
zt = zstandard.ZstdCompressor().compress(txt)
(T / "cut.txt.zst").write_bytes(zt[: len(zt) // 2])
row("2. .txt.zst cut", "exit {}: {}".format(*cli("dedup", T / "cut.txt.zst", "-o", T / "o2c")))
row(
    "2. .jsonl.zst cut, Dask engine",
    "exit {}: {}".format(
        *cli("dedup", T / "cut.jsonl.zst", "-o", T / "o2d", "--engine", "dask", timeout=300)
    ),
)
# 3 unreadable dir: needs a non-root user
row(
    "3. unreadable sub-directory",
    "tested with os.scandir refusing (tests/test_core_reader.py::test_unreadable_directory_is_an_error): an error naming the folder",
)
# 4 outputs mix
(T / "c.jsonl").write_bytes(lines[: lines.index(b"\n", 200000) + 1])
cli("dedup", T / "c.jsonl", "-o", T / "o4")
(T / "o4" / ".kept.jsonl.1.dead.tmp").write_bytes(b"x")
cli("dedup", T / "c.jsonl", "-o", T / "o4", "--compress", "gzip")
row(
    "4. rerun into an OUTDIR (other compression, stale temporaries)",
    ", ".join(sorted(p.name for p in (T / "o4").iterdir())),
)
# 5 surrogate id, non-UTF-8 file name
(T / "s.jsonl").write_text('{"id":"a\\ud800","text":"x y z w"}\n{"id":"b","text":"x y z w"}\n')
rc, m = cli("dedup", T / "s.jsonl", "-o", T / "o5")
row(
    "5. lone-surrogate id (local)",
    f"exit {rc}; removed row: {(T / 'o5' / 'removed.jsonl').read_text().strip()[:80]}",
)
rc, m = cli("dedup", T / "s.jsonl", "-o", T / "o5d", "--engine", "dask", timeout=300)
row(
    "5. lone-surrogate id (Dask)",
    f"exit {rc}; same bytes as local: {(T / 'o5d' / 'removed.jsonl').read_bytes() == (T / 'o5' / 'removed.jsonl').read_bytes()}",
)
bad = os.fsencode(str(T)) + b"/bad\xff.txt"
open(bad, "wb").write(b"a b c\na b c\n")
rc, m = cli("dedup", bad, "-o", T / "o5b")
row(
    "5. non-UTF-8 file name",
    f"exit {rc}; kept: {(T / 'o5b' / 'kept.jsonl').read_text().strip()[:70]}",
)
# 6 big int
(T / "big.jsonl").write_text('{"id": 1, "n": ' + "9" * 5000 + ', "text": "a b c"}\n')
rc, m = cli("dedup", T / "big.jsonl", "-o", T / "o6")
row("6. JSON integer of 5,000 digits", f"exit {rc} (read as valid JSON)")
# 7 pools
code = "import threading, textsieve as ts\nfor n in range(2, 41): ts.dedup(['a b c d']*50, num_threads=n)\nprint(threading.active_count(), len(open('/proc/self/status').read().split('Threads:')[1].split()[0:1]) and open('/proc/self/status').read().split('Threads:')[1].split()[0])"
r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
row(
    "7. num_threads 2..40, OS threads alive after",
    r.stdout.split()[-1] if r.stdout else r.stderr[-100:],
)
# errors
row("num_perm=2**64", err(lambda: ts.MinHasher(num_perm=2**64)))
row(
    "AddKLM(k=2**70) then perplexity",
    err(lambda: ts.AddKLM(order=2, k=2**70).fit(["ab"]).perplexity(["ab"])),
)
row("dedup(num_threads=2**64)", err(lambda: ts.dedup(docs, num_threads=2**64)))
row("normalize_batch(num_threads=-1)", err(lambda: ts.normalize_batch(["a"], num_threads=-1)))
row("AddKLM.sample(seed=-1)", err(lambda: ts.AddKLM(order=2).fit(["abc"]).sample("a", 5, seed=-1)))
row("NgramCounts(-1, v)", err(lambda: ts.NgramCounts(-1, ts.Vocab.from_texts(["ab"]))))
row("normalize(punctuation='\\ud800')", err(lambda: ts.normalize("a", punctuation="\ud800")))
m = ts.AddKLM(order=2).fit(["abc"])
m.save(T / "m.npz")
(T / "t.npz").write_bytes((T / "m.npz").read_bytes()[:100])
row("AddKLM.load(truncated)", err(lambda: ts.AddKLM.load(T / "t.npz")))
(T / "x.jsonl").write_text('{"text":"a"}\n')
for a in (
    ["--num-perm", "100000"],
    ["--seed", str(2**64)],
    ["--shingle", "char:5000"],
    ["--num-perm", "9" * 23],
):
    row(
        f"CLI {' '.join(a)[:40]}",
        "exit {}: {}".format(*cli("dedup", T / "x.jsonl", "-o", T / "ox", *a)),
    )
bomb = gzip.compress(b'{"text": "' + b"a" * (300 << 20) + b'"}\n')
(T / "bomb.jsonl.gz").write_bytes(bomb)
row(
    f"gzip of {len(bomb) / 1e6:.1f} MB expanding to one 300 MB line",
    "exit {}: {}".format(*cli("dedup", T / "bomb.jsonl.gz", "-o", T / "ob")),
)
(T / "bad.jsonl").write_text('{"text":"a b"}\n{"text":5}\n')
row(
    "Dask, an ordinary bad record",
    "exit {}: {}".format(
        *cli("dedup", T / "bad.jsonl", "-o", T / "obd", "--engine", "dask", "-q", timeout=300)
    ),
)
r = subprocess.run(
    f"{sys.executable} -m textsieve ngram demo | head -1",
    shell=True,
    capture_output=True,
    text=True,
)
row("`textsieve ngram demo | head -1`", f"stderr: {r.stderr.strip()[:60]!r}")
row(
    "AddKLM(order=2, k=1e308).fit(['ab']).perplexity",
    err(lambda: ts.AddKLM(order=2, k=1e308).fit(["ab"]).perplexity(["ab"])),
)

row(
    "lsh_params(weights=(nan, 0.5))", err(lambda: lsh_params(0.8, 128, weights=(float("nan"), 0.5)))
)
row("lsh_params(weights=(-1, -1))", err(lambda: lsh_params(0.8, 128, weights=(-1, -1))))
row("lm.prob('a', 'bc')", err(lambda: ts.AddKLM(order=2).fit(["abc"]).prob("a", "bc")))
(T / "d1.jsonl").write_text('{"id":"doc0","text":"a b c d"}\n')
(T / "d2.jsonl").write_text('{"id":"doc0","text":"a b c d"}\n')
cli("dedup", T / "d1.jsonl", T / "d2.jsonl", "-o", T / "od")
row("ids repeated across inputs", json.load(open(T / "od" / "stats.json"))["warnings"][0][:90])
row("Unicode tables", f"ts.UNICODE_VERSION = {ts.UNICODE_VERSION}")
row(
    "exception family",
    ", ".join(
        c.__name__ for c in (ts.InvalidArgumentError, ts.CorruptDataError, ts.UnknownTokenError)
    )
    + f"; pickle round trip: {type(pickle.loads(pickle.dumps(ts.InvalidArgumentError('x')))).__name__}",
)
