import json
import math

import numpy as np
import pytest
import textsieve as ts
from textsieve.cli import main

from .conftest import SEED_DOCS


@pytest.fixture
def files(tmp_path, seed_split):
    train, val = seed_split
    (tmp_path / "train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
    (tmp_path / "val.jsonl").write_text(
        "".join(
            json.dumps({"id": f"v{i}", "text": t}, ensure_ascii=False) + "\n"
            for i, t in enumerate(val)
        ),
        encoding="utf-8",
    )
    return tmp_path


def test_perplexity_json_matches_api(files, capsys, seed_split):
    train, val = seed_split
    rc = main(
        [
            "ngram",
            "perplexity",
            "--train",
            str(files / "train.txt"),
            "--eval",
            str(files / "val.jsonl"),
            "--order",
            "2",
            "--k",
            "0.1",
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert round(out["perplexity"], 4) == 95.9628
    assert out["vocab_size"] == 116 and out["eval_docs"] == 2
    assert math.isclose(
        out["perplexity"], ts.AddKLM(2, 0.1).fit(train).perplexity(val), rel_tol=1e-12
    )


def test_train_then_score(files, capsys, seed_split):
    train, val = seed_split
    model = files / "m.npz"
    assert main(["ngram", "train", "--train", str(files / "train.txt"), "-o", str(model)]) == 0
    assert (
        main(["ngram", "score", str(model), str(files / "val.jsonl"), "-o", str(files / "s.jsonl")])
        == 0
    )
    rows = [
        json.loads(line) for line in (files / "s.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [r["id"] for r in rows] == ["v0", "v1"]
    want = ts.AddKLM(2, 0.1).fit(train).score(val)
    assert [round(r["perplexity"], 9) for r in rows] == [round(float(x), 9) for x in want]


def test_bad_input_exit_codes(files, capsys):
    (files / "bad.jsonl").write_text('{"text": "ok"}\n{broken\n', encoding="utf-8")
    rc = main(
        [
            "ngram",
            "perplexity",
            "--train",
            str(files / "train.txt"),
            "--eval",
            str(files / "bad.jsonl"),
        ]
    )
    assert rc == 1
    assert "bad.jsonl:2" in capsys.readouterr().err
    # a value no model can take is a usage error, refused before any file is read
    with pytest.raises(SystemExit) as exc:
        main(["ngram", "perplexity", "--train", "x.txt", "--eval", "y.txt", "--k", "0"])
    assert exc.value.code == 2
    assert "argument --k: must be greater than 0" in capsys.readouterr().err
    assert (
        main(
            [
                "ngram",
                "perplexity",
                "--train",
                str(files / "missing.txt"),
                "--eval",
                str(files / "val.jsonl"),
            ]
        )
        == 1
    )
    with pytest.raises(SystemExit) as exc:
        main(["ngram", "perplexity", "--train"])
    assert exc.value.code == 2


def test_demo_runs_on_the_standard_library(capsys):
    assert main(["ngram", "demo"]) == 0
    out = capsys.readouterr().out
    assert "standard library files" in out and "perplexity" in out


def test_seed_docs_fixture_is_the_notebook_corpus():
    assert len(SEED_DOCS) == 10 and SEED_DOCS[0].endswith("学ぶ。")


WORDS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog",
    "the cat saw the dog",
    "on the mat the cat sat",
]


def test_every_smoothing_from_the_command_line(files, capsys, seed_split):
    train, val = seed_split
    cases = [("kneser-ney", [], {}), ("add-k", ["--k", "0.2", "--pad", "sentence"], {"k": 0.2})]
    cases += [("witten-bell", [], {})]
    for smoothing, extra, kw in cases:
        argv = ["ngram", "perplexity", "--train", str(files / "train.txt"), "--eval"]
        argv += [str(files / "val.jsonl"), "--order", "3", "--smoothing", smoothing, "--json"]
        assert main(argv + extra) == 0
        out = json.loads(capsys.readouterr().out)
        want = ts.NgramLM(3, smoothing, **kw).fit(train).perplexity(val)
        assert out["smoothing"] == smoothing and out["pad"] == "sentence"
        if math.isinf(want):  # Witten-Bell gives characters never seen no probability
            assert out["perplexity"] is None
        else:
            assert math.isclose(out["perplexity"], want, rel_tol=1e-12)


def test_ccnet_style_scoring_with_an_arpa_model(tmp_path, capsys):
    (tmp_path / "train.txt").write_text("\n".join(WORDS * 3) + "\n", encoding="utf-8")
    docs = WORDS + ["zebra quantum flux", "the the the", "", "a dog sat on the mat"]
    raw = [
        json.dumps({"id": f"d{i}", "text": t, "lang": "en"}, ensure_ascii=False) + "\n"
        for i, t in enumerate(docs)
    ]
    (tmp_path / "crawl.jsonl").write_text("".join(raw), encoding="utf-8")
    arpa = tmp_path / "m.arpa"
    argv = ["ngram", "train", "--train", str(tmp_path / "train.txt"), "--words"]
    assert main(argv + ["--smoothing", "kneser-ney", "--order", "3", "-o", str(arpa), "-q"]) == 0
    want = ts.NgramLM.from_arpa(arpa).score(docs)
    # per-document perplexity next to each record, and CCNet's head/middle/tail at 30/60
    out = tmp_path / "scored.jsonl"
    assert (
        main(
            ["ngram", "score", str(arpa), str(tmp_path / "crawl.jsonl"), "--annotate"]
            + ["--buckets", "-o", str(out), "-q"]
        )
        == 0
    )
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    cut = np.percentile(want, [30, 60])
    for row, doc, ppl in zip(rows, docs, want):
        assert row["text"] == doc and row["lang"] == "en"
        assert math.isclose(row["perplexity"], ppl, rel_tol=1e-12)
        assert row["bucket"] == ("head" if ppl < cut[0] else "middle" if ppl < cut[1] else "tail")
    # given cutoffs, and the records below a perplexity kept byte for byte
    kept = tmp_path / "kept.jsonl"
    limit = float(np.median(want))
    argv = ["ngram", "score", str(arpa), str(tmp_path / "crawl.jsonl"), "--cutoffs", "5,50"]
    assert main(argv + ["--keep-below", str(limit), "--kept", str(kept), "-o", str(out)]) == 0
    assert "kept" in capsys.readouterr().err
    assert kept.read_bytes() == "".join(r for r, p in zip(raw, want) if p < limit).encode()
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["bucket"] for r in rows] == [
        "head" if p < 5 else "middle" if p < 50 else "tail" for p in want
    ]
    # --keep-below needs somewhere to write
    assert (
        main(["ngram", "score", str(arpa), str(tmp_path / "crawl.jsonl"), "--keep-below", "9"]) == 1
    )
    assert "--kept" in capsys.readouterr().err


def test_compressed_arpa_saved_model_perplexity_and_streamed_scoring(tmp_path, capsys, monkeypatch):
    import subprocess
    import sys

    from textsieve.commands import ngram as ngram_cmd

    (tmp_path / "train.txt").write_text("\n".join(WORDS * 3) + "\n", encoding="utf-8")
    docs = WORDS + ["zebra quantum flux", "the the the", "a dog sat on the mat"] * 3
    crawl = tmp_path / "crawl.jsonl"
    crawl.write_text("".join(json.dumps({"text": t}) + "\n" for t in docs), encoding="utf-8")
    plain = tmp_path / "m.arpa"
    argv = ["ngram", "train", "--train", str(tmp_path / "train.txt"), "--words", "--order", "3"]
    argv += ["--smoothing", "kneser-ney"]
    assert main(argv + ["-o", str(plain), "-q"]) == 0
    want = ts.NgramLM.from_arpa(plain).score(docs)
    for name, magic in (("m.arpa.gz", b"\x1f\x8b"), ("m.arpa.zst", b"\x28\xb5\x2f\xfd")):
        packed = tmp_path / name
        assert main(argv + ["-o", str(packed), "-q"]) == 0
        assert packed.read_bytes()[: len(magic)] == magic
        # read as it is, by the API and by the command line
        assert np.array_equal(ts.NgramLM.from_arpa(packed).score(docs), want)
        assert main(["ngram", "perplexity", "--model", str(packed), "--eval", str(crawl)]) == 0
        assert "perplexity=" in capsys.readouterr().out
    # --model: the perplexity of the saved model over every predicted token of --eval,
    # read in chunks of 2 documents
    monkeypatch.setattr(ngram_cmd, "CHUNK", 2)
    assert main(["ngram", "perplexity", "--model", str(plain), "--eval", str(crawl), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    lm = ts.NgramLM.from_arpa(plain)
    assert math.isclose(out["perplexity"], lm.perplexity(docs), rel_tol=1e-12)
    assert out["eval_docs"] == len(docs) and out["model"] == str(plain)
    both = ["--model", str(plain), "--train", str(tmp_path / "train.txt"), "--eval", str(crawl)]
    assert main(["ngram", "perplexity", *both]) == 1
    assert "one of the two" in capsys.readouterr().err
    # percentile buckets need every score before the first row: two passes over the input,
    # in chunks, from a file and from standard input, with the same rows
    scored = tmp_path / "scored.jsonl"
    assert main(["ngram", "score", str(plain), str(crawl), "--buckets", "-o", str(scored)]) == 0
    rows = [json.loads(line) for line in scored.read_text(encoding="utf-8").splitlines()]
    cut = np.percentile(want, [30, 60])
    assert [r["bucket"] for r in rows] == [
        "head" if p < cut[0] else "middle" if p < cut[1] else "tail" for p in want
    ]
    assert [r["perplexity"] for r in rows] == pytest.approx(list(want), rel=1e-12)
    piped = subprocess.run(
        [sys.executable, "-m", "textsieve", "ngram", "score", str(plain), "-", "--buckets", "-q"],
        input=crawl.read_bytes(),
        capture_output=True,
        check=True,
    )
    assert [json.loads(line)["bucket"] for line in piped.stdout.splitlines()] == [
        r["bucket"] for r in rows
    ]
    # training reads its files twice in chunks (vocabulary, then counts), never holding them:
    # the same model as one fit over every document, for words and for characters
    streamed = tmp_path / "streamed.arpa"
    assert main(argv + ["-o", str(streamed), "-q"]) == 0
    whole = tmp_path / "whole.arpa"
    ts.NgramLM(3, "kneser-ney", words=True).fit(WORDS * 3).to_arpa(whole)
    assert streamed.read_bytes() == whole.read_bytes()
    chars = tmp_path / "chars.npz"
    argv = ["ngram", "train", "--train", str(tmp_path / "train.txt"), "--order", "2"]
    assert main(argv + ["-o", str(chars), "-q"]) == 0
    want_lm = ts.AddKLM(2, 0.1).fit(WORDS * 3)
    assert ts.AddKLM.load(chars).vocab.tokens == want_lm.vocab.tokens
    assert ts.AddKLM.load(chars).perplexity(docs) == pytest.approx(want_lm.perplexity(docs))


def test_total_nll_of_shards_adds_up(seed_split):
    train, val = seed_split
    for lm in (ts.NgramLM(3).fit(train), ts.AddKLM(2, 0.1).fit(train)):
        a, n = lm.total_nll(val[:3])
        b, m = lm.total_nll(val[3:])
        whole, total = lm.total_nll(val)
        assert total == n + m and math.isclose(whole, a + b, rel_tol=1e-12)
        assert math.isclose(lm.nll(val), whole / total, rel_tol=1e-12)


def test_train_reads_text_and_json_lines_alike_in_chunks(tmp_path, capsys):
    # `ngram train` reads its input in the core's chunks (past CHUNK documents here): plain text
    # and JSON Lines give the documents, and the ARPA file, that the library gives
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(300)] + ["é", "日本"]
    docs = [" ".join(rng.choice(words, size=rng.integers(1, 9))) for _ in range(5000)]
    (tmp_path / "t.txt").write_text("\n".join(docs) + "\n", encoding="utf-8")
    with open(tmp_path / "t.jsonl", "w", encoding="utf-8") as fh:
        for i, d in enumerate(docs):
            fh.write(json.dumps({"id": i, "text": d}, ensure_ascii=False) + "\n")
    ts.NgramLM(4, words=True).fit(docs).to_arpa(tmp_path / "lib.arpa")
    want = (tmp_path / "lib.arpa").read_bytes()
    for name in ("t.txt", "t.jsonl"):
        argv = ["ngram", "train", "--train", str(tmp_path / name), "--words", "--order", "4"]
        argv += ["--smoothing", "kneser-ney", "-q", "-o", str(tmp_path / f"{name}.arpa")]
        assert main(argv) == 0
        assert (tmp_path / f"{name}.arpa").read_bytes() == want, name
    capsys.readouterr()
