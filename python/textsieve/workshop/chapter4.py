"""Chapter 4: vectors, probability, entropy and gradients, run rather than read.

Four small exercises, each leaving evidence in ``ch04_math_workshop_evidence/``:

1. cosine similarity between a query vector and three topic vectors,
2. a seeded coin-flip simulation whose running rate approaches the true probability,
3. entropy (bits) of a confident and an uncertain prediction, and binary cross-entropy (nats),
4. gradient descent on ``(x - 1.4)^2 + 0.6``.

>>> round(cosine_similarity([1.0, 0.7, 0.2], [1.0, 0.8, 0.1]), 4)
0.9944
>>> gradient_descent(3.5, 0.2, 12)[-1]["x"]
1.404571
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from textsieve import svg
from textsieve.workshop._common import (
    ChapterResult,
    Report,
    WorkshopError,
    check_count,
    check_finite,
    check_positive,
    check_probability,
    emit,
    parse_numbers,
    plain,
    rerun_flags,
)
from textsieve.workshop.writers import markdown_table, write_csv, write_text

CHAPTER = "ch04"
DEFAULT_DIR = "ch04_math_workshop_evidence"
FILES = [
    "README.md",
    "vector_similarity.csv",
    "probability_simulation.csv",
    "gradient_descent.csv",
    "math_cards.md",
    "vector_similarity.svg",
    "probability_simulation.svg",
    "gradient_descent.svg",
]

QUERY_NAME = "ai_math_foundation"
DEFAULT_QUERY = (1.0, 0.7, 0.2)


@dataclass(frozen=True)
class Topic:
    name: str
    vector: tuple[float, ...]
    model_language: str


TOPICS = (
    Topic("vector_similarity", (1.0, 0.8, 0.1), "Embedding and retrieval need similarity."),
    Topic("probability", (0.2, 1.0, 0.7), "Classification confidence needs uncertainty."),
    Topic("gradient_descent", (0.8, 0.2, 1.0), "Training needs a direction of improvement."),
)

# The gradient-descent exercise: loss(x) = (x - TARGET_X)^2 + FLOOR_LOSS, curvature 2.
TARGET_X = 1.4
FLOOR_LOSS = 0.6
CURVATURE = 2.0
CLIP = 1e-9


# --- vectors -------------------------------------------------------------------------------------


def dot(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) != len(b):
        raise WorkshopError(f"vectors differ in length: {len(a)} and {len(b)}")
    return sum(x * y for x, y in zip(a, b, strict=True))


def norm(a: Sequence[float]) -> float:
    return math.sqrt(dot(a, a))


def cosine_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """dot(a, b) / (|a| |b|): 1 for the same direction, 0 for orthogonal vectors."""
    na, nb = norm(a), norm(b)
    if na == 0 or nb == 0:
        raise WorkshopError("cosine similarity is undefined for a zero vector")
    return dot(a, b) / (na * nb)


def euclidean_distance(a: Sequence[float], b: Sequence[float]) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))


def compare_topics(
    query: Sequence[float], topics: Sequence[Topic] = TOPICS
) -> list[dict[str, Any]]:
    """One row per topic (values rounded to 4 places), highest cosine similarity first."""
    rows: list[dict[str, Any]] = []
    for topic in topics:
        rows.append(
            {
                "query": QUERY_NAME,
                "topic": topic.name,
                "dot": round(dot(query, topic.vector), 4),
                "query_norm": round(norm(query), 4),
                "topic_norm": round(norm(topic.vector), 4),
                "cosine_similarity": round(cosine_similarity(query, topic.vector), 4),
                "euclidean_distance": round(euclidean_distance(query, topic.vector), 4),
                "model_language": topic.model_language,
                "_cosine": cosine_similarity(query, topic.vector),
            }
        )
    rows.sort(key=lambda r: -r["_cosine"])  # stable: ties keep the topics' order
    for row in rows:
        del row["_cosine"]
    return rows


# --- probability ---------------------------------------------------------------------------------


def simulate_probability(
    true_probability: float = 0.65, batches: int = 12, trials: int = 20, seed: int = 42
) -> list[dict[str, Any]]:
    """Bernoulli trials in batches; a trial succeeds when ``random() < true_probability``.

    Uses its own ``random.Random(seed)``, which draws the same numbers as ``random.seed(seed)``
    followed by ``random.random()`` without touching the global generator.
    """
    rng = random.Random(seed)
    rows = []
    successes_total = 0
    for batch in range(1, batches + 1):
        successes = sum(1 for _ in range(trials) if rng.random() < true_probability)
        successes_total += successes
        rows.append(
            {
                "batch": batch,
                "batch_trials": trials,
                "batch_successes": successes,
                "batch_rate": round(successes / trials, 4),
                "running_rate": round(successes_total / (batch * trials), 4),
                "expected_probability": round(true_probability, 4),
            }
        )
    return rows


# --- entropy and loss ----------------------------------------------------------------------------


def entropy_bits(probs: Sequence[float]) -> float:
    """Shannon entropy in bits; zero-probability outcomes contribute nothing."""
    return -sum(p * math.log2(p) for p in probs if p > 0)


def binary_cross_entropy(prediction: float, label: int, clip: float = CLIP) -> float:
    """-[y log p + (1 - y) log(1 - p)] in nats, with p clipped to [clip, 1 - clip]."""
    p = min(max(prediction, clip), 1 - clip)
    return -(label * math.log(p) + (1 - label) * math.log(1 - p))


# --- gradient descent ----------------------------------------------------------------------------


def loss(x: float) -> float:
    d = x - TARGET_X
    return d * d + FLOOR_LOSS  # d * d overflows to inf instead of raising


def gradient(x: float) -> float:
    return CURVATURE * (x - TARGET_X)


def gradient_descent(
    start_x: float = 3.5, learning_rate: float = 0.2, steps: int = 12
) -> list[dict[str, Any]]:
    """``steps`` updates x <- x - lr * gradient(x); one row per visited x (steps + 1 rows), values
    rounded to 6 places. Stops early if the values overflow (a divergent learning rate)."""
    rows = []
    x = start_x
    for step in range(steps + 1):
        value, grad = loss(x), gradient(x)
        if not (math.isfinite(x) and math.isfinite(value) and math.isfinite(grad)):
            break
        rows.append(
            {
                "step": step,
                "x": round(x, 6),
                "loss": round(value, 6),
                "gradient": round(grad, 6),
                "learning_rate": learning_rate,
            }
        )
        x = x - learning_rate * grad
    return rows


def regime(learning_rate: float) -> str:
    """How the update behaves, from the curvature: x - 1.4 is multiplied by 1 - lr * 2 each step."""
    factor = 1 - learning_rate * CURVATURE
    if abs(factor) > 1:
        return "diverges"
    if factor == -1:
        return "bounces"
    if factor < 0:
        return "oscillates"
    return "converges"


# --- the chapter ---------------------------------------------------------------------------------


def run_chapter4(
    output_dir: str | os.PathLike[str] | None = None,
    *,
    query: Sequence[float] | str = DEFAULT_QUERY,
    true_probability: float = 0.65,
    batches: int = 12,
    trials: int = 20,
    seed: int = 42,
    learning_rate: float = 0.2,
    steps: int = 12,
    start_x: float = 3.5,
    quiet: bool = False,
    stream: TextIO | None = None,
) -> ChapterResult:
    """Run chapter 4, write its eight evidence files into ``output_dir`` and print the STEP
    summary (unless ``quiet``). Returns what was written and the key numbers."""
    out = Path(output_dir if output_dir is not None else DEFAULT_DIR)
    query_vec = parse_numbers("--query", query, count=len(TOPICS[0].vector))
    if norm(query_vec) == 0:
        raise WorkshopError(
            "--query must not be the zero vector (cosine similarity needs a length)"
        )
    true_probability = check_probability("--true-probability", true_probability)
    batches = check_count("--batches", batches, 1, 100_000)
    trials = check_count("--trials", trials, 1, 100_000)
    if batches * trials > 10_000_000:
        raise WorkshopError("--batches x --trials must be at most 10,000,000")
    seed = int(seed)
    learning_rate = check_positive("--learning-rate", learning_rate)
    steps = check_count("--steps", steps, 0, 100_000)
    start_x = check_finite("--start-x", start_x)

    params = {
        "query": [plain(v) for v in query_vec],
        "true_probability": plain(true_probability),
        "batches": batches,
        "trials": trials,
        "seed": seed,
        "learning_rate": plain(learning_rate),
        "steps": steps,
        "start_x": plain(start_x),
    }

    similarity = compare_topics(query_vec)
    best = similarity[0]
    simulation = simulate_probability(true_probability, batches, trials, seed)
    final_rate = simulation[-1]["running_rate"]
    entropy = {
        "confident_entropy": round(entropy_bits([0.9, 0.1]), 4),
        "uncertain_entropy": round(entropy_bits([0.5, 0.5]), 4),
        "good_loss": round(binary_cross_entropy(0.9, 1), 4),
        "bad_loss": round(binary_cross_entropy(0.2, 1), 4),
    }
    descent = gradient_descent(start_x, learning_rate, steps)
    start, last = descent[0], descent[-1]
    behaviour = regime(learning_rate)

    files = [out / name for name in FILES]
    report = Report()
    report.step(1, "Vector similarity")
    report.line(f"best_match={best['topic']} cosine={best['cosine_similarity']}")
    report.step(2, "Probability simulation")
    report.line(f"final_running_rate={final_rate} expected={round(true_probability, 4)}")
    report.step(3, "Entropy and loss")
    report.line(
        f"confident_entropy={entropy['confident_entropy']}"
        f" uncertain_entropy={entropy['uncertain_entropy']}"
    )
    report.line(f"good_loss={entropy['good_loss']} bad_loss={entropy['bad_loss']}")
    report.step(4, "Gradient descent")
    report.line(f"start_loss={start['loss']} final_x={last['x']} final_loss={last['loss']}")
    if len(descent) < steps + 1:
        report.line(f"note: values overflowed after step {last['step']}; the descent diverged")
    elif behaviour != "converges":
        report.line(_regime_note(learning_rate, behaviour))
    report.step(5, "Evidence files")
    for path in files:
        report.line(str(path))

    summary = {
        "best_match": best["topic"],
        "cosine": best["cosine_similarity"],
        "final_running_rate": final_rate,
        "expected": round(true_probability, 4),
        **entropy,
        "start_loss": start["loss"],
        "final_x": last["x"],
        "final_loss": last["loss"],
        "regime": behaviour if len(descent) == steps + 1 else "diverges",
    }

    _write_evidence(out, params, similarity, simulation, entropy, descent, summary)
    text = report.text()
    emit(text, quiet, stream)
    return ChapterResult(CHAPTER, out, files, summary, text, params)


def _regime_note(learning_rate: float, behaviour: str) -> str:
    half, full = 1 / CURVATURE, 2 / CURVATURE
    if behaviour == "oscillates":
        return (
            f"note: learning_rate={learning_rate} is above 1/curvature={half}:"
            f" x overshoots {TARGET_X} and oscillates around it"
        )
    if behaviour == "bounces":
        return (
            f"note: learning_rate={learning_rate} equals 2/curvature={full}:"
            " x bounces between two points and never settles"
        )
    return (
        f"note: learning_rate={learning_rate} is above 2/curvature={full}:"
        " every step overshoots further and the loss diverges"
    )


def _write_evidence(
    out: Path,
    params: dict[str, Any],
    similarity: list[dict[str, Any]],
    simulation: list[dict[str, Any]],
    entropy: dict[str, float],
    descent: list[dict[str, Any]],
    summary: dict[str, Any],
) -> None:
    sim_header = list(similarity[0])
    prob_header = list(simulation[0])
    gd_header = list(descent[0])
    write_text(out / "README.md", _readme(params, summary))
    write_csv(out / "vector_similarity.csv", sim_header, [list(r.values()) for r in similarity])
    write_csv(
        out / "probability_simulation.csv", prob_header, [list(r.values()) for r in simulation]
    )
    write_csv(out / "gradient_descent.csv", gd_header, [list(r.values()) for r in descent])
    write_text(out / "math_cards.md", _cards(similarity, simulation, entropy, descent, params))

    write_text(
        out / "vector_similarity.svg",
        svg.horizontal_bar_chart(
            "コサインによるベクトル類似度",
            [r["topic"] for r in similarity],
            [r["cosine_similarity"] for r in similarity],
            xlabel=f"cosine similarity to {QUERY_NAME} {params['query']}",
            subtitle="cos θ = a·b / (|a| |b|); 1 = same direction, 0 = unrelated",
            x_range=(0.0, 1.0) if min(r["cosine_similarity"] for r in similarity) >= 0 else None,
        ),
    )
    expected = params["true_probability"]
    write_text(
        out / "probability_simulation.svg",
        svg.line_chart(
            "実行中の確率推定",
            [
                svg.Series("running rate", [(r["batch"], r["running_rate"]) for r in simulation]),
                svg.Series(
                    "batch rate",
                    [(r["batch"], r["batch_rate"]) for r in simulation],
                    color="#9ecae1",
                    label_last=False,
                ),
                svg.Series(
                    f"expected {expected}",
                    [(simulation[0]["batch"], expected), (simulation[-1]["batch"], expected)],
                    color="#d62728",
                    dashed=True,
                    markers=False,
                    label_last=False,
                ),
            ],
            xlabel=f"batch ({params['trials']} trials each, seed {params['seed']})",
            ylabel="success rate",
            subtitle="running rate = successes so far / trials so far",
            y_range=(0.0, 1.0),
        ),
    )
    write_text(
        out / "gradient_descent.svg",
        svg.line_chart(
            "勾配降下で損失が下がる",
            [
                svg.Series("loss", [(r["step"], r["loss"]) for r in descent]),
                svg.Series(
                    f"minimum {FLOOR_LOSS}",
                    [(descent[0]["step"], FLOOR_LOSS), (descent[-1]["step"], FLOOR_LOSS)],
                    color="#7f7f7f",
                    dashed=True,
                    markers=False,
                    label_last=False,
                ),
            ],
            xlabel=f"step (learning rate {params['learning_rate']})",
            ylabel="loss = (x - 1.4)² + 0.6",
            subtitle=f"x: {descent[0]['x']} → {descent[-1]['x']} (minimum at x = {TARGET_X})",
            y_range=(0.0, descent[0]["loss"]),
            value_format="{:.6g}",
        ),
    )


def _readme(params: dict[str, Any], summary: dict[str, Any]) -> str:
    return f"""# Chapter 4 math workshop: evidence

