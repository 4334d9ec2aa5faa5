"""Chapter ``pretraining``: the arithmetic of pretraining a language model.

1. softmax cross-entropy for one next-token prediction, by hand;
2. the 10-document Japanese corpus through textsieve's char tokenizer and add-k n-gram models
   (unigram and bigram validation perplexity);
3. a bigram transition heatmap for the characters of 事前学習モデル;
4. training compute by the rule of thumb FLOPs = 6 N D;
5. the price of one inference call;
6. a weighted mix of two loss curves (the loss a model reports on a mixed evaluation set).

>>> [round(p, 4) for p in softmax([0.2, -0.3, 1.1, 0.0])]
[0.2047, 0.1242, 0.5035, 0.1676]
>>> training_flops(7e9, 300e9)
1.26e+22
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
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
    safe_exp,
)
from textsieve.workshop.writers import markdown_table, write_csv, write_text

CHAPTER = "pretraining"
DEFAULT_DIR = "pretraining_workshop_evidence"
FILES = [
    "README.md",
    "softmax_cross_entropy.csv",
    "corpus_split.csv",
    "ngram_perplexity.csv",
    "bigram_transitions.csv",
    "training_compute.csv",
    "inference_cost.csv",
    "loss_mix.csv",
    "pretraining_cards.md",
    "bigram_heatmap.svg",
    "loss_mix.svg",
]

DEFAULT_LOGITS = (0.2, -0.3, 1.1, 0.0)
DEFAULT_TARGET = 2

# The teaching notebook's corpus, in its order; shuffled with random.seed(0) before the split.
CORPUS = (
    "事前学習では大量のテキストから次トークン予測を学ぶ。",
    "言語モデルは文脈に応じた分布を出力する。",
    "トークン化の設計は学習効率と性能に強く影響する。",
    "前処理では重複除去や品質フィルタリングが重要になる。",
    "評価ではperplexityや下流タスク性能を併用する。",
    "モデル規模とデータ規模のバランスが学習の成否を左右する。",
    "機械論的解釈可能性は内部回路の理解に役立つ。",
    "SFTは事前学習済みモデルを指示追従に調整する工程である。",
    "推論時は温度やサンプリング戦略が出力を変える。",
    "長文文脈では注意機構の設計が効いてくる。",
)
TRAIN_DOCS = 8
HEATMAP_TEXT = "事前学習モデル"

# (parameters, training tokens) for the compute estimates.
COMPUTE_CONFIGS = ((0.1e9, 20e9), (0.7e9, 100e9), (7e9, 300e9))
PETAFLOP_S_DAY = 1e15 * 86_400

# Two illustrative loss curves, L(t) = floor + scale * (1 + t / tau) ** -alpha, over training steps.
LOSS_STEPS = tuple(range(0, 2001, 50))
GENERAL_CURVE = {"floor": 2.0, "scale": 3.0, "tau": 100.0, "alpha": 0.5}
DOMAIN_CURVE = {"floor": 2.6, "scale": 2.5, "tau": 300.0, "alpha": 0.6}


# --- softmax cross-entropy -----------------------------------------------------------------------


def softmax(logits: Sequence[float]) -> list[float]:
    """exp(z_i) / sum exp(z_j), computed after subtracting the largest logit (no overflow)."""
    top = max(logits)
    exps = [math.exp(z - top) for z in logits]
    total = sum(exps)
    return [e / total for e in exps]


def softmax_cross_entropy(logits: Sequence[float], target: int) -> float:
    """-log softmax(logits)[target] = logsumexp(logits) - logits[target] (nats)."""
    top = max(logits)
    return top + math.log(sum(math.exp(z - top) for z in logits)) - logits[target]


# --- compute and cost ----------------------------------------------------------------------------


def training_flops(params: float, tokens: float) -> float:
    """6 N D: about 2 FLOPs per parameter per token forward and 4 backward."""
    return float(f"{6 * params * tokens:.12g}")


def inference_cost(
    input_tokens: int, output_tokens: int, input_price: float, output_price: float
) -> float:
    """USD for one call, prices in USD per million tokens."""
    return (input_tokens * input_price + output_tokens * output_price) / 1e6


def loss_curve(step: float, floor: float, scale: float, tau: float, alpha: float) -> float:
    return floor + scale * (1 + step / tau) ** -alpha


def _billions(value: float) -> str:
    return f"{value / 1e9:g}B"


# --- the chapter ---------------------------------------------------------------------------------


def run_pretraining(
    output_dir: str | os.PathLike[str] | None = None,
    *,
    logits: Sequence[float] | str = DEFAULT_LOGITS,
    target: int = DEFAULT_TARGET,
    k: float = 0.1,
    seed: int = 0,
    input_tokens: int = 1200,
    output_tokens: int = 400,
    input_price: float = 0.20,
    output_price: float = 0.80,
    mix_weight: float = 0.7,
    quiet: bool = False,
    stream: TextIO | None = None,
) -> ChapterResult:
    """Run the pretraining chapter: write its evidence into ``output_dir`` and print the summary.

    ``seed`` shuffles the corpus before the 8/2 train/validation split; ``mix_weight`` is the
    share of the first (general) curve in the mixed loss."""
    import textsieve as ts  # the Rust tokenizer and add-k model

    out = Path(output_dir if output_dir is not None else DEFAULT_DIR)
    z = parse_numbers("--logits", logits)
    if len(z) < 2:
        raise WorkshopError(f"--logits needs at least 2 numbers, got {len(z)}")
    if isinstance(target, bool) or int(target) != target or not 0 <= int(target) < len(z):
        raise WorkshopError(f"--target must be an index from 0 to {len(z) - 1}, got {target!r}")
    target = int(target)
    k = check_positive("--k", k)
    seed = int(seed)
    input_tokens = check_count("--input-tokens", input_tokens, 0, 10**12)
    output_tokens = check_count("--output-tokens", output_tokens, 0, 10**12)
    input_price = check_finite("--input-price", input_price)
    output_price = check_finite("--output-price", output_price)
    if input_price < 0 or output_price < 0:
        raise WorkshopError("--input-price and --output-price must not be negative")
    mix_weight = check_probability("--mix-weight", mix_weight)
    params = {
        "logits": [plain(v) for v in z],
        "target": target,
        "k": plain(k),
        "seed": seed,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_price": plain(input_price),
        "output_price": plain(output_price),
        "mix_weight": plain(mix_weight),
    }

    # 1. softmax cross-entropy
    probs = softmax(z)
    ce = softmax_cross_entropy(z, target)
    softmax_rows = [
        {
            "index": i,
            "logit": plain(v),
            "probability": round(p, 6),
            "is_target": int(i == target),
            "neg_log_probability": round(-math.log(p), 6) if p > 0 else "inf",
            "gradient": round(p - (i == target), 6),
        }
        for i, (v, p) in enumerate(zip(z, probs, strict=True))
    ]

    # 2. the corpus through textsieve's tokenizer and add-k models
    docs = list(CORPUS)
    random.Random(seed).shuffle(docs)  # same order as random.seed(seed); random.shuffle(docs)
    train, validation = docs[:TRAIN_DOCS], docs[TRAIN_DOCS:]
    models = {order: ts.AddKLM(order=order, k=k).fit(train) for order in (1, 2)}
    vocab_size = models[1].V
    train_tokens = sum(len(ts.char_tokenize(d)) for d in train)
    val_tokens = [len(ts.char_tokenize(d)) for d in validation]
    perplexity = {order: models[order].perplexity(validation) for order in (1, 2)}
    ngram_rows = [
        {
            "model": name,
            "order": order,
            "k": plain(k),
            "vocab_size": vocab_size,
            "train_docs": len(train),
            "train_tokens": train_tokens,
            "validation_docs": len(validation),
            "validation_predictions": sum(max(n - (order - 1), 0) for n in val_tokens),
            "validation_perplexity": round(perplexity[order], 4),
        }
        for name, order in (("unigram", 1), ("bigram", 2))
    ]

    # 3. bigram transitions among the characters of 事前学習モデル
    chars = ts.char_tokenize(HEATMAP_TEXT)
    bigram = models[2]
    counts = bigram.counts.to_dict()
    matrix = [[bigram.prob(a, b) for b in chars] for a in chars]
    transition_rows = [
        {
            "from": a,
            "to": b,
            "count": counts.get((a, b), 0),
            "context_count": sum(c for (x, _), c in counts.items() if x == a),
            "probability": round(matrix[i][j], 6),
        }
        for i, a in enumerate(chars)
        for j, b in enumerate(chars)
    ]
    strongest = max(transition_rows, key=lambda r: r["probability"])

    # 4. compute, 5. cost, 6. loss mix
    compute_rows = [
        {
            "params": _billions(n),
            "tokens": _billions(d),
            "tokens_per_param": plain(round(d / n, 6)),
            "flops": f"{training_flops(n, d):.3g}",
            "petaflop_s_days": round(training_flops(n, d) / PETAFLOP_S_DAY, 3),
        }
        for n, d in COMPUTE_CONFIGS
    ]
    cost = inference_cost(input_tokens, output_tokens, input_price, output_price)
    cost_rows = [
        ["input", input_tokens, plain(input_price), _usd(input_tokens * input_price / 1e6)],
        ["output", output_tokens, plain(output_price), _usd(output_tokens * output_price / 1e6)],
        ["total", input_tokens + output_tokens, "", _usd(cost)],
    ]
    mix_rows = []
    for t in LOSS_STEPS:
        general = loss_curve(t, **GENERAL_CURVE)
        domain = loss_curve(t, **DOMAIN_CURVE)
        mix_rows.append(
            {
                "step": t,
                "general_loss": round(general, 6),
                "domain_loss": round(domain, 6),
                "mixed_loss": round(mix_weight * general + (1 - mix_weight) * domain, 6),
                "mix_weight": plain(mix_weight),
            }
        )
    final_mix = mix_rows[-1]

    summary = {
        "probs": [round(p, 4) for p in probs],
        "loss": round(ce, 6),
        "perplexity": round(safe_exp(ce), 6),
        "vocab_size": vocab_size,
        "unigram_perplexity": round(perplexity[1], 4),
        "bigram_perplexity": round(perplexity[2], 4),
        "strongest_transition": [strongest["from"], strongest["to"], strongest["probability"]],
        "flops": [row["flops"] for row in compute_rows],
        "cost_usd": _usd(cost),
        "final_general_loss": round(final_mix["general_loss"], 4),
        "final_domain_loss": round(final_mix["domain_loss"], 4),
        "final_mixed_loss": round(final_mix["mixed_loss"], 4),
    }

    files = [out / name for name in FILES]
    report = Report()
    report.step(1, "Softmax cross-entropy by hand")
    report.line(f"logits={','.join(str(v) for v in z)} target={target}")
    report.line("probs=" + " ".join(f"{p:.4f}" for p in probs))
    report.line(f"loss={ce:.6f} perplexity={safe_exp(ce):.6f}")
    report.step(2, "Add-k n-gram models on the 10-document corpus")
    report.line(
        f"train_docs={len(train)} validation_docs={len(validation)}"
        f" vocab_size={vocab_size} k={plain(k)}"
    )
    report.line(f"unigram_perplexity={perplexity[1]:.4f} bigram_perplexity={perplexity[2]:.4f}")
    report.step(3, f"Bigram transitions {' '.join(chars)}")
    report.line(
        f"strongest={strongest['from']}->{strongest['to']} probability={strongest['probability']:.4f}"
        f" count={strongest['count']}"
    )
    report.step(4, "Training compute (FLOPs = 6 N D)")
    for row in compute_rows:
        report.line(f"params={row['params']} tokens={row['tokens']} flops={row['flops']}")
    report.step(5, "Inference cost")
    report.line(
        f"input_tokens={input_tokens} output_tokens={output_tokens} cost_usd={_usd(cost)}"
        f" per_1000_calls={_usd(cost * 1000)}"
    )
    report.step(6, "Weighted mix of two loss curves")
    report.line(
        f"mix_weight={plain(mix_weight)} final_general={summary['final_general_loss']}"
        f" final_domain={summary['final_domain_loss']} final_mixed={summary['final_mixed_loss']}"
    )
    report.step(7, "Evidence files")
    for path in files:
        report.line(str(path))

    write_text(out / "README.md", _readme(params, summary))
    write_csv(
        out / "softmax_cross_entropy.csv",
        list(softmax_rows[0]),
        [list(r.values()) for r in softmax_rows],
    )
    write_csv(
        out / "corpus_split.csv",
        ["shuffled_position", "split", "tokens", "text"],
        [
            [i, "train" if i < TRAIN_DOCS else "validation", len(ts.char_tokenize(d)), d]
            for i, d in enumerate(docs)
        ],
    )
    write_csv(
        out / "ngram_perplexity.csv", list(ngram_rows[0]), [list(r.values()) for r in ngram_rows]
    )
    write_csv(
        out / "bigram_transitions.csv",
        list(transition_rows[0]),
        [list(r.values()) for r in transition_rows],
    )
    write_csv(
        out / "training_compute.csv",
        list(compute_rows[0]),
        [list(r.values()) for r in compute_rows],
    )
    write_csv(
        out / "inference_cost.csv", ["part", "tokens", "usd_per_million", "cost_usd"], cost_rows
    )
    write_csv(out / "loss_mix.csv", list(mix_rows[0]), [list(r.values()) for r in mix_rows])
    write_text(
        out / "pretraining_cards.md",
        _cards(params, summary, softmax_rows, ngram_rows, compute_rows, cost_rows),
    )
    write_text(
        out / "bigram_heatmap.svg",
        svg.heatmap(
            "バイグラム遷移確率 (事前学習モデル)",
            chars,
            chars,
            matrix,
            xlabel="next character",
            ylabel="previous character",
            subtitle=(
                f"P(next | previous), add-k k={plain(k)}, V={vocab_size},"
                f" {len(train)} training documents"
            ),
        ),
    )
    write_text(
        out / "loss_mix.svg",
        svg.line_chart(
            "2つの損失曲線の重み付き混合",
            [
                svg.Series(
                    "general", [(r["step"], r["general_loss"]) for r in mix_rows], markers=False
                ),
                svg.Series(
                    "domain", [(r["step"], r["domain_loss"]) for r in mix_rows], markers=False
                ),
                svg.Series(
                    f"mixed (w = {plain(mix_weight)})",
                    [(r["step"], r["mixed_loss"]) for r in mix_rows],
                    color="#333333",
                    dashed=True,
                    markers=False,
                ),
            ],
            xlabel="training step",
            ylabel="loss (nats per token)",
            subtitle=f"mixed = {plain(mix_weight)} · general + {plain(round(1 - mix_weight, 12))}"
            " · domain",
            value_format="{:.3f}",
        ),
    )
    text = report.text()
    emit(text, quiet, stream)
    return ChapterResult(CHAPTER, out, files, summary, text, params)


def _usd(value: float) -> float:
    return round(value, 8)


def _readme(params: dict[str, Any], summary: dict[str, Any]) -> str:
    a, b, p = summary["strongest_transition"]
    return f"""# Pretraining workshop: evidence

