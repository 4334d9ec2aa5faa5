"""``textsieve substrings``: exact substring dedup (cut every repeated passage of at least
``--min-length`` bytes out of the documents), from one suffix array over the corpus.

The outputs and the definition are documented in :mod:`textsieve.substrings` and
:mod:`textsieve.suffix`; this module parses arguments and prints the summary.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from textsieve._checks import arg_int
from textsieve.commands._common import (
    add_input_options,
    prepare_outdir,
    reader_factory,
    stdin_in,
)
from textsieve.errors import TextsieveError
from textsieve.io import STDIN, json_text

DESCRIPTION = """\
Remove repeated passages from a corpus (exact substring dedup, as Lee et al. 2022).

A byte is removed when it lies inside a window of --min-length bytes of its document that also
occurs at an earlier position of the corpus (--policy later, the default: the first occurrence
survives) or at any other position (--policy all). Whole characters go: a span never cuts a UTF-8
character. One suffix array over the whole corpus finds every such window; matches never cross
two documents.

INPUT may be files or directories, read as `textsieve dedup` reads them (JSONL, plain text,
Parquet, gzip, zstd). OUT receives cleaned.jsonl (every record, its text field cut, every other
byte kept), spans.jsonl (document id, start, end, bytes: byte offsets in the UTF-8 text),
stats.json and report.html, each written atomically; --dry-run writes spans.jsonl only.
Memory: about 6 bytes per byte of text, plus the records. Exit status: 0 done, 1 bad input,
2 usage."""

EXAMPLES = """\
examples:
  textsieve substrings corpus.jsonl -o out/
  textsieve substrings shards/ -o out/ --min-length 50 --policy all
  textsieve substrings corpus.jsonl.zst -o out/ --dry-run --json"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "substrings",
        help="remove repeated passages (exact substring dedup with a suffix array)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="input files or directories; - for stdin"
    )
    p.add_argument(
        "-o", "--output", dest="outdir", metavar="OUT", required=True, help="output folder"
    )
    p.add_argument(
        "--min-length",
        type=arg_int(1),
        default=100,
        metavar="BYTES",
        help="shortest repeated window removed, in bytes (100)",
    )
    p.add_argument(
        "--policy",
        choices=("later", "all"),
        default="later",
        help="later: keep each passage's first occurrence (default); all: remove every one",
    )
    p.add_argument("--dry-run", action="store_true", help="write spans.jsonl only")
    add_input_options(p)
    g = p.add_argument_group("run")
    g.add_argument(
        "--threads", type=arg_int(1), metavar="N", help="worker threads (default: all cores)"
    )
    g.add_argument("--json", action="store_true", help="print the stats as JSON on stdout")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=run, _parser=p)
    return p


def run(args: argparse.Namespace) -> int:
    from textsieve.substrings import OUTPUT_FILES

    if args.inputs.count(STDIN) > 1:
        raise TextsieveError("'-' (standard input) can be given once")
    prepare_outdir(
        args.outdir,
        args.inputs,
        OUTPUT_FILES,
        doc_per_file=args.doc_per_file,
        format=args.format,
        glob=args.glob,
    )
    with stdin_in(args.outdir, args.inputs) as stdin:
        return _run(args, stdin)


def _run(args: argparse.Namespace, stdin: str | None) -> int:
    from textsieve.substrings import dedup_substrings, print_summary

    make_reader = reader_factory(
        args,
        args.inputs,
        stdin=stdin,
        doc_per_file=args.doc_per_file,
        glob=args.glob,
        on_error=args.on_error,
    )

    stats = dedup_substrings(
        make_reader,
        args.outdir,
        min_length=args.min_length,
        policy=args.policy,
        dry_run=args.dry_run,
        text_field=args.text_field,
        num_threads=args.threads,
        show_progress=False if args.quiet else None,
        parameters={
            "inputs": list(args.inputs),
            "format": args.format,
            "on_error": args.on_error,
            "doc_per_file": args.doc_per_file,
            "glob": args.glob,
            "threads": args.threads,
        },
        last=True,
    )
    if args.json:
        print(json_text(stats))
    elif not args.quiet:
        print_summary(stats, lambda line: print(line, file=sys.stdout))
    return 0
