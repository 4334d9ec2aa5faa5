"""Command-line options of the workshop, shared by ``textsieve workshop`` and
``python -m textsieve.workshop``.

Exit codes: 0 success, 1 a value the exercise cannot use (or an unwritable folder), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from textsieve.workshop import CHAPTERS, DEFAULT_DIRS, run_workshop
from textsieve.workshop._common import ChapterResult

DESCRIPTION = """\
The math workshop: run the math under language models and keep the evidence.

Each chapter prints a short STEP summary and writes an evidence folder of CSV tables,
SVG charts and Markdown notes (default folder names below). Files already in the folder
that the workshop does not write are left alone; rerunning gives identical files.

chapters:
  ch04         vectors, probability, entropy, gradient descent -> ch04_math_workshop_evidence/
  likelihood   a loaded die: likelihood, MLE, cross-entropy    -> likelihood_workshop_evidence/
  gradients    derivatives, chain rule, regression, LR sweep   -> gradients_workshop_evidence/
  pretraining  softmax loss, n-gram perplexity, compute, cost  -> pretraining_workshop_evidence/
  all          every chapter, each in its own folder (under -o DIR when given)
"""

EXAMPLES = """\
examples:
  textsieve workshop                                   # chapter 4 into ch04_math_workshop_evidence/
  textsieve workshop -o /tmp/ch04                      # the same files into /tmp/ch04/
  textsieve workshop --query 0.1,1.0,0.7               # now `probability` is the best match
  textsieve workshop --true-probability 0.5 --seed 7   # another coin, another run
  textsieve workshop --learning-rate 0.05 --steps 40   # slower descent, more steps
  textsieve workshop --learning-rate 1.1               # too large: the loss diverges
  textsieve workshop --chapter likelihood --counts 3,3,3,3,3,5
  textsieve workshop --chapter gradients --sweep 0.001,0.01,0.06,0.09
  textsieve workshop --chapter pretraining --mix-weight 0.5 --json
  python -m textsieve.workshop --chapter all -o evidence
"""

# Which options each chapter takes (destination names); -o, --json and --quiet apply to all.
CHAPTER_OPTIONS: dict[str, tuple[str, ...]] = {
    "ch04": (
        "query",
        "true_probability",
        "batches",
        "trials",
        "seed",
        "learning_rate",
        "steps",
        "start_x",
    ),
    "likelihood": ("counts", "learning_rate", "steps"),
    "gradients": ("learning_rate", "steps", "init", "sweep", "delta"),
    "pretraining": (
        "logits",
        "target",
        "k",
        "seed",
        "input_tokens",
        "output_tokens",
        "input_price",
        "output_price",
        "mix_weight",
    ),
    "all": (),
}
ALL_OPTIONS = sorted({name for names in CHAPTER_OPTIONS.values() for name in names})


class UsageError(Exception):
    """A flag that does not fit the chosen chapter (exit code 2)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the workshop's options to ``parser``."""
    parser.add_argument(
        "--chapter",
        choices=[*CHAPTERS, "all"],
        default="ch04",
        metavar="NAME",
        help="ch04 (default), likelihood, gradients, pretraining or all",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="evidence folder (default: the chapter's folder in the current directory; "
        "with --chapter all, the parent of the chapter folders)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the key numbers and files as JSON instead"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing; just write the files"
    )

    ch4 = parser.add_argument_group("chapter 4 (ch04)")
    ch4.add_argument(
        "--query",
        metavar="A,B,C",
        help="query vector compared with the topic vectors (default 1.0,0.7,0.2; "
        "write --query=-1,0,0 when it starts with a minus)",
    )
    ch4.add_argument(
        "--true-probability",
        type=float,
        metavar="P",
        help="success probability of each simulated trial (default 0.65)",
    )
    ch4.add_argument("--batches", type=int, metavar="N", help="simulated batches (default 12)")
    ch4.add_argument("--trials", type=int, metavar="N", help="trials per batch (default 20)")
    ch4.add_argument("--start-x", type=float, metavar="X", help="gradient descent start (3.5)")

    shared = parser.add_argument_group("shared by several chapters")
    shared.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="random seed: ch04 simulation (default 42), pretraining corpus shuffle (default 0)",
    )
    shared.add_argument(
        "--learning-rate",
        type=float,
        metavar="LR",
        help="step size: ch04 (default 0.2), likelihood softmax ascent (1.0), "
        "gradients regression (0.01)",
    )
    shared.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help="updates: ch04 (default 12), likelihood (100), gradients epochs (1000)",
    )

    lik = parser.add_argument_group("likelihood")
    lik.add_argument(
        "--counts", metavar="T1,...", help="how often each face came up (default 2,5,2,4,2,5)"
    )

    grad = parser.add_argument_group("gradients")
    grad.add_argument("--init", metavar="W,B", help="regression start (default 0.9501,0.7320)")
    grad.add_argument(
        "--sweep",
        metavar="LR,...",
        help="learning rates to compare (default 0.001,0.01,0.06,0.09)",
    )
    grad.add_argument(
        "--delta", type=float, metavar="H", help="finite-difference step h (default 1e-05)"
    )

    pre = parser.add_argument_group("pretraining")
    pre.add_argument(
        "--logits",
        metavar="Z,...",
        help="logits (default 0.2,-0.3,1.1,0.0; write --logits=-1,2 when it starts with a minus)",
    )
    pre.add_argument("--target", type=int, metavar="I", help="index of the correct token (2)")
    pre.add_argument("--k", type=float, metavar="K", help="add-k smoothing constant (0.1)")
    pre.add_argument("--input-tokens", type=int, metavar="N", help="tokens sent (1200)")
    pre.add_argument("--output-tokens", type=int, metavar="N", help="tokens generated (400)")
    pre.add_argument(
        "--input-price", type=float, metavar="USD", help="USD per million input tokens (0.20)"
    )
    pre.add_argument(
        "--output-price", type=float, metavar="USD", help="USD per million output tokens (0.80)"
    )
    pre.add_argument(
        "--mix-weight", type=float, metavar="W", help="share of the general loss curve (0.7)"
    )


