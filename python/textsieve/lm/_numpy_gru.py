"""NumPy backend of the GRU language model: forward and backward written out by hand.

Shapes are time-major inside (``T`` steps, ``B`` sequences), so every per-step slice is one
contiguous block. The gate order and the reset-gate placement follow ``torch.nn.GRU``::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

Speed comes from doing as much as possible outside the time loop: the input projection of all
steps is one matrix product, the gate derivatives that do not depend on the incoming gradient are
computed for all steps at once, and the weight gradients are one matrix product each at the end.
Inside the loop there is one ``(B, H) x (H, 3H)`` product and a handful of in-place ufuncs.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from textsieve.lm._blas import blas_threads
from textsieve.lm._optim import AdamW, clip_grads_

# Below this many sequences per thread the per-step Python overhead outweighs the parallelism.
_MIN_ROWS = 4

Params = dict[str, np.ndarray]


def param_shapes(vocab_size: int, d_model: int, hidden: int, layers: int) -> dict[str, tuple]:
    """Names and shapes of every parameter; the names match the torch module's ``state_dict``."""
    shapes: dict[str, tuple] = {"embedding.weight": (vocab_size, d_model)}
    for layer in range(layers):
        fan_in = d_model if layer == 0 else hidden
        shapes[f"gru.weight_ih_l{layer}"] = (3 * hidden, fan_in)
        shapes[f"gru.weight_hh_l{layer}"] = (3 * hidden, hidden)
        shapes[f"gru.bias_ih_l{layer}"] = (3 * hidden,)
        shapes[f"gru.bias_hh_l{layer}"] = (3 * hidden,)
    shapes["head.weight"] = (vocab_size, hidden)
    shapes["head.bias"] = (vocab_size,)
    return shapes


def init_params(
    vocab_size: int, d_model: int, hidden: int, layers: int, seed: int, dtype=np.float32
) -> Params:
    """Seeded initial weights, the same whichever backend trains them.

    GRU and head weights are uniform in +-1/sqrt(fan) as in torch; the embedding is N(0, 1).
    """
    rng = np.random.default_rng(seed)
    params: Params = {}
    for name, shape in param_shapes(vocab_size, d_model, hidden, layers).items():
        if name == "embedding.weight":
            value = rng.standard_normal(shape)
        else:
            bound = 1.0 / np.sqrt(hidden)
            value = rng.uniform(-bound, bound, size=shape)
        params[name] = np.ascontiguousarray(value, dtype=dtype)
    return params


def _sigmoid_(x: np.ndarray) -> np.ndarray:
    """In-place logistic function through tanh, which is stable for any input."""
    x *= 0.5
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5
    return x


def _layer_forward(gi: np.ndarray, w_hh: np.ndarray, b_hn: np.ndarray, h0: np.ndarray):
    """Run one GRU layer over precomputed input projections.

    ``gi`` (T, B, 3H) already holds ``W_ih x + b_ih`` plus ``b_hr, b_hz`` (folded in: they only
    ever appear in a sum). Returns the hidden states (T+1, B, H) and the cache for backward.
    """
    steps, batch, three_h = gi.shape
    hidden = three_h // 3
    dtype = gi.dtype
    hs = np.empty((steps + 1, batch, hidden), dtype)
    rz = np.empty((steps, batch, 2 * hidden), dtype)
    nn = np.empty((steps, batch, hidden), dtype)
    gh = np.empty((steps, batch, three_h), dtype)
    w_hh_t = np.ascontiguousarray(w_hh.T)  # a plain (H, 3H) operand is faster in BLAS
    hs[0] = h0
    two_h = 2 * hidden
    for t in range(steps):
        h = hs[t]
        gh_t = gh[t]
        np.matmul(h, w_hh_t, out=gh_t)
        ghn = gh_t[:, two_h:]
        ghn += b_hn
        rz_t = rz[t]
        np.add(gi[t, :, :two_h], gh_t[:, :two_h], out=rz_t)
        _sigmoid_(rz_t)
        n = nn[t]
        np.multiply(rz_t[:, :hidden], ghn, out=n)
        n += gi[t, :, two_h:]
        np.tanh(n, out=n)
        h_new = hs[t + 1]
        np.subtract(h, n, out=h_new)
        h_new *= rz_t[:, hidden:]
        h_new += n
    return hs, (rz, nn, gh)


