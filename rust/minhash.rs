//! MinHash signatures: `num_perm` 32-bit minima per document, under one of three schemes.
//!
//! Every scheme hashes the distinct shingles of a document (see [`crate::shingle`]) and keeps, for
//! each permutation `i`, the minimum of `perm_i(x)` over the shingles' hash values `x`. An empty
//! document's signature is all `0xFFFFFFFF`.
//!
//! ## `native` (the default)
//!
//! ```text
//! x        = hash64(shingle UTF-8 bytes) mod 2^32          (hash64: see shingle::hash64)
//! perm_i(x) = (a_i * x + b_i) mod 2^32,  i = 0 .. num_perm-1
//! (a_i, b_i): r = splitmix64_next(state) with state starting at `seed` (u64);
//!             a_i = (r mod 2^32) | 1   (odd, so perm_i is a bijection of [0, 2^32))
//!             b_i = r >> 32
//! splitmix64_next: state += 0x9E3779B97F4A7C15; z = state;
//!                  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
//!                  z = (z ^ (z >> 27)) * 0x94D049BB133111EB;  return z ^ (z >> 31)   (mod 2^64)
//! ```
//!
//! All arithmetic is in 32-bit lanes, so the inner loop is one multiply, one add and one min per
//! lane; it is compiled for AVX-512, AVX2 and plain x86-64/other targets and picked at run time
//! (the result is the same bits on every path).
//!
//! ## `datasketch-legacy`
//!
//! Bit-identical to `datasketch.MinHash(num_perm, seed, scheme="legacy")` fed
//! `shingle.encode("utf-8")`: `x = sha1_hash32(bytes)` (first four SHA-1 bytes, little-endian),
//! `perm_i(x) = ((a_i * x + b_i) mod 2^64 mod (2^61 - 1)) & 0xFFFFFFFF` with
//! `a_i = randint(1, 2^61-1)`, `b_i = randint(0, 2^61-1)` drawn alternately from NumPy's
//! `RandomState(seed)` (MT19937 seeded by `init_genrand`, 64-bit draws as two 32-bit outputs, high
//! first, masked rejection sampling). Output values are below 2^32; datasketch stores them as
//! uint64 and so does the Python API.
//!
//! ## `datasketch-affine32`
//!
//! Bit-identical to datasketch 2.x's default `MinHash(num_perm, seed)` (scheme `affine32`):
//! `x = fmix32(sha1_hash32(bytes))` (MurmurHash3's 32-bit finalizer),
//! `perm_i(x) = (a_i * x + b_i) mod 2^32` with `a = 2 * randint(0, 2^31, num_perm) + 1` then
//! `b = randint(0, 2^32, num_perm)` from `RandomState(seed)`.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::shingle::{sha1_32, Scratch, Shingler};

/// The largest accepted `num_perm`.
pub const MAX_PERM: usize = 1 << 16;

/// Permutations are evaluated in blocks of this many lanes (the padded length is a multiple).
const BLOCK: usize = 64;

/// Inputs are folded into the minima this many at a time, so a tile's hashes (u64, 16 KiB) stay
/// in L1 while every permutation passes over them, whatever the document's length.
const TILE: usize = 2048;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Native,
    DatasketchLegacy,
    DatasketchAffine32,
}

impl Scheme {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "native" => Ok(Scheme::Native),
            "datasketch-legacy" | "legacy" => Ok(Scheme::DatasketchLegacy),
            "datasketch-affine32" | "affine32" => Ok(Scheme::DatasketchAffine32),
            other => Err(Error::invalid(
                "scheme",
                format!(
                    "expected 'native', 'datasketch-legacy' or 'datasketch-affine32', got {other:?}"
                ),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scheme::Native => "native",
            Scheme::DatasketchLegacy => "datasketch-legacy",
            Scheme::DatasketchAffine32 => "datasketch-affine32",
        }
    }
}

/// Computes MinHash signatures for one configuration (scheme, permutations, shingling).
#[derive(Clone, Debug)]
pub struct MinHasher {
    pub num_perm: usize,
    pub seed: u64,
    pub scheme: Scheme,
    pub shingler: Shingler,
    /// 32-bit schemes: multipliers and offsets, padded to a multiple of `BLOCK`.
    a32: Vec<u32>,
    b32: Vec<u32>,
    /// legacy scheme: 61-bit multipliers and offsets.
    a64: Vec<u64>,
    b64: Vec<u64>,
}

