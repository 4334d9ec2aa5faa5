"""Chapter ``likelihood``: a loaded die, its likelihood, and why cross-entropy is the same thing.

A die thrown N times shows face k t_k times. A model q (six probabilities) gives that sequence of
throws the likelihood prod q_k^t_k, so the log-likelihood sum t_k log q_k. It is largest at the
maximum-likelihood estimate q_k = t_k / N. Dividing by -N gives the cross-entropy of the observed
frequencies against q, so minimising cross-entropy and maximising likelihood pick the same q. The
chapter checks that numerically too: gradient ascent on softmax parameters lands on t_k / N.

>>> round(log_likelihood([2, 5, 2, 4, 2, 5], [1 / 6] * 6), 3)
-35.835
>>> round(log_likelihood([2, 5, 2, 4, 2, 5], maximum_likelihood([2, 5, 2, 4, 2, 5])), 3)
-34.116
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from textsieve import svg
from textsieve.workshop._common import (
    ChapterResult,
    Report,
    WorkshopError,
    check_count,
    check_positive,
    emit,
    plain,
    rerun_flags,
    safe_exp,
)
from textsieve.workshop.writers import markdown_table, write_csv, write_text

CHAPTER = "likelihood"
DEFAULT_DIR = "likelihood_workshop_evidence"
FILES = [
    "README.md",
    "die_counts.csv",
    "candidate_models.csv",
    "softmax_ascent.csv",
    "likelihood_cards.md",
    "die_probabilities.svg",
    "softmax_ascent.svg",
]
DEFAULT_COUNTS = (2, 5, 2, 4, 2, 5)


def maximum_likelihood(counts: Sequence[int]) -> list[float]:
    """The maximum-likelihood estimate of a categorical distribution: t_k / N."""
    total = sum(counts)
    return [c / total for c in counts]


def log_likelihood(counts: Sequence[int], probs: Sequence[float]) -> float:
    """sum_k t_k log q_k (natural log): the log-probability of the observed throws, in order."""
    total = 0.0
    for c, q in zip(counts, probs, strict=True):
        if c:
            if q <= 0:
                return -math.inf
            total += c * math.log(q)
    return total


def cross_entropy(counts: Sequence[int], probs: Sequence[float]) -> float:
    """Cross-entropy (nats) of the observed frequencies against ``probs``: -log-likelihood / N."""
    return -log_likelihood(counts, probs) / sum(counts)


def softmax(logits: Sequence[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(v - top) for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


def softmax_ascent(
    counts: Sequence[int], learning_rate: float = 1.0, steps: int = 100
) -> list[dict[str, Any]]:
    """Gradient ascent on the mean log-likelihood over softmax parameters theta, from theta = 0
    (the fair die). The gradient of (1/N) sum t_k log softmax(theta)_k is t_k / N - softmax_k."""
    target = maximum_likelihood(counts)
    theta = [0.0] * len(counts)
    rows = []
    for step in range(steps + 1):
        probs = softmax(theta)
        rows.append(
            {
                "step": step,
                "log_likelihood": log_likelihood(counts, probs),
                "cross_entropy": cross_entropy(counts, probs),
                "probs": probs,
                "max_abs_diff_from_mle": max(
                    abs(p - q) for p, q in zip(probs, target, strict=True)
                ),
            }
        )
        theta = [t + learning_rate * (q - p) for t, q, p in zip(theta, target, probs, strict=True)]
    return rows


def run_likelihood(
    output_dir: str | os.PathLike[str] | None = None,
    *,
    counts: Sequence[int] | str = DEFAULT_COUNTS,
    learning_rate: float = 1.0,
    steps: int = 100,
    quiet: bool = False,
    stream: TextIO | None = None,
) -> ChapterResult:
    """Run the likelihood chapter: write its evidence into ``output_dir`` and print the summary."""
    out = Path(output_dir if output_dir is not None else DEFAULT_DIR)
    counts = _parse_counts(counts)
    learning_rate = check_positive("--learning-rate", learning_rate)
    steps = check_count("--steps", steps, 0, 100_000)
    params = {"counts": list(counts), "learning_rate": plain(learning_rate), "steps": steps}

    n = sum(counts)
    faces = len(counts)
    fair = [1 / faces] * faces
    mle = maximum_likelihood(counts)
    smoothed = [(c + 1) / (n + faces) for c in counts]
    candidates = [("fair", fair), ("add_one_smoothed", smoothed), ("maximum_likelihood", mle)]
    fair_ll, mle_ll = log_likelihood(counts, fair), log_likelihood(counts, mle)
    ascent = softmax_ascent(counts, learning_rate, steps)
    final = ascent[-1]

    summary = {
        "counts": list(counts),
        "throws": n,
        "mle": [round(p, 4) for p in mle],
        "fair_log_likelihood": round(fair_ll, 3),
        "mle_log_likelihood": round(mle_ll, 3),
        "fair_likelihood": float(f"{math.exp(fair_ll):.4g}"),
        "mle_likelihood": float(f"{math.exp(mle_ll):.4g}"),
        "likelihood_ratio": round(safe_exp(mle_ll - fair_ll), 2),
        "fair_cross_entropy": round(cross_entropy(counts, fair), 4),
        "mle_cross_entropy": round(cross_entropy(counts, mle), 4),
        "kl_to_fair": round(cross_entropy(counts, fair) - cross_entropy(counts, mle), 4),
        "ascent_log_likelihood": round(final["log_likelihood"], 3),
        "ascent_max_abs_diff": float(f"{final['max_abs_diff_from_mle']:.3g}"),
    }

    files = [out / name for name in FILES]
    report = Report()
    report.step(1, "Die counts")
    report.line(f"counts={_join(counts)} throws={n}")
    report.line(f"mle={_join(summary['mle'])}")
    report.step(2, "Likelihood of the throws")
    report.line(
        f"fair_log_likelihood={fair_ll:.3f} mle_log_likelihood={mle_ll:.3f}"
        f" likelihood_ratio={summary['likelihood_ratio']}"
    )
    report.step(3, "Cross-entropy = -log-likelihood / N")
    report.line(
        f"fair_cross_entropy={summary['fair_cross_entropy']}"
        f" mle_cross_entropy={summary['mle_cross_entropy']} kl_to_fair={summary['kl_to_fair']}"
    )
    report.step(4, "Gradient ascent on softmax parameters")
    report.line(
        f"steps={steps} learning_rate={plain(learning_rate)}"
        f" log_likelihood={final['log_likelihood']:.3f}"
        f" max_abs_diff_from_mle={summary['ascent_max_abs_diff']:.3g}"
    )
    report.step(5, "Evidence files")
    for path in files:
        report.line(str(path))

    face_names = [str(i + 1) for i in range(faces)]
    write_text(out / "README.md", _readme(params, summary))
    write_csv(
        out / "die_counts.csv",
        ["face", "count", "fair_probability", "mle_probability", "add_one_probability"],
        [
            [face_names[i], counts[i], round(fair[i], 6), round(mle[i], 6), round(smoothed[i], 6)]
            for i in range(faces)
        ],
    )
    prob_cols = [f"p{f}" for f in face_names]
    write_csv(
        out / "candidate_models.csv",
        ["model", *prob_cols, "log_likelihood", "likelihood", "cross_entropy_nats"],
        [
            [
                name,
                *(round(p, 6) for p in probs),
                round(log_likelihood(counts, probs), 6),
                f"{math.exp(log_likelihood(counts, probs)):.6e}",
                round(cross_entropy(counts, probs), 6),
            ]
            for name, probs in candidates
        ],
    )
    write_csv(
        out / "softmax_ascent.csv",
        ["step", "log_likelihood", "cross_entropy", *prob_cols, "max_abs_diff_from_mle"],
        [
            [
                r["step"],
                round(r["log_likelihood"], 6),
                round(r["cross_entropy"], 6),
                *(round(p, 6) for p in r["probs"]),
                f"{r['max_abs_diff_from_mle']:.3e}",
            ]
            for r in ascent
        ],
    )
    write_text(out / "likelihood_cards.md", _cards(counts, candidates, summary))
    write_text(
        out / "die_probabilities.svg",
        svg.grouped_bar_chart(
            "サイコロの確率: 一様と最尤推定",
            face_names,
            [("fair 1/6", fair), ("MLE t_k / N", mle), ("add-one", smoothed)],
            xlabel=f"face (counts {_join(counts)}, N = {n})",
            ylabel="probability",
            subtitle=f"log-likelihood: fair {fair_ll:.3f}, MLE {mle_ll:.3f}",
        ),
    )
    write_text(
        out / "softmax_ascent.svg",
        svg.line_chart(
            "勾配上昇で対数尤度が最尤推定に近づく",
            [
                svg.Series(
                    "softmax ascent",
                    [(r["step"], r["log_likelihood"]) for r in ascent],
                    markers=len(ascent) <= 60,
                ),
                svg.Series(
                    f"MLE {mle_ll:.3f}",
                    [(0, mle_ll), (steps, mle_ll)],
                    color="#2ca02c",
                    dashed=True,
                    markers=False,
                    label_last=False,
                ),
                svg.Series(
                    f"fair {fair_ll:.3f}",
                    [(0, fair_ll), (steps, fair_ll)],
                    color="#7f7f7f",
                    dashed=True,
                    markers=False,
                    label_last=False,
                ),
            ],
            xlabel=f"step (learning rate {plain(learning_rate)}, start = fair die)",
            ylabel="log-likelihood (nats)",
            subtitle="gradient of the mean log-likelihood: t_k / N - softmax(θ)_k",
            value_format="{:.3f}",
        ),
    )
    text = report.text()
    emit(text, quiet, stream)
    return ChapterResult(CHAPTER, out, files, summary, text, params)


def _parse_counts(value: Sequence[int] | str) -> list[int]:
    if isinstance(value, str):
        try:
            counts = [int(part.strip()) for part in value.split(",")]
        except ValueError:
            raise WorkshopError(
                f"--counts must be comma-separated whole numbers such as 2,5,2,4,2,5, got {value!r}"
            ) from None
    else:
        counts = [int(v) for v in value]
    if len(counts) < 2:
        raise WorkshopError(f"--counts needs at least 2 faces, got {len(counts)}")
    if len(counts) > 100 or max(counts) > 10**9:
        raise WorkshopError("--counts takes at most 100 faces of at most 10**9 throws each")
    if any(c < 0 for c in counts):
        raise WorkshopError(f"--counts must not be negative, got {_join(counts)}")
    if sum(counts) == 0:
        raise WorkshopError("--counts must record at least one throw")
    return counts


def _join(values: Sequence[object]) -> str:
    return ",".join(str(v) for v in values)


def _readme(params: dict[str, Any], summary: dict[str, Any]) -> str:
    return f"""# Likelihood workshop: evidence

