"""Parity of the NumPy GRU with torch.nn.GRU / autograd. Skipped where torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest
import textsieve as ts
from textsieve.lm import GRULanguageModel, _numpy_gru, load

torch = pytest.importorskip(
    "torch", reason="torch is not installed (pip install 'textsieve[torch]')"
)

from textsieve.lm._torch_gru import TorchGRUEngine  # noqa: E402

TEXT = "to be or not to be, that is the question. whether tis nobler in the mind. " * 12


def _vocab() -> ts.Vocab:
    return ts.Vocab.from_texts([TEXT], unk="<unk>", normalize=False)


def _engine(params, vocab_size, d_model, hidden, layers):
    return TorchGRUEngine(
        params, vocab_size=vocab_size, d_model=d_model, hidden=hidden, layers=layers, device="cpu"
    )


@pytest.mark.parametrize("layers", [1, 2])
def test_same_weights_give_the_same_logits_and_gradients(layers):
    torch.manual_seed(0)
    vocab_size, d_model, hidden = 11, 6, 9
    params = _numpy_gru.init_params(vocab_size, d_model, hidden, layers, seed=4)
    # non-zero biases everywhere, so b_hn inside the reset gate is exercised
    rng = np.random.default_rng(0)
    for name in params:
        if "bias" in name:
            params[name] = rng.uniform(-0.5, 0.5, params[name].shape).astype(np.float32)
    x = rng.integers(0, vocab_size, size=(4, 13))
    y = rng.integers(0, vocab_size, size=(4, 13))
    engine = _engine(params, vocab_size, d_model, hidden, layers)
    t_logits, _ = engine.logits(x, engine.zero_state(4))
    n_logits, _, _ = _numpy_gru.forward(params, np.ascontiguousarray(x.T))
    np.testing.assert_allclose(n_logits.transpose(1, 0, 2), t_logits, atol=1e-5)

    t_loss, t_grads = engine.loss_and_grads(x, y)
    n_loss, n_grads = _numpy_gru.loss_and_grads(params, x, y)
    assert n_loss == pytest.approx(t_loss, rel=1e-5)
    assert set(t_grads) == set(n_grads)
    for name in n_grads:
        np.testing.assert_allclose(n_grads[name], t_grads[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_numpy_and_torch_training_take_the_same_steps():
    vocab = _vocab()
    kwargs = dict(d_model=8, hidden=16, layers=1, seed=3)
    fit = dict(steps=8, batch=4, block=16, lr=5e-3, weight_decay=0.1, eval_every=1, progress=False)
    a = GRULanguageModel(vocab, backend="numpy", **kwargs)
    b = GRULanguageModel(vocab, backend="torch", device="cpu", **kwargs)
    ha = a.fit(TEXT, TEXT[:200], **fit)
    hb = b.fit(TEXT, TEXT[:200], **fit)
    np.testing.assert_allclose(ha.train_loss, hb.train_loss, rtol=1e-4)
    np.testing.assert_allclose(ha.val_loss, hb.val_loss, rtol=1e-4)
    pa, pb = a.parameters(), b.parameters()
    for name in pa:
        np.testing.assert_allclose(pa[name], pb[name], atol=1e-4, err_msg=name)


def test_a_torch_trained_model_loads_in_numpy_with_the_same_logits(tmp_path):
    vocab = _vocab()
    lm = GRULanguageModel(vocab, d_model=8, hidden=16, layers=2, backend="torch", device="cpu")
    lm.fit(TEXT, steps=10, batch=4, block=16, lr=1e-2, progress=False)
    path = tmp_path / "torch.npz"
    lm.save(path)
    back = load(path, backend="numpy")
    assert back.backend == "numpy"
    np.testing.assert_allclose(back.logits(TEXT[:80]), lm.logits(TEXT[:80]), atol=1e-5)
    assert back.evaluate(TEXT).nll == pytest.approx(lm.evaluate(TEXT).nll, abs=1e-5)
    assert back.generate("to be", 40, seed=1) == lm.generate("to be", 40, seed=1)


def test_auto_picks_torch_when_installed():
    assert GRULanguageModel(_vocab(), d_model=4, hidden=4).backend == "torch"
