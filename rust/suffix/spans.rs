//! Exact substring dedup (Lee et al. 2022) from the suffix array: the spans of each document
//! that repeat text found elsewhere in the corpus.
//!
//! Definition (the reference, `textsieve.reference.suffix.repeated_spans`, is the same in
//! Python): a *window* is `min_length` consecutive bytes of one document. The window starting at
//! corpus byte `q` is *repeated* when the same bytes start at another position `q'`: with
//! [`Policy::Later`], only a `q' < q` counts (the first occurrence survives); with
//! [`Policy::All`], any `q' != q`. A byte is removed when it lies in a repeated window, and a
//! character is removed when any of its bytes is (spans never cut a character). A span is a
//! maximal run of removed bytes of one document: `(document, start, end)` in bytes.
//!
//! With the suffix array, the windows equal to the one at `q` are the rows next to `q`'s row
//! whose suffixes share `min_length` bytes with it: one run of rows each. A run's earliest
//! position is its first occurrence.

use rayon::prelude::*;

use super::{Pos, SuffixIndex, SEP};
use crate::error::{Error, Result};
use crate::memory;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Every occurrence but the first is removed.
    Later,
    /// Every occurrence is removed.
    All,
}

impl Policy {
    pub fn parse(name: &str) -> Result<Policy> {
        match name {
            "later" => Ok(Policy::Later),
            "all" => Ok(Policy::All),
            other => Err(Error::invalid(
                "policy",
                format!("must be 'later' or 'all', got {other:?}"),
            )),
        }
    }
}

/// Removed bytes `start..end` of document `doc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub doc: usize,
    pub start: usize,
    pub end: usize,
}

/// A fixed-size set of positions.
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Result<Bits> {
        Ok(Bits(memory::filled(
            "texts",
            || format!("a bit set of {n} positions"),
            Some(n.div_ceil(64)),
            0u64,
        )?))
    }

    #[inline]
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] >> (i % 64) & 1 == 1
    }

    /// The set positions in `from..to`, in order.
    fn ones(&self, from: usize, to: usize) -> impl Iterator<Item = usize> + '_ {
        let first = from / 64;
        let last = to.div_ceil(64).min(self.0.len());
        (first..last).flat_map(move |w| {
            let mut word = self.0[w];
            std::iter::from_fn(move || {
                if word == 0 {
                    return None;
                }
                let b = word.trailing_zeros() as usize;
                word &= word - 1;
                Some(w * 64 + b)
            })
            .filter(move |&i| i >= from && i < to)
        })
    }
}

impl SuffixIndex {
    /// The repeated spans of every document (see the module documentation), in corpus order.
    /// The comparison of neighbouring suffixes runs on the current rayon pool.
    pub fn repeated_spans(&self, min_length: usize, policy: Policy) -> Result<Vec<Span>> {
        if min_length == 0 {
            return Err(Error::invalid("min_length", "must be at least 1"));
        }
        let starts = self.starts();
        let dup =
            super::with_sa!(self, sa => repeated_windows(self.text(), sa, min_length, policy))?;
        let mut out = Vec::new();
        for d in 0..self.n_docs() {
            let (a, b) = (starts[d] as usize, starts[d + 1] as usize - 1);
            let doc = &self.text()[a..b];
            let mut cur: Option<(usize, usize)> = None;
            let push = |s: usize, e: usize, out: &mut Vec<Span>| {
                // widen to whole characters
                let mut s = s;
                while s > 0 && doc[s] & 0xC0 == 0x80 {
                    s -= 1;
                }
                let mut e = e;
                while e < doc.len() && doc[e] & 0xC0 == 0x80 {
                    e += 1;
                }
                match out.last_mut() {
                    Some(last) if last.doc == d && last.end >= s => last.end = last.end.max(e),
                    _ => out.push(Span {
                        doc: d,
                        start: s,
                        end: e,
                    }),
                }
            };
            for q in dup.ones(a, b) {
                let (s, e) = (q - a, q - a + min_length);
                cur = match cur {
                    Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
                    Some((cs, ce)) => {
                        push(cs, ce, &mut out);
                        Some((s, e))
                    }
                    None => Some((s, e)),
                };
            }
            if let Some((cs, ce)) = cur {
                push(cs, ce, &mut out);
            }
        }
        Ok(out)
    }
}

