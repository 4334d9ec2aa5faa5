"""The unbounded ("infinity") n-gram of a suffix index on Tiny Shakespeare (nanoGPT split), alone
and interpolated with the best add-k n-gram, in validation nats per character.

    python benches/suffix_lm.py [--text ../shared/data/tinyshakespeare.txt] [--context 256]
        [--svg docs/suffix_lm_shakespeare.svg] [--json]

Split: first 90% of the characters train, last 10% validation (as docs/lm.md). Every validation
character after the first ``order - 1`` is predicted from the validation characters before it (at
most ``--context`` of them; the longest suffix found is far shorter).

- fixed n-gram: ``ts.AddKLM(order, k)`` fitted on train; the best (order, k) of a small grid by
  validation NLL, as docs/lm.md picks its add-k 5-gram;
- unbounded n-gram: ``P(c | ctx) = count(s + c) / count(s)`` for the longest suffix ``s`` of ctx
  found in train (``SuffixIndex.prob_batch``); it is 0 for a character never seen after ``s``,
  so alone its NLL is infinite;
- interpolated: ``lam[k] * P_inf + (1 - lam[k]) * P_fixed``, one weight per bucket of the
  suffix length ``k`` (infini-gram's effective n), fitted on a development split: the suffix
  index and the n-gram are built on the first 90% of train, the weights chosen on the last 10%
  of train, then everything is rebuilt on the whole of train and scored once on validation.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import textsieve as ts

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TEXT = os.path.join(HERE, "..", "..", "shared", "data", "tinyshakespeare.txt")
BUCKETS = [(0, 2), (3, 3), (4, 4), (5, 5), (6, 7), (8, 10), (11, 15), (16, 25), (26, 10**9)]
LAMBDAS = np.linspace(0.0, 0.99, 100)
GRID = [(o, k) for o in (4, 5, 6, 7) for k in (0.003, 0.01, 0.03)]


def fixed_probs(lm: ts.AddKLM, text: str, order: int, start: int) -> np.ndarray:
    return np.array([lm.prob(text[i - order + 1 : i], text[i]) for i in range(start, len(text))])


def infinite_probs(
    index: ts.SuffixIndex, text: str, start: int, context: int
) -> tuple[np.ndarray, np.ndarray]:
    contexts = [text[max(0, i - context) : i] for i in range(start, len(text))]
    tokens = [text[i] for i in range(start, len(text))]
    p, k = index.prob_batch(contexts, tokens)
    return p, k.astype(np.int64)


def bucket_of(k: np.ndarray) -> np.ndarray:
    out = np.zeros(len(k), np.int64)
    for b, (lo, hi) in enumerate(BUCKETS):
        out[(k >= lo) & (k <= hi)] = b
    return out


def fit_lambdas(p_inf: np.ndarray, p_fix: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The weight of each bucket minimising the NLL of its own positions (a grid search)."""
    b = bucket_of(k)
    lam = np.zeros(len(BUCKETS))
    for j in range(len(BUCKETS)):
        m = b == j
        if not m.any():
            continue
        nll = [-np.log(x * p_inf[m] + (1 - x) * p_fix[m]).sum() for x in LAMBDAS]
        lam[j] = LAMBDAS[int(np.argmin(nll))]
    return lam


def mixture_nll(p_inf: np.ndarray, p_fix: np.ndarray, k: np.ndarray, lam: np.ndarray) -> float:
    w = lam[bucket_of(k)]
    return float(-np.log(w * p_inf + (1 - w) * p_fix).mean())


def best_fixed(train: str, val: str) -> tuple[int, float, float, ts.AddKLM]:
    best = None
    for order, k in GRID:
        lm = ts.AddKLM(order=order, k=k, normalize=False).fit([train])
        nll = lm.nll([val])
        if best is None or nll < best[2]:
            best = (order, k, nll, lm)
    assert best is not None
    return best


