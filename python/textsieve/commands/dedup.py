"""``textsieve dedup``: remove near-duplicate documents from a corpus and report what went.

Reads JSONL, plain text (a document per line, or per file with ``--doc-per-file``), gzip, zstd
and Parquet inputs with :mod:`textsieve.io`, runs :func:`textsieve.dedup`, and writes to OUTDIR:

- ``kept.jsonl``: the input records that were kept, byte for byte as they were read (plain text
  and Parquet inputs become ``{"id": ..., "text": ...}`` objects / the row as JSON);
- ``removed.jsonl``: one line per removed document: its id, cluster, the id of the kept document it
  duplicates and their exact Jaccard similarity, and where it came from;
- ``pairs.jsonl``: one line per removed document: its id, the kept document's id and their exact
  Jaccard (``--all-pairs``: every verified candidate pair at or above the threshold instead);
- ``stats.json``: counts (``n_input == n_kept + n_removed``), skipped bad records, parameters,
  input files and timings;
- ``report.html``: a self-contained report (see :mod:`textsieve.report`).

Every output is written atomically; inputs are only read.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from json.encoder import encode_basestring as _encode_str
from json.encoder import encode_basestring_ascii as _encode_str_ascii
from typing import Any

import numpy as np

from textsieve._progress import Progress
from textsieve.errors import TextsieveError
from textsieve.io import CorpusReader, Record, atomic_write, to_jsonable, write_lines, write_records

OUTPUT_FILES = ("kept.jsonl", "removed.jsonl", "pairs.jsonl", "stats.json", "report.html")
DEFAULT_K = {"char": 5, "word": 3}
REPORT_CLUSTERS = 12
REPORT_MEMBERS = 4
CHUNK = 1 << 16  # rows converted from NumPy at a time while writing
DEMO_EXCLUDE = ("site-packages", "dist-packages", "__pycache__")

DESCRIPTION = """\
Remove near-duplicate documents from a corpus.

Documents are compared by the Jaccard similarity of their shingle sets (character 5-grams of the
lowercased, whitespace-collapsed text by default). MinHash + LSH find candidates and every
candidate is checked with its exact Jaccard. With --cluster greedy (the default) documents are
taken in input order (--keep longest: longest first) and one is removed iff an earlier kept
document is within --threshold of it, so every removed document is within the threshold of the
document it duplicates. --cluster components keeps one document per connected component of the
verified pairs instead (chains of overlapping texts become one cluster).

INPUT may be files or directories (walked recursively, sorted, hidden entries skipped):
  *.jsonl *.ndjson *.json   one JSON object per line (--text-field, --id-field)
  *.parquet                 one document per row (needs pyarrow)
  anything else             plain text, one document per line
  --doc-per-file            every file is one document (for example a tree of source files)
  .gz / .zst suffixes       decompressed on the fly (.zst needs zstandard)

OUTDIR receives kept.jsonl, removed.jsonl, pairs.jsonl, stats.json and report.html, each
written atomically. Inputs are never modified. Exit status: 0 done, 1 bad input, 2 usage."""

EXAMPLES = """\
examples:
  textsieve dedup corpus.jsonl.zst -o out/
  textsieve dedup shards/ -o out/ --text-field content --id-field url --threshold 0.7
  textsieve dedup lines.txt.gz -o out/ --shingle word:3 --keep longest
  textsieve dedup corpus.jsonl -o out/ --cluster components --all-pairs
  textsieve dedup src/ --doc-per-file --glob '*.py' -o out/ --json
  textsieve dedup data.jsonl -o out/ --on-error skip      # count and skip malformed lines
  textsieve dedup shards/ -o out/ --engine dask --workers 4
  textsieve dedup --demo                                   # the Python standard library itself"""


# --------------------------------------------------------------------------------------------
# Argument parsing


def _threshold(value: str) -> float:
    try:
        t = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0.0 < t <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return t


