"""The Dask engine on a corpus with one big near-duplicate cluster, against the local engine.

    python benches/dask_cluster.py DIR                       # 2,000 edited copies + 18,000 others
    python benches/dask_cluster.py DIR --cluster 4000 --others 16000 --max-edits 40 --workers 2
    python benches/dask_cluster.py DIR --input CORPUS_DIR     # any corpus, e.g. gen_dedup_corpus

Writes the corpus to ``DIR/in`` (8 JSONL files; generated once, deterministic): ``--cluster``
copies of one 1 KB text with 1 to ``--max-edits`` (12) random character edits each (all
distinct texts, so no exact-copy class helps; each is within 0.8 of the text, most pairs of them
are within 0.8 of each other), shuffled among ``--others`` unrelated documents. Runs ``textsieve
dedup`` (local engine, in a process of its own) and ``dedup_dask`` (a LocalCluster of
``--workers`` processes), checks that ``kept.jsonl``, ``removed.jsonl`` and ``pairs.jsonl`` are
byte-identical, and prints one JSON line per engine: wall time, the similarities computed
(``n_examined``; for a Dask engine that verified every pair of a bucket, its candidate pairs)
and the largest candidate component decided in one task.
"""

from __future__ import annotations

import argparse
import json
import os
import random

try:
    from ._dask_bench import both_engines, edit, words, write_shards
except ImportError:  # run as a script
    from _dask_bench import both_engines, edit, words, write_shards  # type: ignore[no-redef]


def generate(path: str, n_cluster: int, n_others: int, max_edits: int, seed: int = 12) -> None:
    rng = random.Random(seed)

    def para(n_chars: int) -> str:
        parts: list[str] = []
        while sum(map(len, parts)) + len(parts) < n_chars:
            parts.append(words(rng, 1))
        return " ".join(parts)

    base = para(1000)
    cluster = {base}
    while len(cluster) < n_cluster:
        cluster.add(edit(rng, base, rng.randint(1, max_edits)))
    texts = sorted(cluster) + [para(rng.randint(600, 1400)) for _ in range(n_others)]
    rng.shuffle(texts)
    write_shards(path, texts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--cluster", type=int, default=2_000)
    ap.add_argument("--others", type=int, default=18_000)
    ap.add_argument("--max-edits", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--input", help="dedup this corpus (a file or folder) instead of DIR/in")
    args = ap.parse_args()
    inp = args.input or os.path.join(args.dir, "in")
    if not os.path.exists(inp):
        generate(inp, args.cluster, args.others, args.max_edits)
    from textsieve.dask import dedup_dask

    st_local, wall_local, st, wall = both_engines(inp, args.dir, args.workers, dedup_dask)
    print(json.dumps({"engine": "local", "wall_s": round(wall_local, 2),
                      "n_removed": st_local["n_removed"],
                      "n_examined": st_local["n_examined"]}))  # fmt: skip
    dk = st["dask"]
    stages = dk["stages"]
    verified = stages.get("verify") and dk["candidate_edges"] - dk["exact_copies"]
    print(json.dumps({
        "engine": "dask", "wall_s": round(wall, 2), "n_removed": st["n_removed"],
        # the pairs of reps that the old verify stage checked, or the core's similarities
        "similarities": verified or st["n_examined"],
        "candidate_edges": dk["candidate_edges"],
        "largest_bucket": dk["largest_bucket"],
        "largest_component": dk.get("largest_component") or dk.get("largest_greedy_component"),
        "stages_s": {k: v["seconds"] for k, v in stages.items()},
        "worker_peak_rss_mb": list(dk["worker_peak_rss_mb"].values()),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
