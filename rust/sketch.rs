//! Shingle sketches: a bitmap of a document's shingle hashes, small enough to keep beside its
//! text, from which an upper bound on its Jaccard similarity with any shingle set follows.
//!
//! The sketch of a set `B` of `hash64` shingle hashes is a bitmap of `2^j` bits with bit
//! `x mod 2^j` set for each `x` in `B` (so the repeats of a shingle, and the order, do not
//! matter: signing makes it from the same hashes it takes minima of). For a set `A` given
//! whole:
//!
//! - every shingle of `A ∩ B` falls on a set bit, so `|A ∩ B| <= U`, the shingles of `A` that
//!   do;
//! - distinct set bits come from distinct shingles, so `|B| >= L`, the bits set (or more
//!   where `|B|` itself is known: an add stores it for a document it made the shingle set of);
//! - `J = I / (|A| + |B| - I)` grows with `I` and falls with `|B|`, so
//!   `J(A, B) <= U / (|A| + L - U)`.
//!
//! The bound is exact arithmetic on counts, never an estimate: a pair it rules out is not within
//! the threshold. Pairs that share a band key but little else (most of the candidates an index
//! of millions of documents gives a new one) are ruled out without reading or shingling the
//! indexed text. With about one bit a shingle (repeats counted), pairs below Jaccard 0.5 or so
//! are ruled out for a threshold of 0.8.

/// The fewest and the most 64-bit words of a sketch (512 and 65,536 bits).
pub const MIN_WORDS: usize = 8;
pub const MAX_WORDS: usize = 1024;

/// Words of the sketch of a text with `shingles` shingles (repeats counted): the power of two
/// at or above one bit a shingle, within [`MIN_WORDS`] and [`MAX_WORDS`].
pub fn words_for(shingles: usize) -> usize {
    shingles
        .div_ceil(64)
        .next_power_of_two()
        .clamp(MIN_WORDS, MAX_WORDS)
}

/// Sets the bit of each hash in the sketch `bm` (a power of two of words).
#[inline]
pub fn add(bm: &mut [u64], hashes: &[u64]) {
    debug_assert!(bm.len().is_power_of_two());
    let mask = bm.len() * 64 - 1;
    for &x in hashes {
        let p = x as usize & mask;
        bm[p >> 6] |= 1 << (p & 63);
    }
}

/// Folds the sketch `bm` to `words` words (a power of two, at most its own): bit `p` of the
/// folded one is set where a bit `p mod 2^j` was, which is the sketch the same hashes make at
/// that size.
pub fn fold(bm: &mut Vec<u64>, words: usize) {
    debug_assert!(words.is_power_of_two() && words <= bm.len());
    while bm.len() > words {
        let half = bm.len() / 2;
        let (lo, hi) = bm.split_at_mut(half);
        for (a, b) in lo.iter_mut().zip(hi.iter()) {
            *a |= b;
        }
        bm.truncate(half);
    }
}

