//! Shingles: the normalized text cut into char k-grams or word n-grams, and the hashes of their
//! UTF-8 bytes.
//!
//! Normalization (explicit, mirrored by `textsieve.reference.dedup`):
//! - `none`: the text as given.
//! - `default`: lowercase (Unicode full lowercase, as Python's `str.lower()`, final sigma
//!   included), then every run of Unicode `White_Space` characters becomes one space and
//!   leading/trailing whitespace is dropped.
//! - `nfkc`: NFKC first, then `default`.
//!
//! Shingles:
//! - `char`, k: every run of k consecutive characters (code points) of the normalized text.
//! - `word`, n: the normalized text split on `White_Space` runs; every run of n consecutive words,
//!   joined by one space.
//!
//! A non-empty text shorter than one shingle gives exactly one shingle (the whole normalized text,
//! or all its words), never an empty set; a text that is empty after normalization gives no
//! shingles and is reported as empty by the dedup pipeline, never matched.
//!
//! Hashes: [`hash64`] is textsieve's own 64-bit hash of a shingle's UTF-8 bytes (definition in its
//! doc); [`sha1_32`] is the first four bytes of SHA-1 read little-endian, which is datasketch's
//! `sha1_hash32`, for the datasketch-compatible MinHash schemes.

use crate::error::{Error, Result};

/// How the text is normalized before shingling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Normalize {
    None,
    Default,
    Nfkc,
}

impl Normalize {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Normalize::None),
            "default" => Ok(Normalize::Default),
            "nfkc" => Ok(Normalize::Nfkc),
            other => Err(Error::invalid(
                "normalize",
                format!("expected 'default', 'nfkc' or 'none', got {other:?}"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Normalize::None => "none",
            Normalize::Default => "default",
            Normalize::Nfkc => "nfkc",
        }
    }
}

/// What a shingle is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShingleKind {
    /// k consecutive characters.
    Char(usize),
    /// n consecutive whitespace-separated words, joined by one space.
    Word(usize),
}

/// The largest k (or n) accepted; longer shingles are almost never what anyone wants.
pub const MAX_K: usize = 1024;

/// A shingling configuration: normalization plus the kind of shingle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shingler {
    pub kind: ShingleKind,
    pub normalize: Normalize,
}

/// Reusable buffers, so a loop over many documents allocates once per thread.
#[derive(Default)]
pub struct Scratch {
    norm: String,
    offsets: Vec<usize>,
    joined: Vec<u8>,
    /// A text's shingle hashes and the buffers that sort them ([`Shingler::hash_set`]).
    hashes: Vec<u64>,
    sort: SortScratch,
}

/// Unicode `White_Space` (the same set as Rust's `char::is_whitespace`).
#[inline]
pub fn is_ws(c: char) -> bool {
    c.is_whitespace()
}

impl ShingleKind {
    /// `shingle` is `"char"` or `"word"`; `k` the characters or words per shingle (1..=1024).
    pub fn parse(shingle: &str, k: usize) -> Result<Self> {
        match shingle {
            "char" => ShingleKind::checked(ShingleKind::Char(k)),
            "word" => ShingleKind::checked(ShingleKind::Word(k)),
            other => Err(Error::invalid(
                "shingle",
                format!("expected 'char' or 'word', got {other:?}"),
            )),
        }
    }

    /// `self` if its size is in 1..=1024.
    pub fn checked(self) -> Result<Self> {
        let k = self.size();
        if k == 0 || k > MAX_K {
            return Err(Error::invalid(
                "k",
                format!("expected 1 <= k <= {MAX_K}, got {k}"),
            ));
        }
        Ok(self)
    }

    pub fn size(self) -> usize {
        match self {
            ShingleKind::Char(k) | ShingleKind::Word(k) => k,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ShingleKind::Char(_) => "char",
            ShingleKind::Word(_) => "word",
        }
    }
}

impl Shingler {
    /// From names (`"char"`/`"word"`, `k`, `"default"`/`"nfkc"`/`"none"`).
    pub fn new(shingle: &str, k: usize, normalize: &str) -> Result<Self> {
        Shingler::typed(
            ShingleKind::parse(shingle, k)?,
            Normalize::parse(normalize)?,
        )
    }

    pub fn typed(kind: ShingleKind, normalize: Normalize) -> Result<Self> {
        Ok(Shingler {
            kind: kind.checked()?,
            normalize,
        })
    }

    /// The normalized text (borrowed from `text` when nothing changes it, else in `buf`).
    pub fn normalized<'a>(&self, text: &'a str, buf: &'a mut String) -> &'a str {
        match self.normalize {
            Normalize::None => text,
            Normalize::Default => {
                normalize_default(text, buf);
                buf.as_str()
            }
            Normalize::Nfkc => {
                use unicode_normalization::UnicodeNormalization;
                let nfkc: String = text.nfkc().collect();
                normalize_default(&nfkc, buf);
                buf.as_str()
            }
        }
    }

    /// Calls `f` with the UTF-8 bytes of every shingle occurrence of `text`, in text order
    /// (repeats included). Returns the number of calls.
    pub fn for_each(&self, text: &str, scratch: &mut Scratch, f: impl FnMut(&[u8])) -> usize {
        let Scratch {
            norm,
            offsets,
            joined,
            ..
        } = scratch;
        let s = self.normalized(text, norm);
        self.for_each_normalized(s, offsets, joined, f)
    }

    /// [`Shingler::for_each`] on the already normalized text `s`.
    fn for_each_normalized(
        &self,
        s: &str,
        offsets: &mut Vec<usize>,
        joined: &mut Vec<u8>,
        mut f: impl FnMut(&[u8]),
    ) -> usize {
        match self.kind {
            ShingleKind::Char(k) => {
                let b = s.as_bytes();
                char_windows(b, k, offsets, |start, end| f(&b[start..end]))
            }
            ShingleKind::Word(n) => {
                offsets.clear();
                // start, end pairs of the words
                let mut start = None;
                for (i, c) in s.char_indices() {
                    if is_ws(c) {
                        if let Some(st) = start.take() {
                            offsets.push(st);
                            offsets.push(i);
                        }
                    } else if start.is_none() {
                        start = Some(i);
                    }
                }
                if let Some(st) = start {
                    offsets.push(st);
                    offsets.push(s.len());
                }
                let n_words = offsets.len() / 2;
                if n_words == 0 {
                    return 0;
                }
                let m = n.min(n_words);
                let count = n_words - m + 1;
                let b = s.as_bytes();
                for i in 0..count {
                    joined.clear();
                    for w in i..i + m {
                        if w > i {
                            joined.push(b' ');
                        }
                        joined.extend_from_slice(&b[offsets[2 * w]..offsets[2 * w + 1]]);
                    }
                    f(joined);
                }
                count
            }
        }
    }

    /// [`hash64`] of every shingle occurrence of `text`, appended to `out` (repeats included).
    /// The same values as `for_each` + `hash64`, with a fast path for ASCII char shingles.
    pub fn hashes(&self, text: &str, scratch: &mut Scratch, out: &mut Vec<u64>) {
        if let ShingleKind::Char(k) = self.kind {
            let Scratch { norm, offsets, .. } = scratch;
            let b = self.normalized(text, norm).as_bytes();
            if k <= 8 && b.is_ascii() {
                hash_ascii_kgrams(b, k, out);
            } else {
                char_windows(b, k, offsets, |start, end| {
                    out.push(hash_window(b, start, end))
                });
            }
            return;
        }
        self.for_each(text, scratch, |b| out.push(hash64(b)));
    }

