"""Character language models with one API over two backends (NumPy always, PyTorch when installed).

>>> import textsieve as ts
>>> from textsieve.lm import GRULanguageModel
>>> text = "to be or not to be, that is the question. " * 40
>>> vocab = ts.Vocab.from_texts([text], normalize=False)
>>> lm = GRULanguageModel(vocab, d_model=16, hidden=32, backend="numpy", seed=0)
>>> history = lm.fit(text, steps=30, batch=8, block=32, lr=1e-2, progress=False)
>>> round(lm.evaluate(text).nll, 1) < 2.5
True
>>> len(lm.generate("to be", length=20, seed=1))
20
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from textsieve._checks import check_float, check_int
from textsieve._progress import Progress
from textsieve.io import atomic_write
from textsieve.lm import _numpy_gru
from textsieve.lm._mlp import NumpyMLPEngine, mlp_init_params, mlp_param_shapes
from textsieve.lm._optim import lr_at
from textsieve.lm.history import History, HistoryRow

FORMAT = "textsieve.lm"
FORMAT_VERSION = 1
BACKENDS = ("auto", "numpy", "torch")
TORCH_INSTALL_HINT = (
    "backend='torch' needs PyTorch, which is not installed; install it with "
    "`pip install 'textsieve[torch]'` (or `pip install torch`), or use backend='numpy'"
)


@dataclass(frozen=True)
class Evaluation:
    """Mean negative log-likelihood (nats per predicted character) and its perplexity."""

    nll: float
    perplexity: float
    predicted: int

    @property
    def bits_per_char(self) -> float:
        return self.nll / math.log(2)


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def resolve_backend(backend: str) -> str:
    """``"auto"`` -> torch when importable, else numpy; ``"torch"`` without torch -> ImportError."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "numpy":
        return "numpy"
    if torch_available():
        return "torch"
    if backend == "torch":
        raise ImportError(TORCH_INSTALL_HINT)
    return "numpy"


def _check_vocab(vocab: Any) -> None:
    for attr in ("encode", "decode", "tokens", "to_json"):
        if not hasattr(vocab, attr):
            raise TypeError(
                f"vocab must be a textsieve.Vocab (missing .{attr}), got {type(vocab).__name__}"
            )


