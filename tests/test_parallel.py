"""The thread pools behind ``num_threads``: usable in a forked child, and bounded in number."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
import textsieve as ts

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

# Every kernel that runs on a pool, once in the parent (which builds the pools) and once in a
# forked child; a child that hangs on the parent's pool threads is killed by the timeout.
FORK_SCRIPT = """
import multiprocessing, os, sys
import textsieve as ts

docs = [f"the quick brown fox {i} jumps over the lazy dog {i % 7}" for i in range(200)]
mh = ts.MinHasher(num_perm=32)
lm = ts.AddKLM(order=2, num_threads=NUM_THREADS).fit(docs)

def work(_=None):
    out = ts.dedup(docs, num_threads=NUM_THREADS)
    sigs = mh.signatures(docs, num_threads=NUM_THREADS)
    scores = lm.score(docs)
    ts.normalize_batch(docs, num_threads=NUM_THREADS)
    return int(out.keep.sum()), sigs.shape, round(float(scores.sum()), 6)

want = work()
if MODE == "fork":
    pid = os.fork()
    if pid == 0:
        os._exit(0 if work() == want else 3)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
else:
    with multiprocessing.get_context("fork").Pool(2) as pool:
        got = pool.map(work, range(4))
    sys.exit(0 if got == [want] * 4 else 4)
"""


@pytest.mark.parametrize("mode", ["fork", "pool"])
@pytest.mark.parametrize("num_threads", [None, 1, 2])
def test_a_forked_child_can_use_the_pools(mode: str, num_threads: int | None) -> None:
    script = FORK_SCRIPT.replace("MODE", repr(mode)).replace("NUM_THREADS", repr(num_threads))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], timeout=60, capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc")
def test_pools_of_many_sizes_do_not_accumulate_threads() -> None:
    docs = [f"document number {i}" for i in range(64)]
    for n in range(2, 41):
        ts.normalize_batch(docs, num_threads=n)
    # the last few sizes may be kept (37..40 threads each); dropped pools' threads exit
    limit = 4 * 40 + 20
    deadline = time.monotonic() + 10
    while _threads() > limit and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _threads() <= limit
    # and what the pools compute does not change
    assert ts.normalize_batch(docs, num_threads=40) == ts.normalize_batch(docs, num_threads=1)