def _int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``low``."""

    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
        if n < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return n

    return parse


_positive_int = _int_at_least(1)
_seed = _int_at_least(0)


def parse_shingle(value: str) -> tuple[str, int]:
    """``"char:5"`` -> ``("char", 5)``; ``"word"`` -> ``("word", 3)``."""
    kind, _, size = value.strip().partition(":")
    kind = kind.lower()
    if kind not in DEFAULT_K:
        raise argparse.ArgumentTypeError(f"expected char:K or word:N, got {value!r}")
    if not size:
        return kind, DEFAULT_K[kind]
    try:
        k = int(size)
    except ValueError:
        raise argparse.ArgumentTypeError(f"shingle size must be an integer, got {size!r}") from None
    if k < 1:
        raise argparse.ArgumentTypeError(f"shingle size must be at least 1, got {k}")
    return kind, k


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "dedup",
        help="remove near-duplicate documents (MinHash + LSH + exact Jaccard)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="input files or directories")
    p.add_argument(
        "-o", "--output", dest="outdir", metavar="OUTDIR", help="output folder (created if missing)"
    )
    g = p.add_argument_group("input")
    g.add_argument(
        "--text-field", default="text", metavar="NAME", help="JSONL/Parquet text field (text)"
    )
    g.add_argument(
        "--id-field",
        default="id",
        metavar="NAME",
        help="JSONL/Parquet id field (id); records without it get FILE:LINE",
    )
    g.add_argument("--doc-per-file", action="store_true", help="every input file is one document")
    g.add_argument(
        "--glob", metavar="PATTERN", help="only files whose name matches, in directories ('*.py')"
    )
    g.add_argument(
        "--format",
        choices=("auto", "jsonl", "text", "parquet"),
        default="auto",
        help="input format (auto: by file name)",
    )
    g.add_argument(
        "--on-error",
        choices=("stop", "skip"),
        default="stop",
        help="malformed record: stop with its file and line (default), or count and skip it",
    )
    g = p.add_argument_group("similarity")
    g.add_argument(
        "--threshold",
        type=_threshold,
        default=0.8,
        help="Jaccard at or above which two documents are duplicates (0.8)",
    )
    g.add_argument(
        "--num-perm",
        type=_positive_int,
        default=128,
        metavar="N",
        help="MinHash permutations (128)",
    )
    g.add_argument("--seed", type=_seed, default=1, help="MinHash seed (1)")
    g.add_argument(
        "--shingle",
        type=parse_shingle,
        default=("char", 5),
        metavar="char:K|word:N",
        help="character K-grams or word N-grams (char:5)",
    )
    g.add_argument(
        "--keep",
        choices=("first", "longest"),
        default="first",
        help="which document of a cluster to keep (first)",
    )
    g.add_argument(
        "--cluster",
        choices=("greedy", "components"),
        default="greedy",
        help="greedy: removed iff an earlier kept document is within the threshold (default); "
        "components: connected components of the verified pairs (can chain)",
    )
    g.add_argument(
        "--all-pairs",
        action="store_true",
        help="pairs.jsonl lists every verified pair at or above the threshold "
        "(quadratic in cluster size) instead of one row per removed document",
    )
    g = p.add_argument_group("run")
    g.add_argument(
        "--engine",
        choices=("local", "dask"),
        default="local",
        help="local (this process) or dask (needs textsieve[dask]); same answer",
    )
    g.add_argument("--scheduler", metavar="ADDRESS", help="--engine dask: join this Dask scheduler")
    g.add_argument(
        "--workers",
        type=_positive_int,
        default=2,
        metavar="N",
        help="--engine dask without --scheduler: local workers (2)",
    )
    g.add_argument(
        "--threads", type=_positive_int, metavar="N", help="worker threads (default: all cores)"
    )
    g.add_argument("--json", action="store_true", help="print the stats as JSON on stdout")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    g.add_argument(
        "--demo",
        action="store_true",
        help="run on the Python standard library's own .py files and show what was found",
    )
    p.set_defaults(func=run, _parser=p)
    return p


# --------------------------------------------------------------------------------------------
# The run


def stdlib_dir() -> str:
    """The folder of the Python standard library (where the ``os`` module lives)."""
    return os.path.dirname(os.path.abspath(os.__file__))


def _check_engine(engine: str) -> None:
    if engine == "local":
        return
    import importlib.util

    if importlib.util.find_spec("dask") is None:
        raise TextsieveError(
            "--engine dask needs Dask: pip install textsieve[dask] (or use --engine local)"
        )


def _prepare_outdir(outdir: str, inputs: Sequence[str]) -> None:
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise TextsieveError(f"-o {outdir}: exists and is not a directory")
    input_paths = {os.path.realpath(p) for p in inputs}
    for name in OUTPUT_FILES:
        target = os.path.realpath(os.path.join(outdir, name))
        if target in input_paths:
            raise TextsieveError(
                f"{target} is an input file; choose another -o so inputs are never overwritten"
            )
    os.makedirs(outdir, exist_ok=True)


def _read(reader: CorpusReader, bar: Progress) -> list[Record]:
    records: list[Record] = []
    append = records.append
    last_bytes = 0
    pending = 0
    for record in reader:
        append(record)
        pending += 1
        if pending == 256:
            bar.update(pending, nbytes=reader.n_bytes - last_bytes)
            last_bytes, pending = reader.n_bytes, 0
    bar.update(pending, nbytes=reader.n_bytes - last_bytes)
    return records


def _dedup_progress(bar: Progress) -> Any:
    """Adapt textsieve.dedup's ``progress(n_docs_done, n_bytes_done)`` (running totals)."""

    def callback(n_docs_done: int, n_bytes_done: int = 0) -> None:
        bar.update(
            max(int(n_docs_done) - bar.count, 0), nbytes=max(int(n_bytes_done) - bar.nbytes, 0)
        )

    return callback


