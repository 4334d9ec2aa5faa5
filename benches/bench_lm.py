"""Training speed of the character GRU: characters per second, NumPy vs torch on the CPU.

Run the timings with ``pytest benches/bench_lm.py --benchmark-enable``; by default (pyproject's
``--benchmark-disable``) each benchmark runs once as a test and checks that training worked.
The torch case skips when torch is not installed. Both backends train the same network from the
same seeded weights on the same batches, so the table compares like with like.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest
import textsieve as ts
from textsieve.lm import GRULanguageModel, torch_available

BATCH, BLOCK, STEPS = 32, 64, 12
HIDDEN, D_MODEL = 256, 64


def _corpus() -> str:
    shared = os.path.join(
        os.path.dirname(__file__), "..", "..", "shared", "data", "tinyshakespeare.txt"
    )
    if os.path.exists(shared):
        with open(shared, encoding="utf-8") as fh:
            return fh.read(200_000)
    rng = np.random.default_rng(0)
    words = ["thou", "art", "the", "king", "of", "my", "heart", "and", "thy", "lord"]
    return "\n".join(" ".join(rng.choice(words, size=9)) for _ in range(4000))


@pytest.fixture(scope="module")
def corpus() -> tuple[str, ts.Vocab]:
    text = _corpus()
    return text, ts.Vocab.from_texts([text], unk="<unk>", normalize=False)


@pytest.mark.benchmark(group="lm")
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_train_chars_per_second(benchmark, corpus, backend):
    if backend == "torch" and not torch_available():
        pytest.skip("torch is not installed (pip install 'textsieve[torch]')")
    text, vocab = corpus
    if backend == "torch":
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    results = []

    def train():
        lm = GRULanguageModel(
            vocab, d_model=D_MODEL, hidden=HIDDEN, backend=backend, device="cpu", seed=0
        )
        start = time.perf_counter()
        history = lm.fit(
            text, steps=STEPS, batch=BATCH, block=BLOCK, lr=3e-3, warmup=0.0, eval_every=1,
            progress=False,
        )  # fmt: skip
        results.append((history, time.perf_counter() - start))
        return history

    benchmark.pedantic(train, rounds=3, iterations=1, warmup_rounds=0)
    history = results[-1][0]
    seconds = min(s for _, s in results)
    losses = history.train_loss
    chars = STEPS * BATCH * BLOCK
    config = f"hidden={HIDDEN} d_model={D_MODEL} batch={BATCH} block={BLOCK}"
    benchmark.extra_info.update(
        backend=backend, config=config, chars_per_second=round(chars / seconds)
    )
    print(f"\nlm training, {backend}: {chars / seconds:,.0f} chars/s ({config})")
    assert all(math.isfinite(v) for v in losses)
    assert losses[0] == pytest.approx(math.log(len(vocab)), rel=0.2)  # untrained: ~uniform
    assert np.mean(losses[-3:]) < losses[0] - 0.3  # and it learns
