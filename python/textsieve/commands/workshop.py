"""``textsieve workshop``: run the math workshop and write its evidence folder.

The options live in :mod:`textsieve.workshop.cli`, shared with ``python -m textsieve.workshop``.
"""

from __future__ import annotations

import argparse

from textsieve.workshop.cli import DESCRIPTION, EXAMPLES, add_arguments, run_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "workshop",
        help="run the math workshop (vectors, probability, gradients, ...) and write evidence",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the chosen chapter; 0 on success, 1 for a bad value, 2 for a flag that does not fit."""
    return run_args(args, prog="textsieve workshop")