    /// [`hash64`] of every shingle occurrence of `text`, in text order (repeats included), handed
    /// to `f` in slices of at most `tile` values through `buf`; returns the number of shingles.
    /// The same values as [`Shingler::hashes`], without holding all of a long text's hashes.
    pub fn hash_tiles(
        &self,
        text: &str,
        scratch: &mut Scratch,
        tile: usize,
        buf: &mut Vec<u64>,
        mut f: impl FnMut(&[u64]),
    ) -> usize {
        assert!(tile > 0, "hash_tiles needs tile > 0");
        buf.clear();
        let Scratch {
            norm,
            offsets,
            joined,
            ..
        } = scratch;
        let s = self.normalized(text, norm);
        let b = s.as_bytes();
        if let ShingleKind::Char(k) = self.kind {
            if k <= 8 && b.is_ascii() {
                if b.len() <= k {
                    if !b.is_empty() {
                        buf.push(hash64(b));
                        f(buf);
                    }
                    return usize::from(!b.is_empty());
                }
                let n = b.len() - k + 1;
                for start in (0..n).step_by(tile) {
                    buf.clear();
                    hash_ascii_windows(b, k, start..n.min(start + tile), buf);
                    f(buf);
                }
                return n;
            }
        }
        let mut put = |h: u64| {
            buf.push(h);
            if buf.len() == tile {
                f(buf);
                buf.clear();
            }
        };
        let n = match self.kind {
            ShingleKind::Char(k) => {
                char_windows(b, k, offsets, |start, end| put(hash_window(b, start, end)))
            }
            ShingleKind::Word(_) => {
                self.for_each_normalized(s, offsets, joined, |w| put(hash64(w)))
            }
        };
        if !buf.is_empty() {
            f(buf);
        }
        n
    }

    /// The shingle set as sorted, distinct [`hash64`] values (empty for an empty text). The
    /// hashes are made in the scratch's buffers and sorted into the one allocation returned.
    pub fn hash_set(&self, text: &str, scratch: &mut Scratch) -> Vec<u64> {
        let mut v = std::mem::take(&mut scratch.hashes);
        v.clear();
        self.hashes(text, scratch, &mut v);
        let mut out = Vec::new();
        sort_uniform_into(&v, &mut out, &mut scratch.sort);
        dedup_sorted(&mut out);
        scratch.hashes = v;
        out
    }

    /// The shingle set as sorted, distinct strings.
    pub fn strings(&self, text: &str) -> Vec<String> {
        let mut scratch = Scratch::default();
        let mut v = Vec::new();
        self.for_each(text, &mut scratch, |b| {
            // shingles are cut at char boundaries of valid UTF-8, so this never fails
            v.push(String::from_utf8_lossy(b).into_owned())
        });
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Sorts values spread evenly over `u64` (hashes) in linear time: counted into about one
/// bucket per value by their top bits, then an insertion sort fixes each bucket's order (a few
/// values at most). A text's shingle set is sorted so for every exact similarity, where a
/// comparison sort was a tenth of a dedup run.
pub fn sort_uniform(v: &mut Vec<u64>) {
    let mut out = Vec::new();
    sort_uniform_into(v, &mut out, &mut SortScratch::default());
    *v = out;
}

/// `Vec::dedup` of a sorted vector without a branch a value: each value is written at the end of
/// the distinct ones so far, which moves on when it differs from the last (repeats are too
/// frequent in a text's shingles for the branch to be foreseen: it was two thirds of
/// [`Shingler::hash_set`]'s own time).
pub fn dedup_sorted(v: &mut Vec<u64>) {
    if v.len() < 2 {
        return;
    }
    let o = &mut v[..];
    let (mut w, mut last) = (1, o[0]);
    for i in 1..o.len() {
        let x = o[i];
        o[w] = x;
        // sorted: the value before is the last one kept whenever they differ
        w += usize::from(x != last);
        last = x;
    }
    v.truncate(w);
}

/// The buffers of [`sort_uniform_into`], kept between calls.
#[derive(Default)]
pub struct SortScratch {
    /// Counts and bucket numbers when a bucket number fits 16 bits (texts of up to 32,768
    /// shingles: every text a dedup meets, nearly): half the bytes to clear and to sum.
    counts16: Vec<u16>,
    buckets16: Vec<u16>,
    counts32: Vec<u32>,
    buckets32: Vec<u32>,
}

/// A bucket count or number of [`bucket_sort`]: `u16` or `u32`.
trait Count: Copy + Default {
    fn of(x: usize) -> Self;
    fn get(self) -> usize;
}

macro_rules! count_impl {
    ($($t:ty),*) => {$(
        impl Count for $t {
            #[inline(always)]
            fn of(x: usize) -> Self {
                x as $t
            }
            #[inline(always)]
            fn get(self) -> usize {
                self as usize
            }
        }
    )*};
}

count_impl!(u16, u32);

/// [`sort_uniform`] of `v` into `out` (replacing what it held), with buffers to reuse.
pub fn sort_uniform_into(v: &[u64], out: &mut Vec<u64>, scratch: &mut SortScratch) {
    let n = v.len();
    out.clear();
    if n < 64 {
        out.extend_from_slice(v);
        out.sort_unstable();
        return;
    }
    // about two buckets a value (at most 2^20)
    let bits = (usize::BITS + 1 - (n - 1).leading_zeros()).min(20);
    if bits <= 16 {
        bucket_sort(v, out, &mut scratch.counts16, &mut scratch.buckets16, bits);
    } else {
        bucket_sort(v, out, &mut scratch.counts32, &mut scratch.buckets32, bits);
    }
}

/// The sort of [`sort_uniform_into`] over `2^bits` buckets, `C` wide enough for `2^bits` and
/// for `v.len()`. Each value's bucket is kept from the counting pass for the placing one, and
/// the indices are unchecked (a bounds check on every count and place was a third of the time).
fn bucket_sort<C: Count>(
    v: &[u64],
    out: &mut Vec<u64>,
    counts: &mut Vec<C>,
    buckets: &mut Vec<C>,
    bits: u32,
) {
    let n = v.len();
    debug_assert!((1..=20).contains(&bits) && C::of(n).get() == n);
    debug_assert!(C::of((1 << bits) - 1).get() == (1 << bits) - 1);
    let shift = 64 - bits;
    counts.clear();
    counts.resize(1 << bits, C::default());
    buckets.clear();
    buckets.extend(v.iter().map(|&x| C::of((x >> shift) as usize)));
    let start = &mut counts[..];
    for &b in buckets.iter() {
        // SAFETY: b = x >> (64 - bits) < 2^bits = start.len()
        let c = unsafe { start.get_unchecked_mut(b.get()) };
        *c = C::of(c.get() + 1);
    }
    // each bucket's first place: the sum runs in a register (a sum through memory, one bucket
    // at a time, waited on every store)
    let mut at = 0;
    for c in start.iter_mut() {
        let size = c.get();
        *c = C::of(at);
        at += size;
    }
    out.reserve(n);
    let o = out.as_mut_ptr();
    for (&x, &b) in v.iter().zip(buckets.iter()) {
        // SAFETY: b < start.len() as above; the places start[b] hands out, from the sums of
        // the counts, are 0..n once each, inside the n values reserved in `out`
        unsafe {
            let c = start.get_unchecked_mut(b.get());
            o.add(c.get()).write(x);
            *c = C::of(c.get() + 1);
        }
    }
    // SAFETY: all n places were written just above (each once)
    unsafe { out.set_len(n) };
    // values are out of order only within their bucket; values that are not spread evenly
    // (crafted ones) would make this quadratic, so past a budget of moves a comparison sort ends it
    let o = &mut out[..];
    let mut budget = 8 * n;
    for i in 1..n {
        let x = o[i];
        if o[i - 1] <= x {
            continue;
        }
        let mut j = i;
        while j > 0 && o[j - 1] > x {
            o[j] = o[j - 1];
            j -= 1;
        }
        o[j] = x;
        budget = match budget.checked_sub(i - j) {
            Some(b) => b,
            None => {
                o.sort_unstable();
                break;
            }
        };
    }
}

/// Lowercase + collapse `White_Space` runs to one space + strip, into `out`.
///
/// One pass over the bytes: eight ASCII bytes at a time (lowercased and their white space
/// turned into spaces in one `u64`) wherever no two of them are white space in a row, runs of
/// kana and CJK ideographs (no case) copied whole, one character at a time elsewhere. A space
/// is written with the white space that starts a run, the rest of the run is skipped, and a
/// trailing one is taken off at the end.
///
/// With AVX-512 (VBMI2), each run of ASCII bytes goes 64 at a time instead
/// ([`ascii_run_avx512`]): white space runs too, which the eight-byte step leaves to the byte
/// loop (the indentation of source code).
pub fn normalize_default(text: &str, out: &mut String) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512vbmi2") && std::is_x86_feature_detected!("avx512bw") {
        // SAFETY: the CPU has AVX-512 F, BW and VBMI2 (checked just above; VBMI2 implies F)
        unsafe { normalize_avx512(text, out) };
        return;
    }
    normalize_with(text, out, |_, _, _, _| 0);
}

