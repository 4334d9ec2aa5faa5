"""Ctrl-C during `textsieve dedup` (issue 12, "Long runs behave").

A run is started as a subprocess on a corpus that takes a few seconds, SIGINT is sent at a chosen
moment of the run, and then: exit status 130, exactly one line on stderr (`textsieve dedup:
interrupted`), no traceback and no panic, no output file in OUTDIR (final or temporary), and the
input unchanged. A run that had already finished must instead exit 0 with every output complete.

The moments are found by watching the run, not by sleeping: the temporary outputs appear in OUTDIR
when the dedup stage starts, ``/proc/PID/io`` (``rchar``) tells how much of the input was read,
the read-ahead thread ends (``/proc/PID/task``) when the last chunks are being signed before
``finish()``, the temporary ``kept.jsonl`` grows during the second pass of ``--keep longest``, and
the first final output appears when the outputs are being committed.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from benches.gen_dedup_corpus import generate

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or not os.path.exists("/proc/self/io"),
    reason="needs POSIX signals and /proc/PID/io",
)

DOCS = 120_000  # ~125 MB; a run takes about 3-4 s on 2 cores (the core reads it)
OUTPUTS = ("kept.jsonl", "removed.jsonl", "pairs.jsonl", "stats.json", "report.html")
INTERRUPTED = "textsieve dedup: interrupted"
WAIT_S = 60


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("interrupt") / "corpus.jsonl"
    generate(path, DOCS, seed=12, kind="mixed")
    return path, sha256(path)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def bytes_read(pid: int) -> int:
    """Bytes the process has read so far (``rchar``: every read(), imports included)."""
    with open(f"/proc/{pid}/io") as fh:
        for line in fh:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError(f"no rchar in /proc/{pid}/io")


def temporaries(out: Path) -> list[str]:
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(out, ".*.tmp")))


class Run:
    """`textsieve dedup CORPUS -o OUT --threads 2 [extra]` in a subprocess, watched by polling."""

    def __init__(
        self, corpus: Path, out: Path, extra: list[str], *, stderr_tty: bool = False
    ) -> None:
        self.corpus_bytes = corpus.stat().st_size
        self.out = out
        self.base_read = 0
        argv = [sys.executable, "-m", "textsieve", "dedup", str(corpus), "-o", str(out)]
        argv += ["--threads", "2", *extra]
        self._pty_master = -1
        self.most_threads = 0  # the most threads the process was seen with, polled by wait_for
        self._pty_chunks: list[bytes] = []
        stderr: int = subprocess.PIPE
        if stderr_tty:  # the terminal case: stderr is a tty, so the progress bar is drawn
            import pty

            self._pty_master, stderr = pty.openpty()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            # Python turns SIGINT into KeyboardInterrupt only if it is not ignored on start
            # (it is when the tests themselves run in the background of a shell).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        if stderr_tty:
            os.close(stderr)
            self._reader = threading.Thread(target=self._drain_pty, daemon=True)
            self._reader.start()

    def _drain_pty(self) -> None:
        while True:
            try:
                data = os.read(self._pty_master, 1 << 16)
            except OSError:  # EIO once the child has closed its end
                return
            if not data:
                return
            self._pty_chunks.append(data)

    def wait_for(self, what: str, cond: Callable[[], bool]) -> bool:
        """Poll ``cond`` every 2 ms; False if the run ended first."""
        deadline = time.monotonic() + WAIT_S
        while self.proc.poll() is None:
            try:
                self.most_threads = max(self.most_threads, self.threads())
                if cond():
                    return True
            except OSError:  # /proc of a process that just ended
                pass
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"the run never reached: {what}")
            time.sleep(0.002)
        return False

    def started(self) -> bool:
        """Until the dedup stage is under way (its temporary outputs exist in OUTDIR)."""
        ok = self.wait_for(
            "dedup stage", lambda: bool(glob.glob(os.path.join(self.out, ".kept.jsonl.*.tmp")))
        )
        if ok:
            try:
                self.base_read = bytes_read(self.proc.pid)
            except OSError:
                return False
        return ok

    def read_fraction(self, frac: float) -> bool:
        """Until ``frac`` of the input has been read (first pass)."""
        target = self.base_read + int(frac * self.corpus_bytes)
        return self.wait_for(f"{frac:.0%} read", lambda: bytes_read(self.proc.pid) >= target)

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/task"))

    def one_thread_fewer(self) -> bool:
        """Until the process has fewer threads than the most it was seen with (the read-ahead
        thread has ended; it may have ended before the poll that saw the whole input read), or
        the second pass writes (whichever first)."""
        return self.wait_for(
            "a thread ends", lambda: self.threads() < self.most_threads or self.kept_grows()
        )

    def kept_grows(self) -> bool:
        return any(
            os.path.getsize(p) > 0 for p in glob.glob(os.path.join(self.out, ".kept.jsonl.*.tmp"))
        )

    def writing_second_pass(self) -> bool:
        """Until the second pass of a non-streaming run writes kept documents."""
        return self.wait_for("second pass", self.kept_grows)

    def committing(self) -> bool:
        """Until the first final output appears (the outputs are being committed)."""
        return self.wait_for(
            "outputs committed", lambda: any((self.out / name).exists() for name in OUTPUTS)
        )

    def interrupt(self) -> tuple[int, str, float]:
        """SIGINT now (if still running); the exit status, stderr and seconds to exit."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            pytest.fail("the run did not end within 60 s of SIGINT")
        elapsed = time.monotonic() - t0
        if self._pty_master >= 0:
            self._reader.join(10)
            os.close(self._pty_master)
            text = b"".join(self._pty_chunks).decode("utf-8", "replace")
        else:
            text = err.decode("utf-8", "replace")
        return self.proc.returncode, text, elapsed


