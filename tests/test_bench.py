"""The speed comparison itself: every stage timed for Rust and the reference, on answers that
agree (run_ngram_bench asserts that), and the Rust runs spread around the reference run."""

import pytest
from textsieve import AddKLM, bench


def test_ngram_bench_times_every_stage_for_rust_and_the_reference():
    docs = bench.generated_corpus(n_docs=60)
    rows = bench.run_ngram_bench(docs, repeat=3, peers=False)
    stages = ("tokenize", "count", "perplexity", "pipeline")
    assert [(r.stage, r.impl) for r in rows] == [
        (s, impl) for s in stages for impl in ("rust", "reference")
    ]
    assert all(r.seconds > 0 and r.megabytes > 0 for r in rows)
    train, evals = bench.split(docs)
    want = AddKLM(order=2, k=0.1).fit(train).perplexity(evals)
    got = {(r.stage, r.impl): r for r in rows}
    assert got["pipeline", "rust"].extra["perplexity"] == pytest.approx(want, rel=1e-12)
    assert got["perplexity", "rust"].extra["perplexity"] == pytest.approx(want, rel=1e-12)


def test_rust_runs_go_before_and_after_the_reference(monkeypatch):
    # the timing calls in order: about half the Rust runs of a stage come before the reference
    calls = []
    real = bench.best_time

    def spy(fn, repeat=3, clock=None):
        calls.append(repeat)
        return real(fn, repeat, clock) if clock else real(fn, repeat)

    monkeypatch.setattr(bench, "best_time", spy)
    bench.run_ngram_bench(bench.generated_corpus(n_docs=20), repeat=5, peers=False)
    # four stages, each: 3 Rust runs, the reference once, 2 Rust runs
    assert calls == [3, 1, 2] * 4


def test_bench_says_when_it_falls_back_to_generated_text(monkeypatch, tmp_path, capsys):
    from textsieve import bench
    from textsieve.cli import main

    monkeypatch.setattr(bench, "data_dir", lambda: None)
    argv = ["bench", "--corpus", "shakespeare", "manpages", "--limit-mb", "0.02", "--json"]
    assert main([*argv, "--repeat", "1", "--no-peers"]) == 0
    captured = capsys.readouterr()
    assert "corpus 'shakespeare' not found" in captured.err
    assert "corpus 'manpages' not found" in captured.err
    import json

    assert [c["corpus"] for c in json.loads(captured.out)] == ["generated"]  # timed once
