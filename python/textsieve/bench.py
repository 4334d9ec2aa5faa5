"""Side-by-side timings of the Rust core against the pure-Python reference and peers.

Used by ``textsieve bench`` and by ``benches/`` (pytest-benchmark). Every timing checks that what
it timed is correct (Rust == reference), and speed is reported as MB/s and ratios measured in the
same run, single-threaded unless asked otherwise.
"""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from textsieve import reference as ref
from textsieve.ngram import AddKLM, NgramCounts
from textsieve.vocab import Vocab


def data_dir() -> Path | None:
    """``$TEXTSIEVE_DATA``, else ``../shared/data`` beside the working directory or the repo."""
    candidates = [os.environ.get("TEXTSIEVE_DATA")]
    candidates += [str(Path.cwd().parent / "shared" / "data")]
    candidates += [str(Path(__file__).resolve().parents[3] / "shared" / "data")]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None


def generated_corpus(n_docs: int = 2000, seed: int = 0) -> list[str]:
    """Documents of pseudo-words with punctuation, for machines without the shared corpora."""
    rng = random.Random(seed)
    syll = ["ka", "to", "ri", "ne", "sa", "mo", "lu", "pe", "の", "学", "習", "は", "モデル"]
    docs = []
    for _ in range(n_docs):
        words = [
            "".join(rng.choice(syll) for _ in range(rng.randint(1, 4)))
            for _ in range(rng.randint(20, 120))
        ]
        docs.append(" ".join(w + rng.choice(["", "", "", ",", ".", "。"]) for w in words))
    return docs


def load_corpus(name: str, limit_bytes: int | None = None) -> tuple[str, list[str]]:
    """``(label, documents)`` for ``shakespeare`` (paragraphs), ``manpages`` (pages) or
    ``generated``; falls back to generated text when the shared corpora are absent."""
    d = data_dir()
    docs: list[str] = []
    if name == "shakespeare" and d and (d / "tinyshakespeare.txt").exists():
        text = (d / "tinyshakespeare.txt").read_text(encoding="utf-8")
        docs = [p for p in text.split("\n\n") if p.strip()]
    elif name == "manpages" and d and (d / "manpages_ja.jsonl").exists():
        with open(d / "manpages_ja.jsonl", encoding="utf-8") as fh:
            docs = [json.loads(line)["text"] for line in fh if line.strip()]
    else:
        name, docs = "generated", generated_corpus()
    if limit_bytes:
        out, size = [], 0
        for doc in docs:
            size += len(doc.encode())
            if size > limit_bytes:
                break
            out.append(doc)
        docs = out
    return name, docs


def mb(docs: list[str]) -> float:
    return sum(len(d.encode()) for d in docs) / 1e6


def best_time(
    fn: Callable[[], object], repeat: int = 3, clock: Callable[[], float] = time.process_time
) -> tuple[float, object]:
    """Best time of ``repeat`` runs (and the last result), by default in CPU time of this process:
    the machines these run on are shared, and other jobs then disturb a single-threaded run less.
    Multi-threaded runs pass ``time.perf_counter`` (CPU time would add up the threads).
    """
    best, result = math.inf, None
    for _ in range(repeat):
        t0 = clock()
        result = fn()
        best = min(best, clock() - t0)
    return best, result


@dataclass
class Row:
    stage: str
    impl: str
    seconds: float
    megabytes: float
    extra: dict = field(default_factory=dict)

    @property
    def mb_per_s(self) -> float:
        return self.megabytes / self.seconds if self.seconds > 0 else math.inf


