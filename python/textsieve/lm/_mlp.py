"""The study-group notes' first model: one-hot character -> ReLU hidden layer -> next-char logits.

It sees only the current character, so it can at best learn the bigram table; its loss is the
floor a model with no memory can reach. NumPy only (it is small enough not to need torch).
"""

from __future__ import annotations

import numpy as np

from textsieve.lm._numpy_gru import log_softmax
from textsieve.lm._optim import AdamW, clip_grads_

Params = dict[str, np.ndarray]


def mlp_param_shapes(vocab_size: int, hidden: int) -> dict[str, tuple]:
    return {
        "hidden.weight": (hidden, vocab_size),
        "hidden.bias": (hidden,),
        "head.weight": (vocab_size, hidden),
        "head.bias": (vocab_size,),
    }


def mlp_init_params(vocab_size: int, hidden: int, seed: int, dtype=np.float32) -> Params:
    """torch.nn.Linear's default: uniform in +-1/sqrt(fan_in)."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in mlp_param_shapes(vocab_size, hidden).items():
        fan_in = vocab_size if name.startswith("hidden") else hidden
        bound = 1.0 / np.sqrt(fan_in)
        params[name] = rng.uniform(-bound, bound, size=shape).astype(dtype)
    return params


def mlp_forward(params: Params, x: np.ndarray):
    """Logits (N, V) for ids ``x`` (N,); a one-hot times a matrix is a column lookup."""
    pre = params["hidden.weight"].T[x] + params["hidden.bias"]
    act = np.maximum(pre, 0.0)
    logits = act @ params["head.weight"].T + params["head.bias"]
    return logits, (pre, act)


def mlp_loss_and_grads(params: Params, x: np.ndarray, y: np.ndarray):
    """Mean cross-entropy of predicting ``y`` from ``x`` (any equal shapes) and the gradients."""
    xf = np.asarray(x).reshape(-1)
    yf = np.asarray(y).reshape(-1)
    count = xf.shape[0]
    logits, (pre, act) = mlp_forward(params, xf)
    logp = log_softmax(logits)
    rows = np.arange(count)
    loss = -float(logp[rows, yf].astype(np.float64).mean())
    d = np.exp(logp)
    d[rows, yf] -= 1.0
    d /= count
    grads = {"head.weight": d.T @ act, "head.bias": d.sum(axis=0)}
    dact = d @ params["head.weight"]
    dact *= pre > 0
    g_hidden = np.zeros_like(params["hidden.weight"].T)
    np.add.at(g_hidden, xf, dact)
    grads["hidden.weight"] = np.ascontiguousarray(g_hidden.T)
    grads["hidden.bias"] = dact.sum(axis=0)
    return loss, grads


class NumpyMLPEngine:
    """Same interface as the GRU engines; the state is unused (the model has no memory)."""

    name = "numpy"

    def __init__(self, params: Params, dtype=np.float32) -> None:
        self.weights = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in params.items()}
        self._opt: AdamW | None = None
        self._clip: float | None = None

    def setup_training(self, *, weight_decay: float, clip: float | None, betas, eps: float) -> None:
        self._opt = AdamW(self.weights, betas=betas, eps=eps, weight_decay=weight_decay)
        self._clip = clip

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> tuple[float, float]:
        if self._opt is None:
            raise RuntimeError("setup_training() must be called before train_step()")
        loss, grads = mlp_loss_and_grads(self.weights, x, y)
        norm = clip_grads_(grads, self._clip)
        self._opt.step(grads, lr)
        return loss, norm

    def zero_state(self, batch: int) -> None:
        return None

    def nll(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, state: None):
        logits, _ = mlp_forward(self.weights, x.reshape(-1))
        logp = log_softmax(logits.astype(np.float64))
        picked = logp[np.arange(logp.shape[0]), y.reshape(-1)]
        return -float(picked[mask.reshape(-1)].sum()), state

    def logits(self, x: np.ndarray, state: None):
        logits, _ = mlp_forward(self.weights, x.reshape(-1))
        return logits.reshape(*x.shape, -1).astype(np.float64), state

    def params(self) -> Params:
        return {k: v.astype(np.float32, copy=True) for k, v in self.weights.items()}
