"""``textsieve ngram``: train, evaluate and score n-gram models (every smoothing of
:class:`textsieve.NgramLM`, ARPA files) from the command line, and filter a corpus by
perplexity as CCNet does."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

from textsieve import _core
from textsieve._checks import MAX_ORDER, arg_float, arg_int
from textsieve._progress import Progress
from textsieve.io import STDIN, CorpusReader, Record, json_text, stdin_copy, to_jsonable
from textsieve.ngram import AddKLM
from textsieve.ngram_lm import SMOOTHINGS, NgramLM
from textsieve.vocab import Vocab

EXAMPLES = """examples:
  textsieve ngram perplexity --train train.txt --eval valid.txt --order 3 --k 0.1
  textsieve ngram perplexity --train docs.jsonl --eval new.jsonl --smoothing kneser-ney --order 5
  textsieve ngram perplexity --model wiki.arpa.gz --eval new.jsonl      (a saved or ARPA model)
  textsieve ngram train --train docs.jsonl --order 2 -o model.npz
  textsieve ngram train --train wiki.txt --words --smoothing kneser-ney --order 5 -o wiki.arpa
  textsieve ngram score model.npz new.jsonl -o scores.jsonl     (per-document perplexity)
  textsieve ngram score wiki.arpa crawl.jsonl --annotate --buckets -o scored.jsonl
                                                (CCNet: perplexity and head/middle/tail bucket)
  textsieve ngram score wiki.arpa crawl.jsonl --keep-below 500 --kept kept.jsonl -o /dev/null
  textsieve ngram demo                                            (the Python stdlib's own sources)

Input files: .jsonl (one JSON object per line, text in --text-field), or plain text with one
document per line (--doc-per-file makes each file, or each file under a directory, one document);
- reads standard input (JSON Lines if it starts with "{", else text; gzip/zstd by magic number).
"""

CHUNK = 4096  # documents per call into the core, so progress can advance


@contextlib.contextmanager
def _stdin_for(paths: list[str]) -> Iterator[str | None]:
    """A copy of standard input (in a temporary folder) when ``paths`` has ``-``, so that it can
    be read twice; else None."""
    if STDIN not in paths:
        yield None
        return
    with tempfile.TemporaryDirectory() as tmp, stdin_copy(tmp) as path:
        yield path


def _records(
    paths: list[str], args: argparse.Namespace, stdin: str | None = None
) -> Iterator[Record]:
    """The records of ``paths`` (``-``: standard input, copied to a temporary file first unless
    ``stdin`` is that copy already), as they are read."""
    with contextlib.ExitStack() as stack:
        if stdin is None and STDIN in paths:
            stdin = stack.enter_context(_stdin_for(paths))
        yield from CorpusReader(
            paths,
            text_field=args.text_field,
            id_field=args.id_field,
            doc_per_file=args.doc_per_file,
            stdin=stdin,
        )


def _record_chunks(
    paths: list[str], args: argparse.Namespace, stdin: str | None = None
) -> Iterator[list[Record]]:
    """The records of ``paths`` in lists of :data:`CHUNK`, read as they come."""
    chunk: list[Record] = []
    for rec in _records(paths, args, stdin):
        chunk.append(rec)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _text_chunks(
    paths: list[str], args: argparse.Namespace, stdin: str | None = None
) -> Iterator[list[str]]:
    """The documents' texts of ``paths`` in lists of :data:`CHUNK` (the same documents as
    :func:`_records` gives, without a record object for each: ``CorpusReader.texts``)."""
    with contextlib.ExitStack() as stack:
        if stdin is None and STDIN in paths:
            stdin = stack.enter_context(_stdin_for(paths))
        reader = CorpusReader(
            paths,
            text_field=args.text_field,
            id_field=args.id_field,
            doc_per_file=args.doc_per_file,
            stdin=stdin,
        )
        yield from reader.texts(CHUNK)


def _model(
    args: argparse.Namespace, vocab: Vocab | _core.WordIndex | None = None
) -> AddKLM | NgramLM:
    """The model the options ask for, unfitted; with ``vocab``, over that vocabulary (whose own
    options then hold the tokenizer's)."""
    opts: dict = {}
    if args.raw:
        opts["normalize"] = False
    elif args.punctuation:
        from textsieve import JA_PUNCTUATION, SEED_PUNCTUATION

        opts["punctuation"] = {"seed": SEED_PUNCTUATION, "ja": JA_PUNCTUATION}.get(
            args.punctuation, args.punctuation
        )
    if args.words and opts:
        raise ValueError("--raw and --punctuation are for character models, not --words")
    if vocab is not None:
        opts = {"vocab": vocab}
    pad = args.pad or ("none" if args.smoothing == "add-k" else "sentence")
    if args.smoothing == "add-k" and pad != "sentence" and not args.words:
        k = 0.1 if args.k is None else args.k
        return AddKLM(order=args.order, k=k, pad=pad == "both", **opts)
    params = {"k": args.k, "discount": args.discount, "alpha": args.alpha}
    given = {name: v for name, v in params.items() if v is not None}
    if args.smoothing == "add-k" and "k" not in given:
        given["k"] = 0.1
    return NgramLM(args.order, args.smoothing, pad=pad, words=args.words, **given, **opts)


def _train(args: argparse.Namespace) -> tuple[AddKLM | NgramLM, int]:
    """The model fitted on ``--train`` and how many documents it read. The files are read twice,
    chunk by chunk, never held: first for the vocabulary (the distinct characters or words, as
    one pass over everything would give them), then for the counts."""
    bare = _model(args)
    words = isinstance(bare, NgramLM) and bare.words
    unk = bare.unk
    # words are gathered in the core (one string and a table: a Python set of str held about
    # 60 MB more for 469,000 words, not all of it handed back after)
    word_set = _core.WordSet()
    found: set[str] = set()
    options: dict = {}
    with _stdin_for(args.train) as stdin:
        with Progress(
            None, unit="docs", desc="vocabulary", enabled=None if not args.quiet else False
        ) as bar:
            for texts in _text_chunks(args.train, args, stdin):
                if words:
                    word_set.update(texts)
                else:
                    v = Vocab.from_texts(texts, unk=unk, **bare.tokenizer_options)
                    found.update(v.tokens)
                    options = v.options
                bar.update(len(texts), nbytes=sum(len(t) for t in texts))
        if not found and not len(word_set):
            raise ValueError("--train: the training set is empty; give at least one document")
        if words:
            lm = _model(args, word_set.index(unk))
        else:
            tokens = sorted(found - {unk} if unk is not None else found)
            lm = _model(args, Vocab(([unk] if unk is not None else []) + tokens, unk, **options))
        del word_set, found
        n = 0
        with Progress(
            None, unit="docs", desc="counting", enabled=None if not args.quiet else False
        ) as bar:
            for texts in _text_chunks(args.train, args, stdin):
                lm.fit(texts)
                n += len(texts)
                bar.update(len(texts), nbytes=sum(len(t) for t in texts))
    return lm, n


ARPA_NAMES = (".arpa", ".arpa.gz", ".arpa.zst")


def _load_model(path: str) -> AddKLM | NgramLM:
    """A model saved by ``ngram train`` (.npz: add-k or any smoothing) or an ARPA file (plain,
    gzip or zstd)."""
    import numpy as np

    if path.endswith(ARPA_NAMES):
        return NgramLM.from_arpa(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"])) if "header" in data.files else {}
    except (OSError, ValueError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        header = {}  # AddKLM.load names the damage
    if header.get("format") == "textsieve.ngramlm":
        return NgramLM.load(path)
    return AddKLM.load(path)


def _describe(lm: AddKLM | NgramLM) -> str:
    if isinstance(lm, AddKLM):
        return f"add-k k={lm.k}"
    return lm.smoothing if lm.param is None else f"{lm.smoothing} {lm.param}"


def _pad_name(lm: AddKLM | NgramLM) -> str:
    if isinstance(lm, AddKLM):
        return "both" if lm.pad else "none"
    return lm.pad


def cmd_perplexity(args: argparse.Namespace) -> int:
    if (args.train is None) == (args.model is None):
        raise ValueError(
            "give --train FILE... (train a model here) or --model MODEL (a model saved by "
            "`ngram train`, or an ARPA file), one of the two"
        )
    if args.model is not None:
        lm = _load_model(args.model)
        train_docs = None
    else:
        lm, train_docs = _train(args)
    # the evaluation documents are read and scored chunk by chunk, never held
    nll, n, eval_docs = 0.0, 0, 0
    with Progress(
        None, unit="docs", desc="evaluating", enabled=None if not args.quiet else False
    ) as bar:
        for texts in _text_chunks(args.eval, args):
            a, b = lm.total_nll(texts)
            nll, n, eval_docs = nll + a, n + b, eval_docs + len(texts)
            bar.update(len(texts), nbytes=sum(len(t) for t in texts))
    if n == 0:
        raise ValueError("--eval: nothing to score (no document has a token the model predicts)")
    nll /= n
    V = lm.V if isinstance(lm, AddKLM) else lm.vocab_size
    result = {
        "order": lm.order,
        "smoothing": "add-k" if isinstance(lm, AddKLM) else lm.smoothing,
        "k": lm.k if isinstance(lm, AddKLM) else lm.param,
        "pad": _pad_name(lm),
        "vocab_size": V,
        "model": args.model,
        "train_docs": train_docs,
        "eval_docs": eval_docs,
        "nll_nats": nll,
        "bits_per_token": nll / math.log(2),
        "perplexity": math.exp(nll),
    }
    if args.json:
        print(json.dumps(to_jsonable(result)))
    else:
        source = args.model if args.model is not None else f"train_docs={train_docs}"
        print(f"order={lm.order} {_describe(lm)} V={V} {source} eval_docs={eval_docs}")
        print(
            f"perplexity={result['perplexity']:.4f} nll={nll:.4f} nats/token ({result['bits_per_token']:.4f} bits)"
        )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    arpa = args.output.endswith(ARPA_NAMES)
    if arpa and isinstance(_model(args), AddKLM):
        raise ValueError(
            "--smoothing add-k: an add-k model cannot be an ARPA file (every unseen n-gram "
            "has its own probability); save it as .npz, or choose another --smoothing"
        )
    lm, train_docs = _train(args)
    if arpa:
        assert isinstance(lm, NgramLM)
        lm.to_arpa(args.output)
    else:
        lm.save(args.output)
    V = lm.V if isinstance(lm, AddKLM) else lm.vocab_size
    if args.json:
        summary = {"model": args.output, "order": lm.order, "smoothing": args.smoothing}
        print(json.dumps({**summary, "vocab_size": V, "train_docs": train_docs}))
    elif not args.quiet:
        print(f"saved {lm!r} to {args.output}", file=sys.stderr)
    return 0


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"{what}: expected numbers separated by commas, got {text!r}") from None
    if len(values) != 2 or not values[0] <= values[1] or not all(map(math.isfinite, values)):
        raise ValueError(f"{what}: expected two rising numbers (e.g. 30,60), got {text!r}")
    return values


def cmd_score(args: argparse.Namespace) -> int:
    import array

    import numpy as np

    from textsieve.io import atomic_write

    if args.kept and args.keep_below is None:
        raise ValueError("--kept: give --keep-below PPL too (which records to keep)")
    if args.keep_below is not None and not args.kept:
        raise ValueError("--keep-below: give --kept FILE (where the kept records go)")
    lm = _load_model(args.model)
    thresholds: list[float] | None = None
    if args.cutoffs:
        thresholds = _floats(args.cutoffs, "--cutoffs")
    elif args.buckets:
        pct = _floats(args.percentiles, "--percentiles")
        if not 0 <= pct[0] <= pct[1] <= 100:
            raise ValueError(f"--percentiles: expected two numbers in [0, 100], got {pct}")
    from_data = args.buckets and not args.cutoffs
    scores = array.array("d")  # 8 bytes a document: the records themselves are never held

    def scored(stdin: str | None, bar: Progress) -> Iterator[tuple[Record, float]]:
        for chunk in _record_chunks(args.input, args, stdin):
            texts = [r.text for r in chunk]
            ppl = lm.score(texts).tolist()
            bar.update(len(chunk), nbytes=sum(len(t) for t in texts))
            yield from zip(chunk, ppl, strict=True)

    def bucket(ppl: float) -> str | None:
        if thresholds is None or not math.isfinite(ppl):
            return None
        return "head" if ppl < thresholds[0] else "middle" if ppl < thresholds[1] else "tail"

    def row(rec: Record, ppl: float) -> str:
        value = None if math.isnan(ppl) else float(ppl)
        if args.annotate and rec.format in ("jsonl", "parquet"):
            obj = dict(rec.raw) if rec.format == "parquet" else json.loads(rec.raw)
            obj[args.field] = value
        else:
            obj = {"id": rec.id, args.field: value}
        if thresholds is not None:
            obj["bucket"] = bucket(ppl)
        return json_text(obj) + "\n"

    progress = {"unit": "docs", "enabled": None if not args.quiet else False}
    kept = 0
    with contextlib.ExitStack() as stack:
        stdin = stack.enter_context(_stdin_for(args.input))
        if from_data:
            # percentile cutoffs need every score first: score, then read the records again
            with Progress(None, desc="scoring", **progress) as bar:
                for _, ppl in scored(stdin, bar):
                    scores.append(ppl)
            got = np.frombuffer(scores, dtype=np.float64)
            finite = got[np.isfinite(got)]
            thresholds = [float(np.percentile(finite, p)) for p in pct] if finite.size else None
            pairs: Iterator[tuple[Record, float]] = zip(
                _records(args.input, args, stdin), got.tolist(), strict=True
            )
        else:
            bar = stack.enter_context(Progress(None, desc="scoring", **progress))
            pairs = scored(stdin, bar)
        out = stack.enter_context(atomic_write(args.output)) if args.output else sys.stdout
        keep = (
            stack.enter_context(atomic_write(args.kept, "wb"))
            if args.keep_below is not None
            else None
        )
        counts = {b: 0 for b in ("head", "middle", "tail")}
        for rec, ppl in pairs:
            if not from_data:
                scores.append(ppl)
            out.write(row(rec, ppl))
            b = bucket(ppl)
            if b:
                counts[b] += 1
            if keep is not None and ppl < args.keep_below:  # NaN (nothing to score) is not kept
                raw = rec.raw
                if isinstance(raw, (bytes, bytearray)):
                    keep.write(raw)
                else:  # a whole-file document or a Parquet row: its text, one line
                    keep.write((json.dumps(to_jsonable(raw or rec.text)) + "\n").encode())
                kept += 1
    if not args.quiet:
        got = np.frombuffer(scores, dtype=np.float64)
        finite = got[np.isfinite(got)]
        parts = [f"scored {len(got)} documents with {_describe(lm)} (order {lm.order})"]
        if finite.size:
            parts.append(f"median perplexity {float(np.median(finite)):.2f}")
        if thresholds is not None:
            parts.append(
                f"cutoffs {thresholds[0]:.2f} / {thresholds[1]:.2f}: "
                + ", ".join(f"{b} {n}" for b, n in counts.items())
            )
        if args.keep_below is not None:
            parts.append(f"kept {kept} below {args.keep_below:g} in {args.kept}")
        print("; ".join(parts), file=sys.stderr)
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
        description="N-gram language models over characters or words: add-k, MLE, Witten-Bell, "
        "absolute discounting, Kneser-Ney (modified, as KenLM), stupid backoff; ARPA files.",
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
                "--smoothing",
                choices=SMOOTHINGS,
                default="add-k",
                help="add-k (default), mle, witten-bell, absolute-discount, kneser-ney (modified, "
                "as KenLM's lmplz; with --discount, NLTK's), stupid-backoff",
            )
            q.add_argument(
                "--k", type=arg_float(above=0.0), default=None, help="add-k constant (default 0.1)"
            )
            q.add_argument(
                "--discount",
                type=arg_float(maximum=1.0, above=0.0),
                help="absolute-discount (default 0.75) or kneser-ney with one discount",
            )
            q.add_argument(
                "--alpha",
                type=arg_float(maximum=1.0, above=0.0),
                help="stupid-backoff's weight (default 0.4)",
            )
            q.add_argument(
                "--pad",
                nargs="?",
                const="both",
                choices=["none", "both", "sentence"],
                help="--pad: <s> and </s> order-1 times (NLTK); --pad sentence: one of each "
                "(KenLM; the default for smoothings but add-k)",
            )
            q.add_argument(
                "--words",
                action="store_true",
                help="tokens are the white-space separated words (default: characters)",
            )
            q.add_argument(
                "--raw", action="store_true", help="no normalization: every character is a token"
            )
            q.add_argument(
                "--punctuation",
                help="'seed' (default), 'ja', or the characters to turn into spaces",
            )

    q = verbs.add_parser(
        "perplexity",
        help="train on --train (or load --model), report perplexity on --eval",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("--train", nargs="+", metavar="FILE", help="training documents")
    q.add_argument(
        "--model",
        metavar="MODEL",
        help="instead of --train: a model saved by `ngram train` (.npz) or an ARPA file "
        "(.arpa, .arpa.gz, .arpa.zst)",
    )
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

    q = verbs.add_parser(
        "score",
        help="per-document perplexity of INPUT under MODEL, as JSONL; CCNet-style buckets and filter",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument(
        "model",
        metavar="MODEL",
        help="a model saved by `textsieve ngram train` (.npz), or an ARPA file (.arpa, e.g. "
        "from KenLM's lmplz; documents are split into words on white space)",
    )
    q.add_argument("input", nargs="+", metavar="INPUT", help="documents to score")
    q.add_argument("-o", "--output", metavar="FILE", help="write JSONL here (default: stdout)")
    q.add_argument(
        "--annotate",
        action="store_true",
        help="write each JSONL record itself with the perplexity added (default: id and perplexity)",
    )
    q.add_argument(
        "--field", default="perplexity", help="the name of the added field (default perplexity)"
    )
    q.add_argument(
        "--buckets",
        action="store_true",
        help="add a head/middle/tail bucket by the percentiles of the perplexities (CCNet)",
    )
    q.add_argument(
        "--percentiles",
        default="30,60",
        metavar="P1,P2",
        help="bucket cutoffs as percentiles of this data (default 30,60, as CCNet)",
    )
    q.add_argument(
        "--cutoffs",
        metavar="PPL1,PPL2",
        help="bucket cutoffs as perplexities (as CCNet's per-language cutoffs); implies --buckets",
    )
    q.add_argument(
        "--keep-below",
        type=arg_float(above=0.0),
        metavar="PPL",
        help="write the records with perplexity below PPL, byte for byte, to --kept",
    )
    q.add_argument("--kept", metavar="FILE", help="where --keep-below writes the kept records")
    common(q, model_opts=False)
    q.set_defaults(func=cmd_score)

    q = verbs.add_parser(
        "demo", help="n-gram perplexity over the Python standard library's sources"
    )
    q.set_defaults(func=cmd_demo)