/// [`normalize_default`] with [`ascii_run_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi2")]
fn normalize_avx512(text: &str, out: &mut String) {
    normalize_with(text, out, |b, i, space, out| {
        ascii_run_avx512(b, i, space, out)
    });
}

/// The loop of [`normalize_default`]; `ascii_run(bytes, i, space, out)` may first take the
/// ASCII bytes from `i` on (returning how many, 0 for none), as the loop would.
#[inline(always)]
fn normalize_with(
    text: &str,
    out: &mut String,
    mut ascii_run: impl FnMut(&[u8], usize, &mut bool, &mut String) -> usize,
) {
    out.clear();
    out.reserve(text.len());
    let b = text.as_bytes();
    // whether the last byte written is a space (from white space); no space is written first
    let mut space = true;
    let mut i = 0;
    while i < b.len() {
        let run = ascii_run(b, i, &mut space, out);
        if run > 0 {
            i += run;
            continue;
        }
        if let Some(w) = b.get(i..i + 8) {
            let w = u64::from_le_bytes(w.try_into().expect("eight bytes"));
            if w & HIGH == 0 {
                let ws = ascii_ws_mask(w);
                // a white space byte right after another (or after the space last written, or
                // at the start) is skipped: those words go one byte at a time
                if ws & ((ws << 8) | u64::from(space) << 7) == 0 {
                    let upper = ascii_range_mask(w, b'A', b'Z');
                    let lower = w | (upper >> 2);
                    let full = (ws >> 7) * 0xFF;
                    let word = (lower & !full) | (ws >> 2);
                    // SAFETY: the eight bytes are ASCII (lowercasing and spaces keep them so),
                    // so `out` stays UTF-8
                    unsafe { out.as_mut_vec() }.extend_from_slice(&word.to_le_bytes());
                    space = ws >> 63 != 0;
                    i += 8;
                    continue;
                }
            }
        }
        // U+3000..U+9FFF (CJK punctuation, kana, ideographs) have no case, and only U+3000 is
        // white space: a run of them is copied as it is
        let run = caseless_cjk_run(&b[i..]);
        if run > 0 {
            out.push_str(&text[i..i + run]);
            space = false;
            i += run;
            continue;
        }
        let c0 = b[i];
        if c0.is_ascii() {
            if is_ascii_ws(c0) {
                if !space {
                    out.push(' ');
                    space = true;
                }
                // the rest of the run
                while b.get(i + 1).is_some_and(|&x| is_ascii_ws(x)) {
                    i += 1;
                }
            } else {
                out.push(char::from(c0.to_ascii_lowercase()));
                space = false;
            }
            i += 1;
            continue;
        }
        let c = text[i..].chars().next().expect("a char starts here");
        i += c.len_utf8();
        if is_ws(c) {
            if !space {
                out.push(' ');
                space = true;
            }
        } else if c == '\u{3A3}' {
            normalize_with_sigma(text, out);
            return;
        } else {
            push_lowercase(c, out);
            space = false;
        }
    }
    if space && !out.is_empty() {
        out.pop();
    }
}

/// The normalization of the ASCII bytes from `b[i]` on, up to 64 of them (up to the first
/// other byte, or the end), appended to `out`; returns how many were taken (0 when `b[i]` is
/// not ASCII). In one 64-byte register: white space found by two compares and turned into
/// spaces, capitals lowercased by a masked add, and the white space that follows white space
/// (or the space last written) dropped by one compress.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi2")]
fn ascii_run_avx512(b: &[u8], i: usize, space: &mut bool, out: &mut String) -> usize {
    use std::arch::x86_64::*;
    let rest = b.len() - i;
    let lanes = if rest >= 64 {
        u64::MAX
    } else {
        (1u64 << rest) - 1
    };
    // SAFETY: the masked load reads only the `lanes` bytes, all inside `b` (from `i` on)
    let v = unsafe { _mm512_maskz_loadu_epi8(lanes, b.as_ptr().add(i).cast()) };
    let ascii = lanes & !_mm512_movepi8_mask(v);
    let k = (!ascii).trailing_zeros() as usize;
    if k == 0 {
        return 0;
    }
    let take = if k >= 64 { u64::MAX } else { (1u64 << k) - 1 };
    let ws = (_mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b' ' as i8))
        | _mm512_cmple_epu8_mask(
            _mm512_sub_epi8(v, _mm512_set1_epi8(b'\t' as i8)),
            _mm512_set1_epi8(b'\r' as i8 - b'\t' as i8),
        ))
        & take;
    let upper = _mm512_cmple_epu8_mask(
        _mm512_sub_epi8(v, _mm512_set1_epi8(b'A' as i8)),
        _mm512_set1_epi8(25),
    ) & take;
    let v = _mm512_mask_add_epi8(v, upper, v, _mm512_set1_epi8(32));
    let v = _mm512_mask_mov_epi8(v, ws, _mm512_set1_epi8(b' ' as i8));
    let keep = take & !(ws & (ws << 1 | u64::from(*space)));
    let packed = _mm512_maskz_compress_epi8(keep, v);
    out.reserve(64);
    // SAFETY: `out` has room for 64 more bytes (reserved just above); the `keep.count_ones()`
    // written first are ASCII, so `out` stays UTF-8
    unsafe {
        let dst = out.as_mut_vec();
        let len = dst.len();
        _mm512_storeu_si512(dst.as_mut_ptr().add(len).cast(), packed);
        dst.set_len(len + keep.count_ones() as usize);
    }
    *space = ws >> (k - 1) & 1 == 1;
    k
}

