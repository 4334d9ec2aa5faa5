"""Corpora for the dedup benches: real text from ``../shared/data`` (skipped when absent) and a
planted near-duplicate corpus built from it, plus the brute-force ground truth."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

EDIT_RATES = (0.01, 0.03, 0.05, 0.10, 0.20)


def data_dir() -> Path | None:
    """``../shared/data`` relative to the repository root, if present."""
    d = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return d if d.is_dir() else None


def shakespeare_paragraphs(min_chars: int = 0) -> list[str] | None:
    d = data_dir()
    if d is None or not (d / "tinyshakespeare.txt").exists():
        return None
    text = (d / "tinyshakespeare.txt").read_text(encoding="utf-8")
    return [p for p in text.split("\n\n") if len(p.strip()) > max(min_chars, 0)]


def manpages() -> list[str] | None:
    d = data_dir()
    if d is None or not (d / "manpages_ja.jsonl").exists():
        return None
    with open(d / "manpages_ja.jsonl", encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


def edit(text: str, rate: float, rng: random.Random) -> str:
    """``round(rate * len)`` random single-character substitutions, insertions or deletions."""
    chars = list(text)
    alphabet = "abcdefghijklmnopqrstuvwxyz ,.'"
    for _ in range(max(1, round(rate * len(chars)))):
        op = rng.randrange(3)
        pos = rng.randrange(len(chars)) if chars else 0
        if op == 0 and chars:
            chars[pos] = rng.choice(alphabet)
        elif op == 1:
            chars.insert(pos, rng.choice(alphabet))
        elif chars:
            del chars[pos]
    return "".join(chars)


def planted(n_originals: int = 1000, copies_per_rate: int = 1, seed: int = 0) -> list[str] | None:
    """Real paragraphs (>= 200 chars) plus edited copies at 1, 3, 5, 10 and 20 percent, shuffled."""
    paras = shakespeare_paragraphs(min_chars=200)
    if paras is None:
        return None
    rng = random.Random(seed)
    base = paras[:n_originals]
    docs = list(base)
    for p in base:
        for rate in EDIT_RATES:
            for _ in range(copies_per_rate):
                docs.append(edit(p, rate, rng))
    rng.shuffle(docs)
    return docs


def true_pairs(docs: list[str], threshold: float, k: int = 5) -> dict[tuple[int, int], float]:
    """Every pair ``i < j`` with exact Jaccard >= threshold over the reference shingle sets, by a
    sparse matrix product (brute force over all pairs)."""
    from scipy import sparse
    from textsieve.reference import dedup as ref

    vocab: dict[str, int] = {}
    rows, cols = [], []
    sizes = np.zeros(len(docs), dtype=np.int64)
    for d, text in enumerate(docs):
        s = ref.shingles(text, k)
        sizes[d] = len(s)
        for sh in s:
            rows.append(d)
            cols.append(vocab.setdefault(sh, len(vocab)))
    x = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.int64), (rows, cols)), shape=(len(docs), max(len(vocab), 1))
    )
    inter = sparse.triu(x @ x.T, k=1).tocoo()
    union = sizes[inter.row] + sizes[inter.col] - inter.data
    jac = inter.data / union
    keep = jac >= threshold
    return {
        (int(i), int(j)): float(v)
        for i, j, v in zip(inter.row[keep], inter.col[keep], jac[keep], strict=True)
    }