def _pair_columns(pairs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, jaccard) arrays from a structured array, a dict of arrays or rows of triples."""
    if pairs is None or len(pairs) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    names = getattr(getattr(pairs, "dtype", None), "names", None)
    if not (names or isinstance(pairs, dict)):
        rows = np.asarray([tuple(r)[:3] for r in pairs], dtype=np.float64)
        pairs = {"i": rows[:, 0], "j": rows[:, 1], "jaccard": rows[:, 2]}
    return (
        np.asarray(pairs["i"]).astype(np.int64, copy=False),
        np.asarray(pairs["j"]).astype(np.int64, copy=False),
        np.asarray(pairs["jaccard"]).astype(np.float64, copy=False),
    )


def _quoted_ids(records: list[Record]) -> list[str]:
    """Every record's id as a JSON string literal, computed once for all the output files."""
    out = []
    for r in records:
        rid = r.id
        if rid.isascii():
            out.append(_encode_str(rid))
            continue
        try:
            rid.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: escape it so the output stays UTF-8
            out.append(_encode_str_ascii(rid))
        else:
            out.append(_encode_str(rid))
    return out


def _float_or_none(value: Any) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None


def _json_float(x: float) -> str:
    return repr(x) if math.isfinite(x) else "null"


def _removed_lines(
    records: list[Record], qid: list[str], result: Any, removed_idx: np.ndarray
) -> Iterator[str]:
    for start in range(0, len(removed_idx), CHUNK):
        idx = removed_idx[start : start + CHUNK]
        clusters = np.asarray(result.cluster)[idx].tolist()
        dups = np.asarray(result.duplicate_of)[idx].tolist()
        sims = np.asarray(result.similarity, dtype=np.float64)[idx].tolist()
        for i, c, d, sim in zip(idx.tolist(), clusters, dups, sims, strict=True):
            r = records[i]
            yield (
                f'{{"id": {qid[i]}, "cluster": {c}, "duplicate_of": '
                f'{qid[d] if d >= 0 else "null"}, "jaccard": {_json_float(sim)}, '
                f'"source": {_encode_str(r.source)}, "line": {r.line}}}\n'
            )


def _pair_lines(
    qid: list[str], pi: np.ndarray, pj: np.ndarray, pjac: np.ndarray, all_pairs: bool
) -> Iterator[str]:
    """``all_pairs``: ``{"id_a", "id_b", "jaccard"}`` per verified pair; else one row per removed
    document ``j`` with its kept document ``i``: ``{"id", "duplicate_of", "jaccard"}``."""
    for start in range(0, len(pi), CHUNK):
        stop = start + CHUNK
        for i, j, jac in zip(
            pi[start:stop].tolist(), pj[start:stop].tolist(), pjac[start:stop].tolist(), strict=True
        ):
            if all_pairs:
                yield f'{{"id_a": {qid[i]}, "id_b": {qid[j]}, "jaccard": {_json_float(jac)}}}\n'
            else:
                yield f'{{"id": {qid[j]}, "duplicate_of": {qid[i]}, "jaccard": {_json_float(jac)}}}\n'


