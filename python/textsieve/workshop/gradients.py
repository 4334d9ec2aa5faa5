"""Chapter ``gradients``: derivatives by hand and by differences, the chain rule, and linear
regression trained by gradient descent, with the learning rate's regimes read off the curvature.

For mean squared error the loss is an exact quadratic in (w, b) with Hessian
H = (2/n) [[sum x^2, sum x], [sum x, n]]. One gradient step multiplies the error along each
eigenvector of H by (1 - lr * lambda). So the step size has hard boundaries: above 2 / lambda_max
the error grows (divergent), between 1 / lambda_max and 2 / lambda_max it flips sign every step
while shrinking (oscillating), and for small rates the flat direction (lambda_min) barely moves
within the epoch budget (slow).

>>> round(central_difference(lambda x: x * x, 3.0), 6)
6.0
>>> closed_form_line([1, 2, 3, 4, 5], [2.1, 3.9, 6.2, 8.0, 9.8])
(1.95, 0.15)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
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
    parse_numbers,
    plain,
    rerun_flags,
)
from textsieve.workshop.writers import markdown_table, write_csv, write_text

CHAPTER = "gradients"
DEFAULT_DIR = "gradients_workshop_evidence"
FILES = [
    "README.md",
    "derivatives.csv",
    "chain_rule.csv",
    "regression_descent.csv",
    "learning_rate_sweep.csv",
    "gradient_cards.md",
    "regression_fit.svg",
    "learning_rate_sweep.svg",
]
POINTS = (1.0, 3.0, -2.0, 0.0)
DOSES = (1.0, 2.0, 3.0, 4.0, 5.0)
EFFECTS = (2.1, 3.9, 6.2, 8.0, 9.8)
DEFAULT_INIT = (0.9501, 0.7320)
DEFAULT_SWEEP = (0.001, 0.01, 0.06, 0.09)
SLOW_SHRINK = 0.1  # "slow": the flattest direction keeps over 10% of its error after the budget
FLIP_WINDOW = 20  # epochs in which sign flips along the steepest direction are counted


# --- derivatives ---------------------------------------------------------------------------------


def forward_difference(f: Callable[[float], float], x: float, h: float = 1e-5) -> float:
    """(f(x + h) - f(x)) / h: error of order h."""
    return (f(x + h) - f(x)) / h


def central_difference(f: Callable[[float], float], x: float, h: float = 1e-5) -> float:
    """(f(x + h) - f(x - h)) / (2h): error of order h^2 (exact for a parabola, up to rounding)."""
    return (f(x + h) - f(x - h)) / (2 * h)


def chain_rule_rows(points: Sequence[float], h: float) -> list[dict[str, Any]]:
    """y = u^3 with u = 2x: dy/dx = dy/du * du/dx = 3u^2 * 2 = 24 x^2, checked numerically."""
    rows = []
    for x in points:
        u = 2 * x
        dy_du, du_dx = 3 * u * u, 2.0
        numeric = central_difference(lambda t: (2 * t) ** 3, x, h)
        rows.append(
            {
                "x": plain(x),
                "u": plain(u),
                "du_dx": plain(du_dx),
                "dy_du": plain(dy_du),
                "chain_rule": plain(dy_du * du_dx),
                "analytic_24x2": plain(24 * x * x),
                "central_difference": round(numeric, 6),
                "abs_error": float(f"{abs(numeric - 24 * x * x):.3e}"),
            }
        )
    return rows


# --- linear regression ---------------------------------------------------------------------------


def mse(w: float, b: float, xs: Sequence[float], ys: Sequence[float]) -> float:
    total = 0.0
    for x, y in zip(xs, ys, strict=True):
        r = w * x + b - y
        total += r * r
    return total / len(xs)


def mse_gradient(
    w: float, b: float, xs: Sequence[float], ys: Sequence[float]
) -> tuple[float, float]:
    """(d/dw, d/db) of the mean squared error: (2/n) sum r x and (2/n) sum r, r = wx + b - y."""
    n = len(xs)
    residuals = [w * x + b - y for x, y in zip(xs, ys, strict=True)]
    return (
        2 * sum(r * x for r, x in zip(residuals, xs, strict=True)) / n,
        2 * sum(residuals) / n,
    )


def closed_form_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least squares: w = S_xy / S_xx, b = mean(y) - w mean(x) (rounded to 12 places)."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise WorkshopError("the doses must not all be equal (the slope is undefined)")
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    w = sxy / sxx
    return round(w, 12), round(my - w * mx, 12)


def hessian_eigenvalues(xs: Sequence[float]) -> tuple[float, float]:
    """Eigenvalues (smallest, largest) of the MSE Hessian (2/n) [[sum x^2, sum x], [sum x, n]]."""
    n = len(xs)
    a = 2 * sum(x * x for x in xs) / n
    c = 2 * sum(xs) / n
    d = 2.0
    mid, rad = (a + d) / 2, math.hypot((a - d) / 2, c)
    return mid - rad, mid + rad


def steep_direction(xs: Sequence[float]) -> tuple[float, float]:
    """Unit eigenvector of the Hessian for the largest eigenvalue (the steepest direction)."""
    n = len(xs)
    a, c, d = 2 * sum(x * x for x in xs) / n, 2 * sum(xs) / n, 2.0
    lam = hessian_eigenvalues(xs)[1]
    vx, vy = (c, lam - a) if abs(c) > 1e-15 else ((1.0, 0.0) if a >= d else (0.0, 1.0))
    length = math.hypot(vx, vy)
    return vx / length, vy / length


def regression_descent(
    xs: Sequence[float],
    ys: Sequence[float],
    init: tuple[float, float],
    learning_rate: float,
    epochs: int,
) -> list[dict[str, float]]:
    """Full-batch gradient descent on MSE; one row per epoch (0 = the start). Stops early if the
    values overflow."""
    w, b = init
    rows = []
    for epoch in range(epochs + 1):
        value = mse(w, b, xs, ys)
        gw, gb = mse_gradient(w, b, xs, ys)
        if not all(math.isfinite(v) for v in (w, b, value, gw, gb)):
            break
        rows.append({"epoch": epoch, "w": w, "b": b, "loss": value, "grad_w": gw, "grad_b": gb})
        w, b = w - learning_rate * gw, b - learning_rate * gb
    return rows


def classify_learning_rate(
    learning_rate: float, lam_min: float, lam_max: float, epochs: int
) -> str:
    """slow / good / oscillating / divergent, from the Hessian's eigenvalues alone."""
    if abs(1 - learning_rate * lam_max) >= 1:
        return "divergent"
    if 1 - learning_rate * lam_max < 0:
        return "oscillating"
    if (1 - learning_rate * lam_min) ** epochs > SLOW_SHRINK:
        return "slow"
    return "good"


