"""A small self-contained HTML report of a dedup run: no JavaScript, no external files, stdlib only.

It shows the run's numbers, a histogram of the Jaccard similarity of the verified pairs, the
distribution of cluster sizes (both as inline SVG bar charts, with hover tooltips from SVG
``<title>``), and the largest clusters with text snippets side by side, the words a duplicate does
not share with the kept document highlighted. Every piece of corpus text is HTML-escaped.

>>> page = render_report(
...     similarities=[0.85, 0.9, 1.0],
...     cluster_sizes=[3, 2],
...     clusters=[{"cluster": 0, "members": [
...         {"id": "a", "text": "the cat sat", "kept": True, "jaccard": None},
...         {"id": "b", "text": "the cat <sat>", "kept": False, "jaccard": 0.9}]}],
...     summary={"documents in": 5, "kept": 3, "removed": 2},
...     threshold=0.8,
... )
>>> page.startswith("<!DOCTYPE html>") and "<sat>" not in page and "<script" not in page
True
"""

from __future__ import annotations

import difflib
import html
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from textsieve.io import atomic_write
from textsieve.svg import compact_number, nice_ticks

__all__ = ["cluster_size_bins", "render_report", "similarity_bins", "write_report"]

SNIPPET_CHARS = 600
MEMBERS_SHOWN = 4

_CSS = """
.warn{color:#b00020;font-weight:600}
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#1d2330;background:#fff}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;
border-bottom:1px solid #dde2ea;padding-bottom:.2rem}
.sub{color:#5b6475;margin-top:0}
table.summary{border-collapse:collapse}table.summary td{padding:.15rem .8rem .15rem 0}
table.summary td:first-child{color:#5b6475}
.charts{display:flex;flex-wrap:wrap;gap:1.5rem}
.cluster{margin:1.2rem 0 1.8rem}.cluster h3{font-size:1rem;margin:.2rem 0 .5rem}
.members{display:grid;grid-auto-flow:column;grid-auto-columns:minmax(260px,1fr);gap:.6rem;
overflow-x:auto}
.doc{border:1px solid #dde2ea;border-radius:6px;padding:.4rem .6rem;min-width:0}
.doc.kept{border-color:#3a8f5c;background:#f4fbf6}
.doc .meta{font-size:12px;color:#5b6475;margin-bottom:.3rem;word-break:break-all}
.badge{display:inline-block;font-size:11px;border-radius:3px;padding:0 .35rem;margin-right:.3rem;
color:#fff;background:#a3423a}.kept .badge{background:#3a8f5c}
pre{white-space:pre-wrap;word-break:break-word;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;
margin:0;max-height:22rem;overflow:auto}
mark{background:#ffe08a}
.more{color:#5b6475;font-size:12px}
svg text{font:11px system-ui,sans-serif;fill:#3b4252}
"""


# --------------------------------------------------------------------------------------------
# Binning


def similarity_bins(
    similarities: Iterable[float], threshold: float | None = None, n_bins: int = 20
) -> tuple[list[str], list[int]]:
    """Histogram of Jaccard values over ``[lo, 1]``, ``lo`` the lower of the threshold and the
    smallest value, rounded down to a multiple of 0.05; returns (bin labels, counts).

    >>> similarity_bins([0.8, 0.85, 1.0], threshold=0.8, n_bins=4)
    (['0.80', '0.85', '0.90', '0.95'], [1, 1, 0, 1])
    """
    if hasattr(similarities, "__array__"):  # NumPy input: millions of pairs, binned in C
        return _similarity_bins_array(similarities, threshold, n_bins)
    values = [float(v) for v in similarities if v is not None and math.isfinite(float(v))]
    if not values:
        return [], []
    lo, width, labels = _similarity_edges(min(values), threshold, n_bins)
    counts = [0] * n_bins
    for v in values:
        # The small epsilon keeps values sitting on an edge (0.85) in the bin they open.
        idx = int((v - lo) / width + 1e-9)
        counts[min(max(idx, 0), n_bins - 1)] += 1
    return labels, counts


