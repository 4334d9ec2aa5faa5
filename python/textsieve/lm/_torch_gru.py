"""PyTorch backend of the GRU language model. Imported only when the torch backend is used.

The module's ``state_dict`` names and shapes are the backend-neutral parameter names, so weights
move between backends without renaming. Batches, initial weights and the learning-rate schedule
come from the shared NumPy code; only the arithmetic runs in torch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from textsieve.lm._optim import decays


class TorchGRULM(nn.Module):
    """embedding -> GRU -> linear head, the same network as the NumPy backend."""

    def __init__(self, vocab_size: int, d_model: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.gru = nn.GRU(d_model, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None):
        out, h = self.gru(self.embedding(x), h)
        return self.head(out), h


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class TorchGRUEngine:
    """Same interface as :class:`textsieve.lm._numpy_gru.NumpyGRUEngine`."""

    name = "torch"

    def __init__(
        self,
        params: dict[str, np.ndarray],
        *,
        vocab_size: int,
        d_model: int,
        hidden: int,
        layers: int,
        device: str | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.layers = layers
        self.hidden = hidden
        self.module = TorchGRULM(vocab_size, d_model, hidden, layers).to(self.device)
        state = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in params.items()}
        self.module.load_state_dict(state, strict=True)
        self._opt: torch.optim.Optimizer | None = None
        self._clip: float | None = None

    def _ids(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64)).to(self.device)

    def setup_training(self, *, weight_decay: float, clip: float | None, betas, eps: float) -> None:
        named = list(self.module.named_parameters())
        groups = [
            {"params": [p for n, p in named if decays(n, p)], "weight_decay": weight_decay},
            {"params": [p for n, p in named if not decays(n, p)], "weight_decay": 0.0},
        ]
        self._opt = torch.optim.AdamW(groups, lr=0.0, betas=betas, eps=eps)
        self._clip = clip

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> tuple[float, float]:
        if self._opt is None:
            raise RuntimeError("setup_training() must be called before train_step()")
        self.module.train()
        logits, _ = self.module(self._ids(x))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), self._ids(y).reshape(-1))
        self._opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in self.module.parameters() if p.grad is not None]
        if self._clip:
            norm = torch.nn.utils.clip_grad_norm_(params, self._clip)
        else:
            norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
        for group in self._opt.param_groups:
            group["lr"] = lr
        self._opt.step()
        return float(loss.detach()), float(norm)

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Loss and gradients without an optimizer step (for parity checks)."""
        self.module.zero_grad(set_to_none=True)
        logits, _ = self.module(self._ids(x))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), self._ids(y).reshape(-1))
        loss.backward()
        grads = {n: p.grad.detach().cpu().numpy().copy() for n, p in self.module.named_parameters()}
        return float(loss.detach()), grads

    def zero_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(self.layers, batch, self.hidden, device=self.device)

    @torch.no_grad()
    def nll(self, x: np.ndarray, y: np.ndarray, mask: np.ndarray, state: torch.Tensor):
        self.module.eval()
        logits, state = self.module(self._ids(x), state)
        logp = torch.log_softmax(logits.double(), dim=-1)
        picked = logp.gather(-1, self._ids(y)[..., None])[..., 0]
        m = torch.from_numpy(np.ascontiguousarray(mask)).to(self.device)
        return -float(picked[m].sum()), state

    @torch.no_grad()
    def logits(self, x: np.ndarray, state: torch.Tensor):
        self.module.eval()
        logits, state = self.module(self._ids(x), state)
        return logits.double().cpu().numpy(), state

    def params(self) -> dict[str, np.ndarray]:
        return {
            k: v.detach().cpu().numpy().astype(np.float32, copy=True)
            for k, v in self.module.state_dict().items()
        }
