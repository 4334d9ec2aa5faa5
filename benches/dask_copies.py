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
import importlib
import json
import os
import random

try:
    from ._dask_bench import both_engines, edit, words, write_shards
except ImportError:  # run as a script
    from _dask_bench import both_engines, edit, words, write_shards  # type: ignore[no-redef]


def generate(path: str, n: int, copied: float, seed: int = 7) -> None:
    rng = random.Random(seed)
    boiler = [words(rng, rng.randint(80, 200)) for _ in range(10)]
    texts = [boiler[i % 10] for i in range(int(n * copied))]
    rest = n - len(texts)
    base = [words(rng, rng.randint(80, 200)) for _ in range(int(rest * 0.85))]
    texts += base + [
        edit(rng, rng.choice(base), rng.randint(0, 30)) for _ in range(rest - len(base))
    ]
    rng.shuffle(texts)
    write_shards(path, texts)


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
    dedup_dask = importlib.import_module(args.module).dedup_dask
    st_local, wall_local, st, wall = both_engines(inp, args.dir, args.workers, dedup_dask)
    print(json.dumps({"engine": "local", "wall_s": round(wall_local, 2),
                      "n_pairs": st_local["n_pairs"],
                      "n_examined": st_local["n_examined"]}))  # fmt: skip
    dk = st["dask"]
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