/// The start of every repeated window.
fn repeated_windows<P: Pos>(text: &[u8], sa: &[P], len: usize, policy: Policy) -> Result<Bits> {
    let n = sa.len();
    // same[i]: rows i - 1 and i share their first `len` bytes, none of them a separator
    let mut same = Bits::new(n)?;
    same.0.par_iter_mut().enumerate().for_each(|(w, word)| {
        let from = (w * 64).max(1);
        let to = (w * 64 + 64).min(n);
        for i in from..to {
            if let Some(ahead) = sa.get(i + PREFETCH_ROWS) {
                prefetch(text, ahead.at());
                prefetch(text, ahead.at() + 64);
            }
            let a = text.get(sa[i - 1].at()..).and_then(|s| s.get(..len));
            let b = text.get(sa[i].at()..).and_then(|s| s.get(..len));
            if let (Some(a), Some(b)) = (a, b) {
                // equal windows inside one document (the bytes are in cache here)
                if a == b && memchr::memchr(SEP, a).is_none() {
                    *word |= 1 << (i % 64);
                }
            }
        }
    });
    // marks: each thread takes the groups that start in its share of the rows (finishing a
    // group that runs into the next share) and marks into a bit set of its own; the positions
    // of a group are random, so they wait in one buffer per 1 MB of bits and are set a buffer
    // at a time (the bits of one range at once stay in cache); the sets are OR-ed at the end
    let shares = rayon::current_num_threads().max(1);
    let step = n.div_ceil(shares).max(1);
    let maps: Vec<Result<Bits>> = (0..shares)
        .into_par_iter()
        .map(|c| {
            let (from, to) = ((c * step).min(n), ((c + 1) * step).min(n));
            let mut bits = Bits::new(n)?;
            let mut bufs: Vec<Vec<u32>> = vec![Vec::new(); (n >> BUCKET_BITS) + 1];
            let mut mark = |p: usize, bits: &mut Bits| {
                let buf = &mut bufs[p >> BUCKET_BITS];
                buf.push((p & BUCKET_MASK) as u32);
                if buf.len() == BUCKET_CAP {
                    flush(p >> BUCKET_BITS, buf, bits);
                }
            };
            let mut i = from;
            while i < to && i > 0 && same.get(i) {
                i += 1;
            }
            while i < to {
                let mut j = i + 1;
                while j < n && same.get(j) {
                    j += 1;
                }
                if j - i > 1 {
                    let keep = match policy {
                        Policy::Later => sa[i..j].iter().map(|p| p.at()).min(),
                        Policy::All => None,
                    };
                    for r in &sa[i..j] {
                        if Some(r.at()) != keep {
                            mark(r.at(), &mut bits);
                        }
                    }
                }
                i = j;
            }
            for (b, buf) in bufs.iter_mut().enumerate() {
                flush(b, buf, &mut bits);
            }
            Ok(bits)
        })
        .collect();
    drop(same);
    let mut maps = maps.into_iter();
    let mut dup = maps.next().unwrap_or_else(|| Bits::new(n))?;
    for m in maps {
        let m = m?;
        dup.0
            .par_iter_mut()
            .zip(m.0.par_iter())
            .for_each(|(a, b)| *a |= b);
    }
    Ok(dup)
}

/// How many rows ahead the text of a row is asked for: the rows' texts lie at random places,
/// so each comparison would otherwise wait for memory.
const PREFETCH_ROWS: usize = 16;

/// Asks the processor to start loading the bytes at `p` (a hint only; nothing past the end).
#[inline]
pub(super) fn prefetch(text: &[u8], p: usize) {
    if let Some(x) = text.get(p) {
        crate::greedy::prefetch(x);
    }
}

/// Positions per buffer of [`repeated_windows`]: 2^23 (1 MB of bits).
const BUCKET_BITS: usize = 23;
const BUCKET_MASK: usize = (1 << BUCKET_BITS) - 1;
/// Positions a buffer holds before they are set.
const BUCKET_CAP: usize = 16 << 10;

fn flush(bucket: usize, buf: &mut Vec<u32>, bits: &mut Bits) {
    let base = bucket << BUCKET_BITS;
    for &o in buf.iter() {
        let p = base + o as usize;
        bits.0[p / 64] |= 1 << (p % 64);
    }
    buf.clear();
}