def check_outcome(out: Path, rc: int, stderr: str, corpus: tuple[Path, str]) -> str:
    """The assertions every interrupted run must satisfy; returns "interrupted" or "finished"."""
    path, digest = corpus
    assert sha256(path) == digest, "the input changed"
    assert "Traceback" not in stderr, stderr
    assert "panic" not in stderr.lower(), stderr
    assert temporaries(out) == [], f"temporary files left in OUTDIR: {temporaries(out)}"
    present = sorted(name for name in OUTPUTS if (out / name).exists())
    if rc == 0:  # the run had finished: every output complete
        assert present == sorted(OUTPUTS), present
        stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
        assert stats["n_input"] == DOCS
        with open(out / "kept.jsonl", "rb") as fh:
            assert sum(1 for _ in fh) == stats["n_kept"]
        with open(out / "removed.jsonl", "rb") as fh:
            assert sum(1 for _ in fh) == stats["n_removed"]
        assert INTERRUPTED not in stderr
        return "finished"
    assert rc == 130, f"exit status {rc}, stderr: {stderr!r}"
    assert stderr.strip().splitlines() == [INTERRUPTED], stderr
    assert present == [], f"final outputs left by an interrupted run: {present}"
    return "interrupted"


@pytest.mark.parametrize("moment", ["start", "half_read", "all_read", "committing"])
def test_interrupt_streaming(corpus: tuple[Path, str], tmp_path: Path, moment: str) -> None:
    """Default rule (greedy, input order): decided chunk by chunk, outputs written as it reads."""
    out = tmp_path / "out"
    run = Run(corpus[0], out, [])
    reached = run.started()
    if reached and moment == "half_read":
        reached = run.read_fraction(0.5)
    elif reached and moment == "all_read":  # the last chunks are fed, then finish()
        reached = run.read_fraction(1.0)
    elif reached and moment == "committing":
        reached = run.committing()
    rc, stderr, elapsed = run.interrupt()
    outcome = check_outcome(out, rc, stderr, corpus)
    # once the outputs start to land the run is past its point of no return: it may finish
    late = moment == "committing"
    assert outcome == "interrupted" or not reached or late, "SIGINT sent mid-run, yet it finished"
    if outcome == "interrupted" and moment != "committing":
        assert elapsed < 3, f"took {elapsed:.1f}s to stop after SIGINT"