def regime_boundaries(lam_min: float, lam_max: float, epochs: int) -> dict[str, float]:
    """The learning rates where the regime changes, for this curvature and epoch budget."""
    return {
        "slow_below": (1 - SLOW_SHRINK ** (1 / max(epochs, 1))) / lam_min,
        "oscillating_above": 1 / lam_max,
        "divergent_above": 2 / lam_max,
    }


# --- the chapter ---------------------------------------------------------------------------------


def run_gradients(
    output_dir: str | os.PathLike[str] | None = None,
    *,
    learning_rate: float = 0.01,
    steps: int = 1000,
    init: Sequence[float] | str = DEFAULT_INIT,
    sweep: Sequence[float] | str = DEFAULT_SWEEP,
    delta: float = 1e-5,
    quiet: bool = False,
    stream: TextIO | None = None,
) -> ChapterResult:
    """Run the gradients chapter: write its evidence into ``output_dir`` and print the summary.
    ``steps`` is the number of regression epochs; ``delta`` the finite-difference step h."""
    out = Path(output_dir if output_dir is not None else DEFAULT_DIR)
    learning_rate = check_positive("--learning-rate", learning_rate)
    epochs = check_count("--steps", steps, 1, 100_000)
    w0, b0 = parse_numbers("--init", init, count=2)
    rates = parse_numbers("--sweep", sweep)
    if len(rates) > 12:
        raise WorkshopError(f"--sweep takes at most 12 learning rates, got {len(rates)}")
    for rate in rates:
        check_positive("--sweep", rate)
    h = check_positive("--delta", delta)
    if h > 1:
        raise WorkshopError(f"--delta must be a small step (at most 1), got {h!r}")
    params = {
        "learning_rate": plain(learning_rate),
        "steps": epochs,
        "init": [plain(w0), plain(b0)],
        "sweep": [plain(r) for r in rates],
        "delta": h,
    }

    square: list[dict[str, Any]] = [
        {
            "function": "x^2",
            "x": plain(x),
            "forward_difference": round(forward_difference(lambda t: t * t, x, h), 6),
            "central_difference": round(central_difference(lambda t: t * t, x, h), 6),
            "analytic": plain(2 * x),
            "central_abs_error": float(
                f"{abs(central_difference(lambda t: t * t, x, h) - 2 * x):.3e}"
            ),
        }
        for x in POINTS
    ]
    chain = chain_rule_rows(POINTS, h)

    xs, ys = DOSES, EFFECTS
    descent = regression_descent(xs, ys, (w0, b0), learning_rate, epochs)
    first, last = descent[0], descent[-1]
    w_star, b_star = closed_form_line(xs, ys)
    best_loss = mse(w_star, b_star, xs, ys)
    lam_min, lam_max = hessian_eigenvalues(xs)
    bounds = regime_boundaries(lam_min, lam_max, epochs)
    steep = steep_direction(xs)

    sweep_rows: list[dict[str, Any]] = []
    curves = []
    for rate in rates:
        run = regression_descent(xs, ys, (w0, b0), rate, epochs)
        flips = 0
        prev = None
        for point in run[: FLIP_WINDOW + 1]:
            proj = (point["w"] - w_star) * steep[0] + (point["b"] - b_star) * steep[1]
            if prev is not None and proj * prev < 0:
                flips += 1
            prev = proj
        overflowed = len(run) < epochs + 1
        end = run[-1]
        sweep_rows.append(
            {
                "learning_rate": plain(rate),
                "regime": classify_learning_rate(rate, lam_min, lam_max, epochs),
                "steep_factor": round(1 - rate * lam_max, 6),
                "flat_factor": round(1 - rate * lam_min, 6),
                "epochs_run": end["epoch"],
                "final_w": _fmt_big(end["w"]),
                "final_b": _fmt_big(end["b"]),
                "final_loss": "overflow" if overflowed else _fmt_big(end["loss"]),
                "sign_flips_first_20": flips,
            }
        )
        curves.append((rate, run))

    main_regime = classify_learning_rate(learning_rate, lam_min, lam_max, epochs)
    summary = {
        "square_central": {row["x"]: row["central_difference"] for row in square},
        "chain_numeric": {row["x"]: row["central_difference"] for row in chain},
        "start_w": round(first["w"], 4),
        "start_b": round(first["b"], 4),
        "start_loss": round(first["loss"], 4),
        "final_w": round(last["w"], 4),
        "final_b": round(last["b"], 4),
        "final_loss": round(last["loss"], 4),
        "closed_form_w": round(w_star, 4),
        "closed_form_b": round(b_star, 4),
        "closed_form_loss": round(best_loss, 4),
        "curvature": [round(lam_min, 4), round(lam_max, 4)],
        "boundaries": {k: round(v, 4) for k, v in bounds.items()},
        "sweep": {row["learning_rate"]: row["regime"] for row in sweep_rows},
        "regime": main_regime,
    }

    files = [out / name for name in FILES]
    report = Report()
    report.step(1, f"Numerical derivative of x^2 (h={h:g})")
    for row in square:
        report.line(
            f"x={row['x']} forward={row['forward_difference']}"
            f" central={row['central_difference']} exact={row['analytic']}"
        )
    report.step(2, "Chain rule: u = 2x, y = u^3, dy/dx = 3u^2 * 2 = 24x^2")
    for row in chain:
        report.line(
            f"x={row['x']} numeric={row['central_difference']} chain_rule={row['chain_rule']}"
        )
    report.step(
        3,
        f"Linear regression by gradient descent (MSE, lr {plain(learning_rate)}, {epochs} epochs)",
    )
    report.line(f"start w={_f4(first['w'])} b={_f4(first['b'])} loss={_f4(first['loss'])}")
    if len(descent) < epochs + 1:
        report.line(f"diverged: values overflowed after epoch {last['epoch']}")
    else:
        report.line(f"final w={_f4(last['w'])} b={_f4(last['b'])} loss={_f4(last['loss'])}")
    report.line(f"closed_form w={w_star:.4f} b={b_star:.4f} loss={best_loss:.4f}")
    if main_regime in ("oscillating", "divergent"):
        edge = "2/λmax" if main_regime == "divergent" else "1/λmax"
        limit = bounds["divergent_above" if main_regime == "divergent" else "oscillating_above"]
        report.line(
            f"note: learning rate {plain(learning_rate)} is above {edge} = {limit:.4f}:"
            f" the run is {main_regime}"
        )
    report.step(4, "Learning-rate sweep")
    report.line(
        f"curvature={lam_min:.4f},{lam_max:.4f} slow_below={bounds['slow_below']:.4f}"
        f" oscillating_above={bounds['oscillating_above']:.4f}"
        f" divergent_above={bounds['divergent_above']:.4f}"
    )
    for row in sweep_rows:
        report.line(f"lr={row['learning_rate']} {row['regime']} final_loss={row['final_loss']}")
    report.step(5, "Evidence files")
    for path in files:
        report.line(str(path))

    write_text(out / "README.md", _readme(params, summary))
    write_csv(out / "derivatives.csv", list(square[0]), [list(r.values()) for r in square])
    write_csv(out / "chain_rule.csv", list(chain[0]), [list(r.values()) for r in chain])
    write_csv(
        out / "regression_descent.csv",
        ["epoch", "w", "b", "loss", "grad_w", "grad_b", "learning_rate"],
        [
            [
                r["epoch"],
                round(r["w"], 6),
                round(r["b"], 6),
                round(r["loss"], 6),
                round(r["grad_w"], 6),
                round(r["grad_b"], 6),
                plain(learning_rate),
            ]
            for r in descent
        ],
    )
    write_csv(
        out / "learning_rate_sweep.csv", list(sweep_rows[0]), [list(r.values()) for r in sweep_rows]
    )
    write_text(out / "gradient_cards.md", _cards(square, chain, summary, sweep_rows, params))
    line_xs = (0.0, max(xs) + 1)
    write_text(
        out / "regression_fit.svg",
        svg.line_chart(
            "勾配降下による線形回帰",
            [
                svg.Series(
                    "data",
                    list(zip(xs, ys, strict=True)),
                    color="#333333",
                    line=False,
                    label_last=False,
                ),
                svg.Series(
                    "gradient descent",
                    [(x, last["w"] * x + last["b"]) for x in line_xs],
                    markers=False,
                    label_last=False,
                ),
                svg.Series(
                    f"least squares w={w_star:g} b={b_star:g}",
                    [(x, w_star * x + b_star) for x in line_xs],
                    color="#2ca02c",
                    dashed=True,
                    markers=False,
                    label_last=False,
                ),
            ],
            xlabel="dose",
            ylabel="effect",
            subtitle=(
                f"w = {_f4(last['w'])}, b = {_f4(last['b'])}, MSE = {_f4(last['loss'])}"
                f" (optimum {best_loss:.4f})"
            ),
        ),
    )
    write_text(out / "learning_rate_sweep.svg", _sweep_svg(curves, sweep_rows, bounds, epochs))
    text = report.text()
    emit(text, quiet, stream)
    return ChapterResult(CHAPTER, out, files, summary, text, params)


