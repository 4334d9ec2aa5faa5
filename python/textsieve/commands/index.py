"""``textsieve index``: make, inspect and maintain an on-disk dedup index; and the
``--index DIR [--update]`` part of ``textsieve dedup`` (dedup new data against the index).

See :mod:`textsieve.index` for the index itself and :mod:`textsieve.local_index` for the engine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

from textsieve._checks import MAX_PERM, arg_int, arg_seed, arg_threshold
from textsieve.commands._common import (
    add_input_options,
    prepare_outdir,
    reader_factory,
    stdin_in,
)
from textsieve.errors import TextsieveError
from textsieve.io import STDIN, json_text

DESCRIPTION = """\
Make, inspect and maintain an on-disk dedup index: a directory of immutable segments holding the
kept documents (ids, compressed texts, sorted band tables) under a manifest committed by atomic
rename. New data is deduplicated against it with

  textsieve dedup NEW... -o OUTDIR --index DIR            # against the index, within NEW
  textsieve dedup NEW... -o OUTDIR --index DIR --update   # ... and add the kept records

which writes the usual outputs (kept.jsonl, removed.jsonl, pairs.jsonl, stats.json,
report.html); a removed record names the record it duplicates, in NEW or in the index.
One process writes to an index at a time (a lock file); any number may read."""

EXAMPLES = """\
examples:
  textsieve index create idx/ --threshold 0.8
  textsieve index add idx/ day1.jsonl.zst -o out-day1/     # = dedup --index idx/ --update
  textsieve dedup day2.jsonl -o out-day2/ --index idx/ --update
  textsieve index info idx/ --json
  textsieve index remove idx/ doc-17 doc-42               # by id (or --ids-file FILE)
  textsieve index compact idx/
  textsieve index upgrade saved/                          # a DedupIndex.save directory"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "index",
        help="make and maintain an on-disk dedup index (dedup new data against old)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")

    dir_help = "the index directory"
    c = sub.add_parser("create", help="make an empty index with these settings")
    c.add_argument("dir", metavar="DIR", help=dir_help)
    c.add_argument(
        "--threshold", type=arg_threshold(), default=0.8, help="Jaccard of a duplicate (0.8)"
    )
    c.add_argument(
        "--num-perm",
        type=arg_int(1, MAX_PERM),
        default=128,
        metavar="N",
        help="MinHash permutations (128)",
    )
    c.add_argument("--seed", type=arg_seed(), default=1, help="MinHash seed (1)")
    c.add_argument(
        "--shingle",
        default="char:5",
        metavar="char:K|word:N",
        help="character K-grams or word N-grams (char:5)",
    )
    c.add_argument(
        "--keep",
        choices=("first", "longest"),
        default="first",
        help="decision order within an add (first)",
    )
    c.set_defaults(func=run_create)

    i = sub.add_parser("info", help="what the index holds, its settings and size")
    i.add_argument("dir", metavar="DIR", help=dir_help)
    i.add_argument("--json", action="store_true", help="print as JSON")
    i.add_argument("--no-verify", action="store_true", help="skip the checksum of every segment")
    i.set_defaults(func=run_info)

    a = sub.add_parser(
        "add",
        help="dedup inputs against the index and add the kept ones (dedup --index --update)",
    )
    a.add_argument("dir", metavar="DIR", help=dir_help)
    a.add_argument("inputs", nargs="+", metavar="INPUT", help="input files or directories")
    a.add_argument(
        "-o", "--output", dest="outdir", metavar="OUTDIR", help="also write the dedup outputs here"
    )
    add_input_options(a)
    a.add_argument("--threads", type=arg_int(1), metavar="N", help="worker threads (all cores)")
    a.add_argument("--json", action="store_true", help="print the stats as JSON")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    a.set_defaults(func=run_add)

    r = sub.add_parser("remove", help="remove documents by id (tombstones)")
    r.add_argument("dir", metavar="DIR", help=dir_help)
    r.add_argument("ids", nargs="*", metavar="ID", help="ids of the documents to remove")
    r.add_argument("--ids-file", metavar="FILE", help="a file of ids, one a line")
    r.set_defaults(func=run_remove)

    k = sub.add_parser("compact", help="merge the segments, dropping removed documents")
    k.add_argument("dir", metavar="DIR", help=dir_help)
    k.set_defaults(func=run_compact)

    u = sub.add_parser("upgrade", help="upgrade, in place, a directory saved by DedupIndex.save")
    u.add_argument("dir", metavar="DIR", help="the directory DedupIndex.save wrote")
    u.set_defaults(func=run_upgrade)

    p.set_defaults(func=lambda args: _help(p), _parser=p)
    return p


