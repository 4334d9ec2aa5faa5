//! The smoothed n-gram model family over any token ids: counts of every order, estimation by
//! one of seven smoothings, probabilities with standard backoff, per-document scores, sampling.
//!
//! Ids `0..vocab` are the user's tokens; `vocab` is BOS (`<s>`) and `vocab + 1` EOS (`</s>`).
//! A document is padded one of three ways ([`Padding`]): not at all (its first `order - 1`
//! tokens are not predicted), NLTK's `pad_both_ends` (`order - 1` BOS before, `order - 1` EOS
//! after, every full window predicted), or as a sentence of KenLM (one BOS as context, one EOS
//! predicted, the first tokens predicted after the shorter history they have). Counts hold every
//! k-gram (k = 1..=order) of the padded documents, as NLTK's `everygrams` (a sentence's lone
//! BOS is no unigram: it is never predicted).
//!
//! Every smoothing but add-k is estimated into backoff form, as an ARPA file holds a model: each
//! stored k-gram `h w` has `ln P(w | h)` and, as a context, a backoff weight `ln b(h)`; an n-gram
//! that is not stored takes `b(h) * P(w | h')` (`h'`: `h` without its first token). For the
//! interpolated smoothings (Witten-Bell, absolute discounting, Kneser-Ney) this is exact, not an
//! approximation: they give an unseen `w` after `h` the mass `gamma(h) * P(w | h')`, so
//! `b(h) = gamma(h)`. MLE is the case `b = 0`, stupid backoff `b = alpha` for every context.
//! Add-k stays count-based (every n-gram has its own probability).
//!
//! The formulas are those of NLTK's `nltk.lm` (3.8), term for term; where NLTK divides by zero
//! (a Kneser-Ney context whose continuation count is 0: it follows only the start of documents)
//! the context is treated as unseen (weight 1 on the lower order), as NLTK does for contexts
//! without counts. Modified Kneser-Ney is KenLM's `lmplz`: adjusted counts, three discounts per
//! order from the counts of counts, interpolation down to a uniform distribution over the
//! vocabulary, `<unk>` given the uniform share.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::ngram::addk::{Score, SplitMix64};
use crate::ngram::probe::Probing;
use crate::ngram::sorted::{self, Sorted};
use crate::parallel::shares;

/// The largest order of this family (the packed keys allow more over a small vocabulary).
pub const MAX_ORDER: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Smoothing {
    /// `(c(h w) + k) / (c(h) + k V)` (Lidstone; Laplace when `k = 1`).
    AddK(f64),
    /// `c(h w) / c(h)`: zero for anything unseen.
    Mle,
    WittenBell,
    /// Interpolated absolute discounting with one discount.
    AbsoluteDiscount(f64),
    /// Interpolated Kneser-Ney with one discount (NLTK's `KneserNeyInterpolated`).
    KneserNey(f64),
    /// Interpolated modified Kneser-Ney, three discounts per order from counts of counts (KenLM).
    ModifiedKneserNey,
    /// `c(h w) / c(h)` when seen, else `alpha` times the score after `h'`: not a probability.
    StupidBackoff(f64),
}

