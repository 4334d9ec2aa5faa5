"""Pure-Python reference (stdlib only) of every dedup kernel: the specification the Rust core
(``rust/shingle.rs``, ``minhash.rs``, ``lsh.rs``, ``cluster.rs``) is tested against.

Written for clarity, not speed: shingles, ``hash64``, the three MinHash schemes (native,
datasketch legacy, datasketch affine32, with NumPy's MT19937 ``RandomState`` re-implemented),
LSH parameter choice, band keys, candidate pairs, exact verification, union-find clusters and
the keep policy.

>>> sorted(shingles("Ab  c", k=3))
['ab ', 'b c']
>>> signature("hello world", num_perm=4, seed=1) == signature("HELLO   world", num_perm=4, seed=1)
True
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Any

MASK32 = (1 << 32) - 1
MASK64 = (1 << 64) - 1
MERSENNE61 = (1 << 61) - 1

#: Unicode White_Space (Rust's ``char::is_whitespace``); note Python's ``str.split()`` differs.
WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


# --- normalization and shingles ---------------------------------------------------------------


def split_ws(text: str) -> list[str]:
    """The runs of non-White_Space characters of ``text``."""
    words, cur = [], []
    for c in text:
        if c in WHITESPACE:
            if cur:
                words.append("".join(cur))
                cur = []
        else:
            cur.append(c)
    if cur:
        words.append("".join(cur))
    return words


def normalize(text: str, mode: str = "default") -> str:
    """``none``: as is; ``default``: lowercase, White_Space runs -> one space, stripped;
    ``nfkc``: NFKC, then ``default``."""
    if mode == "none":
        return text
    if mode == "nfkc":
        text = unicodedata.normalize("NFKC", text)
    elif mode != "default":
        raise ValueError(f"normalize: expected 'default', 'nfkc' or 'none', got {mode!r}")
    return " ".join(split_ws(text.lower()))


def shingle_list(text: str, k: int = 5, shingle: str = "char", norm: str = "default") -> list[str]:
    """Every shingle occurrence, in text order. A non-empty text shorter than one shingle gives
    one shingle (the whole text, or all its words); an empty one gives none."""
    s = normalize(text, norm)
    if shingle == "char":
        if not s:
            return []
        if len(s) <= k:
            return [s]
        return [s[i : i + k] for i in range(len(s) - k + 1)]
    if shingle == "word":
        words = split_ws(s)
        if not words:
            return []
        m = min(k, len(words))
        return [" ".join(words[i : i + m]) for i in range(len(words) - m + 1)]
    raise ValueError(f"shingle: expected 'char' or 'word', got {shingle!r}")


def shingles(text: str, k: int = 5, shingle: str = "char", norm: str = "default") -> set[str]:
    """The shingle set."""
    return set(shingle_list(text, k, shingle, norm))


def jaccard(a: set, b: set) -> float:
    """``|a & b| / |a | b|``; 0.0 when both are empty (empty texts never match)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


# --- hashes -----------------------------------------------------------------------------------

K0 = 0x9E3779B97F4A7C15
K1 = 0xC2B2AE3D27D4EB4F


def fmix64(h: int) -> int:
    """MurmurHash3's 64-bit finalizer."""
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK64
    return h ^ (h >> 33)


def hash64(data: bytes) -> int:
    """textsieve's 64-bit hash of a byte string."""
    h = (len(data) * K0 + K1) & MASK64
    for i in range(0, len(data), 8):
        w = int.from_bytes(data[i : i + 8].ljust(8, b"\0"), "little")
        h = ((h ^ w) * K0) & MASK64
        h ^= h >> 32
    return fmix64(h)


def sha1_hash32(data: bytes) -> int:
    """datasketch's ``sha1_hash32``: the first four bytes of SHA-1, little-endian."""
    return int.from_bytes(hashlib.sha1(data).digest()[:4], "little")