Written by `textsieve workshop --chapter likelihood`.

## Rerun

```
textsieve workshop --chapter likelihood {rerun_flags(params)}
```

`-o DIR` writes the files elsewhere.

## Results

- {summary["throws"]} throws with counts {summary["counts"]}; the maximum-likelihood estimate is
  t_k / N = {summary["mle"]}.
- Log-likelihood of the throws: fair die {summary["fair_log_likelihood"]}, maximum-likelihood die
  {summary["mle_log_likelihood"]}; the throws are {summary["likelihood_ratio"]} times more likely
  under the estimate.
- Cross-entropy (= -log-likelihood / N): fair {summary["fair_cross_entropy"]} nats, estimate
  {summary["mle_cross_entropy"]} nats; the gap is the KL divergence {summary["kl_to_fair"]}.
- Gradient ascent on softmax parameters from the fair die reaches log-likelihood
  {summary["ascent_log_likelihood"]}, within {summary["ascent_max_abs_diff"]:.3g} of t_k / N.

## Review order

1. `likelihood_cards.md`
2. `die_counts.csv`, `die_probabilities.svg`
3. `candidate_models.csv`
4. `softmax_ascent.csv`, `softmax_ascent.svg`
"""


def _cards(
    counts: Sequence[int],
    candidates: Sequence[tuple[str, Sequence[float]]],
    summary: dict[str, Any],
) -> str:
    n = sum(counts)
    rows = [
        [name, f"{log_likelihood(counts, probs):.3f}", f"{cross_entropy(counts, probs):.4f}"]
        for name, probs in candidates
    ]
    return f"""# Likelihood cards

