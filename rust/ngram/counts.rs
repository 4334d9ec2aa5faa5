//! N-gram counting for any order, per sequence (no n-gram crosses a sequence boundary), mergeable.
//!
//! An n-gram of ids is packed into a `u128` key, `bits` bits per id with the last id in the low
//! bits, so the key of its context (the first n-1 ids) is `key >> bits` and a sliding window is a
//! shift and a mask. This bounds `order * bits <= 128`: order 8 for vocabularies up to 65,536 ids.

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};

/// The largest order accepted whatever the vocabulary size.
pub const MAX_ORDER: usize = 32;

/// Key spaces up to this many bits are counted in a dense array (e.g. bigrams over <= 512 ids,
/// 2 MiB), larger ones in a hash map. Both are indexed by the same packed key.
const DENSE_BITS: u32 = 18;

/// Slots of the dense matrix of [`NgramCounts::add_runs`] (512 x 512 `u32`: 1 MiB, the size of
/// a core's L2 cache on current x86 servers).
const HOT: usize = 512;
const _: () = assert!(HOT.is_power_of_two());

/// Counts indexed by packed key.
#[derive(Clone, Debug)]
enum Table {
    Dense(Vec<u64>),
    /// Keys of at most 64 bits (half the memory per entry of `Wide`, so fewer cache misses).
    Sparse(FxHashMap<u64, u64>),
    Wide(FxHashMap<u128, u64>),
}

impl Table {
    fn new(key_bits: u32) -> Self {
        if key_bits <= DENSE_BITS {
            Table::Dense(vec![0; 1usize << key_bits])
        } else if key_bits <= 64 {
            Table::Sparse(FxHashMap::default())
        } else {
            Table::Wide(FxHashMap::default())
        }
    }

    #[inline]
    fn add(&mut self, key: u128, c: u64) {
        match self {
            Table::Dense(v) => v[key as usize] += c,
            Table::Sparse(m) => *m.entry(key as u64).or_insert(0) += c,
            Table::Wide(m) => *m.entry(key).or_insert(0) += c,
        }
    }

    #[inline]
    fn get(&self, key: u128) -> u64 {
        match self {
            Table::Dense(v) => usize::try_from(key)
                .ok()
                .and_then(|k| v.get(k))
                .copied()
                .unwrap_or(0),
            Table::Sparse(m) => u64::try_from(key)
                .ok()
                .and_then(|k| m.get(&k))
                .copied()
                .unwrap_or(0),
            Table::Wide(m) => m.get(&key).copied().unwrap_or(0),
        }
    }

    /// Non-zero entries, in no particular order.
    fn iter(&self) -> Box<dyn Iterator<Item = (u128, u64)> + '_> {
        match self {
            Table::Dense(v) => Box::new(
                v.iter()
                    .enumerate()
                    .filter(|(_, &c)| c > 0)
                    .map(|(k, &c)| (k as u128, c)),
            ),
            Table::Sparse(m) => Box::new(m.iter().map(|(&k, &c)| (k as u128, c))),
            Table::Wide(m) => Box::new(m.iter().map(|(&k, &c)| (k, c))),
        }
    }

    /// Room for `n` more keys without growing (hash tables).
    fn reserve(&mut self, n: usize) {
        match self {
            Table::Dense(_) => {}
            Table::Sparse(m) => m.reserve(n),
            Table::Wide(m) => m.reserve(n),
        }
    }

    fn distinct(&self) -> usize {
        match self {
            Table::Dense(v) => v.iter().filter(|&&c| c > 0).count(),
            Table::Sparse(m) => m.len(),
            Table::Wide(m) => m.len(),
        }
    }

    fn add_all(&mut self, other: &Table) {
        match (self, other) {
            (Table::Dense(a), Table::Dense(b)) => a.iter_mut().zip(b).for_each(|(x, y)| *x += y),
            (this, other) => other.iter().for_each(|(k, c)| this.add(k, c)),
        }
    }
}