def fmix32(h: int) -> int:
    """MurmurHash3's 32-bit finalizer."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK32
    return h ^ (h >> 16)


# --- permutation parameters -------------------------------------------------------------------


def splitmix64(state: int) -> tuple[int, int]:
    """One splitmix64 step: ``(new_state, output)``."""
    state = (state + K0) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def native_permutations(num_perm: int, seed: int) -> tuple[list[int], list[int]]:
    """``a_i = (r & 0xFFFFFFFF) | 1``, ``b_i = r >> 32`` for the splitmix64 stream of ``seed``."""
    a, b, state = [], [], seed
    for _ in range(num_perm):
        state, r = splitmix64(state)
        a.append((r & MASK32) | 1)
        b.append(r >> 32)
    return a, b


class MT19937:
    """The Mersenne Twister as NumPy's legacy ``RandomState(seed)`` runs it."""

    def __init__(self, seed: int) -> None:
        mt = [seed & MASK32]
        for i in range(1, 624):
            mt.append((1812433253 * (mt[-1] ^ (mt[-1] >> 30)) + i) & MASK32)
        self.mt, self.idx = mt, 624

    def next32(self) -> int:
        mt = self.mt
        if self.idx >= 624:
            for i in range(624):
                y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7FFFFFFF)
                v = mt[(i + 397) % 624] ^ (y >> 1)
                mt[i] = v ^ 0x9908B0DF if y & 1 else v
            self.idx = 0
        y = mt[self.idx]
        self.idx += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C5680
        y ^= (y << 15) & 0xEFC60000
        return y ^ (y >> 18)

    def next64(self) -> int:
        hi = self.next32()
        return (hi << 32) | self.next32()

    def randint(self, low: int, high: int) -> int:
        """``randint(low, high)`` (high exclusive) by masked rejection sampling."""
        rng = high - 1 - low
        mask = (1 << max(rng, 1).bit_length()) - 1
        while True:
            v = (self.next32() if rng <= MASK32 else self.next64()) & mask
            if v <= rng:
                return low + v


def legacy_permutations(num_perm: int, seed: int) -> tuple[list[int], list[int]]:
    """datasketch's legacy ``(a, b)``: alternating ``randint(1, p)``, ``randint(0, p)``."""
    g = MT19937(seed)
    pairs = [(g.randint(1, MERSENNE61), g.randint(0, MERSENNE61)) for _ in range(num_perm)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def affine32_permutations(num_perm: int, seed: int) -> tuple[list[int], list[int]]:
    """datasketch 2.x's affine32 ``(a, b)``: ``2 * randint(0, 2^31) + 1`` then ``randint(0, 2^32)``."""
    g = MT19937(seed)
    a = [2 * (g.next32() & 0x7FFFFFFF) + 1 for _ in range(num_perm)]
    b = [g.next32() for _ in range(num_perm)]
    return a, b


# --- signatures -------------------------------------------------------------------------------


def signature(
    text: str,
    num_perm: int = 128,
    seed: int = 1,
    scheme: str = "native",
    shingle: str = "char",
    k: int = 5,
    norm: str = "default",
) -> list[int]:
    """The MinHash signature (``0xFFFFFFFF`` everywhere for an empty text)."""
    sh = [s.encode("utf-8") for s in shingles(text, k, shingle, norm)]
    if scheme == "native":
        a, b = native_permutations(num_perm, seed)
        xs = [hash64(s) & MASK32 for s in sh]
        return [
            min([(ai * x + bi) & MASK32 for x in xs], default=MASK32)
            for ai, bi in zip(a, b, strict=True)
        ]
    if scheme == "datasketch-legacy":
        a, b = legacy_permutations(num_perm, seed)
        xs = [sha1_hash32(s) for s in sh]
        return [
            min([(((ai * x + bi) & MASK64) % MERSENNE61) & MASK32 for x in xs], default=MASK32)
            for ai, bi in zip(a, b, strict=True)
        ]
    if scheme == "datasketch-affine32":
        a, b = affine32_permutations(num_perm, seed)
        xs = [fmix32(sha1_hash32(s)) for s in sh]
        return [
            min([(ai * x + bi) & MASK32 for x in xs], default=MASK32)
            for ai, bi in zip(a, b, strict=True)
        ]
    raise ValueError(f"scheme: unknown {scheme!r}")


def estimate_jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    """The fraction of equal positions of two signatures."""
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a) if len(a) else 0.0


# --- LSH --------------------------------------------------------------------------------------


def collision_probability(s: float, b: int, r: int) -> float:
    """P(a pair of similarity ``s`` shares at least one of ``b`` bands of ``r`` rows)."""
    return 1.0 - (1.0 - s ** float(r)) ** float(b)


def _gauss_legendre8() -> tuple[list[float], list[float]]:
    n, xs, ws = 8, [], []
    for i in range(n):
        z = math.cos(math.pi * (i + 0.75) / (n + 0.5))
        dp = 0.0
        for _ in range(100):
            p0, p1 = 1.0, z
            for k in range(2, n + 1):
                p0, p1 = p1, ((2 * k - 1) * z * p1 - (k - 1) * p0) / k
            dp = n * (z * p1 - p0) / (z * z - 1.0)
            dz = p1 / dp
            z -= dz
            if abs(dz) < 1e-16:
                break
        xs.append(z)
        ws.append(2.0 / ((1.0 - z * z) * dp * dp))
    return xs, ws