def _f4(value: float) -> str:
    """Four decimals, or scientific notation once a divergent run makes the number huge."""
    return f"{value:.4f}" if abs(value) < 1e6 else f"{value:.4e}"


def _fmt_big(value: float) -> float | str:
    return round(value, 4) if abs(value) < 1e6 else f"{value:.3e}"


def _sweep_svg(
    curves: Sequence[tuple[float, list[dict[str, float]]]],
    rows: Sequence[dict[str, Any]],
    bounds: dict[str, float],
    epochs: int,
) -> str:
    series = []
    shown = min(epochs, 200)
    for (rate, run), row in zip(curves, rows, strict=True):
        start = run[0]["loss"]
        points = []
        for r in run[: shown + 1]:
            if r["loss"] > 1000 * start:  # a divergent run: stop before it flattens the chart
                break
            points.append((r["epoch"], math.log10(r["loss"])))
        series.append(svg.Series(f"lr {plain(rate)}: {row['regime']}", points, markers=False))
    return svg.line_chart(
        "学習率と収束の関係",
        series,
        xlabel=f"epoch (first {shown}; divergent runs cut at 1000x the start loss)",
        ylabel="log10(MSE)",
        subtitle=(
            f"oscillating above 1/λmax = {bounds['oscillating_above']:.4f},"
            f" divergent above 2/λmax = {bounds['divergent_above']:.4f},"
            f" slow below {bounds['slow_below']:.4f}"
        ),
        value_format="{:.2f}",
    )