/// `record` (one JSON object, as read) with the string value of its field `field` replaced by
/// `text`, every other byte kept; `None` when the record is not an object with that field as a
/// string (the last one, when the field is repeated, as Python's `json` reads it).
pub fn replace_text(record: &[u8], field: &str, text: &str) -> Option<Vec<u8>> {
    use serde::de::{Deserializer, MapAccess, Visitor};
    use serde_json::value::RawValue;
    use std::borrow::Cow;

    struct Find<'f>(&'f str);
    impl<'de> Visitor<'de> for Find<'_> {
        type Value = Option<&'de RawValue>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                let value: &'de RawValue = map.next_value()?;
                if key == self.0 {
                    found = Some(value);
                }
            }
            Ok(found)
        }
    }

    let mut de = serde_json::Deserializer::from_slice(record);
    let raw = (&mut de).deserialize_map(Find(field)).ok()??;
    de.end().ok()?;
    let value = raw.get();
    if !value.starts_with('"') {
        return None;
    }
    let at = (value.as_ptr() as usize).checked_sub(record.as_ptr() as usize)?;
    let end = at + value.len();
    let mut out = Vec::with_capacity(record.len() + text.len());
    out.extend_from_slice(&record[..at]);
    crate::output::push_quoted(text.as_bytes(), &mut out);
    out.extend_from_slice(record.get(end..)?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::{Builder, Width};
    use super::*;
    use std::collections::HashMap;

    /// The definition, by brute force.
    fn naive(docs: &[&str], len: usize, policy: Policy) -> Vec<Span> {
        let mut seen: HashMap<&[u8], usize> = HashMap::new();
        for d in docs {
            let b = d.as_bytes();
            for q in 0..(b.len() + 1).saturating_sub(len) {
                *seen.entry(&b[q..q + len]).or_default() += 1;
            }
        }
        let mut first: HashMap<&[u8], ()> = HashMap::new();
        let mut out = Vec::new();
        for (di, d) in docs.iter().enumerate() {
            let b = d.as_bytes();
            let mut removed = vec![false; b.len()];
            for q in 0..(b.len() + 1).saturating_sub(len) {
                let w = &b[q..q + len];
                let rep = match policy {
                    Policy::All => seen[w] > 1,
                    Policy::Later => first.insert(w, ()).is_some(),
                };
                if rep {
                    removed[q..q + len].iter_mut().for_each(|x| *x = true);
                }
            }
            for (i, _) in d.char_indices() {
                let e = d[i..].chars().next().map_or(i, |c| i + c.len_utf8());
                if removed[i..e].iter().any(|&x| x) {
                    removed[i..e].iter_mut().for_each(|x| *x = true);
                }
            }
            let mut i = 0;
            while i < b.len() {
                if removed[i] {
                    let s = i;
                    while i < b.len() && removed[i] {
                        i += 1;
                    }
                    out.push(Span {
                        doc: di,
                        start: s,
                        end: i,
                    });
                } else {
                    i += 1;
                }
            }
        }
        out
    }

    fn spans(docs: &[&str], len: usize, policy: Policy, w: Width) -> Vec<Span> {
        let mut b = Builder::new();
        for d in docs {
            b.push(d);
        }
        b.finish_as(w).unwrap().repeated_spans(len, policy).unwrap()
    }

    #[test]
    fn spans_match_the_definition() {
        let docs: &[&str] = &[
            "the quick brown fox jumps",
            "a quick brown fox, yes",
            "",
            "aaaaaaaaaa",
            "ééééé über quick brown",
            "x",
            "quick brown fox jumps over",
        ];
        for len in [1, 2, 3, 5, 8, 12, 30] {
            for policy in [Policy::Later, Policy::All] {
                for w in [Width::U32, Width::U64] {
                    assert_eq!(
                        spans(docs, len, policy, w),
                        naive(docs, len, policy),
                        "len {len} {policy:?} {w:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn zero_min_length_is_refused() {
        let mut b = Builder::new();
        b.push("abc");
        let idx = b.finish().unwrap();
        assert!(idx.repeated_spans(0, Policy::Later).is_err());
    }

    #[test]
    fn replace_text_keeps_every_other_byte() {
        let rec = br#"{"id": 7,  "text":"old \u00e9", "meta": {"text": 1}}"#;
        let out = replace_text(rec, "text", "new \"q\"").unwrap();
        assert_eq!(
            out,
            br#"{"id": 7,  "text":"new \"q\"", "meta": {"text": 1}}"#.to_vec()
        );
        assert_eq!(replace_text(b"{\"text\": 3}", "text", "x"), None);
        assert_eq!(replace_text(b"[1]", "text", "x"), None);
        let dup = br#"{"text": "a", "text": "b"}"#;
        assert_eq!(
            replace_text(dup, "text", "c").unwrap(),
            br#"{"text": "a", "text": "c"}"#.to_vec()
        );
    }
}
