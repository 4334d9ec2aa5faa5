"""What the Dask benches share: random text, edits, the corpus written as 8 JSONL shards, and a
run of both engines on it with their outputs compared byte for byte."""

from __future__ import annotations

import filecmp
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def words(rng: random.Random, n: int) -> str:
    """``n`` random words of 2 to 9 letters."""
    return " ".join(
        "".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 9))) for _ in range(n)
    )


def edit(rng: random.Random, text: str, k: int) -> str:
    """``text`` with ``k`` characters replaced by random letters."""
    chars = list(text)
    for _ in range(k):
        chars[rng.randrange(len(chars))] = rng.choice(LETTERS)
    return "".join(chars)


def write_shards(path: str, texts: list[str]) -> None:
    """``texts`` as 8 JSONL files ``part0.jsonl`` ... in ``path`` (created), ids ``fF-K``."""
    os.makedirs(path)
    for f in range(8):
        with open(os.path.join(path, f"part{f}.jsonl"), "w") as fh:
            for k, text in enumerate(texts[f::8]):
                fh.write(json.dumps({"id": f"f{f}-{k}", "text": text}) + "\n")


def both_engines(
    inp: str, workdir: str, workers: int, dedup_dask: Callable[..., dict[str, Any]]
) -> tuple[dict[str, Any], float, dict[str, Any], float]:
    """``(local stats, seconds, dask stats, seconds)`` of ``textsieve dedup`` (in a process of its
    own: the workers' peak memory would include the local engine's) and ``dedup_dask`` on
    ``inp``, after checking that their kept, removed and pairs files are the same bytes."""
    local, out = os.path.join(workdir, "local"), os.path.join(workdir, "dask")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "textsieve", "dedup", inp, "-o", local, "-q"], check=True)
    local_s = time.perf_counter() - t0
    with open(os.path.join(local, "stats.json")) as fh:
        local_stats = json.load(fh)
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    dask_stats = dedup_dask([inp], out, n_workers=workers)
    dask_s = time.perf_counter() - t0
    for name in ("kept.jsonl", "removed.jsonl", "pairs.jsonl"):
        assert filecmp.cmp(os.path.join(local, name), os.path.join(out, name), shallow=False), name
    return local_stats, local_s, dask_stats, dask_s