@pytest.mark.parametrize("moment", ["half_read", "deciding", "second_pass", "committing"])
def test_interrupt_keep_longest(corpus: tuple[Path, str], tmp_path: Path, moment: str) -> None:
    """``--keep longest`` reads everything, decides in one finish() call, then reads again to
    write: SIGINT while signing, while deciding, during the second pass, and while committing."""
    out = tmp_path / "out"
    run = Run(corpus[0], out, ["--keep", "longest"])
    reached = run.started()
    if reached and moment == "half_read":
        reached = run.read_fraction(0.5)
    elif reached and moment == "deciding":
        # The whole input read once; the read-ahead thread ends (one thread fewer), the last
        # queued chunks are signed, then finish() decides in one Rust call (0.7 s here, then
        # 0.25 s of writing before the commit): a short wait lands in finish() or the writing,
        # never in the commit, and none at all once the writing has begun.
        reached = run.read_fraction(1.0) and run.one_thread_fewer()
        if reached and not run.kept_grows():
            time.sleep(0.15)
    elif reached and moment == "second_pass":
        reached = run.writing_second_pass()
    elif reached and moment == "committing":
        reached = run.committing()
    rc, stderr, _ = run.interrupt()
    outcome = check_outcome(out, rc, stderr, corpus)
    # once the outputs start to land the run is past its point of no return: it may finish
    late = moment == "committing"
    assert outcome == "interrupted" or not reached or late, "SIGINT sent mid-run, yet it finished"


def test_interrupt_on_a_terminal(corpus: tuple[Path, str], tmp_path: Path) -> None:
    """With stderr a terminal the progress bar is drawn; after Ctrl-C the only line left on it is
    ``textsieve dedup: interrupted`` (the bar is erased)."""
    out = tmp_path / "out"
    run = Run(corpus[0], out, [], stderr_tty=True)
    reached = run.started() and run.read_fraction(0.3)
    rc, raw, _ = run.interrupt()
    assert reached, "the run finished before SIGINT"
    # What a terminal would show: each \r returns to column 0, ESC[2K erases the line.
    lines: list[str] = []
    for row in raw.replace("\r\n", "\n").split("\n"):
        screen, col = "", 0
        for part in re.split(r"(\r|\x1b\[2K)", row):
            if part == "\r":
                col = 0
            elif part == "\x1b[2K":
                screen = " " * len(screen)
            else:
                screen = screen[:col].ljust(col) + part + screen[col + len(part) :]
                col += len(part)
        if screen.strip():
            lines.append(screen.strip())
    assert check_outcome(out, rc, "\n".join(lines) + "\n", corpus) == "interrupted"
    assert lines == [INTERRUPTED], repr(raw)


def test_interrupt_components_deciding(corpus: tuple[Path, str], tmp_path: Path) -> None:
    """``--cluster components`` decides a block of pairs per call after reading: SIGINT while it
    decides stops it within seconds, with no outputs."""
    out = tmp_path / "out"
    run = Run(corpus[0], out, ["--cluster", "components"])
    reached = run.started() and run.read_fraction(1.0) and run.one_thread_fewer()
    if reached and not run.kept_grows():
        time.sleep(0.15)
    rc, stderr, elapsed = run.interrupt()
    outcome = check_outcome(out, rc, stderr, corpus)
    assert outcome == "interrupted" or not reached, "SIGINT sent mid-run, yet it finished"
    if outcome == "interrupted":
        assert elapsed < 3, f"took {elapsed:.1f}s to stop after SIGINT"


@pytest.mark.parametrize("moment", ["start", "half_read"])
def test_interrupt_adding_to_an_index(
    corpus: tuple[Path, str], tmp_path: Path, moment: str
) -> None:
    """``--index DIR --update`` feeds each group on a thread of its own and writes its segment in
    the index's folder as it goes: SIGINT leaves the outputs as any run does and the index as it
    was (its manifest byte for byte; the unfinished segment is removed by the next writer)."""
    import textsieve as ts

    idx = tmp_path / "idx"
    subprocess.run(
        [sys.executable, "-m", "textsieve", "index", "create", str(idx)],
        check=True,
        capture_output=True,
    )
    manifest = (idx / "index.json").read_bytes()
    out = tmp_path / "out"
    run = Run(corpus[0], out, ["--index", str(idx), "--update"])
    reached = run.started()
    if reached and moment == "half_read":
        reached = run.read_fraction(0.5)
    rc, stderr, elapsed = run.interrupt()
    outcome = check_outcome(out, rc, stderr, corpus)
    assert outcome == "interrupted" or not reached, "SIGINT sent mid-run, yet it finished"
    with ts.DedupIndex.open(idx) as index:
        if outcome == "interrupted":
            assert elapsed < 3, f"took {elapsed:.1f}s to stop after SIGINT"
            assert (idx / "index.json").read_bytes() == manifest
            assert len(index) == 0
        else:
            assert len(index) > 0
    assert sorted(p.name for p in idx.iterdir() if p.name.startswith(".")) == []
