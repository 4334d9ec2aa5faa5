"""The array kernels the stages share: document numbers and partitions, packed pairs, the star
edges of the buckets and runs of equal rows (NumPy; the MinHash kernels and the dedup rule are
the Rust core's)."""

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


_FIB = np.uint64(0x9E3779B97F4A7C15)


def _shard_of(nodes: np.ndarray, n: int) -> np.ndarray:
    """The shard of each document number: multiply-shift (Fibonacci) hashing, then mod ``n``, so
    that neighbouring numbers (one partition's documents) spread over the shards."""
    h = (np.asarray(nodes).astype(np.uint64) * _FIB) >> np.uint64(32)
    return (h % np.uint64(n)).astype(np.int64)


def _pack(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return (lo.astype(np.uint64) << np.uint64(32)) | hi.astype(np.uint64)


def _unpack(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (p >> np.uint64(32)).astype(np.int64), (p & np.uint64(0xFFFFFFFF)).astype(np.int64)


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


def _bucket_stars(band: np.ndarray, key: np.ndarray, gid: np.ndarray) -> np.ndarray:
    """The candidate edges of the ``(band, key)`` buckets, as stars: each bucket's smallest
    document with every other member, packed ``lo << 32 | hi``, distinct. Linear in the bucket
    sizes (not ``m(m-1)/2``), with the connected components of every pair of a bucket."""
    if len(gid) < 2:
        return np.empty(0, np.uint64)
    order = np.lexsort((gid, key, band))
    band, key, gid = band[order], key[order], gid[order]
    starts, sizes = _groups(band, key)
    centre = np.repeat(gid[starts], sizes)
    other = gid != centre
    return np.unique(_pack(centre[other], gid[other]))