def _integrate(f, lo: float, hi: float) -> float:
    xs, ws = _gauss_legendre8()
    panels = 32
    h = (hi - lo) / panels
    total = 0.0
    for p in range(panels):
        mid = lo + p * h + 0.5 * h
        total += 0.5 * h * sum(w * f(mid + 0.5 * h * x) for x, w in zip(xs, ws, strict=True))
    return total


def optimal_params(
    threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
) -> tuple[int, int]:
    """datasketch's ``_optimal_param``: minimise the weighted false positive and negative areas."""
    best, opt = math.inf, (1, 1)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = _integrate(lambda s, b=b, r=r: collision_probability(s, b, r), 0.0, threshold)
            fn = _integrate(
                lambda s, b=b, r=r: 1.0 - collision_probability(s, b, r), threshold, 1.0
            )
            err = fp * fp_weight + fn * fn_weight
            if err < best:
                best, opt = err, (b, r)
    return opt


def recall_params(threshold: float, num_perm: int, min_recall: float = 0.99) -> tuple[int, int]:
    """textsieve's default: the most rows ``r`` with ``P(threshold) >= min_recall``."""
    opt = (num_perm, 1)
    for r in range(1, num_perm + 1):
        b = num_perm // r
        if collision_probability(threshold, b, r) >= min_recall:
            opt = (b, r)
    return opt


# Band keys are 40-bit hashes (the core's band tables hold 40 key bits and a document in 8 bytes).
BAND_KEY_BITS = 40


def band_key(values: Sequence[int]) -> int:
    """The 40-bit key of one band's values (pairs of values packed low, high into 64 bits, mixed,
    then the low 40 bits)."""
    h = 0x243F6A8885A308D3 ^ len(values)
    for i in range(0, len(values), 2):
        hi = values[i + 1] if i + 1 < len(values) else 0
        w = values[i] | (hi << 32)
        h = ((h ^ w) * K0) & MASK64
        h ^= h >> 29
    return fmix64(h) & ((1 << BAND_KEY_BITS) - 1)


def band_keys(sig: Sequence[int], bands: int, rows: int) -> list[int]:
    return [band_key(sig[i * rows : (i + 1) * rows]) for i in range(bands)]


def candidate_pairs(keys: Sequence[Sequence[int]], empty: Sequence[bool]) -> list[tuple[int, int]]:
    """Pairs ``i < j`` of non-empty documents sharing a key in some band, sorted."""
    pairs: set[tuple[int, int]] = set()
    n_bands = len(keys[0]) if keys else 0
    for band in range(n_bands):
        buckets: dict[int, list[int]] = {}
        for d, ks in enumerate(keys):
            if not empty[d]:
                buckets.setdefault(ks[band], []).append(d)
        for docs in buckets.values():
            for x in range(len(docs)):
                for y in range(x + 1, len(docs)):
                    pairs.add((docs[x], docs[y]))
    return sorted(pairs)


# --- verification, clusters, keep policy ------------------------------------------------------