impl PartialEq for Table {
    fn eq(&self, other: &Self) -> bool {
        let mut a: Vec<_> = self.iter().collect();
        let mut b: Vec<_> = other.iter().collect();
        a.sort_unstable();
        b.sort_unstable();
        a == b
    }
}

impl Default for Table {
    fn default() -> Self {
        Table::Sparse(FxHashMap::default())
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NgramCounts {
    order: usize,
    id_space: u32,
    bits: u32,
    grams: Table,
    contexts: Table,
    total: u64,
}

/// Calls `f(key)` with the packed key (`bits` per id, the oldest highest, under `mask`) of each
/// window of `n` ids of `ids`, in order. A bigram's key is made from its two ids alone, not from
/// the previous key, so successive windows do not wait on each other.
#[inline(always)]
fn keys64(ids: &[u32], n: usize, bits: u32, mask: u64, mut f: impl FnMut(u64)) {
    if ids.len() < n {
        return;
    }
    match n {
        1 => ids.iter().for_each(|&id| f(id as u64 & mask)),
        2 => ids
            .windows(2)
            .for_each(|w| f((((w[0] as u64) << bits) | w[1] as u64) & mask)),
        _ => {
            let mut key = ids[..n - 1]
                .iter()
                .fold(0u64, |k, &id| (k << bits) | id as u64);
            for &id in &ids[n - 1..] {
                key = ((key << bits) | id as u64) & mask;
                f(key);
            }
        }
    }
}

/// How often each id `< v` occurs in `ids`; an error names the first id out of range. (Four
/// histograms, one per position modulo 4, so that repeated ids do not wait on each other's
/// increments.)
fn frequencies(ids: &[u32], v: usize) -> Result<Vec<u32>> {
    let mut four = vec![[0u32; 4]; v];
    let mut quads = ids.chunks_exact(4);
    for q in &mut quads {
        for (lane, &id) in q.iter().enumerate() {
            match four.get_mut(id as usize) {
                Some(f) => f[lane] += 1,
                None => return Err(out_of_range(id, v)),
            }
        }
    }
    for &id in quads.remainder() {
        match four.get_mut(id as usize) {
            Some(f) => f[0] += 1,
            None => return Err(out_of_range(id, v)),
        }
    }
    Ok(four.iter().map(|f| f.iter().sum()).collect())
}

fn out_of_range(id: u32, v: usize) -> Error {
    Error::invalid("ids", format!("id {id} is out of range for {v} ids"))
}

/// An error naming the first id of `ids` that is not `< v`. (The largest id is found first, a
/// loop without an early exit that the compiler vectorizes.)
fn check_ids(ids: &[u32], v: usize) -> Result<()> {
    match ids.iter().copied().max() {
        Some(top) if top as usize >= v => {
            let bad = ids.iter().find(|&&id| id as usize >= v).copied();
            Err(out_of_range(bad.unwrap_or(top), v))
        }
        _ => Ok(()),
    }
}

/// The packed bigram keys and counts of the non-zero cells of the [`HOT`] x [`HOT`] matrix whose
/// rows and columns stand for the ids `by_freq`. Cells are read sixteen at a time, blocks of
/// zeros skipped, and the others written without a branch per cell (a tenth of the cells are
/// non-zero, at random: a branch on each would mostly be mispredicted).
fn nonzero_cells(cells: &[u32], by_freq: &[u32], bits: u32) -> Vec<(u64, u32)> {
    const BLOCK: usize = 16;
    let mut hot: Vec<(u64, u32)> = Vec::new();
    for (&a, row) in by_freq.iter().zip(cells.chunks_exact(HOT)) {
        for (cols, block) in by_freq.chunks(BLOCK).zip(row.chunks_exact(BLOCK)) {
            if block.iter().fold(0, |x, &n| x | n) == 0 {
                continue;
            }
            hot.reserve(BLOCK);
            let slots = &mut hot.spare_capacity_mut()[..BLOCK];
            let mut w = 0;
            for (&b, &n) in cols.iter().zip(block) {
                slots[w].write((((a as u64) << bits) | b as u64, n));
                w += (n > 0) as usize;
            }
            // SAFETY: the first `w` spare slots were written above
            unsafe { hot.set_len(hot.len() + w) };
        }
    }
    hot
}

/// Bits needed for ids `0..id_space`.
fn bits_for(id_space: u32) -> u32 {
    (32 - id_space.saturating_sub(1).leading_zeros()).max(1)
}

impl NgramCounts {
    /// Empty counts of n-grams of `order` over ids `0..id_space`.
    pub fn new(order: usize, id_space: u32) -> Result<Self> {
        if order < 1 {
            return Err(Error::invalid(
                "order",
                format!("must be at least 1, got {order}"),
            ));
        }
        if order > MAX_ORDER {
            return Err(Error::invalid(
                "order",
                format!("must be at most {MAX_ORDER}, got {order}"),
            ));
        }
        if id_space == 0 {
            return Err(Error::invalid("vocab", "the vocabulary is empty"));
        }
        let bits = bits_for(id_space);
        if bits as usize * order > 128 {
            return Err(Error::invalid(
                "order",
                format!(
                    "order {order} is too high for a vocabulary of {id_space} ids \
                     (at most {} with this vocabulary)",
                    128 / bits
                ),
            ));
        }
        let key_bits = bits * order as u32;
        Ok(NgramCounts {
            order,
            id_space,
            bits,
            grams: Table::new(key_bits),
            contexts: Table::new(key_bits - bits),
            total: 0,
        })
    }

    pub fn order(&self) -> usize {
        self.order
    }

    pub fn id_space(&self) -> u32 {
        self.id_space
    }

    /// Number of n-grams counted (with multiplicity).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Number of distinct n-grams.
    pub fn distinct(&self) -> usize {
        self.grams.distinct()
    }

    #[inline]
    fn mask(&self) -> u128 {
        if self.bits as usize * self.order >= 128 {
            u128::MAX
        } else {
            (1u128 << (self.bits as usize * self.order)) - 1
        }
    }

    /// The packed key of a sequence of ids (an n-gram or a context).
    #[inline]
    pub fn key(&self, ids: &[u32]) -> u128 {
        ids.iter()
            .fold(0u128, |k, &id| (k << self.bits) | id as u128)
    }

    /// Calls `f(gram_key)` for every window of `order` ids of `ids`.
    #[inline]
    pub fn for_each_window(&self, ids: &[u32], mut f: impl FnMut(u128)) {
        let n = self.order;
        if ids.len() < n {
            return;
        }
        let mask = self.mask();
        if mask <= u64::MAX as u128 {
            return keys64(ids, n, self.bits, mask as u64, |key| f(key as u128));
        }
        let mut key = self.key(&ids[..n - 1]);
        for &id in &ids[n - 1..] {
            key = ((key << self.bits) | id as u128) & mask;
            f(key);
        }
    }

    /// Calls `f(count, context count)` for each n-gram of `ids` in order (ids `< id_space`), with
    /// a loop of its own for the common table layouts (64-bit keys, no lookup through the enum).
    pub fn for_each_count(&self, ids: &[u32], mut f: impl FnMut(u64, u64)) {
        let (n, bits) = (self.order, self.bits);
        if ids.len() < n {
            return;
        }
        match (&self.grams, &self.contexts) {
            (Table::Dense(g), Table::Dense(c)) => {
                // keys fit in 64 bits here (at most DENSE_BITS)
                keys64(ids, n, bits, (g.len() - 1) as u64, |key| {
                    let cc = c.get((key >> bits) as usize).copied().unwrap_or(0);
                    f(g[key as usize], cc);
                });
            }
            (Table::Sparse(g), Table::Dense(c)) if n == 2 => {
                for w in ids.windows(2) {
                    let key = ((w[0] as u64) << bits) | w[1] as u64;
                    let cc = c.get(w[0] as usize).copied().unwrap_or(0);
                    f(g.get(&key).copied().unwrap_or(0), cc);
                }
            }
            _ => self.for_each_window(ids, |key| {
                f(self.count_key(key), self.context_count_key(key >> bits))
            }),
        }
    }

    /// Counts every n-gram of one sequence. Ids must be `< id_space`.
    pub fn add_sequence(&mut self, ids: &[u32]) -> Result<()> {
        check_ids(ids, self.id_space as usize)?;
        let bits = self.bits;
        let (mut grams, mut contexts) = (
            std::mem::take(&mut self.grams),
            std::mem::take(&mut self.contexts),
        );
        let mut added = 0u64;
        match (&mut grams, &mut contexts) {
            // the common small-vocabulary case, without a branch per window
            (Table::Dense(g), Table::Dense(c)) => {
                // keys fit in 64 bits here (at most DENSE_BITS)
                let n = self.order;
                keys64(ids, n, bits, (g.len() - 1) as u64, |key| {
                    g[key as usize] += 1;
                    c[(key >> bits) as usize] += 1;
                });
                added = (ids.len() + 1).saturating_sub(n) as u64;
            }
            // bigrams over a larger vocabulary: 64-bit keys, contexts still dense
            (Table::Sparse(g), Table::Dense(c)) if self.order == 2 => {
                for w in ids.windows(2) {
                    *g.entry(((w[0] as u64) << bits) | w[1] as u64).or_insert(0) += 1;
                    c[w[0] as usize] += 1;
                }
                added = ids.len().saturating_sub(1) as u64;
            }
            (g, c) => self.for_each_window(ids, |key| {
                g.add(key, 1);
                c.add(key >> bits, 1);
                added += 1;
            }),
        }
        self.grams = grams;
        self.contexts = contexts;
        self.total += added;
        Ok(())
    }

    /// Whether [`NgramCounts::add_runs`] counts a large input faster than one
    /// [`NgramCounts::add_sequence`] per document (otherwise it is the same).
    pub fn counts_in_bulk(&self) -> bool {
        match (&self.grams, &self.contexts) {
            (Table::Dense(_), _) => true,
            (Table::Sparse(_), Table::Dense(_)) => self.order == 2,
            _ => false,
        }
    }

    /// Counts every document of `ids` (documents one after another; `ends[i]` is where the i-th
    /// ends): the same as [`NgramCounts::add_sequence`] on each. In bulk, two cases are faster:
    /// with a dense table and more ids than keys, the contexts are counted as the row sums of
    /// the n-grams at the end; bigrams over a vocabulary too large for a dense table, in a large
    /// input, are counted in two parts: pairs of the [`HOT`] most frequent ids in a small dense
    /// matrix that stays in cache (in Japanese text about 98% of the bigrams), the others in the
    /// hash map.
    pub fn add_runs(&mut self, ids: &[u32], ends: &[usize]) -> Result<()> {
        let docs = || {
            std::iter::once(0)
                .chain(ends.iter().copied())
                .zip(ends)
                .map(|(a, &b)| &ids[a..b])
        };
        let v = self.id_space as usize;
        if let (Table::Dense(g), Table::Dense(c)) = (&mut self.grams, &mut self.contexts) {
            if ids.len() < g.len() {
                return docs().try_for_each(|d| self.add_sequence(d));
            }
            // more ids than keys: count the n-grams alone, then take each context's count as
            // the sum of its row (the n-grams that extend it), which saves an increment per id
            check_ids(ids, v)?;
            let (n, bits, mask) = (self.order, self.bits, (g.len() - 1) as u64);
            let g = g.as_mut_slice();
            for doc in docs() {
                keys64(doc, n, bits, mask, |key| g[key as usize] += 1);
                self.total += (doc.len() + 1).saturating_sub(n) as u64;
            }
            for (cc, row) in c.iter_mut().zip(g.chunks_exact(1 << bits)) {
                *cc = row.iter().sum();
            }
            return Ok(());
        }
        if !self.bigrams_in_bulk(ids) {
            return docs().try_for_each(|d| self.add_sequence(d));
        }
        self.add_bigrams_in_bulk(ids, ends, v, |id| id)
    }

    /// [`NgramCounts::add_runs`] for ids given in another numbering: id `i` of `ids` stands for
    /// id `map[i]` of these counts. Bigrams over a large vocabulary are renamed as they are
    /// counted in bulk; elsewhere `ids` are counted in their own numbering and the counts
    /// renumbered (a small table, or a small input).
    pub fn add_runs_renamed(&mut self, ids: &[u32], ends: &[usize], map: &[u32]) -> Result<()> {
        let v = self.id_space;
        if let Some(&bad) = map.iter().find(|&&id| id >= v) {
            return Err(out_of_range(bad, v as usize));
        }
        if self.bigrams_in_bulk(ids) {
            return self.add_bigrams_in_bulk(ids, ends, map.len(), |id| map[id as usize]);
        }
        let mut own = NgramCounts::new(self.order, (map.len() as u32).max(1))?;
        own.add_runs(ids, ends)?;
        let own = own.remapped(v, |id| map[id as usize])?;
        *self = std::mem::take(self).merged(own)?;
        Ok(())
    }

    /// Whether [`NgramCounts::add_bigrams_in_bulk`] pays for `ids`: bigrams over a vocabulary
    /// too large for a dense table, in a large input.
    fn bigrams_in_bulk(&self, ids: &[u32]) -> bool {
        self.order == 2
            && matches!(
                (&self.grams, &self.contexts),
                (Table::Sparse(_), Table::Dense(_))
            )
            && ids.len() >= 1 << 18
            && ids.len() < u32::MAX as usize
    }

    /// The bulk bigram counting of [`NgramCounts::add_runs`]: the [`HOT`] most frequent ids
    /// pair up in a dense matrix, the other pairs go to the hash map. `ids` are `< v` in their
    /// own numbering and `rename` gives each its id here (already checked to be in range).
    fn add_bigrams_in_bulk(
        &mut self,
        ids: &[u32],
        ends: &[usize],
        v: usize,
        rename: impl Fn(u32) -> u32,
    ) -> Result<()> {
        let docs = std::iter::once(0)
            .chain(ends.iter().copied())
            .zip(ends)
            .map(|(a, &b)| &ids[a..b]);
        // the slots of the matrix go to the most frequent ids; the others are "cold" (HOT)
        let freq = frequencies(ids, v)?;
        let mut by_freq: Vec<u32> = (0..v as u32).filter(|&i| freq[i as usize] > 0).collect();
        by_freq.sort_unstable_by(|&a, &b| freq[b as usize].cmp(&freq[a as usize]).then(a.cmp(&b)));
        by_freq.truncate(HOT);
        let mut slot = vec![HOT as u32; v];
        for (s, &id) in by_freq.iter().enumerate() {
            slot[id as usize] = s as u32;
        }
        let mut cells = vec![0u32; HOT * HOT];
        let bits = self.bits;
        let (Table::Sparse(g), Table::Dense(c)) = (&mut self.grams, &mut self.contexts) else {
            unreachable!("checked by bigrams_in_bulk");
        };
        // every id but a document's last is a context once (the last ones are taken off below)
        for (id, &f) in freq.iter().enumerate() {
            if f > 0 {
                c[rename(id as u32) as usize] += f as u64;
            }
        }
        for doc in docs {
            let Some((&first, rest)) = doc.split_first() else {
                continue;
            };
            let (mut a, mut sa) = (first, slot[first as usize]);
            for &b in rest {
                let sb = slot[b as usize];
                // HOT is a power of two, and the slot of a cold id is HOT
                if (sa | sb) < HOT as u32 {
                    cells[sa as usize * HOT + sb as usize] += 1;
                } else {
                    let key = ((rename(a) as u64) << bits) | rename(b) as u64;
                    *g.entry(key).or_insert(0) += 1;
                }
                (a, sa) = (b, sb);
            }
            c[rename(a) as usize] -= 1; // the last id of a document is no context
            self.total += rest.len() as u64;
        }
        let named: Vec<u32> = by_freq.iter().map(|&id| rename(id)).collect();
        let hot = nonzero_cells(&cells, &named, bits);
        g.reserve(hot.len());
        for (key, n) in hot {
            *g.entry(key).or_insert(0) += n as u64;
        }
        Ok(())
    }

    fn check_compatible(&self, other: &NgramCounts) -> Result<()> {
        if self.order != other.order || self.id_space != other.id_space {
            return Err(Error::invalid(
                "other",
                format!(
                    "cannot merge order-{} counts over {} ids with order-{} counts over {} ids",
                    other.order, other.id_space, self.order, self.id_space
                ),
            ));
        }
        Ok(())
    }

    /// Adds `other`'s counts to these (counts of two shards add up to the counts of the whole).
    pub fn merge(&mut self, other: &NgramCounts) -> Result<()> {
        self.check_compatible(other)?;
        self.grams.add_all(&other.grams);
        self.contexts.add_all(&other.contexts);
        self.total += other.total;
        Ok(())
    }

    /// Merges two counts, consuming both (reuses the larger table).
    pub fn merged(self, other: NgramCounts) -> Result<NgramCounts> {
        let (mut big, small) = if self.total >= other.total {
            (self, other)
        } else {
            (other, self)
        };
        big.merge(&small)?;
        Ok(big)
    }

    #[inline]
    pub fn count_key(&self, key: u128) -> u64 {
        self.grams.get(key)
    }

    #[inline]
    pub fn context_count_key(&self, ctx_key: u128) -> u64 {
        self.contexts.get(ctx_key)
    }

    /// Whether keys index a dense array (small key space), so callers may precompute per key.
    pub fn key_space(&self) -> Option<usize> {
        match self.grams {
            Table::Dense(ref v) => Some(v.len()),
            Table::Sparse(_) | Table::Wide(_) => None,
        }
    }

    /// The same for the keys of contexts.
    pub fn context_key_space(&self) -> Option<usize> {
        match self.contexts {
            Table::Dense(ref v) => Some(v.len()),
            Table::Sparse(_) | Table::Wide(_) => None,
        }
    }

    /// Count of one n-gram (`gram.len() == order`).
    pub fn count(&self, gram: &[u32]) -> u64 {
        if gram.len() != self.order {
            return 0;
        }
        self.count_key(self.key(gram))
    }

    /// How often `ctx` (`order - 1` ids) is followed by any id.
    pub fn context_count(&self, ctx: &[u32]) -> u64 {
        if ctx.len() + 1 != self.order {
            return 0;
        }
        self.context_count_key(self.key(ctx))
    }

    pub fn bits(&self) -> u32 {
        self.bits
    }

    fn unpack(&self, key: u128, out: &mut Vec<u32>) {
        let m = (1u128 << self.bits) - 1;
        for i in (0..self.order).rev() {
            out.push(((key >> (i as u32 * self.bits)) & m) as u32);
        }
    }

    /// Every distinct n-gram (flattened, `order` ids each) and its count, in lexicographic order
    /// of ids.
    pub fn entries(&self) -> (Vec<u32>, Vec<u64>) {
        let mut keys: Vec<(u128, u64)> = self.grams.iter().collect();
        keys.sort_unstable();
        let mut ids = Vec::with_capacity(keys.len() * self.order);
        let mut counts = Vec::with_capacity(keys.len());
        for (k, c) in keys {
            self.unpack(k, &mut ids);
            counts.push(c);
        }
        (ids, counts)
    }

    /// Counts from `entries()`-style arrays (the inverse of [`NgramCounts::entries`]).
    pub fn from_entries(order: usize, id_space: u32, ids: &[u32], counts: &[u64]) -> Result<Self> {
        let mut out = NgramCounts::new(order, id_space)?;
        if ids.len() != counts.len() * order {
            return Err(Error::Corrupt(format!(
                "{} ids for {} order-{order} n-grams",
                ids.len(),
                counts.len()
            )));
        }
        for (gram, &c) in ids.chunks_exact(order).zip(counts) {
            if let Some(&bad) = gram.iter().find(|&&id| id >= id_space) {
                return Err(Error::Corrupt(format!(
                    "id {bad} out of range for {id_space} ids"
                )));
            }
            let key = out.key(gram);
            if c == 0 || out.grams.get(key) != 0 {
                return Err(Error::Corrupt(format!(
                    "n-gram {gram:?} has count 0 or appears twice"
                )));
            }
            out.grams.add(key, c);
            out.contexts.add(key >> out.bits, c);
            out.total += c;
        }
        Ok(out)
    }

    /// These counts with every id `i` renamed `map(i)`, over `id_space` ids: to number counts
    /// made before the vocabulary was known by the vocabulary, or to widen their id space. `map`
    /// must be one-to-one on the ids that occur.
    pub fn remapped(&self, id_space: u32, map: impl Fn(u32) -> u32) -> Result<NgramCounts> {
        let mut out = NgramCounts::new(self.order, id_space)?;
        out.grams.reserve(self.grams.distinct());
        let (bits, mask) = (self.bits, (1u128 << self.bits) - 1);
        let mut bad = None;
        let mut add = |key: u128, c: u64| {
            let mut new_key = 0u128;
            for i in (0..self.order).rev() {
                let id = map(((key >> (i as u32 * bits)) & mask) as u32);
                if id >= id_space {
                    bad = Some(id);
                    return;
                }
                new_key = (new_key << out.bits) | id as u128;
            }
            out.grams.add(new_key, c);
            out.contexts.add(new_key >> out.bits, c);
        };
        match &self.grams {
            Table::Dense(v) => v
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .for_each(|(k, &c)| add(k as u128, c)),
            Table::Sparse(m) => m.iter().for_each(|(&k, &c)| add(k as u128, c)),
            Table::Wide(m) => m.iter().for_each(|(&k, &c)| add(k, c)),
        }
        if let Some(id) = bad {
            return Err(Error::invalid(
                "map",
                format!("id {id} is out of range for {id_space} ids"),
            ));
        }
        out.total = self.total;
        Ok(out)
    }

    /// The dense `id_space x id_space` matrix of bigram counts (row = context, column = token).
    pub fn dense_bigrams(&self, max_cells: usize) -> Result<Vec<u64>> {
        if self.order != 2 {
            return Err(Error::invalid(
                "order",
                format!(
                    "a bigram matrix needs order-2 counts, these are order {}",
                    self.order
                ),
            ));
        }
        let v = self.id_space as usize;
        if v.saturating_mul(v) > max_cells {
            return Err(Error::invalid(
                "vocab",
                format!("a {v} x {v} matrix is too large (limit {max_cells} cells)"),
            ));
        }
        let mut m = crate::memory::filled(
            "max_cells",
            || format!("a {v} x {v} matrix"),
            v.checked_mul(v),
            0u64,
        )?;
        let mask = (1u128 << self.bits) - 1;
        for (k, c) in self.grams.iter() {
            let (a, b) = ((k >> self.bits) as usize, (k & mask) as usize);
            m[a * v + b] = c;
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_contexts() {
        let mut c = NgramCounts::new(2, 5).unwrap();
        c.add_sequence(&[1, 2, 1, 2]).unwrap();
        c.add_sequence(&[2]).unwrap(); // shorter than the order: nothing
        assert_eq!(c.count(&[1, 2]), 2);
        assert_eq!(c.count(&[2, 1]), 1);
        assert_eq!(c.context_count(&[1]), 2);
        assert_eq!(c.context_count(&[2]), 1);
        assert_eq!(c.total(), 3);
        let (ids, counts) = c.entries();
        assert_eq!(ids, vec![1, 2, 2, 1]);
        assert_eq!(counts, vec![2, 1]);
        let back = NgramCounts::from_entries(2, 5, &ids, &counts).unwrap();
        assert_eq!(back, c);
        let m = c.dense_bigrams(100).unwrap();
        assert_eq!(m[5 + 2], 2);
    }

    #[test]
    fn no_ngram_crosses_sequences_and_merge_adds_up() {
        let mut whole = NgramCounts::new(3, 4).unwrap();
        let mut a = NgramCounts::new(3, 4).unwrap();
        let mut b = NgramCounts::new(3, 4).unwrap();
        whole.add_sequence(&[0, 1, 2, 3]).unwrap();
        whole.add_sequence(&[3, 2, 1]).unwrap();
        a.add_sequence(&[0, 1, 2, 3]).unwrap();
        b.add_sequence(&[3, 2, 1]).unwrap();
        assert_eq!(whole.count(&[2, 3, 3]), 0);
        assert_eq!(a.merged(b).unwrap(), whole);
    }

    #[test]
    fn add_runs_equals_add_sequence() {
        // a vocabulary too large for a dense table and more ids than the matrix has slots, so
        // both halves of the fast path count; and a small input that takes the plain path
        let v = 3000u32;
        let mut state = 12345u64;
        let mut next = |m: u32| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % m as u64) as u32
        };
        let mut ids = Vec::new();
        let mut ends = Vec::new();
        while ids.len() < 1 << 19 {
            let n = next(5000) as usize;
            ids.extend((0..n).map(|_| next(v).min(next(v)).min(next(v))));
            ends.push(ids.len());
        }
        // and small vocabularies (dense tables), where contexts are the row sums
        let small: Vec<u32> = ids.iter().map(|&id| id % 40).collect();
        let cases = [
            (2, v, &ids),
            (1, 40, &small),
            (2, 40, &small),
            (3, 40, &small),
        ];
        for ((order, v, ids), cut) in cases.into_iter().flat_map(|c| [(c, ends.len()), (c, 3)]) {
            let (ids, ends) = (&ids[..ends[cut - 1]], &ends[..cut]);
            let mut want = NgramCounts::new(order, v).unwrap();
            let mut start = 0;
            for &end in ends {
                want.add_sequence(&ids[start..end]).unwrap();
                start = end;
            }
            let mut got = NgramCounts::new(order, v).unwrap();
            got.add_runs(ids, ends).unwrap();
            assert_eq!(got, want);
            assert_eq!(got.total(), want.total());
            assert_eq!(got.entries(), want.entries());
            for ctx in 0..v.min(50) {
                let ctx = vec![ctx; order - 1];
                assert_eq!(got.context_count(&ctx), want.context_count(&ctx));
            }
        }
        let mut bad = NgramCounts::new(2, v).unwrap();
        let mut ids = ids.clone();
        ids.push(v);
        assert!(bad.add_runs(&ids, &[ids.len()]).is_err());
    }

    #[test]
    fn add_runs_renamed_equals_add_runs_of_the_renamed_ids() {
        // a permutation of 3000 ids (bulk, renamed as counted) and of 40 (a dense table)
        for (v, len) in [(3000u32, 1usize << 19), (3000, 5000), (40, 1 << 19)] {
            let map: Vec<u32> = (0..v).map(|i| (i * 7 + 3) % v).collect();
            let ids: Vec<u32> = (0..len as u64)
                .map(|i| ((i * i + 11 * i) % (v as u64 * 3 / 2)).min(v as u64 - 1) as u32)
                .collect();
            let ends: Vec<usize> = (1..=len / 1000).map(|d| d * 1000).chain([len]).collect();
            let renamed: Vec<u32> = ids.iter().map(|&i| map[i as usize]).collect();
            let mut want = NgramCounts::new(2, v).unwrap();
            want.add_runs(&renamed, &ends).unwrap();
            let mut got = NgramCounts::new(2, v).unwrap();
            got.add_runs_renamed(&ids, &ends, &map).unwrap();
            assert_eq!(got, want, "v={v} len={len}");
            assert_eq!(got.total(), want.total());
        }
        let mut c = NgramCounts::new(2, 10).unwrap();
        assert!(c.add_runs_renamed(&[0, 1], &[2], &[0, 10]).is_err());
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(NgramCounts::new(0, 10).is_err());
        assert!(NgramCounts::new(9, 1 << 17).is_err());
        assert!(NgramCounts::new(8, 1 << 16).is_ok());
        let mut c = NgramCounts::new(1, 3).unwrap();
        assert!(c.add_sequence(&[3]).is_err());
        assert!(c.merge(&NgramCounts::new(2, 3).unwrap()).is_err());
    }
}