def _help(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def _open(path: str, **kw: Any) -> Any:
    from textsieve.index import PersistentDedupIndex

    return PersistentDedupIndex.open(path, **kw)


def run_create(args: argparse.Namespace) -> int:
    from textsieve.commands.dedup import parse_shingle

    try:
        shingle, k = parse_shingle(args.shingle)
    except argparse.ArgumentTypeError as exc:
        raise TextsieveError(f"--shingle: {exc}") from None
    if os.path.exists(os.path.join(args.dir, "index.json")):
        raise TextsieveError(f"{args.dir}: an index exists there already")
    with _open(
        args.dir,
        threshold=args.threshold,
        num_perm=args.num_perm,
        seed=args.seed,
        shingle=shingle,
        k=k,
        keep=args.keep,
    ) as idx:
        print(f"created {idx.path} ({_settings_line(idx.settings)})")
    return 0


def _settings_line(s: dict[str, Any]) -> str:
    return (
        f"threshold {s['threshold']}, {s['shingle']}:{s['k']} shingles, {s['num_perm']} "
        f"permutations, {s['bands']} bands x {s['rows']} rows, keep {s['keep']}"
    )


def run_info(args: argparse.Namespace) -> int:
    with _open(args.dir, create=False, readonly=True, verify=not args.no_verify) as idx:
        info = idx.info()
    if args.json:
        print(json_text(info))
        return 0
    print(f"index {info['path']}")
    print(
        f"  {info['n_docs']:,} documents ({info['n_numbered']:,} added in all, "
        f"{info['n_removed']:,} removed and not yet compacted)"
    )
    print(
        f"  {info['n_segments']} segment(s), {info['bytes'] / 1e6:,.1f} MB on disk, "
        f"{info['bytes_per_doc']:,.0f} bytes a document (texts compressed)"
    )
    print(f"  settings: {_settings_line(info['settings'])}")
    return 0


def run_add(args: argparse.Namespace) -> int:
    tmp = None
    outdir = args.outdir
    if outdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="textsieve-index-add-")
        outdir = tmp.name
    try:
        with _open(args.dir, create=False) as idx:
            stats = dedup_into(args, idx, args.inputs, outdir, update=True)
    finally:
        if tmp is not None:
            tmp.cleanup()
    _print(args, stats, show_outputs=args.outdir is not None)
    return 0


def run_remove(args: argparse.Namespace) -> int:
    ids = list(args.ids)
    if args.ids_file:
        with open(args.ids_file, encoding="utf-8") as fh:
            ids += [line.rstrip("\r\n") for line in fh if line.strip()]
    if not ids:
        raise TextsieveError("give the ids to remove (ID... or --ids-file FILE)")
    with _open(args.dir, create=False) as idx:
        n = idx.remove(ids)
        print(f"removed {n:,} of {len(ids):,} id(s); {len(idx):,} documents left")
    return 0


def run_compact(args: argparse.Namespace) -> int:
    with _open(args.dir, create=False) as idx:
        r = idx.compact()
        print(
            f"compacted {idx.path}: {r['segments_before']} segment(s) -> "
            f"{r['segments_after']}; {len(idx):,} documents"
        )
    return 0


def run_upgrade(args: argparse.Namespace) -> int:
    from textsieve.index import upgrade

    upgrade(args.dir)
    with _open(args.dir, create=False, readonly=True) as idx:
        print(f"upgraded {idx.path}: {len(idx):,} documents")
    return 0


