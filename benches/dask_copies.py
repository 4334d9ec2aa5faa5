"""The Dask engine on a corpus with heavy exact copying, against the local engine.

    python benches/dask_copies.py DIR                      # 20,000 docs, 25% copies of 10 texts
    python benches/dask_copies.py DIR --docs 20000 --copied 0 --workers 2
    PYTHONPATH=OLD python benches/dask_copies.py DIR --module base_distributed   # older code

Writes the corpus to ``DIR/in`` (8 JSONL files; generated once), runs ``textsieve dedup`` and
``dedup_dask`` (``--module``: any module with the same ``dedup_dask``), checks that ``kept.jsonl``,
``removed.jsonl`` and ``pairs.jsonl`` are byte-identical, and prints one JSON line per engine.
The documents are random words (80 to 200); ``--copied`` of them are copies of 10 texts, and
15% of the others are copies of another one with 0 to 30 character edits.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib
import json
import os
import random
import shutil
import subprocess
import sys
import time

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def generate(path: str, n: int, copied: float, seed: int = 7) -> None:
    rng = random.Random(seed)

    def para(n_words: int) -> str:
        return " ".join(
            "".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 9))) for _ in range(n_words)
        )

    def edit(text: str, k: int) -> str:
        chars = list(text)
        for _ in range(k):
            chars[rng.randrange(len(chars))] = rng.choice(LETTERS)
        return "".join(chars)

    boiler = [para(rng.randint(80, 200)) for _ in range(10)]
    texts = [boiler[i % 10] for i in range(int(n * copied))]
    rest = n - len(texts)
    base = [para(rng.randint(80, 200)) for _ in range(int(rest * 0.85))]
    texts += base + [edit(rng.choice(base), rng.randint(0, 30)) for _ in range(rest - len(base))]
    rng.shuffle(texts)
    os.makedirs(path)
    for f in range(8):
        with open(os.path.join(path, f"part{f}.jsonl"), "w") as fh:
            for k, text in enumerate(texts[f::8]):
                fh.write(json.dumps({"id": f"f{f}-{k}", "text": text}) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--copied", type=float, default=0.25)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--module", default="textsieve.distributed")
    args = ap.parse_args()
    inp = os.path.join(args.dir, "in")
    if not os.path.isdir(inp):
        generate(inp, args.docs, args.copied)
    local, out = os.path.join(args.dir, "local"), os.path.join(args.dir, "dask")
    t0 = time.perf_counter()
    # in a process of its own: the workers' peak memory would include the local engine's
    subprocess.run([sys.executable, "-m", "textsieve", "dedup", inp, "-o", local, "-q"], check=True)
    wall = time.perf_counter() - t0
    with open(os.path.join(local, "stats.json")) as fh:
        st = json.load(fh)
    print(json.dumps({"engine": "local", "wall_s": round(wall, 2), "n_pairs": st["n_pairs"],
                      "n_examined": st["n_examined"]}))  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)
    dedup_dask = importlib.import_module(args.module).dedup_dask
    t0 = time.perf_counter()
    st = dedup_dask([inp], out, n_workers=args.workers)
    wall = time.perf_counter() - t0
    dk = st["dask"]
    for name in ("kept.jsonl", "removed.jsonl", "pairs.jsonl"):
        assert filecmp.cmp(os.path.join(local, name), os.path.join(out, name), shallow=False), name
    print(json.dumps({
        "engine": f"dask ({args.module})", "wall_s": round(wall, 2), "n_pairs": st["n_pairs"],
        "n_examined": st["n_examined"],
        "candidate_edges": dk.get("candidate_edges"), "exact_copies": dk.get("exact_copies"),
        "largest_bucket": dk["largest_bucket"],
        "stages_s": {k: v["seconds"] for k, v in dk["stages"].items()},
        "worker_peak_rss_mb": list(dk["worker_peak_rss_mb"].values()),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