def run(text: str, context: int) -> dict:
    t0 = time.perf_counter()
    cut = int(len(text) * 0.9)
    train, val = text[:cut], text[cut:]
    order, k, fixed_nll, lm = best_fixed(train, val)
    start = order - 1
    # development split: weights chosen without looking at validation
    dcut = int(len(train) * 0.9)
    dtrain, dev = train[:dcut], train[dcut:]
    dlm = ts.AddKLM(order=order, k=k, vocab=lm.vocab).fit([dtrain])
    dindex = ts.SuffixIndex.build([dtrain])
    dp_inf, dk = infinite_probs(dindex, dev, start, context)
    lam = fit_lambdas(dp_inf, fixed_probs(dlm, dev, order, start), dk)
    # the real run
    t1 = time.perf_counter()
    index = ts.SuffixIndex.build([train])
    t_build = time.perf_counter() - t1
    t1 = time.perf_counter()
    p_inf, kv = infinite_probs(index, val, start, context)
    t_query = time.perf_counter() - t1
    p_fix = fixed_probs(lm, val, order, start)
    check = float(-np.log(p_fix).mean())
    inf_alone = float(-np.log(p_inf).mean()) if (p_inf > 0).all() else math.inf
    mixed = mixture_nll(p_inf, p_fix, kv, lam)
    oracle = mixture_nll(p_inf, p_fix, kv, fit_lambdas(p_inf, p_fix, kv))
    b = bucket_of(kv)
    per_bucket = []
    for j, (lo, hi) in enumerate(BUCKETS):
        m = b == j
        per_bucket.append(
            {
                "k": f"{lo}-{hi}" if hi < 10**9 else f"{lo}+",
                "positions": int(m.sum()),
                "lambda": float(lam[j]),
                "p_inf_zero": float((p_inf[m] == 0).mean()) if m.any() else 0.0,
                "nll_fixed": float(-np.log(p_fix[m]).mean()) if m.any() else 0.0,
                "nll_mixed": float(-np.log(lam[j] * p_inf[m] + (1 - lam[j]) * p_fix[m]).mean())
                if m.any()
                else 0.0,
            }
        )
    return {
        "train_chars": len(train),
        "val_chars": len(val),
        "predicted": len(p_inf),
        "fixed": {"order": order, "k": k, "nll": fixed_nll, "nll_same_positions": check},
        "infinite_alone_nll": inf_alone,
        "infinite_zero_fraction": float((p_inf == 0).mean()),
        "mean_suffix_length": float(kv.mean()),
        "median_suffix_length": float(np.median(kv)),
        "interpolated_nll": mixed,
        "interpolated_nll_weights_fitted_on_validation": oracle,
        "lambdas": lam.tolist(),
        "buckets": per_bucket,
        "build_s": t_build,
        "query_s": t_query,
        "queries_per_s": len(p_inf) / t_query,
        "total_s": time.perf_counter() - t0,
    }


def write_svg(res: dict, path: str) -> None:
    from textsieve.svg import grouped_bar_chart

    f = res["fixed"]
    svg = grouped_bar_chart(
        "Tiny Shakespeare validation, by the longest context found in train",
        [b["k"] for b in res["buckets"]],
        [
            (f"add-k {f['order']}-gram (k={f['k']})", [b["nll_fixed"] for b in res["buckets"]]),
            ("interpolated with the unbounded n-gram", [b["nll_mixed"] for b in res["buckets"]]),
        ],
        xlabel="characters of context matched in train (effective n - 1)",
        ylabel="nats per character",
        subtitle=(
            f"overall: add-k {f['nll']:.3f}, interpolated {res['interpolated_nll']:.3f} nats/char"
        ),
    )
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(svg)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--text", default=DEFAULT_TEXT)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--svg")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not os.path.exists(args.text):
        print(f"{args.text}: not found (see ../shared/data/README.md)", file=sys.stderr)
        return 1
    with open(args.text, encoding="utf-8") as fh:
        text = fh.read()
    res = run(text, args.context)
    if args.svg:
        write_svg(res, args.svg)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    f = res["fixed"]
    print(f"train {res['train_chars']:,} chars, validation {res['val_chars']:,} chars")
    print(f"best add-k n-gram: order {f['order']}, k={f['k']}: {f['nll']:.4f} nats/char")
    print(
        f"unbounded n-gram alone: {res['infinite_alone_nll']} nats/char "
        f"({res['infinite_zero_fraction']:.1%} of characters get probability 0); "
        f"mean suffix length {res['mean_suffix_length']:.1f}, median {res['median_suffix_length']:.0f}"
    )
    print(
        f"interpolated (weights fitted on a dev split of train): "
        f"{res['interpolated_nll']:.4f} nats/char "
        f"(weights fitted on validation itself: {res['interpolated_nll_weights_fitted_on_validation']:.4f})"
    )
    print(
        f"index build {res['build_s']:.2f}s; {res['predicted']:,} queries in {res['query_s']:.2f}s "
        f"({res['queries_per_s']:,.0f}/s)"
    )
    print("| k | positions | lambda | P_inf = 0 | add-k | interpolated |")
    print("|---|---:|---:|---:|---:|---:|")
    for b in res["buckets"]:
        print(
            f"| {b['k']} | {b['positions']:,} | {b['lambda']:.2f} | {b['p_inf_zero']:.1%} | "
            f"{b['nll_fixed']:.3f} | {b['nll_mixed']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
