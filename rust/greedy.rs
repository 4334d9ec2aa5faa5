//! Greedy clustering against kept representatives: the default dedup rule.
//!
//! Documents are decided one after another in *decision order* (input order, or longest first):
//! a document is removed iff an earlier **kept** document that shares an LSH bucket with it has
//! similarity >= threshold. Its `duplicate_of` is the most similar such kept document (ties: the
//! smallest document number) and its `similarity` that exact value, so always >= threshold. This
//! is datasketch's query-then-insert made exact; unlike connected components it never chains.
//!
//! Cost is linear in the corpus: only kept documents enter the band tables ([`KeptTable`]), so a
//! document is verified against the kept documents of its buckets, not every member (m copies of
//! one text cost O(m)). An exact copy of a kept document (equal 64-bit digest of the bytes,
//! confirmed by comparing the texts) is settled with similarity 1 without shingling, and equal
//! texts within a chunk are shingled once.
//!
//! Work goes chunk by chunk ([`Greedy::decide`]): the lookups against the kept documents of
//! earlier chunks and all shingling run in parallel, then one ordered pass settles the chunk
//! against the kept documents earlier in the same chunk. Every decision depends only on the
//! documents before it, so the result is the same for any chunking and any thread count.

use std::borrow::Cow;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::cluster::{Config, Verify};
use crate::minhash::{estimate_jaccard, Worker};
use crate::shingle::{jaccard_sorted, Scratch};

/// Values of a [`MultiMap`] at or above this are indices into its overflow lists.
const MULTI: u32 = 1 << 31;

/// The most documents the greedy tables can number (values above are overflow indices).
pub const MAX_DOCS: usize = MULTI as usize;

/// The bits of a key a [`MultiMap`] tells apart: band keys are made this wide
/// ([`crate::lsh::band_key`]), so every engine buckets alike.
pub const KEY_BITS: u32 = 40;

/// Keys are spread over this many tables by their low bits; each table keeps the next 32 bits.
const SHARD_BITS: u32 = KEY_BITS - 32;
const SHARDS: usize = 1 << SHARD_BITS;

/// Documents decided before [`Greedy::size_tables`] sizes the tables from the share kept (the first
/// documents of a corpus have nothing before them to duplicate).
pub const SIZE_AFTER: usize = 16_384;

/// Slot arrays of at least this many bytes are mapped from the system rather than allocated.
const MAPPED_SLOTS_BYTES: usize = 4 << 20;

/// The slot array of a [`MultiMap`], zeroed when made (a zero key is an empty slot). A large one
/// is an anonymous memory map ([`crate::memory::zeroed_map`]), so the array a table replaces when it grows goes back to the
/// system the moment it is dropped: the allocator holds freed pages for seconds (see
/// `keep_freed_pages` in lib.rs), and the tables of every band grow within the same chunk, so it
/// would hold all their old arrays beside the new ones (10 million documents: 4.1 GB peak instead
/// of 3.5 GB).
enum Slots {
    Heap(Vec<[u32; 2]>),
    Mapped(memmap2::MmapMut),
}

impl Slots {
    fn zeroed(n: usize) -> Self {
        if n * 8 >= MAPPED_SLOTS_BYTES {
            if let Some(m) = crate::memory::zeroed_map(n * 8) {
                return Slots::Mapped(m);
            }
        }
        Slots::Heap(vec![[0, 0]; n])
    }
}

impl Default for Slots {
    fn default() -> Self {
        Slots::Heap(Vec::new())
    }
}

impl std::ops::Deref for Slots {
    type Target = [[u32; 2]];
    fn deref(&self) -> &[[u32; 2]] {
        match self {
            Slots::Heap(v) => v,
            // SAFETY: the map is page-aligned, `n * 8` bytes long and only ever holds `[u32; 2]`
            // values (any bytes are valid ones); it lives as long as `self`
            Slots::Mapped(m) => unsafe {
                std::slice::from_raw_parts(m.as_ptr().cast(), m.len() / 8)
            },
        }
    }
}

impl std::ops::DerefMut for Slots {
    fn deref_mut(&mut self) -> &mut [[u32; 2]] {
        match self {
            Slots::Heap(v) => v,
            // SAFETY: as in `deref`, and `&mut self` makes this the only reference
            Slots::Mapped(m) => unsafe {
                std::slice::from_raw_parts_mut(m.as_mut_ptr().cast(), m.len() / 8)
            },
        }
    }
}

impl Clone for Slots {
    fn clone(&self) -> Self {
        let mut copy = Slots::zeroed(self.len());
        copy.copy_from_slice(self);
        copy
    }
}

impl std::fmt::Debug for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slots({})", self.len())
    }
}

/// `u64 -> documents` over the low [`KEY_BITS`] bits of the key (keys equal there are one
/// key), with one `u32` per key in the common case of a single document: 2^8 open-addressing
/// tables with linear probing, each a slice of one array of (the 32 key bits above the table's,
/// the value) pairs, 8 bytes a slot, a key and its value side by side so a lookup touches one
/// cache line. The band tables of the kept documents are most of a run's memory: the keys are
/// hashes, so the tables fill evenly and grow together by half when the fullest is 80% full,
/// and the one array ([`Slots`]) is given back to the system whole when it is replaced (many
/// small tables left their old arrays with the allocator). Key 0 marks an empty slot; a table's
/// key 0 lives in `zero`; a value at or above [`MULTI`] indexes the overflow lists.
#[derive(Clone, Debug, Default)]
pub struct MultiMap {
    /// `SHARDS` tables of `cap` slots each (empty until the first insert), a slot
    /// `[key bits, value]`.
    slots: Slots,
    cap: usize,
    lens: Vec<u32>,
    zero: Vec<Option<u32>>,
    multi: Vec<Vec<u32>>,
}

impl MultiMap {
    #[inline]
    fn split(key: u64) -> (usize, u32) {
        ((key as usize) & (SHARDS - 1), (key >> SHARD_BITS) as u32)
    }

