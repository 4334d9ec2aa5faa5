//! The scoring index of a backoff model: per order, a compact open-addressing (linear probing)
//! table keyed by 64 bits that name an n-gram exactly, as KenLM's state carries the context
//! from token to token.
//!
//! A unigram's slot is its id. An n-gram `h w` of order `k >= 2` is stored under
//! `slot(h) << 32 | w`, `slot(h)` being the slot of its context `h` in the table of order
//! `k - 1`; the slots of the n-grams ending at a token are the state the next token needs, so a
//! token costs one probe per order visited and no hashing of packed `u128` keys.
//!
//! Where a stored n-gram's context (its prefix) is not stored itself, the context is added as a
//! *placeholder*: no probability of its own (`NaN`), the model's backoff weight for contexts
//! that are not stored. Stored n-grams and placeholders together hold every prefix and (for the
//! suffix-closed models this index serves) every suffix of what they hold, so along the n-grams
//! that end at a token the stored ones come first and the placeholders after them.

use rustc_hash::FxHashSet;

use crate::ngram::addk::Score;
use crate::ngram::model::{Backoff, Shape, MAX_ORDER};

const EMPTY: u64 = u64::MAX;
/// Fibonacci hashing's multiplier (2^64 / the golden ratio).
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// Asks the CPU to bring `at`'s cache line in (a hint: nothing is read).
#[inline]
fn prefetch<T>(at: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address
    #[allow(unused_unsafe)]
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(at as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: u64,
    /// `ln P`; NaN for a placeholder context.
    p: f64,
    /// `ln b` as a context.
    bo: f64,
}

#[derive(Clone, Debug)]
struct Table {
    entries: Vec<Entry>,
    shift: u32,
}

impl Table {
    /// A table for `n` entries, at most half full (a probe for what is not there, as the
    /// last of each token is, stays short).
    fn new(n: usize) -> Self {
        let cap = (n.max(1) * 2).next_power_of_two();
        Table {
            entries: vec![
                Entry {
                    key: EMPTY,
                    p: 0.0,
                    bo: 0.0,
                };
                cap
            ],
            shift: 64 - cap.trailing_zeros(),
        }
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        // (a table of one slot shifts by 64: every key goes home to 0)
        // (the high half, the context's slot, mixed into the low half first)
        let x = key ^ (key >> 29);
        x.wrapping_mul(MULTIPLIER)
            .checked_shr(self.shift)
            .unwrap_or(0) as usize
    }

    /// The slot of `key`, or of the empty slot where it would go.
    #[inline]
    fn probe(&self, key: u64) -> usize {
        let mask = self.entries.len() - 1;
        let mut i = self.home(key);
        loop {
            let k = self.entries[i].key;
            if k == key || k == EMPTY {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    fn find(&self, key: u64) -> Option<(u32, &Entry)> {
        let i = self.probe(key);
        let e = &self.entries[i];
        (e.key == key).then_some((i as u32, e))
    }

    /// Asks the CPU to load `key`'s home slot: the probes of one token are known before the
    /// first is made, and their cache misses can overlap.
    #[inline]
    fn prefetch(&self, key: u64) {
        prefetch(self.entries.as_ptr().wrapping_add(self.home(key)));
    }

    fn insert(&mut self, key: u64, p: f64, bo: f64) {
        let i = self.probe(key);
        self.entries[i] = Entry { key, p, bo };
    }
}

/// The index of one backoff model (see the module header).
#[derive(Clone, Debug)]
pub struct Probing {
    /// `(ln P, ln b)` by id; NaN `ln P`: no such unigram.
    unigrams: Vec<(f64, f64)>,
    /// `higher[k - 2]`: the n-grams of order `k`.
    higher: Vec<Table>,
    missing: f64,
    oov: f64,
    order: usize,
}

impl Probing {
    /// The index of `b`, or None where a probability is NaN (it would read as a placeholder) or
    /// a table is too large for 32-bit slots.
    pub fn build(s: &Shape, b: &Backoff) -> Option<Self> {
        let n = s.order;
        let bits = s.bits();
        let low = |key: u128| (key & ((1u128 << bits) - 1)) as u64;
        // the placeholders each order needs, from the highest order down
        let mut placeholders: Vec<FxHashSet<u128>> = vec![FxHashSet::default(); n];
        for k in (2..=n).rev() {
            let (below, above) = placeholders.split_at_mut(k - 1);
            let needed = &mut below[k - 2];
            for g in b.tables[k - 1].keys().chain(above[0].iter()) {
                let ctx = g >> bits;
                if !b.tables[k - 2].contains_key(&ctx) {
                    needed.insert(ctx);
                }
            }
        }
        let mut unigrams = vec![(f64::NAN, b.missing); s.vocab as usize + 2];
        for (&g, &(p, bo)) in &b.tables[0] {
            if p.is_nan() {
                return None;
            }
            unigrams[g as usize] = (p, bo);
        }
        let mut index = Probing {
            unigrams,
            higher: Vec::with_capacity(n.saturating_sub(1)),
            missing: b.missing,
            oov: b.oov,
            order: n,
        };
        for k in 2..=n {
            let size = b.tables[k - 1].len() + placeholders[k - 1].len();
            if size * 2 > u32::MAX as usize {
                return None;
            }
            let mut table = Table::new(size);
            let real = b.tables[k - 1].iter().map(|(&g, &e)| (g, e));
            let extra = placeholders[k - 1]
                .iter()
                .map(|&g| (g, (f64::NAN, b.missing)));
            for (g, (p, bo)) in real.chain(extra) {
                if p.is_nan() && b.tables[k - 1].contains_key(&g) {
                    return None;
                }
                // the context is stored or a placeholder: it has a slot
                let ctx = index.slot(g >> bits, k - 1, bits)?;
                table.insert(((ctx as u64) << 32) | low(g), p, bo);
            }
            index.higher.push(table);
        }
        Some(index)
    }

    /// The slot of the packed k-gram `g` (stored or a placeholder).
    fn slot(&self, g: u128, k: usize, bits: u32) -> Option<u32> {
        if k == 1 {
            return Some(g as u32);
        }
        let ctx = self.slot(g >> bits, k - 1, bits)?;
        let last = (g & ((1u128 << bits) - 1)) as u64;
        self.higher[k - 2]
            .find(((ctx as u64) << 32) | last)
            .map(|(i, _)| i)
    }

    /// The log-probability of token `id` at position `i` of its sequence after the tokens
    /// that `st` has seen (None before `first`), and `st` moved past it: the same sums, in the
    /// same order, as the search over the packed tables (the closed path of
    /// [`crate::ngram::model::Model`]).
    #[inline]
    fn step(&self, st: &mut State, id: u32, i: usize, first: usize) -> Option<f64> {
        let n = self.order;
        let (prev, cur) = (st.cur, st.cur ^ 1);
        let prev_chain = st.chain;
        let (up, ubo) = self.unigrams[id as usize];
        st.slot[cur][1] = id;
        st.bo[cur][1] = ubo;
        let mut chain = 1usize;
        // the longest stored n-gram ending here, and its ln P
        let (mut found, mut lp) = if up.is_nan() { (0, self.oov) } else { (1, up) };
        while chain < n && chain <= prev_chain {
            let key = ((st.slot[prev][chain] as u64) << 32) | id as u64;
            match self.higher[chain - 1].find(key) {
                Some((slot, e)) => {
                    chain += 1;
                    st.slot[cur][chain] = slot;
                    st.bo[cur][chain] = e.bo;
                    if !e.p.is_nan() {
                        lp = e.p;
                        found = chain;
                    }
                }
                None => break,
            }
        }
        st.cur = cur;
        st.chain = chain;
        if i < first {
            return None;
        }
        let m = i.min(n - 1);
        for j in found.max(1)..=m {
            lp += if j <= prev_chain {
                st.bo[prev][j]
            } else {
                self.missing
            };
        }
        Some(lp)
    }

    /// Prefetches what the step to token `next` after `st` will probe.
    #[inline]
    fn prefetch(&self, st: &State, next: u32) {
        prefetch(self.unigrams.as_ptr().wrapping_add(next as usize));
        for j in 1..=st.chain.min(self.order - 1) {
            self.higher[j - 1].prefetch(((st.slot[st.cur][j] as u64) << 32) | next as u64);
        }
    }

    /// Calls `f(ln P)` for each token of the padded sequence `seq` from position `first` on,
    /// with standard backoff.
    pub fn for_each(&self, seq: &[u32], first: usize, mut f: impl FnMut(f64)) {
        let mut st = State::default();
        for (i, &id) in seq.iter().enumerate() {
            if let Some(lp) = self.step(&mut st, id, i, first) {
                f(lp);
            }
            if let Some(&next) = seq.get(i + 1) {
                self.prefetch(&st, next);
            }
        }
    }

    /// The score of each document, padded by `pad` into a sequence predicted from `first` on:
    /// [`STREAMS`] documents are scored at once, a token of each in turn, so that the cache
    /// misses of one overlap those of the others (each document is summed in its own order).
    pub fn score(
        &self,
        docs: &[&[u32]],
        first: usize,
        pad: impl Fn(&[u32], &mut Vec<u32>),
    ) -> Vec<Score> {
        struct Stream {
            doc: usize,
            seq: Vec<u32>,
            pos: usize,
            st: State,
            done: bool,
        }
        let mut out = vec![Score::default(); docs.len()];
        let mut next_doc = 0;
        let mut streams: Vec<Stream> = (0..STREAMS.min(docs.len()))
            .map(|_| Stream {
                doc: 0,
                seq: Vec::new(),
                pos: 0,
                st: State::default(),
                done: false,
            })
            .collect();
        let mut active = streams.len();
        while active > 0 {
            for s in &mut streams {
                if s.done {
                    continue;
                }
                // this stream's document is done (or none is started yet): the next one
                while s.pos == s.seq.len() {
                    if next_doc == docs.len() {
                        s.done = true;
                        active -= 1;
                        break;
                    }
                    s.doc = next_doc;
                    next_doc += 1;
                    pad(docs[s.doc], &mut s.seq);
                    s.pos = 0;
                    s.st = State::default();
                }
                if s.done {
                    continue;
                }
                let id = s.seq[s.pos];
                if let Some(lp) = self.step(&mut s.st, id, s.pos, first) {
                    let o = &mut out[s.doc];
                    o.nll -= lp;
                    o.n += 1;
                }
                s.pos += 1;
                if let Some(&next) = s.seq.get(s.pos) {
                    self.prefetch(&s.st, next);
                }
            }
        }
        out
    }
}

/// Documents scored at once by [`Probing::score`].
const STREAMS: usize = 8;

/// What scoring carries from token to token: the slots and backoff weights of the n-grams
/// (stored or placeholders) ending at the previous token (`[cur]`, by length) and the token
/// before (`[cur ^ 1]`), and how many end at the previous token.
#[derive(Clone, Copy)]
struct State {
    slot: [[u32; MAX_ORDER + 1]; 2],
    bo: [[f64; MAX_ORDER + 1]; 2],
    chain: usize,
    cur: usize,
}

impl Default for State {
    fn default() -> Self {
        State {
            slot: [[0; MAX_ORDER + 1]; 2],
            bo: [[0.0; MAX_ORDER + 1]; 2],
            chain: 0,
            cur: 0,
        }
    }
}
