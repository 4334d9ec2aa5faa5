"""Exact substring dedup of a corpus into OUTDIR (what ``textsieve substrings`` runs).

The corpus is read once (the core readers of ``textsieve dedup``, same options and errors), its
documents' bytes and records kept in memory; one suffix array over them finds every repeated span
(the definition is in :mod:`textsieve.suffix`); then OUTDIR receives, each written atomically:

- ``cleaned.jsonl``: every input record with its repeated spans cut out of its text field (every
  other byte of the record as read; a plain-text line becomes ``{"id": ..., "text": ...}``);
- ``spans.jsonl``: one row per span, ``{"document": id, "start", "end", "bytes"}`` (byte offsets
  in the document's UTF-8 text);
- ``stats.json``: counts, bytes removed, parameters, input files, timings; written last;
- ``report.html``: the numbers, the span lengths, and the most repeated examples.

``dry_run`` writes ``spans.jsonl`` alone. Memory: about 5 bytes per text byte plus the records,
and (1 + threads) / 8 bytes per text byte more while spans are found.
"""

from __future__ import annotations

import html
import json
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from textsieve import _core
from textsieve.io import CorpusReader, json_text, set_field
from textsieve.pipeline import OutputSet
from textsieve.report import _fmt, bar_chart_svg
from textsieve.suffix import Span, SuffixIndex, _finish, _gather, cleaned_text

OUTPUT_FILES = ("cleaned.jsonl", "spans.jsonl", "stats.json", "report.html")
RENDER_DOCS = 16384
REPORT_EXAMPLES = 12


def _peak_rss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def dedup_substrings(
    make_reader: Callable[[], CorpusReader],
    outdir: str,
    *,
    min_length: int = 100,
    policy: str = "later",
    dry_run: bool = False,
    text_field: str = "text",
    num_threads: int | None = None,
    show_progress: bool | None = None,
    parameters: dict[str, Any] | None = None,
    last: bool = False,
) -> dict[str, Any]:
    """Runs exact substring dedup of ``make_reader()``'s corpus into ``outdir``; returns the
    stats (also written to ``stats.json`` unless ``dry_run``)."""
    from textsieve._checks import check_choice, check_int

    check_int("min_length", min_length, 1)
    check_choice("policy", policy, ("later", "all"))
    t0 = time.perf_counter()
    reader = make_reader()
    builder = _core.SuffixBuilderCore(keep_records=not dry_run)
    ids = _core.IdsCore()
    _gather(builder, reader, show_progress, ids=ids)
    t1 = time.perf_counter()
    core = _finish(builder, show_progress)
    index = SuffixIndex(core)
    t2 = time.perf_counter()
    doc, start, end = index.repeated_span_arrays(min_length, policy, num_threads)
    t3 = time.perf_counter()
    n_docs = index.n_docs
    text_bytes = index.n_bytes - n_docs  # separators left out
    removed = int((end - start).sum()) if len(doc) else 0
    names = ("spans.jsonl",) if dry_run else OUTPUT_FILES
    stats: dict[str, Any] = {
        "n_documents": n_docs,
        "n_documents_with_spans": int(len(np.unique(doc))),
        "n_spans": int(len(doc)),
        "text_bytes": text_bytes,
        "removed_bytes": removed,
        "removed_fraction": removed / text_bytes if text_bytes else 0.0,
        "input_bytes": int(reader.n_bytes),
        "n_skipped": reader.n_skipped,
        "skipped": [s._asdict() for s in reader.skipped],
        "input_files": reader.files,
        "parameters": {
            "min_length": min_length,
            "policy": policy,
            "dry_run": dry_run,
            "text_field": text_field,
            **(parameters or {}),
        },
        "outdir": os.path.abspath(outdir),
        "outputs": list(names),
    }
    with OutputSet(outdir, names) as files:
        fh = files.open("spans.jsonl", "wb")
        step = 1 << 16
        for a in range(0, len(doc), step):
            fh.write(
                _core.render_spans(ids, doc[a : a + step], start[a : a + step], end[a : a + step])
            )
        if not dry_run:
            records = builder.take_records()
            out = files.open("cleaned.jsonl", "wb")
            for a in range(0, n_docs, RENDER_DOCS):
                b = min(a + RENDER_DOCS, n_docs)
                data, failed = records.render(index._core, doc, start, end, a, b, text_field)
                if failed:
                    data = _render_slowly(index, records, doc, start, end, a, b, text_field)
                out.write(data)
            t4 = time.perf_counter()
            stats["timings_s"] = _timings(t0, t1, t2, t3, t4)
            stats["peak_rss_bytes"] = _peak_rss_bytes()
            with files.open("report.html") as rh:
                rh.write(render_report(stats, index, doc, start, end, ids))
            with files.open("stats.json") as sh:
                sh.write(json_text(stats, indent=2) + "\n")
        else:
            stats["timings_s"] = _timings(t0, t1, t2, t3, time.perf_counter())
            stats["peak_rss_bytes"] = _peak_rss_bytes()
        files.commit(last=last)
    return stats


