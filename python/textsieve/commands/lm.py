"""``textsieve lm train|eval|generate``: the character GRU language model on the command line."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from textsieve._checks import MAX_ORDER, arg_float, arg_int

TRAIN_EPILOG = """\
examples:
  # train on the first 90% of a text, validate on the last 10%, stop after 10 minutes
  textsieve lm train --text tinyshakespeare.txt --out shakespeare.npz --time-limit 600

  # a fixed number of steps, a bigger network, the torch backend (when installed)
  textsieve lm train --text corpus.txt --out lm.npz --steps 3000 --hidden 384 --backend torch

  # the one-hidden-layer bigram MLP of the study-group notes
  textsieve lm train --text corpus.txt --out mlp.npz --model mlp --steps 500

The loss curve goes to MODEL.history.csv and MODEL.history.svg unless --history/--svg say
otherwise. Progress (loss, chars/s) is drawn on stderr when it is a terminal.
"""

EVAL_EPILOG = """\
examples:
  # GRU vs add-k bigram on the same validation split (the last 10%)
  textsieve lm eval shakespeare.npz --text tinyshakespeare.txt

  # compare with an add-k 5-gram instead, as JSON
  textsieve lm eval shakespeare.npz --text tinyshakespeare.txt --order 5 --k 0.01 --json