def _layer_backward(dh_out: np.ndarray, hs: np.ndarray, cache, w_hh: np.ndarray, dh_last=None):
    """Gradients of one layer given ``dh_out`` (T, B, H), the loss gradient on its outputs.

    Returns ``d`` (T, B, 4H) laid out as ``[da_n, da_r, da_z, da_hn]`` (pre-activation gradients;
    ``d[..., :3H]`` is the input-side gradient in gate order n, r, z and ``d[..., H:]`` the
    hidden-side one in torch's order r, z, n) and the gradient on the initial state.
    """
    rz, nn, gh = cache
    steps, batch, hidden = nn.shape
    dtype = nn.dtype
    r = rz[..., :hidden]
    z = rz[..., hidden:]
    ghn = gh[..., 2 * hidden :]
    # Everything that does not depend on the incoming gradient, for all steps at once.
    a_n = np.multiply(nn, nn)
    np.subtract(1.0, a_n, out=a_n)
    a_n *= 1.0 - z  # dh -> da_n
    a_z = np.subtract(hs[:-1], nn)
    a_z *= z
    a_z *= 1.0 - z  # dh -> da_z
    c_r = np.subtract(1.0, r)
    c_r *= r
    c_r *= ghn  # da_n -> da_r
    d = np.empty((steps, batch, 4 * hidden), dtype)
    dh = np.zeros((batch, hidden), dtype) if dh_last is None else dh_last.astype(dtype, copy=True)
    tmp = np.empty((batch, hidden), dtype)
    h1, h2, h3 = hidden, 2 * hidden, 3 * hidden
    for t in range(steps - 1, -1, -1):
        dh += dh_out[t]
        d_t = d[t]
        da_n = d_t[:, :h1]
        np.multiply(dh, a_n[t], out=da_n)
        np.multiply(da_n, c_r[t], out=d_t[:, h1:h2])
        np.multiply(dh, a_z[t], out=d_t[:, h2:h3])
        np.multiply(da_n, r[t], out=d_t[:, h3:])
        np.matmul(d_t[:, h1:], w_hh, out=tmp)
        dh *= z[t]
        dh += tmp
    return d, dh


def _nrz_to_rzn(x: np.ndarray, hidden: int) -> np.ndarray:
    """Reorder the leading 3H axis from (n, r, z) blocks to torch's (r, z, n)."""
    return np.concatenate([x[hidden : 3 * hidden], x[:hidden]], axis=0)


def _rzn_to_nrz(x: np.ndarray, hidden: int) -> np.ndarray:
    return np.concatenate([x[2 * hidden :], x[: 2 * hidden]], axis=0)


def _hidden_of(params: Params) -> int:
    return params["gru.weight_hh_l0"].shape[1]


def _layers_of(params: Params) -> int:
    return sum(1 for name in params if name.startswith("gru.weight_hh_l"))


def forward(params: Params, x: np.ndarray, h0: np.ndarray | None = None, *, keep: bool = False):
    """Logits (T, B, V) for time-major ids ``x`` (T, B), the final state (L, B, H), and a cache.

    ``h0`` is the initial state (L, B, H); zeros when None. ``keep`` keeps what backward needs.
    """
    hidden = _hidden_of(params)
    layers = _layers_of(params)
    steps, batch = x.shape
    dtype = params["head.weight"].dtype
    if h0 is None:
        h0 = np.zeros((layers, batch, hidden), dtype)
    inp = params["embedding.weight"][x]  # (T, B, D)
    caches = []
    finals = []
    for layer in range(layers):
        w_ih = params[f"gru.weight_ih_l{layer}"]
        b_ih = params[f"gru.bias_ih_l{layer}"].copy()
        b_hh = params[f"gru.bias_hh_l{layer}"]
        b_ih[: 2 * hidden] += b_hh[: 2 * hidden]
        gi = np.matmul(inp.reshape(steps * batch, -1), w_ih.T)
        gi += b_ih
        gi = gi.reshape(steps, batch, 3 * hidden)
        hs, cache = _layer_forward(
            gi, params[f"gru.weight_hh_l{layer}"], b_hh[2 * hidden :], h0[layer]
        )
        if keep:
            caches.append((inp, hs, cache))
        finals.append(hs[-1])
        inp = hs[1:]
    logits = np.matmul(inp.reshape(steps * batch, hidden), params["head.weight"].T)
    logits += params["head.bias"]
    logits = logits.reshape(steps, batch, -1)
    return logits, np.stack(finals), (caches, inp)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return shifted