class CharLanguageModel:
    """What every character model here shares: training loop, evaluation, generation, save/load.

    Subclasses set ``kind`` and provide ``_make_engine`` and ``_shapes``.
    """

    kind = "abstract"

    def __init__(self, vocab: Any, config: dict[str, Any], params: dict[str, np.ndarray]) -> None:
        _check_vocab(vocab)
        self.vocab = vocab
        self.config = dict(config)
        self._engine = self._make_engine(params)

    # -- to be provided by subclasses -------------------------------------------------------
    def _make_engine(self, params: dict[str, np.ndarray]):  # pragma: no cover - abstract
        raise NotImplementedError

    def _shapes(self) -> dict[str, tuple]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- common -----------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """The backend doing the arithmetic: ``"numpy"`` or ``"torch"``."""
        return self._engine.name

    @property
    def vocab_size(self) -> int:
        return len(self.vocab.tokens)

    def parameters(self) -> dict[str, np.ndarray]:
        """A float32 copy of every parameter, by backend-neutral name."""
        return self._engine.params()

    def num_parameters(self) -> int:
        return int(sum(v.size for v in self._engine.params().values()))

    def encode(self, text: str | np.ndarray, *, name: str = "text") -> np.ndarray:
        """Ids (int64) of ``text``; unknown characters become the vocabulary's ``<unk>`` id."""
        if isinstance(text, str):
            ids = np.asarray(self.vocab.encode(text))
        elif (
            isinstance(text, np.ndarray)
            and text.ndim == 1
            and np.issubdtype(text.dtype, np.integer)
        ):
            ids = text
        else:
            raise TypeError(
                f"{name} must be a str or a 1-D integer array, got {type(text).__name__}"
            )
        ids = ids.astype(np.int64, copy=False)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"{name} holds ids outside the vocabulary (size {self.vocab_size})")
        return ids

    def fit(
        self,
        train: str | np.ndarray,
        val: str | np.ndarray | None = None,
        *,
        steps: int | None = 2000,
        batch: int = 64,
        block: int = 128,
        lr: float = 3e-3,
        min_lr: float | None = None,
        warmup: float = 0.02,
        weight_decay: float = 0.0,
        clip: float | None = 1.0,
        betas: tuple[float, float] = (0.9, 0.99),
        seed: int = 0,
        time_limit: float | None = None,
        eval_every: int | None = None,
        eval_chars: int | None = None,
        history_csv: str | os.PathLike[str] | None = None,
        history_svg: str | os.PathLike[str] | None = None,
        references: dict[str, float] | None = None,
        progress: bool | None = None,
    ) -> History:
        """Train on random ``block``-character windows of ``train`` with AdamW.

        The learning rate warms up linearly over the first ``warmup`` fraction of training, then
        follows a cosine down to ``min_lr`` (default ``lr / 10``). Training stops after ``steps``
        steps or ``time_limit`` seconds of training time, whichever comes first; with a time
        limit the schedule follows the elapsed fraction of it. Every ``eval_every`` steps (default:
        20 points per run) the mean training loss and the validation loss (over the first
        ``eval_chars`` characters of ``val``, default all) are appended to the history, which is
        rewritten to ``history_csv`` / ``history_svg`` each time. ``History.final_val_loss`` is
        always over the whole of ``val``: with ``eval_chars`` set, one last row scores it all.
        """
        if steps is None and time_limit is None:
            raise ValueError("steps and time_limit cannot both be None: training would not stop")
        if steps is not None:
            steps = check_int("steps", steps, 1)
        batch = check_int("batch", batch, 1)
        block = check_int("block", block, 1)
        lr = check_float("lr", lr, above=0.0)
        min_lr = lr / 10 if min_lr is None else check_float("min_lr", min_lr, 0.0)
        warmup = check_float("warmup", warmup, 0.0)
        if warmup >= 1:
            raise ValueError(f"warmup is a fraction of training and must be < 1, got {warmup}")
        weight_decay = check_float("weight_decay", weight_decay, 0.0)
        if clip is not None:
            clip = check_float("clip", clip, 0.0)
        if time_limit is not None:
            time_limit = check_float("time_limit", time_limit, above=0.0)
        if eval_every is None:
            eval_every = max(1, steps // 20) if steps else 100
        eval_every = check_int("eval_every", eval_every, 1)
        train_ids = self.encode(train, name="train")
        if train_ids.size < block + 1:
            raise ValueError(
                f"train has {train_ids.size} characters; block={block} needs at least {block + 1}"
            )
        val_ids = None if val is None else self.encode(val, name="val")
        if val_ids is not None and val_ids.size < 2:
            raise ValueError("val must hold at least 2 characters (one to predict)")
        val_probe = (
            val_ids if (val_ids is None or eval_chars is None) else val_ids[: eval_chars + 1]
        )

        rng = np.random.default_rng(seed)
        engine = self._engine
        engine.setup_training(weight_decay=weight_decay, clip=clip, betas=betas, eps=1e-8)
        history = History()
        offsets = np.arange(block + 1)
        total_chars = steps * batch * block if steps else None
        wall_start = time.perf_counter()
        train_seconds = 0.0
        step = 0
        window_loss, window_steps = 0.0, 0
        bar = Progress(total=total_chars, unit="chars", desc="lm train", enabled=progress)
        try:
            while True:
                frac = step / steps if steps else 0.0
                if time_limit:
                    frac = max(frac, train_seconds / time_limit)
                if frac >= 1.0:
                    break
                cur_lr = lr_at(frac, lr, min_lr, warmup)
                starts = rng.integers(0, train_ids.size - block, size=batch)
                chunk = train_ids[starts[:, None] + offsets]
                t0 = time.perf_counter()
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    # a diverging run is caught just below, by its loss
                    loss, _ = engine.train_step(chunk[:, :-1], chunk[:, 1:], cur_lr)
                train_seconds += time.perf_counter() - t0
                step += 1
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        f"training diverged at step {step} (loss {loss}); try a smaller lr "
                        f"(now {lr}) or clip"
                    )
                window_loss += loss
                window_steps += 1
                bar.desc = f"lm train loss {loss:.3f}"
                bar.update(batch * block)
                done = (steps is not None and step >= steps) or (
                    time_limit is not None and train_seconds >= time_limit
                )
                if step % eval_every == 0 or done:
                    scored = None if val_probe is None else self._nll_ids(val_probe)
                    history.append(
                        HistoryRow(
                            step=step,
                            chars=step * batch * block,
                            train_seconds=round(train_seconds, 3),
                            wall_seconds=round(time.perf_counter() - wall_start, 3),
                            lr=cur_lr,
                            train_loss=window_loss / window_steps,
                            val_loss=None if scored is None else scored.nll,
                            val_chars=None if scored is None else scored.predicted,
                        )
                    )
                    window_loss, window_steps = 0.0, 0
                    self._write_history(history, history_csv, history_svg, references)
        finally:
            bar.close()
        if val_ids is not None and val_probe is val_ids:
            history.final_val_loss = history.rows[-1].val_loss
        elif val_ids is not None:
            # the probe was a prefix: one more row scores the whole validation text
            full = self._nll_ids(val_ids)
            last = history.rows[-1]
            history.append(
                replace(
                    last,
                    wall_seconds=round(time.perf_counter() - wall_start, 3),
                    val_loss=full.nll,
                    val_chars=full.predicted,
                )
            )
            history.final_val_loss = full.nll
            self._write_history(history, history_csv, history_svg, references)
        return history

    @staticmethod
    def _write_history(history, csv_path, svg_path, references) -> None:
        if csv_path is not None:
            history.write_csv(csv_path)
        if svg_path is not None:
            history.write_svg(svg_path, references=references)

    def evaluate(
        self, text: str | np.ndarray, *, streams: int = 32, warmup: int = 256, block: int = 256
    ) -> Evaluation:
        """Mean -log p over every character of ``text`` after the first, given all before it.

        The text is read in ``streams`` contiguous parts run side by side, each in consecutive
        ``block``-step chunks that carry the recurrent state forward. A part other than the first
        starts ``warmup`` characters early (scoring nothing there) so its state has seen the
        characters before it; the result matches one sequential pass to a few 1e-4.
        """
        streams = check_int("streams", streams, 1)
        warmup = check_int("warmup", warmup, 0)
        block = check_int("block", block, 1)
        ids = self.encode(text)
        if ids.size < 2:
            raise ValueError(f"text must hold at least 2 characters, got {ids.size}")
        return self._nll_ids(ids, streams=streams, warmup=warmup, block=block)

    def _nll_ids(self, ids: np.ndarray, *, streams: int = 32, warmup: int = 256, block: int = 256):
        pairs = ids.size - 1
        streams = max(1, min(streams, pairs // max(warmup, 1)))
        warm = warmup if streams > 1 else 0
        length = -(-pairs // streams)
        k = np.arange(length + warm)
        idx = np.empty((streams, k.size), np.int64)
        idx[0] = k
        scored = np.empty((streams, k.size), bool)
        scored[0] = k < length
        for s in range(1, streams):
            idx[s] = s * length - warm + k
            scored[s] = k >= warm
        scored &= idx < pairs
        np.minimum(idx, pairs - 1, out=idx)
        x, y = ids[:-1][idx], ids[1:][idx]
        state = self._engine.zero_state(streams)
        total = 0.0
        for c in range(0, k.size, block):
            part, state = self._engine.nll(
                x[:, c : c + block], y[:, c : c + block], scored[:, c : c + block], state
            )
            total += part
        count = int(scored.sum())
        nll = total / count
        return Evaluation(nll=nll, perplexity=math.exp(nll), predicted=count)

    def logits(self, text: str | np.ndarray) -> np.ndarray:
        """Next-character logits (len(text), V) as float64, reading ``text`` from a fresh state."""
        ids = self.encode(text)
        out, _ = self._engine.logits(ids[None, :], self._engine.zero_state(1))
        return out[0]

    def generate(
        self,
        prompt: str = "",
        length: int = 200,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        greedy: bool = False,
        seed: int = 0,
    ) -> str:
        """Continue ``prompt`` by ``length`` characters (the continuation is returned).

        Sampling draws from softmax(logits / temperature), restricted to the ``top_k`` most
        likely characters when given; ``greedy`` takes the most likely one. The same seed gives
        the same text. Unknown prompt characters are read as ``<unk>``, which is never produced.
        An empty prompt starts after a newline (or the first token when there is none).
        """
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
        length = check_int("length", length, 0)
        temperature = check_float("temperature", temperature, above=0.0)
        if top_k is not None:
            top_k = check_int("top_k", top_k, 1)
        rng = np.random.default_rng(seed)
        ids = self.encode(prompt, name="prompt") if prompt else self._start_ids()
        unk = getattr(self.vocab, "unk_id", None)
        logits, state = self._engine.logits(ids[None, :], self._engine.zero_state(1))
        last = logits[0, -1]
        out: list[int] = []
        for _ in range(length):
            z = last.copy()
            if unk is not None:
                z[unk] = -np.inf
            if greedy:
                nxt = int(np.argmax(z))
            else:
                z = z / temperature
                if top_k is not None and top_k < z.size:
                    cut = np.partition(z, -top_k)[-top_k]
                    z[z < cut] = -np.inf
                p = np.exp(z - z.max())
                p /= p.sum()
                nxt = int(rng.choice(p.size, p=p))
            out.append(nxt)
            step_logits, state = self._engine.logits(np.array([[nxt]]), state)
            last = step_logits[0, -1]
        return self.vocab.decode(np.asarray(out, dtype=np.int32))

    def _start_ids(self) -> np.ndarray:
        tokens = list(self.vocab.tokens)
        start = tokens.index("\n") if "\n" in tokens else 0
        return np.array([start], np.int64)

    # -- save / load ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write weights, vocabulary and configuration to one backend-neutral ``.npz`` file.

        ``np.savez`` format: a ``__header__`` entry (UTF-8 JSON as uint8: format, version, model
        kind, config, vocabulary JSON, shapes) and one float32 array per parameter.
        """
        params = self.parameters()
        blob = np.frombuffer(json.dumps(self._header(params)).encode("utf-8"), dtype=np.uint8)
        with atomic_write(path, "wb") as fh:
            np.savez(fh, __header__=blob, **params)  # type: ignore[arg-type]

    def _header(self, params: dict[str, np.ndarray]) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "model": self.kind,
            "config": self.config,
            "vocab": self.vocab.to_json(),
            "shapes": {k: list(v.shape) for k, v in params.items()},
            "dtype": "float32",
        }

    def __getstate__(self) -> dict[str, Any]:
        params = self.parameters()
        return {"header": self._header(params), "params": params, "backend": self.backend}

    def __setstate__(self, state: dict[str, Any]) -> None:
        header = _check_header(state["header"], "pickled state")
        model = _build(header, state["params"], "pickled state", backend=state["backend"])
        self.__dict__.update(model.__dict__)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        backend: str = "auto",
        device: str | None = None,
        threads: int | None = None,
    ):
        """Read a model written by :meth:`save`, whichever backend trained it."""
        model = load(path, backend=backend, device=device, threads=threads)
        if cls is not CharLanguageModel and not isinstance(model, cls):
            raise ValueError(f"{path} holds a {model.kind}, not a {cls.kind}")
        return model

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.config.items() if k != "seed")
        return f"{type(self).__name__}(vocab={self.vocab_size} tokens, {cfg}, backend={self.backend!r})"


class GRULanguageModel(CharLanguageModel):
    """embedding -> GRU (``layers`` deep) -> linear head over the vocabulary.

    ``backend="auto"`` uses torch when it is importable, else NumPy; both start from the same
    seeded weights, draw the same batches and give the same numbers to float32 round-off.
    ``device`` (torch only): ``"cpu"``, ``"cuda"``, or None for CUDA when available.
    ``threads`` (numpy only): worker threads over the sequences of a batch; None: one per core.
    """

    kind = "GRULanguageModel"

    def __init__(
        self,
        vocab: Any,
        d_model: int = 64,
        hidden: int = 256,
        layers: int = 1,
        backend: str = "auto",
        *,
        seed: int = 0,
        device: str | None = None,
        threads: int | None = None,
        _params: dict[str, np.ndarray] | None = None,
    ) -> None:
        if threads is not None:
            threads = check_int("threads", threads, 1)
        self._threads = threads
        config = {
            "d_model": check_int("d_model", d_model, 1),
            "hidden": check_int("hidden", hidden, 1),
            "layers": check_int("layers", layers, 1),
            "seed": check_int("seed", seed, 0),
        }
        self._backend_choice = resolve_backend(backend)
        self._device = device
        _check_vocab(vocab)
        if _params is None:
            _params = _numpy_gru.init_params(len(vocab.tokens), d_model, hidden, layers, seed)
        super().__init__(vocab, config, _params)

    def _shapes(self) -> dict[str, tuple]:
        c = self.config
        return _numpy_gru.param_shapes(self.vocab_size, c["d_model"], c["hidden"], c["layers"])

    def _make_engine(self, params: dict[str, np.ndarray]):
        if self._backend_choice == "torch":
            from textsieve.lm._torch_gru import TorchGRUEngine

            c = self.config
            return TorchGRUEngine(
                params,
                vocab_size=len(self.vocab.tokens),
                d_model=c["d_model"],
                hidden=c["hidden"],
                layers=c["layers"],
                device=self._device,
            )
        return _numpy_gru.NumpyGRUEngine(params, threads=self._threads)


class MLPBigramLM(CharLanguageModel):
    """One-hot current character -> ReLU hidden layer -> logits of the next character.

    It has no memory, so it can learn at most the bigram table. Untrained, its outputs are
    nearly uniform, so exp(loss) starts near the vocabulary size: a model that knows nothing
    is as unsure as a uniform guess among ``len(vocab)`` characters. NumPy only.
    """

    kind = "MLPBigramLM"

    def __init__(
        self,
        vocab: Any,
        hidden: int = 64,
        *,
        seed: int = 0,
        backend: str = "numpy",
        _params: dict[str, np.ndarray] | None = None,
    ) -> None:
        if backend not in ("auto", "numpy"):
            raise ValueError(f"MLPBigramLM runs on the numpy backend only, got backend={backend!r}")
        config = {"hidden": check_int("hidden", hidden, 1), "seed": check_int("seed", seed, 0)}
        _check_vocab(vocab)
        if _params is None:
            _params = mlp_init_params(len(vocab.tokens), hidden, seed)
        super().__init__(vocab, config, _params)

    def _shapes(self) -> dict[str, tuple]:
        return mlp_param_shapes(self.vocab_size, self.config["hidden"])

    def _make_engine(self, params: dict[str, np.ndarray]):
        return NumpyMLPEngine(params)

    def evaluate(self, text, *, streams: int = 32, warmup: int = 0, block: int = 4096):
        """Mean -log p of each character after the first given the one before it."""
        return super().evaluate(text, streams=streams, warmup=warmup, block=block)


MODELS: dict[str, type[CharLanguageModel]] = {
    GRULanguageModel.kind: GRULanguageModel,
    MLPBigramLM.kind: MLPBigramLM,
}


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON header of a saved model, checked for format and version."""
    with np.load(path, allow_pickle=False) as npz:
        return _header(npz, path)


def _header(npz, path) -> dict[str, Any]:
    if "__header__" not in npz.files:
        raise ValueError(f"{path} is not a textsieve language model (no __header__ entry)")
    return _check_header(json.loads(bytes(npz["__header__"]).decode("utf-8")), path)


def _check_header(header: dict[str, Any], source) -> dict[str, Any]:
    if header.get("format") != FORMAT:
        raise ValueError(f"{source} has format {header.get('format')!r}, expected {FORMAT!r}")
    if header.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{source} has format version {header.get('version')!r}; this textsieve reads "
            f"version {FORMAT_VERSION}"
        )
    if header.get("model") not in MODELS:
        raise ValueError(f"{source} holds an unknown model kind {header.get('model')!r}")
    return header


def load(
    path: str | os.PathLike[str],
    *,
    backend: str = "auto",
    device: str | None = None,
    threads: int | None = None,
):
    """Load any model written by ``save``; weights are checked against the header's shapes."""
    with np.load(path, allow_pickle=False) as npz:
        header = _header(npz, path)
        params = {k: np.asarray(npz[k], dtype=np.float32) for k in npz.files if k != "__header__"}
    return _build(header, params, path, backend=backend, device=device, threads=threads)


def _build(
    header: dict[str, Any],
    params: dict[str, np.ndarray],
    source,
    *,
    backend: str = "auto",
    device: str | None = None,
    threads: int | None = None,
):
    from textsieve.vocab import Vocab

    vocab = Vocab.from_json(header["vocab"])
    cls: Any = MODELS[header["model"]]
    config = dict(header["config"])
    kwargs: dict[str, Any] = {"backend": backend}
    if cls is GRULanguageModel:
        kwargs["device"] = device
        kwargs["threads"] = threads
    elif backend not in ("auto", "numpy"):
        raise ValueError(f"{header['model']} runs on the numpy backend only, got {backend!r}")
    else:
        kwargs["backend"] = "numpy"
    # check before building: a truncated or edited file fails here with the parameter's name
    probe = cls.__new__(cls)
    probe.vocab, probe.config = vocab, config
    expected = probe._shapes()
    if set(expected) != set(params):
        missing = sorted(set(expected) - set(params))
        extra = sorted(set(params) - set(expected))
        raise ValueError(
            f"{source}: parameters do not match the config (missing {missing}, extra {extra})"
        )
    for name, shape in expected.items():
        if tuple(params[name].shape) != tuple(shape):
            raise ValueError(
                f"{source}: parameter {name} has shape {params[name].shape}, "
                f"expected {tuple(shape)}"
            )
    return cls(vocab, **config, **kwargs, _params=params)