def _largest_clusters(
    records: list[Record], keep: Any, cluster: list[int], similarity: list[Any], limit: int
) -> tuple[list[int], list[dict[str, Any]]]:
    """All cluster sizes, and the ``limit`` largest clusters with a few members each."""
    members: dict[int, list[int]] = {}
    for idx, cid in enumerate(cluster):
        members.setdefault(cid, []).append(idx)
    sizes = [len(m) for m in members.values()]
    multi = [(len(m), cid) for cid, m in members.items() if len(m) > 1]
    top = heapq.nsmallest(limit, multi, key=lambda t: (-t[0], t[1]))
    shown = []
    for size, cid in top:
        idxs = members[cid]
        kept = [i for i in idxs if keep[i]]
        removed = sorted(
            (i for i in idxs if not keep[i]),
            key=lambda i: -(similarity[i] if similarity[i] is not None else -1.0),
        )
        chosen = (kept + removed)[:REPORT_MEMBERS]
        shown.append(
            {
                "cluster": cid,
                "size": size,
                "members": [
                    {
                        "id": records[i].id,
                        "text": records[i].text[:2000],
                        "kept": bool(keep[i]),
                        "jaccard": similarity[i],
                    }
                    for i in chosen
                ],
            }
        )
    return sizes, shown


def run(args: argparse.Namespace) -> int:
    parser = getattr(args, "_parser", None)
    t_start = time.perf_counter()
    inputs = list(args.inputs)
    doc_per_file, glob, on_error = args.doc_per_file, args.glob, args.on_error
    exclude: tuple[str, ...] = ()
    if args.demo:
        if inputs:
            return _usage(parser, "--demo takes no INPUT (it reads the standard library)")
        inputs = [stdlib_dir()]
        doc_per_file, glob, on_error, exclude = True, glob or "*.py", "skip", DEMO_EXCLUDE
        outdir = args.outdir or tempfile.mkdtemp(prefix="textsieve-demo-")
    else:
        if not inputs:
            return _usage(parser, "give at least one INPUT (or --demo)")
        if not args.outdir:
            return _usage(parser, "-o OUTDIR is required")
        outdir = args.outdir
    _check_engine(args.engine)
    shingle, k = args.shingle
    show = not args.quiet

    reader = CorpusReader(
        inputs,
        text_field=args.text_field,
        id_field=args.id_field,
        doc_per_file=doc_per_file,
        on_error=on_error,
        format=args.format,
        glob=glob,
        exclude_dirs=exclude,
    )
    _prepare_outdir(outdir, [f.path for f in reader.inputs])
    if args.engine == "dask":
        from textsieve.distributed import run_command

        return run_command(args, inputs, outdir, doc_per_file, glob, on_error, exclude)

    # 1. read
    t0 = time.perf_counter()
    with Progress(unit="docs", desc="reading", enabled=None if show else False) as bar:
        records = _read(reader, bar)
    t_read = time.perf_counter() - t0
    n = len(records)

    # 2. dedup
    try:
        from textsieve.dedup import dedup
    except ImportError as exc:  # pragma: no cover - only while the package is half built
        raise TextsieveError(f"textsieve.dedup is not available: {exc}") from exc
    t0 = time.perf_counter()
    with Progress(total=n, unit="docs", desc="dedup", enabled=None if show else False) as bar:
        result = dedup(
            [r.text for r in records],
            threshold=args.threshold,
            num_perm=args.num_perm,
            seed=args.seed,
            shingle=shingle,
            k=k,
            keep=args.keep,
            cluster=args.cluster,
            all_pairs=args.all_pairs,
            num_threads=args.threads,
            progress=_dedup_progress(bar),
        )
    t_dedup = time.perf_counter() - t0

    keep_arr = np.asarray(result.keep, dtype=bool)
    for name in ("keep", "cluster", "duplicate_of", "similarity"):
        if len(getattr(result, name)) != n:
            raise TextsieveError(
                f"internal error: dedup returned {name} for {len(getattr(result, name))} "
                f"of {n} documents"
            )
    keep = keep_arr.tolist()
    n_kept = int(keep_arr.sum())
    n_removed = n - n_kept
    pi, pj, pjac = _pair_columns(result.pairs)
    n_empty = int(np.count_nonzero(getattr(result, "empty", np.zeros(0, bool))))

    # 3. write
    t0 = time.perf_counter()
    paths = {name: os.path.join(outdir, name) for name in OUTPUT_FILES}
    write_records(
        paths["kept.jsonl"],
        (r for r, k_ in zip(records, keep, strict=True) if k_),
        text_field=args.text_field,
        id_field=args.id_field,
    )
    qid = _quoted_ids(records)
    write_lines(
        paths["removed.jsonl"], _removed_lines(records, qid, result, np.flatnonzero(~keep_arr))
    )
    write_lines(paths["pairs.jsonl"], _pair_lines(qid, pi, pj, pjac, args.all_pairs))
    del qid
    cluster = np.asarray(result.cluster).tolist()
    similarity = [
        _float_or_none(x) for x in np.asarray(result.similarity, dtype=np.float64).tolist()
    ]
    sizes, shown = _largest_clusters(records, keep, cluster, similarity, REPORT_CLUSTERS)
    n_clusters_dup = sum(1 for s in sizes if s > 1)
    summary = {
        "input files": len(reader.files),
        "documents in": n,
        "kept": n_kept,
        "removed": n_removed,
        "clusters with duplicates": n_clusters_dup,
        "clustering": args.cluster,
        "pairs listed": len(pi),
        "empty documents": n_empty,
        "skipped bad records": reader.n_skipped,
        "threshold": args.threshold,
        "shingles": f"{shingle}:{k}",
        "permutations": args.num_perm,
        "seed": args.seed,
        "keep": args.keep,
        "MB read": round(reader.n_bytes / 1e6, 2),
    }
    from textsieve.report import write_report

    write_report(
        paths["report.html"],
        similarities=pjac,
        cluster_sizes=sizes,
        clusters=shown,
        summary=summary,
        threshold=args.threshold,
        warnings=result.stats.get("warnings", []),
        below_threshold=[
            (
                records[int(d)].id,
                records[int(result.duplicate_of[d])].id,
                float(result.similarity[d]),
            )
            for d in result.stats.get("below_threshold", [])[:50]
        ],
        subtitle=", ".join(inputs[:3])
        + (f" and {len(inputs) - 3} more" if len(inputs) > 3 else ""),
    )
    t_write = time.perf_counter() - t0
    t_total = time.perf_counter() - t_start

    from textsieve import __version__

    stats: dict[str, Any] = {
        "textsieve": __version__,
        "n_input": n,
        "n_kept": n_kept,
        "n_removed": n_removed,
        "n_input_equals_kept_plus_removed": n == n_kept + n_removed,
        "n_clusters": len(sizes),
        "n_clusters_with_duplicates": n_clusters_dup,
        "largest_cluster": max(sizes, default=0),
        "n_pairs": len(pi),
        "n_examined": int(result.stats.get("n_candidates", 0)),
        "examined_per_doc": result.stats.get("examined_per_doc"),
        "warnings": list(result.stats.get("warnings", [])),
        "n_empty": n_empty,
        "n_skipped": reader.n_skipped,
        "skipped": [r._asdict() for r in reader.skipped],
        "n_blank_lines": reader.n_blank,
        "input_bytes": reader.n_bytes,
        "inputs": inputs,
        "input_files": reader.files,
        "parameters": {
            "threshold": args.threshold,
            "num_perm": args.num_perm,
            "seed": args.seed,
            "shingle": shingle,
            "k": k,
            "keep": args.keep,
            "cluster": args.cluster,
            "all_pairs": args.all_pairs,
            "text_field": args.text_field,
            "id_field": args.id_field,
            "doc_per_file": doc_per_file,
            "glob": glob,
            "format": args.format,
            "on_error": on_error,
            "engine": args.engine,
            "threads": args.threads,
        },
        "timings_s": {
            "read": round(t_read, 4),
            "dedup": round(t_dedup, 4),
            "write": round(t_write, 4),
            "total": round(t_total, 4),
        },
        "throughput": {
            "docs_per_s": round(n / t_total, 1) if t_total > 0 else None,
            "mb_per_s": round(reader.n_bytes / 1e6 / t_total, 2) if t_total > 0 else None,
        },
        "dedup_stats": to_jsonable(getattr(result, "stats", {}) or {}),
        "outdir": os.path.abspath(outdir),
        "outputs": {name: os.path.abspath(p) for name, p in paths.items()},
    }
    with atomic_write(paths["stats.json"], "w") as fh:
        json.dump(to_jsonable(stats), fh, indent=2, ensure_ascii=False, allow_nan=False)
        fh.write("\n")

    if args.json:
        out = dict(stats)
        if args.demo:
            out["examples"] = [
                {"id_a": a, "id_b": b, "jaccard": j}
                for a, b, j in _example_pairs(records, pi, pj, pjac, stdlib_dir())
            ]
        print(json.dumps(to_jsonable(out), ensure_ascii=False, allow_nan=False))
    elif args.demo:
        _print_demo(stats, records, pi, pj, pjac)
    elif show:
        _print_summary(stats)
    return 0