def nll_sum(logits: np.ndarray, targets: np.ndarray) -> float:
    """Sum over positions of -log p(target); accumulated in float64."""
    flat = logits.reshape(-1, logits.shape[-1])
    logp = log_softmax(flat)
    picked = logp[np.arange(flat.shape[0]), targets.reshape(-1)]
    return -float(picked.sum(dtype=np.float64))


def loss_and_grads(params: Params, x: np.ndarray, y: np.ndarray, h0: np.ndarray | None = None):
    """Mean cross-entropy over a batch and the gradient of every parameter.

    ``x`` and ``y`` are (B, T) input and target ids (batch-major, as users hold them). The dtype
    of the parameters is the dtype of the computation (float32 to train, float64 to check).
    """
    xt = np.ascontiguousarray(x.T)
    yt = np.ascontiguousarray(y.T).reshape(-1)
    steps, batch = xt.shape
    count = steps * batch
    hidden = _hidden_of(params)
    layers = _layers_of(params)
    logits, _, (caches, top) = forward(params, xt, h0, keep=True)
    flat = logits.reshape(count, -1)
    # softmax cross-entropy, with dlogits built in place
    flat -= flat.max(axis=1, keepdims=True)
    np.exp(flat, out=flat)
    sums = flat.sum(axis=1, keepdims=True)
    rows = np.arange(count)
    loss = float(
        np.mean(np.log(sums[:, 0].astype(np.float64)) - np.log(flat[rows, yt].astype(np.float64)))
    )
    flat /= sums
    flat[rows, yt] -= 1.0
    flat *= 1.0 / count
    grads: Params = {}
    top2d = top.reshape(count, hidden)
    grads["head.weight"] = flat.T @ top2d
    grads["head.bias"] = flat.sum(axis=0)
    dh_out = (flat @ params["head.weight"]).reshape(steps, batch, hidden)
    for layer in range(layers - 1, -1, -1):
        inp, hs, cache = caches[layer]
        w_hh = params[f"gru.weight_hh_l{layer}"]
        w_ih = params[f"gru.weight_ih_l{layer}"]
        d, _ = _layer_backward(dh_out, hs, cache, w_hh)
        d2 = d.reshape(count, 4 * hidden)
        d_in = d2[:, : 3 * hidden]  # order n, r, z
        d_hid = d2[:, hidden:]  # order r, z, n
        inp2d = inp.reshape(count, -1)
        grads[f"gru.weight_ih_l{layer}"] = _nrz_to_rzn(d_in.T @ inp2d, hidden)
        grads[f"gru.bias_ih_l{layer}"] = _nrz_to_rzn(d_in.sum(axis=0), hidden)
        grads[f"gru.weight_hh_l{layer}"] = d_hid.T @ hs[:-1].reshape(count, hidden)
        grads[f"gru.bias_hh_l{layer}"] = d_hid.sum(axis=0)
        dh_out = (d_in @ _rzn_to_nrz(w_ih, hidden)).reshape(steps, batch, -1)
    emb = params["embedding.weight"]
    g_emb = np.zeros_like(emb)
    np.add.at(g_emb, xt.reshape(-1), dh_out.reshape(count, -1))
    grads["embedding.weight"] = g_emb
    return loss, grads


