//! A suffix array over the UTF-8 bytes of a corpus: exact counts and positions of any string,
//! the distribution of the next character after the longest part of a context that occurs (the
//! unbounded n-gram of infini-gram), and the repeated spans of exact substring dedup
//! ([`spans`]).
//!
//! The corpus is its documents' UTF-8 bytes, each followed by the byte `0xFF` ([`SEP`]), which
//! UTF-8 never uses: no query string (valid UTF-8) can match across two documents. The suffix
//! array lists the start of every suffix of these bytes in lexicographic order (a suffix that is
//! a prefix of another sorts first), built by libsais (SA-IS). Positions take 32 bits while the
//! corpus is under 4 GiB, 64 bits above ([`Width`]).
//!
//! Definitions, for a context `c` and a string `s` (characters are Unicode scalar values):
//! - `count(s)`: the number of positions where the bytes of `s` start; `count("")` is the number
//!   of characters in the corpus.
//! - `next_counts(c)`: the longest suffix `c[-k:]` (in characters, `k >= 0`) with
//!   `count(c[-k:]) > 0`; `total = count(c[-k:])`, and for each character `x`,
//!   `count(c[-k:] + x)` when it is positive. An occurrence at the end of a document has no next
//!   character: it counts in `total` only (so the counts may sum to less than `total`).
//! - `prob(c, s, None)`: `count(c[-k:] + s) / count(c[-k:])` with `k` as for `next_counts`;
//!   `prob(c, s, Some(n))`: the same with `k = min(n - 1, len(c))`, NaN when the context never
//!   occurs.

pub mod records;
pub mod spans;
pub mod store;

use std::ops::Range;

use crate::error::{Error, Result};
use crate::memory;

/// The byte that ends every document in the corpus (never part of UTF-8 text).
pub const SEP: u8 = 0xFF;

/// How wide the stored positions are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    U32,
    U64,
}

impl Width {
    /// 32 bits while every position fits, 64 above.
    pub fn for_len(n: usize) -> Width {
        if (n as u64) <= u32::MAX as u64 {
            Width::U32
        } else {
            Width::U64
        }
    }

    pub fn bytes(self) -> usize {
        match self {
            Width::U32 => 4,
            Width::U64 => 8,
        }
    }
}

/// A stored position (u32 or u64).
pub trait Pos: Copy + Send + Sync + bytemuck::Pod + Ord {
    fn at(self) -> usize;
}

impl Pos for u32 {
    #[inline]
    fn at(self) -> usize {
        self as usize
    }
}

impl Pos for u64 {
    #[inline]
    fn at(self) -> usize {
        self as usize
    }
}

/// Bytes or positions held in memory or mapped from a file.
pub enum Store<T: bytemuck::Pod> {
    Owned(Vec<T>),
    Mapped(memmap2::Mmap),
}

impl<T: bytemuck::Pod> Store<T> {
    pub fn as_slice(&self) -> &[T] {
        match self {
            Store::Owned(v) => v,
            // (a map starts on a page boundary; its length was checked when it was opened)
            Store::Mapped(m) => bytemuck::try_cast_slice(&m[..]).unwrap_or(&[]),
        }
    }
}

/// The suffix array, in the width its corpus needs.
pub enum SuffixArray {
    U32(Store<u32>),
    U64(Store<u64>),
}

