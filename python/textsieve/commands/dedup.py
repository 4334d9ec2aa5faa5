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
import os
import platform
import sys
import tempfile
from typing import Any

import numpy as np

from textsieve._checks import MAX_K, MAX_PERM, arg_int, arg_seed, arg_threshold
from textsieve.commands._common import (
    add_input_options,
    prepare_outdir,
    reader_factory,
    stdin_in,
)
from textsieve.errors import TextsieveError
from textsieve.io import STDIN, json_text
from textsieve.pipeline import (
    COMPRESSIONS,
    _pct,
    every_output_name,
    print_summary,
)

DEFAULT_K = {"char": 5, "word": 3}
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
  -                         standard input (gzip/zstd by magic number; JSON Lines if it
                            starts with "{", else text, or say --format), copied to OUTDIR
                            while it runs

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
  textsieve dedup today.jsonl -o out/ --index idx/ --update # against everything kept before
  textsieve dedup --demo                                   # the Python standard library itself"""


# --------------------------------------------------------------------------------------------
# Argument parsing


_positive_int = arg_int(1)


def parse_shingle(value: str) -> tuple[str, int]:
    """``"char:5"`` -> ``("char", 5)``; ``"word"`` -> ``("word", 3)``."""
    kind, _, size = value.strip().partition(":")
    kind = kind.lower()
    if kind not in DEFAULT_K:
        raise argparse.ArgumentTypeError(f"expected char:K or word:N, got {value!r}")
    if not size:
        return kind, DEFAULT_K[kind]
    try:
        k = arg_int(1, MAX_K)(size)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"shingle size: {exc}") from None
    return kind, k


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "dedup",
        help="remove near-duplicate documents (MinHash + LSH + exact Jaccard)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="input files or directories; - for stdin"
    )
    p.add_argument(
        "-o", "--output", dest="outdir", metavar="OUTDIR", help="output folder (created if missing)"
    )
    add_input_options(p)
    g = p.add_argument_group("similarity")
    g.add_argument(
        "--threshold",
        type=arg_threshold(),
        default=0.8,
        help="Jaccard at or above which two documents are duplicates (0.8)",
    )
    g.add_argument(
        "--num-perm",
        type=arg_int(1, MAX_PERM),
        default=128,
        metavar="N",
        help="MinHash permutations (128)",
    )
    g.add_argument("--seed", type=arg_seed(), default=1, help="MinHash seed, 0 <= seed < 2**64 (1)")
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
    g.add_argument(
        "--annotate",
        action="store_true",
        help='write every record to annotated.jsonl with its decision in a "dedup" field '
        "(keep, cluster, duplicate_of, jaccard) instead of kept.jsonl and removed.jsonl",
    )
    g.add_argument(
        "--kept-format",
        choices=("auto", "jsonl", "parquet"),
        default="auto",
        help="kept.parquet (the rows with their columns and types) or kept.jsonl; auto: "
        "Parquet when every input is Parquet",
    )
    g.add_argument(
        "--compress",
        choices=tuple(COMPRESSIONS),
        help="write kept/removed/pairs compressed: .jsonl.gz (gzip) or .jsonl.zst (zstd, needs "
        "zstandard)",
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
    g.add_argument(
        "--index",
        metavar="DIR",
        help="also dedup against this on-disk index (textsieve index --help)",
    )
    g.add_argument(
        "--update", action="store_true", help="--index: add the kept records to the index"
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


def run(args: argparse.Namespace) -> int:
    parser = getattr(args, "_parser", None)
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
    if getattr(args, "update", False) and not getattr(args, "index", None):
        return _usage(parser, "--update needs --index DIR")
    if getattr(args, "index", None):
        from textsieve.commands.index import run_dedup_with_index

        return run_dedup_with_index(args, inputs, outdir, doc_per_file, glob, on_error, exclude)
    if inputs.count(STDIN) > 1:
        return _usage(parser, "'-' (standard input) can be given once")
    if STDIN in inputs and args.engine == "dask":
        return _usage(parser, "'-' (standard input) needs --engine local: Dask workers read files")
    prepare_outdir(
        outdir,
        inputs,
        every_output_name(),
        doc_per_file=doc_per_file,
        format=args.format,
        glob=glob,
        exclude_dirs=exclude,
    )
    with stdin_in(outdir, inputs) as stdin:
        return _run(args, inputs, outdir, doc_per_file, glob, on_error, exclude, stdin)


def _run(
    args: argparse.Namespace,
    inputs: list[str],
    outdir: str,
    doc_per_file: bool,
    glob: str | None,
    on_error: str,
    exclude: tuple[str, ...],
    stdin: str | None,
) -> int:
    shingle, k = args.shingle

    make_reader = reader_factory(
        args,
        inputs,
        stdin=stdin,
        doc_per_file=doc_per_file,
        glob=glob,
        on_error=on_error,
        exclude=exclude,
    )

    make_reader()  # every input named exists and has a format, before any work
    if args.engine == "dask":
        from textsieve.dask import run_command

        return run_command(args, inputs, outdir, doc_per_file, glob, on_error, exclude)

    from textsieve.dedup import DedupSettings
    from textsieve.local import dedup_local

    settings = DedupSettings(
        threshold=args.threshold,
        num_perm=args.num_perm,
        seed=args.seed,
        shingle=shingle,
        k=k,
        keep=args.keep,
        cluster=args.cluster,
    )
    stats, extra = dedup_local(
        make_reader,
        outdir,
        settings,
        all_pairs=args.all_pairs,
        num_threads=args.threads,
        text_field=args.text_field,
        id_field=args.id_field,
        inputs=inputs,
        show_progress=False if args.quiet else None,
        parameters={
            "doc_per_file": doc_per_file,
            "glob": glob,
            "format": args.format,
            "on_error": on_error,
            "engine": args.engine,
            "threads": args.threads,
        },
        compression=args.compress,
        annotate=args.annotate,
        kept_format=args.kept_format,
        last=True,
    )
    ids = extra["ids"]
    dup = extra["duplicate_of"]
    (pj,) = np.nonzero(dup >= 0)
    pi, pjac = dup[pj], extra["similarity"][pj]
    if args.json:
        out = dict(stats)
        if args.demo:
            out["examples"] = [
                {"id_a": a, "id_b": b, "jaccard": j}
                for a, b, j in _example_pairs(ids, pi, pj, pjac, stdlib_dir())
            ]
        print(json_text(out))
    elif args.demo:
        _print_demo(stats, ids, pi, pj, pjac)
    elif not args.quiet:
        print_summary(stats)
    return 0


def _usage(parser: argparse.ArgumentParser | None, message: str) -> int:
    if parser is not None:
        parser.error(message)  # exits with status 2
    print(f"textsieve dedup: error: {message}", file=sys.stderr)
    return 2


# --------------------------------------------------------------------------------------------
# Human output


def _short(path: str, root: str) -> str:
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _example_pairs(
    ids: Any,
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
            _short(ids[int(pi[p])], root),
            _short(ids[int(pj[p])], root),
            float(pjac[p]),
        )
        for p in distinct
    ]


def _print_demo(
    stats: dict[str, Any], ids: Any, pi: np.ndarray, pj: np.ndarray, pjac: np.ndarray
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
        f"files), each within the threshold of the kept file it duplicates; "
        f"{stats['n_kept']:,} files kept"
    )
    if stats["n_skipped"]:
        print(f"  skipped {stats['n_skipped']:,} file(s) that are not valid UTF-8")
    examples = _example_pairs(ids, pi, pj, pjac, root)
    if examples:
        print("  example pairs (exact Jaccard):")
        for a, b, jac in examples:
            print(f"    {jac:.3f}  {a}  ~  {b}")
    names = [os.path.basename(path) for path in stats["outputs"].values()]
    print(f"  outputs: {stats['outdir']}{os.sep}  ({', '.join(names)})")
    print(f"  open {os.path.join(stats['outdir'], 'report.html')} for the clusters side by side")