def build_parser(prog: str = "python -m textsieve.workshop") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def chapter_options(args: argparse.Namespace) -> dict[str, Any]:
    """The chapter-specific options the user gave, checked against the chosen chapter."""
    given = {name: getattr(args, name) for name in ALL_OPTIONS if getattr(args, name) is not None}
    allowed = CHAPTER_OPTIONS[args.chapter]
    wrong = [name for name in given if name not in allowed]
    if wrong:
        flags = ", ".join("--" + name.replace("_", "-") for name in wrong)
        takes = ", ".join("--" + name.replace("_", "-") for name in allowed) or "only -o"
        raise UsageError(f"{flags} does not apply to --chapter {args.chapter} (it takes {takes})")
    return given


def run_args(args: argparse.Namespace, prog: str = "textsieve workshop") -> int:
    """Run the workshop for parsed ``args``; returns the exit code, errors go to stderr."""
    try:
        options = chapter_options(args)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    quiet = args.quiet or args.json
    try:
        if args.chapter == "all":
            results = []
            for i, name in enumerate(CHAPTERS):
                out = Path(args.output) / DEFAULT_DIRS[name] if args.output else None
                if i and not quiet:
                    print()
                results.append(run_workshop(name, out, quiet=quiet))
        else:
            results = [run_workshop(args.chapter, args.output, quiet=quiet, **options)]
    except ValueError as exc:  # WorkshopError and friends: a value the exercise cannot use
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{prog}: error: cannot write the evidence: {exc}", file=sys.stderr)
        return 1
    except ArithmeticError as exc:  # a value so extreme that the arithmetic itself fails
        print(f"{prog}: error: the numbers overflowed ({exc}); try smaller values", file=sys.stderr)
        return 1
    if args.json:
        payload = [_as_json(r) for r in results]
        print(
            json.dumps(
                payload if args.chapter == "all" else payload[0], ensure_ascii=False, indent=2
            )
        )
    return 0


def _as_json(result: ChapterResult) -> dict[str, Any]:
    return {
        "chapter": result.chapter,
        "output_dir": str(result.output_dir),
        "files": [str(p) for p in result.files],
        "params": result.params,
        "summary": result.summary,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m textsieve.workshop``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_args(args, prog=parser.prog)