Written by `textsieve workshop`. Every number here comes from running the math, not from a table.

## Rerun

```
textsieve workshop
python -m textsieve.workshop
```

Both write `ch04_math_workshop_evidence/` in the current directory; `-o DIR` writes
elsewhere. The parameters used for these files:

```
textsieve workshop --chapter ch04 {rerun_flags(params)}
```

## Results

- Best match for the query `{QUERY_NAME}`: **{summary["best_match"]}** (cosine similarity
  {summary["cosine"]}).
- Probability: running success rate {summary["final_running_rate"]} after
  {params["batches"] * params["trials"]} trials; the true probability is {summary["expected"]}.
- Entropy: confident [0.9, 0.1] = {summary["confident_entropy"]} bits, uncertain [0.5, 0.5] =
  {summary["uncertain_entropy"]} bits. Cross-entropy: good prediction {summary["good_loss"]},
  bad prediction {summary["bad_loss"]} nats.
- Gradient descent: loss {summary["start_loss"]} at the start, final x = {summary["final_x"]},
  final loss = {summary["final_loss"]} (the minimum is x = {TARGET_X}, loss = {FLOOR_LOSS});
  the run {summary["regime"]}.

## Review order

1. `math_cards.md`: the four concepts in model language.
2. `vector_similarity.csv`, then `vector_similarity.svg`.
3. `probability_simulation.csv`, then `probability_simulation.svg`.
4. `gradient_descent.csv`, then `gradient_descent.svg`.
"""


def _cards(
    similarity: list[dict[str, Any]],
    simulation: list[dict[str, Any]],
    entropy: dict[str, float],
    descent: list[dict[str, Any]],
    params: dict[str, Any],
) -> str:
    best = similarity[0]
    vector_rows = [[r["topic"], r["cosine_similarity"], r["model_language"]] for r in similarity]
    last = simulation[-1]
    return f"""# Math cards (chapter 4)