    /// The first slot of `key` in table `s`: the key mixed (any keys spread), then scaled to
    /// the table's size.
    #[inline]
    fn home(&self, s: usize, key: u32) -> usize {
        let h = key.wrapping_mul(0x9E37_79B9);
        s * self.cap + ((h as u64 * self.cap as u64) >> 32) as usize
    }

    /// The slot after `i` in table `s` (wrapping around within it).
    #[inline]
    fn next(&self, s: usize, i: usize) -> usize {
        if i + 1 == (s + 1) * self.cap {
            s * self.cap
        } else {
            i + 1
        }
    }

    fn grow(&mut self) {
        self.grow_to((self.cap + self.cap / 2).max(16));
    }

    /// Makes room for `keys` distinct keys in all, so that they go in without the table growing
    /// on the way (each growth moves every key: a tenth of the deciding of a large run). The
    /// keys are hashes, spread evenly over the tables: each is sized for its share plus the
    /// slack its fullest needs. Growing for a little more than it has grows by a quarter at
    /// least, so a rising estimate does not move the keys again and again.
    pub fn reserve(&mut self, keys: usize) {
        let share = keys.div_ceil(SHARDS);
        let cap = (share + share / 16 + 16) * 5 / 4 + 1;
        if cap > self.cap {
            self.grow_to(cap.max(self.cap + self.cap / 4));
        }
    }

    fn grow_to(&mut self, cap: usize) {
        let old = std::mem::replace(&mut self.slots, Slots::zeroed(cap * SHARDS));
        let old_cap = std::mem::replace(&mut self.cap, cap);
        if self.lens.is_empty() {
            self.lens = vec![0; SHARDS];
            self.zero = vec![None; SHARDS];
        }
        for (i, &[k, v]) in old.iter().enumerate() {
            if k != 0 {
                let s = i / old_cap;
                let mut j = self.home(s, k);
                while self.slots[j][0] != 0 {
                    j = self.next(s, j);
                }
                self.slots[j] = [k, v];
            }
        }
    }

    pub fn insert(&mut self, key: u64, doc: u32) {
        let (s, k) = MultiMap::split(key);
        if self.cap == 0 {
            self.grow();
        }
        let v = if k == 0 {
            match &mut self.zero[s] {
                Some(v) => v,
                slot @ None => {
                    *slot = Some(doc);
                    return;
                }
            }
        } else {
            if (self.lens[s] as usize + 1) * 5 > self.cap * 4 {
                self.grow();
            }
            let mut i = self.home(s, k);
            loop {
                if self.slots[i][0] == 0 {
                    self.slots[i] = [k, doc];
                    self.lens[s] += 1;
                    return;
                }
                if self.slots[i][0] == k {
                    break &mut self.slots[i][1];
                }
                i = self.next(s, i);
            }
        };
        // a second document: the value becomes a list
        if *v >= MULTI {
            self.multi[(*v - MULTI) as usize].push(doc);
        } else {
            self.multi.push(vec![*v, doc]);
            *v = MULTI + (self.multi.len() - 1) as u32;
        }
    }

    fn value(&self, key: u64) -> Option<&u32> {
        let (s, k) = MultiMap::split(key);
        if self.cap == 0 {
            return None;
        }
        if k == 0 {
            return self.zero[s].as_ref();
        }
        let mut i = self.home(s, k);
        loop {
            match &self.slots[i] {
                [0, _] => return None,
                [kk, v] if *kk == k => return Some(v),
                _ => i = self.next(s, i),
            }
        }
    }

    /// Asks the processor to bring in the slot where `key` would be (a hint, nothing more).
    #[inline]
    pub fn prefetch(&self, key: u64) {
        let (s, k) = MultiMap::split(key);
        if self.cap != 0 {
            prefetch(&self.slots[self.home(s, k)]);
        }
    }

    pub fn get(&self, key: u64) -> &[u32] {
        match self.value(key) {
            None => &[],
            Some(v) if *v >= MULTI => &self.multi[(*v - MULTI) as usize],
            Some(v) => std::slice::from_ref(v),
        }
    }

