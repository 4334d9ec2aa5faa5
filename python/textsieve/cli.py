"""The ``textsieve`` command.

Each sub-command lives in its own module under :mod:`textsieve.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the parsed
arguments and returning an exit code). Exit codes: 0 success, 1 bad input, 2 usage.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from textsieve.errors import TextsieveError

# Sub-command modules, in the order ``textsieve --help`` lists them.
COMMANDS = ["dedup", "ngram", "workshop", "lm", "bench"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="textsieve",
        description="Clean a text corpus and understand the numbers behind it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from textsieve import __version__

    parser.add_argument("--version", action="version", version=f"textsieve {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"textsieve.commands.{name}")
        except ModuleNotFoundError as exc:  # a command still being written
            if exc.name != f"textsieve.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line. Ctrl-C from here on (the sub-commands' imports included) ends it with
    status 130 and one line on stderr, ``textsieve COMMAND: interrupted``, no traceback."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        return _interrupted("textsieve")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except (TextsieveError, ValueError, TypeError, OSError) as exc:
        print(f"textsieve {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return _interrupted(f"textsieve {args.command}")


def _interrupted(prog: str) -> int:
    print(f"{prog}: interrupted", file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(main())
