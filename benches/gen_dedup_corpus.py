"""Deterministic near-duplicate corpora for the dedup benches, from real text: the Python standard
library's ``.py`` files and, when present, ``../shared/data`` (Tiny Shakespeare, Japanese manual
pages). Nothing is downloaded and no data is committed: corpora are generated on demand.

    python benches/gen_dedup_corpus.py OUT.jsonl --docs N [--seed S] [--dup-rate 0.24]
        [--doc-bytes 1000] [--kind mixed|chain|copies] [--exact-frac 0.33] [--chain-len 0]
        [--chain-jaccard 0.82 0.88] [--data DIR | --no-data] [-q]

Writes one ``{"id": "doc000000012", "text": "..."}`` object per line (UTF-8, ``\\n``), streaming
(memory does not grow with ``--docs``), and prints the documents and bytes written to stderr.
Same arguments, same Python standard library and same data folder -> the same bytes (one
``random.Random(seed)`` drives every choice; ``hash()`` is never used).

Kinds:

- ``mixed`` (default): original documents of ``doc-bytes * U(0.5, 1.5)`` bytes, each a mosaic of
  fragments of 64 to 320 bytes cut at random offsets of one source (the stdlib, Shakespeare or the
  manual pages, chosen by size), so that two originals are not near-duplicates of each other even
  in a corpus many times larger than the sources. About ``dup-rate`` of the documents are copies of
  one of the last 16,384 originals (so that cluster sizes do not grow with the corpus):
  ``exact-frac`` of them exact, the others edited by word insertions, deletions and substitutions
  until the char-5-shingle Jaccard with their source (after textsieve's default normalization) is
  about a target drawn from U(0.80, 0.95) (realized: mean 0.88, within ~0.02 of the target, ~1%
  below 0.8).
- ``chain``: windows of ``doc-bytes`` characters sliding over one endless text (a stream of such
  fragments), each shifted from the previous one so that neighbours have Jaccard ~0.85 (a target
  from U(0.82, 0.88), ``--chain-jaccard``; the realized value varies by about 0.03, so ~5% of
  neighbours fall below 0.8 and a threshold of 0.8 splits the chain; ``0.87 0.93`` keeps all
  above 0.8) while windows 12 or more steps apart share nothing: one long chain of
  near-duplicates (``--chain-len L``: a fresh chain every L documents; 0, the default, is one).
- ``copies``: exact copies of one text, with ``1 - dup-rate`` (default dup-rate 0.95 here) of the
  documents unrelated originals.

From Python: ``generate(path, docs, seed=..., kind=...)`` writes a file and returns its counts;
``documents(docs, ...)`` yields the ``(id, text)`` pairs without writing.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import json
import os
import random
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

try:
    from ._dedup_data import data_dir
except ImportError:  # run as a script
    sys.path.insert(0, os.path.dirname(__file__))
    from _dedup_data import data_dir  # type: ignore[no-redef]

KINDS = ("mixed", "chain", "copies")
DEFAULT_DUP_RATE = {"mixed": 0.24, "chain": 0.0, "copies": 0.95}
EXCLUDE_DIRS = ("site-packages", "dist-packages", "__pycache__")
FRAG_BYTES = (64, 320)  # fragment sizes of a mosaic document
EDIT_JACCARD = (0.80, 0.95)  # target Jaccard of an edited copy with its source
CHAIN_JACCARD = (0.82, 0.88)  # target Jaccard of neighbouring chain windows
SHINGLE = 5
# Copies are made of one of the last WINDOW originals (uniformly): each original then gets about
# dup_rate / (1 - dup_rate) copies on average whatever the corpus size (a reservoir sample over
# all earlier originals would give the late-middle ones ever more copies as the corpus grows), and
# memory stays bounded. A copy lands at most ~WINDOW / (1 - dup_rate) documents after its source.
WINDOW = 16384
SNAP = 40  # how far a cut may move to land on whitespace
# Edit units: whitespace runs, ASCII words, and any other character on its own (so that Japanese
# text, with no spaces, is edited a character at a time rather than a sentence at a time).
TOKEN_RE = re.compile(r"\s+|[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")


# --------------------------------------------------------------------------------------------
# Sources


class Source:
    """A body of real text: pieces (files, pages) addressed by one character offset."""

    def __init__(self, name: str, pieces: list[str]):
        self.name = name
        self.pieces = [p for p in pieces if p.strip()]
        self.starts: list[int] = []
        total = 0
        n_bytes = 0
        for p in self.pieces:
            self.starts.append(total)
            total += len(p)
            n_bytes += len(p.encode("utf-8"))
        self.n_chars = total
        self.n_bytes = n_bytes
        self.bytes_per_char = n_bytes / total if total else 1.0

    def fragment(self, rng: random.Random, n_chars: int) -> str:
        """About ``n_chars`` characters from a random offset, snapped to whitespace where it is
        near; shorter where the piece ends first."""
        offset = rng.randrange(self.n_chars)
        k = bisect.bisect_right(self.starts, offset) - 1
        piece = self.pieces[k]
        start = offset - self.starts[k]
        if start:  # begin after the next whitespace, if there is one close by
            m = _WS.search(piece, start, start + SNAP)
            if m:
                start = m.end()
        stop = min(start + n_chars, len(piece))
        if stop < len(piece):
            m = _WS.search(piece, stop, stop + SNAP)
            if m:
                stop = m.start()
        return piece[start:stop]


_WS = re.compile(r"\s+")


def _read_stdlib() -> list[str]:
    root = os.path.dirname(os.path.abspath(os.__file__))
    texts = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDE_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            try:
                with open(os.path.join(dirpath, name), encoding="utf-8") as fh:
                    texts.append(fh.read())
            except (OSError, UnicodeDecodeError):
                continue
    return texts


@functools.lru_cache(maxsize=4)
def load_sources(data: str | None) -> tuple[Source, ...]:
    """The stdlib, plus ``tinyshakespeare.txt`` and ``manpages_ja.jsonl`` from ``data`` (a
    folder, or None for the stdlib only) where they exist."""
    sources = [Source("stdlib", _read_stdlib())]
    if data is not None:
        d = Path(data)
        if (d / "tinyshakespeare.txt").is_file():
            text = (d / "tinyshakespeare.txt").read_text(encoding="utf-8")
            sources.append(Source("shakespeare", [text]))
        if (d / "manpages_ja.jsonl").is_file():
            with open(d / "manpages_ja.jsonl", encoding="utf-8") as fh:
                pages = [json.loads(line)["text"] for line in fh if line.strip()]
            sources.append(Source("manpages_ja", pages))
    return tuple(s for s in sources if s.n_chars)


class Mosaic:
    """Original documents: fragments of one source (chosen with probability proportional to its
    size in bytes), joined by newlines, of a given size in bytes."""

    def __init__(self, sources: tuple[Source, ...], rng: random.Random):
        if not sources:
            raise ValueError("no source text found (the standard library is empty?)")
        self.sources = sources
        self.rng = rng
        self.cum: list[int] = []
        total = 0
        for s in sources:
            total += s.n_bytes
            self.cum.append(total)
        self.total = total

    def source(self) -> Source:
        return self.sources[bisect.bisect_right(self.cum, self.rng.randrange(self.total))]

    def fragment(self, src: Source) -> str:
        lo, hi = FRAG_BYTES
        return src.fragment(self.rng, max(1, round(self.rng.randint(lo, hi) / src.bytes_per_char)))

    def document(self, n_bytes: int) -> str:
        src = self.source()
        n_chars = max(1, round(n_bytes / src.bytes_per_char))
        parts: list[str] = []
        size = 0
        for _ in range(10_000):  # always enough: fragments are rarely empty
            frag = self.fragment(src).strip()
            if not frag:
                continue
            parts.append(frag)
            size += len(frag) + 1
            if size > n_chars:
                break
        text = "\n".join(parts)[:n_chars]
        m = _WS.search(text, max(0, len(text) - SNAP))  # end on a whole word where possible
        return text[: m.start()] if m and m.start() > n_chars // 2 else text


# --------------------------------------------------------------------------------------------
# Edits


def n_shingles(text: str) -> int:
    """Shingle count after textsieve's default normalization (lowercase, whitespace runs -> one
    space); close enough to the distinct count for sizing edits."""
    return max(1, len(" ".join(text.split())) - SHINGLE + 1)


def edit_words(text: str, target_jaccard: float, rng: random.Random) -> str:
    """Word insertions, deletions and substitutions until about ``1 - target_jaccard`` of the
    char shingles differ: each edit of a ``w``-character token touches about ``w + k - 1``
    shingles, and ``J = (n - x) / (n + x)`` for ``x`` shingles replaced out of ``n``."""
    tokens = TOKEN_RE.findall(text)
    words = [t for t in tokens if not t.isspace()]
    if not words:
        return text
    n = n_shingles(text)
    budget = n * (1.0 - target_jaccard) / (1.0 + target_jaccard)
    damage = 0.0
    k1 = SHINGLE - 1
    for _ in range(10 * len(tokens) + 10):
        if damage >= budget:
            break
        positions = len(tokens)
        i = rng.randrange(positions)
        if tokens[i].isspace():
            i = i + 1 if i + 1 < positions else i - 1
            if i < 0 or tokens[i].isspace():
                continue
        op = rng.randrange(3)
        new = rng.choice(words)
        old = tokens[i]
        if op == 0:  # substitute
            tokens[i] = new
            damage += (len(old) + len(new)) / 2 + k1
        elif op == 1 and len(tokens) > 2:  # delete the word and the space after it
            del tokens[i : i + 2 if i + 1 < len(tokens) and tokens[i + 1].isspace() else i + 1]
            damage += (len(old) + 1) / 2 + k1
        else:  # insert a word before this one
            tokens[i:i] = [new, " "] if new.isascii() else [new]
            damage += (len(new) + 1) / 2 + k1
    return "".join(tokens)


# --------------------------------------------------------------------------------------------
# Corpora


def _resolve_data(data: str | os.PathLike[str] | None) -> str | None:
    if data == "auto":
        d = data_dir()
        return str(d) if d is not None else None
    if data is None:
        return None
    return str(Path(data).resolve())


def documents(
    docs: int,
    seed: int = 0,
    kind: str = "mixed",
    *,
    dup_rate: float | None = None,
    doc_bytes: int = 1000,
    exact_frac: float = 1 / 3,
    chain_len: int = 0,
    chain_jaccard: tuple[float, float] = CHAIN_JACCARD,
    data: str | os.PathLike[str] | None = "auto",
    counts: dict[str, int] | None = None,
) -> Iterator[tuple[str, str]]:
    """``(id, text)`` for each of ``docs`` documents (see the module docstring). ``data``:
    ``"auto"`` for ``../shared/data`` when present, a folder, or None for the stdlib only.
    ``counts``, when given, receives running totals of originals, exact and edited copies."""
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    if docs < 0 or doc_bytes < 1:
        raise ValueError("docs must be >= 0 and doc_bytes >= 1")
    rate = DEFAULT_DUP_RATE[kind] if dup_rate is None else float(dup_rate)
    if not 0.0 <= rate <= 1.0 or not 0.0 <= exact_frac <= 1.0:
        raise ValueError("dup_rate and exact_frac must be in [0, 1]")
    if not 0.0 < chain_jaccard[0] <= chain_jaccard[1] <= 1.0:
        raise ValueError(f"chain_jaccard: expected 0 < LO <= HI <= 1, got {chain_jaccard}")
    rng = random.Random(seed)
    mosaic = Mosaic(load_sources(_resolve_data(data)), rng)
    c = counts if counts is not None else {}
    for key in ("original", "exact", "edited", "chain"):
        c.setdefault(key, 0)

    def size() -> int:
        return max(1, round(doc_bytes * rng.uniform(0.5, 1.5)))

    if kind == "mixed":
        window: list[str] = []
        n_orig = 0
        for i in range(docs):
            if window and rng.random() < rate:
                src = window[rng.randrange(len(window))]
                if rng.random() < exact_frac:
                    text = src
                    c["exact"] += 1
                else:
                    text = edit_words(src, rng.uniform(*EDIT_JACCARD), rng)
                    c["edited"] += 1
            else:
                text = mosaic.document(size())
                if n_orig < WINDOW:
                    window.append(text)
                else:
                    window[n_orig % WINDOW] = text
                n_orig += 1
                c["original"] += 1
            yield f"doc{i:09d}", text
    elif kind == "copies":
        base = mosaic.document(doc_bytes)
        for i in range(docs):
            if i == 0 or rng.random() < rate:
                text = base
                c["exact"] += 1
            else:
                text = mosaic.document(size())
                c["original"] += 1
            yield f"doc{i:09d}", text
    else:  # chain: windows sliding over an endless stream of fragments
        width = doc_bytes
        buf, pos = "", 0
        for i in range(docs):
            if i and chain_len and i % chain_len == 0:
                pos += width  # the next window shares nothing with this chain
            while len(buf) - pos < width:
                src = mosaic.source()
                frag = mosaic.fragment(src).strip()
                if frag:
                    buf = f"{buf}\n{frag}" if buf else frag
            yield f"doc{i:09d}", buf[pos : pos + width]
            c["chain"] += 1
            target = rng.uniform(*chain_jaccard)
            pos += max(1, round(width * (1.0 - target) / (1.0 + target)))
            if pos > 1 << 16:
                buf, pos = buf[pos:], 0


def generate(
    path: str | os.PathLike[str],
    docs: int,
    seed: int = 0,
    kind: str = "mixed",
    *,
    dup_rate: float | None = None,
    doc_bytes: int = 1000,
    exact_frac: float = 1 / 3,
    chain_len: int = 0,
    chain_jaccard: tuple[float, float] = CHAIN_JACCARD,
    data: str | os.PathLike[str] | None = "auto",
    progress: bool = False,
) -> dict[str, int | float | str | None]:
    """Write the corpus to ``path`` as JSONL; return its counts (docs, bytes, originals, exact
    and edited copies, chain windows) and the data folder used."""
    counts: dict[str, int] = {}
    resolved = _resolve_data(data)
    n_bytes = 0
    n = 0
    t0 = time.perf_counter()
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    tmp = f"{os.fspath(path)}.part"
    with open(tmp, "wb") as fh:
        batch: list[bytes] = []
        for rid, text in documents(
            docs,
            seed,
            kind,
            dup_rate=dup_rate,
            doc_bytes=doc_bytes,
            exact_frac=exact_frac,
            chain_len=chain_len,
            chain_jaccard=chain_jaccard,
            data=resolved,
            counts=counts,
        ):
            line = f'{{"id": "{rid}", "text": {dumps(text)}}}\n'.encode()
            batch.append(line)
            n_bytes += len(line)
            n += 1
            if len(batch) == 4096:
                fh.write(b"".join(batch))
                batch.clear()
                if progress and n % (4096 * 64) == 0:
                    print(
                        f"  {n:,} docs, {n_bytes / 1e6:,.1f} MB, {time.perf_counter() - t0:.0f}s",
                        file=sys.stderr,
                    )
        fh.write(b"".join(batch))
    os.replace(tmp, path)
    return {"docs": n, "bytes": n_bytes, **counts, "data": resolved}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Write a deterministic near-duplicate JSONL corpus from real text.",
        epilog=__doc__.split("\n\n", 3)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("out", metavar="OUT.jsonl")
    ap.add_argument("--docs", type=int, required=True, help="number of documents")
    ap.add_argument("--seed", type=int, default=0, help="random seed (0)")
    ap.add_argument("--kind", choices=KINDS, default="mixed", help="corpus shape (mixed)")
    ap.add_argument(
        "--dup-rate",
        type=float,
        help="fraction of documents that copy another (mixed 0.24, copies 0.95)",
    )
    ap.add_argument("--doc-bytes", type=int, default=1000, help="typical document size (1000)")
    ap.add_argument(
        "--exact-frac", type=float, default=1 / 3, help="mixed: exact share of the copies (1/3)"
    )
    ap.add_argument(
        "--chain-len", type=int, default=0, help="chain: documents per chain (0: one chain)"
    )
    ap.add_argument(
        "--chain-jaccard",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        default=CHAIN_JACCARD,
        help="chain: target Jaccard of neighbours, uniform in [LO, HI] (0.82 0.88)",
    )
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--data", metavar="DIR", help="data folder (default: ../shared/data if present)")
    g.add_argument("--no-data", action="store_true", help="standard library text only")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    if args.docs < 0:
        ap.error("--docs must be >= 0")
    data: str | None = None if args.no_data else (args.data or "auto")
    if args.data and not os.path.isdir(args.data):
        ap.error(f"--data {args.data}: not a directory")
    t0 = time.perf_counter()
    info = generate(
        args.out,
        args.docs,
        args.seed,
        args.kind,
        dup_rate=args.dup_rate,
        doc_bytes=args.doc_bytes,
        exact_frac=args.exact_frac,
        chain_len=args.chain_len,
        chain_jaccard=tuple(args.chain_jaccard),
        data=data,
        progress=not args.quiet,
    )
    print(
        f"wrote {info['docs']:,} docs, {info['bytes']:,} bytes to {args.out} in "
        f"{time.perf_counter() - t0:.1f}s ({args.kind}: {info['original']:,} original, "
        f"{info['exact']:,} exact copies, {info['edited']:,} edited copies, "
        f"{info['chain']:,} chain windows; data: {info['data'] or 'stdlib only'})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