def _usage(parser: argparse.ArgumentParser | None, message: str) -> int:
    if parser is not None:
        parser.error(message)  # exits with status 2
    print(f"textsieve dedup: error: {message}", file=sys.stderr)
    return 2


# --------------------------------------------------------------------------------------------
# Human output


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "0%"


def _print_summary(stats: dict[str, Any]) -> None:
    n, t = stats["n_input"], stats["timings_s"]
    print(
        f"{n:,} documents from {len(stats['input_files']):,} file(s), "
        f"{stats['input_bytes'] / 1e6:,.1f} MB: kept {stats['n_kept']:,}, removed "
        f"{stats['n_removed']:,} ({_pct(stats['n_removed'], n)}) in "
        f"{stats['n_clusters_with_duplicates']:,} clusters ({stats['parameters']['cluster']}); "
        f"{stats['n_examined']:,} similarities computed"
    )
    for w in stats.get("warnings", []):
        print(f"warning: {w}")
    if stats.get("n_empty"):
        print(f"{stats['n_empty']:,} empty document(s) kept as they are (never matched)")
    if stats["n_skipped"]:
        first = stats["skipped"][0]
        print(
            f"skipped {stats['n_skipped']:,} malformed record(s), first at "
            f"{first['source']}:{first['line']}: {first['reason']}"
        )
    print(
        f"time: read {t['read']:.2f}s, dedup {t['dedup']:.2f}s, write {t['write']:.2f}s, "
        f"total {t['total']:.2f}s"
    )
    print(f"wrote {', '.join(OUTPUT_FILES)} to {stats['outdir']}")


