//! Sorted arrays of packed n-gram keys and their counts: the storage of [`super::model::Counts`]
//! and the working form of modified Kneser-Ney estimation.
//!
//! Keys are packed as [`super::model::Shape::key`] packs them (the last id in the low bits), so
//! an array sorted by key is in lexicographic order of ids and the n-grams that extend one
//! context are next to each other. Counting sorts the windows of the documents once per order
//! and takes run lengths; merging two shards is a linear merge; a lookup is a binary search.

use rayon::prelude::*;

use crate::error::{Error, Result};

/// Below this many keys a sort runs on one thread.
const PARALLEL_SORT: usize = 1 << 16;

/// Distinct keys in increasing order, each with its count (`> 0`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sorted {
    pub keys: Vec<u128>,
    pub counts: Vec<u64>,
}

/// Hands the pages of freed buffers back to the kernel now. The allocator keeps freed pages a
/// second before it returns them (see `keep_freed_pages`), which suits buffers freed and
/// allocated again soon; counting and estimation free large arrays that nothing reuses, and
/// would otherwise add them to the peak of the arrays allocated next.
pub fn release_freed() {
    // SAFETY: asks the allocator to collect its free pages; no pointer is involved
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// Sorts keys (in parallel when there are many).
pub fn sort_keys(keys: &mut [u128]) {
    if keys.len() >= PARALLEL_SORT && rayon::current_num_threads() > 1 {
        keys.par_sort_unstable();
    } else {
        keys.sort_unstable();
    }
}

impl Sorted {
    /// The distinct keys of `keys` (each occurrence counts 1), reusing its memory.
    pub fn from_keys(mut keys: Vec<u128>) -> Self {
        sort_keys(&mut keys);
        // (the counts are allocated at their size, counted first)
        let distinct =
            (!keys.is_empty()) as usize + keys.windows(2).filter(|w| w[0] != w[1]).count();
        let mut counts: Vec<u64> = Vec::with_capacity(distinct);
        let mut w = 0usize;
        for i in 0..keys.len() {
            let key = keys[i];
            if w > 0 && keys[w - 1] == key {
                *counts.last_mut().expect("a count per written key") += 1;
            } else {
                keys[w] = key;
                w += 1;
                counts.push(1);
            }
        }
        keys.truncate(w);
        keys.shrink_to_fit();
        Sorted { keys, counts }
    }

    /// The distinct keys of `(key, count)` pairs in any order, the counts of equal keys added.
    pub fn from_counted(mut pairs: Vec<(u128, u64)>) -> Self {
        if pairs.len() >= PARALLEL_SORT && rayon::current_num_threads() > 1 {
            pairs.par_sort_unstable_by_key(|p| p.0);
        } else {
            pairs.sort_unstable_by_key(|p| p.0);
        }
        // equal keys summed in place, then split into two arrays of their size
        let mut w = 0usize;
        for i in 0..pairs.len() {
            let (key, c) = pairs[i];
            if w > 0 && pairs[w - 1].0 == key {
                pairs[w - 1].1 += c;
            } else {
                pairs[w] = (key, c);
                w += 1;
            }
        }
        pairs.truncate(w);
        let keys = pairs.iter().map(|p| p.0).collect();
        let counts = pairs.iter().map(|p| p.1).collect();
        Sorted { keys, counts }
    }

    /// The suffixes `g & mask` of `src`'s keys (each `bits` bits or fewer) with the counts of
    /// the keys they come from added, and `extra`'s keys and counts beside them: the counts of an
    /// order from those of the order above and the windows that only reach this order. Where
    /// the suffix and a position fit in 128 bits together they are sorted as one `u128` (16
    /// bytes an entry, where `(key, count)` pairs take 32), and the counts are gathered by
    /// position after.
    pub fn from_suffixes(src: &Sorted, mask: u128, bits: u32, extra: &Sorted) -> Sorted {
        let n = src.len() + extra.len();
        if bits > 96 || n >= u32::MAX as usize {
            let pairs: Vec<(u128, u64)> = src
                .iter()
                .map(|(g, c)| (g & mask, c))
                .chain(extra.iter())
                .collect();
            return Sorted::from_counted(pairs);
        }
        let mut packed: Vec<u128> = Vec::with_capacity(n);
        packed.extend(
            src.keys
                .iter()
                .enumerate()
                .map(|(i, &g)| ((g & mask) << 32) | i as u128),
        );
        let base = src.len();
        packed.extend(
            extra
                .keys
                .iter()
                .enumerate()
                .map(|(j, &g)| (g << 32) | (base + j) as u128),
        );
        sort_keys(&mut packed);
        let count_of = |p: u128| -> u64 {
            let i = p as u32 as usize;
            if i < base {
                src.counts[i]
            } else {
                extra.counts[i - base]
            }
        };
        let distinct = (!packed.is_empty()) as usize
            + packed
                .windows(2)
                .filter(|w| w[0] >> 32 != w[1] >> 32)
                .count();
        let (mut keys, mut counts) = (Vec::with_capacity(distinct), Vec::with_capacity(distinct));
        for &p in &packed {
            let key = p >> 32;
            if keys.last() == Some(&key) {
                *counts.last_mut().expect("a count per key") += count_of(p);
            } else {
                keys.push(key);
                counts.push(count_of(p));
            }
        }
        Sorted { keys, counts }
    }

    /// The same from `(key, count)` pairs in any order; an error names a key given twice or a
    /// count of 0.
    pub fn from_pairs(mut pairs: Vec<(u128, u64)>) -> Result<Self> {
        pairs.sort_unstable_by_key(|p| p.0);
        if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::Corrupt(format!("key {} appears twice", w[0].0)));
        }
        if pairs.iter().any(|p| p.1 == 0) {
            return Err(Error::Corrupt("an n-gram has count 0".into()));
        }
        Ok(Sorted {
            keys: pairs.iter().map(|p| p.0).collect(),
            counts: pairs.iter().map(|p| p.1).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The position of `key`, if present.
    #[inline]
    pub fn find(&self, key: u128) -> Option<usize> {
        self.keys.binary_search(&key).ok()
    }

    #[inline]
    pub fn count(&self, key: u128) -> u64 {
        self.find(key).map_or(0, |i| self.counts[i])
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u128, u64)> + '_ {
        self.keys.iter().copied().zip(self.counts.iter().copied())
    }

    /// The keys of both with their counts added (a linear merge).
    pub fn merged(&self, other: &Sorted) -> Sorted {
        if self.is_empty() {
            return other.clone();
        }
        if other.is_empty() {
            return self.clone();
        }
        let (a, b) = (&self.keys, &other.keys);
        // the size of the result first, so that its arrays are allocated once at their size
        let (mut i, mut j, mut cap) = (0, 0, 0usize);
        while i < a.len() && j < b.len() {
            let (x, y) = (a[i], b[j]);
            i += (x <= y) as usize;
            j += (y <= x) as usize;
            cap += 1;
        }
        cap += a.len() - i + b.len() - j;
        let (mut keys, mut counts) = (Vec::with_capacity(cap), Vec::with_capacity(cap));
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => {
                    keys.push(a[i]);
                    counts.push(self.counts[i]);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    keys.push(b[j]);
                    counts.push(other.counts[j]);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    keys.push(a[i]);
                    counts.push(self.counts[i] + other.counts[j]);
                    i += 1;
                    j += 1;
                }
            }
        }
        keys.extend_from_slice(&a[i..]);
        counts.extend_from_slice(&self.counts[i..]);
        keys.extend_from_slice(&b[j..]);
        counts.extend_from_slice(&other.counts[j..]);
        debug_assert_eq!(keys.len(), keys.capacity());
        Sorted { keys, counts }
    }
}