def _similarity_bins_array(
    similarities: Any, threshold: float | None, n_bins: int
) -> tuple[list[str], list[int]]:
    import numpy as np  # only reached when the caller already holds a NumPy array

    values = np.asarray(similarities, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [], []
    lo, width, labels = _similarity_edges(float(values.min()), threshold, n_bins)
    idx = np.clip(((values - lo) / width + 1e-9).astype(np.int64), 0, n_bins - 1)
    return labels, np.bincount(idx, minlength=n_bins).tolist()


def _similarity_edges(
    lowest: float, threshold: float | None, n_bins: int
) -> tuple[float, float, list[str]]:
    if threshold is not None:
        lowest = min(lowest, float(threshold))
    lo = max(0.0, math.floor(round(lowest * 20, 9)) / 20)
    if lo >= 1.0:
        lo = 0.95
    width = (1.0 - lo) / n_bins
    digits = 2 if abs(width * 100 - round(width * 100)) < 1e-9 else 3
    return lo, width, [f"{lo + i * width:.{digits}f}" for i in range(n_bins)]


def cluster_size_bins(sizes: Iterable[int], max_bars: int = 24) -> tuple[list[str], list[int]]:
    """Number of clusters of each size (sizes 1 are left out); sizes are grouped in powers of two
    when there are more than ``max_bars`` distinct ones.

    >>> cluster_size_bins([2, 2, 3, 1])
    (['2', '3'], [2, 1])
    """
    counter: Counter[int]
    if hasattr(sizes, "__array__"):
        # a corpus's clusters: counted by NumPy, not one Python object each
        import numpy as np

        arr = np.asarray(sizes).astype(np.int64, copy=False)
        values, counts = np.unique(arr[arr >= 2], return_counts=True)
        counter = Counter(dict(zip(values.tolist(), counts.tolist())))
    else:
        counter = Counter(int(s) for s in sizes if int(s) >= 2)
    if not counter:
        return [], []
    if len(counter) <= max_bars:
        keys = sorted(counter)
        return [str(k) for k in keys], [counter[k] for k in keys]
    grouped: Counter[int] = Counter()
    for size, n in counter.items():
        grouped[max(1, (size - 1).bit_length())] += n  # bucket b holds 2**(b-1)+1 .. 2**b
    labels, counts = [], []
    for b in range(1, max(grouped) + 1):
        lo, hi = 2 ** (b - 1) + 1, 2**b
        labels.append(str(hi) if lo >= hi else f"{lo}-{hi}")
        counts.append(grouped.get(b, 0))
    return labels, counts


# --------------------------------------------------------------------------------------------
# SVG


def bar_chart_svg(
    labels: Sequence[str],
    counts: Sequence[int],
    *,
    title: str,
    xlabel: str,
    ylabel: str = "count",
    width: int = 560,
    height: int = 260,
    color: str = "#4c78a8",
) -> str:
    """An SVG bar chart; each bar's tooltip gives its label and count."""
    esc = html.escape
    left, right, top, bottom = 52, 12, 28, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">',
        f'<text x="{width / 2:.1f}" y="16" text-anchor="middle" font-weight="600">{esc(title)}</text>',
    ]
    if not counts or not any(counts):
        parts.append(
            f'<text x="{width / 2:.1f}" y="{top + plot_h / 2:.1f}" text-anchor="middle">'
            "nothing to show</text></svg>"
        )
        return "".join(parts)
    # counts: whole ticks, short labels (1.2M) that fit the left margin; tooltips hold the
    # exact numbers
    ticks = nice_ticks(0, max(counts), 4, integer=True)
    ymax = ticks[-1]
    for value in ticks:
        y = top + plot_h * (1 - value / ymax)
        label = compact_number(value)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e9f0"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>'
        )
    n = len(counts)
    slot = plot_w / n
    gap = min(2.0, slot * 0.15)
    every = max(1, math.ceil(n / (plot_w / 34)))  # leave room between x labels
    for i, (lab, cnt) in enumerate(zip(labels, counts, strict=True)):
        h = plot_h * cnt / ymax
        x = left + i * slot
        parts.append(
            f'<rect x="{x + gap / 2:.1f}" y="{top + plot_h - h:.1f}" width="{slot - gap:.1f}" '
            f'height="{h:.1f}" fill="{color}"><title>{esc(str(lab))}: {cnt:,}</title></rect>'
        )
        if i % every == 0:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{top + plot_h + 14}" '
                f'text-anchor="middle">{esc(str(lab))}</text>'
            )
    parts.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" '
        'stroke="#8a93a6"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle">{esc(xlabel)}</text>'
        f'<text transform="translate(13 {top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{esc(ylabel)}</text></svg>'
    )
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# Snippets

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)


def _snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "\u2026"


def highlight_differences(text: str, reference: str) -> str:
    """HTML-escaped ``text`` with the tokens that are not in ``reference`` wrapped in ``<mark>``.

    >>> highlight_differences("a <b> c", "a c")
    'a <mark>&lt;b&gt;</mark> c'
    """
    ours, theirs = _TOKEN.findall(text), _TOKEN.findall(reference)
    matcher = difflib.SequenceMatcher(None, theirs, ours, autojunk=False)
    out: list[str] = []
    for op, _i1, _i2, j1, j2 in matcher.get_opcodes():
        piece = "".join(ours[j1:j2])
        if op == "equal" or piece.isspace():
            out.append(html.escape(piece))
        elif piece:
            # Whitespace around a changed run stays outside the highlight.
            core = piece.strip()
            lead = piece[: len(piece) - len(piece.lstrip())]
            trail = piece[len(lead) + len(core) :]
            out.append(f"{html.escape(lead)}<mark>{html.escape(core)}</mark>{html.escape(trail)}")
    return "".join(out)


