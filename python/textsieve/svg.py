"""textsieve's one SVG writer, stdlib only: tick values and labels shared by every chart, and the
workshop's charts (horizontal bars, grouped bars, lines, a heatmap). The dedup report
(:mod:`textsieve.report`) and the language model's loss curve (:mod:`textsieve.lm.history`) draw
with the same ticks and labels.

The charts are plain SVG 1.1 with axes, tick labels, value labels and a legend, so they open in any
browser or image viewer without a plotting library. Coordinates are printed with fixed precision so
the same data always gives the same bytes.

>>> svg = line_chart("loss", [Series("loss", [(0, 5.0), (1, 2.2), (2, 1.2)])], xlabel="step",
...                  ylabel="loss")
>>> svg.startswith("<?xml")
True
>>> nice_ticks(0, 25, 4, integer=True), [compact_number(v) for v in (950, 1_250_000)]
([0, 10, 20, 30], ['950', '1.25M'])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

WIDTH = 860
HEIGHT = 440
FONT = "'Noto Sans CJK JP', 'Hiragino Sans', 'Yu Gothic', 'Meiryo', 'DejaVu Sans', sans-serif"
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
AXIS = "#333333"
GRID = "#e3e3e3"


@dataclass(frozen=True)
class Series:
    """One line of a line chart: ``points`` are (x, y); non-finite y values are left out."""

    name: str
    points: Sequence[tuple[float, float]]
    color: str | None = None
    dashed: bool = False
    markers: bool = True
    label_last: bool = True
    line: bool = True


def _num(v: float) -> str:
    """A coordinate with two decimals and no trailing zeros (``12.5``, ``40``)."""
    text = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _attr(value: object) -> str:
    return escape(str(value), {'"': "&quot;"})


def nice_ticks(lo: float, hi: float, target: int = 5, *, integer: bool = False) -> list[float]:
    """Round tick values covering [lo, hi], about ``target`` intervals (1, 2, 2.5, 5 x 10^k);
    ``integer=True`` (count axes): whole steps of at least 1, returned as ints."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"tick range must be finite, got [{lo}, {hi}]")
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(target, 1)
    if integer:
        raw = max(raw, 1.0)
    mag = 10.0 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if integer and mag < 10 else (1, 2, 2.5, 5, 10)
    step = next(m * mag for m in steps if raw <= m * mag * (1 + 1e-12))
    start = math.floor(lo / step + 1e-9) * step
    end = math.ceil(hi / step - 1e-9) * step
    count = int(round((end - start) / step))
    ticks = [_clean(start + i * step) for i in range(count + 1)]
    return [int(t) for t in ticks] if integer else ticks