/// Whether the set `a` (distinct `hash64` shingle hashes) may be within Jaccard `threshold` of
/// the set whose sketch is `bm` and which has at least `at_least` shingles (0 where nothing more
/// is known than the sketch tells): false only where the bound above rules it out. A sketch
/// that is not a power of two of words rules out nothing. With about one bit a shingle, about
/// a third of the bits stay clear, so a known size rules out many more pairs than the bits set
/// do.
pub fn admits(bm: &[u64], a: &[u64], threshold: f64, at_least: u32) -> bool {
    if bm.is_empty() || !bm.len().is_power_of_two() || a.is_empty() {
        return true;
    }
    let mask = bm.len() * 64 - 1;
    let u = a
        .iter()
        .filter(|&&x| {
            let p = x as usize & mask;
            bm[p >> 6] >> (p & 63) & 1 == 1
        })
        .count() as f64;
    let l: u32 = bm.iter().map(|w| w.count_ones()).sum();
    let union = a.len() as f64 + f64::from(l.max(at_least)) - u;
    // (a margin below the threshold, so that a similarity that rounds up to it is kept)
    union <= 0.0 || u >= threshold * (1.0 - 1e-9) * union
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(mut s: u64) -> impl FnMut() -> u64 {
        move || {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    #[test]
    fn the_bound_never_rules_out_a_pair_within_the_threshold() {
        let mut next = rng(7);
        let (mut ruled_out, mut ruled_out_sized) = (0, 0);
        let (mut far, mut below) = (0, 0);
        for case in 0..400 {
            let n = 50 + (next() % 700) as usize;
            let b: Vec<u64> = (0..n).map(|_| next()).collect();
            // a share of b's shingles, and new ones
            let keep = (next() % 101) as usize;
            let mut a: Vec<u64> = b
                .iter()
                .copied()
                .filter(|_| next() % 100 < keep as u64)
                .collect();
            let extra = (next() % 300) as usize;
            a.extend((0..extra).map(|_| next()));
            a.sort_unstable();
            a.dedup();
            let mut bm = vec![0u64; words_for(n * (1 + case % 3))];
            add(&mut bm, &b);
            let i = a.iter().filter(|x| b.contains(x)).count() as f64;
            let j = i / (a.len() as f64 + n as f64 - i);
            for t in [0.5, 0.7, 0.8, 0.9] {
                // with b's size known (and with a lower bound on it)
                for at_least in [n as u32, n as u32 / 2] {
                    if j >= t {
                        assert!(admits(&bm, &a, t, at_least), "J {j} >= {t} ruled out");
                    }
                    assert!(admits(&bm, &a, t, at_least) <= admits(&bm, &a, t, 0));
                }
                if j >= t {
                    assert!(admits(&bm, &a, t, 0), "J {j} >= {t} ruled out");
                }
                if !admits(&bm, &a, t, 0) {
                    ruled_out += 1;
                }
                if !admits(&bm, &a, t, n as u32) {
                    ruled_out_sized += 1;
                }
                if j < 0.3 {
                    far += 1;
                }
                if j < 0.6 {
                    below += 1;
                }
            }
        }
        // most pairs far below the threshold are ruled out, and with the size known, most
        // pairs below 0.6
        assert!(ruled_out * 10 > far * 8, "{ruled_out} of {far}");
        assert!(
            ruled_out_sized * 10 > below * 8,
            "{ruled_out_sized} of {below}"
        );
        assert!(ruled_out_sized > ruled_out);
    }

    #[test]
    fn a_folded_sketch_is_the_sketch_made_at_that_size() {
        let mut next = rng(3);
        let hashes: Vec<u64> = (0..3000).map(|_| next()).collect();
        let mut big = vec![0u64; MAX_WORDS];
        add(&mut big, &hashes);
        for words in [512, 64, 8] {
            let mut small = vec![0u64; words];
            add(&mut small, &hashes);
            let mut folded = big.clone();
            fold(&mut folded, words);
            assert_eq!(folded, small);
        }
        assert_eq!(words_for(0), MIN_WORDS);
        assert_eq!(words_for(1000), 16);
        assert_eq!(words_for(1024), 16);
        assert_eq!(words_for(1025), 32);
        assert_eq!(words_for(usize::MAX / 2), MAX_WORDS);
        // a damaged sketch rules out nothing
        assert!(admits(&[u64::MAX; 3], &[1, 2], 0.99, 0));
        assert!(admits(&[], &[1, 2], 0.99, 0));
        let mut one = vec![0u64; 8];
        add(&mut one, &[5]);
        assert!(!admits(&one, &[6, 7, 8], 0.5, 0));
        assert!(admits(&one, &[5], 1.0, 0));
        // a known size rules out what the bits alone cannot: {5} against a set of 10 holding 5
        assert!(admits(&one, &[5, 6], 0.5, 0));
        assert!(!admits(&one, &[5, 6], 0.5, 10));
    }
}