impl SuffixArray {
    pub fn width(&self) -> Width {
        match self {
            SuffixArray::U32(_) => Width::U32,
            SuffixArray::U64(_) => Width::U64,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SuffixArray::U32(s) => s.as_slice().len(),
            SuffixArray::U64(s) => s.as_slice().len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs `$body` with `$sa` bound to the suffix array as a slice of its own position type.
macro_rules! with_sa {
    ($index:expr, $sa:ident => $body:expr) => {
        match &$index.sa {
            $crate::suffix::SuffixArray::U32(s) => {
                let $sa: &[u32] = s.as_slice();
                $body
            }
            $crate::suffix::SuffixArray::U64(s) => {
                let $sa: &[u64] = s.as_slice();
                $body
            }
        }
    };
}
pub(crate) use with_sa;

/// Documents added one by one, then sorted into a [`SuffixIndex`].
#[derive(Default)]
pub struct Builder {
    text: Vec<u8>,
    starts: Vec<u64>,
    n_chars: u64,
}

impl Builder {
    pub fn new() -> Self {
        Builder::default()
    }

    pub fn push(&mut self, doc: &str) {
        self.starts.push(self.text.len() as u64);
        self.text.extend_from_slice(doc.as_bytes());
        self.text.push(SEP);
        self.n_chars += count_chars(doc.as_bytes());
    }

    pub fn n_docs(&self) -> usize {
        self.starts.len()
    }

    pub fn n_bytes(&self) -> usize {
        self.text.len()
    }

    /// Sorts the suffixes (libsais, on the calling thread) in the width the corpus needs.
    pub fn finish(self) -> Result<SuffixIndex> {
        let width = Width::for_len(self.text.len());
        self.finish_as(width)
    }

    /// [`Builder::finish`] with a chosen width (the wide paths, tested on small corpora).
    pub fn finish_as(mut self, width: Width) -> Result<SuffixIndex> {
        let sa = sort_suffixes(&self.text, width)?;
        self.starts.push(self.text.len() as u64);
        self.text.shrink_to_fit();
        Ok(SuffixIndex {
            text: Store::Owned(self.text),
            sa,
            starts: Store::Owned(self.starts),
            n_chars: self.n_chars,
        })
    }
}

/// Characters in UTF-8 bytes (bytes that do not continue a character).
pub fn count_chars(b: &[u8]) -> u64 {
    b.iter().filter(|&&x| x & 0xC0 != 0x80).count() as u64
}

/// The extra room libsais works best with at the end of its buffer.
const SAIS_EXTRA: usize = 6 << 10;

/// The suffix array of `text` in `width`. libsais sorts in `i32` up to 2^31 - 1 bytes, in
/// `i64` above; 32-bit positions of a longer corpus are narrowed from the `i64` result.
pub fn sort_suffixes(text: &[u8], width: Width) -> Result<SuffixArray> {
    let n = text.len();
    let failed = |e: libsais::LibsaisError| Error::invalid("texts", format!("libsais: {e:?}"));
    let what = || format!("the suffix array of {n} bytes");
    if n == 0 {
        return Ok(match width {
            Width::U32 => SuffixArray::U32(Store::Owned(Vec::new())),
            Width::U64 => SuffixArray::U64(Store::Owned(Vec::new())),
        });
    }
    if width == Width::U32 && n <= i32::MAX as usize {
        let mut buf: Vec<i32> = memory::filled("texts", what, n.checked_add(SAIS_EXTRA), 0)?;
        libsais::SuffixArrayConstruction::for_text(text)
            .in_borrowed_buffer(&mut buf)
            .single_threaded()
            .run()
            .map_err(failed)?;
        buf.truncate(n);
        buf.shrink_to_fit();
        return Ok(SuffixArray::U32(Store::Owned(
            bytemuck::allocation::cast_vec(buf),
        )));
    }
    if width == Width::U32 && n as u64 > u32::MAX as u64 {
        return Err(Error::invalid(
            "texts",
            format!("{n} bytes do not fit 32-bit positions"),
        ));
    }
    let mut buf: Vec<i64> = memory::filled("texts", what, n.checked_add(SAIS_EXTRA), 0)?;
    libsais::SuffixArrayConstruction::for_text(text)
        .in_borrowed_buffer(&mut buf)
        .single_threaded()
        .run()
        .map_err(failed)?;
    buf.truncate(n);
    Ok(match width {
        Width::U64 => SuffixArray::U64(Store::Owned(bytemuck::allocation::cast_vec(buf))),
        Width::U32 => {
            let mut out: Vec<u32> = memory::reserved("texts", what, Some(n))?;
            out.extend(buf.iter().map(|&p| p as u32));
            SuffixArray::U32(Store::Owned(out))
        }
    })
}

/// A document number and a byte offset in that document.
pub type Place = (usize, usize);

/// What follows the longest occurring suffix of a context (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NextCounts {
    /// Characters of the context used (`k`).
    pub length: usize,
    /// Occurrences of that suffix (`count("")` = characters in the corpus when `k = 0`).
    pub total: u64,
    /// Each next character with its count, in byte order.
    pub counts: Vec<(char, u64)>,
}

/// A corpus and its suffix array, in memory or mapped from a directory ([`store`]).
pub struct SuffixIndex {
    pub(crate) text: Store<u8>,
    pub(crate) sa: SuffixArray,
    /// Start of each document, then the corpus length.
    pub(crate) starts: Store<u64>,
    pub(crate) n_chars: u64,
}

impl SuffixIndex {
    /// The corpus bytes: each document followed by [`SEP`].
    pub fn text(&self) -> &[u8] {
        self.text.as_slice()
    }

    pub fn starts(&self) -> &[u64] {
        self.starts.as_slice()
    }

    pub fn n_docs(&self) -> usize {
        self.starts().len().saturating_sub(1)
    }

    pub fn n_bytes(&self) -> usize {
        self.text().len()
    }

    pub fn n_chars(&self) -> u64 {
        self.n_chars
    }

    pub fn width(&self) -> Width {
        self.sa.width()
    }

    /// The text of document `d`.
    pub fn document(&self, d: usize) -> Option<&str> {
        let s = self.starts();
        let (a, b) = (*s.get(d)? as usize, *s.get(d + 1)? as usize);
        std::str::from_utf8(self.text().get(a..b.checked_sub(1)?)?).ok()
    }

    /// The suffix-array rows whose suffix starts with `pat` (all rows for an empty `pat`).
    pub fn rows(&self, pat: &[u8]) -> Range<usize> {
        with_sa!(self, sa => rows_in(self.text(), sa, 0..sa.len(), 0, pat))
    }

    /// `count(s)` (see the module documentation).
    pub fn count(&self, s: &str) -> u64 {
        if s.is_empty() {
            return self.n_chars;
        }
        self.rows(s.as_bytes()).len() as u64
    }

    /// The first `limit` places (in corpus order) where `s` starts, and how many there are.
    pub fn locate(&self, s: &str, limit: Option<usize>) -> (Vec<Place>, u64) {
        if s.is_empty() {
            return (Vec::new(), self.n_chars);
        }
        let rows = self.rows(s.as_bytes());
        let total = rows.len() as u64;
        let mut pos: Vec<u64> =
            with_sa!(self, sa => sa[rows].iter().map(|p| p.at() as u64).collect());
        let keep = limit.unwrap_or(pos.len()).min(pos.len());
        if keep < pos.len() {
            if keep == 0 {
                pos.clear();
            } else {
                pos.select_nth_unstable(keep - 1);
                pos.truncate(keep);
            }
        }
        pos.sort_unstable();
        (pos.into_iter().map(|p| self.place(p)).collect(), total)
    }

    /// The document holding corpus byte `p`, and `p`'s offset in it.
    pub fn place(&self, p: u64) -> Place {
        let s = self.starts();
        let d = s.partition_point(|&x| x <= p).saturating_sub(1);
        (d, (p - s.get(d).copied().unwrap_or(0)) as usize)
    }

    /// The character count of the longest suffix of `context` that occurs, and that suffix's
    /// byte offset in `context`.
    fn longest_suffix(&self, context: &str) -> (usize, usize, Range<usize>) {
        let b = context.as_bytes();
        // the whole context first: when it occurs (often), one search is enough
        let whole = self.rows(b);
        if !whole.is_empty() || context.is_empty() {
            let k = context.chars().count();
            return (k, 0, if k == 0 { self.all_rows() } else { whole });
        }
        let starts: Vec<usize> = context.char_indices().map(|(i, _)| i).collect();
        let m = starts.len();
        // count is monotone: a suffix occurs when a longer one does
        let (mut lo, mut hi) = (0usize, m - 1);
        let mut found = self.all_rows();
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            let rows = self.rows(&b[starts[m - mid]..]);
            if rows.is_empty() {
                hi = mid - 1;
            } else {
                lo = mid;
                found = rows;
            }
        }
        (lo, if lo == 0 { b.len() } else { starts[m - lo] }, found)
    }

    fn all_rows(&self) -> Range<usize> {
        0..self.sa.len()
    }

    /// `next_counts(context)` (see the module documentation).
    pub fn next_counts(&self, context: &str) -> NextCounts {
        let (k, at, rows) = self.longest_suffix(context);
        let pat = &context.as_bytes()[at..];
        let total = if k == 0 {
            self.n_chars
        } else {
            rows.len() as u64
        };
        let counts = with_sa!(self, sa => next_chars(self.text(), sa, rows, pat.len()));
        NextCounts {
            length: k,
            total,
            counts,
        }
    }

    /// `prob(context, s, n)` (see the module documentation); `n = None` for the unbounded
    /// n-gram. Returns the probability and the characters of context used.
    pub fn prob(&self, context: &str, s: &str, n: Option<usize>) -> (f64, usize) {
        let (k, at) = match n {
            None => {
                let (k, at, _) = self.longest_suffix(context);
                (k, at)
            }
            Some(n) => {
                let want = n.saturating_sub(1);
                let at = context
                    .char_indices()
                    .rev()
                    .nth(want.saturating_sub(1))
                    .map(|(i, _)| i);
                match (want, at) {
                    (0, _) => (0, context.len()),
                    (_, Some(i)) => (want, i),
                    (_, None) => (context.chars().count(), 0),
                }
            }
        };
        let ctx = &context[at..];
        let denom = self.count(ctx);
        let mut joined = String::with_capacity(ctx.len() + s.len());
        joined.push_str(ctx);
        joined.push_str(s);
        let num = self.count(&joined);
        let p = if denom == 0 {
            f64::NAN
        } else {
            num as f64 / denom as f64
        };
        (p, k)
    }
}

/// `f(i)` for each of `n` queries, taken in the order of `key(i)` (neighbouring searches then
/// share the suffix array's cache lines) on the current rayon pool; a query equal to the one
/// before it (same key) gets a copy of its answer. Results in the queries' order.
pub fn sorted_batch<K, T, G, F>(n: usize, key: G, f: F) -> Vec<T>
where
    K: Ord,
    T: Send + Default + Clone,
    G: Fn(usize) -> K + Sync,
    F: Fn(usize) -> T + Sync + Send,
{
    use rayon::prelude::*;
    let (key, f) = (&key, &f);
    let mut order: Vec<usize> = (0..n).collect();
    order.par_sort_unstable_by(|&a, &b| key(a).cmp(&key(b)));
    let done: Vec<(usize, T)> = order
        .par_chunks(512)
        .flat_map_iter(|c| {
            let mut last: Option<(usize, T)> = None;
            c.iter().map(move |&i| {
                let t = match &last {
                    Some((j, t)) if key(*j) == key(i) => t.clone(),
                    _ => f(i),
                };
                last = Some((i, t.clone()));
                (i, t)
            })
        })
        .collect();
    let mut out: Vec<T> = (0..n).map(|_| T::default()).collect();
    for (i, t) in done {
        out[i] = t;
    }
    out
}

/// The bytes of the suffix at `p`, or none for a position past the end (only in a corrupt
/// index, which then gives wrong answers but never a panic).
#[inline]
fn suffix_at(text: &[u8], p: usize) -> &[u8] {
    text.get(p..).unwrap_or(&[])
}

/// The rows within `rows` (whose suffixes share their first `depth` bytes) whose suffix starts
/// with `pat` after those `depth` bytes. One search narrows the range until a row matches; the
/// two ends are then searched for on either side of it (each probe reads the text at a random
/// place, so the steps the two ends share are taken once).
pub fn rows_in<P: Pos>(
    text: &[u8],
    sa: &[P],
    rows: Range<usize>,
    depth: usize,
    pat: &[u8],
) -> Range<usize> {
    let head = |i: usize| {
        let s = suffix_at(text, sa[i].at().saturating_add(depth));
        &s[..s.len().min(pat.len())]
    };
    let (mut a, mut b) = (rows.start, rows.end);
    while a < b {
        let mid = a + (b - a) / 2;
        match head(mid).cmp(pat) {
            std::cmp::Ordering::Less => a = mid + 1,
            std::cmp::Ordering::Greater => b = mid,
            std::cmp::Ordering::Equal => {
                let lo = partition_point(a..mid, |i| head(i) < pat);
                let hi = partition_point(mid + 1..b, |i| head(i) <= pat);
                return lo..hi;
            }
        }
    }
    a..a
}

/// The first index of `range` where `pred` turns false (`pred` true then false along it).
fn partition_point(range: Range<usize>, pred: impl Fn(usize) -> bool) -> usize {
    let (mut a, mut b) = (range.start, range.end);
    while a < b {
        let mid = a + (b - a) / 2;
        if pred(mid) {
            a = mid + 1;
        } else {
            b = mid;
        }
    }
    a
}

/// Up to this many rows [`next_chars`] reads every row, in order, asking for the text of the
/// row [`PREFETCH_AHEAD`] rows on (the reads then overlap); above it, it searches for the runs'
/// ends.
const LINEAR_ROWS: usize = 64;
/// How many rows ahead [`next_chars`] asks for the text of.
const PREFETCH_AHEAD: usize = 8;

/// The character that starts `s`, as a sortable key: its bytes (big-endian, zero-padded) then
/// its length, so that keys sort as the suffixes do. 0 for an empty suffix (the end of the text),
/// `u64::MAX` for the separator; a continuation byte (only at depth 0) is a 1-byte key that
/// [`key_char`] turns down.
#[inline]
fn char_key(s: &[u8]) -> u64 {
    let Some(&b) = s.first() else { return 0 };
    if b == SEP {
        return u64::MAX;
    }
    let len = match b {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    };
    let mut packed = 0u64;
    for i in 0..4 {
        let byte = if i < len {
            s.get(i).copied().unwrap_or(0)
        } else {
            0
        };
        packed = packed << 8 | u64::from(byte);
    }
    packed << 3 | len as u64
}

/// The character a [`char_key`] stands for; none for the end, the separator, a continuation byte
/// or a character cut by the end of the text.
fn key_char(key: u64) -> Option<char> {
    if key == 0 || key == u64::MAX {
        return None;
    }
    let len = (key & 7) as usize;
    let bytes = ((key >> 3) as u32).to_be_bytes();
    let c = std::str::from_utf8(&bytes[..len]).ok()?.chars().next()?;
    (c.len_utf8() == len).then_some(c)
}

/// Each character that follows the first `depth` bytes of the suffixes in `rows`, with how many
/// suffixes it follows in; suffixes with a separator or a continuation byte there are left out.
///
/// The rows are sorted, so each character's rows are one run. A short range is read row by row.
/// A long one is cut in halves until each piece holds one character or its two ends are
/// neighbouring rows (a run's end): each round probes the middles of every piece still open, and
/// asks for all of their rows, then all of their texts, before reading any, so that the reads
/// (each at a random place of a large index) overlap instead of waiting one after the other.
fn next_chars<P: Pos>(text: &[u8], sa: &[P], rows: Range<usize>, depth: usize) -> Vec<(char, u64)> {
    let at = |r: usize| sa[r].at().saturating_add(depth);
    let key = |r: usize| char_key(suffix_at(text, at(r)));
    // (first row, key) of each run, in order
    let mut runs: Vec<(usize, u64)> = Vec::new();
    if rows.len() <= LINEAR_ROWS {
        for r in rows.start..(rows.start + PREFETCH_AHEAD).min(rows.end) {
            spans::prefetch(text, at(r));
        }
        for r in rows.clone() {
            if r + PREFETCH_AHEAD < rows.end {
                spans::prefetch(text, at(r + PREFETCH_AHEAD));
            }
            let k = key(r);
            if runs.last().is_none_or(|&(_, last)| last != k) {
                runs.push((r, k));
            }
        }
    } else {
        let (first, last) = (rows.start, rows.end - 1);
        let (kf, kl) = (key(first), key(last));
        runs.push((first, kf));
        // pieces (lo, hi, key(lo), key(hi)) whose ends differ and are not neighbours
        let mut open = Vec::new();
        let mut split = |lo: usize, hi: usize, klo: u64, khi: u64, open: &mut Vec<_>| {
            if klo != khi {
                if hi == lo + 1 {
                    runs.push((hi, khi));
                } else {
                    open.push((lo, hi, klo, khi));
                }
            }
        };
        split(first, last, kf, kl, &mut open);
        let mut mids: Vec<usize> = Vec::new();
        while !open.is_empty() {
            for &(lo, hi, _, _) in &open {
                crate::greedy::prefetch(&sa[lo + (hi - lo) / 2]);
            }
            mids.clear();
            mids.extend(open.iter().map(|&(lo, hi, _, _)| at(lo + (hi - lo) / 2)));
            for &p in &mids {
                spans::prefetch(text, p);
            }
            let pieces = std::mem::take(&mut open);
            for (&(lo, hi, klo, khi), &p) in pieces.iter().zip(&mids) {
                let (mid, km) = (lo + (hi - lo) / 2, char_key(suffix_at(text, p)));
                split(lo, mid, klo, km, &mut open);
                split(mid, hi, km, khi, &mut open);
            }
        }
        runs.sort_unstable_by_key(|&(r, _)| r);
    }
    let ends = runs.iter().skip(1).map(|&(r, _)| r).chain([rows.end]);
    runs.iter()
        .zip(ends)
        .filter_map(|(&(r, k), end)| Some((key_char(k)?, (end - r) as u64)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(docs: &[&str], width: Width) -> SuffixIndex {
        let mut b = Builder::new();
        for d in docs {
            b.push(d);
        }
        b.finish_as(width).unwrap()
    }

    fn naive_count(docs: &[&str], s: &str) -> u64 {
        docs.iter()
            .map(|d| {
                (0..d.len())
                    .filter(|&i| d.as_bytes()[i..].starts_with(s.as_bytes()))
                    .count() as u64
            })
            .sum()
    }

    const DOCS: &[&str] = &["abracadabra", "", "cadabra über alles", "abra", "ééé"];

    #[test]
    fn suffix_array_is_sorted_in_every_width() {
        for w in [Width::U32, Width::U64] {
            let idx = index(DOCS, w);
            let t = idx.text();
            with_sa!(idx, sa => {
                assert_eq!(sa.len(), t.len());
                for i in 1..sa.len() {
                    assert!(t[sa[i - 1].at()..] < t[sa[i].at()..]);
                }
            });
        }
    }

    #[test]
    fn counts_match_a_scan() {
        for w in [Width::U32, Width::U64] {
            let idx = index(DOCS, w);
            for s in [
                "a", "abra", "cad", "ra", "é", "éé", "über", "zz", "a\u{ff}", "ra c",
            ] {
                assert_eq!(idx.count(s), naive_count(DOCS, s), "{s:?}");
            }
            assert_eq!(
                idx.count(""),
                DOCS.iter().map(|d| d.chars().count() as u64).sum::<u64>()
            );
        }
    }

    #[test]
    fn locate_gives_the_earliest_places() {
        let idx = index(DOCS, Width::U32);
        let (all, n) = idx.locate("abra", None);
        assert_eq!(n, 4);
        assert_eq!(all, vec![(0, 0), (0, 7), (2, 3), (3, 0)]);
        let (two, n) = idx.locate("abra", Some(2));
        assert_eq!((two, n), (vec![(0, 0), (0, 7)], 4));
        assert_eq!(idx.locate("abra", Some(0)).0, vec![]);
    }

    #[test]
    fn next_counts_backs_off_to_the_longest_occurring_suffix() {
        let idx = index(DOCS, Width::U32);
        let nc = idx.next_counts("xyzcadab");
        assert_eq!(nc.length, 5); // "cadab"
        assert_eq!(nc.total, 2);
        assert_eq!(nc.counts, vec![('r', 2)]);
        // "abra" ends documents 0 and 3: counted in the total only
        let nc = idx.next_counts("abra");
        assert_eq!((nc.length, nc.total), (4, 4));
        assert_eq!(nc.counts, vec![(' ', 1), ('c', 1)]);
        let nc = idx.next_counts("q");
        assert_eq!(nc.length, 0);
        assert_eq!(nc.total, idx.count(""));
        let sum: u64 = nc.counts.iter().map(|c| c.1).sum();
        assert_eq!(sum, nc.total);
        assert!(nc.counts.contains(&('é', 3)));
    }

    /// What follows `ctx` in `docs`, by a scan: the ground truth for `next_counts`.
    fn naive_next(docs: &[&str], ctx: &str) -> Vec<(char, u64)> {
        let mut m = std::collections::BTreeMap::new();
        for d in docs {
            for i in (0..=d.len()).filter(|&i| d.is_char_boundary(i) && d[i..].starts_with(ctx)) {
                if let Some(c) = d[i + ctx.len()..].chars().next() {
                    *m.entry(c).or_insert(0u64) += 1;
                }
            }
        }
        m.into_iter().collect()
    }

    #[test]
    fn next_counts_match_a_scan_in_short_and_long_ranges() {
        // ranges from a few rows (read one by one) to thousands (cut in halves), with ASCII,
        // two-, three- and four-byte characters following
        let alphabet = ['a', 'b', ' ', 'é', 'ü', '語', '本', '😀', 'z'];
        let mut rng = crate::ngram::addk::SplitMix64(7);
        let docs: Vec<String> = (0..60)
            .map(|_| {
                (0..(rng.next_u64() % 400) as usize)
                    .map(|_| alphabet[(rng.next_u64() % alphabet.len() as u64) as usize])
                    .collect()
            })
            .collect();
        let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
        for w in [Width::U32, Width::U64] {
            let idx = index(&refs, w);
            for ctx in [
                "a", "b", "é", "語", "😀", "ab", "a ", "本語", "zz", "aaa", "é😀b",
            ] {
                let nc = idx.next_counts(ctx);
                assert_eq!(nc.length, ctx.chars().count(), "{ctx:?}");
                assert_eq!(nc.total, naive_count(&refs, ctx), "{ctx:?}");
                assert_eq!(nc.counts, naive_next(&refs, ctx), "{ctx:?}");
            }
            // the empty context: every character of the corpus
            let nc = idx.next_counts("");
            let all: u64 = nc.counts.iter().map(|c| c.1).sum();
            assert_eq!(all, nc.total);
            assert_eq!(nc.counts, naive_next(&refs, ""));
        }
    }

    #[test]
    fn sorted_batch_answers_each_query_in_place() {
        let qs = ["b", "a", "b", "c", "a", "a"];
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let out = sorted_batch(
            qs.len(),
            |i| qs[i],
            |i| {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                qs[i].to_string() + "!"
            },
        );
        assert_eq!(out, ["b!", "a!", "b!", "c!", "a!", "a!"]);
        // equal queries are answered once (all six fit one chunk)
        assert_eq!(calls.into_inner(), 3);
    }

    #[test]
    fn prob_fixed_and_unbounded() {
        let idx = index(DOCS, Width::U32);
        let (p, k) = idx.prob("xcadab", "r", None);
        assert_eq!((p, k), (1.0, 5));
        let (p, k) = idx.prob("xcadab", "r", Some(2));
        assert_eq!(k, 1);
        assert_eq!(
            p,
            naive_count(DOCS, "br") as f64 / naive_count(DOCS, "b") as f64
        );
        let (p, _) = idx.prob("zz", "a", Some(3));
        assert!(p.is_nan());
        let (p, k) = idx.prob("anything", "a", Some(1));
        assert_eq!(k, 0);
        assert_eq!(p, naive_count(DOCS, "a") as f64 / idx.count("") as f64);
    }

    #[test]
    fn an_empty_corpus_answers_zero() {
        let idx = index(&[], Width::U32);
        assert_eq!(idx.count("a"), 0);
        assert_eq!(idx.next_counts("abc").total, 0);
        assert!(idx.prob("a", "b", None).0.is_nan());
    }
}