impl Smoothing {
    /// Parses a smoothing name and its parameter (`k`, `discount` or `alpha`; NaN: the default).
    pub fn parse(name: &str, param: f64) -> Result<Self> {
        let given = !param.is_nan();
        let positive = |arg: &'static str, v: f64| -> Result<f64> {
            if v > 0.0 && v.is_finite() {
                Ok(v)
            } else {
                Err(Error::invalid(
                    arg,
                    format!("must be a positive finite number, got {v}"),
                ))
            }
        };
        let unit = |arg: &'static str, v: f64, top: f64| -> Result<f64> {
            if v > 0.0 && v <= top {
                Ok(v)
            } else {
                Err(Error::invalid(
                    arg,
                    format!("must be in (0, {top}], got {v}"),
                ))
            }
        };
        Ok(match name {
            "add-k" => Smoothing::AddK(positive("k", if given { param } else { 1.0 })?),
            "mle" => Smoothing::Mle,
            "witten-bell" => Smoothing::WittenBell,
            "absolute-discount" => Smoothing::AbsoluteDiscount(unit(
                "discount",
                if given { param } else { 0.75 },
                1.0,
            )?),
            "kneser-ney" if given => Smoothing::KneserNey(unit("discount", param, 1.0)?),
            "kneser-ney" => Smoothing::ModifiedKneserNey,
            "stupid-backoff" => {
                Smoothing::StupidBackoff(unit("alpha", if given { param } else { 0.4 }, 1.0)?)
            }
            _ => {
                return Err(Error::invalid(
                    "smoothing",
                    format!(
                        "unknown smoothing {name:?}; expected one of add-k, mle, witten-bell, \
                         absolute-discount, kneser-ney, stupid-backoff"
                    ),
                ))
            }
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    None,
    /// NLTK's `pad_both_ends`: `order - 1` BOS and EOS (nothing for order 1).
    Both,
    /// KenLM's sentence: one BOS (context only), one EOS.
    Sentence,
}

impl Padding {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "none" => Ok(Padding::None),
            "both" => Ok(Padding::Both),
            "sentence" => Ok(Padding::Sentence),
            _ => Err(Error::invalid(
                "pad",
                format!("expected False, True (NLTK's pad_both_ends) or 'sentence', got {name:?}"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Padding::None => "none",
            Padding::Both => "both",
            Padding::Sentence => "sentence",
        }
    }
}

/// Bits needed for ids `0..n`.
fn bits_for(n: u32) -> u32 {
    (32 - n.saturating_sub(1).leading_zeros()).max(1)
}

/// The layout shared by counts and models: order, ids, packing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub order: usize,
    /// User ids are `0..vocab`; BOS is `vocab`, EOS `vocab + 1`.
    pub vocab: u32,
    pub padding: Padding,
    bits: u32,
}

impl Shape {
    pub fn new(order: usize, vocab: u32, padding: Padding) -> Result<Self> {
        if !(1..=MAX_ORDER).contains(&order) {
            return Err(Error::invalid(
                "order",
                format!("must be between 1 and {MAX_ORDER}, got {order}"),
            ));
        }
        let space = vocab
            .checked_add(2)
            .ok_or_else(|| Error::invalid("vocab_size", "too many ids"))?;
        let bits = bits_for(space);
        if bits as usize * order > 128 {
            return Err(Error::invalid(
                "order",
                format!(
                    "order {order} is too high for a vocabulary of {vocab} tokens (at most {} \
                     with this vocabulary)",
                    128 / bits
                ),
            ));
        }
        // NLTK pads nothing for order 1 (no context)
        let padding = if order == 1 && padding == Padding::Both {
            Padding::None
        } else {
            padding
        };
        Ok(Shape {
            order,
            vocab,
            padding,
            bits,
        })
    }

    pub fn bos(&self) -> u32 {
        self.vocab
    }

    /// Bits per id in a packed key.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    pub fn eos(&self) -> u32 {
        self.vocab + 1
    }

    #[inline]
    fn mask(&self, k: usize) -> u128 {
        let b = self.bits as usize * k;
        if b >= 128 {
            u128::MAX
        } else {
            (1u128 << b) - 1
        }
    }

    #[inline]
    pub fn key(&self, ids: &[u32]) -> u128 {
        ids.iter()
            .fold(0u128, |k, &id| (k << self.bits) | id as u128)
    }

    fn unpack(&self, key: u128, k: usize, out: &mut Vec<u32>) {
        let m = (1u128 << self.bits) - 1;
        for i in (0..k).rev() {
            out.push(((key >> (i as u32 * self.bits)) & m) as u32);
        }
    }

    #[inline]
    fn first(&self, key: u128, k: usize) -> u32 {
        (key >> (self.bits as usize * (k - 1))) as u32
    }

    /// The number of ids a model predicts over (add-k's `V`, as NLTK's vocabulary counts it:
    /// BOS and EOS both when padded on both ends, EOS alone for sentences).
    pub fn predictable(&self) -> u64 {
        self.vocab as u64
            + match self.padding {
                Padding::None => 0,
                Padding::Both => 2,
                Padding::Sentence => 1,
            }
    }

    /// `doc` as the model sees it.
    pub fn pad_into(&self, doc: &[u32], out: &mut Vec<u32>) {
        out.clear();
        let n = self.order - 1;
        match self.padding {
            Padding::None => out.extend_from_slice(doc),
            Padding::Both => {
                out.extend(std::iter::repeat_n(self.bos(), n));
                out.extend_from_slice(doc);
                out.extend(std::iter::repeat_n(self.eos(), n));
            }
            Padding::Sentence => {
                out.push(self.bos());
                out.extend_from_slice(doc);
                out.push(self.eos());
            }
        }
    }

    /// The first position of a padded document that is predicted.
    fn first_predicted(&self) -> usize {
        match self.padding {
            Padding::Sentence => 1,
            _ => self.order - 1,
        }
    }

    fn check_ids(&self, ids: &[u32]) -> Result<()> {
        match ids.iter().copied().max() {
            Some(top) if top >= self.vocab => Err(Error::invalid(
                "ids",
                format!(
                    "id {top} is out of range for a vocabulary of {} ids",
                    self.vocab
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// The documents of `ids` cut at `ends` (each end the index one past a document).
fn documents<'a>(ids: &'a [u32], ends: &'a [usize]) -> Result<Vec<&'a [u32]>> {
    let mut start = 0;
    let mut out = Vec::with_capacity(ends.len());
    for &end in ends {
        if end < start || end > ids.len() {
            return Err(Error::invalid(
                "ends",
                format!("document ends must rise within {} ids", ids.len()),
            ));
        }
        out.push(&ids[start..end]);
        start = end;
    }
    Ok(out)
}

/// Counts of every k-gram (k = 1..=order) of padded documents; mergeable across shards.
///
/// Each order is a [`Sorted`] array of packed keys with counts. Documents first add their
/// windows (the longest n-gram ending at each token, `order` ids or fewer at a document's start)
/// to a pending list; [`Counts::flush`] sorts them once per order (every k-gram ending at a
/// token is a suffix of that window) and merges the run lengths into the arrays. Readers see
/// flushed counts: [`Counts::add`] flushes before it returns, [`Counts::add_pending`] only when
/// the pending windows are many (callers flush before reading).
#[derive(Clone, Debug, PartialEq)]
pub struct Counts {
    pub shape: Shape,
    grams: Vec<Sorted>,
    /// Windows not sorted yet, by length (index `length - 1`).
    pending: Vec<Vec<u128>>,
    /// Ids in the order they first occur (KenLM numbers its vocabulary so, which decides one
    /// detail of `lmplz`'s counts of counts).
    first_seen: Vec<u32>,
    seen: Vec<bool>,
}

/// Pending windows are flushed once there are this many (and as many as distinct n-grams of the
/// highest order), so that a flush's merge costs about what its sort does.
const FLUSH_WINDOWS: usize = 1 << 22;

impl Counts {
    pub fn new(shape: Shape) -> Self {
        Counts {
            shape,
            grams: vec![Sorted::default(); shape.order],
            pending: vec![Vec::new(); shape.order],
            first_seen: Vec::new(),
            seen: vec![false; shape.vocab as usize],
        }
    }

    /// Adds the window ending at each position of a padded document to the pending windows.
    fn push_windows(&mut self, seq: &[u32]) {
        let s = self.shape;
        let n = s.order;
        let full = s.mask(n);
        let mut key = 0u128;
        let skip = (s.padding == Padding::Sentence) as usize; // a sentence's BOS is context only
        for (i, &id) in seq.iter().enumerate() {
            key = ((key << s.bits) | id as u128) & full;
            if i >= skip {
                self.pending[n.min(i + 1) - 1].push(key);
            }
        }
    }

    fn note_seen(&mut self, doc: &[u32]) {
        for &id in doc {
            if !self.seen[id as usize] {
                self.seen[id as usize] = true;
                self.first_seen.push(id);
            }
        }
    }

    /// Counts the documents of `ids` (ends as in [`documents`]); the counts are flushed.
    pub fn add(&mut self, ids: &[u32], ends: &[usize]) -> Result<()> {
        self.add_pending(ids, ends)?;
        self.flush();
        Ok(())
    }

    /// Counts the documents of `ids`, leaving their windows pending unless they are many: call
    /// [`Counts::flush`] before reading the counts.
    pub fn add_pending(&mut self, ids: &[u32], ends: &[usize]) -> Result<()> {
        self.shape.check_ids(ids)?;
        let docs = documents(ids, ends)?;
        let mut seq = Vec::new();
        let extra = ids.len() + docs.len() * self.shape.order.min(2);
        // room as a Vec grows (doubling), but not past what a flush takes
        let n = self.shape.order;
        let limit = FLUSH_WINDOWS.max(self.grams[n - 1].len()) + extra;
        let top = &mut self.pending[n - 1];
        let want = top.len() + extra;
        if want > top.capacity() {
            let cap = (top.capacity() * 2).min(limit).max(want);
            top.reserve_exact(cap - top.len());
            // (the buffer it grew from is handed back now, not a second later: a stream of
            // small `fit` calls otherwise held every smaller one at the peak)
            sorted::release_freed();
        }
        for d in docs {
            self.note_seen(d);
            self.shape.pad_into(d, &mut seq);
            self.push_windows(&seq);
        }
        let waiting: usize = self.pending.iter().map(Vec::len).sum();
        if waiting >= FLUSH_WINDOWS.max(self.grams[self.shape.order - 1].len()) {
            self.flush();
        }
        Ok(())
    }

    /// Sorts the pending windows into the counts of every order.
    pub fn flush(&mut self) {
        if self.pending.iter().all(Vec::is_empty) {
            return;
        }
        let n = self.shape.order;
        let mut pending = std::mem::replace(&mut self.pending, vec![Vec::new(); n]);
        let s = self.shape;
        // the highest order: the full windows, sorted where they are; below, order k is the last
        // k ids of the (distinct, counted) n-grams of order k + 1 and of the windows of exactly
        // k ids (at the start of documents)
        // `above`: the new counts of the order above, when they are not the stored ones (the
        // stored ones are, when there were none before)
        let mut above: Option<Sorted> = None;
        for k in (1..=n).rev() {
            let new = if k == n {
                Sorted::from_keys(std::mem::take(&mut pending[n - 1]))
            } else {
                let short = Sorted::from_keys(std::mem::take(&mut pending[k - 1]));
                let src = above.take();
                let src = src.as_ref().unwrap_or(&self.grams[k]);
                Sorted::from_suffixes(src, s.mask(k), s.bits * k as u32, &short)
            };
            let old = &mut self.grams[k - 1];
            if old.is_empty() {
                *old = new;
            } else {
                *old = old.merged(&new);
                above = Some(new);
            }
            sorted::release_freed();
        }
    }

    /// Adds `other`'s counts (the counts of two shards add up to those of the whole; `other`'s
    /// documents count as coming after these).
    pub fn merge(&mut self, other: &Counts) -> Result<()> {
        if other.shape != self.shape {
            return Err(Error::invalid(
                "other",
                format!(
                    "cannot merge counts of order {} over {} ids ({} padding) into counts of \
                     order {} over {} ids ({} padding)",
                    other.shape.order,
                    other.shape.vocab,
                    other.shape.padding.name(),
                    self.shape.order,
                    self.shape.vocab,
                    self.shape.padding.name()
                ),
            ));
        }
        for (mine, theirs) in self.pending.iter_mut().zip(&other.pending) {
            mine.extend_from_slice(theirs);
        }
        self.flush();
        let theirs = &other.grams;
        self.grams = std::mem::take(&mut self.grams)
            .into_par_iter()
            .zip(theirs.par_iter())
            .map(|(mine, theirs)| {
                if theirs.is_empty() {
                    mine
                } else {
                    mine.merged(theirs)
                }
            })
            .collect();
        for &id in &other.first_seen {
            if !self.seen[id as usize] {
                self.seen[id as usize] = true;
                self.first_seen.push(id);
            }
        }
        Ok(())
    }

    /// The flushed counts of order `k` (`1..=order`).
    fn order_k(&self, k: usize) -> Option<&Sorted> {
        debug_assert!(
            self.pending.iter().all(Vec::is_empty),
            "counts read unflushed"
        );
        self.grams.get(k.wrapping_sub(1))
    }

    /// Number of unigrams counted, with multiplicity, the pending windows included (each ends
    /// with one): [`Counts::total`] of order 1 without a flush.
    pub fn unigram_total(&self) -> u64 {
        self.grams[0].total() + self.pending.iter().map(|p| p.len() as u64).sum::<u64>()
    }

    /// Number of k-grams counted, with multiplicity.
    pub fn total(&self, k: usize) -> u64 {
        self.order_k(k).map_or(0, Sorted::total)
    }

    pub fn distinct(&self, k: usize) -> usize {
        self.order_k(k).map_or(0, Sorted::len)
    }

    pub fn count(&self, gram: &[u32]) -> u64 {
        match self.order_k(gram.len()) {
            Some(m) if gram.iter().all(|&id| id < self.shape.vocab + 2) => {
                m.count(self.shape.key(gram))
            }
            _ => 0,
        }
    }

    /// The k-grams (flattened, `k` ids each, in lexicographic order) and their counts.
    pub fn entries(&self, k: usize) -> (Vec<u32>, Vec<u64>) {
        let m = self.order_k(k).expect("k checked by the caller");
        let mut ids = Vec::with_capacity(m.len() * k);
        for &key in &m.keys {
            self.shape.unpack(key, k, &mut ids);
        }
        (ids, m.counts.clone())
    }

    /// The inverse of [`Counts::entries`] for order `k` (validated).
    pub fn set_entries(&mut self, k: usize, ids: &[u32], counts: &[u64]) -> Result<()> {
        if k < 1 || k > self.shape.order || ids.len() != counts.len() * k {
            return Err(Error::Corrupt(format!(
                "{} ids for {} {k}-grams of an order-{} model",
                ids.len(),
                counts.len(),
                self.shape.order
            )));
        }
        let space = self.shape.vocab + 2;
        let mut pairs = Vec::with_capacity(counts.len());
        for (gram, &c) in ids.chunks_exact(k).zip(counts) {
            if let Some(&bad) = gram.iter().find(|&&id| id >= space) {
                return Err(Error::Corrupt(format!(
                    "id {bad} out of range for {space} ids"
                )));
            }
            pairs.push((self.shape.key(gram), c));
        }
        self.grams[k - 1] = Sorted::from_pairs(pairs)
            .map_err(|_| Error::Corrupt(format!("a {k}-gram has count 0 or appears twice")))?;
        Ok(())
    }

    pub fn first_seen(&self) -> &[u32] {
        &self.first_seen
    }

    pub fn set_first_seen(&mut self, ids: &[u32]) -> Result<()> {
        let mut seen = vec![false; self.shape.vocab as usize];
        for &id in ids {
            match seen.get_mut(id as usize) {
                Some(s) if !*s => *s = true,
                _ => {
                    return Err(Error::Corrupt(format!(
                        "first-seen id {id} repeated or out of range"
                    )))
                }
            }
        }
        self.seen = seen;
        self.first_seen = ids.to_vec();
        Ok(())
    }
}

/// Per k-gram statistics for estimation: its count, how often and after how many distinct
/// tokens it is followed (as a context), after how many distinct tokens it occurs (its
/// continuation count), and the continuation counts of its extensions summed.
#[derive(Clone, Copy, Debug, Default)]
struct Stat {
    count: u64,
    follow: u64,
    types: u64,
    cont: u64,
    cont_follow: u64,
}

struct Stats {
    root: Stat,
    orders: Vec<FxHashMap<u128, Stat>>,
}

impl Stats {
    fn new(c: &Counts) -> Self {
        let s = c.shape;
        let mut orders: Vec<FxHashMap<u128, Stat>> = c
            .grams
            .iter()
            .map(|m| {
                m.iter()
                    .map(|(k, n)| {
                        (
                            k,
                            Stat {
                                count: n,
                                ..Stat::default()
                            },
                        )
                    })
                    .collect()
            })
            .collect();
        let mut root = Stat::default();
        for &n in &c.grams[0].counts {
            root.count += n;
            root.follow += n;
            root.types += (n > 0) as u64;
        }
        for k in 2..=s.order {
            let (below2, rest) = orders.split_at_mut(k - 2);
            let below = &mut rest[0];
            for (g, n) in c.grams[k - 1].iter() {
                let h = below.entry(g >> s.bits).or_default();
                h.follow += n;
                h.types += 1;
                below.entry(g & s.mask(k - 1)).or_default().cont += 1;
                if k == 2 {
                    root.cont_follow += 1;
                } else {
                    below2[k - 3]
                        .entry((g >> s.bits) & s.mask(k - 2))
                        .or_default()
                        .cont_follow += 1;
                }
            }
        }
        Stats { root, orders }
    }

    fn get(&self, k: usize, key: u128) -> Stat {
        if k == 0 {
            self.root
        } else {
            self.orders[k - 1].get(&key).copied().unwrap_or_default()
        }
    }
}

/// A model in backoff form: per order, `ln P` and `ln b` of each stored k-gram.
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    pub tables: Vec<FxHashMap<u128, (f64, f64)>>,
    /// `ln b` of a context that is not stored.
    pub missing: f64,
    /// `ln P` of a token with no unigram (`<unk>` in KenLM's models).
    pub oov: f64,
}

/// A model in backoff form as estimated: per order, each stored k-gram's packed key with
/// `(ln P, ln b)`, in key order (the order an ARPA file lists them in).
#[derive(Clone, Debug, PartialEq)]
pub struct SortedBackoff {
    pub tables: Vec<Vec<(u128, (f64, f64))>>,
    pub missing: f64,
    pub oov: f64,
}

impl SortedBackoff {
    /// The same model with hash tables, for lookups.
    fn to_backoff(&self) -> Backoff {
        let tables = self
            .tables
            .par_iter()
            .map(|t| {
                let mut table = FxHashMap::default();
                table.reserve(t.len());
                table.extend(t.iter().copied());
                table
            })
            .collect();
        Backoff {
            tables,
            missing: self.missing,
            oov: self.oov,
        }
    }
}

/// The hash tables of a [`SortedBackoff`], built at the first lookup (writing an ARPA file
/// needs none). Models compare equal whether or not they are built yet.
#[derive(Clone, Debug, Default)]
struct Lookup(std::sync::OnceLock<Backoff>);

impl PartialEq for Lookup {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    AddK {
        k: f64,
        counts: Vec<FxHashMap<u128, (u64, u64)>>,
        root: u64,
    },
    Backoff(Backoff),
    Sorted(SortedBackoff, Lookup),
}

/// An estimated model (or one read from an ARPA file).
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub shape: Shape,
    kind: Kind,
    /// Modified Kneser-Ney: the discounts `D1, D2, D3+` of each order, and whether an order fell
    /// back to KenLM's defaults (its counts of counts could not give them).
    pub discounts: Vec<[f64; 3]>,
    pub fallback: Vec<bool>,
    /// Whether every stored n-gram's suffix is stored too (the fast lookup of
    /// [`Model::for_each_closed`] needs it).
    closed: bool,
    /// The scoring index of a closed backoff model, built at its first use.
    index: Index,
}

/// A [`Probing`] index built once, on first use (None: the model cannot have one). Models
/// compare equal whether or not it is built yet.
#[derive(Clone, Debug, Default)]
struct Index(std::sync::OnceLock<Option<Probing>>);

impl PartialEq for Index {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Whether the tables hold the suffix (the n-gram without its first token) of each n-gram.
fn suffix_closed(s: &Shape, b: &Backoff) -> bool {
    (2..=b.tables.len()).all(|k| {
        b.tables[k - 1]
            .keys()
            .all(|&g| b.tables[k - 2].contains_key(&(g & s.mask(k - 1))))
    })
}

/// KenLM's discounts when the counts of counts cannot give them (`lmplz --discount_fallback`).
pub const FALLBACK_DISCOUNTS: [f64; 3] = [0.5, 1.0, 1.5];

/// `D1, D2, D3+` from the counts of counts `t[1..=4]` as `lmplz` computes them (in `f32`,
/// Chen and Goodman's equation 26), or `None` where it would refuse.
pub fn kenlm_discounts(t: &[u64; 5]) -> Option<[f64; 3]> {
    if t[1] == 0 || t[2] == 0 || t[3] == 0 {
        return None;
    }
    let y = (t[1] as f32) / ((t[1] as f64 + 2.0 * t[2] as f64) as f32);
    let mut d = [0f64; 3];
    for j in 1..4usize {
        let v = j as f32 - (j + 1) as f32 * y * t[j + 1] as f32 / t[j] as f32;
        if !(0.0..=j as f32).contains(&v) {
            return None;
        }
        d[j - 1] = v as f64;
    }
    Some(d)
}

impl Model {
    pub fn order(&self) -> usize {
        self.shape.order
    }

    pub fn is_backoff(&self) -> bool {
        !matches!(self.kind, Kind::AddK { .. })
    }

    pub fn backoff(&self) -> Option<&Backoff> {
        match &self.kind {
            Kind::Backoff(b) => Some(b),
            Kind::Sorted(sorted, lookup) => Some(lookup.0.get_or_init(|| sorted.to_backoff())),
            Kind::AddK { .. } => None,
        }
    }

    /// The tables in key order, when the model was estimated so (modified Kneser-Ney).
    pub fn sorted_backoff(&self) -> Option<&SortedBackoff> {
        match &self.kind {
            Kind::Sorted(sorted, _) => Some(sorted),
            _ => None,
        }
    }

    pub fn from_backoff(shape: Shape, b: Backoff) -> Self {
        let closed = suffix_closed(&shape, &b);
        Model {
            shape,
            kind: Kind::Backoff(b),
            discounts: Vec::new(),
            fallback: Vec::new(),
            closed,
            index: Index::default(),
        }
        .prepared()
    }

    /// The model with its scoring index built (a model read to be scored).
    fn prepared(self) -> Self {
        self.prepare();
        self
    }

    /// Estimates a model from counts.
    pub fn estimate(c: &Counts, smoothing: Smoothing) -> Result<Self> {
        let shape = c.shape;
        if c.grams[0].is_empty() {
            // (callers flush first)
            return Err(Error::invalid(
                "texts",
                "nothing was counted: the training documents are empty",
            ));
        }
        let mut model = Model {
            shape,
            kind: Kind::Backoff(Backoff {
                tables: Vec::new(),
                missing: 0.0,
                oov: f64::NEG_INFINITY,
            }),
            discounts: Vec::new(),
            fallback: Vec::new(),
            closed: false,
            index: Index::default(),
        };
        match smoothing {
            Smoothing::AddK(k) => {
                let st = Stats::new(c);
                let counts = st
                    .orders
                    .iter()
                    .map(|m| m.iter().map(|(&g, s)| (g, (s.count, s.follow))).collect())
                    .collect();
                model.kind = Kind::AddK {
                    k,
                    counts,
                    root: st.root.follow,
                };
            }
            Smoothing::ModifiedKneserNey => {
                let (b, d, f) = modified_kneser_ney(c)?;
                // (its tables hold every suffix: modified_kneser_ney found each one's position)
                model.kind = Kind::Sorted(b, Lookup::default());
                model.discounts = d;
                model.fallback = f;
                model.closed = true;
            }
            _ => {
                let b = nltk_backoff(c, smoothing);
                model.closed = suffix_closed(&shape, &b);
                model.kind = Kind::Backoff(b);
            }
        }
        Ok(model)
    }

    /// `ln P(token | context)` (a score for stupid backoff); the last `order - 1` ids of
    /// `context` are used, fewer when it is shorter (the model of that lower order).
    pub fn log_prob(&self, context: &[u32], token: u32) -> f64 {
        let s = &self.shape;
        let m = context.len().min(s.order - 1);
        let ctx = &context[context.len() - m..];
        let mut key = s.key(ctx);
        key = (key << s.bits) | token as u128;
        self.log_prob_key(key, m)
    }

    /// `ln P` of the last token of the packed key, after the `m` ids before it.
    #[inline]
    fn log_prob_key(&self, key: u128, m: usize) -> f64 {
        let s = &self.shape;
        match &self.kind {
            Kind::AddK { k, counts, root } => {
                let c = counts[m].get(&(key & s.mask(m + 1))).map_or(0, |e| e.0);
                let cc = if m == 0 {
                    *root
                } else {
                    counts[m - 1]
                        .get(&((key >> s.bits) & s.mask(m)))
                        .map_or(0, |e| e.1)
                };
                ((c as f64 + k) / (cc as f64 + k * s.predictable() as f64)).ln()
            }
            Kind::Backoff(_) | Kind::Sorted(..) => {
                let b = self.backoff().expect("a backoff model");
                let mut bo = 0.0;
                for len in (0..=m).rev() {
                    if let Some(e) = b.tables[len].get(&(key & s.mask(len + 1))) {
                        return e.0 + bo;
                    }
                    if len > 0 {
                        let h = (key >> s.bits) & s.mask(len);
                        bo += b.tables[len - 1].get(&h).map_or(b.missing, |e| e.1);
                    }
                }
                b.oov + bo
            }
        }
    }

    /// Calls `f(ln P)` for each predicted token of a document (ids `< vocab`, unpadded).
    pub fn for_each_log_prob(&self, doc: &[u32], seq: &mut Vec<u32>, mut f: impl FnMut(f64)) {
        let s = &self.shape;
        s.pad_into(doc, seq);
        let full = s.mask(s.order);
        let first = s.first_predicted();
        if let (Some(b), true) = (self.backoff(), self.closed) {
            return match self.index() {
                Some(index) => index.for_each(seq, first, f),
                None => self.for_each_closed(b, seq, f),
            };
        }
        let mut key = 0u128;
        for (i, &id) in seq.iter().enumerate() {
            key = ((key << s.bits) | id as u128) & full;
            if i >= first {
                f(self.log_prob_key(key, i.min(s.order - 1)));
            }
        }
    }

    /// [`Model::for_each_log_prob`] for tables that hold every suffix of what they hold (as
    /// estimated ones do, and ARPA files as KenLM writes them), as KenLM scores: the n-grams
    /// ending at a token are looked up from the shortest, until one is missing (no longer one
    /// can then be there); the backoff weights of the contexts are those of the n-grams found
    /// ending at the token before. About half the lookups of the search from the longest.
    fn for_each_closed(&self, b: &Backoff, seq: &[u32], mut f: impl FnMut(f64)) {
        let s = &self.shape;
        let n = s.order;
        let full = s.mask(n);
        let first = s.first_predicted();
        // backoff weights of the n-grams ending at the previous token, by length
        let (mut prev, mut cur) = ([0f64; MAX_ORDER + 1], [0f64; MAX_ORDER + 1]);
        let mut prev_found = 0usize;
        let mut key = 0u128;
        for (i, &id) in seq.iter().enumerate() {
            key = ((key << s.bits) | id as u128) & full;
            let top = (i + 1).min(n);
            let (mut found, mut lp) = (0usize, b.oov);
            while found < top {
                match b.tables[found].get(&(key & s.mask(found + 1))) {
                    Some(&(p, bo)) => {
                        lp = p;
                        cur[found + 1] = bo;
                        found += 1;
                    }
                    None => break,
                }
            }
            if i >= first {
                let m = i.min(n - 1);
                // contexts longer than the match: stored ones up to `prev_found`, then missing
                let stored = prev_found.min(m);
                let start = found.max(1);
                if start <= stored {
                    for bo in &prev[start..=stored] {
                        lp += bo;
                    }
                }
                for _ in start.max(stored + 1)..=m {
                    lp += b.missing;
                }
                f(lp);
            }
            std::mem::swap(&mut prev, &mut cur);
            prev_found = found;
        }
    }

    /// The scoring index of a closed backoff model (built on the first call).
    fn index(&self) -> Option<&Probing> {
        match (self.backoff(), self.closed) {
            (Some(b), true) => self
                .index
                .0
                .get_or_init(|| Probing::build(&self.shape, b))
                .as_ref(),
            _ => None,
        }
    }

    /// Builds the scoring index now rather than at the first score.
    pub fn prepare(&self) {
        self.index();
    }

    /// One score per document, in parallel (each document summed in order).
    pub fn score(&self, ids: &[u32], ends: &[usize]) -> Result<Vec<Score>> {
        self.shape.check_ids(ids)?;
        let docs = documents(ids, ends)?;
        if let Some(index) = self.index() {
            let s = &self.shape;
            let first = s.first_predicted();
            let parts: Vec<Vec<Score>> = shares(&docs, |d| d.len())
                .into_par_iter()
                .map(|share| index.score(share, first, |d, seq| s.pad_into(d, seq)))
                .collect();
            return Ok(parts.into_iter().flatten().collect());
        }
        Ok(docs
            .par_iter()
            .map_init(Vec::new, |seq, d| {
                let mut s = Score::default();
                self.for_each_log_prob(d, seq, |lp| {
                    s.nll -= lp;
                    s.n += 1;
                });
                s
            })
            .collect())
    }

    /// `ln P` of each predicted token of one document.
    pub fn token_log_probs(&self, doc: &[u32]) -> Result<Vec<f64>> {
        self.shape.check_ids(doc)?;
        let mut out = Vec::with_capacity(doc.len() + 1);
        self.for_each_log_prob(doc, &mut Vec::new(), |lp| out.push(lp));
        Ok(out)
    }

    /// Samples up to `length` tokens after `start`; padded models start after BOS and stop at
    /// EOS. `exclude` (e.g. `<unk>`) and BOS are never drawn.
    pub fn sample(
        &self,
        start: &[u32],
        length: usize,
        temperature: f64,
        seed: u64,
        exclude: Option<u32>,
    ) -> Result<Vec<u32>> {
        let s = &self.shape;
        self.shape.check_ids(start)?;
        if !(temperature > 0.0 && temperature.is_finite()) {
            return Err(Error::invalid(
                "temperature",
                format!("must be a positive finite number, got {temperature}"),
            ));
        }
        let n = s.order;
        let mut history: Vec<u32> = Vec::new();
        match s.padding {
            Padding::Both => history.extend(std::iter::repeat_n(s.bos(), n - 1)),
            Padding::Sentence => history.push(s.bos()),
            Padding::None => {}
        }
        history.extend_from_slice(start);
        if s.padding == Padding::None && history.len() < n - 1 {
            return Err(Error::invalid(
                "start",
                format!(
                    "an unpadded order-{n} model needs at least {} start tokens, got {}",
                    n - 1,
                    start.len()
                ),
            ));
        }
        let padded = s.padding != Padding::None;
        let candidates: Vec<u32> = (0..s.vocab)
            .filter(|&id| Some(id) != exclude)
            .chain(padded.then_some(s.eos()))
            .collect();
        let mut rng = SplitMix64(seed);
        let mut weights = vec![0f64; candidates.len()];
        let mut out = crate::memory::reserved(
            "length",
            || format!("{length} sampled tokens"),
            Some(length),
        )?;
        for _ in 0..length {
            let ctx = &history[history.len().saturating_sub(n - 1)..];
            for (w, &id) in weights.iter_mut().zip(&candidates) {
                *w = (self.log_prob(ctx, id) / temperature).exp();
            }
            let total: f64 = weights.iter().sum();
            if !(total > 0.0 && total.is_finite()) {
                break; // nothing can follow (an MLE model after an unseen context)
            }
            let pick = rng.pick(&weights, &candidates, total);
            if padded && pick == s.eos() {
                break;
            }
            out.push(pick);
            history.push(pick);
        }
        Ok(out)
    }
}

/// MLE, Witten-Bell, absolute discounting, Kneser-Ney and stupid backoff in backoff form,
/// with NLTK's formulas (see the module header).
fn nltk_backoff(c: &Counts, smoothing: Smoothing) -> Backoff {
    let s = c.shape;
    let n = s.order;
    let st = Stats::new(c);
    let root = st.root;
    let div = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
    // alpha and gamma of `g` (order k) after its context `h`; None: treat `h` as unseen
    let alpha_gamma = |k: usize, g: &Stat, h: &Stat| -> Option<(f64, f64)> {
        if h.follow == 0 {
            return None;
        }
        let (follow, types) = (h.follow as f64, h.types as f64);
        Some(match smoothing {
            Smoothing::WittenBell => {
                let gamma = types / (types + follow);
                ((1.0 - gamma) * (g.count as f64 / follow), gamma)
            }
            Smoothing::AbsoluteDiscount(d) => {
                ((g.count as f64 - d).max(0.0) / follow, d * types / follow)
            }
            Smoothing::KneserNey(d) => {
                let (wc, total) = if k == n {
                    (g.count, h.follow)
                } else {
                    (g.cont, h.cont_follow)
                };
                if total == 0 {
                    return None;
                }
                let total = total as f64;
                ((wc as f64 - d).max(0.0) / total, d * types / total)
            }
            _ => unreachable!("not an interpolated smoothing"),
        })
    };
    let unigram = |g: &Stat| -> f64 {
        match smoothing {
            Smoothing::KneserNey(_) if root.cont_follow > 0 => {
                g.cont as f64 / root.cont_follow as f64
            }
            _ => div(g.count as f64, root.count as f64),
        }
    };
    let (missing, sb) = match smoothing {
        Smoothing::Mle => (f64::NEG_INFINITY, None),
        Smoothing::StupidBackoff(a) => (a.ln(), Some(a)),
        _ => (0.0, None),
    };
    let mut tables: Vec<FxHashMap<u128, (f64, f64)>> = Vec::with_capacity(n);
    for k in 1..=n {
        let mut table = FxHashMap::default();
        table.reserve(st.orders[k - 1].len());
        for (&g, gs) in &st.orders[k - 1] {
            let p = if k == 1 {
                unigram(gs)
            } else {
                let h = st.get(k - 1, g >> s.bits);
                let lower = || tables[k - 2][&(g & s.mask(k - 1))].0.exp();
                match smoothing {
                    Smoothing::Mle => div(gs.count as f64, h.follow as f64),
                    Smoothing::StupidBackoff(a) => {
                        if gs.count > 0 {
                            gs.count as f64 / h.follow as f64
                        } else {
                            a * lower()
                        }
                    }
                    _ => match alpha_gamma(k, gs, &h) {
                        Some((alpha, gamma)) => alpha + gamma * lower(),
                        None => lower(),
                    },
                }
            };
            // the weight of the lower order after `g` as a context (of an order-(k+1) n-gram)
            let bo = if k == n {
                0.0
            } else if let Some(a) = sb {
                a.ln()
            } else if smoothing == Smoothing::Mle {
                f64::NEG_INFINITY
            } else {
                match alpha_gamma(k + 1, &Stat::default(), gs) {
                    Some((_, gamma)) => gamma.ln(),
                    None => 0.0,
                }
            };
            table.insert(g, (p.ln(), bo));
        }
        tables.push(table);
    }
    Backoff {
        tables,
        missing,
        oov: f64::NEG_INFINITY,
    }
}

/// One order of a modified Kneser-Ney model as [`modified_kneser_ney_orders`] computes it: the
/// k-grams' packed keys in key order with their `ln P` and `ln b`.
pub struct KnOrder<'a> {
    pub k: usize,
    pub keys: &'a [u128],
    pub log_probs: &'a [f64],
    /// Empty at the highest order (no backoffs).
    backoffs: &'a [f64],
    /// `ln P` of a token the model has never seen (`<unk>`'s uniform share).
    pub oov: f64,
}

impl KnOrder<'_> {
    /// `ln b` of the k-gram at position `j` (0 at the highest order).
    #[inline]
    pub fn backoff(&self, j: usize) -> f64 {
        self.backoffs.get(j).copied().unwrap_or(0.0)
    }
}

/// The discounts of each order and whether each fell back to KenLM's defaults.
pub type KnDiscounts = (Vec<[f64; 3]>, Vec<bool>);

/// Keys whose `(suffix, index)` pairs are sorted at a time by [`suffix_positions`] (16 MB).
const SUFFIX_PART: usize = 1 << 20;

/// For each key of `keys`, the position of its last `k - 1` ids (`mask`) in the sorted `below`.
/// Where the suffix and the key's index fit in 128 bits together, they are sorted as one `u128`
/// (16 bytes a key, half the memory of a pair), and in parts of `below`'s range, about
/// [`SUFFIX_PART`] keys a part and at most 16 parts, so that one part's pairs are held at a time
/// (each part a pass over `keys`).
fn suffix_positions(
    keys: &[u128],
    below: &[u128],
    mask: u128,
    suffix_bits: u32,
) -> Result<Vec<u32>> {
    suffix_positions_in_parts(keys, below, mask, suffix_bits, SUFFIX_PART)
}

fn suffix_positions_in_parts(
    keys: &[u128],
    below: &[u128],
    mask: u128,
    suffix_bits: u32,
    part: usize,
) -> Result<Vec<u32>> {
    if suffix_bits > 96 || keys.len() >= u32::MAX as usize || below.len() >= u32::MAX as usize {
        return sorted::positions(keys, below, |g| g & mask, "suffix");
    }
    let missing = || Error::Corrupt("the counts lack the suffix of an n-gram they hold".into());
    // (at most 16 parts: each is a pass over every key)
    let parts = keys.len().div_ceil(part).clamp(1, below.len().clamp(1, 16));
    // part p holds the suffixes from below[start(p)] up to below[start(p + 1)]
    let start = |p: usize| p * below.len() / parts;
    let mut out = vec![0u32; keys.len()];
    // (room for a part a little larger than the average, so that most parts never regrow it)
    let mut packed: Vec<u128> = Vec::with_capacity(if parts == 1 {
        keys.len()
    } else {
        keys.len() / parts * 5 / 4
    });
    for p in 0..parts {
        let lo = (p > 0).then(|| below[start(p)]);
        let hi = (p + 1 < parts).then(|| below[start(p + 1)]);
        packed.clear();
        packed.extend(
            keys.iter()
                .enumerate()
                .map(|(i, &g)| (g & mask, i))
                .filter(|&(k, _)| lo.is_none_or(|lo| k >= lo) && hi.is_none_or(|hi| k < hi))
                .map(|(k, i)| (k << 32) | i as u128),
        );
        sorted::sort_keys(&mut packed);
        let mut j = start(p);
        for &q in &packed {
            let k = q >> 32;
            while j < below.len() && below[j] < k {
                j += 1;
            }
            if j == below.len() || below[j] != k {
                return Err(missing());
            }
            out[q as u32 as usize] = j as u32;
        }
    }
    Ok(out)
}

/// Interpolated modified Kneser-Ney as KenLM's `lmplz` estimates it (see the module header):
/// adjusted counts (the count itself at the highest order and for n-grams that start with BOS,
/// else the number of distinct tokens before), discounts per order from their counts of counts,
/// interpolation down to the uniform distribution over the vocabulary (with `<unk>`, without
/// BOS). One detail copied from `lmplz`: the counts of counts take the raw count, not the
/// adjusted one, of the lower-order n-grams that are suffixes of the last highest-order n-gram
/// in its sort order (by KenLM's ids, which number tokens as they first occur).
fn modified_kneser_ney(c: &Counts) -> Result<(SortedBackoff, Vec<[f64; 3]>, Vec<bool>)> {
    let mut tables: Vec<Vec<(u128, (f64, f64))>> = Vec::with_capacity(c.shape.order);
    let mut oov = f64::NEG_INFINITY;
    let (discounts, fallback) = modified_kneser_ney_orders(c, |o| {
        oov = o.oov;
        let mut table = Vec::new();
        (0..o.keys.len())
            .into_par_iter()
            .map(|j| (o.keys[j], (o.log_probs[j], o.backoff(j))))
            .collect_into_vec(&mut table);
        tables.push(table);
        Ok(())
    })?;
    Ok((
        SortedBackoff {
            tables,
            missing: 0.0,
            oov,
        },
        discounts,
        fallback,
    ))
}

/// Modified Kneser-Ney, one order at a time: `emit` is called for orders 1 to n in turn, each
/// order's probabilities computed from those of the order below, which are then dropped, so the
/// whole model is never held (an ARPA file is written as it comes). Returns the discounts.
pub fn modified_kneser_ney_orders(
    c: &Counts,
    mut emit: impl FnMut(&KnOrder<'_>) -> Result<()>,
) -> Result<KnDiscounts> {
    let s = c.shape;
    let n = s.order;
    let bos = s.bos();
    let sentence = s.padding == Padding::Sentence;
    if c.grams[0].is_empty() {
        return Err(Error::invalid(
            "texts",
            "nothing was counted: the training documents are empty",
        ));
    }
    // the n-grams of each order, in key order (a sentence's BOS is a unigram here, with
    // adjusted count 0: it is a context, never predicted)
    let mut unigrams = c.grams[0].clone();
    if sentence && unigrams.find(bos as u128).is_none() {
        let at = unigrams.keys.partition_point(|&k| k < bos as u128);
        unigrams.keys.insert(at, bos as u128);
        unigrams.counts.insert(at, 0);
    }
    let level = |k: usize| -> &Sorted {
        if k == 1 {
            &unigrams
        } else {
            &c.grams[k - 1]
        }
    };
    let starts_with_bos = |g: u128, k: usize| sentence && s.first(g, k) == bos;
    // Per order k >= 2, the position of each k-gram's suffix (its last k - 1 ids) in the order
    // below (`suffix(k)`), and per order k < n the adjusted counts (`adjusted(k, suffix(k + 1))`:
    // the count itself for n-grams that start a sentence, as nothing can come before them, else
    // the number of distinct tokens before; the highest order's adjusted counts are its counts,
    // not copied). Both are made as the walk over the orders reaches them and dropped once used,
    // so that a few orders' arrays are held at a time, not every order's.
    let suffix = |k: usize| -> Result<Vec<u32>> {
        let (keys, below) = (&level(k).keys, &level(k - 1).keys);
        let out = suffix_positions(keys, below, s.mask(k - 1), s.bits * (k as u32 - 1));
        // (the sorted pairs the positions came from are handed back now)
        sorted::release_freed();
        out
    };
    let adjusted = |k: usize, above: &[u32]| -> Vec<u64> {
        let g = level(k);
        let mut a: Vec<u64> = g
            .iter()
            .map(|(key, cnt)| if starts_with_bos(key, k) { cnt } else { 0 })
            .collect();
        for &j in above {
            let j = j as usize;
            if !starts_with_bos(g.keys[j], k) {
                a[j] += 1;
            }
        }
        if sentence && k == 1 {
            if let Some(j) = g.find(bos as u128) {
                a[j] = 0;
            }
        }
        a
    };
    // the n-grams whose raw counts `lmplz` counts in place of their adjusted ones
    let last = if s.padding == Padding::Sentence && n > 1 {
        lmplz_last_ngram(c)
    } else {
        Vec::new()
    };
    let mut discounts: Vec<[f64; 3]> = Vec::with_capacity(n);
    let mut fallback = Vec::with_capacity(n);
    // the discounts of order k from the counts of counts of its adjusted counts `a` (or KenLM's
    // fallback, and whether it was taken)
    let discounts_of = |k: usize, a: &[u64]| -> ([f64; 3], bool) {
        let mut t = [0u64; 5];
        for &v in a {
            if (1..5).contains(&v) {
                t[v as usize] += 1;
            }
        }
        for &(_, key) in last.iter().filter(|&&(j, _)| j == k) {
            let a = level(k).find(key).map_or(0, |j| a[j]);
            let raw = c.grams[k - 1].count(key);
            if (1..5).contains(&a) {
                t[a as usize] -= 1;
            }
            if (1..5).contains(&raw) {
                t[raw as usize] += 1;
            }
        }
        let d = kenlm_discounts(&t);
        (d.unwrap_or(FALLBACK_DISCOUNTS), d.is_none())
    };
    let discount = |d: &[[f64; 3]], k: usize, a: u64| -> f64 {
        if a == 0 {
            0.0
        } else {
            d[k - 1][(a.min(3) - 1) as usize]
        }
    };
    let top_counts = &level(n).counts;
    // the walk's state at order k: the suffix positions of orders k and k + 1, the adjusted
    // counts of orders k and k + 1, and the discounts of orders up to k + 1
    let mut suffix_here: Vec<u32> = Vec::new();
    let mut suffix_next: Vec<u32> = if n > 1 { suffix(2)? } else { Vec::new() };
    let mut a_here: Vec<u64> = if n > 1 {
        adjusted(1, &suffix_next)
    } else {
        Vec::new()
    };
    let (d, f) = discounts_of(1, if n == 1 { top_counts } else { &a_here });
    discounts.push(d);
    fallback.push(f);
    let root_a: &[u64] = if n == 1 { top_counts } else { &a_here };
    let (mut root_sum, mut root_num) = (0f64, 0f64);
    for &a in root_a {
        root_sum += a as f64;
        root_num += discount(&discounts, 1, a);
    }
    let types = unigrams
        .keys
        .iter()
        .filter(|&&g| !(sentence && g == bos as u128))
        .count();
    // the vocabulary of the uniform distribution: the types seen (with EOS), plus <unk>
    let uniform = 1.0 / (types as f64 + 1.0);
    // (no context ever followed: all weight on the lower order)
    let gamma0 = if root_sum > 0.0 {
        root_num / root_sum
    } else {
        1.0
    };
    let oov = (gamma0 * uniform).ln();
    let eos = s.eos() as u128;
    let missing_context =
        || Error::Corrupt("the counts lack the context of an n-gram they hold".into());
    // Each order's n-grams that extend one context (an n-gram of the order below) are next to
    // each other, and these runs come in the order of their contexts: the sum of the adjusted
    // counts of a context's extensions and gamma's numerator are taken run by run, where they
    // are used, in the order of the n-grams (the same sums, added in the same order, as one
    // array of them per context would hold).
    let mut below_lp: Vec<f64> = Vec::new();
    for k in 1..=n {
        let g = level(k);
        let a: &[u64] = if k == n { top_counts } else { &a_here };
        let lp: Vec<f64> = if k == 1 {
            g.keys
                .iter()
                .zip(a)
                .map(|(&key, &a)| {
                    let p = if sentence && key == bos as u128 {
                        1.0
                    } else if root_sum > 0.0 {
                        (a as f64 - discount(&discounts, 1, a)) / root_sum + gamma0 * uniform
                    } else {
                        uniform
                    };
                    p.ln().min(0.0)
                })
                .collect()
        } else {
            let suffix_of = &suffix_here;
            let keys = &g.keys;
            let mut lp = Vec::with_capacity(keys.len());
            let mut i = 0;
            while i < keys.len() {
                let context = keys[i] >> s.bits;
                let (mut end, mut sum, mut num) = (i, 0f64, 0f64);
                while end < keys.len() && keys[end] >> s.bits == context {
                    sum += a[end] as f64;
                    num += discount(&discounts, k, a[end]);
                    end += 1;
                }
                for j in i..end {
                    let a = a[j];
                    let lower = below_lp[suffix_of[j] as usize].exp();
                    let p = if sum > 0.0 {
                        (a as f64 - discount(&discounts, k, a)) / sum + num / sum * lower
                    } else {
                        lower
                    };
                    lp.push(p.ln().min(0.0));
                }
                i = end;
            }
            lp
        };
        // what this order's probabilities needed is no longer needed
        drop(std::mem::take(&mut suffix_here));
        drop(std::mem::take(&mut below_lp));
        sorted::release_freed();
        // the order above: its adjusted counts (from the suffix positions of the order above
        // it) and discounts, which its backoffs need
        let mut a_next: Vec<u64> = Vec::new();
        let mut suffix_after: Vec<u32> = Vec::new();
        if k < n {
            if k + 1 < n {
                suffix_after = suffix(k + 2)?;
                a_next = adjusted(k + 1, &suffix_after);
            }
            let (d, f) = discounts_of(k + 1, if k + 1 == n { top_counts } else { &a_next });
            discounts.push(d);
            fallback.push(f);
        }
        // backoffs: gamma of each n-gram as a context, from the run of its extensions above
        // (none at the highest order, nor after EOS)
        let backoffs: Vec<f64> = if k < n {
            let up = &level(k + 1).keys;
            let ua: &[u64] = if k + 1 == n { top_counts } else { &a_next };
            let mut i = 0;
            let mut bo = Vec::with_capacity(g.len());
            for &key in &g.keys {
                if i < up.len() && up[i] >> s.bits < key {
                    return Err(missing_context());
                }
                let (mut sum, mut num) = (0f64, 0f64);
                while i < up.len() && up[i] >> s.bits == key {
                    sum += ua[i] as f64;
                    num += discount(&discounts, k + 1, ua[i]);
                    i += 1;
                }
                bo.push(if key & s.mask(1) != eos && sum > 0.0 {
                    (num / sum).ln()
                } else {
                    0.0
                });
            }
            if i != up.len() {
                return Err(missing_context());
            }
            bo
        } else {
            Vec::new()
        };
        a_here = a_next;
        suffix_here = std::mem::replace(&mut suffix_next, suffix_after);
        sorted::release_freed();
        emit(&KnOrder {
            k,
            keys: &g.keys,
            log_probs: &lp,
            backoffs: &backoffs,
            oov,
        })?;
        below_lp = lp;
    }
    Ok((discounts, fallback))
}

/// `lmplz`'s counts of counts take the raw count of the lower-order n-grams that are still open
/// when its pass over the highest order ends: the suffixes of the last highest-order n-gram in
/// suffix order (KenLM ids: `<unk>` 0, `<s>` 1, `</s>` 2, then tokens as they first occur).
/// Returns those n-grams, `(order, key)`.
fn lmplz_last_ngram(c: &Counts) -> Vec<(usize, u128)> {
    let s = c.shape;
    let n = s.order;
    let bos = s.bos();
    let mut rank = vec![u32::MAX; s.vocab as usize + 2];
    rank[bos as usize] = 1;
    rank[s.eos() as usize] = 2;
    for (i, &id) in c.first_seen.iter().enumerate() {
        rank[id as usize] = 3 + i as u32;
    }
    // a full n-gram as KenLM sorts it: ranks from the last token back
    let mut ids = Vec::with_capacity(n);
    let sort_key = |ids: &[u32]| -> [u32; MAX_ORDER] {
        let mut key = [0u32; MAX_ORDER];
        for (slot, &i) in key.iter_mut().zip(ids.iter().rev()) {
            *slot = rank[i as usize];
        }
        key
    };
    let mut best: Option<([u32; MAX_ORDER], u128, usize)> = None;
    let mut consider = |ids: &[u32], key: u128, k: usize| {
        let rank_key = sort_key(ids);
        if best.as_ref().is_none_or(|(b, _, _)| rank_key > *b) {
            best = Some((rank_key, key, k));
        }
    };
    for &g in &c.grams[n - 1].keys {
        ids.clear();
        s.unpack(g, n, &mut ids);
        consider(&ids, g, n);
    }
    // n-grams that start with BOS below the highest order stand for BOS-padded full ones
    for k in 1..n {
        for &g in &c.grams[k - 1].keys {
            if s.first(g, k) == bos {
                ids.clear();
                ids.extend(std::iter::repeat_n(bos, n - k));
                s.unpack(g, k, &mut ids);
                consider(&ids, g, k);
            }
        }
    }
    let Some((_, key, k)) = best else {
        return Vec::new();
    };
    let mut full = vec![bos; n - k];
    s.unpack(key, k, &mut full);
    let last_bos = (1..n).rev().find(|&j| full[j] == bos);
    let top = match last_bos {
        Some(j) => n - j,
        None => n - 1,
    };
    (1..=top)
        .filter(|&k| full[n - k] != bos)
        .map(|k| (k, s.key(&full[n - k..])))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Suffix positions found in parts of any size are those of one sort of every pair, and a
    /// suffix missing from the order below is an error in any part.
    #[test]
    fn suffix_positions_in_parts_are_the_same() {
        let shape = Shape::new(3, 40, Padding::None).unwrap();
        let mut keys: Vec<u128> = (0..3_000u32)
            .map(|i| shape.key(&[(i * 7) % 40, (i * 13) % 37, (i * 29) % 31]))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut below: Vec<u128> = keys.iter().map(|&g| g & shape.mask(2)).collect();
        below.sort_unstable();
        below.dedup();
        let want = sorted::positions(&keys, &below, |g| g & shape.mask(2), "suffix").unwrap();
        for part in [1, 7, 100, 1 << 20] {
            let got =
                suffix_positions_in_parts(&keys, &below, shape.mask(2), shape.bits() * 2, part);
            assert_eq!(got.unwrap(), want, "parts of {part}");
        }
        let gap: Vec<u128> = below.iter().copied().filter(|&b| b != below[5]).collect();
        for part in [1, 7, 1 << 20] {
            let got = suffix_positions_in_parts(&keys, &gap, shape.mask(2), shape.bits() * 2, part);
            assert!(got.is_err(), "parts of {part}");
        }
    }

    fn counts(order: usize, padding: Padding, docs: &[&[u32]], vocab: u32) -> Counts {
        let shape = Shape::new(order, vocab, padding).unwrap();
        let mut c = Counts::new(shape);
        let ids: Vec<u32> = docs.iter().flat_map(|d| d.iter().copied()).collect();
        let mut ends = Vec::new();
        let mut e = 0;
        for d in docs {
            e += d.len();
            ends.push(e);
        }
        c.add(&ids, &ends).unwrap();
        c
    }

    #[test]
    fn counts_every_order_and_merge() {
        let c = counts(2, Padding::Sentence, &[&[0, 1, 0], &[1]], 2);
        // <s> 0 1 0 </s> ; <s> 1 </s>
        assert_eq!(c.count(&[0]), 2);
        assert_eq!(c.count(&[2]), 0); // BOS is no unigram
        assert_eq!(c.count(&[3]), 2);
        assert_eq!(c.count(&[2, 0]), 1);
        assert_eq!(c.count(&[0, 3]), 1);
        let a = counts(2, Padding::Sentence, &[&[0, 1, 0]], 2);
        let mut b = counts(2, Padding::Sentence, &[&[1]], 2);
        b.merge(&a).unwrap();
        assert_eq!(b.grams, c.grams);
        let (ids, cs) = c.entries(2);
        let mut back = Counts::new(c.shape);
        for k in 1..=2 {
            let (ids, cs) = c.entries(k);
            back.set_entries(k, &ids, &cs).unwrap();
        }
        assert_eq!(back.grams, c.grams);
        assert_eq!(ids.len(), cs.len() * 2);
    }

    #[test]
    fn pending_windows_count_as_added_ones() {
        // documents added in pieces, left pending, and merged from an unflushed shard count as
        // the same documents added at once, for each padding
        let docs: &[&[u32]] = &[&[0, 1, 2, 0, 1], &[2, 2, 1], &[], &[0], &[1, 0, 2, 2, 0, 1]];
        for padding in [Padding::None, Padding::Both, Padding::Sentence] {
            let whole = counts(4, padding, docs, 3);
            let mut a = Counts::new(whole.shape);
            a.add_pending(&[0, 1, 2, 0, 1, 2, 2, 1], &[5, 8]).unwrap();
            a.add_pending(&[], &[0]).unwrap();
            let mut flushed = a.clone();
            flushed.flush();
            assert_eq!(a.unigram_total(), flushed.total(1), "{padding:?}");
            let mut b = Counts::new(whole.shape);
            b.add_pending(&[0, 1, 0, 2, 2, 0, 1], &[1, 7]).unwrap();
            a.merge(&b).unwrap();
            a.flush();
            assert_eq!(a, whole, "{padding:?}");
            let (m1, m2) = (
                Model::estimate(&a, Smoothing::ModifiedKneserNey).unwrap(),
                Model::estimate(&whole, Smoothing::ModifiedKneserNey).unwrap(),
            );
            assert_eq!(m1.log_prob(&[0, 1], 2), m2.log_prob(&[0, 1], 2));
        }
    }

    #[test]
    fn probabilities_sum_to_one() {
        let docs: &[&[u32]] = &[&[0, 1, 2, 0, 1], &[2, 2, 1], &[0], &[1, 0, 2, 2]];
        for padding in [Padding::Both, Padding::Sentence] {
            for sm in [
                Smoothing::AddK(0.5),
                Smoothing::Mle,
                Smoothing::WittenBell,
                Smoothing::AbsoluteDiscount(0.75),
                Smoothing::KneserNey(0.1),
                Smoothing::ModifiedKneserNey,
            ] {
                let c = counts(3, padding, docs, 4); // id 3 never seen (an <unk>)
                let m = Model::estimate(&c, sm).unwrap();
                let bos = m.shape.bos();
                // (padded on both ends, BOS follows BOS: it is a target too)
                let both = (padding == Padding::Both).then_some(bos);
                let targets: Vec<u32> = (0..4).chain([m.shape.eos()]).chain(both).collect();
                for ctx in [
                    vec![bos, bos],
                    vec![bos, 0],
                    vec![0, 1],
                    vec![2, 2],
                    vec![1],
                ] {
                    let total: f64 = targets.iter().map(|&t| m.log_prob(&ctx, t).exp()).sum();
                    let want_below = matches!(
                        sm,
                        Smoothing::Mle
                            | Smoothing::WittenBell
                            | Smoothing::AbsoluteDiscount(_)
                            | Smoothing::KneserNey(_)
                    );
                    if matches!(sm, Smoothing::KneserNey(_)) {
                        // NLTK's lower orders weigh by the distinct followers in the counts but
                        // discount continuation counts: not normalized where they differ
                        assert!(total > 0.0 && total < 1.1, "{ctx:?} {total}");
                    } else if want_below {
                        // an unseen id gets nothing in these (NLTK's definitions)
                        assert!(total <= 1.0 + 1e-12, "{sm:?} {padding:?} {ctx:?} {total}");
                    } else {
                        assert!(
                            (total - 1.0).abs() < 1e-9,
                            "{sm:?} {padding:?} {ctx:?} {total}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_search_from_the_shortest_equals_standard_backoff() {
        let docs: &[&[u32]] = &[
            &[0, 1, 2, 0, 1, 3, 3],
            &[2, 2, 1, 0],
            &[0],
            &[1, 0, 2, 2, 4],
        ];
        let test: Vec<u32> = vec![0, 1, 2, 2, 4, 4, 1, 0, 3, 0, 1, 2];
        for padding in [Padding::None, Padding::Both, Padding::Sentence] {
            for sm in [
                Smoothing::Mle,
                Smoothing::StupidBackoff(0.4),
                Smoothing::WittenBell,
                Smoothing::ModifiedKneserNey,
            ] {
                let c = counts(4, padding, docs, 6);
                let mut m = Model::estimate(&c, sm).unwrap();
                assert!(m.closed);
                assert!(m.index().is_some());
                let fast = m.token_log_probs(&test).unwrap();
                // the probing index sums what the search over the packed tables sums, in order
                let mut closed = Vec::new();
                let mut seq = Vec::new();
                m.shape.pad_into(&test, &mut seq);
                m.for_each_closed(m.backoff().unwrap(), &seq, |lp| closed.push(lp));
                assert_eq!(closed.len(), fast.len());
                for (a, b) in fast.iter().zip(&closed) {
                    assert!(a.to_bits() == b.to_bits(), "{sm:?} {padding:?} {a} {b}");
                }
                // documents scored at once (interleaved) sum as one at a time
                let ids: Vec<u32> = (0..40u32).map(|i| (i * 7 + i / 3) % 6).collect();
                let ends: Vec<usize> = vec![0, 3, 3, 9, 10, 17, 18, 25, 26, 30, 33, 40];
                let scores = m.score(&ids, &ends).unwrap();
                let mut start = 0;
                for (&end, got) in ends.iter().zip(&scores) {
                    let mut want = Score::default();
                    let mut seq = Vec::new();
                    m.for_each_log_prob(&ids[start..end], &mut seq, |lp| {
                        want.nll -= lp;
                        want.n += 1;
                    });
                    assert_eq!(want.n, got.n);
                    assert_eq!(want.nll.to_bits(), got.nll.to_bits(), "{sm:?} {padding:?}");
                    start = end;
                }
                m.closed = false;
                let slow = m.token_log_probs(&test).unwrap();
                assert_eq!(fast.len(), slow.len());
                for (a, b) in fast.iter().zip(&slow) {
                    assert!(
                        a == b || (a - b).abs() < 1e-12,
                        "{sm:?} {padding:?} {a} {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn kenlm_discounts_by_hand() {
        // t1=10 t2=5 t3=2 t4=1: y = 10/20 = 0.5
        let d = kenlm_discounts(&[0, 10, 5, 2, 1]).unwrap();
        assert!((d[0] - (1.0 - 2.0 * 0.5 * 5.0 / 10.0)).abs() < 1e-6);
        assert!((d[1] - (2.0 - 3.0 * 0.5 * 2.0 / 5.0)).abs() < 1e-6);
        assert!((d[2] - (3.0 - 4.0 * 0.5 * 1.0 / 2.0)).abs() < 1e-6);
        assert!(kenlm_discounts(&[0, 10, 0, 2, 1]).is_none());
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(Shape::new(0, 10, Padding::None).is_err());
        assert!(Shape::new(9, 1 << 20, Padding::None).is_err());
        assert!(Smoothing::parse("kneser", f64::NAN).is_err());
        assert!(Smoothing::parse("add-k", 0.0).is_err());
        assert_eq!(
            Smoothing::parse("kneser-ney", f64::NAN).unwrap(),
            Smoothing::ModifiedKneserNey
        );
        let mut c = Counts::new(Shape::new(2, 3, Padding::None).unwrap());
        assert!(c.add(&[0, 3], &[2]).is_err());
        assert!(c.add(&[0, 1], &[3]).is_err());
        assert!(Model::estimate(&c, Smoothing::Mle).is_err());
    }
}
