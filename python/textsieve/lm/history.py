"""The training history of a language model: one row per evaluation, written as CSV and SVG
(ticks and labels from :mod:`textsieve.svg`).

Standard library only. Files are written atomically, so a curve on disk is always complete.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from html import escape

from textsieve.io import atomic_write
from textsieve.svg import compact_number, nice_ticks

COLUMNS = (
    "step",
    "chars",
    "train_seconds",
    "wall_seconds",
    "lr",
    "train_loss",
    "val_loss",
    "val_chars",
)


@dataclass
class HistoryRow:
    """One point of the curve. ``train_loss`` is the mean over the steps since the last row;
    ``val_loss`` (nats/char over ``val_chars`` predicted validation characters) is None when no
    validation text was given."""

    step: int
    chars: int
    train_seconds: float
    wall_seconds: float
    lr: float
    train_loss: float
    val_loss: float | None = None
    val_chars: int | None = None


@dataclass
class History:
    """Rows in training order, with the summary of the final full validation pass."""

    rows: list[HistoryRow] = field(default_factory=list)
    final_val_loss: float | None = None

    def append(self, row: HistoryRow) -> None:
        self.rows.append(row)

    @property
    def train_loss(self) -> list[float]:
        return [r.train_loss for r in self.rows]

    @property
    def val_loss(self) -> list[float | None]:
        return [r.val_loss for r in self.rows]

    def write_csv(self, path: str | os.PathLike[str]) -> None:
        """One header line, then one line per row; an empty field where a value is missing."""
        with atomic_write(path, "w") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(COLUMNS)
            for row in self.rows:
                values = asdict(row)
                writer.writerow(["" if values[c] is None else _fmt(values[c]) for c in COLUMNS])

    @classmethod
    def read_csv(cls, path: str | os.PathLike[str]) -> History:
        history = cls()
        with open(path, encoding="utf-8", newline="") as fh:
            for rec in csv.DictReader(fh):
                history.append(
                    HistoryRow(
                        step=int(rec["step"]),
                        chars=int(rec["chars"]),
                        train_seconds=float(rec["train_seconds"]),
                        wall_seconds=float(rec["wall_seconds"]),
                        lr=float(rec["lr"]),
                        train_loss=float(rec["train_loss"]),
                        val_loss=float(rec["val_loss"]) if rec["val_loss"] else None,
                        val_chars=int(rec["val_chars"]) if rec.get("val_chars") else None,
                    )
                )
        return history

    def write_svg(
        self,
        path: str | os.PathLike[str],
        *,
        title: str = "Character language model: loss per character",
        references: Mapping[str, float] | None = None,
    ) -> None:
        """Train and validation loss (nats/char) against training characters seen.

        ``references`` draws labelled horizontal lines, e.g. ``{"add-k bigram": 2.48}``.
        """
        with atomic_write(path, "w") as fh:
            fh.write(loss_curve_svg(self, title=title, references=references or {}))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def loss_curve_svg(
    history: History,
    *,
    title: str,
    references: Mapping[str, float],
    width: int = 800,
    height: int = 420,
) -> str:
    left, right, top, bottom = 64, width - 240, 48, height - 52
    train: list[tuple[float, float]] = []
    for r in history.rows:
        if math.isfinite(r.train_loss) and (not train or train[-1][0] != r.chars):
            train.append((r.chars, r.train_loss))
    scored = [r for r in history.rows if r.val_loss is not None]
    # the curve is drawn over one validation size; a final pass over more is a marked point
    probe = scored[0].val_chars if scored else None
    val: list[tuple[float, float]] = []
    full: list[tuple[float, float, int]] = []
    for r in scored:
        loss = float(r.val_loss)  # type: ignore[arg-type]  # scored rows have a val_loss
        if r.val_chars == probe:
            val.append((r.chars, loss))
        else:
            full.append((r.chars, loss, r.val_chars or 0))
    xs = [p[0] for p in train + val] + [p[0] for p in full] or [0, 1]
    ys = [p[1] for p in train + val] + [p[1] for p in full] + list(references.values())
    ys = ys or [0.0, 1.0]
    xticks = nice_ticks(0, max(xs))
    yticks = nice_ticks(min(ys) - 0.05, max(ys) + 0.05)
    x0, x1 = xticks[0], xticks[-1]
    y0, y1 = yticks[0], yticks[-1]

    def sx(v: float) -> float:
        return left + (v - x0) / ((x1 - x0) or 1.0) * (right - left)

    def sy(v: float) -> float:
        return bottom - (v - y0) / ((y1 - y0) or 1.0) * (bottom - top)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2:.1f}" y="24" text-anchor="middle" font-size="15">{escape(title)}</text>',
    ]
    for t in yticks:
        y = sy(t)
        out.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{t:g}</text>')
    for t in xticks:
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" stroke="#f0f0f0"/>')
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{compact_number(t)}</text>'
        )
    out.append(
        f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
        'fill="none" stroke="#444"/>'
    )
    out.append(
        f'<text x="{(left + right) / 2:.1f}" y="{height - 14}" text-anchor="middle">'
        "training characters seen</text>"
    )
    out.append(
        f'<text x="16" y="{(top + bottom) / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 16 {(top + bottom) / 2:.1f})">loss (nats per character)</text>'
    )
    legend = []
    for i, (name, value) in enumerate(sorted(references.items(), key=lambda kv: -kv[1])):
        y = sy(value)
        color = ("#888888", "#aa7700", "#6b8e23", "#8a2be2")[i % 4]
        out.append(
            f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{color}" '
            'stroke-dasharray="5 4"/>'
        )
        legend.append((f"{name} ({value:.2f})", color, "5 4"))
    for name, points, color in (("train", train, "#1f77b4"), ("validation", val, "#d62728")):
        if points:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
            legend.append((f"{name} ({points[-1][1]:.3f})", color, ""))
    for x, y, count in full:
        out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="#d62728"/>')
        legend.append((f"validation, all {count:,} chars ({y:.3f})", "#d62728", "dot"))
    for i, (name, color, dash) in enumerate(legend):
        y = top + 10 + 20 * i
        if dash == "dot":
            out.append(f'<circle cx="{right + 24}" cy="{y}" r="4" fill="{color}"/>')
        else:
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(
                f'<line x1="{right + 12}" x2="{right + 36}" y1="{y}" y2="{y}" stroke="{color}" '
                f'stroke-width="2"{dash_attr}/>'
            )
        out.append(f'<text x="{right + 42}" y="{y + 4}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