/// splitmix64's output function, advancing `state`.
#[inline]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// MurmurHash3's 32-bit finalizer (datasketch's `_fmix(hv, 32)`).
#[inline]
pub fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^ (h >> 16)
}

pub const MERSENNE61: u64 = (1 << 61) - 1;

/// `v mod (2^61 - 1)` for any u64 `v`.
#[inline(always)]
fn mod_mersenne61(v: u64) -> u64 {
    let r = (v & MERSENNE61) + (v >> 61);
    if r >= MERSENNE61 {
        r - MERSENNE61
    } else {
        r
    }
}

/// MT19937 as NumPy's `RandomState(seed)` runs it (seeded with `init_genrand`).
struct Mt19937 {
    mt: [u32; 624],
    idx: usize,
}

impl Mt19937 {
    fn new(seed: u32) -> Self {
        let mut mt = [0u32; 624];
        mt[0] = seed;
        for i in 1..624 {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { mt, idx: 624 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.idx >= 624 {
            for i in 0..624 {
                let y = (self.mt[i] & 0x8000_0000) | (self.mt[(i + 1) % 624] & 0x7FFF_FFFF);
                let mut v = self.mt[(i + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_B0DF;
                }
                self.mt[i] = v;
            }
            self.idx = 0;
        }
        let mut y = self.mt[self.idx];
        self.idx += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9D2C_5680;
        y ^= (y << 15) & 0xEFC6_0000;
        y ^ (y >> 18)
    }

    fn next_u64(&mut self) -> u64 {
        let hi = self.next_u32() as u64;
        (hi << 32) | self.next_u32() as u64
    }

    /// `randint(low, low + rng + 1, dtype=uint64)`: masked rejection sampling.
    fn bounded_u64(&mut self, low: u64, rng: u64) -> u64 {
        let mask = u64::MAX >> (rng | 1).leading_zeros();
        loop {
            let v = if rng <= 0xFFFF_FFFF {
                (self.next_u32() as u64) & mask
            } else {
                self.next_u64() & mask
            };
            if v <= rng {
                return low + v;
            }
        }
    }
}

impl MinHasher {
    pub fn new(num_perm: usize, seed: u64, scheme: Scheme, shingler: Shingler) -> Result<Self> {
        if num_perm == 0 || num_perm > MAX_PERM {
            return Err(Error::invalid(
                "num_perm",
                format!("expected 1 <= num_perm <= {MAX_PERM}, got {num_perm}"),
            ));
        }
        let padded = num_perm.div_ceil(BLOCK) * BLOCK;
        let mut a32 = Vec::new();
        let mut b32 = Vec::new();
        let mut a64 = Vec::new();
        let mut b64 = Vec::new();
        match scheme {
            Scheme::Native => {
                let mut state = seed;
                for _ in 0..num_perm {
                    let r = splitmix64(&mut state);
                    a32.push((r as u32) | 1);
                    b32.push((r >> 32) as u32);
                }
            }
            Scheme::DatasketchLegacy | Scheme::DatasketchAffine32 => {
                let seed32 = u32::try_from(seed).map_err(|_| {
                    Error::invalid(
                        "seed",
                        format!(
                            "the datasketch schemes use NumPy's RandomState, which needs \
                             0 <= seed < 2**32; got {seed}"
                        ),
                    )
                })?;
                let mut mt = Mt19937::new(seed32);
                if scheme == Scheme::DatasketchLegacy {
                    for _ in 0..num_perm {
                        a64.push(mt.bounded_u64(1, MERSENNE61 - 2));
                        b64.push(mt.bounded_u64(0, MERSENNE61 - 1));
                    }
                } else {
                    for _ in 0..num_perm {
                        a32.push(
                            (mt.next_u32() & 0x7FFF_FFFF)
                                .wrapping_mul(2)
                                .wrapping_add(1),
                        );
                    }
                    for _ in 0..num_perm {
                        b32.push(mt.next_u32());
                    }
                }
            }
        }
        if !a32.is_empty() {
            a32.resize(padded, 1);
            b32.resize(padded, 0);
        }
        Ok(MinHasher {
            num_perm,
            seed,
            scheme,
            shingler,
            a32,
            b32,
            a64,
            b64,
        })
    }

    /// The permutation parameters `(a, b)` (for inspection and the reference tests).
    pub fn permutations(&self) -> (Vec<u64>, Vec<u64>) {
        match self.scheme {
            Scheme::DatasketchLegacy => (self.a64.clone(), self.b64.clone()),
            _ => (
                self.a32[..self.num_perm]
                    .iter()
                    .map(|&v| v as u64)
                    .collect(),
                self.b32[..self.num_perm]
                    .iter()
                    .map(|&v| v as u64)
                    .collect(),
            ),
        }
    }

    /// The signature of the shingle hash inputs `xs` into `out` (`num_perm` values).
    pub fn signature_of_inputs(&self, xs: &[u32], out: &mut [u32], buf: &mut Vec<u32>) {
        match self.scheme {
            Scheme::DatasketchLegacy => {
                out.fill(u32::MAX);
                legacy_min(xs, &self.a64, &self.b64, out);
            }
            _ => {
                self.start_minima(buf);
                affine_min(xs, &self.a32, &self.b32, buf);
                out.copy_from_slice(&buf[..self.num_perm]);
            }
        }
    }

    /// `buf` as the padded minima of no input yet (32-bit schemes).
    fn start_minima(&self, buf: &mut Vec<u32>) {
        buf.clear();
        buf.resize(self.a32.len(), u32::MAX);
    }

    /// One document's signature.
    pub fn signature(&self, text: &str) -> Vec<u32> {
        let mut w = Worker::default();
        let mut out = vec![0u32; self.num_perm];
        w.signature(self, text, &mut out);
        out
    }

    /// Signatures of many documents, row-major `(texts.len(), num_perm)`, in parallel on the
    /// current rayon pool; the same bits for any number of threads. Refused when they cannot
    /// fit in memory.
    pub fn signatures<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<u32>> {
        let mut out = self.signature_buffer(texts.len())?;
        out.par_chunks_mut(self.num_perm)
            .zip(texts.par_iter())
            .with_min_len(8)
            .for_each_init(Worker::default, |w, (row, t)| {
                w.signature(self, t.as_ref(), row);
            });
        Ok(out)
    }

    /// Room for `n` signatures, or an error when they cannot fit.
    fn signature_buffer(&self, n: usize) -> Result<Vec<u32>> {
        let p = self.num_perm;
        crate::memory::filled(
            "num_perm",
            || format!("{n} signatures of {p} permutations"),
            n.checked_mul(p),
            0,
        )
    }
}

impl MinHasher {
    /// Native-scheme signatures from precomputed `hash64` shingle hashes: document `d` owns
    /// `hashes[offsets[d]..offsets[d + 1]]` (the signature-only step, without shingling).
    pub fn signatures_from_hashes(&self, hashes: &[u64], offsets: &[usize]) -> Result<Vec<u32>> {
        if self.scheme != Scheme::Native {
            return Err(Error::invalid(
                "scheme",
                "signatures from hash64 values exist for the native scheme only",
            ));
        }
        if offsets.is_empty()
            || offsets[0] != 0
            || offsets.windows(2).any(|w| w[0] > w[1])
            || offsets[offsets.len() - 1] != hashes.len()
        {
            return Err(Error::invalid(
                "offsets",
                "expected non-decreasing offsets from 0 to len(hashes)",
            ));
        }
        let n = offsets.len() - 1;
        let mut out = self.signature_buffer(n)?;
        out.par_chunks_mut(self.num_perm)
            .enumerate()
            .with_min_len(8)
            .for_each_init(Vec::new, |buf: &mut Vec<u32>, (d, row)| {
                self.start_minima(buf);
                affine_min(
                    &hashes[offsets[d]..offsets[d + 1]],
                    &self.a32,
                    &self.b32,
                    buf,
                );
                row.copy_from_slice(&buf[..self.num_perm]);
            });
        Ok(out)
    }
}

/// Per-thread buffers for signature computation.
#[derive(Default)]
pub struct Worker {
    scratch: Scratch,
    hashes: Vec<u64>,
    xs: Vec<u32>,
    buf: Vec<u32>,
}

impl Worker {
    /// [`Worker::signature`], and, with the native scheme, the text's [`crate::sketch`] made
    /// from the same shingle hashes into `sketch` (left empty with the other schemes, whose
    /// hashes are not those of the shingle set, and for a text without shingles).
    pub fn signature_sketched(
        &mut self,
        mh: &MinHasher,
        text: &str,
        out: &mut [u32],
        sketch: &mut Vec<u64>,
    ) -> usize {
        sketch.clear();
        if mh.scheme != Scheme::Native {
            return self.signature(mh, text, out);
        }
        let Worker {
            scratch,
            hashes,
            buf,
            ..
        } = self;
        let (a, b) = (&mh.a32[..], &mh.b32[..]);
        mh.start_minima(buf);
        // sized for the text's bytes (at least its shingles, unless normalizing lengthens
        // it), then folded to its shingles' size
        sketch.resize(crate::sketch::words_for(text.len()), 0);
        let n = mh.shingler.hash_tiles(text, scratch, TILE, hashes, |t| {
            affine_min(t, a, b, buf);
            crate::sketch::add(sketch, t);
        });
        out.copy_from_slice(&buf[..mh.num_perm]);
        let words = crate::sketch::words_for(n);
        if n == 0 {
            sketch.clear();
        } else if words < sketch.len() {
            crate::sketch::fold(sketch, words);
        }
        n
    }

    /// Writes `text`'s signature into `out`; returns its number of shingle occurrences (0 for a
    /// text without shingles).
    pub fn signature(&mut self, mh: &MinHasher, text: &str, out: &mut [u32]) -> usize {
        let Worker {
            scratch,
            hashes,
            xs,
            buf,
        } = self;
        let (a, b) = (&mh.a32[..], &mh.b32[..]);
        match mh.scheme {
            Scheme::Native => {
                mh.start_minima(buf);
                let n = mh
                    .shingler
                    .hash_tiles(text, scratch, TILE, hashes, |t| affine_min(t, a, b, buf));
                out.copy_from_slice(&buf[..mh.num_perm]);
                n
            }
            Scheme::DatasketchAffine32 => {
                mh.start_minima(buf);
                xs.clear();
                let n = mh.shingler.for_each(text, scratch, |s| {
                    xs.push(fmix32(sha1_32(s)));
                    if xs.len() == TILE {
                        affine_min(xs, a, b, buf);
                        xs.clear();
                    }
                });
                affine_min(xs, a, b, buf);
                out.copy_from_slice(&buf[..mh.num_perm]);
                n
            }
            Scheme::DatasketchLegacy => {
                xs.clear();
                let n = mh.shingler.for_each(text, scratch, |s| xs.push(sha1_32(s)));
                // the legacy permutations cost ~1 ns each per input, more than sorting the inputs
                // to drop repeats (which cannot change a minimum); the 32-bit kernels cost less
                if xs.len() > 64 {
                    xs.sort_unstable();
                    xs.dedup();
                }
                out.fill(u32::MAX);
                legacy_min(xs, &mh.a64, &mh.b64, out);
                n
            }
        }
    }
}

/// A shingle hash as the 32-bit value the permutations act on (its low 32 bits).
trait Input: Copy {
    fn low32(self) -> u32;
}

impl Input for u32 {
    #[inline(always)]
    fn low32(self) -> u32 {
        self
    }
}

impl Input for u64 {
    #[inline(always)]
    fn low32(self) -> u32 {
        self as u32
    }
}

/// `out[i] = min(out[i], min over x of (a[i] * x.low32() + b[i]) mod 2^32)`; lengths multiples
/// of BLOCK.
fn affine_min<X: Input>(xs: &[X], a: &[u32], b: &[u32], out: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { affine_min_avx512(xs, a, b, out) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { affine_min_avx2(xs, a, b, out) };
        }
    }
    affine_min_blocks::<32, X>(xs, a, b, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn affine_min_avx512<X: Input>(xs: &[X], a: &[u32], b: &[u32], out: &mut [u32]) {
    affine_min_blocks::<64, X>(xs, a, b, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn affine_min_avx2<X: Input>(xs: &[X], a: &[u32], b: &[u32], out: &mut [u32]) {
    affine_min_blocks::<32, X>(xs, a, b, out)
}

/// The permutation loop: per tile of inputs (kept in L1), W lanes at a time held in registers
/// while the tile streams past.
#[inline(always)]
fn affine_min_blocks<const W: usize, X: Input>(xs: &[X], a: &[u32], b: &[u32], out: &mut [u32]) {
    for tile in xs.chunks(TILE) {
        for ((ac, bc), oc) in a
            .chunks_exact(W)
            .zip(b.chunks_exact(W))
            .zip(out.chunks_exact_mut(W))
        {
            let mut av = [0u32; W];
            let mut bv = [0u32; W];
            let mut m = [0u32; W];
            av.copy_from_slice(ac);
            bv.copy_from_slice(bc);
            m.copy_from_slice(oc);
            for &x in tile {
                let x = x.low32();
                for l in 0..W {
                    m[l] = m[l].min(av[l].wrapping_mul(x).wrapping_add(bv[l]));
                }
            }
            oc.copy_from_slice(&m);
        }
    }
}

/// The legacy permutation: `((a * x + b) mod 2^64 mod (2^61 - 1)) & 0xFFFFFFFF`, every
/// permutation over one tile of inputs before the next tile.
fn legacy_min(xs: &[u32], a: &[u64], b: &[u64], out: &mut [u32]) {
    for tile in xs.chunks(TILE) {
        for (o, (&ai, &bi)) in out.iter_mut().zip(a.iter().zip(b)) {
            let mut m = *o;
            for &x in tile {
                let v = mod_mersenne61(ai.wrapping_mul(x as u64).wrapping_add(bi)) as u32;
                m = m.min(v);
            }
            *o = m;
        }
    }
}

/// Estimated Jaccard similarity: the fraction of equal positions of two signatures.
pub fn estimate_jaccard(a: &[u32], b: &[u32]) -> f64 {
    if a.is_empty() {
        return 0.0;
    }
    let eq = a.iter().zip(b).filter(|(x, y)| x == y).count();
    eq as f64 / a.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::with_threads;

    fn hasher(scheme: Scheme, num_perm: usize, seed: u64) -> MinHasher {
        MinHasher::new(
            num_perm,
            seed,
            scheme,
            Shingler::new("char", 5, "default").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn mt19937_matches_reference_output() {
        // first outputs of init_genrand(5489), the reference implementation's default seed
        let mut mt = Mt19937::new(5489);
        assert_eq!(mt.next_u32(), 3_499_211_612);
        assert_eq!(mt.next_u32(), 581_869_302);
        assert_eq!(mt.next_u32(), 3_890_346_734);
    }

    #[test]
    fn mersenne_mod() {
        for v in [
            0,
            1,
            MERSENNE61 - 1,
            MERSENNE61,
            MERSENNE61 + 1,
            u64::MAX,
            1 << 63,
        ] {
            assert_eq!(mod_mersenne61(v), v % MERSENNE61);
        }
    }

    #[test]
    fn kernels_agree_with_scalar_definition() {
        let mh = hasher(Scheme::Native, 100, 7);
        let xs: Vec<u32> = (0..300u32).map(|i| i.wrapping_mul(2_654_435_761)).collect();
        let mut got = vec![0u32; 100];
        mh.signature_of_inputs(&xs, &mut got, &mut Vec::new());
        for (i, g) in got.iter().enumerate() {
            let want = xs
                .iter()
                .map(|&x| mh.a32[i].wrapping_mul(x).wrapping_add(mh.b32[i]))
                .min();
            assert_eq!(Some(*g), want);
        }
        let mut generic = vec![u32::MAX; mh.a32.len()];
        affine_min_blocks::<32, u32>(&xs, &mh.a32, &mh.b32, &mut generic);
        assert_eq!(&generic[..100], &got[..]);
    }

    /// Text of `n` char 5-shingles (lowercase, single spaces, so normalization keeps it as is).
    fn text_of_shingles(n: usize, alphabet: &[char]) -> String {
        let len = match n {
            0 => 0,
            1 => 5,
            _ => n + 4,
        };
        let mut state = n as u64;
        (0..len)
            .map(|i| {
                if i % 7 == 3 && i + 1 < len {
                    ' '
                } else {
                    alphabet[(splitmix64(&mut state) % alphabet.len() as u64) as usize]
                }
            })
            .collect()
    }

    /// The signature by the definitions in the module docs: every permutation over every
    /// shingle occurrence, in plain 64-bit arithmetic.
    fn reference_signature(mh: &MinHasher, text: &str) -> (Vec<u32>, usize) {
        let mut xs = Vec::new();
        let n = mh.shingler.for_each(text, &mut Scratch::default(), |s| {
            xs.push(match mh.scheme {
                Scheme::Native => crate::shingle::hash64(s) as u32 as u64,
                Scheme::DatasketchLegacy => sha1_32(s) as u64,
                Scheme::DatasketchAffine32 => fmix32(sha1_32(s)) as u64,
            })
        });
        let (a, b) = mh.permutations();
        let sig = (0..mh.num_perm)
            .map(|i| {
                xs.iter()
                    .map(|&x| match mh.scheme {
                        Scheme::DatasketchLegacy => {
                            (a[i].wrapping_mul(x).wrapping_add(b[i]) % MERSENNE61) as u32
                        }
                        _ => (a[i] * x + b[i]) as u32,
                    })
                    .fold(u32::MAX, u32::min)
            })
            .collect();
        (sig, n)
    }

    #[test]
    fn tiled_signatures_match_reference() {
        let lengths = [0, 1, 2, TILE - 1, TILE, TILE + 1, 5 * TILE + 3];
        let ascii: Vec<char> = ('a'..='z').collect();
        let mut mixed = ascii.clone();
        mixed.extend(['é', 'ß', 'の', '字']);
        for scheme in [
            Scheme::Native,
            Scheme::DatasketchLegacy,
            Scheme::DatasketchAffine32,
        ] {
            // 100 permutations: two padded blocks of 64 lanes, the second partly padding
            let mh = hasher(scheme, 100, 11);
            let mut w = Worker::default();
            for alphabet in [&ascii, &mixed] {
                for &n in &lengths {
                    let text = text_of_shingles(n, alphabet);
                    let (want, count) = reference_signature(&mh, &text);
                    assert_eq!(count, n, "{scheme:?} {n}");
                    let mut got = vec![0u32; mh.num_perm];
                    assert_eq!(w.signature(&mh, &text, &mut got), n);
                    assert_eq!(got, want, "{scheme:?}, {n} shingles");
                    assert_eq!(mh.signature(&text), want);
                }
            }
        }
    }

    #[test]
    fn every_kernel_path_matches_reference_across_tiles() {
        let mh = hasher(Scheme::Native, 128, 5);
        let legacy = hasher(Scheme::DatasketchLegacy, 100, 5);
        let (a, b) = (&mh.a32, &mh.b32);
        for n in [0, 1, TILE - 1, TILE, TILE + 1, 5 * TILE + 3] {
            let mut state = 99;
            let hs: Vec<u64> = (0..n).map(|_| splitmix64(&mut state)).collect();
            let xs: Vec<u32> = hs.iter().map(|&h| h as u32).collect();
            let want: Vec<u32> = (0..a.len())
                .map(|i| {
                    xs.iter()
                        .map(|&x| (a[i] as u64 * x as u64 + b[i] as u64) as u32)
                        .fold(u32::MAX, u32::min)
                })
                .collect();
            let mut paths: Vec<Vec<u32>> = Vec::new();
            let mut run = |f: &dyn Fn(&mut [u32])| {
                let mut out = vec![u32::MAX; a.len()];
                f(&mut out);
                paths.push(out);
            };
            run(&|o| affine_min_blocks::<32, u32>(&xs, a, b, o));
            run(&|o| affine_min_blocks::<64, u32>(&xs, a, b, o));
            run(&|o| affine_min_blocks::<32, u64>(&hs, a, b, o));
            run(&|o| affine_min(&xs, a, b, o));
            run(&|o| affine_min(&hs, a, b, o));
            #[cfg(target_arch = "x86_64")]
            {
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2 (checked just above).
                    run(&|o| unsafe { affine_min_avx2(&xs, a, b, o) });
                    run(&|o| unsafe { affine_min_avx2(&hs, a, b, o) });
                }
                if std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports AVX-512F (checked just above).
                    run(&|o| unsafe { affine_min_avx512(&xs, a, b, o) });
                    run(&|o| unsafe { affine_min_avx512(&hs, a, b, o) });
                }
            }
            for (p, got) in paths.iter().enumerate() {
                assert_eq!(got, &want, "path {p}, {n} inputs");
            }
            let mut sig = vec![0u32; 128];
            mh.signature_of_inputs(&xs, &mut sig, &mut Vec::new());
            assert_eq!(sig, want[..128]);
            let from_hashes = mh.signatures_from_hashes(&hs, &[0, n]).unwrap();
            assert_eq!(from_hashes, want[..128]);

            let (la, lb) = (&legacy.a64, &legacy.b64);
            let mut got = vec![u32::MAX; 100];
            legacy_min(&xs, la, lb, &mut got);
            for (i, g) in got.iter().enumerate() {
                let m = xs
                    .iter()
                    .map(|&x| {
                        (la[i].wrapping_mul(x as u64).wrapping_add(lb[i]) % MERSENNE61) as u32
                    })
                    .fold(u32::MAX, u32::min);
                assert_eq!(*g, m, "legacy perm {i}, {n} inputs");
            }
        }
    }

    #[test]
    fn empty_text_is_all_max() {
        for s in [
            Scheme::Native,
            Scheme::DatasketchLegacy,
            Scheme::DatasketchAffine32,
        ] {
            assert!(hasher(s, 16, 1)
                .signature(" ")
                .iter()
                .all(|&v| v == u32::MAX));
        }
    }

    #[test]
    fn signatures_that_cannot_fit_are_refused() {
        let sh = Shingler::new("char", 5, "default").unwrap();
        let mh = MinHasher::new(MAX_PERM, 1, Scheme::Native, sh).unwrap();
        let err = mh.signature_buffer(usize::MAX / 2).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidArgument {
                    arg: "num_perm",
                    ..
                }
            ),
            "{err}"
        );
        if let Some(memory) = crate::memory::physical_memory() {
            // empty documents whose signatures alone need more than the machine's memory
            let n = usize::try_from(memory / (MAX_PERM as u64 * 4) + 1).unwrap();
            assert!(mh.signatures(&vec![""; n]).is_err());
        }
        assert_eq!(mh.signatures(&["a b c d e f"]).unwrap().len(), MAX_PERM);
    }

    #[test]
    fn similar_texts_have_similar_signatures() {
        let mh = hasher(Scheme::Native, 256, 1);
        let a = mh.signature("the quick brown fox jumps over the lazy dog again and again");
        let b = mh.signature("the quick brown fox jumps over the lazy cat again and again");
        let c = mh.signature("completely unrelated words about databases and indexes");
        assert!(estimate_jaccard(&a, &b) > 0.5);
        assert!(estimate_jaccard(&a, &c) < 0.1);
    }

    #[test]
    fn same_for_any_thread_count() {
        let mh = hasher(Scheme::Native, 64, 3);
        let texts: Vec<String> = (0..200)
            .map(|i| format!("document {i} {}", "x".repeat(i)))
            .collect();
        let one = with_threads(Some(1), || mh.signatures(&texts))
            .unwrap()
            .unwrap();
        let three = with_threads(Some(3), || mh.signatures(&texts))
            .unwrap()
            .unwrap();
        assert_eq!(one, three);
        assert!(with_threads(Some(0), || ()).is_err());
    }

    #[test]
    fn bad_arguments() {
        let sh = Shingler::new("char", 5, "default").unwrap();
        assert!(MinHasher::new(0, 1, Scheme::Native, sh).is_err());
        assert!(MinHasher::new(8, 1 << 40, Scheme::DatasketchLegacy, sh).is_err());
        assert!(MinHasher::new(8, 1 << 40, Scheme::Native, sh).is_ok());
        assert!(Scheme::parse("minhash").is_err());
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    /// `cargo test --release --lib speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn kernel_speed() {
        let sh = Shingler::new("char", 5, "default").unwrap();
        let mh = MinHasher::new(128, 1, Scheme::Native, sh).unwrap();
        let xs: Vec<u32> = (0..1_000_000u32)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect();
        let mut out = vec![0u32; 128];
        let t = std::time::Instant::now();
        mh.signature_of_inputs(&xs, &mut out, &mut Vec::new());
        let dt = t.elapsed().as_secs_f64();
        println!("perm kernel: {:.1} M inputs/s ({})", 1.0 / dt, out[0]);
        let text: String = (0..200_000).map(|i| format!("word{} ", i % 5000)).collect();
        let mut s = Scratch::default();
        let mut hs = Vec::new();
        let t = std::time::Instant::now();
        sh.hashes(&text, &mut s, &mut hs);
        let dt = t.elapsed().as_secs_f64();
        println!("shingle hash: {:.1} MB/s", text.len() as f64 / dt / 1e6);
        let mut xs2: Vec<u32> = hs.iter().map(|&h| h as u32).collect();
        let t = std::time::Instant::now();
        xs2.sort_unstable();
        xs2.dedup();
        println!(
            "sort+dedup: {:.1} MB/s",
            text.len() as f64 / t.elapsed().as_secs_f64() / 1e6
        );
        let t = std::time::Instant::now();
        let sig = mh.signature(&text);
        println!(
            "signature: {:.1} MB/s ({})",
            text.len() as f64 / t.elapsed().as_secs_f64() / 1e6,
            sig[0]
        );
    }
}

#[cfg(test)]
mod long_docs {
    use super::*;

    /// Tiny Shakespeare from the shared data folder, repeated and cut to `n` bytes (None if absent).
    fn shakespeare(n: usize) -> Option<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
        let text = std::fs::read_to_string(dir.join("tinyshakespeare.txt")).ok()?;
        let mut s = text.repeat(n.div_ceil(text.len()));
        s.truncate(n);
        Some(s)
    }

    /// The process's minor page faults so far (0 where /proc is absent).
    fn minor_faults() -> u64 {
        std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                let rest = s.rsplit(')').next()?.to_owned();
                rest.split_whitespace().nth(7)?.parse().ok()
            })
            .unwrap_or(0)
    }

    /// This thread's CPU time in seconds (None off 64-bit Linux): other jobs on a shared machine then
    /// stretch a run less than they stretch wall time.
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    fn cpu_seconds() -> Option<f64> {
        #[repr(C)]
        struct Timespec {
            sec: i64,
            nsec: i64,
        }
        extern "C" {
            fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
        }
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut t = Timespec { sec: 0, nsec: 0 };
        // SAFETY: `t` is a valid timespec for the C library to fill in.
        let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) };
        (rc == 0).then(|| t.sec as f64 + t.nsec as f64 / 1e9)
    }

    #[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
    fn cpu_seconds() -> Option<f64> {
        None
    }

    /// Seconds (on-CPU where measurable, else wall) and minor page faults of one call of `f`.
    fn timed(f: &mut impl FnMut()) -> (f64, u64) {
        let (f0, c0) = (minor_faults(), cpu_seconds());
        let t = std::time::Instant::now();
        f();
        let wall = t.elapsed().as_secs_f64();
        let secs = match (c0, cpu_seconds()) {
            (Some(a), Some(b)) => b - a,
            _ => wall,
        };
        (secs, minor_faults() - f0)
    }

    /// One 2 MB document against the same bytes in 1 KiB documents, one thread, native scheme,
    /// 128 permutations, char 5-shingles; each run starts from a fresh `Worker`, as a call of
    /// `MinHasher::signature` does; thread CPU time. First call of the process, then best of 5,
    /// three times:
    /// `cargo test --release --lib long_docs -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn long_document_speed() {
        let Some(text) = shakespeare(2_000_000) else {
            println!("skipped: ../shared/data/tinyshakespeare.txt is absent");
            return;
        };
        let mh = MinHasher::new(
            128,
            1,
            Scheme::Native,
            Shingler::new("char", 5, "default").unwrap(),
        )
        .unwrap();
        let pieces: Vec<&str> = text
            .as_bytes()
            .chunks(1024)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let mb = text.len() as f64 / 1e6;
        let (mut s1, mut s2) = (vec![0u32; mh.num_perm], vec![0u32; mh.num_perm]);
        let mut whole = || {
            Worker::default().signature(&mh, &text, &mut s1);
        };
        let mut cut = || {
            let mut w = Worker::default();
            for p in &pieces {
                w.signature(&mh, p, &mut s2);
            }
        };
        let (t, f) = timed(&mut whole);
        println!(
            "first call: one 2 MB document {:.1} MB/s ({f} page faults)",
            mb / t
        );
        let (t, f) = timed(&mut cut);
        println!(
            "first call: {} 1 KiB documents {:.1} MB/s ({f} page faults)",
            pieces.len(),
            mb / t
        );
        for round in 0..3 {
            let (w, wf) = (0..5)
                .map(|_| timed(&mut whole))
                .fold((f64::MAX, 0), |a, b| (a.0.min(b.0), a.1.max(b.1)));
            let (c, cf) = (0..5)
                .map(|_| timed(&mut cut))
                .fold((f64::MAX, 0), |a, b| (a.0.min(b.0), a.1.max(b.1)));
            println!(
                "round {round}, best of 5: one 2 MB document {:.1} MB/s (<= {wf} page faults), \
                 1 KiB documents {:.1} MB/s (<= {cf})",
                mb / w,
                mb / c
            );
        }
    }
}
