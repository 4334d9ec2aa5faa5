"""The array kernels the stages share: document numbers and partitions, packed pairs, the pairs
of a bucket, runs of equal rows, and exact-copy classes (NumPy; the MinHash and Jaccard kernels
are the Rust core's)."""

from __future__ import annotations

from typing import Any

import numpy as np

from textsieve import _core


def _hasher(s: dict[str, Any]) -> Any:
    return _core.MinHasherCore(
        s["num_perm"], s["seed"], s["scheme"], s["shingle"], s["k"], s["normalize"]
    )


def _part_of(offsets: np.ndarray, gids: np.ndarray) -> np.ndarray:
    """The partition of each global document number (``offsets``: first number of each)."""
    return np.searchsorted(offsets, gids, side="right") - 1


def _pack(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return (lo.astype(np.uint64) << np.uint64(32)) | hi.astype(np.uint64)


def _unpack(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (p >> np.uint64(32)).astype(np.int64), (p & np.uint64(0xFFFFFFFF)).astype(np.int64)


def _bucket_pairs(band: np.ndarray, key: np.ndarray, gid: np.ndarray) -> np.ndarray:
    """Every pair of documents sharing a ``(band, key)`` bucket, packed ``lo << 32 | hi``, distinct.
    Work is proportional to the number of pairs (a bucket of m documents gives m(m-1)/2)."""
    if len(gid) < 2:
        return np.empty(0, np.uint64)
    order = np.lexsort((gid, key, band))
    band, key, gid = band[order], key[order], gid[order]
    new = np.empty(len(gid), bool)
    new[0] = True
    new[1:] = (band[1:] != band[:-1]) | (key[1:] != key[:-1])
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, len(gid)))
    size_of = np.repeat(sizes, sizes)
    pos = np.arange(len(gid)) - np.repeat(starts, sizes)
    active = np.flatnonzero(size_of >= 2)
    out = []
    d = 1
    while len(active):
        active = active[pos[active] + d < size_of[active]]
        if not len(active):
            break
        out.append(_pack(gid[active], gid[active + d]))
        d += 1
    if not out:
        return np.empty(0, np.uint64)
    return np.unique(np.concatenate(out))


def _ranks(counts: np.ndarray) -> np.ndarray:
    """``0, 1, ..., c - 1`` for each ``c`` in ``counts``, concatenated."""
    counts = np.asarray(counts, np.int64)
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


def _groups(*cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and sizes of the runs of equal rows in sorted columns."""
    n = len(cols[0])
    new = np.zeros(n, bool)
    if n:
        new[0] = True
        for c in cols:
            new[1:] |= c[1:] != c[:-1]
    starts = np.flatnonzero(new)
    return starts, np.diff(np.append(starts, n))


class _Classes:
    """Exact-copy classes: ``rep`` (the class's smallest document) and ``member`` (the rep
    included), sorted by ``(rep, member)``. A document in no class is its own class of one."""

    def __init__(self, rep: np.ndarray, member: np.ndarray) -> None:
        order = np.lexsort((member, rep))
        self.member = member[order].astype(np.int64)
        starts, self.sizes = _groups(rep[order])
        self.starts = starts
        self.reps = rep[order][starts].astype(np.int64)

    def _find(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not len(self.reps):
            return np.zeros(len(g), np.int64), np.zeros(len(g), bool)
        pos = np.minimum(np.searchsorted(self.reps, g), len(self.reps) - 1)
        return pos, self.reps[pos] == g

    def size(self, g: np.ndarray) -> np.ndarray:
        pos, hit = self._find(g)
        return np.where(hit, self.sizes[pos] if len(self.reps) else 1, 1).astype(np.int64)

    def nth(self, g: np.ndarray, k: np.ndarray) -> np.ndarray:
        """The ``k``-th smallest member of the class of rep ``g`` (``k < size(g)``)."""
        pos, hit = self._find(g)
        if not len(self.reps):
            return g
        at = np.minimum(self.starts[pos] + k, len(self.member) - 1)
        return np.where(hit, self.member[at], g)

    def cross(
        self, a: np.ndarray, b: np.ndarray, x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every pair ``(member of a[n], member of b[n])`` with the value ``x[n]``, ordered
        ``lo < hi``: what the rep pair ``(a[n], b[n])`` stands for."""
        sa, sb = self.size(a), self.size(b)
        n = sa * sb
        k = np.repeat(np.arange(len(a)), n)
        t = _ranks(n)
        ai, bj = self.nth(a[k], t // sb[k]), self.nth(b[k], t % sb[k])
        return np.minimum(ai, bj), np.maximum(ai, bj), x[k]

    def cross_star(
        self, a: np.ndarray, b: np.ndarray, x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the rep pair ``(a[n], b[n])`` must stand for when only pairs with a rep can decide
        (the greedy rule and connected components, not a list of every pair): every member of
        ``a[n]``'s class with ``b[n]``, and ``a[n]`` with every other member of ``b[n]``'s class,
        ordered ``lo < hi``. A class's first document is the only member that can be kept (the
        others are its copies), so a document's kept neighbours are all reps, and the components
        are the same: ``|A| + |B| - 1`` pairs instead of ``|A| |B|``."""
        sa, sb = self.size(a), self.size(b)
        ka = np.repeat(np.arange(len(a)), sa)
        ai, bj = self.nth(a[ka], _ranks(sa)), b[ka]
        kb = np.repeat(np.arange(len(b)), sb - 1)
        ai2, bj2 = a[kb], self.nth(b[kb], _ranks(sb - 1) + 1)
        p, q = np.concatenate([ai, ai2]), np.concatenate([bj, bj2])
        return np.minimum(p, q), np.maximum(p, q), np.concatenate([x[ka], x[kb]])

    def within_star(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """``(rep, member)`` for every other member of the classes whose rep is in ``[lo, hi)``:
        the pairs within a class that decide (see :meth:`cross_star`)."""
        sel = np.flatnonzero((self.reps >= lo) & (self.reps < hi))
        starts, others = self.starts[sel], self.sizes[sel] - 1
        elem = np.repeat(starts, others) + 1 + _ranks(others)
        return np.repeat(self.reps[sel], others), self.member[elem]

    def within(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Every pair of members ``lo < hi`` of the classes whose rep is in ``[lo, hi)``."""
        sel = np.flatnonzero((self.reps >= lo) & (self.reps < hi))
        starts, sizes = self.starts[sel], self.sizes[sel]
        elem = np.repeat(starts, sizes) + _ranks(sizes)  # indices into member
        later = np.repeat(sizes, sizes) - 1 - _ranks(sizes)  # members after each one
        first = np.repeat(elem, later)
        second = first + 1 + _ranks(later)
        return self.member[first], self.member[second]


def _estimate(a: np.ndarray, b: np.ndarray) -> float:
    return int(np.count_nonzero(a == b)) / len(a) if len(a) else 0.0