def _member_card(member: Mapping[str, Any], reference: str | None) -> str:
    esc = html.escape
    kept = bool(member.get("kept"))
    text = _snippet(str(member.get("text", "")))
    jac = member.get("jaccard")
    if kept:
        badge = '<span class="badge">kept</span>'
    else:
        jtxt = (
            f" · Jaccard {float(jac):.3f}" if jac is not None and math.isfinite(float(jac)) else ""
        )
        badge = f'<span class="badge">removed</span>{esc(jtxt)}'
    if reference is None or kept:
        body = esc(text)
    else:
        body = highlight_differences(text, reference)
    return (
        f'<div class="doc{" kept" if kept else ""}"><div class="meta">{badge}<br>'
        f"{esc(str(member.get('id', '')))}</div><pre>{body}</pre></div>"
    )


def _cluster_html(cluster: Mapping[str, Any]) -> str:
    members = list(cluster.get("members", []))
    # The kept document first, then the closest duplicates.
    members.sort(
        key=lambda m: (
            not m.get("kept"),
            -(m.get("jaccard") or 0.0) if m.get("jaccard") is not None else 0.0,
        )
    )
    size = int(cluster.get("size", len(members)))
    # The kept document's whole text (not its snippet), so a cut snippet is not a difference.
    reference = next((str(m.get("text", "")) for m in members if m.get("kept")), None)
    cards = "".join(_member_card(m, reference) for m in members[:MEMBERS_SHOWN])
    more = size - min(len(members), MEMBERS_SHOWN)
    more_html = f'<div class="more">and {more:,} more</div>' if more > 0 else ""
    return (
        f'<div class="cluster"><h3>Cluster {html.escape(str(cluster.get("cluster", "")))} · '
        f'{size:,} documents</h3><div class="members">{cards}</div>{more_html}</div>'
    )


# --------------------------------------------------------------------------------------------
# The page


def render_report(
    *,
    similarities: Iterable[float],
    cluster_sizes: Iterable[int],
    clusters: Sequence[Mapping[str, Any]] = (),
    summary: Mapping[str, Any] | None = None,
    threshold: float | None = None,
    title: str = "textsieve dedup report",
    subtitle: str = "",
    warnings: Sequence[str] = (),
    below_threshold: Sequence[tuple[str, str, float]] = (),
) -> str:
    """The report as one HTML string.

    ``similarities``: the Jaccard of every verified pair; ``cluster_sizes``: the size of every
    cluster (singletons included or not, they are not drawn); ``clusters``: the clusters to show,
    largest first, each ``{"cluster": id, "size": n, "members": [{"id", "text", "kept",
    "jaccard"}]}`` (``jaccard``: to the kept document); ``summary``: label -> value rows;
    ``warnings``: lines shown first; ``below_threshold``: ``(id, kept id, jaccard)`` of removed
    documents below the threshold to their kept document (connected components chain).
    """
    esc = html.escape
    sims: Any = similarities if hasattr(similarities, "__array__") else list(similarities)
    sizes: Any = cluster_sizes if hasattr(cluster_sizes, "__array__") else list(cluster_sizes)
    s_labels, s_counts = similarity_bins(sims, threshold)
    c_labels, c_counts = cluster_size_bins(sizes)
    rows = "".join(
        f"<tr><td>{esc(str(k))}</td><td>{esc(_fmt(v))}</td></tr>"
        for k, v in (summary or {}).items()
    )
    sim_svg = bar_chart_svg(
        s_labels,
        s_counts,
        title=f"Similarity of {len(sims):,} listed pairs",
        xlabel="exact Jaccard (bin start)",
        ylabel="pairs",
    )
    size_svg = bar_chart_svg(
        c_labels,
        c_counts,
        title=f"Sizes of {sum(c_counts):,} clusters with duplicates",
        xlabel="documents in the cluster (kept + removed)",
        ylabel="clusters with duplicates",
        color="#e45756",
    )
    if clusters:
        cluster_html = "".join(_cluster_html(c) for c in clusters)
    else:
        cluster_html = "<p>No duplicates were found.</p>"
    warn_html = "".join(f'<p class="warn">warning: {esc(w)}</p>' for w in warnings)
    if below_threshold:
        warn_html += (
            '<h2>Removed below the threshold</h2><table class="summary">'
            "<tr><th>removed</th><th>kept</th><th>Jaccard</th></tr>"
            + "".join(
                f"<tr><td>{esc(a)}</td><td>{esc(b)}</td><td>{j:.3f}</td></tr>"
                for a, b, j in below_threshold
            )
            + "</table>"
        )
    page = (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style></head><body>\n"
        f"<h1>{esc(title)}</h1>"
        + (f'<p class="sub">{esc(subtitle)}</p>' if subtitle else "")
        + warn_html
        + f'\n<table class="summary">{rows}</table>\n'
        f'<h2>Distributions</h2><div class="charts">{sim_svg}{size_svg}</div>\n'
        f"<h2>Largest clusters with duplicates</h2>{cluster_html}\n"
        "</body></html>\n"
    )
    # an id with a lone surrogate (from a JSON escape) shows as its escape: the page is UTF-8
    return page.encode("utf-8", "backslashreplace").decode("utf-8")


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def write_report(path: str | os.PathLike[str], **kwargs: Any) -> None:
    """Write :func:`render_report` (same keyword arguments) to ``path`` atomically."""
    page = render_report(**kwargs)
    with atomic_write(path, "w") as fh:
        fh.write(page)