def compact_number(v: float) -> str:
    """A short axis label: ``950``, ``12.5k``, ``1.25M``, ``3G`` (at most 3 significant digits)."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.3g}"


def _clean(v: float) -> float:
    v = float(f"{v:.12g}")
    return 0.0 if v == 0 else v


def tick_label(v: float, ticks: Sequence[float]) -> str:
    """Label for a tick with just enough decimals to tell neighbouring ticks apart."""
    biggest = max(abs(t) for t in ticks) if ticks else abs(v)
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    if biggest >= 1e6 or (step and step < 1e-4):
        return f"{v:.3g}"
    decimals = 0
    while decimals < 6 and abs(round(step, decimals) - step) > step * 1e-9:
        decimals += 1
    return f"{v:.{decimals}f}"


class _Canvas:
    def __init__(self, title: str, subtitle: str | None, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.parts: list[str] = []
        self.title = title
        self.subtitle = subtitle

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(
        self,
        x: float,
        y: float,
        content: str,
        *,
        size: int = 12,
        anchor: str = "start",
        weight: str = "normal",
        fill: str = AXIS,
        rotate: float | None = None,
        baseline: str | None = None,
    ) -> None:
        extra = f' transform="rotate({_num(rotate)} {_num(x)} {_num(y)})"' if rotate else ""
        if baseline:
            extra += f' dominant-baseline="{baseline}"'
        bold = f' font-weight="{weight}"' if weight != "normal" else ""
        self.add(
            f'<text x="{_num(x)}" y="{_num(y)}" font-size="{size}" text-anchor="{anchor}"'
            f' fill="{fill}"{bold}{extra}>{escape(content)}</text>'
        )

    def line(
        self, x1: float, y1: float, x2: float, y2: float, *, stroke: str = AXIS, width: float = 1
    ) -> None:
        self.add(
            f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}"'
            f' stroke="{stroke}" stroke-width="{_num(width)}"/>'
        )

    def render(self) -> str:
        head = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{self.width}"'
            f' height="{self.height}" viewBox="0 0 {self.width} {self.height}"'
            f' font-family="{_attr(FONT)}">',
            f"<title>{escape(self.title)}</title>",
            f'<rect x="0" y="0" width="{self.width}" height="{self.height}" fill="#ffffff"/>',
        ]
        titles = []
        titles.append(
            f'<text x="{_num(self.width / 2)}" y="28" font-size="18" text-anchor="middle"'
            f' fill="{AXIS}" font-weight="bold">{escape(self.title)}</text>'
        )
        if self.subtitle:
            titles.append(
                f'<text x="{_num(self.width / 2)}" y="48" font-size="12" text-anchor="middle"'
                f' fill="#555555">{escape(self.subtitle)}</text>'
            )
        return "\n".join(head + titles + self.parts + ["</svg>"]) + "\n"


def horizontal_bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    xlabel: str,
    subtitle: str | None = None,
    value_format: str = "{:.4f}",
    x_range: tuple[float, float] | None = None,
    highlight: int | None = 0,
) -> str:
    """One horizontal bar per label, value printed at the end of each bar.

    ``highlight`` (an index) draws that bar in the accent colour, for example the best match.
    """
    if len(labels) != len(values):
        raise ValueError("labels and values must have the same length")
    canvas = _Canvas(title, subtitle, WIDTH, 110 + 56 * max(len(labels), 1))
    left, right, top = 170, WIDTH - 80, 70
    bottom = canvas.height - 56
    lo, hi = x_range if x_range else (min(0.0, *values), max(0.0, *values))
    ticks = nice_ticks(lo, hi)
    lo, hi = ticks[0], ticks[-1]

    def sx(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (right - left)

    for t in ticks:
        canvas.line(sx(t), top, sx(t), bottom, stroke=GRID)
        canvas.text(sx(t), bottom + 18, tick_label(t, ticks), anchor="middle", size=11)
    canvas.line(left, bottom, right, bottom)
    canvas.line(sx(max(lo, 0.0)), top, sx(max(lo, 0.0)), bottom)
    canvas.text((left + right) / 2, bottom + 40, xlabel, anchor="middle", size=13)
    band = (bottom - top) / max(len(labels), 1)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * band + band * 0.2
        h = band * 0.6
        x0, x1 = sorted((sx(max(lo, 0.0)), sx(value)))
        color = PALETTE[1] if i == highlight else PALETTE[0]
        canvas.add(
            f'<rect x="{_num(x0)}" y="{_num(y)}" width="{_num(x1 - x0)}" height="{_num(h)}"'
            f' fill="{color}"><title>{escape(label)}: {value_format.format(value)}</title></rect>'
        )
        canvas.text(left - 8, y + h / 2 + 4, label, anchor="end", size=12)
        canvas.text(x1 + 6, y + h / 2 + 4, value_format.format(value), size=12, weight="bold")
    return canvas.render()


def grouped_bar_chart(
    title: str,
    categories: Sequence[str],
    groups: Sequence[tuple[str, Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    subtitle: str | None = None,
    value_format: str = "{:.3f}",
) -> str:
    """Vertical bars: one cluster per category, one bar per group, with a legend."""
    canvas = _Canvas(title, subtitle, WIDTH, HEIGHT)
    left, right, top, bottom = 80, WIDTH - 210, 70, HEIGHT - 60
    values = [v for _, vs in groups for v in vs]
    ticks = nice_ticks(0.0, max(values) * 1.1 if values else 1.0)
    lo, hi = ticks[0], ticks[-1]

    def sy(v: float) -> float:
        return bottom - (v - lo) / (hi - lo) * (bottom - top)

    _y_axis(canvas, ticks, sy, left, right, top, bottom, ylabel)
    canvas.text((left + right) / 2, bottom + 42, xlabel, anchor="middle", size=13)
    slot = (right - left) / max(len(categories), 1)
    bar = slot * 0.8 / max(len(groups), 1)
    for c, category in enumerate(categories):
        x_start = left + c * slot + slot * 0.1
        canvas.text(left + (c + 0.5) * slot, bottom + 20, category, anchor="middle", size=12)
        for g, (name, vs) in enumerate(groups):
            v = vs[c]
            x = x_start + g * bar
            color = PALETTE[g % len(PALETTE)]
            canvas.add(
                f'<rect x="{_num(x)}" y="{_num(sy(v))}" width="{_num(bar * 0.92)}"'
                f' height="{_num(sy(lo) - sy(v))}" fill="{color}">'
                f"<title>{escape(name)} {escape(category)}: {value_format.format(v)}</title></rect>"
            )
            canvas.text(x + bar * 0.46, sy(v) - 4, value_format.format(v), anchor="middle", size=9)
    _legend(
        canvas, [(name, PALETTE[g % len(PALETTE)], "box") for g, (name, _) in enumerate(groups)]
    )
    return canvas.render()


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    xlabel: str,
    ylabel: str,
    subtitle: str | None = None,
    y_range: tuple[float, float] | None = None,
    value_format: str = "{:.4g}",
) -> str:
    """Lines over a shared x axis, with markers, a legend and the last value of each line
    (unless the series says ``label_last=False``)."""
    canvas = _Canvas(title, subtitle, WIDTH, HEIGHT)
    left, right, top, bottom = 90, WIDTH - 250, 70, HEIGHT - 60
    finite = [(x, y) for s in series for x, y in s.points if math.isfinite(x) and math.isfinite(y)]
    if not finite:
        finite = [(0.0, 0.0), (1.0, 1.0)]
    xs = [p[0] for p in finite]
    ys = [p[1] for p in finite]
    x_ticks = nice_ticks(min(xs), max(xs), target=min(10, max(2, len(set(xs)) - 1)))
    lo, hi = y_range if y_range else (min(ys), max(ys))
    y_ticks = nice_ticks(min(lo, min(ys)), max(hi, max(ys)))
    x_lo, x_hi, y_lo, y_hi = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def sx(v: float) -> float:
        return left + (v - x_lo) / (x_hi - x_lo) * (right - left)

    def sy(v: float) -> float:
        return bottom - (v - y_lo) / (y_hi - y_lo) * (bottom - top)

    _y_axis(canvas, y_ticks, sy, left, right, top, bottom, ylabel)
    for t in x_ticks:
        canvas.line(sx(t), bottom, sx(t), bottom + 5)
        canvas.text(sx(t), bottom + 20, tick_label(t, x_ticks), anchor="middle", size=11)
    canvas.text((left + right) / 2, bottom + 42, xlabel, anchor="middle", size=13)
    legend = []
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        pts = [(x, y) for x, y in s.points if math.isfinite(x) and math.isfinite(y)]
        legend.append((s.name, color, "dashed" if s.dashed else "solid" if s.line else "dot"))
        if not pts:
            continue
        dash = ' stroke-dasharray="7 5"' if s.dashed else ""
        if s.line:
            coords = " ".join(f"{_num(sx(x))},{_num(sy(y))}" for x, y in pts)
            canvas.add(
                f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2.2"'
                f' stroke-linejoin="round"{dash}><title>{escape(s.name)}</title></polyline>'
            )
        if s.markers or not s.line:
            radius = "3.2" if s.line else "5"
            for x, y in pts:
                canvas.add(
                    f'<circle cx="{_num(sx(x))}" cy="{_num(sy(y))}" r="{radius}" fill="{color}">'
                    f"<title>{escape(s.name)} ({x:g}, {value_format.format(y)})</title></circle>"
                )
        if s.label_last:
            x, y = pts[-1]
            canvas.text(sx(x) + 6, sy(y) - 6, value_format.format(y), size=11, fill=color)
    _legend(canvas, legend)
    return canvas.render()


def heatmap(
    title: str,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    values: Sequence[Sequence[float]],
    *,
    xlabel: str,
    ylabel: str,
    subtitle: str | None = None,
    value_format: str = "{:.3f}",
) -> str:
    """A matrix of coloured cells (white to dark blue, scaled to the largest value), each labelled."""
    n_rows, n_cols = len(row_labels), len(col_labels)
    cell = 62
    left, top = 110, 90
    width = left + n_cols * cell + 150
    height = top + n_rows * cell + 70
    canvas = _Canvas(title, subtitle, width, height)
    vmax = max((v for row in values for v in row), default=0.0) or 1.0
    for j, label in enumerate(col_labels):
        canvas.text(left + (j + 0.5) * cell, top - 10, label, anchor="middle", size=15)
    for i, label in enumerate(row_labels):
        canvas.text(left - 12, top + (i + 0.5) * cell + 5, label, anchor="end", size=15)
        for j in range(n_cols):
            v = values[i][j]
            t = max(0.0, min(1.0, v / vmax))
            fill = _blend((247, 251, 255), (8, 48, 107), t)
            ink = "#ffffff" if t > 0.55 else AXIS
            x, y = left + j * cell, top + i * cell
            canvas.add(
                f'<rect x="{_num(x)}" y="{_num(y)}" width="{cell}" height="{cell}" fill="{fill}"'
                f' stroke="#ffffff"><title>{escape(label)} → {escape(col_labels[j])}:'
                f" {value_format.format(v)}</title></rect>"
            )
            canvas.text(
                x + cell / 2,
                y + cell / 2 + 4,
                value_format.format(v),
                anchor="middle",
                size=11,
                fill=ink,
            )
    canvas.text(
        left + n_cols * cell / 2, top + n_rows * cell + 30, xlabel, anchor="middle", size=13
    )
    canvas.text(26, top + n_rows * cell / 2, ylabel, anchor="middle", size=13, rotate=-90)
    # colour scale
    sx = left + n_cols * cell + 40
    steps = 10
    for k in range(steps):
        t = 1 - k / (steps - 1)
        canvas.add(
            f'<rect x="{sx}" y="{_num(top + k * n_rows * cell / steps)}" width="18"'
            f' height="{_num(n_rows * cell / steps + 0.5)}"'
            f' fill="{_blend((247, 251, 255), (8, 48, 107), t)}"/>'
        )
    canvas.text(sx + 24, top + 10, value_format.format(vmax), size=11)
    canvas.text(sx + 24, top + n_rows * cell, value_format.format(0.0), size=11)
    return canvas.render()


def _blend(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> str:
    r, g, bl = (round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
    return f"#{r:02x}{g:02x}{bl:02x}"


def _y_axis(
    canvas: _Canvas,
    ticks: Sequence[float],
    sy: Callable[[float], float],
    left: float,
    right: float,
    top: float,
    bottom: float,
    ylabel: str,
) -> None:
    for t in ticks:
        canvas.line(left, sy(t), right, sy(t), stroke=GRID)
        canvas.text(left - 8, sy(t) + 4, tick_label(t, ticks), anchor="end", size=11)
    canvas.line(left, top, left, bottom)
    canvas.line(left, bottom, right, bottom)
    canvas.text(22, (top + bottom) / 2, ylabel, anchor="middle", size=13, rotate=-90)


def _legend(canvas: _Canvas, entries: Sequence[tuple[str, str, str]]) -> None:
    """Legend at the top right; each entry is (name, colour, "solid" | "dashed" | "dot" | "box")."""
    x = canvas.width - 190
    for i, (name, color, style) in enumerate(entries):
        y = 80 + i * 22
        if style == "dot":
            canvas.add(f'<circle cx="{x + 13}" cy="{y}" r="5" fill="{color}"/>')
        elif style == "box":
            canvas.add(f'<rect x="{x + 4}" y="{y - 7}" width="18" height="14" fill="{color}"/>')
        else:
            dash = ' stroke-dasharray="7 5"' if style == "dashed" else ""
            canvas.add(
                f'<line x1="{x}" y1="{y}" x2="{x + 26}" y2="{y}" stroke="{color}"'
                f' stroke-width="3"{dash}/>'
            )
        canvas.text(x + 32, y + 4, name, size=12)
