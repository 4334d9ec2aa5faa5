"""AdamW, gradient clipping and the learning-rate schedule, in NumPy.

The arithmetic follows ``torch.optim.AdamW`` and ``torch.nn.utils.clip_grad_norm_`` step for step,
so the NumPy and torch backends take the same steps from the same gradients.
"""

from __future__ import annotations

import math

import numpy as np


def decays(name: str, value: np.ndarray) -> bool:
    """Weight decay applies to matrices only (not to biases, not to the embedding table)."""
    return value.ndim == 2 and not name.startswith("embedding")


def lr_at(progress: float, lr: float, min_lr: float, warmup: float) -> float:
    """Linear warm-up over the first ``warmup`` fraction, then cosine from ``lr`` to ``min_lr``."""
    progress = min(max(progress, 0.0), 1.0)
    if warmup > 0 and progress < warmup:
        return lr * (progress / warmup)
    span = max(1.0 - warmup, 1e-12)
    cosine = 0.5 * (1.0 + math.cos(math.pi * (progress - warmup) / span))
    return min_lr + (lr - min_lr) * cosine


def clip_grads_(grads: dict[str, np.ndarray], max_norm: float | None) -> float:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``.

    Returns the norm before clipping. ``None`` or ``0`` disables clipping.
    """
    total = math.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in grads.values()))
    if max_norm:
        coef = max_norm / (total + 1e-6)
        if coef < 1.0:
            for g in grads.values():
                g *= coef
    return total


class AdamW:
    """Decoupled weight decay Adam over a dict of arrays, updated in place."""

    def __init__(
        self,
        params: dict[str, np.ndarray],
        *,
        betas: tuple[float, float] = (0.9, 0.99),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = params
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads: dict[str, np.ndarray], lr: float) -> None:
        self.t += 1
        bc1 = 1.0 - self.beta1**self.t
        bc2_sqrt = math.sqrt(1.0 - self.beta2**self.t)
        for name, p in self.params.items():
            g = grads[name]
            m, v = self.m[name], self.v[name]
            if self.weight_decay and decays(name, p):
                p *= 1.0 - lr * self.weight_decay
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * (g * g)
            denom = np.sqrt(v)
            denom /= bc2_sqrt
            denom += self.eps
            p -= (lr / bc1) * (m / denom)