/// For each key of `keys` mapped by `f` (any order), its position in the sorted `within`: one
/// sort of `(mapped key, position)` pairs and a merge walk. An error when a mapped key is not in
/// `within` (`what` names what was looked up).
pub fn positions(
    keys: &[u128],
    within: &[u128],
    f: impl Fn(u128) -> u128 + Sync,
    what: &str,
) -> Result<Vec<u32>> {
    if within.len() >= u32::MAX as usize {
        return Err(Error::invalid(
            "counts",
            "too many distinct n-grams of one order",
        ));
    }
    let mut pairs: Vec<(u128, u32)> = keys
        .iter()
        .enumerate()
        .map(|(i, &k)| (f(k), i as u32))
        .collect();
    if pairs.len() >= PARALLEL_SORT && rayon::current_num_threads() > 1 {
        pairs.par_sort_unstable_by_key(|p| p.0);
    } else {
        pairs.sort_unstable_by_key(|p| p.0);
    }
    let mut out = vec![0u32; keys.len()];
    let mut j = 0usize;
    for &(k, i) in &pairs {
        while j < within.len() && within[j] < k {
            j += 1;
        }
        if j == within.len() || within[j] != k {
            return Err(Error::Corrupt(format!(
                "the counts lack the {what} of an n-gram they hold"
            )));
        }
        out[i as usize] = j as u32;
    }
    Ok(out)
}

