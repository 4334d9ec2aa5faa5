"""One exception family: every bad argument is a ValueError (``InvalidArgumentError``) that
names the argument; corrupt data and unknown tokens have their own subclasses; every exception
pickles with its attributes; sizes that cannot fit in memory are refused, not a crash."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
import textsieve as ts
from textsieve import _core
from textsieve.io import MalformedRecordError, MissingDependencyError
from textsieve.workshop._common import WorkshopError

DOCS = ["abcab cabca", "bcabc abcab", "the quick brown fox"]


@pytest.fixture(scope="module")
def lm() -> ts.AddKLM:
    return ts.AddKLM(order=2).fit(DOCS)


def _set_threads(lm: ts.AddKLM, n: int) -> ts.AddKLM:
    lm.num_threads = n
    return lm


BAD_ARGUMENTS: list[tuple[str, Callable[[ts.AddKLM], Any]]] = [
    ("num_perm", lambda lm: ts.MinHasher(num_perm=2**64)),
    ("k", lambda lm: ts.jaccard("a b", "a c", k=2**70)),
    ("k", lambda lm: ts.shingles("abc", k=2**70)),
    ("num_threads", lambda lm: ts.normalize_batch(["a"], num_threads=2**64)),
    ("num_threads", lambda lm: ts.normalize_batch(["a"], num_threads=-1)),
    ("num_threads", lambda lm: ts.dedup(DOCS, num_threads=2**64)),
    ("num_threads", lambda lm: ts.MinHasher().signatures(DOCS, num_threads=2**64)),
    ("num_threads", lambda lm: ts.Vocab.from_texts(DOCS, num_threads=-1)),
    ("num_threads", lambda lm: ts.AddKLM(num_threads=-1).fit(DOCS)),
    ("num_threads", lambda lm: _set_threads(pickle.loads(pickle.dumps(lm)), -1).score(DOCS)),
    ("num_threads", lambda lm: _set_threads(pickle.loads(pickle.dumps(lm)), -1).nll(DOCS)),
    ("seed", lambda lm: lm.sample(seed=-1)),
    ("seed", lambda lm: lm.sample(seed=2**64)),
    ("order", lambda lm: ts.NgramCounts(-1, lm.vocab)),
    ("order", lambda lm: ts.NgramCounts(2**64, lm.vocab)),
    ("punctuation", lambda lm: ts.normalize("a", punctuation="\ud800")),
    ("punctuation", lambda lm: ts.char_tokenize("a", punctuation="\ud800")),
    ("punctuation", lambda lm: ts.Vocab.from_texts(DOCS, punctuation="\ud800")),
    ("unk", lambda lm: ts.Vocab(["a"], unk="\ud800")),
    ("tokens[1]", lambda lm: ts.Vocab(["a", "\ud800"])),
    ("samples", lambda lm: _core.DedupRun(ts.DedupSettings().config(), samples=256)),
    ("errors", lambda lm: ts.normalize("a", errors="ignore")),
    ("text", lambda lm: ts.normalize("\ud800")),
    ("bands", lambda lm: _core.band_keys(ts.MinHasher(num_perm=8).signatures(DOCS), 2**63, 2)),
]


@pytest.mark.parametrize(("arg", "call"), BAD_ARGUMENTS)
def test_bad_arguments_are_value_errors_that_name_them(
    lm: ts.AddKLM, arg: str, call: Callable[[ts.AddKLM], Any]
) -> None:
    with pytest.raises(ts.InvalidArgumentError) as caught:
        call(lm)
    err = caught.value
    assert isinstance(err, ts.TextsieveError) and isinstance(err, ValueError)
    assert str(err).startswith(f"{arg}: "), str(err)
    assert err.arg == arg
    assert "got 0" not in str(err)


def test_out_of_range_lookups_are_answers_not_errors(lm: ts.AddKLM) -> None:
    with pytest.raises(IndexError):
        lm.vocab.token_of(2**70)
    assert "\ud800" not in lm.vocab


def test_the_core_errors_have_their_own_classes() -> None:
    assert issubclass(ts.InvalidArgumentError, ts.TextsieveError)
    assert issubclass(ts.CorruptDataError, ts.TextsieveError)
    assert issubclass(ts.UnknownTokenError, ts.TextsieveError)
    assert issubclass(ts.UnknownTokenError, KeyError)
    assert issubclass(ts.FileFormatError, ts.CorruptDataError)
    with pytest.raises(ts.CorruptDataError, match="magic"):
        _core.IndexCore.from_bytes(b"PK\x03\x04 this is a zip file, not an index")
    vocab = ts.Vocab.from_texts(["ab"], unk=None)
    with pytest.raises(ts.UnknownTokenError) as caught:
        vocab.encode("abz")
    assert caught.value.token == "z"
    assert isinstance(caught.value, KeyError)


def _raised(call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - the exception is what the test looks at
        return exc
    raise AssertionError("nothing raised")


def _exceptions() -> list[BaseException]:
    return [
        ts.TextsieveError("plain"),
        _raised(lambda: ts.normalize_batch(["a"], num_threads=-1)),
        _raised(lambda: _core.IndexCore.from_bytes(b"junk")),
        _raised(lambda: ts.Vocab.from_texts(["ab"], unk=None).encode("z")),
        ts.FileFormatError("model.addk: truncated"),
        MalformedRecordError("corpus.jsonl", 7, "bad JSON"),
        MissingDependencyError("reading .zst needs zstandard"),
        WorkshopError("lr: must be positive"),
    ]


@pytest.mark.parametrize("exc", _exceptions(), ids=lambda e: type(e).__name__)
def test_exceptions_pickle_with_their_attributes(exc: BaseException) -> None:
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert str(back) == str(exc)
    assert back.args == exc.args
    assert back.__dict__ == exc.__dict__


def test_malformed_record_keeps_where_and_why() -> None:
    back = pickle.loads(pickle.dumps(MalformedRecordError("corpus.jsonl", 7, "bad JSON")))
    assert (back.source, back.line, back.reason) == ("corpus.jsonl", 7, "bad JSON")
    assert str(back) == "corpus.jsonl:7: bad JSON"


def _memory() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _docs_over_memory() -> int:
    return 2 * (_memory() or 0) // (65536 * 4)


# Run where a failed allocation would abort: a crash must not take the test session down.
TOO_BIG = """
import textsieve as ts
try:
    CALL
except ts.InvalidArgumentError as exc:
    print(exc.arg, "|", exc)
"""


@pytest.mark.skipif(_memory() is None, reason="needs /proc/meminfo")
@pytest.mark.parametrize(
    ("arg", "call"),
    [
        # twice the machine's memory in signatures, of empty documents (cheap to pass)
        ("num_perm", f"ts.MinHasher(num_perm=65536).signatures([''] * {_docs_over_memory()})"),
        ("length", "ts.AddKLM(order=2).fit(['abab']).sample('a', length=2**40)"),
    ],
)
def test_sizes_that_cannot_fit_are_refused_not_a_crash(arg: str, call: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(TOO_BIG).replace("CALL", call)],
        timeout=120,
        capture_output=True,
        text=True,
        env={**os.environ, "RAYON_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.startswith(f"{arg} | {arg}: "), done.stdout
    assert "more memory than this machine has" in done.stdout