/// ASCII `White_Space`: \t \n \x0b \x0c \r and space (not \x1c..\x1f).
#[inline(always)]
fn is_ascii_ws(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

/// The bytes at the start of `b` (UTF-8) that encode characters in U+3001..=U+9FFF.
#[inline(always)]
fn caseless_cjk_run(b: &[u8]) -> usize {
    let mut n = 0;
    // a lead byte 0xE3..=0xE9 starts a three-byte character in U+3000..=U+9FFF
    while n + 2 < b.len() && (0xE3..=0xE9).contains(&b[n]) && b[n..n + 3] != [0xE3, 0x80, 0x80] {
        n += 3;
    }
    n
}

/// [`normalize_default`] of a text holding Σ, the one letter whose lowercase depends on context
/// (final sigma): std lowercases the words holding one (white space is neither cased nor
/// case-ignorable, so a word is all the context there is), not the whole text.
fn normalize_with_sigma(text: &str, out: &mut String) {
    out.clear();
    for word in text.split(is_ws).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        if word.contains('\u{3A3}') {
            out.push_str(&word.to_lowercase());
        } else {
            word.chars().for_each(|c| push_lowercase(c, out));
        }
    }
}

const HIGH: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
const ONES: u64 = 0x0101_0101_0101_0101;

/// 0x80 in each byte of `w` (all ASCII) in `lo..=hi`.
#[inline(always)]
fn ascii_range_mask(w: u64, lo: u8, hi: u8) -> u64 {
    // a byte plus 0x80 - x carries into its top bit iff it is >= x, never into the next byte
    let ge_lo = w + ONES * u64::from(0x80 - lo);
    let gt_hi = w + ONES * u64::from(0x7F - hi);
    ge_lo & !gt_hi & HIGH
}

/// 0x80 in each byte of `w` (all ASCII) that is ASCII `White_Space`: \t \n \x0b \x0c \r and space.
#[inline(always)]
fn ascii_ws_mask(w: u64) -> u64 {
    let x = w ^ (ONES * 0x20);
    // a byte of `x` is zero iff the byte of `w` is a space
    let space = !(((x & LOW7) + LOW7) | x) & HIGH;
    space | ascii_range_mask(w, b'\t', b'\r')
}

/// Appends the lowercase of `c` (any letter but Σ, whose lowercase depends on its word).
#[inline(always)]
fn push_lowercase(c: char, out: &mut String) {
    let u = c as u32;
    if u < 0x80 {
        out.push(c.to_ascii_lowercase());
    } else if (0x3040..=0x9FFF).contains(&u) || (0xAC00..=0xD7A3).contains(&u) {
        // kana, CJK and Hangul have no case: skip the lowercase table search
        out.push(c);
    } else {
        out.extend(c.to_lowercase());
    }
}

const K0: u64 = 0x9E37_79B9_7F4A_7C15;
const K1: u64 = 0xC2B2_AE3D_27D4_EB4F;

/// MurmurHash3's 64-bit finalizer (a bijection with full avalanche).
#[inline(always)]
pub fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

#[inline(always)]
fn absorb(h: u64, w: u64) -> u64 {
    let h = (h ^ w).wrapping_mul(K0);
    h ^ (h >> 32)
}

/// textsieve's 64-bit hash of a byte string (`hash64` in the docs):
///
/// ```text
/// h = (len * 0x9E3779B97F4A7C15 + 0xC2B2AE3D27D4EB4F) mod 2^64
/// for each 8-byte chunk w of the bytes (little-endian; the last one zero-padded):
///     h = (h XOR w) * 0x9E3779B97F4A7C15 mod 2^64;  h = h XOR (h >> 32)
/// return fmix64(h)        # MurmurHash3's 64-bit finalizer
/// ```
#[inline]
pub fn hash64(bytes: &[u8]) -> u64 {
    let mut h = (bytes.len() as u64).wrapping_mul(K0).wrapping_add(K1);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = absorb(h, u64::from_le_bytes(w));
    }
    let r = chunks.remainder().len();
    if r > 0 {
        let w = if bytes.len() >= 8 {
            // the last 8 bytes, shifted so only the remainder is left: the zero-padded chunk
            let mut last = [0u8; 8];
            last.copy_from_slice(&bytes[bytes.len() - 8..]);
            u64::from_le_bytes(last) >> (8 * (8 - r))
        } else {
            let mut w = [0u8; 8];
            w[..r].copy_from_slice(chunks.remainder());
            u64::from_le_bytes(w)
        };
        h = absorb(h, w);
    }
    fmix64(h)
}

/// Every window of k characters of the UTF-8 bytes `b` (the whole text when it has k or fewer),
/// as `f(start, end)` byte offsets in text order; returns how many. Characters start at the
/// bytes that are not continuation bytes (a scan of the bytes, where `char_indices` decoded
/// each character). `ring` holds the starts of the last k characters, so memory does not grow
/// with the text.
fn char_windows(
    b: &[u8],
    k: usize,
    ring: &mut Vec<usize>,
    mut f: impl FnMut(usize, usize),
) -> usize {
    if b.is_empty() {
        return 0;
    }
    let mask = (k + 1).next_power_of_two() - 1;
    ring.clear();
    ring.resize(mask + 1, 0);
    let mut n_chars = 0;
    for (i, &c) in b.iter().enumerate() {
        // continuation bytes are 0x80..=0xBF: -128..=-65 as i8
        if (c as i8) >= -0x40 {
            if n_chars >= k {
                f(ring[(n_chars - k) & mask], i);
            }
            ring[n_chars & mask] = i;
            n_chars += 1;
        }
    }
    if n_chars <= k {
        f(0, b.len());
        return 1;
    }
    f(ring[(n_chars - k) & mask], b.len());
    n_chars - k + 1
}

/// [`hash64`] of `b[s..e]`: from two 8-byte loads when it is at most 16 bytes and 16 can be
/// read from `s` (the chunk, then the zero-padded rest, as `hash64` takes them).
#[inline(always)]
fn hash_window(b: &[u8], s: usize, e: usize) -> u64 {
    let len = e - s;
    match b.get(s..s + 16) {
        Some(w) if len <= 16 => {
            let lo = u64::from_le_bytes(w[..8].try_into().expect("8 bytes"));
            let hi = u64::from_le_bytes(w[8..].try_into().expect("8 bytes"));
            let low_bytes = |n: usize| {
                if n >= 8 {
                    u64::MAX
                } else {
                    (1u64 << (8 * n)) - 1
                }
            };
            let mut h = (len as u64).wrapping_mul(K0).wrapping_add(K1);
            h = absorb(h, lo & low_bytes(len));
            if len > 8 {
                h = absorb(h, hi & low_bytes(len - 8));
            }
            fmix64(h)
        }
        _ => hash64(&b[s..e]),
    }
}

