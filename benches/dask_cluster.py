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
import filecmp
import json
import os
import random
import shutil
import subprocess
import sys
import time

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def generate(path: str, n_cluster: int, n_others: int, max_edits: int, seed: int = 12) -> None:
    rng = random.Random(seed)

    def para(n_chars: int) -> str:
        words: list[str] = []
        while sum(map(len, words)) + len(words) < n_chars:
            words.append("".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 9))))
        return " ".join(words)

    def edit(text: str, k: int) -> str:
        chars = list(text)
        for _ in range(k):
            chars[rng.randrange(len(chars))] = rng.choice(LETTERS)
        return "".join(chars)

    base = para(1000)
    cluster = {base}
    while len(cluster) < n_cluster:
        cluster.add(edit(base, rng.randint(1, max_edits)))
    texts = sorted(cluster) + [para(rng.randint(600, 1400)) for _ in range(n_others)]
    rng.shuffle(texts)
    os.makedirs(path)
    for f in range(8):
        with open(os.path.join(path, f"part{f}.jsonl"), "w") as fh:
            for k, text in enumerate(texts[f::8]):
                fh.write(json.dumps({"id": f"f{f}-{k}", "text": text}) + "\n")


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
    local, out = os.path.join(args.dir, "local"), os.path.join(args.dir, "dask")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "textsieve", "dedup", inp, "-o", local, "-q"], check=True)
    wall = time.perf_counter() - t0
    with open(os.path.join(local, "stats.json")) as fh:
        st = json.load(fh)
    print(json.dumps({"engine": "local", "wall_s": round(wall, 2), "n_removed": st["n_removed"],
                      "n_examined": st["n_examined"]}))  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)
    from textsieve.dask import dedup_dask

    t0 = time.perf_counter()
    st = dedup_dask([inp], out, n_workers=args.workers)
    wall = time.perf_counter() - t0
    dk = st["dask"]
    for name in ("kept.jsonl", "removed.jsonl", "pairs.jsonl"):
        assert filecmp.cmp(os.path.join(local, name), os.path.join(out, name), shallow=False), name
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