def dedup_into(
    args: argparse.Namespace,
    idx: Any,
    inputs: list[str],
    outdir: str,
    *,
    update: bool,
    doc_per_file: bool | None = None,
    glob: str | None = None,
    on_error: str | None = None,
    exclude: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Runs the index engine for ``textsieve dedup --index`` and ``textsieve index add``."""
    from textsieve.local_index import dedup_with_index
    from textsieve.pipeline import every_output_name

    dpf = args.doc_per_file if doc_per_file is None else doc_per_file
    glob = args.glob if glob is None else glob
    on_error = args.on_error if on_error is None else on_error
    if inputs.count(STDIN) > 1:
        raise TextsieveError("'-' (standard input) can be given once")
    expand = {"doc_per_file": dpf, "format": args.format, "glob": glob, "exclude_dirs": exclude}
    prepare_outdir(outdir, inputs, every_output_name(), **expand)
    with stdin_in(outdir, inputs) as stdin:
        make_reader = reader_factory(
            args,
            inputs,
            stdin=stdin,
            doc_per_file=dpf,
            glob=glob,
            on_error=on_error,
            exclude=exclude,
        )
        return dedup_with_index(
            make_reader,
            outdir,
            idx,
            update=update,
            num_threads=args.threads,
            text_field=args.text_field,
            id_field=args.id_field,
            inputs=inputs,
            show_progress=False if args.quiet else None,
            parameters={"doc_per_file": dpf, "glob": glob, "format": args.format},
            compression=getattr(args, "compress", None),
            annotate=getattr(args, "annotate", False),
            kept_format=getattr(args, "kept_format", "auto"),
            last=True,
        )


def _print(args: argparse.Namespace, stats: dict[str, Any], show_outputs: bool = True) -> None:
    from textsieve.pipeline import print_summary

    if args.json:
        print(json_text(stats))
    elif not args.quiet:
        lines: list[str] = []
        print_summary(stats, lines.append)
        if not show_outputs:
            lines = [x for x in lines if not x.startswith("wrote ")]
        for line in lines:
            print(line)
        ix = stats["index"]
        extra = f", now {ix['n_docs_after']:,}" if ix.get("n_docs_after") is not None else ""
        print(
            f"against the index {ix['path']} ({ix['n_docs_before']:,} documents{extra}): "
            f"{stats['n_removed_vs_index']:,} removed as duplicates of indexed documents"
        )


def run_dedup_with_index(
    args: argparse.Namespace,
    inputs: list[str],
    outdir: str,
    doc_per_file: bool,
    glob: str | None,
    on_error: str,
    exclude: tuple[str, ...],
) -> int:
    """``textsieve dedup ... --index DIR [--update]``: the similarity options must agree with
    the index's settings (options left at their defaults take the index's)."""
    parser = args._parser
    if args.engine != "local":
        raise TextsieveError("--index works with --engine local")
    if args.cluster != "greedy" or args.all_pairs:
        raise TextsieveError(
            "--index decides by the greedy rule: no --cluster components or --all-pairs"
        )
    shingle, k = args.shingle
    given = {
        "threshold": args.threshold,
        "num_perm": args.num_perm,
        "seed": args.seed,
        "keep": args.keep,
    }
    defaults = {name: parser.get_default(name) for name in given}
    exists = os.path.exists(os.path.join(args.index, "index.json")) or os.path.exists(
        os.path.join(args.index, "manifest.json")
    )
    if not exists and not args.update:
        raise TextsieveError(
            f"--index {args.index}: no index there; add --update to create it from this run"
        )
    if exists:
        explicit = {n: v for n, v in given.items() if v != defaults[n]}
        if args.shingle != parser.get_default("shingle"):
            explicit.update(shingle=shingle, k=k)
        idx = _open(args.index, create=False, readonly=not args.update, **explicit)
    else:
        idx = _open(args.index, **given, shingle=shingle, k=k)
    with idx:
        stats = dedup_into(
            args,
            idx,
            inputs,
            outdir,
            update=args.update,
            doc_per_file=doc_per_file,
            glob=glob,
            on_error=on_error,
            exclude=exclude,
        )
    _print(args, stats)
    return 0