    /// Distinct keys.
    pub fn len(&self) -> usize {
        let zeros = self.zero.iter().filter(|z| z.is_some()).count();
        self.lens.iter().map(|&l| l as usize).sum::<usize>() + zeros
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[inline(always)]
pub(crate) fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it neither reads nor faults, whatever the address
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch(p as *const T as *const i8, _MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The band buckets and text digests of the kept documents.
#[derive(Clone, Debug, Default)]
pub struct KeptTable {
    bands: Vec<MultiMap>,
    digests: MultiMap,
}

impl KeptTable {
    pub fn new(bands: usize) -> Self {
        KeptTable {
            bands: vec![MultiMap::default(); bands],
            digests: MultiMap::default(),
        }
    }

    /// Enters kept documents, each band's table in parallel. The tables are far larger than the
    /// caches: the slot of the document a few places ahead is fetched while one is entered.
    pub fn insert_many(&mut self, docs: &[&DocRef<'_>]) {
        const AHEAD: usize = 8;
        self.bands.par_iter_mut().enumerate().for_each(|(b, m)| {
            for (i, d) in docs.iter().enumerate() {
                if let Some(next) = docs.get(i + AHEAD) {
                    m.prefetch(next.keys[b]);
                }
                m.insert(d.keys[b], d.doc);
            }
        });
        for d in docs {
            self.digests.insert(d.digest, d.doc);
        }
    }

    /// Makes room for `docs` kept documents in all ([`MultiMap::reserve`] of every table).
    pub fn reserve(&mut self, docs: usize) {
        self.bands.par_iter_mut().for_each(|m| m.reserve(docs));
        self.digests.reserve(docs);
    }

    /// Kept documents sharing a band key with `keys`, sorted and distinct, into `out`. Every
    /// band's slot is fetched first, so the memory waits overlap.
    pub fn candidates(&self, keys: &[u64], out: &mut Vec<u32>) {
        out.clear();
        for (m, &k) in self.bands.iter().zip(keys) {
            m.prefetch(k);
        }
        for (m, &k) in self.bands.iter().zip(keys) {
            out.extend_from_slice(m.get(k));
        }
        out.sort_unstable();
        out.dedup();
    }

    /// Kept documents whose text has this digest.
    pub fn with_digest(&self, digest: u64) -> &[u32] {
        self.digests.get(digest)
    }
}

/// Kept documents held elsewhere than a [`KeptTable`] (an index's segments on disk).
pub trait KeptLookup: Sync {
    /// Adds the kept documents sharing a band key with `keys` to `out`, which stays sorted
    /// and distinct.
    fn add_candidates(&self, keys: &[u64], out: &mut Vec<u32>);
    /// Kept documents whose text has this digest (`keys`: the band keys of that text, which
    /// every copy of it shares).
    fn with_digest(&self, digest: u64, keys: &[u64]) -> Vec<u32>;
    /// [`KeptLookup::with_digest`] for many documents at once (`None`: none wanted); entry
    /// `j` is document `j` of the chunk [`Greedy::decide_also`] decides (as for
    /// [`KeptLookup::candidates_many`]).
    fn with_digest_many(&self, asked: &[Option<(u64, &[u64])>]) -> Vec<Vec<u32>> {
        asked
            .par_iter()
            .with_min_len(64)
            .map(|a| a.map_or_else(Vec::new, |(digest, keys)| self.with_digest(digest, keys)))
            .collect()
    }
    /// What [`KeptLookup::add_candidates`] adds to an empty list, for many documents at once
    /// (`None`: none wanted), so an implementation may look them up in key order; entry `j`
    /// is document `j` of the chunk [`Greedy::decide_also`] decides.
    fn candidates_many(&self, keys: &[Option<&[u64]>]) -> Vec<Vec<u32>> {
        keys.par_iter()
            .with_min_len(64)
            .map_init(Vec::new, |buf, k| {
                buf.clear();
                if let Some(k) = k {
                    self.add_candidates(k, buf);
                }
                buf.clone()
            })
            .collect()
    }
}

/// No kept documents beyond the table.
pub struct NoMoreKept;

impl KeptLookup for NoMoreKept {
    fn add_candidates(&self, _keys: &[u64], _out: &mut Vec<u32>) {}
    fn with_digest(&self, _digest: u64, _keys: &[u64]) -> Vec<u32> {
        Vec::new()
    }
}

/// Texts by document number (the documents a chunk is verified against).
pub trait Texts: Sync {
    fn text(&self, doc: u32) -> Cow<'_, str>;

    /// A hint: the texts and shingle counts of the documents of `cands` (lists of candidates,
    /// maybe repeated) are about to be read, each maybe on another thread (texts on disk can
    /// be asked for together). Texts in memory ignore it, at no cost.
    fn will_read(&self, _cands: &[Vec<u32>]) {}

    /// At least and at most how many distinct shingles the document has (0 and `u32::MAX`
    /// where nothing is known), when known: a document whose count is too far from another's
    /// to reach the threshold is never compared with it.
    fn shingles(&self, _doc: u32) -> Option<(u32, u32)> {
        None
    }

    /// False where what is known of the document proves that the set `set` (distinct shingle
    /// hashes) is not within Jaccard `threshold` of it: it is then never read or shingled. Here
    /// the bounds on its distinct shingles ([`Texts::shingles`], [`counts_admit`]); an index
    /// also has its [`crate::sketch`].
    fn admits(&self, doc: u32, set: &[u64], threshold: f64) -> bool {
        counts_admit(self.shingles(doc), set.len(), threshold)
    }
}

/// Whether a document with `bounds` on its distinct shingles (at least, at most; see
/// [`Texts::shingles`]) may be within Jaccard `threshold` of a set of `size` shingles. Jaccard is
/// at most the smaller set's size over the larger's: one with at most fewer distinct shingles
/// than the threshold times `size`, or at least more than `size` over the threshold, cannot be
/// (the margin keeps a similarity that rounds up to the threshold).
pub(crate) fn counts_admit(bounds: Option<(u32, u32)>, size: usize, threshold: f64) -> bool {
    let t = threshold * (1.0 - 1e-9);
    let size = size as f64;
    bounds.is_none_or(|(lo, hi)| (hi == u32::MAX || hi as f64 >= t * size) && size >= t * lo as f64)
}

impl<S: AsRef<str> + Sync> Texts for [S] {
    fn text(&self, doc: u32) -> Cow<'_, str> {
        Cow::Borrowed(self[doc as usize].as_ref())
    }
}

/// One document to decide.
#[derive(Clone, Copy, Debug)]
pub struct DocRef<'a> {
    /// Its global number (input position).
    pub doc: u32,
    /// Its `bands` band keys.
    pub keys: &'a [u64],
    /// `hash64` of its UTF-8 bytes.
    pub digest: u64,
    /// No shingles: kept, never matched, not entered in the tables.
    pub empty: bool,
    pub text: &'a str,
}

/// The decision for one document.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    /// The kept document it duplicates, or `None` when kept.
    pub duplicate_of: Option<u32>,
    /// Similarity to `duplicate_of` (NaN when kept).
    pub similarity: f64,
    /// Similarities computed for it (an exact copy settled by its text counts one). Work done,
    /// so it can depend on where chunks are cut; the decision never does.
    pub examined: u32,
}

/// What a document is compared by: its sorted shingle hash set, or its signature.
#[derive(Debug)]
pub(crate) enum Feature {
    Set(Vec<u64>),
    Sig(Vec<u32>),
}

pub(crate) fn feature(cfg: &Config, text: &str, w: &mut Worker, scratch: &mut Scratch) -> Feature {
    match cfg.verify {
        Verify::Exact => Feature::Set(cfg.hasher.shingler.hash_set(text, scratch)),
        Verify::Minhash => {
            let mut sig = vec![0u32; cfg.num_perm()];
            w.signature(&cfg.hasher, text, &mut sig);
            Feature::Sig(sig)
        }
    }
}

pub(crate) fn similarity(a: &Feature, b: &Feature) -> f64 {
    match (a, b) {
        (Feature::Set(x), Feature::Set(y)) => jaccard_sorted(x, y),
        (Feature::Sig(x), Feature::Sig(y)) => estimate_jaccard(x, y),
        _ => 0.0,
    }
}

/// `(similarity, doc)` ordered so that the better match is greater: higher similarity, then the
/// smaller document number.
fn better(a: Option<(f64, u32)>, b: (f64, u32)) -> Option<(f64, u32)> {
    match a {
        Some(x) if x.0 > b.0 || (x.0 == b.0 && x.1 < b.1) => Some(x),
        _ => Some(b),
    }
}

/// What the parallel phase settles before the ordered pass.
enum Pre {
    Empty,
    /// An exact copy of this earlier kept document.
    Copy(u32),
    /// Best match among the kept documents of earlier chunks, and how many were compared.
    Old(Option<(f64, u32)>, u32),
    /// The same text as this earlier document of the chunk.
    Same(usize),
}

/// The greedy decider: the kept table plus the rule. One per dedup run or index.
#[derive(Clone, Debug)]
pub struct Greedy {
    pub table: KeptTable,
    /// The documents the run expects in all ([`Greedy::expect`]), until the tables are sized.
    pub(crate) expected: Option<usize>,
}

impl Greedy {
    pub fn new(bands: usize) -> Self {
        Greedy {
            table: KeptTable::new(bands),
            expected: None,
        }
    }