## Vector

A vector is a list of numbers that places a thing in a space; in model language it is an
**embedding**. Cosine similarity, dot(a, b) / (|a| |b|), compares directions: it is how retrieval
finds the passage closest to a question.

{markdown_table(["topic", "cosine_similarity", "model language"], vector_rows)}
Best match: `{best["topic"]}` ({best["cosine_similarity"]}). See `vector_similarity.csv` and
`vector_similarity.svg`.

## Probability

A probability is a long-run rate. In model language it is the **confidence** a classifier or a
next-token distribution assigns. After {last["batch"]} batches of {last["batch_trials"]} trials the
running rate is {last["running_rate"]} against a true probability of
{last["expected_probability"]}: estimates from samples wander, then settle. See
`probability_simulation.csv` and `probability_simulation.svg`.

## Entropy and loss

Entropy measures uncertainty in bits: a confident prediction [0.9, 0.1] has
{entropy["confident_entropy"]} bits, a coin flip [0.5, 0.5] has {entropy["uncertain_entropy"]} bit.
Cross-entropy is the **loss** a model pays for the probability it gave the right answer:
-log 0.9 = {entropy["good_loss"]} nats for a good prediction, -log 0.2 = {entropy["bad_loss"]} nats
for a bad one (predictions clipped to [1e-9, 1 - 1e-9]). Training lowers this number.

## Gradient

The gradient is the slope of the loss; stepping against it lowers the loss. In model language it
is the **direction of improvement** used by every optimizer. With learning rate
{params["learning_rate"]}, x moves from {descent[0]["x"]} to {descent[-1]["x"]} and the loss from
{descent[0]["loss"]} to {descent[-1]["loss"]}. See `gradient_descent.csv` and
`gradient_descent.svg`.
"""
