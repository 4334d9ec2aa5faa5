//! Locality-sensitive hashing over MinHash signatures: choosing bands x rows, band keys, and the
//! candidate pairs (documents that share at least one band key).
//!
//! Two ways to choose `(bands, rows)` for a threshold `t` and `num_perm` permutations:
//! - [`optimal_params`]: datasketch's `_optimal_param`: minimise
//!   `fp_weight * ∫_0^t P(s) ds + fn_weight * ∫_t^1 (1 - P(s)) ds` over `b * r <= num_perm`,
//!   where `P(s) = 1 - (1 - s^r)^b` is the probability that a pair of similarity `s` shares a
//!   band. With weights (0.5, 0.5) it gives datasketch's answers (0.8, 128 -> 9 bands of 13 rows).
//! - [`recall_params`] (textsieve's default): the most rows `r` (fewest candidates) such that
//!   `P(t) >= min_recall` with `b = num_perm / r` bands. Every true pair (similarity >= t) is then a
//!   candidate with probability at least `min_recall`, and exact verification removes the extra
//!   candidates, so precision stays 1.0.

use rayon::prelude::*;

use crate::error::{Error, Result};

/// Probability that a pair of Jaccard similarity `s` shares at least one of `b` bands of `r` rows.
pub fn collision_probability(s: f64, b: usize, r: usize) -> f64 {
    1.0 - (1.0 - s.powf(r as f64)).powf(b as f64)
}

/// Nodes and weights of 8-point Gauss–Legendre quadrature on [-1, 1] (Newton on P_8).
fn gauss_legendre8() -> ([f64; 8], [f64; 8]) {
    let n = 8usize;
    let mut x = [0.0; 8];
    let mut w = [0.0; 8];
    for i in 0..n {
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 0.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0f64, z);
            for k in 2..=n {
                let p2 = ((2 * k - 1) as f64 * z * p1 - (k - 1) as f64 * p0) / k as f64;
                p0 = p1;
                p1 = p2;
            }
            dp = n as f64 * (z * p1 - p0) / (z * z - 1.0);
            let dz = p1 / dp;
            z -= dz;
            if dz.abs() < 1e-16 {
                break;
            }
        }
        x[i] = z;
        w[i] = 2.0 / ((1.0 - z * z) * dp * dp);
    }
    (x, w)
}

/// ∫_lo^hi f with composite 8-point Gauss–Legendre on 32 panels (exact to ~1e-15 here).
fn integrate(f: impl Fn(f64) -> f64, lo: f64, hi: f64, gl: &([f64; 8], [f64; 8])) -> f64 {
    const PANELS: usize = 32;
    let h = (hi - lo) / PANELS as f64;
    let mut total = 0.0;
    for p in 0..PANELS {
        let a = lo + p as f64 * h;
        let mid = a + 0.5 * h;
        let mut s = 0.0;
        for k in 0..8 {
            s += gl.1[k] * f(mid + 0.5 * h * gl.0[k]);
        }
        total += 0.5 * h * s;
    }
    total
}

fn check_threshold(threshold: f64, num_perm: usize) -> Result<()> {
    if !(threshold > 0.0 && threshold <= 1.0) {
        return Err(Error::invalid(
            "threshold",
            format!("expected 0 < threshold <= 1, got {threshold}"),
        ));
    }
    if num_perm == 0 {
        return Err(Error::invalid("num_perm", "expected num_perm >= 1, got 0"));
    }
    Ok(())
}

/// datasketch's `_optimal_param(threshold, num_perm, fp_weight, fn_weight)`: `(bands, rows)`.
pub fn optimal_params(
    threshold: f64,
    num_perm: usize,
    fp_weight: f64,
    fn_weight: f64,
) -> Result<(usize, usize)> {
    check_threshold(threshold, num_perm)?;
    let gl = gauss_legendre8();
    let mut best = f64::INFINITY;
    let mut opt = (1, 1);
    for b in 1..=num_perm {
        for r in 1..=(num_perm / b) {
            let fp = integrate(|s| collision_probability(s, b, r), 0.0, threshold, &gl);
            let fnr = integrate(
                |s| 1.0 - collision_probability(s, b, r),
                threshold,
                1.0,
                &gl,
            );
            let err = fp * fp_weight + fnr * fn_weight;
            if err < best {
                best = err;
                opt = (b, r);
            }
        }
    }
    Ok(opt)
}

/// textsieve's default: the largest `r` with `collision_probability(threshold, num_perm / r, r)
/// >= min_recall` (or `r = 1` if none reaches it).
pub fn recall_params(threshold: f64, num_perm: usize, min_recall: f64) -> Result<(usize, usize)> {
    check_threshold(threshold, num_perm)?;
    if !(min_recall > 0.0 && min_recall < 1.0) {
        return Err(Error::invalid(
            "min_recall",
            format!("expected 0 < min_recall < 1, got {min_recall}"),
        ));
    }
    let mut opt = (num_perm, 1);
    for r in 1..=num_perm {
        let b = num_perm / r;
        if collision_probability(threshold, b, r) >= min_recall {
            opt = (b, r);
        }
    }
    Ok(opt)
}