/// For keys sorted so that `f` of them rises (e.g. their contexts), each one's position in the
/// sorted `within`, by one walk over both.
pub fn positions_of_rising(
    keys: &[u128],
    within: &[u128],
    f: impl Fn(u128) -> u128,
    what: &str,
) -> Result<Vec<u32>> {
    let mut out = Vec::with_capacity(keys.len());
    let mut j = 0usize;
    for &key in keys {
        let k = f(key);
        while j < within.len() && within[j] < k {
            j += 1;
        }
        if j == within.len() || within[j] != k {
            return Err(Error::Corrupt(format!(
                "the counts lack the {what} of an n-gram they hold"
            )));
        }
        out.push(j as u32);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_lengths_merge_and_positions() {
        let a = Sorted::from_keys(vec![5, 3, 5, 9, 3, 5]);
        assert_eq!(a.keys, vec![3, 5, 9]);
        assert_eq!(a.counts, vec![2, 3, 1]);
        let b = Sorted::from_keys(vec![4, 9, 10]);
        let m = a.merged(&b);
        assert_eq!(m.keys, vec![3, 4, 5, 9, 10]);
        assert_eq!(m.counts, vec![2, 1, 3, 2, 1]);
        assert_eq!(m.count(9), 2);
        assert_eq!(m.count(7), 0);
        assert_eq!(m.total(), 9);
        let p = positions(&[18, 6, 20], &m.keys, |k| k / 2, "half").unwrap();
        assert_eq!(p, vec![3, 0, 4]);
        assert!(positions(&[14], &m.keys, |k| k / 2, "half").is_err());
        let p = positions_of_rising(&[6, 8, 10, 18], &m.keys, |k| k / 2, "half").unwrap();
        assert_eq!(p, vec![0, 1, 2, 3]);
        let c = Sorted::from_counted(vec![(9, 2), (3, 1), (9, 5)]);
        assert_eq!((c.keys, c.counts), (vec![3, 9], vec![1, 7]));
        // suffixes (the low 4 bits here) summed, with the extra keys beside them; packed with
        // their positions or as pairs (suffixes wider than 96 bits), the same
        let above = Sorted::from_counted(vec![(0x13, 2), (0x23, 5), (0x24, 1), (0x31, 4)]);
        let extra = Sorted::from_counted(vec![(0x3, 1), (0x7, 6)]);
        let want = (vec![0x1, 0x3, 0x4, 0x7], vec![4, 8, 1, 6]);
        for bits in [4, 100] {
            let s = Sorted::from_suffixes(&above, 0xf, bits, &extra);
            assert_eq!((s.keys, s.counts), want);
        }
        let none = Sorted::from_suffixes(&Sorted::default(), 0xf, 4, &Sorted::default());
        assert!(none.is_empty());
        assert!(Sorted::from_pairs(vec![(1, 2), (1, 3)]).is_err());
        assert!(Sorted::from_pairs(vec![(1, 0)]).is_err());
        assert_eq!(
            Sorted::from_pairs(vec![(4, 1), (1, 2)]).unwrap().keys,
            vec![1, 4]
        );
    }
}