    /// Says that the run will decide about `docs` documents in all: a hint, right or wrong the
    /// decisions are the same. [`Greedy::size_tables`] then sizes the kept documents' tables
    /// once, so that they do not grow by halves on the way, each growth moving every key.
    pub fn expect(&mut self, docs: usize) {
        self.expected = Some(docs);
    }

    /// With the hint of [`Greedy::expect`], not yet taken: once [`SIZE_AFTER`] documents are
    /// `decided` and most of the run is ahead, makes the tables for the share of them `kept`
    /// (5% more) over the documents expected, and takes the hint. Returns the number of kept
    /// documents the tables were made for, when they were made by this call.
    pub fn size_tables(&mut self, decided: usize, kept: usize) -> Option<usize> {
        let expected = self.expected?;
        if decided < SIZE_AFTER || expected < 2 * decided {
            return None;
        }
        let want = (kept as u128 * expected as u128 / decided as u128) * 21 / 20;
        let want = want.min(expected as u128) as usize;
        self.table.reserve(want);
        self.expected = None;
        Some(want)
    }

    /// Decides `docs` (in decision order, after every document decided before) and enters the
    /// kept ones in the table. `old` gives the text of any kept document of an earlier call.
    pub fn decide(
        &mut self,
        cfg: &Config,
        docs: &[DocRef<'_>],
        old: &(impl Texts + ?Sized),
    ) -> Vec<Decision> {
        self.decide_also(cfg, docs, old, &NoMoreKept)
    }

    /// [`Greedy::decide`] against the kept documents of `more` as well as those of the table
    /// (the on-disk segments of an index); `old` gives the texts of both.
    pub fn decide_also(
        &mut self,
        cfg: &Config,
        docs: &[DocRef<'_>],
        old: &(impl Texts + ?Sized),
        more: &impl KeptLookup,
    ) -> Vec<Decision> {
        self.decide_counted(cfg, docs, old, more).0
    }

    /// [`Greedy::decide_also`], and per document how many distinct shingles it has when its
    /// shingle set was made (0 when it was not: [`Texts::shingles`] for the index).
    pub fn decide_counted(
        &mut self,
        cfg: &Config,
        docs: &[DocRef<'_>],
        old: &(impl Texts + ?Sized),
        more: &impl KeptLookup,
    ) -> (Vec<Decision>, Vec<u32>) {
        let table = &self.table;
        // 1. within the chunk: equal texts (equal digests, compared) are settled by their first
        let n = docs.len();
        let owner = first_with_same_text(
            n,
            |i| docs[i].empty,
            |i| docs[i].digest,
            |i| Cow::Borrowed(docs[i].text),
        );
        // 2. against the kept documents of earlier calls: exact copies, then candidates
        let asked: Vec<Option<(u64, &[u64])>> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| (!d.empty && owner[i] == i as u32).then_some((d.digest, d.keys)))
            .collect();
        let copies = more.with_digest_many(&asked);
        let copy_of: Vec<Option<u32>> = docs
            .par_iter()
            .zip(&copies)
            .enumerate()
            .with_min_len(64)
            .map(|(i, (d, also))| {
                if d.empty || owner[i] != i as u32 {
                    return None;
                }
                table
                    .with_digest(d.digest)
                    .iter()
                    .chain(also)
                    .copied()
                    .find(|&k| same(old, k, d))
            })
            .collect();
        drop(copies);
        let wanted: Vec<Option<&[u64]>> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                (!d.empty && owner[i] == i as u32 && copy_of[i].is_none()).then_some(d.keys)
            })
            .collect();
        let from_more = more.candidates_many(&wanted);
        let cands: Vec<Vec<u32>> = wanted
            .par_iter()
            .zip(&from_more)
            .with_min_len(64)
            .map_init(Vec::new, |buf, (keys, also)| {
                let Some(keys) = keys else {
                    return Vec::new();
                };
                table.candidates(keys, buf);
                if !also.is_empty() {
                    buf.extend_from_slice(also);
                    buf.sort_unstable();
                    buf.dedup();
                }
                buf.clone()
            })
            .collect();
        drop(from_more);
        // documents sharing a bucket with another of the chunk: only they can meet a kept
        // document of the chunk in the ordered pass. Per band, `key << 24 | position` sorted
        // (the keys are hashes: a linear sort) puts a bucket's documents side by side.
        debug_assert!(n < 1 << 24, "a chunk is at most 2^24 documents");
        let mut mates = vec![false; n];
        let per_band: Vec<Vec<u32>> = (0..cfg.bands)
            .into_par_iter()
            .map(|b| {
                let mut v: Vec<u64> = (0..n)
                    .filter(|&i| !docs[i].empty && owner[i] == i as u32)
                    .map(|i| (docs[i].keys[b] & ((1 << KEY_BITS) - 1)) << 24 | i as u64)
                    .collect();
                crate::shingle::sort_uniform(&mut v);
                let mut found = Vec::new();
                for run in v
                    .chunk_by(|x, y| x >> 24 == y >> 24)
                    .filter(|r| r.len() > 1)
                {
                    found.extend(run.iter().map(|x| (x & 0xFF_FFFF) as u32));
                }
                found
            })
            .collect();
        for i in per_band.into_iter().flatten() {
            mates[i as usize] = true;
        }
        let mut need = mates.clone();
        for i in 0..n {
            if !cands[i].is_empty() {
                need[owner[i] as usize] = true;
            }
        }
        // 3. features, in parallel: the chunk's owners that need one, and the old candidates
        let feats: Vec<Option<Feature>> = (0..n)
            .into_par_iter()
            .with_min_len(8)
            .map_init(
                || (Worker::default(), Scratch::default()),
                |(w, s), i| need[i].then(|| feature(cfg, docs[i].text, w, s)),
            )
            .collect();
        // an earlier document that what is known of it (its shingle counts, an indexed one's
        // sketch: `Texts::admits`) rules out is not compared, and its shingles are not made
        old.will_read(&cands);
        let cands: Vec<Vec<u32>> = match cfg.verify {
            Verify::Exact => cands
                .into_par_iter()
                .zip(&feats)
                .with_min_len(64)
                .map(|(mut c, f)| {
                    if let Some(Feature::Set(a)) = f {
                        c.retain(|&k| old.admits(k, a, cfg.threshold));
                    }
                    c
                })
                .collect(),
            Verify::Minhash => cands,
        };
        let mut old_docs: Vec<u32> = cands.iter().flatten().copied().collect();
        old_docs.sort_unstable();
        old_docs.dedup();
        let old_feats: FxHashMap<u32, Feature> = old_docs
            .par_iter()
            .with_min_len(8)
            .map_init(
                || (Worker::default(), Scratch::default()),
                |(w, s), &k| (k, feature(cfg, &old.text(k), w, s)),
            )
            .collect();
        let pre: Vec<Pre> = (0..n)
            .into_par_iter()
            .with_min_len(64)
            .map(|i| {
                let o = owner[i] as usize;
                if docs[i].empty {
                    Pre::Empty
                } else if let Some(k) = copy_of[o] {
                    Pre::Copy(k)
                } else if o != i {
                    Pre::Same(o)
                } else if cands[i].is_empty() {
                    Pre::Old(None, 0)
                } else {
                    let mine = feats[i].as_ref().expect("feature computed");
                    let mut best = None;
                    for &k in &cands[i] {
                        best = better(best, (similarity(mine, &old_feats[&k]), k));
                    }
                    Pre::Old(best, cands[i].len() as u32)
                }
            })
            .collect();
        drop(old_feats);
        // 4. the ordered pass: kept documents earlier in this chunk
        let mut local: Vec<MultiMap> = vec![MultiMap::default(); cfg.bands];
        let mut kept_here = vec![false; n];
        // the best match of each text's first document, over every kept document before it
        let mut settled: Vec<Option<(f64, u32)>> = vec![None; n];
        // and the last document of that text decided so far
        let mut last = vec![0usize; n];
        // `local` holds positions in the chunk (kept documents with a bucket mate), not numbers
        let mut found: Vec<u32> = Vec::new();
        let mut out = Vec::with_capacity(n);
        for (i, d) in docs.iter().enumerate() {
            let (mut best, mut examined, o, since) = match pre[i] {
                Pre::Empty => {
                    out.push(Decision {
                        duplicate_of: None,
                        similarity: f64::NAN,
                        examined: 0,
                    });
                    continue;
                }
                Pre::Copy(k) => {
                    out.push(Decision {
                        duplicate_of: Some(k),
                        similarity: 1.0,
                        examined: 1,
                    });
                    continue;
                }
                Pre::Same(o) if kept_here[o] => {
                    out.push(Decision {
                        duplicate_of: Some(docs[o].doc),
                        similarity: 1.0,
                        examined: 1,
                    });
                    continue;
                }
                // a copy of a removed text: its match so far, then the documents kept since
                Pre::Same(o) => (settled[o], 1, o, last[o] + 1),
                Pre::Old(best, examined) => (best, examined, i, 0),
            };
            found.clear();
            if mates[o] {
                for (m, &k) in local.iter().zip(d.keys) {
                    found.extend(m.get(k).iter().filter(|&&j| j as usize >= since));
                }
            }
            found.sort_unstable();
            found.dedup();
            if !found.is_empty() {
                let mine = feats[o].as_ref().expect("feature computed");
                for &j in &found {
                    let theirs = feats[j as usize].as_ref().expect("feature computed");
                    best = better(best, (similarity(mine, theirs), docs[j as usize].doc));
                }
                examined += found.len() as u32;
            }
            settled[o] = best;
            last[o] = i;
            match best.filter(|b| b.0 >= cfg.threshold) {
                Some((sim, k)) => out.push(Decision {
                    duplicate_of: Some(k),
                    similarity: sim,
                    examined,
                }),
                None => {
                    out.push(Decision {
                        duplicate_of: None,
                        similarity: f64::NAN,
                        examined,
                    });
                    kept_here[i] = true;
                    if mates[i] {
                        for (m, &k) in local.iter_mut().zip(d.keys) {
                            m.insert(k, i as u32);
                        }
                    }
                }
            }
        }
        let kept: Vec<&DocRef<'_>> = docs
            .iter()
            .zip(&kept_here)
            .filter_map(|(d, &k)| k.then_some(d))
            .collect();
        self.table.insert_many(&kept);
        let distinct = owner
            .iter()
            .map(|&o| match &feats[o as usize] {
                Some(Feature::Set(v)) => u32::try_from(v.len()).unwrap_or(0),
                _ => 0,
            })
            .collect();
        (out, distinct)
    }
}

/// The greedy rule over pairs already verified (every candidate pair at or above the threshold,
/// `(i[e], j[e], sim[e])`): the same decisions as [`Greedy::decide`], since pairs below the
/// threshold never decide anything. `nodes` (sorted, distinct) are every document of a pair and
/// `rank` their decision order (distinct). Returns, per node, the kept document it duplicates
/// (-1 when kept) and the similarity (NaN when kept).
pub fn greedy_pairs(
    i: &[u64],
    j: &[u64],
    sim: &[f64],
    nodes: &[u64],
    rank: &[u64],
    threshold: f64,
) -> crate::error::Result<(Vec<i64>, Vec<f64>)> {
    use crate::error::Error;
    if i.len() != j.len() || i.len() != sim.len() || nodes.len() != rank.len() {
        return Err(Error::invalid("j", "pair and node arrays differ in length"));
    }
    let local = |x: u64| {
        nodes
            .binary_search(&x)
            .map_err(|_| Error::invalid("nodes", format!("document {x} of a pair is not a node")))
    };
    let n = nodes.len();
    let mut deg = vec![0usize; n + 1];
    let mut ends = Vec::with_capacity(i.len());
    for (&a, &b) in i.iter().zip(j) {
        let (a, b) = (local(a)?, local(b)?);
        deg[a + 1] += 1;
        deg[b + 1] += 1;
        ends.push((a, b));
    }
    for x in 0..n {
        deg[x + 1] += deg[x];
    }
    let mut fill = deg.clone();
    let mut adj = vec![(0usize, 0.0f64); deg[n]];
    for (&(a, b), &s) in ends.iter().zip(sim) {
        adj[fill[a]] = (b, s);
        fill[a] += 1;
        adj[fill[b]] = (a, s);
        fill[b] += 1;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&x| rank[x]);
    let mut kept = vec![false; n];
    let mut dup = vec![-1i64; n];
    let mut out_sim = vec![f64::NAN; n];
    for &x in &order {
        let mut best: Option<(f64, u32)> = None;
        for &(y, s) in &adj[deg[x]..deg[x + 1]] {
            if kept[y] && rank[y] < rank[x] && s >= threshold {
                best = better(best, (s, nodes[y] as u32));
            }
        }
        match best {
            Some((s, k)) => {
                dup[x] = k as i64;
                out_sim[x] = s;
            }
            None => kept[x] = true,
        }
    }
    Ok((dup, out_sim))
}

/// For each document `0..n`, the first one with the same text (itself when none is before it;
/// `skip`ped ones are their own). Equal texts are found by their digest and confirmed by
/// comparing them: texts are read only when two digests meet.
pub(crate) fn first_with_same_text<'t>(
    n: usize,
    skip: impl Fn(usize) -> bool,
    digest: impl Fn(usize) -> u64,
    text: impl Fn(usize) -> Cow<'t, str>,
) -> Vec<u32> {
    use std::collections::hash_map::Entry;
    let mut owner: Vec<u32> = (0..n as u32).collect();
    let mut first: FxHashMap<u64, u32> = FxHashMap::default();
    first.reserve(n);
    // a text whose digest met another text's: (digest, its first document)
    let mut more: Vec<(u64, u32)> = Vec::new();
    for (i, own) in owner.iter_mut().enumerate() {
        if skip(i) {
            continue;
        }
        let h = digest(i);
        match first.entry(h) {
            Entry::Vacant(e) => {
                e.insert(i as u32);
            }
            Entry::Occupied(e) => {
                let mine = text(i);
                let earlier = std::iter::once(*e.get())
                    .chain(more.iter().filter(|m| m.0 == h).map(|m| m.1))
                    .find(|&o| text(o as usize) == mine);
                match earlier {
                    Some(o) => *own = o,
                    None => more.push((h, i as u32)),
                }
            }
        }
    }
    owner
}