def _readme(params: dict[str, Any], summary: dict[str, Any]) -> str:
    b = summary["boundaries"]
    return f"""# Gradients workshop: evidence

Written by `textsieve workshop --chapter gradients`.

## Rerun

```
textsieve workshop --chapter gradients {rerun_flags(params)}
```

`-o DIR` writes the files elsewhere.

## Results

- Central differences of x^2 match 2x: {summary["square_central"]}.
- The chain rule dy/dx = 24x^2 for y = (2x)^3 matches the numeric slope: {summary["chain_numeric"]}.
- Linear regression (MSE, learning rate {params["learning_rate"]}, {params["steps"]} epochs):
  from w = {summary["start_w"]}, b = {summary["start_b"]} (loss {summary["start_loss"]}) to
  w = {summary["final_w"]}, b = {summary["final_b"]} (loss {summary["final_loss"]}); least squares
  gives w = {summary["closed_form_w"]}, b = {summary["closed_form_b"]} (loss
  {summary["closed_form_loss"]}).
- Curvature (Hessian eigenvalues) {summary["curvature"]}: slow below {b["slow_below"]},
  oscillating above {b["oscillating_above"]}, divergent above {b["divergent_above"]}.
  Sweep: {summary["sweep"]}.

## Review order

1. `gradient_cards.md`
2. `derivatives.csv`, `chain_rule.csv`
3. `regression_descent.csv`, `regression_fit.svg`
4. `learning_rate_sweep.csv`, `learning_rate_sweep.svg`
"""


