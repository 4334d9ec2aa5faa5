"""The ``textsieve`` command.

Each sub-command lives in its own module under :mod:`textsieve.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the parsed
arguments and returning an exit code). Exit codes: 0 success, 1 bad input (a
:class:`~textsieve.TextsieveError` or another ``ValueError``, or an ``OSError``), 2 usage,
70 an internal error (a bug: any other exception, shown with its traceback and where to report
it), 130 interrupted, 141 stdout closed early (``textsieve ... | head``: quiet, as for SIGPIPE).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from textsieve.errors import TextsieveError

# Sub-command modules, in the order ``textsieve --help`` lists them.
COMMANDS = ["dedup", "index", "substrings", "ngram", "workshop", "lm", "bench"]

EXIT_INTERNAL = 70  # EX_SOFTWARE (sysexits.h)
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a process ended by SIGPIPE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="textsieve",
        description="Clean a text corpus and understand the numbers behind it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from textsieve import __version__

    version = f"textsieve {__version__}"
    parser.add_argument("--version", action="version", version=version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"textsieve.commands.{name}")
        except ModuleNotFoundError as exc:  # a command still being written
            if exc.name != f"textsieve.commands.{name}":
                raise
            continue
        module.register(sub)
    for command in subcommands(parser):
        command.add_argument("--version", action="version", version=version)
    return parser


def subcommands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser below ``parser`` (``dedup``, ``ngram``, ``ngram train``, ...)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases share a parser
                found += [child, *subcommands(child)]
    return found


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
    prog = f"textsieve {args.command}"
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _broken_pipe()
    except (TextsieveError, ValueError, OSError) as exc:  # bad input, missing or unreadable file
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return _interrupted(prog)
    except Exception:  # a bug: TypeError, KeyError, ... never reported as bad input
        traceback.print_exc()
        print(
            f"{prog}: internal error (a bug in textsieve, not in your input); please report it "
            "to the textsieve maintainers with the command line and the traceback above",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _broken_pipe() -> int:
    """The reader of stdout went away (``| head``): stop quietly. Python's documented recipe:
    point stdout at devnull so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (a test's capture)
        pass
    return EXIT_BROKEN_PIPE


def _interrupted(prog: str) -> int:
    print(f"{prog}: interrupted", file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(main())