Written by `textsieve workshop --chapter pretraining`.

## Rerun

```
textsieve workshop --chapter pretraining {rerun_flags(params)}
```

`-o DIR` writes the files elsewhere.

## Results

- Softmax of {params["logits"]}: {summary["probs"]}; cross-entropy for target {params["target"]}
  is {summary["loss"]} nats, perplexity {summary["perplexity"]}.
- 10-document corpus (shuffled with seed {params["seed"]}, 8 train / 2 validation, k =
  {params["k"]}, vocabulary {summary["vocab_size"]}): validation perplexity
  {summary["unigram_perplexity"]} (unigram) and {summary["bigram_perplexity"]} (bigram).
- Strongest transition among 事前学習モデル: {a} → {b} (probability {p}).
- Training compute 6 N D: {", ".join(summary["flops"])} FLOPs.
- One call with {params["input_tokens"]} input and {params["output_tokens"]} output tokens costs
  {summary["cost_usd"]} USD.
- Loss mix (weight {params["mix_weight"]}): final general {summary["final_general_loss"]}, domain
  {summary["final_domain_loss"]}, mixed {summary["final_mixed_loss"]}.

## Review order

1. `pretraining_cards.md`
2. `softmax_cross_entropy.csv`
3. `corpus_split.csv`, `ngram_perplexity.csv`
4. `bigram_transitions.csv`, `bigram_heatmap.svg`
5. `training_compute.csv`, `inference_cost.csv`
6. `loss_mix.csv`, `loss_mix.svg`
"""


def _cards(
    params: dict[str, Any],
    summary: dict[str, Any],
    softmax_rows: Sequence[dict[str, Any]],
    ngram_rows: Sequence[dict[str, Any]],
    compute_rows: Sequence[dict[str, Any]],
    cost_rows: Sequence[Sequence[object]],
) -> str:
    soft = markdown_table(
        ["index", "logit", "probability", "target", "-log p", "gradient p - y"],
        [
            [
                r["index"],
                r["logit"],
                r["probability"],
                r["is_target"],
                r["neg_log_probability"],
                r["gradient"],
            ]
            for r in softmax_rows
        ],
    )
    ngram = markdown_table(
        ["model", "validation predictions", "perplexity"],
        [[r["model"], r["validation_predictions"], r["validation_perplexity"]] for r in ngram_rows],
    )
    compute = markdown_table(
        ["parameters N", "tokens D", "FLOPs 6ND", "petaflop/s-days"],
        [[r["params"], r["tokens"], r["flops"], r["petaflop_s_days"]] for r in compute_rows],
    )
    cost = markdown_table(["part", "tokens", "USD per million", "USD"], cost_rows)
    return f"""# Pretraining cards