def split(docs: list[str]) -> tuple[list[str], list[str]]:
    cut = max(1, len(docs) * 9 // 10)
    return docs[:cut], docs[cut:] or docs[:1]


def run_ngram_bench(
    docs: list[str],
    *,
    order: int = 2,
    k: float = 0.1,
    repeat: int = 3,
    peers: bool = True,
    num_threads: int = 1,
) -> list[Row]:
    """Time tokenize, count, perplexity and the whole pipeline for Rust and the reference (and
    NLTK / KenLM when installed), asserting both give the same answers."""
    clock = time.process_time if num_threads == 1 else time.perf_counter

    def timed(fn, n):
        return best_time(fn, n, clock)

    def paired(rust_fn, ref_fn):
        """``(rust seconds, rust result, reference seconds, reference result)``: the best of
        ``repeat`` Rust runs, half of them before the one reference run and half after, so that a
        slow spell of a few seconds on a shared machine cannot hit every Rust run of a stage."""
        before = (repeat + 1) // 2
        t_rust, got = timed(rust_fn, before)
        t_ref, want = timed(ref_fn, 1)
        if repeat > before:
            t_rust = min(t_rust, timed(rust_fn, repeat - before)[0])
        return t_rust, got, t_ref, want

    train, evals = split(docs)
    size_all, size_train, size_eval = mb(docs), mb(train), mb(evals)
    rows: list[Row] = []

    # tokenize (normalize + split + vocabulary ids)
    vocab = Vocab.from_texts(train)
    t, ids, t_ref, toks = paired(
        lambda: vocab.encode_batch(docs, num_threads=num_threads),
        lambda: [ref.encode(ref.char_tokenize(d), vocab.tokens) for d in docs],
    )
    assert [a.tolist() for a in ids] == toks, "Rust and reference tokenization differ"
    rows.append(Row("tokenize", "rust", t, size_all))
    rows.append(Row("tokenize", "reference", t_ref, size_all))

    # count
    train_tok = [ref.char_tokenize(d) for d in train]
    t, counts, t_ref, (grams, _) = paired(
        lambda: NgramCounts(order, vocab).update(train, num_threads=num_threads),
        lambda: ref.count_ngrams(train_tok, order),
    )
    assert counts.total == sum(grams.values()), "Rust and reference counts differ"
    rows.append(Row("count", "rust", t, size_train))
    rows.append(Row("count", "reference", t_ref, size_train))

    # perplexity of held-out text (model already trained)
    lm = AddKLM.from_counts(counts, k)
    lm.num_threads = num_threads
    n_pred = sum(max(0, len(vocab.encode(d)) - order + 1) for d in evals)
    eval_tok = [ref.char_tokenize(d) for d in evals]
    model = ref.train_addk(train_tok, order)
    t, ppl, t_ref, scores = paired(
        lambda: lm.perplexity(evals),
        lambda: ref.score_documents(model, eval_tok, order=order, k=k),
    )
    want = math.exp(sum(s for s, _ in scores) / sum(n for _, n in scores))
    assert math.isclose(ppl, want, rel_tol=1e-9), (ppl, want)
    rows.append(
        Row("perplexity", "rust", t, size_eval, {"tokens_per_s": n_pred / t, "perplexity": ppl})
    )
    rows.append(Row("perplexity", "reference", t_ref, size_eval, {"tokens_per_s": n_pred / t_ref}))

    # the whole pipeline: raw text in, perplexity out
    def rust_pipeline() -> float:
        return AddKLM(order=order, k=k, num_threads=num_threads).fit(train).perplexity(evals)

    def ref_pipeline() -> float:
        tr = [ref.char_tokenize(d) for d in train]
        return ref.perplexity(tr, [ref.char_tokenize(d) for d in evals], order=order, k=k)

    t, got, t_ref, want = paired(rust_pipeline, ref_pipeline)
    assert math.isclose(got, want, rel_tol=1e-9)
    rows.append(Row("pipeline", "rust", t, size_all, {"perplexity": got}))
    rows.append(Row("pipeline", "reference", t_ref, size_all))
    if peers:
        rows += _nltk_rows(train_tok, eval_tok, order, k, got, size_all)
        rows += _kenlm_rows(lm, evals, got, size_eval, n_pred)
    return rows


def _nltk_rows(train_tok, eval_tok, order, k, want, size) -> list[Row]:
    try:
        from nltk.lm import Lidstone, Vocabulary
        from nltk.util import everygrams, ngrams
    except ImportError:
        return []
    from itertools import chain

    # NLTK is slow: time it on a slice and scale the throughput honestly (MB of that slice)
    n = max(1, len(train_tok) // 20)
    tr, ev = train_tok[:n], eval_tok[: max(1, len(eval_tok) // 20)]

    def run() -> float:
        vocab = Vocabulary(chain.from_iterable(tr), unk_cutoff=1, unk_label="<unk>")
        lid = Lidstone(k, order, vocabulary=vocab)
        lid.fit([list(everygrams(d, max_len=order)) for d in tr])
        return lid.perplexity([g for d in ev for g in ngrams(d, order)])

    t, got = best_time(run, 1)
    ours = (
        AddKLM(order=order, k=k).fit(["".join(d) for d in tr]).perplexity(["".join(d) for d in ev])
    )
    assert math.isclose(got, ours, rel_tol=1e-9), (got, ours)
    slice_mb = sum(len("".join(d).encode()) for d in tr + ev) / 1e6
    return [Row("pipeline", "nltk", t, slice_mb, {"note": "on a 5% slice"})]


def write_arpa(lm: AddKLM, path: Path) -> None:
    """The add-k bigram model as an ARPA file with every bigram listed (so KenLM returns the
    same probabilities without backing off). Tokens are written as their code point in hex; a
    padded model's ``<s>`` and ``</s>`` are themselves (``<s>`` as a context, ``</s>`` as a token
    predicted). For models of every smoothing, :meth:`textsieve.NgramLM.to_arpa`."""
    if lm.order != 2:
        raise ValueError("order: the ARPA export is for bigram models")
    import numpy as np

    counts = lm.counts.bigram_matrix().astype(np.float64)
    V = counts.shape[0]  # the vocabulary, then <s> and </s> when padded
    probs = (counts + lm.k) / (counts.sum(axis=1, keepdims=True) + lm.k * V)
    names = [f"u{ord(t):x}" if len(t) == 1 else "<unk>" for t in lm.vocab.tokens]
    names += ["<s>", "</s>"][: V - len(names)]
    specials = [f"-99\t{t}\t0\n" for t in ("<s>", "</s>") if t not in names]
    with open(path, "w", encoding="ascii") as fh:
        fh.write(f"\\data\\\nngram 1={V + len(specials)}\nngram 2={V * V}\n\n\\1-grams:\n")
        fh.writelines(specials)
        for name in names:
            fh.write(f"{math.log10(1 / V):.9f}\t{name}\t0\n")
        fh.write("\n\\2-grams:\n")
        for a in range(V):
            for b in range(V):
                fh.write(f"{math.log10(probs[a, b]):.9f}\t{names[a]} {names[b]}\n")
        fh.write("\n\\end\\\n")


def _kenlm_rows(lm: AddKLM, evals: list[str], want: float, size: float, n_pred: int) -> list[Row]:
    try:
        import kenlm
    except ImportError:
        return []
    if lm.order != 2 or len(lm.vocab) > 400:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        arpa = Path(tmp) / "m.arpa"
        write_arpa(lm, arpa)
        model = kenlm.Model(str(arpa))
    names = {t: (f"u{ord(t):x}" if len(t) == 1 else "<unk>") for t in lm.vocab.tokens}
    sentences = [" ".join(names.get(c, "<unk>") for c in lm.vocab.tokenize(d)) for d in evals]
    sentences = [s for s in sentences if " " in s]

    V = len(lm.vocab)
    n = sum(s.count(" ") for s in sentences)

    def run() -> float:
        # score() sums log10 p over a sentence in C++; its first word has no bigram context and
        # gets the ARPA's uniform unigram 1/V, which is taken back out
        total = sum(model.score(s, bos=False, eos=False) for s in sentences)
        return 10 ** (-(total - len(sentences) * math.log10(1 / V)) / n)

    t, got = best_time(run, 3)
    assert math.isclose(got, want, rel_tol=1e-5), (got, want)
    return [
        Row(
            "perplexity",
            "kenlm",
            t,
            size,
            {"tokens_per_s": n_pred / t, "note": "query only, tokens pre-split"},
        )
    ]


def report(rows: list[Row]) -> str:
    """A table with MB/s and the ratio of Rust to each other implementation, per stage."""
    out = [f"{'stage':<11} {'impl':<10} {'seconds':>9} {'MB/s':>10} {'rust is':>10}  note"]
    rust = {r.stage: r for r in rows if r.impl == "rust"}
    for r in rows:
        ratio = "" if r.impl == "rust" else f"{rust[r.stage].mb_per_s / r.mb_per_s:,.1f}x"
        note = r.extra.get("note", "")
        if "tokens_per_s" in r.extra:
            note = f"{r.extra['tokens_per_s'] / 1e6:,.1f} M tokens/s " + note
        out.append(
            f"{r.stage:<11} {r.impl:<10} {r.seconds:>9.4f} {r.mb_per_s:>10.2f} {ratio:>10}  {note}"
        )
    return "\n".join(out)