def _cards(
    square: Sequence[dict[str, Any]],
    chain: Sequence[dict[str, Any]],
    summary: dict[str, Any],
    sweep_rows: Sequence[dict[str, Any]],
    params: dict[str, Any],
) -> str:
    b = summary["boundaries"]
    square_table = markdown_table(
        ["x", "forward", "central", "2x"],
        [[r["x"], r["forward_difference"], r["central_difference"], r["analytic"]] for r in square],
    )
    chain_table = markdown_table(
        ["x", "dy/du = 3u^2", "du/dx", "product", "numeric"],
        [[r["x"], r["dy_du"], r["du_dx"], r["chain_rule"], r["central_difference"]] for r in chain],
    )
    sweep_table = markdown_table(
        ["learning rate", "regime", "1 - lr·λmax", "1 - lr·λmin", "final loss"],
        [
            [r["learning_rate"], r["regime"], r["steep_factor"], r["flat_factor"], r["final_loss"]]
            for r in sweep_rows
        ],
    )
    return f"""# Gradient cards

## Derivative

The slope of a function at a point. Numerically: nudge x by h = {params["delta"]:g} and divide.
The forward difference is off by about h; the central difference is exact for a parabola.
In model language, a derivative says how much the loss moves when one weight moves.

{square_table}
See `derivatives.csv`.

## Chain rule

A network is functions inside functions; the chain rule multiplies their local slopes, which is
what backpropagation does layer by layer. For u = 2x, y = u^3: dy/dx = 3u^2 · 2 = 24x^2.

{chain_table}
See `chain_rule.csv`.

## Gradient descent on a real loss

Fitting effect = w · dose + b by mean squared error. Each epoch moves (w, b) against the gradient
(2/n Σ r·x, 2/n Σ r). After {params["steps"]} epochs at learning rate {params["learning_rate"]}:
w = {summary["final_w"]}, b = {summary["final_b"]}, loss {summary["final_loss"]}; the exact least
squares line is w = {summary["closed_form_w"]}, b = {summary["closed_form_b"]}. See
`regression_descent.csv` and `regression_fit.svg`.

## Learning rate and curvature

The Hessian's eigenvalues {summary["curvature"]} are the loss's curvature in its steepest and
flattest directions. Each step multiplies the error along them by 1 - lr·λ: above
2/λmax = {b["divergent_above"]} it grows (divergent), above 1/λmax = {b["oscillating_above"]} it
changes sign each step (oscillating), and below {b["slow_below"]} the flat direction keeps more
than 10% of its error after {params["steps"]} epochs (slow).

{sweep_table}
See `learning_rate_sweep.csv` and `learning_rate_sweep.svg`.
"""