## Likelihood

The probability a model gives to the data it is shown: for {n} throws with counts {list(counts)},
L(q) = prod q_k^t_k. In model language: how well a language model predicts a training corpus.
Numbers this small ({summary["fair_likelihood"]:.4g} for the fair die) are why everyone works with
logs. See `candidate_models.csv`.

## Log-likelihood and the maximum-likelihood estimate

log L(q) = sum t_k log q_k is largest at q_k = t_k / N = {summary["mle"]}. No other die does
better:

{markdown_table(["model", "log-likelihood", "cross-entropy (nats)"], rows)}
See `die_counts.csv` and `die_probabilities.svg`.

## Cross-entropy is negative log-likelihood

Cross-entropy of the observed frequencies against q is -log L(q) / N, so the q that minimises the
training loss of a classifier or language model is the q that maximises the likelihood of the
training data. The fair die pays {summary["fair_cross_entropy"]} nats per throw, the estimate
{summary["mle_cross_entropy"]}; the difference, {summary["kl_to_fair"]}, is the KL divergence.

## Softmax and gradient ascent

Models produce probabilities through softmax(θ). The gradient of the mean log-likelihood with
respect to θ_k is t_k / N - softmax(θ)_k, "observed minus predicted", the same form as the
gradient of softmax cross-entropy in every language model. Following it from θ = 0 reaches
the estimate (log-likelihood {summary["ascent_log_likelihood"]}). See `softmax_ascent.csv` and
`softmax_ascent.svg`.
"""