/// `hash64` of every k-byte window of an ASCII text (k <= 8), or of the whole text if shorter.
fn hash_ascii_kgrams(b: &[u8], k: usize, out: &mut Vec<u64>) {
    if b.is_empty() {
        return;
    }
    if b.len() <= k {
        out.push(hash64(b));
        return;
    }
    let n = b.len() - k + 1;
    out.reserve(n);
    hash_ascii_windows(b, k, 0..n, out);
}

/// `hash64` of the k-byte windows (k <= 8) starting at `starts` of an ASCII text, appended to `out`.
fn hash_ascii_windows(b: &[u8], k: usize, starts: std::ops::Range<usize>, out: &mut Vec<u64>) {
    let h0 = (k as u64).wrapping_mul(K0).wrapping_add(K1);
    let mask = if k == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * k)) - 1
    };
    let mut from = starts.start;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512vbmi") && std::is_x86_feature_detected!("avx512dq") {
        // SAFETY: the CPU has AVX-512 F, DQ and VBMI (checked just above; both imply F)
        from = unsafe { hash_windows_avx512(b, k, starts.clone(), out) };
    }
    // windows whose 8-byte load stays inside the text
    let fast_end = b.len().saturating_sub(7).clamp(from, starts.end.max(from));
    for i in from..fast_end {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        let w = u64::from_le_bytes(w) & mask;
        out.push(fmix64(absorb(h0, w)));
    }
    for i in fast_end..starts.end {
        out.push(hash64(&b[i..i + k]));
    }
}

/// Byte `8 * j + t` is `j + t`: a permutation of 16 loaded bytes into the eight 8-byte
/// windows that start at each of the first eight.
#[cfg(target_arch = "x86_64")]
const WINDOWS: [u8; 64] = {
    let mut idx = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        idx[i] = (i / 8 + i % 8) as u8;
        i += 1;
    }
    idx
};

/// [`hash_ascii_windows`] eight windows at a time, as far as 16 bytes can be read from each
/// eighth start: the windows made by one byte permutation of a 16-byte load, then the hash's
/// steps on eight lanes (three 64-bit multiplies each, which one at a time were most of
/// shingling). Returns the first start left to the caller.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vbmi")]
fn hash_windows_avx512(
    b: &[u8],
    k: usize,
    starts: std::ops::Range<usize>,
    out: &mut Vec<u64>,
) -> usize {
    use std::arch::x86_64::*;
    let mask = if k >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * k)) - 1
    };
    let h0 = (k as u64).wrapping_mul(K0).wrapping_add(K1);
    let lane = |x: u64| _mm512_set1_epi64(x as i64);
    let (vmask, vh0, vk0) = (lane(mask), lane(h0), lane(K0));
    let (c1, c2) = (lane(0xFF51_AFD7_ED55_8CCD), lane(0xC4CE_B9FE_1A85_EC53));
    // SAFETY: WINDOWS is 64 bytes
    let idx = unsafe { _mm512_loadu_si512(WINDOWS.as_ptr().cast()) };
    let mut i = starts.start;
    out.reserve(starts.len());
    while i + 8 <= starts.end && i + 16 <= b.len() {
        // SAFETY: bytes i..i + 16 are inside `b` (the loop's condition)
        let src = unsafe { _mm_loadu_si128(b.as_ptr().add(i).cast()) };
        let w = _mm512_and_si512(
            _mm512_permutexvar_epi8(idx, _mm512_broadcast_i32x4(src)),
            vmask,
        );
        let h = _mm512_mullo_epi64(_mm512_xor_si512(vh0, w), vk0);
        let h = _mm512_xor_si512(h, _mm512_srli_epi64::<32>(h));
        let h = _mm512_xor_si512(h, _mm512_srli_epi64::<33>(h));
        let h = _mm512_mullo_epi64(h, c1);
        let h = _mm512_xor_si512(h, _mm512_srli_epi64::<33>(h));
        let h = _mm512_mullo_epi64(h, c2);
        let h = _mm512_xor_si512(h, _mm512_srli_epi64::<33>(h));
        // SAFETY: `out` has room for these 8 values: the loop writes at most `starts.len()`,
        // reserved before it
        unsafe {
            let len = out.len();
            _mm512_storeu_si512(out.as_mut_ptr().add(len).cast(), h);
            out.set_len(len + 8);
        }
        i += 8;
    }
    i
}

/// SHA-1 of `data` (FIPS 180-4), written here so the datasketch-compatible schemes need no crate.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut block = [0u8; 64];
    let mut chunks = data.chunks_exact(64);
    for c in &mut chunks {
        block.copy_from_slice(c);
        sha1_block(&mut h, &block);
    }
    let rest = chunks.remainder();
    block = [0u8; 64];
    block[..rest.len()].copy_from_slice(rest);
    block[rest.len()] = 0x80;
    if rest.len() >= 56 {
        sha1_block(&mut h, &block);
        block = [0u8; 64];
    }
    block[56..].copy_from_slice(&bit_len.to_be_bytes());
    sha1_block(&mut h, &block);
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

fn sha1_block(h: &mut [u32; 5], block: &[u8; 64]) {
    let mut w = [0u32; 80];
    for i in 0..16 {
        w[i] = u32::from_be_bytes([
            block[4 * i],
            block[4 * i + 1],
            block[4 * i + 2],
            block[4 * i + 3],
        ]);
    }
    for i in 16..80 {
        w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
    }
    let [mut a, mut b, mut c, mut d, mut e] = *h;
    for (i, wi) in w.iter().enumerate() {
        let (f, k) = match i {
            0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
            20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
            40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
            _ => (b ^ c ^ d, 0xCA62_C1D6u32),
        };
        let t = a
            .rotate_left(5)
            .wrapping_add(f)
            .wrapping_add(e)
            .wrapping_add(k)
            .wrapping_add(*wi);
        e = d;
        d = c;
        c = b.rotate_left(30);
        b = a;
        a = t;
    }
    h[0] = h[0].wrapping_add(a);
    h[1] = h[1].wrapping_add(b);
    h[2] = h[2].wrapping_add(c);
    h[3] = h[3].wrapping_add(d);
    h[4] = h[4].wrapping_add(e);
}

/// datasketch's `sha1_hash32`: the first four bytes of SHA-1, little-endian.
#[inline]
pub fn sha1_32(data: &[u8]) -> u32 {
    let d = sha1(data);
    u32::from_le_bytes([d[0], d[1], d[2], d[3]])
}

/// Exact Jaccard similarity of each pair `(a[n], b[n])` of documents of `texts`, with each
/// document's shingle set built once; in parallel, the same result for any thread count.
pub fn jaccard_pairs<S: AsRef<str> + Sync>(
    shingler: &Shingler,
    texts: &[S],
    a: &[u32],
    b: &[u32],
) -> Result<Vec<f64>> {
    use rayon::prelude::*;
    if a.len() != b.len() {
        return Err(Error::invalid(
            "j",
            format!("{} first members but {} second members", a.len(), b.len()),
        ));
    }
    if let Some(&bad) = a.iter().chain(b).find(|&&x| x as usize >= texts.len()) {
        return Err(Error::invalid(
            "i",
            format!("document {bad} is out of range for {} texts", texts.len()),
        ));
    }
    let sets: Vec<Vec<u64>> = texts
        .par_iter()
        .map_init(Scratch::default, |scratch, t| {
            shingler.hash_set(t.as_ref(), scratch)
        })
        .collect();
    Ok(a.par_iter()
        .zip(b)
        .map(|(&x, &y)| jaccard_sorted(&sets[x as usize], &sets[y as usize]))
        .collect())
}