/// Checks explicit `(bands, rows)` against `num_perm`, filling in a missing one.
pub fn explicit_params(
    bands: Option<usize>,
    rows: Option<usize>,
    num_perm: usize,
) -> Result<(usize, usize)> {
    let (b, r) = match (bands, rows) {
        (Some(b), Some(r)) => (b, r),
        (Some(b), None) if b > 0 => (b, num_perm / b),
        (None, Some(r)) if r > 0 => (num_perm / r, r),
        (b, r) => (b.unwrap_or(0), r.unwrap_or(0)),
    };
    if b == 0 || r == 0 || b.saturating_mul(r) > num_perm {
        return Err(Error::invalid(
            "bands",
            format!(
                "bands * rows must be between 1 and num_perm={num_perm}; got bands={b}, rows={r}"
            ),
        ));
    }
    Ok((b, r))
}

/// One key per band: a hash of the band's `rows` signature values.
/// Returns row-major `(n_docs, bands)`.
pub fn band_keys(sigs: &[u32], num_perm: usize, bands: usize, rows: usize) -> Vec<u64> {
    if num_perm == 0 || bands == 0 {
        return Vec::new();
    }
    let n = sigs.len() / num_perm;
    let mut keys = vec![0u64; n * bands];
    keys.par_chunks_mut(bands)
        .zip(sigs.par_chunks(num_perm))
        .with_min_len(64)
        .for_each(|(k, s)| {
            for (bi, key) in k.iter_mut().enumerate() {
                *key = band_key(&s[bi * rows..(bi + 1) * rows]);
            }
        });
    keys
}

/// The key of one band's values: a 40-bit hash ([`crate::greedy::KEY_BITS`]), which the band
/// tables hold in 8 bytes a slot with the document. Two bands of different values share a key
/// with probability 2^-40, so a 10-million-document corpus gets about a thousand spurious
/// candidate pairs, each refused by the exact check.
#[inline]
pub fn band_key(values: &[u32]) -> u64 {
    let mut h = 0x243F_6A88_85A3_08D3u64 ^ values.len() as u64;
    for pair in values.chunks(2) {
        let w = pair[0] as u64 | (pair.get(1).copied().unwrap_or(0) as u64) << 32;
        h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 29;
    }
    crate::shingle::fmix64(h) & ((1 << crate::greedy::KEY_BITS) - 1)
}

/// A pair `(i, j)` with `i < j`, packed as `i << 32 | j` so sorting orders by `(i, j)`.
#[inline]
pub fn pack(i: u32, j: u32) -> u64 {
    let (lo, hi) = if i < j { (i, j) } else { (j, i) };
    (lo as u64) << 32 | hi as u64
}

#[inline]
pub fn unpack(p: u64) -> (u32, u32) {
    ((p >> 32) as u32, p as u32)
}

/// Sorted `(key, doc)` entries of one band.
fn band_entries(
    keys: &[u64],
    bands: usize,
    band: usize,
    first_doc: u32,
    active: &[bool],
) -> Vec<(u64, u32)> {
    let mut e: Vec<(u64, u32)> = active
        .iter()
        .enumerate()
        .filter(|(_, &a)| a)
        .map(|(d, _)| (keys[d * bands + band], first_doc + d as u32))
        .collect();
    e.sort_unstable();
    e
}

fn sort_dedup(mut per_band: Vec<Vec<u64>>) -> Vec<u64> {
    let total: usize = per_band.iter().map(Vec::len).sum();
    let mut all = Vec::with_capacity(total);
    for v in per_band.iter_mut() {
        all.append(v);
    }
    all.par_sort_unstable();
    all.dedup();
    all
}

/// Candidate pairs among one batch of documents: every pair (packed, global numbers
/// `first_doc + position`) sharing a band key, sorted and distinct. Inactive (empty) documents
/// are left out.
pub fn candidate_pairs(keys: &[u64], bands: usize, first_doc: u32, active: &[bool]) -> Vec<u64> {
    let per_band: Vec<Vec<u64>> = (0..bands)
        .into_par_iter()
        .map(|band| {
            let e = band_entries(keys, bands, band, first_doc, active);
            let mut pairs = Vec::new();
            let mut start = 0;
            while start < e.len() {
                let mut end = start + 1;
                while end < e.len() && e[end].0 == e[start].0 {
                    end += 1;
                }
                for x in start..end {
                    for y in x + 1..end {
                        pairs.push(pack(e[x].1, e[y].1));
                    }
                }
                start = end;
            }
            pairs
        })
        .collect();
    sort_dedup(per_band)
}