def _split(batch: int, parts: int) -> list[slice]:
    """``parts`` contiguous, nearly equal row ranges of a batch (no empty ones)."""
    parts = max(1, min(parts, batch))
    edges = np.linspace(0, batch, parts + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


class NumpyGRUEngine:
    """The NumPy backend behind :class:`textsieve.lm.GRULanguageModel`.

    Holds the live parameters (float32 to train; float64 works too) and the optimizer state.
    With ``threads > 1`` a batch is cut into that many slices of sequences, each run through
    forward and backward on its own thread with a single-threaded BLAS (NumPy releases the GIL
    in matrix products and ufunc loops); the slice gradients are averaged by their sizes, which
    is the gradient of the whole batch. ``threads=None`` uses one per CPU core. BLAS itself is
    held to one thread while the engine computes (see :mod:`textsieve.lm._blas` for why).
    """

    name = "numpy"

    def __init__(self, params: Params, dtype=np.float32, threads: int | None = None) -> None:
        self.dtype = np.dtype(dtype)
        self.weights = {k: np.ascontiguousarray(v, dtype=self.dtype) for k, v in params.items()}
        self.layers = _layers_of(self.weights)
        self.hidden = _hidden_of(self.weights)
        self.threads = max(1, threads if threads is not None else (os.cpu_count() or 1))
        self._pool: ThreadPoolExecutor | None = None
        self._opt: AdamW | None = None
        self._clip: float | None = None

    def _map(self, fn, batch: int) -> list:
        """``fn(rows)`` for each slice of the batch, on the worker threads when there are >1."""
        slices = _split(batch, self.threads) if batch >= 2 * _MIN_ROWS else [slice(0, batch)]
        with blas_threads(1):
            if len(slices) == 1:
                return [fn(slices[0])]
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="textsieve-lm")
            return list(self._pool.map(fn, slices))

    def setup_training(self, *, weight_decay: float, clip: float | None, betas, eps: float) -> None:
        self._opt = AdamW(self.weights, betas=betas, eps=eps, weight_decay=weight_decay)
        self._clip = clip

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray):
        batch = x.shape[0]

        def part(rows: slice):
            # errstate is per thread; a diverging run shows in its loss, which fit() checks
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                return (rows, *loss_and_grads(self.weights, x[rows], y[rows]))

        parts = self._map(part, batch)
        if len(parts) == 1:
            return parts[0][1], parts[0][2]
        loss = 0.0
        grads = {k: np.zeros_like(v) for k, v in self.weights.items()}
        for rows, part_loss, part_grads in parts:
            share = (rows.stop - rows.start) / batch
            loss += share * part_loss
            for k, g in part_grads.items():
                grads[k] += share * g
        return loss, grads

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> tuple[float, float]:
        if self._opt is None:
            raise RuntimeError("setup_training() must be called before train_step()")
        loss, grads = self.loss_and_grads(x, y)
        norm = clip_grads_(grads, self._clip)
        self._opt.step(grads, lr)
        return loss, norm

    def zero_state(self, batch: int) -> np.ndarray:
        return np.zeros((self.layers, batch, self.hidden), self.dtype)

    def nll(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, state: np.ndarray):
        """Sum of -log p(y) over the positions where ``mask`` is true; (B, T) inputs."""

        def part(rows: slice):
            logits, new_state, _ = forward(
                self.weights, np.ascontiguousarray(x[rows].T), state[:, rows]
            )
            logp = log_softmax(logits.astype(np.float64, copy=False))
            yt = np.ascontiguousarray(y[rows].T)[..., None]
            picked = np.take_along_axis(logp, yt, axis=-1)[..., 0]
            return -float(picked[mask[rows].T].sum()), new_state

        parts = self._map(part, x.shape[0])
        return sum(p[0] for p in parts), np.concatenate([p[1] for p in parts], axis=1)

    def logits(self, x: np.ndarray, state: np.ndarray):
        """Logits (B, T, V) as float64 for (B, T) ids, and the state after them."""
        logits, state, _ = forward(self.weights, np.ascontiguousarray(x.T), state)
        return logits.transpose(1, 0, 2).astype(np.float64), state

    def params(self) -> Params:
        return {k: v.astype(np.float32, copy=True) for k, v in self.weights.items()}