def _short(path: str, root: str) -> str:
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _example_pairs(
    records: list[Record],
    pi: np.ndarray,
    pj: np.ndarray,
    pjac: np.ndarray,
    root: str,
    count: int = 6,
) -> list[tuple[str, str, float]]:
    """A few pairs spread over the similarity range, at most one per first document."""
    if len(pi) == 0:
        return []
    order = np.lexsort((pj, pi, -pjac))  # most similar first
    _, first = np.unique(pi[order], return_index=True)
    distinct = order[np.sort(first)].tolist()
    if len(distinct) > count:
        step = (len(distinct) - 1) / (count - 1)
        distinct = [distinct[round(i * step)] for i in range(count)]
    return [
        (
            _short(records[int(pi[p])].id, root),
            _short(records[int(pj[p])].id, root),
            float(pjac[p]),
        )
        for p in distinct
    ]


def _print_demo(
    stats: dict[str, Any], records: list[Record], pi: np.ndarray, pj: np.ndarray, pjac: np.ndarray
) -> None:
    root = stdlib_dir()
    n, t = stats["n_input"], stats["timings_s"]
    p = stats["parameters"]
    version = platform.python_version()
    print(
        f"textsieve dedup --demo: the Python {version} standard library, one document per .py file"
    )
    print(f"  folder: {root}")
    print(
        f"  read {n:,} files, {stats['input_bytes'] / 1e6:,.1f} MB, in {t['read']:.2f}s; "
        f"dedup in {t['dedup']:.2f}s ({p['shingle']} {p['k']}-shingles, {p['num_perm']} "
        f"permutations, Jaccard >= {p['threshold']})"
    )
    print(
        f"  near-duplicates: {stats['n_removed']:,} files removed ({_pct(stats['n_removed'], n)}), "
        f"{stats['n_clusters_with_duplicates']:,} clusters (largest: {stats['largest_cluster']} "
        f"files), {stats['n_pairs']:,} verified pairs; {stats['n_kept']:,} files kept"
    )
    if stats["n_skipped"]:
        print(f"  skipped {stats['n_skipped']:,} file(s) that are not valid UTF-8")
    examples = _example_pairs(records, pi, pj, pjac, root)
    if examples:
        print("  example pairs (exact Jaccard):")
        for a, b, jac in examples:
            print(f"    {jac:.3f}  {a}  ~  {b}")
    print(f"  outputs: {stats['outdir']}{os.sep}  ({', '.join(OUTPUT_FILES)})")
    print(f"  open {os.path.join(stats['outdir'], 'report.html')} for the clusters side by side")
