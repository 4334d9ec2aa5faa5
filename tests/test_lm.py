"""The character language models: NumPy gradients, training, evaluation, generation, save/load, CLI.

Torch parity lives in test_lm_torch.py (skipped when torch is absent).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import textsieve as ts
from textsieve.cli import main as cli_main
from textsieve.lm import (
    GRULanguageModel,
    History,
    MLPBigramLM,
    _mlp,
    _numpy_gru,
    load,
    read_header,
    torch_available,
)
from textsieve.lm._optim import lr_at

TINY = "to be or not to be, that is the question. "


def _vocab(text: str) -> ts.Vocab:
    return ts.Vocab.from_texts([text], unk="<unk>", normalize=False)


def _numeric_grad(loss_fn, value: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(value)
    for i in np.ndindex(value.shape):
        old = value[i]
        value[i] = old + eps
        plus = loss_fn()
        value[i] = old - eps
        minus = loss_fn()
        value[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


# -- gradients -------------------------------------------------------------------------------


def test_gru_gradients_match_central_differences_on_every_parameter():
    params = _numpy_gru.init_params(6, 4, 5, 2, seed=3, dtype=np.float64)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, size=(3, 5))
    y = rng.integers(0, 6, size=(3, 5))
    loss, grads = _numpy_gru.loss_and_grads(params, x, y)
    assert math.isfinite(loss)
    assert set(grads) == set(params)
    for name, value in params.items():
        assert grads[name].shape == value.shape, name
        assert grads[name].dtype == np.float64, name
        numeric = _numeric_grad(lambda: _numpy_gru.loss_and_grads(params, x, y)[0], value)
        err = _rel_err(numeric, grads[name])
        assert err < 1e-6, f"{name}: relative error {err:.2e}"
        assert np.abs(grads[name]).max() > 0, f"{name}: gradient is all zero"


def test_gru_gradients_with_a_nonzero_initial_state():
    params = _numpy_gru.init_params(5, 3, 4, 1, seed=1, dtype=np.float64)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, size=(2, 4))
    y = rng.integers(0, 5, size=(2, 4))
    h0 = rng.standard_normal((1, 2, 4)) * 0.5
    _, grads = _numpy_gru.loss_and_grads(params, x, y, h0)
    for name in ("gru.weight_hh_l0", "gru.bias_hh_l0"):
        numeric = _numeric_grad(
            lambda: _numpy_gru.loss_and_grads(params, x, y, h0)[0], params[name]
        )
        assert _rel_err(numeric, grads[name]) < 1e-6, name


def test_mlp_gradients_match_central_differences():
    params = _mlp.mlp_init_params(7, 6, seed=2, dtype=np.float64)
    rng = np.random.default_rng(2)
    x = rng.integers(0, 7, size=40)
    y = rng.integers(0, 7, size=40)
    _, grads = _mlp.mlp_loss_and_grads(params, x, y)
    for name, value in params.items():
        numeric = _numeric_grad(lambda: _mlp.mlp_loss_and_grads(params, x, y)[0], value)
        err = _rel_err(numeric, grads[name])
        assert err < 1e-6, f"{name}: relative error {err:.2e}"


def test_float32_and_float64_paths_agree():
    p64 = _numpy_gru.init_params(8, 6, 10, 1, seed=0, dtype=np.float64)
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    rng = np.random.default_rng(0)
    x = rng.integers(0, 8, size=(4, 12))
    y = rng.integers(0, 8, size=(4, 12))
    l64, g64 = _numpy_gru.loss_and_grads(p64, x, y)
    l32, g32 = _numpy_gru.loss_and_grads(p32, x, y)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for name in p64:
        assert g32[name].dtype == np.float32
        np.testing.assert_allclose(g32[name], g64[name], rtol=1e-3, atol=1e-6, err_msg=name)


def test_threaded_batch_slices_give_the_whole_batch_gradient():
    params = _numpy_gru.init_params(9, 5, 7, 2, seed=0, dtype=np.float64)
    rng = np.random.default_rng(3)
    x = rng.integers(0, 9, size=(11, 6))
    y = rng.integers(0, 9, size=(11, 6))
    serial = _numpy_gru.NumpyGRUEngine(params, dtype=np.float64, threads=1)
    threaded = _numpy_gru.NumpyGRUEngine(params, dtype=np.float64, threads=3)
    loss1, grads1 = serial.loss_and_grads(x, y)
    loss3, grads3 = threaded.loss_and_grads(x, y)
    assert loss3 == pytest.approx(loss1, rel=1e-12)
    for name in grads1:
        np.testing.assert_allclose(grads3[name], grads1[name], rtol=1e-10, atol=1e-14)


# -- training --------------------------------------------------------------------------------


def test_gru_memorises_a_tiny_corpus():
    text = TINY * 30
    lm = GRULanguageModel(_vocab(text), d_model=16, hidden=48, backend="numpy", seed=0)
    history = lm.fit(text, steps=150, batch=8, block=48, lr=1e-2, progress=False)
    assert history.rows[0].train_loss > 1.0
    assert history.rows[-1].train_loss < 0.15
    assert lm.evaluate(text).nll < 0.05  # near 0: the text is memorised


def test_fit_records_history_and_writes_csv_and_svg(tmp_path):
    text = TINY * 20
    lm = GRULanguageModel(_vocab(text), d_model=8, hidden=16, backend="numpy", seed=0)
    csv_path, svg_path = tmp_path / "h.csv", tmp_path / "h.svg"
    history = lm.fit(
        text[:600],
        text[600:],
        steps=20,
        batch=4,
        block=16,
        eval_every=5,
        history_csv=csv_path,
        history_svg=svg_path,
        references={"add-k bigram": 2.0},
        progress=False,
    )
    assert [r.step for r in history.rows] == [5, 10, 15, 20]
    assert all(r.val_loss is not None and math.isfinite(r.val_loss) for r in history.rows)
    assert history.final_val_loss == pytest.approx(lm.evaluate(text[600:]).nll)
    back = History.read_csv(csv_path)
    assert [r.step for r in back.rows] == [5, 10, 15, 20]
    assert back.rows[-1].train_loss == pytest.approx(history.rows[-1].train_loss, rel=1e-5)
    svg = svg_path.read_text()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert svg.count("<polyline") == 2 and "add-k bigram" in svg


def test_time_limit_stops_training():
    text = TINY * 20
    lm = GRULanguageModel(_vocab(text), d_model=8, hidden=16, backend="numpy", seed=0)
    history = lm.fit(text, steps=None, time_limit=0.3, batch=4, block=16, progress=False)
    assert history.rows[-1].train_seconds >= 0.3
    assert history.rows[-1].train_seconds < 3.0


def test_training_is_reproducible_with_a_seed():
    text = TINY * 10

    def run() -> list[float]:
        lm = GRULanguageModel(_vocab(text), d_model=8, hidden=12, backend="numpy", seed=5)
        return lm.fit(
            text, steps=6, batch=3, block=10, seed=9, eval_every=1, progress=False
        ).train_loss

    assert run() == run()


def test_lr_schedule_warms_up_then_decays_to_min_lr():
    assert lr_at(0.0, 1.0, 0.1, 0.1) == 0.0
    assert lr_at(0.05, 1.0, 0.1, 0.1) == pytest.approx(0.5)
    assert lr_at(0.1, 1.0, 0.1, 0.1) == pytest.approx(1.0)
    assert lr_at(1.0, 1.0, 0.1, 0.1) == pytest.approx(0.1)
    mids = [lr_at(p, 1.0, 0.1, 0.1) for p in np.linspace(0.1, 1.0, 20)]
    assert all(a >= b for a, b in zip(mids, mids[1:], strict=False))


def test_mlp_untrained_perplexity_is_about_the_vocabulary_size_then_learns_bigrams():
    text = TINY * 20
    vocab = _vocab(text)
    mlp = MLPBigramLM(vocab, hidden=32, seed=0)
    start = mlp.evaluate(text)
    assert start.perplexity == pytest.approx(len(vocab), rel=0.15)
    mlp.fit(text, steps=300, batch=16, block=32, lr=1e-2, progress=False)
    # it cannot beat the bigram table: compare with the add-k bigram fitted on the same text
    bigram = ts.AddKLM(order=2, k=0.001, vocab=vocab).fit([text]).nll([text])
    assert mlp.evaluate(text).nll == pytest.approx(bigram, abs=0.05)


# -- evaluation ------------------------------------------------------------------------------


def test_evaluate_scores_every_character_once_and_matches_one_sequential_pass():
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("abcdefgh \n"), size=2500))
    lm = GRULanguageModel(_vocab(text), d_model=8, hidden=16, backend="numpy", seed=0)
    ids = lm.encode(text)
    logp = _numpy_gru.log_softmax(lm.logits(text))
    exact = -logp[np.arange(ids.size - 1), ids[1:]].mean()
    one = lm.evaluate(text, streams=1)
    assert one.predicted == len(text) - 1
    assert one.nll == pytest.approx(exact, rel=1e-9)
    many = lm.evaluate(text, streams=8, warmup=200, block=64)
    assert many.predicted == len(text) - 1
    assert many.nll == pytest.approx(exact, abs=1e-6)
    assert many.perplexity == pytest.approx(math.exp(many.nll))


def test_gru_beats_the_bigram_on_structured_text():
    # each line repeats its first word: only a model with memory can predict the repeat
    rng = np.random.default_rng(1)
    words = ["ab", "cd", "ef", "gh"]
    lines = [f"{w} {w}\n" for w in rng.choice(words, size=600)]
    text = "".join(lines)
    cut = int(len(text) * 0.9)
    vocab = _vocab(text[:cut])
    lm = GRULanguageModel(vocab, d_model=8, hidden=24, backend="numpy", seed=0)
    lm.fit(text[:cut], steps=120, batch=16, block=24, lr=1e-2, progress=False)
    bigram = ts.AddKLM(order=2, k=1.0, vocab=vocab).fit([text[:cut]]).nll([text[cut:]])
    assert lm.evaluate(text[cut:]).nll < bigram - 0.2


# -- generation ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained() -> GRULanguageModel:
    text = TINY * 30
    lm = GRULanguageModel(_vocab(text), d_model=16, hidden=32, backend="numpy", seed=0)
    lm.fit(text, steps=60, batch=8, block=32, lr=1e-2, progress=False)
    return lm


def test_generation_is_deterministic_with_a_seed(trained):
    a = trained.generate("to be", 80, seed=3)
    assert a == trained.generate("to be", 80, seed=3)
    assert len(a) == 80
    assert a != trained.generate("to be", 80, seed=4, temperature=2.0)
    greedy = trained.generate("to be", 40, greedy=True)
    assert greedy == trained.generate("to be", 40, top_k=1, seed=11)
    assert greedy.startswith(" or not to be")


def test_generation_arguments_are_checked(trained):
    with pytest.raises(ValueError, match="temperature"):
        trained.generate("to", 5, temperature=0)
    with pytest.raises(ValueError, match="top_k"):
        trained.generate("to", 5, top_k=0)
    with pytest.raises(TypeError, match="prompt"):
        trained.generate(b"to", 5)  # type: ignore[arg-type]
    assert trained.generate("", 10, seed=0) == trained.generate("", 10, seed=0)


def test_unknown_prompt_characters_read_as_unk(trained):
    unk = trained.vocab.unk_id
    assert trained.encode("tQ#").tolist()[1:] == [unk, unk]
    # two different unknown characters are the same input: <unk>
    assert trained.generate("to Q", 30, seed=1) == trained.generate("to Z", 30, seed=1)
    out = trained.generate("\u00e9\u00e9\u00e9", 200, seed=2, temperature=3.0)
    assert "<unk>" not in out and len(out) == 200


# -- save / load -----------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path, trained):
    path = tmp_path / "gru.npz"
    trained.save(path)
    back = load(path, backend="numpy")
    assert isinstance(back, GRULanguageModel)
    assert back.vocab.tokens == trained.vocab.tokens
    assert back.config == trained.config
    for name, value in trained.parameters().items():
        np.testing.assert_array_equal(back.parameters()[name], value, err_msg=name)
    np.testing.assert_allclose(back.logits("to be or"), trained.logits("to be or"), atol=1e-6)
    assert back.generate("to", 50, seed=7) == trained.generate("to", 50, seed=7)
    header = read_header(path)
    assert header["version"] == 1 and header["model"] == "GRULanguageModel"
    assert header["shapes"]["gru.weight_hh_l0"] == [96, 32]
    assert GRULanguageModel.load(path, backend="numpy").config == trained.config


def test_mlp_save_load_round_trip(tmp_path):
    text = TINY * 5
    mlp = MLPBigramLM(_vocab(text), hidden=8, seed=1)
    mlp.fit(text, steps=5, batch=4, block=8, progress=False)
    path = tmp_path / "mlp.npz"
    mlp.save(path)
    back = MLPBigramLM.load(path)
    np.testing.assert_array_equal(back.logits("to be"), mlp.logits("to be"))
    with pytest.raises(ValueError, match="MLPBigramLM, not a GRULanguageModel"):
        GRULanguageModel.load(path, backend="numpy")


def test_load_rejects_bad_files(tmp_path, trained):
    junk = tmp_path / "junk.npz"
    np.savez(junk, a=np.zeros(3))
    with pytest.raises(ValueError, match="no __header__"):
        load(junk)
    path = tmp_path / "m.npz"
    trained.save(path)
    with np.load(path) as npz:
        entries = {k: npz[k] for k in npz.files}
    header = json.loads(bytes(entries["__header__"]).decode())
    header["version"] = 99
    entries["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(tmp_path / "v99.npz", **entries)
    with pytest.raises(ValueError, match="version 99"):
        load(tmp_path / "v99.npz")
    header["version"] = 1
    entries["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    entries["head.bias"] = entries["head.bias"][:-1]
    np.savez(tmp_path / "shape.npz", **entries)
    with pytest.raises(ValueError, match="head.bias has shape"):
        load(tmp_path / "shape.npz")


# -- arguments and backends ------------------------------------------------------------------


def test_arguments_are_checked_by_name():
    vocab = _vocab(TINY)
    with pytest.raises(ValueError, match="hidden"):
        GRULanguageModel(vocab, hidden=0, backend="numpy")
    with pytest.raises(TypeError, match="layers"):
        GRULanguageModel(vocab, layers=1.5, backend="numpy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend"):
        GRULanguageModel(vocab, backend="tpu")
    with pytest.raises(TypeError, match="vocab"):
        GRULanguageModel(["a", "b"], backend="numpy")
    lm = GRULanguageModel(vocab, d_model=4, hidden=4, backend="numpy")
    with pytest.raises(ValueError, match="block=500"):
        lm.fit(TINY, steps=1, block=500)
    with pytest.raises(ValueError, match="lr"):
        lm.fit(TINY, steps=1, block=8, lr=0)
    with pytest.raises(ValueError, match="time_limit"):
        lm.fit(TINY, steps=None, block=8)
    with pytest.raises(FloatingPointError, match="diverged"):
        lm.fit(TINY, steps=5, block=8, lr=1e30, warmup=0, clip=None)


def test_auto_backend_is_numpy_without_torch():
    lm = GRULanguageModel(_vocab(TINY), d_model=4, hidden=4, backend="auto")
    assert lm.backend == ("torch" if torch_available() else "numpy")


def test_torch_backend_without_torch_says_how_to_install(tmp_path, capsys):
    if torch_available():
        pytest.skip("torch is installed here; the error path is for machines without it")
    with pytest.raises(ImportError, match=r"pip install 'textsieve\[torch\]'"):
        GRULanguageModel(_vocab(TINY), backend="torch")
    text = tmp_path / "t.txt"
    text.write_text(TINY * 10, encoding="utf-8")
    code = cli_main(
        ["lm", "train", "--text", str(text), "--out", str(tmp_path / "m.npz"), "--backend", "torch"]
    )
    assert code == 1
    assert "pip install" in capsys.readouterr().err


# -- command line ----------------------------------------------------------------------------


def test_cli_train_eval_generate(tmp_path, capsys):
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran"]
    text = "\n".join(" ".join(rng.choice(words, size=8)) for _ in range(150))
    src = tmp_path / "corpus.txt"
    src.write_text(text, encoding="utf-8")
    model = tmp_path / "lm.npz"
    args = ["lm", "train", "--text", str(src), "--out", str(model), "--backend", "numpy"]
    args += ["--steps", "40", "--batch", "8", "--block", "32", "--hidden", "32", "--d-model", "16"]
    args += ["--lr", "0.01", "--eval-every", "10", "--quiet", "--json"]
    assert cli_main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 40 and result["backend"] == "numpy"
    assert result["val_nll"] < math.log(result["vocab_size"])
    assert (tmp_path / "lm.history.csv").exists() and (tmp_path / "lm.history.svg").exists()
    assert len(History.read_csv(tmp_path / "lm.history.csv").rows) == 4

    assert cli_main(["lm", "eval", str(model), "--text", str(src), "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "GRULanguageModel (numpy)" in out and "add-k 2-gram (k=1)" in out
    assert cli_main(["lm", "eval", str(model), "--text", str(src), "--json", "--order", "3"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["lm"]["nll"] == pytest.approx(result["val_nll"], rel=1e-6)
    assert ev["ngram"]["order"] == 3 and ev["ngram"]["perplexity"] > 1

    gen = ["lm", "generate", str(model), "--prompt", "the c", "--length", "40", "--seed", "2"]
    assert cli_main(gen) == 0
    first = capsys.readouterr().out
    assert cli_main(gen) == 0
    assert capsys.readouterr().out == first
    assert first.startswith("the c") and len(first.rstrip("\n")) == 45

    assert cli_main(["lm", "eval", str(model), "--text", str(src), "--val-fraction", "1.5"]) == 1
    assert "--val-fraction" in capsys.readouterr().err


def test_cli_mlp_and_help(tmp_path, capsys):
    src = tmp_path / "c.txt"
    src.write_text(TINY * 20, encoding="utf-8")
    model = tmp_path / "mlp.npz"
    args = ["lm", "train", "--text", str(src), "--out", str(model), "--model", "mlp"]
    assert cli_main(args + ["--steps", "20", "--batch", "8", "--block", "16", "--quiet"]) == 0
    assert "MLPBigramLM" in capsys.readouterr().out
    assert load(model).kind == "MLPBigramLM"
    with pytest.raises(SystemExit) as exc:
        cli_main(["lm", "train", "--help"])
    assert exc.value.code == 0
    assert "examples:" in capsys.readouterr().out
    assert cli_main(["lm"]) == 2