## Next-token loss

A language model turns logits into probabilities with softmax and pays -log p(correct token).
The gradient with respect to the logits is p - y: push the target up, everything else down.
Perplexity exp(loss) = {summary["perplexity"]} reads as "as unsure as a fair choice among that many
tokens".

{soft}
See `softmax_cross_entropy.csv`.

## N-gram baselines

Before any neural network: count characters (unigram) or pairs (bigram) in the training documents,
smooth with add-k (k = {params["k"]}), and measure validation perplexity. Context helps:

{ngram}
See `corpus_split.csv`, `ngram_perplexity.csv`, and the transitions in `bigram_transitions.csv`
and `bigram_heatmap.svg` (a dark cell is a likely next character).

## Training compute

Training costs about 6 FLOPs per parameter per token (2 forward, 4 backward):

{compute}
See `training_compute.csv`.

## Inference cost

Providers price input and output tokens separately, per million tokens:

{cost}
See `inference_cost.csv`.

## Mixed loss curves

When the evaluation set mixes two sources, the reported loss is the token-weighted average of
the per-source losses: {params["mix_weight"]} × general + (1 - {params["mix_weight"]}) × domain.
A falling mixed curve can hide a source that has stopped improving. See `loss_mix.csv` and
`loss_mix.svg`.
"""
