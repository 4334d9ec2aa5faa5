"""The workshop's further chapters (likelihood, gradients, pretraining) and ``--chapter all``.

Every expected number is computed here from a closed form or an independent implementation
(NumPy, a pure-Python n-gram model, the eigen-decomposition of the loss), or quoted from the issue.
"""

from __future__ import annotations

import csv
import math
import random
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from textsieve.cli import main as textsieve_main
from textsieve.workshop import DEFAULT_DIRS, run_workshop

from .conftest import SEED_DOCS

SVG_NS = "{http://www.w3.org/2000/svg}"


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def run_cli(tmp_path: Path, capsys, *argv: str) -> tuple[int, str, str]:
    code = textsieve_main(["workshop", *argv, "-o", str(tmp_path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def value(out: str, key: str) -> str:
    match = re.search(rf"(?:^|\s){re.escape(key)}=(\S+)", out, re.MULTILINE)
    assert match, f"{key}= not printed in:\n{out}"
    return match.group(1)


def check_svgs(folder: Path, names: list[str]) -> None:
    for name in names:
        if name.endswith(".svg"):
            root = ET.parse(folder / name).getroot()
            assert root.tag == f"{SVG_NS}svg", name
            assert root.find(f"{SVG_NS}title").text, name


def step_block_is_well_formed(out: str, folder: Path, names: list[str]) -> None:
    blocks = out.rstrip("\n").split("\n\n")
    assert all(b.startswith("STEP ") for b in blocks)
    assert [int(b.split(":")[0].split()[1]) for b in blocks] == list(range(1, len(blocks) + 1))
    assert blocks[-1].splitlines()[1:] == [str(folder / n) for n in names]


# --- likelihood ------------------------------------------------------------------------------

COUNTS = [2, 5, 2, 4, 2, 5]
LIKELIHOOD_FILES = [
    "README.md",
    "die_counts.csv",
    "candidate_models.csv",
    "softmax_ascent.csv",
    "likelihood_cards.md",
    "die_probabilities.svg",
    "softmax_ascent.svg",
]


def test_likelihood_numbers(tmp_path, capsys):
    code, out, _ = run_cli(tmp_path, capsys, "--chapter", "likelihood")
    assert code == 0
    step_block_is_well_formed(out, tmp_path, LIKELIHOOD_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(LIKELIHOOD_FILES)
    n = sum(COUNTS)
    fair = -n * math.log(6)
    mle = sum(t * math.log(t / n) for t in COUNTS)
    assert (round(fair, 3), round(mle, 3)) == (-35.835, -34.116)  # the figures
    assert "fair_log_likelihood=-35.835 mle_log_likelihood=-34.116" in out
    assert value(out, "mle") == "0.1,0.25,0.1,0.2,0.1,0.25"
    assert float(value(out, "likelihood_ratio")) == round(math.exp(mle - fair), 2)
    assert float(value(out, "fair_cross_entropy")) == round(math.log(6), 4)
    assert float(value(out, "mle_cross_entropy")) == round(-mle / n, 4)
    assert float(value(out, "kl_to_fair")) == round(
        sum(t / n * math.log((t / n) * 6) for t in COUNTS), 4
    )
    check_svgs(tmp_path, LIKELIHOOD_FILES)


def test_likelihood_candidate_table(tmp_path):
    run_workshop("likelihood", tmp_path, quiet=True)
    rows = {r["model"]: r for r in read_csv(tmp_path / "candidate_models.csv")}
    n = sum(COUNTS)
    exact = {
        "fair": [1 / 6] * 6,
        "add_one_smoothed": [(t + 1) / (n + 6) for t in COUNTS],
        "maximum_likelihood": [t / n for t in COUNTS],
    }
    assert list(rows) == list(exact)
    for name, probs in exact.items():
        ll = sum(t * math.log(p) for t, p in zip(COUNTS, probs, strict=True))
        row = rows[name]
        assert [float(row[f"p{i}"]) for i in range(1, 7)] == [round(p, 6) for p in probs]
        assert float(row["log_likelihood"]) == pytest.approx(ll, abs=1e-6)
        assert float(row["likelihood"]) == pytest.approx(math.exp(ll), rel=1e-6)
        assert float(row["cross_entropy_nats"]) == pytest.approx(-ll / n, abs=1e-6)
    counts = read_csv(tmp_path / "die_counts.csv")
    assert [int(r["count"]) for r in counts] == COUNTS


def test_mle_beats_every_other_die():
    # Gibbs' inequality, the reason the estimate is t_k / N: no random die does better.
    rng = random.Random(3)
    n = sum(COUNTS)
    best = sum(t * math.log(t / n) for t in COUNTS)
    for _ in range(500):
        raw = [rng.expovariate(1.0) for _ in COUNTS]
        probs = [r / sum(raw) for r in raw]
        assert sum(t * math.log(p) for t, p in zip(COUNTS, probs, strict=True)) <= best


def test_softmax_ascent_reaches_the_mle(tmp_path):
    run_workshop("likelihood", tmp_path, quiet=True)
    rows = read_csv(tmp_path / "softmax_ascent.csv")
    n = sum(COUNTS)
    assert len(rows) == 101
    assert float(rows[0]["log_likelihood"]) == pytest.approx(-n * math.log(6), abs=1e-6)
    lls = [float(r["log_likelihood"]) for r in rows]
    assert all(b >= a - 1e-9 for a, b in zip(lls, lls[1:], strict=False))  # ascent never falls
    final = [float(rows[-1][f"p{i}"]) for i in range(1, 7)]
    assert final == pytest.approx([t / n for t in COUNTS], abs=1e-6)


def test_likelihood_flags(tmp_path, capsys):
    code, out, _ = run_cli(tmp_path, capsys, "--chapter", "likelihood", "--counts", "1,1,1,1,1,1")
    assert code == 0
    uniform = round(-6 * math.log(6), 3)
    assert f"fair_log_likelihood={uniform:.3f} mle_log_likelihood={uniform:.3f}" in out
    code, out, _ = run_cli(
        tmp_path, capsys, "--chapter", "likelihood", "--steps", "5", "--learning-rate", "0.5"
    )
    assert code == 0 and "steps=5 learning_rate=0.5" in out
    assert len(read_csv(tmp_path / "softmax_ascent.csv")) == 6


@pytest.mark.parametrize("counts", ["1,-1,2", "a,b", "0,0,0", "5"])
def test_likelihood_bad_counts(tmp_path, capsys, counts):
    code, _, err = run_cli(tmp_path / "x", capsys, "--chapter", "likelihood", "--counts", counts)
    assert code == 1 and "--counts" in err


# --- gradients -------------------------------------------------------------------------------

GRADIENT_FILES = [
    "README.md",
    "derivatives.csv",
    "chain_rule.csv",
    "regression_descent.csv",
    "learning_rate_sweep.csv",
    "gradient_cards.md",
    "regression_fit.svg",
    "learning_rate_sweep.svg",
]
DOSES = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
EFFECTS = np.array([2.1, 3.9, 6.2, 8.0, 9.8])


def closed_form_descent(theta0, lr: float, epochs: int) -> np.ndarray:
    """theta_n = theta* + sum_i (1 - lr lambda_i)^n (v_i . e_0) v_i for the MSE quadratic."""
    design = np.column_stack([DOSES, np.ones_like(DOSES)])
    hessian = 2 * design.T @ design / len(DOSES)
    lam, vecs = np.linalg.eigh(hessian)
    star = np.linalg.lstsq(design, EFFECTS, rcond=None)[0]
    e0 = np.asarray(theta0) - star
    return star + vecs @ (((1 - lr * lam) ** epochs) * (vecs.T @ e0))


def test_gradients_numbers(tmp_path, capsys):
    code, out, _ = run_cli(tmp_path, capsys, "--chapter", "gradients")
    assert code == 0
    step_block_is_well_formed(out, tmp_path, GRADIENT_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(GRADIENT_FILES)
    # x^2 by central differences vs 2x, and the chain rule vs 24 x^2
    for x in (1, 3, -2, 0):
        assert f"x={x} forward={round(2 * x + 1e-5, 6)} central={float(2 * x)} exact={2 * x}" in out
        assert f"x={x} numeric={float(24 * x * x)} chain_rule={24 * x * x}" in out
    for row in read_csv(tmp_path / "derivatives.csv"):
        assert float(row["central_difference"]) == pytest.approx(2 * float(row["x"]), abs=1e-6)
    for row in read_csv(tmp_path / "chain_rule.csv"):
        x = float(row["x"])
        assert float(row["central_difference"]) == pytest.approx(24 * x * x, abs=1e-5)
        assert float(row["dy_du"]) * float(row["du_dx"]) == 24 * x * x
    # regression: the figures and the closed form of gradient descent on a quadratic
    w_star, b_star = np.polyfit(DOSES, EFFECTS, 1)
    assert (round(w_star, 4), round(b_star, 4)) == (1.95, 0.15)
    w, b = closed_form_descent([0.9501, 0.7320], 0.01, 1000)
    loss = float(np.mean((w * DOSES + b - EFFECTS) ** 2))
    assert (round(w, 4), round(b, 4), round(loss, 4)) == (1.9425, 0.177, 0.0151)
    assert "start w=0.9501 b=0.7320" in out
    assert "final w=1.9425 b=0.1770 loss=0.0151" in out
    best = float(np.mean((w_star * DOSES + b_star - EFFECTS) ** 2))
    assert f"closed_form w=1.9500 b=0.1500 loss={best:.4f}" in out
    rows = read_csv(tmp_path / "regression_descent.csv")
    assert len(rows) == 1001
    for epoch in (0, 1, 10, 500, 1000):
        expected = closed_form_descent([0.9501, 0.7320], 0.01, epoch)
        assert float(rows[epoch]["w"]) == pytest.approx(expected[0], abs=2e-6)
        assert float(rows[epoch]["b"]) == pytest.approx(expected[1], abs=2e-6)
    check_svgs(tmp_path, GRADIENT_FILES)


def test_learning_rate_sweep(tmp_path, capsys):
    code, out, _ = run_cli(tmp_path, capsys, "--chapter", "gradients")
    assert code == 0
    design = np.column_stack([DOSES, np.ones_like(DOSES)])
    lam_min, lam_max = np.linalg.eigvalsh(2 * design.T @ design / len(DOSES))
    assert value(out, "curvature") == f"{lam_min:.4f},{lam_max:.4f}"
    assert value(out, "oscillating_above") == f"{1 / lam_max:.4f}"
    assert value(out, "divergent_above") == f"{2 / lam_max:.4f}"
    regimes = {line.split()[0]: line.split()[1] for line in out.splitlines() if line[:3] == "lr="}
    assert regimes == {
        "lr=0.001": "slow",
        "lr=0.01": "good",
        "lr=0.06": "oscillating",
        "lr=0.09": "divergent",
    }
    rows = {r["learning_rate"]: r for r in read_csv(tmp_path / "learning_rate_sweep.csv")}
    # what each regime looks like in the run itself
    assert float(rows["0.001"]["final_loss"]) > 2 * float(rows["0.01"]["final_loss"])
    assert int(rows["0.01"]["sign_flips_first_20"]) == 0
    assert int(rows["0.06"]["sign_flips_first_20"]) == 20
    assert float(rows["0.06"]["final_loss"]) == pytest.approx(0.015, abs=1e-4)
    assert float(rows["0.09"]["final_loss"]) > 1e6
    assert float(rows["0.09"]["steep_factor"]) == pytest.approx(1 - 0.09 * lam_max, abs=1e-6)


def test_gradients_flags(tmp_path, capsys):
    code, out, _ = run_cli(
        tmp_path,
        capsys,
        "--chapter",
        "gradients",
        "--learning-rate",
        "0.04",
        "--steps",
        "300",
        "--init",
        "0,0",
        "--sweep",
        "0.05,0.1",
    )
    assert code == 0
    w, b = closed_form_descent([0.0, 0.0], 0.04, 300)
    assert f"final w={w:.4f} b={b:.4f}" in out
    assert "lr=0.05 oscillating" in out and "lr=0.1 divergent" in out
    code, out, _ = run_cli(tmp_path, capsys, "--chapter", "gradients", "--learning-rate", "0.1")
    assert code == 0 and "the run is divergent" in out


@pytest.mark.parametrize(
    "argv",
    [["--init", "1"], ["--sweep", "0.1,-1"], ["--delta", "0"], ["--learning-rate", "-0.01"]],
)
def test_gradients_bad_values(tmp_path, capsys, argv):
    code, _, err = run_cli(tmp_path / "x", capsys, "--chapter", "gradients", *argv)
    assert code == 1 and err.startswith("textsieve workshop: error:")


# --- pretraining -----------------------------------------------------------------------------

PRETRAINING_FILES = [
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


def seed_tokens(text: str) -> list[str]:
    """The teaching notebook's tokenizer, written out again independently."""
    text = text.lower().strip()
    for ch in "。､，,.!?！？":
        text = text.replace(ch, " ")
    return [c for c in re.sub(r"\s+", " ", text).strip() if c != " "]


class PlainAddK:
    """A straightforward add-k n-gram model (orders 1 and 2), vocabulary from training + <unk>."""

    def __init__(self, train: list[list[str]], k: float) -> None:
        self.k = k
        self.vocab = {c for doc in train for c in doc}
        self.V = len(self.vocab) + 1
        self.uni = Counter(c for doc in train for c in doc)
        self.total = sum(self.uni.values())
        self.bi = Counter((a, b) for doc in train for a, b in zip(doc, doc[1:], strict=False))
        self.ctx = Counter(a for doc in train for a in doc[:-1])

    def tok(self, c: str) -> str:
        return c if c in self.vocab else "<unk>"

    def prob(self, context: str | None, c: str) -> float:
        c = self.tok(c)
        if context is None:
            return (self.uni[c] + self.k) / (self.total + self.k * self.V)
        a = self.tok(context)
        return (self.bi[(a, c)] + self.k) / (self.ctx[a] + self.k * self.V)

    def perplexity(self, docs: list[list[str]], order: int) -> float:
        nll = []
        for doc in docs:
            if order == 1:
                nll += [-math.log(self.prob(None, c)) for c in doc]
            else:
                nll += [-math.log(self.prob(a, b)) for a, b in zip(doc, doc[1:], strict=False)]
        return math.exp(sum(nll) / len(nll))


def split(seed: int) -> tuple[list[str], list[str]]:
    docs = list(SEED_DOCS)
    state = random.getstate()
    try:
        random.seed(seed)
        random.shuffle(docs)
    finally:
        random.setstate(state)
    return docs[:8], docs[8:]


def test_pretraining_numbers(tmp_path, capsys):
    code, out, _ = run_cli(tmp_path, capsys, "--chapter", "pretraining")
    assert code == 0
    step_block_is_well_formed(out, tmp_path, PRETRAINING_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(PRETRAINING_FILES)

    logits = [0.2, -0.3, 1.1, 0.0]
    exps = [math.exp(z) for z in logits]
    probs = [e / sum(exps) for e in exps]
    loss = math.log(sum(exps)) - logits[2]
    assert "probs=0.2047 0.1242 0.5035 0.1676" in out  # the figures
    assert "probs=" + " ".join(f"{p:.4f}" for p in probs) in out
    assert f"loss={loss:.6f} perplexity={math.exp(loss):.6f}" in out
    assert "loss=0.686142 perplexity=1.986038" in out
    rows = read_csv(tmp_path / "softmax_cross_entropy.csv")
    for row, p in zip(rows, probs, strict=True):
        assert float(row["gradient"]) == pytest.approx(p - (row["index"] == "2"), abs=1e-6)

    train, validation = split(0)
    model = PlainAddK([seed_tokens(d) for d in train], 0.1)
    val = [seed_tokens(d) for d in validation]
    assert model.V == 116
    unigram, bigram = model.perplexity(val, 1), model.perplexity(val, 2)
    assert (round(unigram, 4), round(bigram, 4)) == (476.3932, 95.9628)  # the figures
    assert f"unigram_perplexity={unigram:.4f} bigram_perplexity={bigram:.4f}" in out
    assert "vocab_size=116" in out
    table = {r["model"]: r for r in read_csv(tmp_path / "ngram_perplexity.csv")}
    assert float(table["unigram"]["validation_perplexity"]) == round(unigram, 4)
    assert float(table["bigram"]["validation_perplexity"]) == round(bigram, 4)
    assert [r["text"] for r in read_csv(tmp_path / "corpus_split.csv")] == train + validation

    chars = list("事前学習モデル")
    transitions = read_csv(tmp_path / "bigram_transitions.csv")
    assert [(r["from"], r["to"]) for r in transitions] == [(a, b) for a in chars for b in chars]
    for row in transitions:
        assert int(row["count"]) == model.bi[(row["from"], row["to"])]
        assert float(row["probability"]) == pytest.approx(
            model.prob(row["from"], row["to"]), abs=1e-6
        )
    heat = ET.parse(tmp_path / "bigram_heatmap.svg").getroot()
    cells = [r for r in heat.iter(f"{SVG_NS}rect") if r.find(f"{SVG_NS}title") is not None]
    assert len(cells) == 49

    for params, tokens, flops in ((0.1e9, 20e9, "1.2e+19"), (0.7e9, 100e9, "4.2e+20"),
                                  (7e9, 300e9, "1.26e+22")):  # fmt: skip
        assert f"{6 * params * tokens:.3g}" == flops
        assert f"flops={flops}" in out
    compute = read_csv(tmp_path / "training_compute.csv")
    assert float(compute[2]["petaflop_s_days"]) == round(6 * 7e9 * 300e9 / (1e15 * 86400), 3)

    cost = 1200 * 0.20 / 1e6 + 400 * 0.80 / 1e6
    assert f"cost_usd={round(cost, 8)} per_1000_calls={round(cost * 1000, 8)}" in out
    assert "cost_usd=0.00056 per_1000_calls=0.56" in out
    check_svgs(tmp_path, PRETRAINING_FILES)


def test_loss_mix(tmp_path, capsys):
    code, out, _ = run_cli(tmp_path, capsys, "--chapter", "pretraining", "--mix-weight", "0.25")
    assert code == 0
    for row in read_csv(tmp_path / "loss_mix.csv"):
        t = float(row["step"])
        general = 2.0 + 3.0 * (1 + t / 100) ** -0.5
        domain = 2.6 + 2.5 * (1 + t / 300) ** -0.6
        assert float(row["general_loss"]) == pytest.approx(general, abs=1e-6)
        assert float(row["domain_loss"]) == pytest.approx(domain, abs=1e-6)
        assert float(row["mixed_loss"]) == pytest.approx(0.25 * general + 0.75 * domain, abs=1e-6)
    code, out, _ = run_cli(tmp_path, capsys, "--chapter", "pretraining", "--mix-weight", "1")
    assert value(out, "final_mixed") == value(out, "final_general")


def test_pretraining_flags(tmp_path, capsys):
    code, out, _ = run_cli(
        tmp_path,
        capsys,
        "--chapter",
        "pretraining",
        "--seed",
        "1",
        "--k",
        "0.5",
        "--logits",
        "1,2,3",
        "--target",
        "0",
        "--input-tokens",
        "1000",
        "--output-tokens",
        "0",
        "--input-price",
        "2",
    )
    assert code == 0
    train, validation = split(1)
    model = PlainAddK([seed_tokens(d) for d in train], 0.5)
    val = [seed_tokens(d) for d in validation]
    assert float(value(out, "unigram_perplexity")) == round(model.perplexity(val, 1), 4)
    assert float(value(out, "bigram_perplexity")) == round(model.perplexity(val, 2), 4)
    assert float(value(out, "loss")) == round(math.log(sum(math.exp(z) for z in (1, 2, 3))) - 1, 6)
    assert value(out, "cost_usd") == "0.002"


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--target", "4"], "--target"),
        (["--logits", "1"], "--logits"),
        (["--mix-weight", "2"], "--mix-weight"),
        (["--k", "0"], "--k"),
        (["--input-price", "-1"], "negative"),
    ],
)
def test_pretraining_bad_values(tmp_path, capsys, argv, fragment):
    code, _, err = run_cli(tmp_path / "x", capsys, "--chapter", "pretraining", *argv)
    assert code == 1 and fragment in err


# --- every chapter ---------------------------------------------------------------------------


@pytest.mark.parametrize("chapter", ["likelihood", "gradients", "pretraining"])
def test_chapters_are_deterministic(tmp_path, chapter):
    first = run_workshop(chapter, tmp_path / "a", quiet=True)
    run_workshop(chapter, tmp_path / "b", quiet=True)
    for path in first.files:
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.endswith(".tmp")]


def test_chapter_all(tmp_path, capsys):
    code, out, _ = run_cli(tmp_path, capsys, "--chapter", "all")
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(DEFAULT_DIRS.values())
    assert out.count("STEP 1:") == 4
    assert out.startswith("STEP 1: Vector similarity\nbest_match=vector_similarity cosine=0.9944")
    code, _, err = run_cli(tmp_path, capsys, "--chapter", "all", "--seed", "3")
    assert code == 2 and "does not apply" in err


def test_default_folders(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert textsieve_main(["workshop", "--chapter", "likelihood", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert (tmp_path / "likelihood_workshop_evidence" / "README.md").is_file()


def test_extreme_values_do_not_crash(tmp_path, capsys):
    code, out, _ = run_cli(
        tmp_path / "p", capsys, "--chapter", "pretraining", "--logits=1000,0", "--target", "1"
    )
    assert code == 0 and "loss=1000.000000 perplexity=inf" in out
    code, out, _ = run_cli(tmp_path / "q", capsys, "--query=-1,-1,-1")
    assert code == 0 and value(out, "best_match") in ("vector_similarity", "gradient_descent")
    code, out, _ = run_cli(
        tmp_path / "l", capsys, "--chapter", "likelihood", "--counts", "1000000,1,1,1,1,1"
    )
    assert code == 0 and "likelihood_ratio=inf" in out