class UnionFind:
    """Union-find whose roots are the smallest member of their component."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def clusters(
    n: int, pairs: Iterable[tuple[int, int]], lengths: Sequence[int], keep: str = "first"
) -> list[int]:
    """The kept document (cluster id) of every document: the component's first, or its longest
    (most characters; ties: the first)."""
    uf = UnionFind(n)
    for i, j in pairs:
        uf.union(i, j)
    rep: dict[int, int] = {}
    for d in range(n):
        r = uf.find(d)
        best = rep.setdefault(r, r)
        if keep == "longest" and lengths[d] > lengths[best]:
            rep[r] = d
    return [rep[uf.find(d)] for d in range(n)]


def _order(lengths: Sequence[int], keep: str) -> list[int]:
    """Decision order: input order, or longest first (ties in input order)."""
    n = len(lengths)
    return sorted(range(n), key=lambda d: (-lengths[d], d)) if keep == "longest" else list(range(n))


def _best(cands: Iterable[int], sim: Callable[[int], float]) -> tuple[float, int] | None:
    """The most similar candidate, ties to the smallest number: ``(similarity, doc)``."""
    best = None
    for c in sorted(cands):
        s = sim(c)
        if best is None or s > best[0]:
            best = (s, c)
    return best


def greedy(
    n: int,
    order: Sequence[int],
    buckets: Callable[[int], Iterable[Any]] | None,
    sim: Callable[[int, int], float],
    threshold: float,
    empty: Sequence[bool],
) -> list[tuple[int, float]]:
    """The greedy rule: in ``order``, a document is removed iff an earlier *kept* document
    sharing a bucket with it (every earlier kept document when ``buckets`` is None) has
    similarity >= threshold; it duplicates the most similar one (ties: the smallest number).
    Returns ``(duplicate_of or -1, similarity or nan)`` per document."""
    out = [(-1, math.nan)] * n
    table: dict[Any, list[int]] = {}
    kept: list[int] = []
    for d in order:
        if empty[d]:
            continue
        if buckets is None:
            cands: set[int] = set(kept)
        else:
            cands = {k for b in buckets(d) for k in table.get(b, ())}
        best = _best(cands, lambda k, d=d: sim(d, k))
        if best is not None and best[0] >= threshold:
            out[d] = (best[1], best[0])
            continue
        kept.append(d)
        if buckets is not None:
            for b in buckets(d):
                table.setdefault(b, []).append(d)
    return out


def greedy_exact(
    texts: Sequence[str],
    threshold: float = 0.8,
    k: int = 5,
    shingle: str = "char",
    norm: str = "default",
    keep: str = "first",
) -> list[int]:
    """The test oracle: brute-force greedy over every pair's exact Jaccard (no LSH).
    Returns ``duplicate_of`` (-1 for kept documents)."""
    sets = [shingles(t, k, shingle, norm) for t in texts]
    empty = [not s for s in sets]
    order = _order([len(t) for t in texts], keep)
    res = greedy(len(texts), order, None, lambda i, j: jaccard(sets[i], sets[j]), threshold, empty)
    return [d for d, _ in res]


def dedup(
    texts: Sequence[str],
    threshold: float = 0.8,
    num_perm: int = 128,
    seed: int = 1,
    scheme: str = "native",
    shingle: str = "char",
    k: int = 5,
    norm: str = "default",
    bands: int | None = None,
    rows: int | None = None,
    verify: str = "exact",
    keep: str = "first",
    cluster: str = "greedy",
    all_pairs: bool = False,
) -> dict:
    """The whole pipeline; returns ``keep, cluster, duplicate_of, similarity, pairs, empty``.
    ``pairs`` is one ``(kept, removed, similarity)`` row per removed document, sorted by the
    removed one, or with ``all_pairs`` every candidate pair at or above the threshold."""
    if bands is None and rows is None:
        bands, rows = recall_params(threshold, num_perm)
    elif bands is None:
        bands = num_perm // rows
    elif rows is None:
        rows = num_perm // bands
    sets = [shingles(t, k, shingle, norm) for t in texts]
    sigs = [signature(t, num_perm, seed, scheme, shingle, k, norm) for t in texts]
    empty = [not s for s in sets]
    keys = [band_keys(s, bands, rows) for s in sigs]
    lengths = [len(t) for t in texts]

    def sim(i: int, j: int) -> float:
        if verify == "exact":
            return jaccard(sets[i], sets[j])
        return estimate_jaccard(sigs[i], sigs[j])

    n = len(texts)
    if cluster == "greedy":
        res = greedy(
            n,
            _order(lengths, keep),
            lambda d: [(b, key) for b, key in enumerate(keys[d])],
            sim,
            threshold,
            empty,
        )
        dup = [d for d, _ in res]
        similarity = [s for _, s in res]
    else:
        cands = candidate_pairs(keys, empty)
        verified = [(i, j) for i, j in cands if sim(i, j) >= threshold]
        rep = clusters(n, verified, lengths, keep)
        dup = [-1 if r == d else r for d, r in enumerate(rep)]
        similarity = [math.nan if r == -1 else sim(d, r) for d, r in enumerate(dup)]
    if all_pairs:
        pairs = [
            (i, j, s) for i, j in candidate_pairs(keys, empty) if (s := sim(i, j)) >= threshold
        ]
    else:
        pairs = [(r, d, similarity[d]) for d, r in enumerate(dup) if r >= 0]
    return {
        "keep": [r == -1 for r in dup],
        "cluster": [d if r == -1 else r for d, r in enumerate(dup)],
        "duplicate_of": dup,
        "similarity": similarity,
        "pairs": pairs,
        "empty": empty,
        "bands": bands,
        "rows": rows,
    }