fn same(old: &(impl Texts + ?Sized), k: u32, d: &DocRef<'_>) -> bool {
    old.text(k) == d.text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(threshold: f64) -> Config {
        use crate::cluster::{Cluster, Keep};
        crate::cluster::test_config(threshold, Keep::First, Cluster::Greedy)
    }

    /// Brute force: every earlier kept document, exact Jaccard.
    fn oracle(c: &Config, texts: &[String]) -> Vec<Option<u32>> {
        let sh = &c.hasher.shingler;
        let sets: Vec<Vec<u64>> = texts
            .iter()
            .map(|t| sh.hash_set(t, &mut Scratch::default()))
            .collect();
        let mut kept: Vec<usize> = Vec::new();
        let mut out = Vec::new();
        for i in 0..texts.len() {
            if sets[i].is_empty() {
                out.push(None);
                continue;
            }
            let mut best: Option<(f64, u32)> = None;
            for &k in &kept {
                best = better(best, (jaccard_sorted(&sets[i], &sets[k]), k as u32));
            }
            match best.filter(|b| b.0 >= c.threshold) {
                Some((_, k)) => out.push(Some(k)),
                None => {
                    kept.push(i);
                    out.push(None);
                }
            }
        }
        out
    }

    /// Texts that tell bounds on their distinct shingles.
    struct Counted<'a>(&'a [String], Vec<(u32, u32)>);

    impl Texts for Counted<'_> {
        fn text(&self, doc: u32) -> Cow<'_, str> {
            Cow::Borrowed(&self.0[doc as usize])
        }

        fn shingles(&self, doc: u32) -> Option<(u32, u32)> {
            Some(self.1[doc as usize])
        }
    }

    #[test]
    fn shingle_counts_bound_the_sets_and_spare_only_hopeless_pairs() {
        // prefixes of a few texts, from half of one to all of it: neighbours near the
        // threshold, far ones with too few shingles to reach it
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let base: Vec<String> = (0..6)
            .map(|_| {
                (0..700)
                    .map(|j| {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        if j % 6 == 5 {
                            ' '
                        } else {
                            (b'a' + (state >> 59) as u8 % 26) as char
                        }
                    })
                    .collect::<String>()
            })
            .collect();
        // (every other text's prefixes longest first: the kept one is then the larger)
        let mut texts: Vec<String> = Vec::new();
        for (i, b) in base.iter().enumerate() {
            let chars: Vec<char> = b.chars().collect();
            let mut cuts: Vec<usize> = (50..=100).step_by(3).collect();
            if i % 2 == 1 {
                cuts.reverse();
            }
            for p in cuts {
                texts.push(chars[..chars.len() * p / 100].iter().collect());
            }
        }
        texts.push("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into()); // repeats: 26 windows, 1 shingle
        texts.push("ﬁﬁﬁ ǅ ẞ İİ ﷺ".into()); // characters that normalization expands
        texts.push("ab".into());
        texts.push(String::new());
        for shingle in ["char", "word"] {
            let mut c = cfg(0.8);
            c.hasher.shingler = crate::shingle::Shingler::new(shingle, 3, "default").unwrap();
            let signed = c.sign(&texts);
            let mut exact = Vec::new();
            for (t, &n) in texts.iter().zip(&signed.shingles) {
                let m = c.hasher.shingler.hash_set(t, &mut Scratch::default()).len() as u32;
                assert!(m <= n, "{shingle} {t:?}: {m} > {n}");
                exact.push(m);
            }
            // no bounds, the upper ones only, both (the exact count as the lower bound)
            let upper = Counted(&texts, signed.shingles.iter().map(|&n| (0, n)).collect());
            let both = Counted(
                &texts,
                exact
                    .iter()
                    .zip(&signed.shingles)
                    .map(|(&m, &n)| (m, n))
                    .collect(),
            );
            let refs = signed.refs(&texts, 0);
            let key = |d: &[Decision]| -> Vec<(Option<u32>, u64)> {
                d.iter()
                    .map(|x| (x.duplicate_of, x.similarity.to_bits()))
                    .collect()
            };
            let examined = |d: &[Decision]| d.iter().map(|x| x.examined).sum::<u32>();
            for chunk in [1, 5, texts.len()] {
                let run = |old: &dyn Fn(&mut Greedy, &[DocRef<'_>]) -> Vec<Decision>| {
                    let mut g = Greedy::new(c.bands);
                    let mut out = Vec::new();
                    for part in refs.chunks(chunk) {
                        out.extend(old(&mut g, part));
                    }
                    out
                };
                let none = run(&|g, part| g.decide(&c, part, &texts[..]));
                let up = run(&|g, part| g.decide(&c, part, &upper));
                let all = run(&|g, part| g.decide(&c, part, &both));
                assert_eq!(key(&up), key(&none), "{shingle}, chunks of {chunk}");
                assert_eq!(key(&all), key(&none), "{shingle}, chunks of {chunk}");
                if chunk == 1 {
                    // (within one chunk pairs meet in the ordered pass, never spared)
                    let (n, u, a) = (examined(&none), examined(&up), examined(&all));
                    assert!(n > u && u > a, "{shingle}: {n}, {u}, {a} compared");
                }
            }
        }
    }

    fn run(c: &Config, texts: &[String], chunk: usize) -> Vec<Decision> {
        let signed = c.sign(texts);
        let mut g = Greedy::new(c.bands);
        let mut out = Vec::new();
        let refs = signed.refs(texts, 0);
        for part in refs.chunks(chunk) {
            out.extend(g.decide(c, part, texts));
        }
        out
    }

    fn chain(n: usize) -> Vec<String> {
        let words: Vec<String> = (0..n + 40)
            .map(|i| format!("w{}x{}", i * 7919 % 1000, i))
            .collect();
        (0..n).map(|i| words[i..i + 40].join(" ")).collect()
    }

    #[test]
    fn chains_do_not_chain() {
        let texts = chain(300);
        let c = cfg(0.8);
        let got = run(&c, &texts, 37);
        let want = oracle(&c, &texts);
        let agree = got
            .iter()
            .zip(&want)
            .filter(|(g, w)| g.duplicate_of.is_some() == w.is_some())
            .count();
        assert!(agree as f64 >= 0.99 * texts.len() as f64, "{agree}");
        // every removal is at or above the threshold, against a kept document
        for (i, d) in got.iter().enumerate() {
            if let Some(k) = d.duplicate_of {
                assert!(d.similarity >= 0.8);
                assert!(got[k as usize].duplicate_of.is_none());
                assert!((k as usize) < i);
            }
        }
        assert!(got.iter().filter(|d| d.duplicate_of.is_none()).count() > 10);
    }

    #[test]
    fn same_for_any_chunking() {
        let mut texts = chain(120);
        texts.extend(chain(60));
        texts.push(String::new());
        texts.push(texts[3].clone());
        let c = cfg(0.7);
        // `examined` is work done, which depends on where chunks cut; the decisions do not
        let key = |v: Vec<Decision>| -> Vec<(Option<u32>, u64)> {
            v.iter()
                .map(|d| (d.duplicate_of, d.similarity.to_bits()))
                .collect()
        };
        let whole = key(run(&c, &texts, texts.len()));
        assert!(whole.iter().filter(|d| d.0.is_none()).count() > 10);
        for chunk in [1, 2, 7, 64] {
            assert_eq!(key(run(&c, &texts, chunk)), whole, "chunk {chunk}");
        }
    }

    #[test]
    fn copies_are_linear_and_settled_by_digest() {
        let text = "the same paragraph of text, copied many times over into a corpus".to_string();
        let mut texts = vec![text.clone(); 5000];
        texts.push("something else entirely, not like the others at all".into());
        let c = cfg(0.8);
        for chunk in [100, 5001] {
            let got = run(&c, &texts, chunk);
            assert!(got[0].duplicate_of.is_none());
            for d in &got[1..5000] {
                assert_eq!(d.duplicate_of, Some(0));
                assert_eq!(d.similarity, 1.0);
                assert_eq!(d.examined, 1);
            }
            assert!(got[5000].duplicate_of.is_none());
        }
    }

    #[test]
    fn most_similar_kept_wins() {
        let a = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".to_string();
        let b = format!("{a} nu xi omicron pi rho sigma");
        let texts = vec![a.clone(), b.clone(), format!("{b} tau")];
        let c = cfg(0.6);
        let got = run(&c, &texts, 1);
        let want = oracle(&c, &texts);
        assert_eq!(got.iter().map(|d| d.duplicate_of).collect::<Vec<_>>(), want);
    }

    #[test]
    fn greedy_pairs_is_the_rule() {
        let texts = chain(200);
        let c = cfg(0.8);
        let got = run(&c, &texts, 50);
        let signed = c.sign(&texts);
        let active: Vec<bool> = signed.empty.iter().map(|e| !e).collect();
        let sets: Vec<Vec<u64>> = texts
            .iter()
            .map(|t| c.hasher.shingler.hash_set(t, &mut Scratch::default()))
            .collect();
        let (mut i, mut j, mut s) = (vec![], vec![], vec![]);
        for p in crate::lsh::candidate_pairs(&signed.keys, c.bands, 0, &active) {
            let (a, b) = crate::lsh::unpack(p);
            let x = jaccard_sorted(&sets[a as usize], &sets[b as usize]);
            if x >= 0.8 {
                i.push(a as u64);
                j.push(b as u64);
                s.push(x);
            }
        }
        let mut nodes: Vec<u64> = i.iter().chain(&j).copied().collect();
        nodes.sort_unstable();
        nodes.dedup();
        let (dup, _) = greedy_pairs(&i, &j, &s, &nodes, &nodes, 0.8).unwrap();
        for (x, &d) in nodes.iter().zip(&dup) {
            let want = got[*x as usize].duplicate_of.map_or(-1, i64::from);
            assert_eq!(d, want, "document {x}");
        }
        assert!(greedy_pairs(&[1], &[2], &[0.9], &[1], &[0], 0.8).is_err());
    }

    #[test]
    fn multimap_is_a_map_of_lists() {
        // against a std map, with colliding slots, key 0 and growth
        let mut m = MultiMap::default();
        let mut want: std::collections::BTreeMap<u64, Vec<u32>> = Default::default();
        let mut x = 7u64;
        for doc in 0..20_000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = match doc % 7 {
                0 => 0,
                1 => (x >> 60) << 36,
                2 => (x >> 62) << 8,
                // equal in the low 40 bits: one key
                3 => (x >> 60) << 40,
                _ => x >> 50,
            };
            m.insert(key, doc);
            want.entry(key & ((1 << KEY_BITS) - 1))
                .or_default()
                .push(doc);
        }
        assert_eq!(m.len(), want.len());
        for (k, v) in &want {
            assert_eq!(m.get(*k), v.as_slice(), "key {k}");
        }
        assert_eq!(m.get(12345), &[] as &[u32]);
        assert!(MultiMap::default().get(0).is_empty() && MultiMap::default().get(5).is_empty());
    }

    #[test]
    fn multimap_reserved_holds_its_keys_without_growing() {
        let key = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) & ((1 << KEY_BITS) - 1);
        let (mut grown, mut reserved) = (MultiMap::default(), MultiMap::default());
        for i in 0..1000 {
            reserved.insert(key(i), i as u32);
        }
        let n = 300_000u64;
        // made room for after some keys are in (they move), and asked again for less: no change
        reserved.reserve(n as usize);
        let cap = reserved.cap;
        reserved.reserve(n as usize / 2);
        assert_eq!(reserved.cap, cap);
        for i in 0..n {
            grown.insert(key(i), i as u32);
            if i >= 1000 {
                reserved.insert(key(i), i as u32);
            }
        }
        // a second document under a key: a list
        grown.insert(key(5), 9);
        reserved.insert(key(5), 9);
        assert_eq!(reserved.cap, cap, "grew although room was made");
        assert!(
            cap < grown.cap * 2 && grown.cap < cap * 2,
            "{cap} {}",
            grown.cap
        );
        assert_eq!(reserved.len(), grown.len());
        for i in (0..n).step_by(7).chain([5]) {
            assert_eq!(reserved.get(key(i)), grown.get(key(i)), "key {i}");
        }
        // asking for a little more than there is room for grows by a quarter at least
        reserved.reserve(n as usize + 1000);
        assert!(reserved.cap >= cap + cap / 4);
        assert_eq!(reserved.get(key(5)), &[5, 9]);
    }

    #[test]
    fn multimap_past_the_mapped_size() {
        // enough keys that the slot array is memory mapped (and grows while mapped); a clone
        // and the original answer alike after both change
        let mut m = MultiMap::default();
        // odd multiples: distinct in the low 40 bits, spread over them
        let key = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) & ((1 << KEY_BITS) - 1);
        let n = 1_200_000u64;
        for i in 0..n {
            m.insert(key(i), i as u32);
        }
        assert!(matches!(m.slots, Slots::Mapped(_)), "{:?}", m.slots);
        let mut c = m.clone();
        assert!(matches!(c.slots, Slots::Mapped(_)));
        m.insert(key(3), 7);
        c.insert(key(3), 7);
        for i in (0..n).step_by(997) {
            let want: &[u32] = if i == 3 { &[3, 7] } else { &[i as u32] };
            assert_eq!(m.get(key(i)), want, "key of {i}");
            assert_eq!(c.get(key(i)), want, "clone, key of {i}");
        }
        assert_eq!((m.len(), c.len()), (n as usize, n as usize));
    }

    #[test]
    fn first_with_same_text_survives_digest_collisions() {
        let texts = ["a", "b", "a", "c", "b", "", "c"];
        // every digest the same: the texts themselves must tell them apart
        let owner = first_with_same_text(
            texts.len(),
            |i| texts[i].is_empty(),
            |_| 7,
            |i| Cow::Borrowed(texts[i]),
        );
        assert_eq!(owner, vec![0, 1, 0, 3, 1, 5, 3]);
    }

    #[test]
    fn multimap_overflow() {
        let mut m = MultiMap::default();
        m.insert(5, 1);
        assert_eq!(m.get(5), &[1]);
        m.insert(5, 2);
        m.insert(5, 3);
        m.insert(6, 9);
        assert_eq!(m.get(5), &[1, 2, 3]);
        assert_eq!(m.get(6), &[9]);
        assert_eq!(m.get(7), &[] as &[u32]);
    }
}
