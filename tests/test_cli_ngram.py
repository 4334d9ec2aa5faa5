import json
import math

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