/// Band buckets of every document added so far (for an index that grows shard by shard).
#[derive(Clone, Debug, Default)]
pub struct BandTable {
    pub bands: usize,
    /// per band, `(key, doc)` sorted
    entries: Vec<Vec<(u64, u32)>>,
}

impl BandTable {
    pub fn new(bands: usize) -> Self {
        BandTable {
            bands,
            entries: vec![Vec::new(); bands],
        }
    }

    pub fn len(&self) -> usize {
        self.entries.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pairs (old document in the table, new document of the batch) sharing a band key.
    pub fn cross_pairs(&self, keys: &[u64], first_doc: u32, active: &[bool]) -> Vec<u64> {
        let per_band: Vec<Vec<u64>> = (0..self.bands)
            .into_par_iter()
            .map(|band| {
                let old = &self.entries[band];
                let new = band_entries(keys, self.bands, band, first_doc, active);
                let mut pairs = Vec::new();
                let mut o = 0;
                let mut n = 0;
                while o < old.len() && n < new.len() {
                    let (ko, kn) = (old[o].0, new[n].0);
                    if ko < kn {
                        o += 1;
                    } else if kn < ko {
                        n += 1;
                    } else {
                        let o_end = o + old[o..].iter().take_while(|e| e.0 == ko).count();
                        let n_end = n + new[n..].iter().take_while(|e| e.0 == kn).count();
                        for x in &old[o..o_end] {
                            for y in &new[n..n_end] {
                                pairs.push(pack(x.1, y.1));
                            }
                        }
                        o = o_end;
                        n = n_end;
                    }
                }
                pairs
            })
            .collect();
        sort_dedup(per_band)
    }

    /// Documents sharing a band key with one signature's keys (`bands` values), sorted, distinct.
    pub fn query(&self, keys: &[u64]) -> Vec<u32> {
        let mut out = Vec::new();
        for (band, &k) in keys.iter().enumerate().take(self.bands) {
            let e = &self.entries[band];
            let start = e.partition_point(|x| x.0 < k);
            out.extend(e[start..].iter().take_while(|x| x.0 == k).map(|x| x.1));
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Adds a batch of documents (numbered `first_doc + position`).
    pub fn insert(&mut self, keys: &[u64], first_doc: u32, active: &[bool]) {
        let bands = self.bands;
        self.entries
            .par_iter_mut()
            .enumerate()
            .for_each(|(band, e)| {
                e.extend(band_entries(keys, bands, band, first_doc, active));
                e.sort_unstable();
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasketch_params() {
        // values computed by datasketch.lsh._optimal_param
        assert_eq!(optimal_params(0.8, 128, 0.5, 0.5).unwrap(), (9, 13));
        assert_eq!(optimal_params(0.5, 128, 0.5, 0.5).unwrap(), (25, 5));
        assert_eq!(optimal_params(0.9, 256, 0.5, 0.5).unwrap(), (9, 28));
        assert_eq!(optimal_params(0.7, 64, 0.5, 0.5).unwrap(), (8, 8));
    }

    #[test]
    fn recall_params_reach_recall() {
        for t in [0.5, 0.7, 0.8, 0.9] {
            let (b, r) = recall_params(t, 128, 0.99).unwrap();
            assert!(b * r <= 128);
            assert!(collision_probability(t, b, r) >= 0.99);
            assert!(collision_probability(t, 128 / (r + 1), r + 1) < 0.99 || r == 128);
        }
        assert_eq!(recall_params(0.8, 128, 0.99).unwrap(), (21, 6));
    }

    #[test]
    fn bad_params() {
        assert!(optimal_params(0.0, 128, 0.5, 0.5).is_err());
        assert!(optimal_params(1.5, 128, 0.5, 0.5).is_err());
        assert!(explicit_params(Some(20), Some(7), 128).is_err());
        assert_eq!(explicit_params(Some(16), None, 128).unwrap(), (16, 8));
        assert!(explicit_params(None, Some(0), 128).is_err());
    }

    #[test]
    fn candidates_and_table_agree() {
        // docs 0 and 2 share band 0; docs 1 and 3 share band 1
        let keys = vec![1, 10, 2, 20, 1, 30, 4, 20];
        let active = [true; 4];
        let within = candidate_pairs(&keys, 2, 0, &active);
        assert_eq!(
            within.iter().map(|&p| unpack(p)).collect::<Vec<_>>(),
            vec![(0, 2), (1, 3)]
        );
        let mut t = BandTable::new(2);
        t.insert(&keys[..4], 0, &active[..2]);
        let cross = t.cross_pairs(&keys[4..], 2, &active[..2]);
        assert_eq!(
            cross.iter().map(|&p| unpack(p)).collect::<Vec<_>>(),
            vec![(0, 2), (1, 3)]
        );
        assert_eq!(t.query(&[1, 20]), vec![0, 1]);
        let inactive = candidate_pairs(&keys, 2, 0, &[true, true, false, true]);
        assert_eq!(inactive.len(), 1);
    }
}