/// Exact Jaccard similarity of two sorted, distinct sets (0.0 when both are empty).
pub fn jaccard_sorted(a: &[u64], b: &[u64]) -> f64 {
    let inter = intersection_size(a, b);
    let union = a.len() + b.len() - inter;
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

/// Size of the intersection of two sorted, distinct sets: four against four at a time with
/// AVX2 where the CPU has it, else one against one.
pub fn intersection_size(a: &[u64], b: &[u64]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { intersection_avx2(a, b) };
    }
    intersection_scalar(a, b)
}

/// Without branches on the comparisons: the sets are hashes, so which side steps is a coin toss
/// that a branch predictor gets wrong half the time (that made a merge cost more than building
/// the sets).
fn intersection_scalar(a: &[u64], b: &[u64]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        n += usize::from(x == y);
        i += usize::from(x <= y);
        j += usize::from(y <= x);
    }
    n
}

/// Blocks of four values of each side: every value of the one compared with every value of the
/// other (the second block in its four rotations), then the block whose last value is smaller
/// steps on (both when equal). A match is counted once: the values that step are all below
/// those still ahead on the other side. The last values go through [`intersection_scalar`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn intersection_avx2(a: &[u64], b: &[u64]) -> usize {
    use std::arch::x86_64::*;
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i + 4 <= a.len() && j + 4 <= b.len() {
        // SAFETY: both loads read four values inside their slices (checked by the loop)
        let (va, vb) = unsafe {
            (
                _mm256_loadu_si256(a.as_ptr().add(i).cast()),
                _mm256_loadu_si256(b.as_ptr().add(j).cast()),
            )
        };
        let r1 = _mm256_permute4x64_epi64::<0b00_11_10_01>(vb);
        let r2 = _mm256_permute4x64_epi64::<0b01_00_11_10>(vb);
        let r3 = _mm256_permute4x64_epi64::<0b10_01_00_11>(vb);
        let eq = _mm256_or_si256(
            _mm256_or_si256(_mm256_cmpeq_epi64(va, vb), _mm256_cmpeq_epi64(va, r1)),
            _mm256_or_si256(_mm256_cmpeq_epi64(va, r2), _mm256_cmpeq_epi64(va, r3)),
        );
        n += _mm256_movemask_pd(_mm256_castsi256_pd(eq)).count_ones() as usize;
        let (x, y) = (a[i + 3], b[j + 3]);
        i += 4 * usize::from(x <= y);
        j += 4 * usize::from(y <= x);
    }
    n + intersection_scalar(&a[i..], &b[j..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(sh: &str, k: usize, norm: &str, text: &str) -> Vec<String> {
        Shingler::new(sh, k, norm).unwrap().strings(text)
    }

    #[test]
    fn normalization() {
        let mut out = String::new();
        normalize_default("  Hello,\t\nWORLD  ", &mut out);
        assert_eq!(out, "hello, world");
        normalize_default("ÀB\u{3000}ΟΔΟΣ x", &mut out);
        assert_eq!(out, "àb οδος x");
        normalize_default("\u{1c}A", &mut out); // \x1c is not White_Space
        assert_eq!(out, "\u{1c}a");
        normalize_default(" \n ", &mut out);
        assert_eq!(out, "");
    }

    /// The definition, a character at a time.
    fn normalize_naive(text: &str) -> String {
        text.to_lowercase()
            .split(is_ws)
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn normalization_word_at_a_time_matches_the_definition() {
        // every string of up to 10 symbols from a small alphabet of white space, letters of both
        // cases, punctuation and a non-ASCII letter, at every offset of a longer ASCII text
        let alphabet = [
            " ", "\t", "\n", "\r", "\x0b", "\x0c", "\u{1c}", "A", "z", "Q", ".", "É", "\u{3000}",
            "\u{85}", "\u{3042}", "\u{9fff}", "\u{3001}", "Σ",
        ];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut out = String::new();
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 24) as usize;
            let mut text = String::new();
            let mut r = state;
            for _ in 0..len {
                r = r.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
                // mostly ASCII letters and single spaces, so the eight-byte path is taken often
                let pick = (r >> 59) as usize;
                text.push_str(if pick < alphabet.len() {
                    alphabet[pick]
                } else {
                    "aB cD"
                });
            }
            normalize_default(&text, &mut out);
            assert_eq!(out, normalize_naive(&text), "{text:?}");
        }
    }

    #[test]
    fn normalization_paths_agree_on_long_texts() {
        // texts of up to 400 bytes: runs of white space (indentation), ASCII words of both
        // cases, and now and then a non-ASCII letter, space or kana, so that the 64-byte step
        // stops anywhere in its window; the scalar loop, the AVX-512 one and the definition
        let pieces = [
            "    ",
            "\n        ",
            " ",
            "\t",
            "\r\n",
            "Def",
            "self.X",
            "(a, b):",
            "QUICK",
            "brown",
            "é",
            "\u{3000}",
            "\u{85}",
            "\u{3042}\u{3044}",
            "İ",
            "Σ",
            "\u{1c}",
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let (mut scalar, mut wide) = (String::new(), String::new());
        for round in 0..20_000 {
            let mut text = String::new();
            let len = crate::minhash::splitmix64(&mut state) % 120;
            for _ in 0..len {
                let r = crate::minhash::splitmix64(&mut state) as usize;
                // mostly ASCII: non-ASCII pieces are 1 in 8 (none at all in a quarter of texts)
                let ascii = 10;
                let pick = if !r.is_multiple_of(8) || round % 4 == 0 {
                    r / 8 % ascii
                } else {
                    ascii + r / 8 % (pieces.len() - ascii)
                };
                text.push_str(pieces[pick]);
            }
            normalize_with(&text, &mut scalar, |_, _, _, _| 0);
            assert_eq!(scalar, normalize_naive(&text), "{text:?}");
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx512vbmi2")
                && std::is_x86_feature_detected!("avx512bw")
            {
                // SAFETY: the CPU has the features (checked just above)
                unsafe { normalize_avx512(&text, &mut wide) };
                assert_eq!(wide, scalar, "{text:?}");
            }
        }
    }

    #[test]
    fn window_hashes_agree_with_hash64() {
        // every k, texts of every length up to 80, every range of starts of the shorter ones:
        // the eight-lane loop, the one-window loop and hash64 of each window
        let mut state = 0x0DDB_1A5E_5BAD_5EEDu64;
        for len in 1..80usize {
            let b: Vec<u8> = (0..len)
                .map(|_| b' ' + (crate::minhash::splitmix64(&mut state) % 95) as u8)
                .collect();
            for k in 1..=8usize.min(len) {
                let n = len - k + 1;
                let step = if len < 30 { 1 } else { 7 };
                for lo in (0..n).step_by(step) {
                    for hi in (lo..=n).step_by(step) {
                        let mut got = Vec::new();
                        hash_ascii_windows(&b, k, lo..hi, &mut got);
                        let want: Vec<u64> = (lo..hi).map(|i| hash64(&b[i..i + k])).collect();
                        assert_eq!(got, want, "len {len} k {k} starts {lo}..{hi}");
                    }
                }
            }
        }
    }

    #[test]
    fn final_sigma_by_word_matches_whole_text_lowercase() {
        for text in [
            "ΟΔΟΣ",
            "ΟΔΟΣ x",
            "Σ",
            " Σ ",
            "ΣΑΣ ΣΑΣ\tΣ",
            "ΑΣ' β",
            "ΑΣ'Β",
            "Α\u{301}Σ\u{301} ά",
            "ΑΣ\u{200B}Β ΑΣ\u{200B}",
            "ΌΣΟΣ. ΚΑΛΟΣ\u{3000}ΟΡΙΣΜΟΣ,ΑΛΛΑ",
            "İSTANBUL ΜΕΓΑΣ ファイル ΣΟΦΟΣ\u{85}Ω",
        ] {
            let want = normalize_naive(text);
            let mut got = String::new();
            normalize_default(text, &mut got);
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn char_shingles() {
        assert_eq!(strings("char", 3, "default", "Abcd"), vec!["abc", "bcd"]);
        assert_eq!(strings("char", 5, "default", "ab"), vec!["ab"]);
        assert!(strings("char", 5, "default", "  ").is_empty());
        assert_eq!(strings("char", 2, "default", "aaaa"), vec!["aa"]);
        assert_eq!(strings("char", 2, "none", "Éé"), vec!["Éé"]);
    }

    #[test]
    fn char_shingles_match_plain_windows() {
        let long: String = "Käse, チーズ and cheese; ".repeat(30);
        for text in ["", "a", "ab", "abc", "é", "éàü", "Hello wörld", &long] {
            let chars: Vec<char> = text.chars().collect();
            for k in [1, 2, 3, 5, 8, 9, 64, 1024] {
                let want: Vec<String> = if chars.is_empty() {
                    vec![]
                } else if chars.len() <= k {
                    vec![text.to_string()]
                } else {
                    chars.windows(k).map(|w| w.iter().collect()).collect()
                };
                let mut got = Vec::new();
                let sh = Shingler::new("char", k, "none").unwrap();
                let n = sh.for_each(text, &mut Scratch::default(), |b| {
                    got.push(String::from_utf8(b.to_vec()).unwrap())
                });
                assert_eq!((n, got), (want.len(), want), "{text:?} {k}");
            }
        }
    }

    #[test]
    fn word_shingles() {
        assert_eq!(
            strings("word", 2, "default", "The cat  the CAT"),
            vec!["cat the", "the cat"]
        );
        assert_eq!(strings("word", 5, "default", "one two"), vec!["one two"]);
        assert!(strings("word", 2, "none", " \t").is_empty());
    }

    #[test]
    fn bad_arguments() {
        assert!(Shingler::new("char", 0, "default").is_err());
        assert!(Shingler::new("line", 3, "default").is_err());
        assert!(Shingler::new("char", 3, "upper").is_err());
    }

    #[test]
    fn fast_path_matches_hash64() {
        for text in ["hello world, this is a test", "short", "abcdefghij", "ab"] {
            for k in 1..=8 {
                let sh = Shingler::new("char", k, "default").unwrap();
                let mut fast = Vec::new();
                sh.hashes(text, &mut Scratch::default(), &mut fast);
                let mut slow = Vec::new();
                sh.for_each(text, &mut Scratch::default(), |b| slow.push(hash64(b)));
                assert_eq!(fast, slow, "{text} {k}");
            }
        }
    }

    /// Char shingles of non-ASCII texts are the windows of k characters (against windows of
    /// `chars()`), and their hashes are `hash64` of them: characters of one to four bytes,
    /// windows of up to 40 bytes and windows ending near the end of the text.
    #[test]
    fn char_windows_match_for_each() {
        let texts = [
            "é",
            "日本",
            "日本語のテキスト",
            "a é b",
            "Der Käse, the cheese. 😀 ok",
            "😀😀😀😀😀😀😀😀😀😀",
            "ascii then 日本語 then ascii again, then more ascii to make it long",
            "ßßßßßßßßßßßßßßßßßß",
        ];
        for text in texts {
            for k in 1..=10 {
                let chars: Vec<char> = text.chars().collect();
                let windows: Vec<String> = if chars.len() <= k {
                    vec![text.to_string()]
                } else {
                    chars.windows(k).map(|w| w.iter().collect()).collect()
                };
                let mut cut = Vec::new();
                Shingler::new("char", k, "none").unwrap().for_each(
                    text,
                    &mut Scratch::default(),
                    |b| cut.push(String::from_utf8(b.to_vec()).unwrap()),
                );
                assert_eq!(cut, windows, "{text:?} k={k}");
                for norm in ["default", "none"] {
                    let sh = Shingler::new("char", k, norm).unwrap();
                    let mut want = Vec::new();
                    sh.for_each(text, &mut Scratch::default(), |b| want.push(hash64(b)));
                    let mut got = Vec::new();
                    sh.hashes(text, &mut Scratch::default(), &mut got);
                    assert_eq!(got, want, "{text:?} k={k} {norm}");
                }
            }
        }
    }

    #[test]
    fn hash_tiles_match_hashes() {
        let long = "Der Käse, the cheese. ".repeat(40);
        for text in [
            "",
            " ",
            "ab",
            "abcdefgh",
            "hello world, this is a test",
            &long,
        ] {
            for sh in [
                Shingler::new("char", 5, "default").unwrap(),
                Shingler::new("char", 9, "default").unwrap(),
                Shingler::new("word", 2, "default").unwrap(),
            ] {
                let mut want = Vec::new();
                sh.hashes(text, &mut Scratch::default(), &mut want);
                for tile in [1, 3, 64, 1 << 20] {
                    let (mut got, mut sizes) = (Vec::new(), Vec::new());
                    let n =
                        sh.hash_tiles(text, &mut Scratch::default(), tile, &mut Vec::new(), |t| {
                            got.extend_from_slice(t);
                            sizes.push(t.len());
                        });
                    assert_eq!((n, &got), (want.len(), &want), "{text:?} {tile}");
                    assert!(sizes.iter().all(|&s| 0 < s && s <= tile));
                }
            }
        }
        let ascii = "tiles of ascii text ".repeat(30);
        let sh = Shingler::new("char", 5, "none").unwrap();
        let mut want = Vec::new();
        sh.hashes(&ascii, &mut Scratch::default(), &mut want);
        let mut got = Vec::new();
        sh.hash_tiles(&ascii, &mut Scratch::default(), 7, &mut Vec::new(), |t| {
            got.extend_from_slice(t)
        });
        assert_eq!(got, want);
    }

    #[test]
    fn hash64_is_stable() {
        // pinned values: changing hash64 changes every native signature
        assert_eq!(hash64(b""), fmix64(K1));
        assert_ne!(hash64(b"a"), hash64(b"a\0"));
        assert_ne!(hash64(b"abcdefgh"), hash64(b"abcdefgh\0"));
    }

    #[test]
    fn sha1_known_answers() {
        let hex = |d: [u8; 20]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(sha1(&[b'a'; 1000])),
            "291e9a6c66994949b57ba5e650361e98fc36b1ba"
        );
    }

    #[test]
    fn sort_uniform_sorts_anything() {
        let mut x = 1u64;
        // one scratch for every size: 16-bit buckets up to 32,768 values, 32-bit past them
        let mut scratch = SortScratch::default();
        for n in [
            0u64, 1, 5, 63, 64, 65, 1000, 5000, 32_768, 32_769, 70_000, 5000,
        ] {
            // uniform, with clustered and repeated values
            let mut v: Vec<u64> = (0..n)
                .map(|i| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    match i % 5 {
                        0 => 7,
                        1 => x >> 40,
                        _ => x,
                    }
                })
                .collect();
            let mut want = v.clone();
            want.sort_unstable();
            let mut out = vec![3];
            sort_uniform_into(&v, &mut out, &mut scratch);
            assert_eq!(out, want);
            sort_uniform(&mut v);
            assert_eq!(v, want);
            // all in one bucket, in reverse: the budget ends the insertion sort
            let mut v: Vec<u64> = (0..n).rev().collect();
            sort_uniform(&mut v);
            assert_eq!(v, (0..n).collect::<Vec<u64>>());
        }
    }

    #[test]
    fn dedup_sorted_is_vec_dedup() {
        for v in [
            vec![],
            vec![1],
            vec![1, 1],
            vec![1, 2],
            vec![1, 1, 1, 2, 3, 3, 9, 9],
            vec![0, 5, 5, 5],
            (0..100).map(|i| i / 3).collect::<Vec<u64>>(),
        ] {
            let mut ours = v.clone();
            dedup_sorted(&mut ours);
            let mut want = v;
            want.dedup();
            assert_eq!(ours, want);
        }
    }

    #[test]
    fn jaccard() {
        assert_eq!(jaccard_sorted(&[1, 2, 3], &[2, 3, 4]), 0.5);
        assert_eq!(jaccard_sorted(&[], &[]), 0.0);
        assert_eq!(jaccard_sorted(&[1], &[1]), 1.0);
    }

    /// Sets of every size up to a few blocks and of every overlap: the block intersection (where
    /// the CPU runs it), the scalar one and a plain count agree.
    #[test]
    fn intersection_of_blocks_is_exact() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let (na, nb) = ((next() % 40) as usize, (next() % 40) as usize);
            // values from a small range, so the sets meet often
            let range = 1 + next() % 120;
            let mut a: Vec<u64> = (0..na).map(|_| next() % range).collect();
            let mut b: Vec<u64> = (0..nb).map(|_| next() % range).collect();
            if round % 7 == 0 {
                b = a.clone();
            }
            for v in [&mut a, &mut b] {
                v.sort_unstable();
                v.dedup();
            }
            let want = a.iter().filter(|x| b.binary_search(x).is_ok()).count();
            assert_eq!(intersection_size(&a, &b), want, "{a:?} {b:?}");
            assert_eq!(intersection_scalar(&a, &b), want);
            assert_eq!(intersection_size(&b, &a), want);
        }
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    #[test]
    #[ignore]
    fn normalize_speed_on_shared_data() {
        // the shared texts, and Python source (indented code) where a file is named by
        // TEXTSIEVE_SPEED_CODE; 1,000-byte pieces, the scalar loop beside the dispatched one
        let mut names: Vec<String> = ["tinyshakespeare.txt", "manpages_ja.jsonl"]
            .iter()
            .map(|n| format!("../shared/data/{n}"))
            .collect();
        names.extend(std::env::var("TEXTSIEVE_SPEED_CODE"));
        for name in names {
            let Ok(text) = std::fs::read_to_string(&name) else {
                continue;
            };
            let mut norm = String::new();
            let mut time = |scalar: bool| {
                let mut best = f64::MAX;
                for _ in 0..5 {
                    let t = std::time::Instant::now();
                    let mut at = 0;
                    while at < text.len() {
                        let mut end = (at + 1000).min(text.len());
                        while !text.is_char_boundary(end) {
                            end += 1;
                        }
                        if scalar {
                            normalize_with(&text[at..end], &mut norm, |_, _, _, _| 0);
                        } else {
                            normalize_default(&text[at..end], &mut norm);
                        }
                        at = end;
                    }
                    best = best.min(t.elapsed().as_secs_f64());
                }
                text.len() as f64 / 1e6 / best
            };
            let (scalar, used) = (time(true), time(false));
            println!("{name}: normalize {used:.0} MB/s (the eight-byte loop {scalar:.0} MB/s)");
        }
    }

    #[test]
    #[ignore]
    fn hashing_speed() {
        let text: String = (0..200_000).map(|i| format!("Word{} ", i % 5000)).collect();
        for _ in 0..3 {
            let mut norm = String::new();
            let t = std::time::Instant::now();
            normalize_default(&text, &mut norm);
            let a = t.elapsed().as_secs_f64();
            let mut out = Vec::new();
            let t = std::time::Instant::now();
            hash_ascii_kgrams(norm.as_bytes(), 5, &mut out);
            let b = t.elapsed().as_secs_f64();
            let mb = text.len() as f64 / 1e6;
            println!("normalize {:.0} MB/s, kgrams {:.0} MB/s", mb / a, mb / b);
        }
    }

    #[test]
    #[ignore]
    fn verification_speed() {
        // documents of about 1,250 bytes of English, as the dedup benches' corpora
        let Ok(text) = std::fs::read_to_string("../shared/data/tinyshakespeare.txt") else {
            return;
        };
        let docs: Vec<&str> = text
            .as_bytes()
            .chunks(1250)
            .filter_map(|p| std::str::from_utf8(p).ok())
            .collect();
        let sh = Shingler::new("char", 5, "default").unwrap();
        let mut scratch = Scratch::default();
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let sets: Vec<Vec<u64>> = docs.iter().map(|d| sh.hash_set(d, &mut scratch)).collect();
            let a = t.elapsed().as_secs_f64() / docs.len() as f64;
            let t = std::time::Instant::now();
            let mut sum = 0.0;
            for w in sets.windows(2) {
                sum += jaccard_sorted(&w[0], &w[1]);
            }
            let b = t.elapsed().as_secs_f64() / (docs.len() - 1) as f64;
            println!(
                "hash_set {:.2} us/doc, jaccard {:.2} us/pair ({sum:.3})",
                a * 1e6,
                b * 1e6
            );
        }
    }

    #[test]
    fn jaccard_pairs_matches_single_pairs() {
        let sh = Shingler::new("char", 3, "default").unwrap();
        let texts = ["the cat sat", "the cat sat down", "a dog"];
        let got = jaccard_pairs(&sh, &texts, &[0, 0, 1], &[1, 2, 2]).unwrap();
        let mut scratch = Scratch::default();
        for (n, (a, b)) in [(0, 1), (0, 2), (1, 2)].into_iter().enumerate() {
            let (x, y) = (
                sh.hash_set(texts[a], &mut scratch),
                sh.hash_set(texts[b], &mut scratch),
            );
            assert_eq!(got[n], jaccard_sorted(&x, &y));
        }
        assert!(jaccard_pairs(&sh, &texts, &[0], &[3]).is_err());
        assert!(jaccard_pairs(&sh, &texts, &[0], &[]).is_err());
    }
}
