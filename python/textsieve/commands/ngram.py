"""``textsieve ngram``: train, evaluate and score add-k n-gram models from the command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import sysconfig
import tempfile
from pathlib import Path

from textsieve._checks import MAX_ORDER, arg_float, arg_int
from textsieve._progress import Progress
from textsieve.io import STDIN, CorpusReader, stdin_copy
from textsieve.ngram import AddKLM

EXAMPLES = """examples:
  textsieve ngram perplexity --train train.txt --eval valid.txt --order 3 --k 0.1
  textsieve ngram perplexity --train docs.jsonl --eval new.jsonl --text-field text --json
  textsieve ngram train --train docs.jsonl --order 2 -o model.npz
  textsieve ngram score model.npz new.jsonl -o scores.jsonl     (per-document perplexity)
  textsieve ngram demo                                            (the Python stdlib's own sources)

Input files: .jsonl (one JSON object per line, text in --text-field), or plain text with one
document per line (--doc-per-file makes each file, or each file under a directory, one document);
- reads standard input (JSON Lines if it starts with "{", else text; gzip/zstd by magic number).
"""

CHUNK = 4096  # documents per call into the core, so progress can advance


def _load(paths: list[str], args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(ids, texts) of every document of ``paths``, read by :class:`textsieve.io.CorpusReader`."""
    ids: list[str] = []
    texts: list[str] = []
    with contextlib.ExitStack() as stack:
        stdin = None
        if STDIN in paths:
            stdin = stack.enter_context(
                stdin_copy(stack.enter_context(tempfile.TemporaryDirectory()))
            )
        reader = CorpusReader(
            paths,
            text_field=args.text_field,
            id_field=args.id_field,
            doc_per_file=args.doc_per_file,
            stdin=stdin,
        )
        for rec in reader:
            ids.append(rec.id)
            texts.append(rec.text)
    return ids, texts


def _model(args: argparse.Namespace) -> AddKLM:
    opts: dict = {}
    if args.raw:
        opts["normalize"] = False
    elif args.punctuation:
        from textsieve import JA_PUNCTUATION, SEED_PUNCTUATION

        opts["punctuation"] = {"seed": SEED_PUNCTUATION, "ja": JA_PUNCTUATION}.get(
            args.punctuation, args.punctuation
        )
    return AddKLM(order=args.order, k=args.k, pad=args.pad, **opts)


def _score_chunks(lm: AddKLM, texts: list[str], quiet: bool):
    import numpy as np

    out = []
    with Progress(
        len(texts), unit="docs", desc="scoring", enabled=None if not quiet else False
    ) as bar:
        for i in range(0, len(texts), CHUNK):
            chunk = texts[i : i + CHUNK]
            out.append(lm.score(chunk))
            bar.update(len(chunk), nbytes=sum(len(t) for t in chunk))
    return np.concatenate(out) if out else np.zeros(0)


def cmd_perplexity(args: argparse.Namespace) -> int:
    _, train = _load(args.train, args)
    _, evals = _load(args.eval, args)
    lm = _model(args).fit(train)
    nll = lm.nll(evals)
    result = {
        "order": args.order,
        "k": args.k,
        "pad": args.pad,
        "vocab_size": lm.V,
        "train_docs": len(train),
        "eval_docs": len(evals),
        "nll_nats": nll,
        "bits_per_token": nll / math.log(2),
        "perplexity": math.exp(nll),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"order={args.order} k={args.k} V={lm.V} train_docs={len(train)} eval_docs={len(evals)}"
        )
        print(
            f"perplexity={result['perplexity']:.4f} nll={nll:.4f} nats/token ({result['bits_per_token']:.4f} bits)"
        )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    _, train = _load(args.train, args)
    lm = _model(args).fit(train)
    lm.save(args.output)
    if args.json:
        summary = {"model": args.output, "order": lm.order, "k": lm.k, "pad": lm.pad}
        print(json.dumps({**summary, "vocab_size": lm.V, "train_docs": len(train)}))
    elif not args.quiet:
        print(f"saved {lm!r} to {args.output}", file=sys.stderr)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from textsieve.io import atomic_write

    lm = AddKLM.load(args.model)
    ids, texts = _load(args.input, args)
    scores = _score_chunks(lm, texts, args.quiet)
    lines = (
        json.dumps(
            {"id": rid, "perplexity": None if math.isnan(s) else float(s)}, ensure_ascii=False
        )
        + "\n"
        for rid, s in zip(ids, scores.tolist())
    )
    if args.output:
        with atomic_write(args.output) as fh:
            fh.writelines(lines)
    else:
        sys.stdout.writelines(lines)
    return 0


def stdlib_sources() -> list[Path]:
    """The standard library's own .py files (every Python installation has them)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = ("site-packages", "test", "tests", "idlelib", "lib2to3")
    return sorted(
        p for p in root.rglob("*.py") if not any(part in skip for part in p.relative_to(root).parts)
    )


def cmd_demo(args: argparse.Namespace) -> int:
    files = stdlib_sources()
    if not files:
        raise ValueError("no Python standard library sources found on this machine")
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
    cut = len(texts) * 9 // 10
    train, evals = texts[:cut], texts[cut:]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    print(f"{len(files)} standard library files ({mb:.1f} MB) from {files[0].parent}")
    print(f"train on the first {cut}, evaluate on the last {len(evals)} (raw characters)\n")
    print("order  V     perplexity  bits/char")
    best = None
    for order in range(1, 6):
        lm = AddKLM(order=order, k=0.01, normalize=False).fit(train)
        nll = lm.nll(evals)
        print(f"{order:>5}  {lm.V:<5} {math.exp(nll):>10.3f}  {nll / math.log(2):>9.3f}")
        if best is None or nll < best[0]:
            best = (nll, lm)
    assert best is not None
    scores = best[1].score(evals)
    order = sorted(range(len(evals)), key=lambda i: -scores[i] if not math.isnan(scores[i]) else 0)
    print(
        f"\nleast typical held-out files under the order-{best[1].order} model (quality filtering):"
    )
    for i in order[:5]:
        print(f"  {scores[i]:8.2f}  {os.path.relpath(files[cut + i], files[0].parent)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ngram",
        help="n-gram statistics: perplexity, training, per-document scores",
        description="Add-k n-gram language models over characters.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    def common(q: argparse.ArgumentParser, model_opts: bool = True) -> None:
        q.add_argument(
            "--text-field", default="text", help="JSONL field holding the text (default: text)"
        )
        q.add_argument(
            "--id-field", default="id", help="JSONL field holding the document id (default: id)"
        )
        q.add_argument("--doc-per-file", action="store_true", help="each file is one document")
        q.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        if model_opts:
            q.add_argument(
                "--order", type=arg_int(1, MAX_ORDER), default=2, help="n-gram order (default 2)"
            )
            q.add_argument(
                "--k", type=arg_float(above=0.0), default=0.1, help="add-k constant (default 0.1)"
            )
            q.add_argument("--pad", action="store_true", help="pad documents with <s> and </s>")
            q.add_argument(
                "--raw", action="store_true", help="no normalization: every character is a token"
            )
            q.add_argument(
                "--punctuation",
                help="'seed' (default), 'ja', or the characters to turn into spaces",
            )

    q = verbs.add_parser(
        "perplexity",
        help="train on --train, report perplexity on --eval",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("--train", nargs="+", required=True, metavar="FILE", help="training documents")
    q.add_argument(
        "--eval", nargs="+", required=True, metavar="FILE", help="documents to evaluate on"
    )
    q.add_argument("--json", action="store_true", help="print one JSON object")
    common(q)
    q.set_defaults(func=cmd_perplexity)

    q = verbs.add_parser("train", help="train a model and save it (.npz)")
    q.add_argument("--train", nargs="+", required=True, metavar="FILE", help="training documents")
    q.add_argument(
        "-o", "--output", required=True, metavar="MODEL", help="where to save the model (.npz)"
    )
    q.add_argument("--json", action="store_true", help="print the saved model's summary as JSON")
    common(q)
    q.set_defaults(func=cmd_train)

    q = verbs.add_parser("score", help="per-document perplexity of INPUT under MODEL, as JSONL")
    q.add_argument("model", metavar="MODEL", help="a model saved by `textsieve ngram train`")
    q.add_argument("input", nargs="+", metavar="INPUT", help="documents to score")
    q.add_argument("-o", "--output", metavar="FILE", help="write JSONL here (default: stdout)")
    common(q, model_opts=False)
    q.set_defaults(func=cmd_score)

    q = verbs.add_parser(
        "demo", help="n-gram perplexity over the Python standard library's sources"
    )
    q.set_defaults(func=cmd_demo)