def _timings(t0: float, t1: float, t2: float, t3: float, t4: float) -> dict[str, float]:
    return {
        "read": round(t1 - t0, 3),
        "sort": round(t2 - t1, 3),
        "spans": round(t3 - t2, 3),
        "write": round(t4 - t3, 3),
        "total": round(t4 - t0, 3),
    }


def _render_slowly(
    index: SuffixIndex,
    records: Any,
    doc: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    a: int,
    b: int,
    text_field: str,
) -> bytes:
    """Documents ``a:b`` one by one: a record the core cannot edit (JSON that Python's reader
    accepts and strict JSON does not, such as ``NaN``) is decoded and encoded again here."""
    parts = []
    for d in range(a, b):
        data, failed = records.render(index._core, doc, start, end, d, d + 1, text_field)
        if failed:
            lo, hi = np.searchsorted(doc, [d, d + 1])
            spans = [Span(d, int(s), int(e)) for s, e in zip(start[lo:hi], end[lo:hi])]
            obj = json.loads(records.record(d))
            set_field(obj, text_field, cleaned_text(index.document(d), spans))
            line = json.dumps(obj, ensure_ascii=False)
            try:
                data = (line + "\n").encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate from a \u escape: keep it escaped
                data = (json.dumps(obj) + "\n").encode("ascii")
        parts.append(data)
    return b"".join(parts)


def render_report(
    stats: dict[str, Any],
    index: SuffixIndex,
    doc: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    ids: Any,
) -> str:
    """A self-contained HTML page: the numbers, span lengths, and the longest spans' text."""
    esc = html.escape
    lengths = (end - start).astype(np.int64) if len(doc) else np.zeros(0, np.int64)
    edges = [0, 100, 200, 500, 1000, 2000, 5000, 10000, 1 << 62]
    labels = ["<100", "100-", "200-", "500-", "1k-", "2k-", "5k-", "10k+"]
    counts = np.histogram(lengths, bins=edges)[0].tolist() if len(lengths) else [0] * 8
    chart = bar_chart_svg(labels, counts, title="span lengths", xlabel="bytes", ylabel="spans")
    summary = {
        "documents": stats["n_documents"],
        "documents with spans": stats["n_documents_with_spans"],
        "spans": stats["n_spans"],
        "text bytes": stats["text_bytes"],
        "bytes removed": stats["removed_bytes"],
        "fraction removed": f"{stats['removed_fraction']:.2%}",
        "min length (bytes)": stats["parameters"]["min_length"],
        "policy": stats["parameters"]["policy"],
    }
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(_fmt(v))}</td></tr>" for k, v in summary.items())
    examples = []
    for i in np.argsort(-lengths, kind="stable")[:REPORT_EXAMPLES].tolist():
        d, s, e = int(doc[i]), int(start[i]), int(end[i])
        text = index.document(d).encode("utf-8")[s:e].decode("utf-8")
        snippet = text if len(text) <= 600 else text[:600] + " …"
        examples.append(
            f"<div class='ex'><div class='meta'>{esc(str(ids[d]))} bytes {s}-{e} "
            f"({e - s:,} bytes)</div><pre>{esc(snippet)}</pre></div>"
        )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>textsieve substrings</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:60em}td,th{text-align:left;"
        "padding:2px 12px}pre{white-space:pre-wrap;background:#f4f6f8;padding:8px}"
        ".meta{color:#555;font-size:90%}</style></head><body>"
        "<h1>Exact substring dedup</h1>"
        f"<table>{rows}</table>{chart}<h2>Longest spans removed</h2>"
        + ("".join(examples) or "<p>No repeated span.</p>")
        + "</body></html>\n"
    )


def print_summary(stats: dict[str, Any], out: Callable[[str], Any] = print) -> None:
    """The human summary of a finished run."""
    t = stats["timings_s"]
    p = stats["parameters"]
    out(
        f"{stats['n_documents']:,} documents, {stats['text_bytes'] / 1e6:,.1f} MB of text: "
        f"{stats['n_spans']:,} repeated spans of at least {p['min_length']} bytes "
        f"(policy {p['policy']}) in {stats['n_documents_with_spans']:,} documents, "
        f"{stats['removed_bytes'] / 1e6:,.2f} MB removed ({stats['removed_fraction']:.2%})"
    )
    if stats["n_skipped"]:
        first = stats["skipped"][0]
        out(
            f"skipped {stats['n_skipped']:,} malformed record(s), first at "
            f"{first['source']}:{first['line']}: {first['reason']}"
        )
    out(
        f"time: read {t['read']:.2f}s, sort {t['sort']:.2f}s, spans {t['spans']:.2f}s, "
        f"write {t['write']:.2f}s, total {t['total']:.2f}s"
    )
    out(f"wrote {', '.join(stats['outputs'])} to {stats['outdir']}")