"""

GENERATE_EPILOG = """\
examples:
  textsieve lm generate shakespeare.npz --prompt "ROMEO:" --length 300 --seed 1
  textsieve lm generate shakespeare.npz --prompt "First Citizen:" --temperature 0.8 --top-k 10
  textsieve lm generate shakespeare.npz --prompt "KING" --greedy
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    lm = subparsers.add_parser(
        "lm",
        help="train, evaluate and sample a character GRU language model",
        description=(
            "A character-level GRU language model (NumPy backend always, PyTorch when\n"
            "installed), compared with the add-k n-gram model on the same validation text."
        ),
        epilog="examples:\n  textsieve lm train --text input.txt --out lm.npz --time-limit 600\n"
        "  textsieve lm eval lm.npz --text input.txt\n"
        "  textsieve lm generate lm.npz --prompt 'ROMEO:'\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lm.set_defaults(func=lambda args: _usage(lm))
    sub = lm.add_subparsers(dest="lm_command", metavar="{train,eval,generate}")

    train = sub.add_parser(
        "train",
        help="train a model on a text file",
        description="Train a character language model on the first part of a text file and\n"
        "validate it on the rest.",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_split(train)
    train.add_argument(
        "-o",
        "--output",
        "--out",
        dest="out",
        required=True,
        metavar="MODEL",
        help="where to write the model (.npz)",
    )
    train.add_argument(
        "--model", choices=("gru", "mlp"), default="gru", help="gru (default) or mlp"
    )
    train.add_argument(
        "--backend",
        choices=("auto", "numpy", "torch"),
        default="auto",
        help="default auto: torch when installed",
    )
    train.add_argument(
        "--device", default=None, help="torch device (cpu, cuda); default cuda when available"
    )
    train.add_argument(
        "--d-model", type=arg_int(1), default=64, help="embedding width (default 64)"
    )
    train.add_argument(
        "--hidden",
        type=arg_int(1),
        default=None,
        help="hidden units (default 256 for gru, 64 for mlp)",
    )
    train.add_argument("--layers", type=arg_int(1), default=1, help="GRU layers (default 1)")
    train.add_argument(
        "--steps",
        type=arg_int(1),
        default=None,
        help="training steps (default 2000, or unlimited with --time-limit)",
    )
    train.add_argument(
        "--time-limit",
        type=arg_float(above=0.0),
        default=None,
        metavar="SEC",
        help="stop after this many seconds of training; the lr schedule follows it",
    )
    train.add_argument(
        "--batch", type=arg_int(1), default=64, help="sequences per step (default 64)"
    )
    train.add_argument(
        "--block", type=arg_int(1), default=128, help="characters per sequence (default 128)"
    )
    train.add_argument(
        "--lr", type=arg_float(above=0.0), default=3e-3, help="peak learning rate (default 3e-3)"
    )
    train.add_argument(
        "--min-lr", type=arg_float(0.0), default=None, help="final learning rate (default lr/10)"
    )
    train.add_argument(
        "--warmup",
        type=arg_float(0.0, 1.0),
        default=0.02,
        help="warm-up fraction of training (default 0.02)",
    )
    train.add_argument(
        "--weight-decay",
        type=arg_float(0.0),
        default=0.0,
        help="AdamW weight decay on matrices (default 0)",
    )
    train.add_argument(
        "--clip",
        type=arg_float(0.0),
        default=1.0,
        help="gradient-norm clip, 0 disables (default 1.0)",
    )
    train.add_argument(
        "--seed", type=arg_int(0), default=0, help="seed for weights and batches (default 0)"
    )
    train.add_argument(
        "--eval-every",
        type=arg_int(1),
        default=None,
        help="steps between history points (default: 20 per run)",
    )
    train.add_argument(
        "--eval-chars",
        type=arg_int(1),
        default=None,
        help="validation chars scored at each history point (default all; the final pass is always all)",
    )
    train.add_argument(
        "--history",
        default=None,
        metavar="CSV",
        help="loss history CSV (default MODEL.history.csv)",
    )
    train.add_argument("--svg", default=None, help="loss curve SVG (default MODEL.history.svg)")
    _add_common(train)
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser(
        "eval",
        help="validation nats/char and perplexity, beside the add-k n-gram model",
        description="Score the validation split (the last --val-fraction of the text) with the\n"
        "model, reading the whole split in consecutive blocks, and with an add-k n-gram\n"
        "model fitted on the training split, so the two numbers are comparable.",
        epilog=EVAL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ev.add_argument("model", metavar="MODEL", help="a model written by `textsieve lm train`")
    _add_split(ev)
    ev.add_argument(
        "--order",
        type=arg_int(1, MAX_ORDER),
        default=2,
        help="n-gram order of the add-k baseline (default 2)",
    )
    ev.add_argument(
        "--k", type=arg_float(above=0.0), default=1.0, help="add-k smoothing constant (default 1.0)"
    )
    ev.add_argument(
        "--backend",
        choices=("auto", "numpy", "torch"),
        default="auto",
        help="backend to run the model on, whichever trained it (default auto)",
    )
    _add_common(ev)
    ev.set_defaults(func=cmd_eval)

    gen = sub.add_parser(
        "generate",
        help="continue a prompt",
        description="Generate characters after a prompt, sampled (seeded) or greedy.\n"
        "Unknown prompt characters are read as <unk>.",
        epilog=GENERATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gen.add_argument("model", metavar="MODEL", help="a model written by `textsieve lm train`")
    gen.add_argument("--prompt", default="", help="text to continue (default: start of a line)")
    gen.add_argument(
        "--length", type=arg_int(0), default=200, help="characters to generate (default 200)"
    )
    gen.add_argument(
        "--temperature",
        type=arg_float(above=0.0),
        default=1.0,
        help="sampling temperature (default 1.0)",
    )
    gen.add_argument(
        "--top-k", type=arg_int(1), default=None, help="sample among the k most likely characters"
    )
    gen.add_argument("--greedy", action="store_true", help="always take the most likely character")
    gen.add_argument("--seed", type=arg_int(0), default=0, help="sampling seed (default 0)")
    gen.add_argument(
        "--backend",
        choices=("auto", "numpy", "torch"),
        default="auto",
        help="backend to run the model on, whichever trained it (default auto)",
    )
    gen.add_argument("--json", action="store_true", help="print a JSON object instead of the text")
    gen.add_argument(
        "-q", "--quiet", action="store_true", help="accepted for symmetry; prints only the text"
    )
    gen.set_defaults(func=cmd_generate)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _add_split(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text", required=True, metavar="FILE", help="UTF-8 text file")
    parser.add_argument(
        "--val-fraction",
        type=arg_float(above=0.0),
        default=0.1,
        help="last fraction of the characters held out for validation (default 0.1)",
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print a JSON object")


def read_split(path: str, val_fraction: float) -> tuple[str, str]:
    """First ``1 - val_fraction`` of the characters to train, the rest to validate."""
    if not (0.0 < val_fraction < 1.0):
        raise ValueError(f"--val-fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    text = Path(path).read_text(encoding="utf-8")
    cut = int(len(text) * (1.0 - val_fraction))
    train, val = text[:cut], text[cut:]
    if len(val) < 2 or len(train) < 2:
        raise ValueError(
            f"--text {path}: {len(text)} characters is too short to split with "
            f"--val-fraction {val_fraction}"
        )
    return train, val


def _with_backend_errors(func):
    """ImportError for a missing torch becomes exit code 1 with the install hint."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except ImportError as exc:
            print(f"textsieve lm {args.lm_command}: error: {exc}", file=sys.stderr)
            return 1

    wrapped.__name__ = func.__name__
    wrapped.__doc__ = func.__doc__
    return wrapped


@_with_backend_errors
def cmd_train(args: argparse.Namespace) -> int:
    import textsieve as ts
    from textsieve.lm import CharLanguageModel, GRULanguageModel, MLPBigramLM

    train, val = read_split(args.text, args.val_fraction)
    vocab = ts.Vocab.from_texts([train], unk="<unk>", normalize=False)
    model: CharLanguageModel
    if args.model == "gru":
        model = GRULanguageModel(
            vocab,
            d_model=args.d_model,
            hidden=args.hidden or 256,
            layers=args.layers,
            backend=args.backend,
            seed=args.seed,
            device=args.device,
        )
    else:
        if args.backend == "torch":
            raise ValueError("--model mlp runs on the numpy backend only; drop --backend torch")
        model = MLPBigramLM(vocab, hidden=args.hidden or 64, seed=args.seed)
    out = Path(args.out)
    history_csv = args.history or str(out.with_suffix("")) + ".history.csv"
    history_svg = args.svg or str(out.with_suffix("")) + ".history.svg"
    steps = args.steps if args.steps is not None else (None if args.time_limit else 2000)
    references = {}
    if args.model == "gru":
        bigram = ts.AddKLM(order=2, k=1.0, vocab=vocab).fit([train])
        references["add-k bigram"] = bigram.nll([val])
    started = time.perf_counter()
    history = model.fit(
        train,
        val,
        steps=steps,
        batch=args.batch,
        block=args.block,
        lr=args.lr,
        min_lr=args.min_lr,
        warmup=args.warmup,
        weight_decay=args.weight_decay,
        clip=args.clip or None,
        seed=args.seed,
        time_limit=args.time_limit,
        eval_every=args.eval_every,
        eval_chars=args.eval_chars,
        history_csv=history_csv,
        history_svg=history_svg,
        references=references,
        progress=False if args.quiet else None,
    )
    wall = time.perf_counter() - started
    model.save(out)
    val_nll = float(history.final_val_loss)  # type: ignore[arg-type]  # val is never empty
    last = history.rows[-1]
    result = {
        "model": str(out),
        "kind": model.kind,
        "backend": model.backend,
        "config": model.config,
        "parameters": model.num_parameters(),
        "vocab_size": model.vocab_size,
        "train_chars": len(train),
        "val_chars": len(val),
        "steps": last.step,
        "chars_seen": last.chars,
        "train_seconds": last.train_seconds,
        "wall_seconds": round(wall, 3),
        "chars_per_second": round(last.chars / max(last.train_seconds, 1e-9), 1),
        "val_nll": val_nll,
        "val_perplexity": math.exp(val_nll),
        "history_csv": history_csv,
        "history_svg": history_svg,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{model.kind} ({model.backend}, {result['parameters']:,} parameters) -> {out}\n"
            f"  {last.step} steps, {last.chars:,} chars in {last.train_seconds:.1f} s of training "
            f"({result['chars_per_second']:,.0f} chars/s; {wall:.1f} s wall)\n"
            f"  validation: {val_nll:.4f} nats/char, "
            f"perplexity {result['val_perplexity']:.3f} over {len(val):,} chars\n"
            f"  curve: {history_csv}, {history_svg}"
        )
    return 0


@_with_backend_errors
def cmd_eval(args: argparse.Namespace) -> int:
    import textsieve as ts
    from textsieve.lm import load

    model = load(args.model, backend=args.backend)
    train, val = read_split(args.text, args.val_fraction)
    started = time.perf_counter()
    score = model.evaluate(val)
    seconds = time.perf_counter() - started
    ngram = ts.AddKLM(order=args.order, k=args.k, vocab=model.vocab).fit([train])
    ngram_nll = ngram.nll([val])
    label = f"{model.kind} ({model.backend})"
    ngram_label = f"add-k {args.order}-gram (k={args.k:g})"
    result = {
        "model": args.model,
        "text": args.text,
        "val_fraction": args.val_fraction,
        "val_chars": len(val),
        "predicted": score.predicted,
        "lm": {"name": label, "nll": score.nll, "perplexity": score.perplexity, "seconds": seconds},
        "ngram": {
            "name": ngram_label,
            "order": args.order,
            "k": args.k,
            "nll": ngram_nll,
            "perplexity": math.exp(ngram_nll),
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        width = max(len(label), len(ngram_label))
        print(f"validation: last {args.val_fraction:g} of {args.text} ({len(val):,} chars)")
        print(f"{'model':<{width}}  nats/char  perplexity")
        print(f"{label:<{width}}  {score.nll:9.4f}  {score.perplexity:10.3f}")
        print(f"{ngram_label:<{width}}  {ngram_nll:9.4f}  {math.exp(ngram_nll):10.3f}")
    return 0


@_with_backend_errors
def cmd_generate(args: argparse.Namespace) -> int:
    from textsieve.lm import load

    model = load(args.model, backend=args.backend)
    text = model.generate(
        args.prompt,
        args.length,
        temperature=args.temperature,
        top_k=args.top_k,
        greedy=args.greedy,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps({"prompt": args.prompt, "continuation": text, "seed": args.seed}))
    else:
        print(args.prompt + text)
    return 0
