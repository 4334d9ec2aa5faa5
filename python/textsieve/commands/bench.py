"""``textsieve bench``: Rust against the pure-Python reference (and peers when installed)."""

from __future__ import annotations

import argparse
import json
import sys

from textsieve._checks import MAX_ORDER, arg_float, arg_int

EXAMPLES = """examples:
  textsieve bench                          tokenize/count/perplexity/pipeline on the shared corpora
  textsieve bench --corpus generated --json
  TEXTSIEVE_DATA=/path/to/data textsieve bench --limit-mb 5

Corpora: ../shared/data (or $TEXTSIEVE_DATA) when present, else generated text. Peers (NLTK,
KenLM) are timed when installed (pip install 'textsieve[bench]').
"""


def run(args: argparse.Namespace) -> int:
    from textsieve.bench import load_corpus, mb, report, run_ngram_bench

    results = []
    done: set[str] = set()
    for name in args.corpus:
        label, docs = load_corpus(name, limit_bytes=int(args.limit_mb * 1e6))
        if label != name:
            print(
                f"textsieve bench: corpus {name!r} not found (looked in $TEXTSIEVE_DATA and "
                "../shared/data); timing generated text instead",
                file=sys.stderr,
            )
        if label in done:
            continue
        done.add(label)
        rows = run_ngram_bench(
            docs,
            order=args.order,
            repeat=args.repeat,
            peers=not args.no_peers,
            num_threads=args.threads,
        )
        results.append((label, docs, rows))
        if not args.json:
            print(
                f"\n== {label}: {len(docs)} documents, {mb(docs):.2f} MB, order {args.order}, {args.threads} thread(s)"
            )
            print(report(rows))
    if args.json:
        out = [
            {
                "corpus": label,
                "documents": len(docs),
                "megabytes": mb(docs),
                "rows": [
                    {
                        "stage": r.stage,
                        "impl": r.impl,
                        "seconds": r.seconds,
                        "mb_per_s": r.mb_per_s,
                        **r.extra,
                    }
                    for r in rows
                ],
            }
            for label, docs, rows in results
        ]
        print(json.dumps(out, indent=1))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="time the Rust core against the pure-Python reference and peers",
        description="Side-by-side timings, same text, same run; every timing checks its result.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--corpus",
        nargs="+",
        default=["shakespeare", "manpages"],
        choices=["shakespeare", "manpages", "generated"],
        help="corpora to time on (default: shakespeare manpages)",
    )
    p.add_argument(
        "--limit-mb",
        type=arg_float(above=0.0),
        default=3.0,
        help="use at most this much of each corpus (default 3)",
    )
    p.add_argument(
        "--order", type=arg_int(1, MAX_ORDER), default=2, help="n-gram order (default 2)"
    )
    p.add_argument(
        "--threads",
        type=arg_int(1),
        default=1,
        help="Rust threads (default 1); one thread is timed in CPU seconds, more in wall seconds",
    )
    p.add_argument("--repeat", type=arg_int(1), default=3, help="best of N runs for the Rust side")
    p.add_argument("--no-peers", action="store_true", help="skip NLTK and KenLM")
    p.add_argument("--json", action="store_true", help="print the timings as JSON")
    p.set_defaults(func=run)
