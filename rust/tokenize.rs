//! Normalization, char tokenization and the vocabulary.
//!
//! The default normalization is the teaching notebook's, reproduced exactly: lowercase (full
//! Unicode, like Python's `str.lower()`), strip whitespace at both ends, replace each punctuation
//! character of [`SEED_PUNCTUATION`] with a space, collapse every run of whitespace (Python's
//! `str.isspace()`, which is what regex `\s` matches under Unicode) into one space. Char
//! tokenization then yields the code points of the normalized text without its spaces.

use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, Result};

/// The teaching notebook's punctuation: note the half-width `､` (U+FF64), not the Japanese `、`.
pub const SEED_PUNCTUATION: &str = "。､，,.!?！？";
/// [`SEED_PUNCTUATION`] plus the Japanese comma and the common full-width marks and brackets.
pub const JA_PUNCTUATION: &str = "。､，,.!?！？、．・：；「」『』（）【】〈〉《》〔〕…‥";

/// Python's `str.isspace()`: Unicode White_Space plus the four separators U+001C..U+001F.
#[inline]
pub fn is_py_space(c: char) -> bool {
    if c.is_ascii() {
        matches!(
            c,
            '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{1C}'..='\u{1F}'
        )
    } else {
        c.is_whitespace()
    }
}

/// Whether lowercasing changes `c`. For the Basic Multilingual Plane this is a bitmap built once
/// from the standard library's own mapping (a bit test instead of a table search per character,
/// which is most of the cost on CJK text); other planes ask the mapping directly.
#[inline]
fn changes_when_lowercased(c: char) -> bool {
    static BMP: OnceLock<Box<[u64; 1024]>> = OnceLock::new();
    let cp = c as u32;
    if cp >= 0x10000 {
        return !c.to_lowercase().eq(std::iter::once(c));
    }
    let bits = BMP.get_or_init(|| {
        let mut bits = Box::new([0u64; 1024]);
        for cp in 0..0x10000u32 {
            if let Some(ch) = char::from_u32(cp) {
                if !ch.to_lowercase().eq(std::iter::once(ch)) {
                    bits[(cp >> 6) as usize] |= 1 << (cp & 63);
                }
            }
        }
        bits
    });
    bits[(cp >> 6) as usize] & (1 << (cp & 63)) != 0
}

/// A set of punctuation characters with a fast path for ASCII.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CharSet {
    ascii: [bool; 128],
    /// The Basic Multilingual Plane beyond ASCII as a bitmap: one bit test per character.
    bmp: Box<[u64; 1024]>,
    other: Vec<char>, // sorted, deduplicated; all non-ASCII members
}

impl CharSet {
    pub fn new(chars: &str) -> Self {
        let mut ascii = [false; 128];
        let mut bmp = Box::new([0u64; 1024]);
        let mut other: Vec<char> = Vec::new();
        for c in chars.chars() {
            let cp = c as u32;
            if c.is_ascii() {
                ascii[cp as usize] = true;
            } else {
                if cp < 0x10000 {
                    bmp[(cp >> 6) as usize] |= 1 << (cp & 63);
                }
                other.push(c);
            }
        }
        other.sort_unstable();
        other.dedup();
        CharSet { ascii, bmp, other }
    }

    #[inline]
    pub fn contains(&self, c: char) -> bool {
        let cp = c as u32;
        if c.is_ascii() {
            self.ascii[cp as usize]
        } else if cp < 0x10000 {
            self.bmp[(cp >> 6) as usize] & (1 << (cp & 63)) != 0
        } else {
            self.other.binary_search(&c).is_ok()
        }
    }

    /// The characters of the set, in code point order.
    pub fn chars(&self) -> String {
        let mut s: String = (0u8..128)
            .filter(|&b| self.ascii[b as usize])
            .map(char::from)
            .collect();
        s.extend(self.other.iter());
        s
    }
}

/// How text becomes tokens. `normalize == false` takes every character as it is (the
/// `sorted(set(text))` style used for char-level language models); the other options apply only
/// when normalizing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokenizer {
    pub normalize: bool,
    pub lowercase: bool,
    pub nfkc: bool,
    pub keep_spaces: bool,
    pub punctuation: CharSet,
}

impl Default for Tokenizer {
    fn default() -> Self {
        Tokenizer {
            normalize: true,
            lowercase: true,
            nfkc: false,
            keep_spaces: false,
            punctuation: CharSet::new(SEED_PUNCTUATION),
        }
    }
}

impl Tokenizer {
    /// A tokenizer that keeps every character as it is.
    pub fn raw() -> Self {
        Tokenizer {
            normalize: false,
            ..Tokenizer::default()
        }
    }

    /// The normalized text (the seed's `normalize`); the identity when `normalize` is off.
    pub fn normalize_text(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        self.normalize_into(text, &mut out);
        out
    }

    /// Appends the normalized `text` to `out`.
    pub fn normalize_into(&self, text: &str, out: &mut String) {
        if !self.normalize {
            out.push_str(text);
            return;
        }
        self.for_each_normalized(text, true, |c| out.push(c));
    }

    /// Calls `f` for each character of the normalized `text` (its spaces only if `spaces`), in
    /// one pass: lowercase, then whitespace and punctuation runs become one space, except that
    /// whitespace at either end is stripped first (so a run at an end yields a space only if it
    /// holds punctuation). The same result as the seed's four steps one after another.
    fn for_each_normalized(&self, text: &str, spaces: bool, mut f: impl FnMut(char)) {
        let nfkc;
        let mut text = text;
        if self.nfkc {
            nfkc = text.nfkc().collect::<String>();
            text = &nfkc;
        }
        let mut lower = self.lowercase;
        let whole;
        if lower && text.contains('Σ') {
            // final sigma depends on its neighbours: lowercase the whole string the standard way
            whole = text.to_lowercase();
            text = &whole;
            lower = false;
        }
        let mut run = Collapse {
            pending: Collapse::NONE,
            emitted: false,
            spaces,
        };
        for c in text.chars() {
            if !lower {
                run.put(c, self, &mut f);
            } else if c.is_ascii() {
                run.put(c.to_ascii_lowercase(), self, &mut f);
            } else if changes_when_lowercased(c) {
                c.to_lowercase().for_each(|l| run.put(l, self, &mut f));
            } else {
                run.put(c, self, &mut f);
            }
        }
        if spaces && run.pending == Collapse::PUNCT {
            f(' ');
        }
    }

    /// Calls `f` for each token of `text`.
    #[inline]
    pub fn for_each_token(&self, text: &str, f: impl FnMut(char)) {
        if !self.normalize {
            text.chars().for_each(f);
            return;
        }
        if text.is_ascii() {
            return self.for_each_ascii_token(text.as_bytes(), f);
        }
        self.for_each_normalized(text, self.keep_spaces, f);
    }

    /// [`Tokenizer::for_each_token`] for ASCII text, without building the normalized string
    /// (ASCII is NFKC-stable and lowercases byte by byte).
    #[inline]
    fn for_each_ascii_token(&self, bytes: &[u8], mut f: impl FnMut(char)) {
        let space = |b: u8| is_py_space(b as char);
        let start = bytes.iter().position(|&b| !space(b)).unwrap_or(bytes.len());
        let end = bytes
            .iter()
            .rposition(|&b| !space(b))
            .map_or(start, |i| i + 1);
        let mut prev_space = false;
        for &b in &bytes[start..end] {
            let c = if self.lowercase {
                b.to_ascii_lowercase()
            } else {
                b
            } as char;
            if space(b) || self.punctuation.contains(c) {
                if self.keep_spaces && !prev_space {
                    f(' ');
                }
                prev_space = true;
            } else {
                f(c);
                prev_space = false;
            }
        }
    }

    /// What each ASCII byte and each code point of the Basic Multilingual Plane becomes under
    /// this tokenizer (see [`CharTables`]), built once per configuration and shared. `None` when
    /// normalizing with kept spaces or NFKC: runs of spaces collapse and NFKC composes across
    /// characters, which per-character tables cannot express.
    pub fn char_tables(&self) -> Option<Arc<CharTables>> {
        if self.normalize && (self.keep_spaces || self.nfkc) {
            return None;
        }
        // (normalize, lowercase, punctuation) -> tables
        type Entry = (bool, bool, CharSet, Arc<CharTables>);
        static CACHE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        let key =
            |e: &Entry| e.0 == self.normalize && e.1 == self.lowercase && e.2 == self.punctuation;
        if let Some(e) = cache.iter().find(|e| key(e)) {
            return Some(e.3.clone());
        }
        let classify = |c: char| self.classify(c);
        let tables = Arc::new(CharTables {
            ascii: std::array::from_fn(|b| classify(b as u8 as char)),
            bmp: (0..0x10000u32)
                .map(|cp| char::from_u32(cp).map_or(SLOW, classify))
                .collect(),
        });
        if cache.len() >= 16 {
            cache.remove(0);
        }
        cache.push((
            self.normalize,
            self.lowercase,
            self.punctuation.clone(),
            tables.clone(),
        ));
        Some(tables)
    }

    /// The table entry of one character: its token's code point, [`DROP`], or [`SLOW`] when
    /// it lowercases to several characters, to another plane, or is `Σ` (whose lowercase depends
    /// on its neighbours).
    fn classify(&self, c: char) -> u32 {
        if !self.normalize {
            return c as u32;
        }
        let mut l = c;
        if self.lowercase {
            if c == 'Σ' {
                return SLOW;
            }
            if c.is_ascii() || changes_when_lowercased(c) {
                let mut it = c.to_lowercase();
                match (it.next(), it.next()) {
                    (Some(one), None) if (one as u32) < 0x10000 => l = one,
                    _ => return SLOW,
                }
            }
        }
        if is_py_space(l) || self.punctuation.contains(l) {
            DROP
        } else {
            l as u32
        }
    }

    /// The tokens of one character that the tables mark [`SLOW`] (or that lies beyond the
    /// Basic Multilingual Plane): lowercased the general way, spaces and punctuation dropped.
    /// `None` for `Σ` when lowercasing (its lowercase depends on its neighbours): the caller
    /// then takes the general path.
    #[inline(never)]
    fn slow_char(&self, c: char) -> Option<Few> {
        let mut few = Few::default();
        let mut keep = |l: char| {
            if !self.normalize || !(is_py_space(l) || self.punctuation.contains(l)) {
                few.push(l);
            }
        };
        if !(self.normalize && self.lowercase) {
            keep(c);
        } else if c == 'Σ' {
            return None;
        } else {
            c.to_lowercase().for_each(keep);
        }
        Some(few)
    }

    /// The tokens (code points) of `text`.
    pub fn tokens(&self, text: &str) -> Vec<char> {
        let mut out = Vec::with_capacity(text.len());
        self.for_each_token(text, |c| out.push(c));
        out
    }
}

/// The state of [`Tokenizer::for_each_normalized`]: what the current run of separators holds
/// (nothing, whitespace only, or punctuation), and whether any character was emitted yet.
struct Collapse {
    pending: u8,
    emitted: bool,
    spaces: bool,
}

impl Collapse {
    const NONE: u8 = 0;
    const WS: u8 = 1;
    const PUNCT: u8 = 2;

    #[inline(always)]
    fn put(&mut self, c: char, t: &Tokenizer, f: &mut impl FnMut(char)) {
        if is_py_space(c) {
            self.pending = self.pending.max(Self::WS);
        } else if t.punctuation.contains(c) {
            self.pending = Self::PUNCT;
        } else {
            if self.spaces
                && self.pending != Self::NONE
                && (self.emitted || self.pending == Self::PUNCT)
            {
                f(' ');
            }
            self.pending = Self::NONE;
            self.emitted = true;
            f(c);
        }
    }
}

/// The tokens of one character: at most three (the longest full lowercase mapping).
#[derive(Clone, Copy, Debug, Default)]
struct Few {
    chars: [char; 3],
    len: usize,
}

impl Few {
    fn push(&mut self, c: char) {
        self.chars[self.len] = c;
        self.len += 1;
    }

    fn as_slice(&self) -> &[char] {
        &self.chars[..self.len]
    }
}

/// What a tokenizer makes of each ASCII byte and each code point of the Basic Multilingual
/// Plane: the code point of its token, [`DROP`] (whitespace or punctuation) or [`SLOW`] (see
/// [`Tokenizer::slow_char`]). With it, tokenizing is one table load per character.
#[derive(Debug)]
pub struct CharTables {
    ascii: [u32; 128],
    bmp: Box<[u32]>,
}

impl CharTables {
    /// The entry of one character ([`SLOW`] beyond the Basic Multilingual Plane).
    fn get(&self, c: char) -> u32 {
        self.bmp.get(c as usize).copied().unwrap_or(SLOW)
    }
}

/// Walks the UTF-8 of `bytes` from `i`: an ASCII byte is `ascii[byte]`, a character of the
/// Basic Multilingual Plane is `bmp[code point]`, and each value is written to `slots[*n]`
/// (`*n` advancing past all but [`DROP`]), until a character whose value is [`SLOW`] or that
/// lies in another plane: then it returns that character and where the next one starts, for
/// the caller to handle and go on from there. `None` at the end of the text. `slots` needs room
/// for a value per byte.
///
/// (Not inlined: on its own the loop keeps its position and counter in registers, where inlined
/// into a caller with more state it kept the position on the stack, a load and store per
/// character.)
#[inline(never)]
fn map_chars(
    bytes: &[u8],
    mut i: usize,
    ascii: &[u32; 128],
    bmp: &[u32],
    slots: &mut [MaybeUninit<u32>],
    n: &mut usize,
) -> Option<(char, usize)> {
    let b = bytes;
    let mut m = *n;
    let stop = loop {
        let Some(&x) = b.get(i) else { break None };
        let (c, v) = if x < 0x80 {
            i += 1;
            (x as u32, ascii[x as usize])
        } else {
            let (cp, w) = decode_multibyte(b, i);
            i += w;
            (cp, bmp.get(cp as usize).copied().unwrap_or(SLOW))
        };
        if v == SLOW {
            break Some((char::from_u32(c).unwrap_or('\u{FFFD}'), i));
        }
        slots[m].write(v);
        m += (v != DROP) as usize;
    };
    *n = m;
    stop
}

/// The code point and byte length of the character that starts at `b[i]`, a lead byte of a
/// multi-byte sequence of valid UTF-8.
#[inline(always)]
fn decode_multibyte(b: &[u8], i: usize) -> (u32, usize) {
    let x = b[i] as u32;
    if x < 0xE0 {
        (((x & 0x1F) << 6) | (b[i + 1] as u32 & 0x3F), 2)
    } else if x < 0xF0 {
        (
            ((x & 0x0F) << 12) | ((b[i + 1] as u32 & 0x3F) << 6) | (b[i + 2] as u32 & 0x3F),
            3,
        )
    } else {
        (
            ((x & 0x07) << 18)
                | ((b[i + 1] as u32 & 0x3F) << 12)
                | ((b[i + 2] as u32 & 0x3F) << 6)
                | (b[i + 3] as u32 & 0x3F),
            4,
        )
    }
}

/// The distinct tokens of `texts`, sorted by code point, the general way (one character at a
/// time through the tokenizer's normalization).
fn distinct_tokens<S: AsRef<str> + Sync>(texts: &[S], tokenizer: &Tokenizer) -> Vec<char> {
    let mut chars: Vec<char> = texts
        .par_iter()
        .fold(FxHashSet::default, |mut seen, t| {
            tokenizer.for_each_token(t.as_ref(), |c| {
                seen.insert(c);
            });
            seen
        })
        .reduce(FxHashSet::default, |mut a, b| {
            a.extend(b);
            a
        })
        .into_iter()
        .collect();
    chars.sort_unstable();
    chars
}

/// [`distinct_tokens`] by the lookup tables: the pass over the texts only notes which characters
/// occur (ASCII and the Basic Multilingual Plane in a byte per code point, other planes in a
/// set), and the tables turn those few thousand characters into tokens afterwards, since a
/// character's tokens do not depend on its neighbours. The exception is `Σ` when lowercasing:
/// documents holding it are tokenized the general way as well.
fn distinct_tokens_by_tables<S: AsRef<str> + Sync>(
    texts: &[S],
    tokenizer: &Tokenizer,
    tables: &CharTables,
) -> Vec<char> {
    type Seen = (Vec<bool>, FxHashSet<char>);
    let empty = || -> Seen { (vec![false; 0x10000], FxHashSet::default()) };
    let (bmp, astral) = texts
        .par_iter()
        .fold(empty, |(mut bmp, mut astral), t| {
            let (b, seen) = (t.as_ref().as_bytes(), &mut bmp[..0x10000]);
            let mut i = 0;
            while i < b.len() {
                if b[i] < 0x80 {
                    seen[b[i] as usize] = true;
                    i += 1;
                    continue;
                }
                let (cp, w) = decode_multibyte(b, i);
                match seen.get_mut(cp as usize) {
                    Some(s) => *s = true,
                    None => {
                        astral.insert(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                    }
                }
                i += w;
            }
            (bmp, astral)
        })
        .reduce(empty, |(mut a, mut sa), (b, sb)| {
            a.iter_mut().zip(b).for_each(|(x, y)| *x |= y);
            sa.extend(sb);
            (a, sa)
        });
    let mut tokens = vec![false; 0x10000];
    let mut other: FxHashSet<char> = FxHashSet::default();
    let mut add = |c: char| match tokens.get_mut(c as usize) {
        Some(t) => *t = true,
        None => {
            other.insert(c);
        }
    };
    let occurring = (0u32..0x10000)
        .filter(|&cp| bmp[cp as usize])
        .filter_map(char::from_u32)
        .chain(astral);
    for c in occurring {
        match tables.get(c) {
            DROP => {}
            SLOW => tokenizer
                .slow_char(c)
                .iter()
                .flat_map(|few| few.as_slice())
                .for_each(|&l| add(l)),
            cp => add(char::from_u32(cp).unwrap_or('\u{FFFD}')),
        }
    }
    if tokenizer.slow_char('Σ').is_none() && bmp['Σ' as usize] {
        let with_sigma: Vec<&str> = texts
            .iter()
            .map(|t| t.as_ref())
            .filter(|t| t.contains('Σ'))
            .collect();
        distinct_tokens(&with_sigma, tokenizer)
            .into_iter()
            .for_each(&mut add);
    }
    let mut chars: Vec<char> = (0u32..0x10000)
        .filter(|&cp| tokens[cp as usize])
        .filter_map(char::from_u32)
        .chain(other)
        .collect();
    chars.sort_unstable();
    chars
}

/// Sentinel for "no id" in the ASCII lookup tables.
const NONE: u32 = u32::MAX;
/// Marks a character that tokenization drops (whitespace or punctuation, when normalizing).
const DROP: u32 = u32::MAX - 1;
/// Marks a character that the lookup tables leave to [`Tokenizer::slow_char`].
const SLOW: u32 = u32::MAX - 2;

/// A vocabulary: an ordered list of tokens (single characters, plus optionally an unknown-token
/// string such as `<unk>`), with lookups both ways and encoding of text to ids.
#[derive(Clone, Debug)]
pub struct Vocab {
    tokens: Vec<String>,
    unk: Option<u32>,
    ascii: [u32; 128],
    /// Code point -> id for the Basic Multilingual Plane, when the vocabulary has characters
    /// beyond ASCII (empty otherwise).
    bmp: Vec<u32>,
    /// The tokenizer's [`CharTables`] (`None` for the options that need the general path).
    tables: Option<Arc<CharTables>>,
    /// Byte -> id after this vocabulary's tokenizer (lowercasing, dropping spaces and
    /// punctuation): [`DROP`], or the unk id (else [`NONE`]) for unknown characters.
    ascii_tokens: [u32; 128],
    /// The same for the Basic Multilingual Plane ([`SLOW`] kept), built on first use.
    bmp_tokens: OnceLock<Box<[u32]>>,
    chars: FxHashMap<char, u32>,
    index: FxHashMap<String, u32>,
    pub tokenizer: Tokenizer,
}

impl PartialEq for Vocab {
    fn eq(&self, other: &Self) -> bool {
        self.tokens == other.tokens && self.unk == other.unk && self.tokenizer == other.tokenizer
    }
}

impl Vocab {
    /// A vocabulary over `tokens` in this order. Every token but `unk` must be one character;
    /// `unk`, when given, must be one of the tokens.
    pub fn new(tokens: Vec<String>, unk: Option<&str>, tokenizer: Tokenizer) -> Result<Self> {
        if tokens.len() >= i32::MAX as usize {
            return Err(Error::invalid("tokens", "too many tokens for int32 ids"));
        }
        let mut index = FxHashMap::default();
        let mut chars = FxHashMap::default();
        let mut ascii = [NONE; 128];
        for (i, t) in tokens.iter().enumerate() {
            let id = i as u32;
            if index.insert(t.clone(), id).is_some() {
                return Err(Error::invalid(
                    "tokens",
                    format!("token {t:?} appears twice"),
                ));
            }
            if Some(t.as_str()) == unk {
                continue;
            }
            let mut it = t.chars();
            match (it.next(), it.next()) {
                (Some(c), None) => {
                    if c.is_ascii() {
                        ascii[c as usize] = id;
                    }
                    chars.insert(c, id);
                }
                _ => {
                    return Err(Error::invalid(
                        "tokens",
                        format!(
                        "token {t:?} is not a single character (only the unk token may be longer)"
                    ),
                    ))
                }
            }
        }
        let unk = match unk {
            None => None,
            Some(u) => Some(*index.get(u).ok_or_else(|| {
                Error::invalid("unk", format!("unk token {u:?} is not among the tokens"))
            })?),
        };
        let tables = tokenizer.char_tables();
        let mut ascii_tokens = [NONE; 128];
        if let Some(t) = &tables {
            for (slot, &v) in ascii_tokens.iter_mut().zip(&t.ascii) {
                *slot = match v {
                    DROP | SLOW => v,
                    c if ascii[c as usize] != NONE => ascii[c as usize],
                    _ => unk.unwrap_or(NONE),
                };
            }
        }
        let mut bmp = Vec::new();
        if chars.keys().any(|&c| !c.is_ascii() && (c as u32) < 0x10000) {
            bmp = vec![NONE; 0x10000];
            for (&c, &id) in &chars {
                if (c as u32) < 0x10000 {
                    bmp[c as usize] = id;
                }
            }
        }
        Ok(Vocab {
            tokens,
            unk,
            ascii,
            bmp,
            tables,
            ascii_tokens,
            bmp_tokens: OnceLock::new(),
            chars,
            index,
            tokenizer,
        })
    }

    /// `[unk] + sorted(distinct tokens of texts)` by code point (no unk entry when `unk` is None).
    pub fn from_texts<S: AsRef<str> + Sync>(
        texts: &[S],
        unk: Option<&str>,
        tokenizer: Tokenizer,
    ) -> Result<Self> {
        let chars = match tokenizer.char_tables() {
            Some(tables) => distinct_tokens_by_tables(texts, &tokenizer, &tables),
            None => distinct_tokens(texts, &tokenizer),
        };
        Vocab::from_chars(chars, unk, tokenizer)
    }

    /// `[unk] + chars` (sorted, distinct); a character equal to `unk` is the unk token.
    fn from_chars(chars: Vec<char>, unk: Option<&str>, tokenizer: Tokenizer) -> Result<Self> {
        let mut tokens: Vec<String> = Vec::with_capacity(chars.len() + 1);
        if let Some(u) = unk {
            tokens.push(u.to_owned());
        }
        tokens.extend(
            chars
                .into_iter()
                .map(String::from)
                .filter(|c| Some(c.as_str()) != unk),
        );
        Vocab::new(tokens, unk, tokenizer)
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    pub fn unk_id(&self) -> Option<u32> {
        self.unk
    }

    pub fn unk_token(&self) -> Option<&str> {
        self.unk.map(|i| self.tokens[i as usize].as_str())
    }

    pub fn id_of(&self, token: &str) -> Option<u32> {
        self.index.get(token).copied()
    }

    pub fn token_of(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// The id of one character: its own, else the unk id, else [`NONE`].
    #[inline]
    fn id_or_none(&self, c: char) -> u32 {
        let id = if c.is_ascii() {
            self.ascii[c as usize]
        } else if (c as u32) < 0x10000 && !self.bmp.is_empty() {
            self.bmp[c as usize]
        } else {
            self.chars.get(&c).copied().unwrap_or(NONE)
        };
        if id == NONE {
            self.unk.unwrap_or(NONE)
        } else {
            id
        }
    }

    /// The id of one character: its own, else the unk id, else an error.
    #[inline]
    pub fn id_of_char(&self, c: char) -> Result<u32> {
        match self.id_or_none(c) {
            NONE => Err(Error::UnknownToken(c.to_string())),
            id => Ok(id),
        }
    }

    /// Tokenizes `text` with this vocabulary's tokenizer and appends the ids to `out`.
    pub fn encode_into(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        let start = out.len();
        if let Some(t) = &self.tables {
            if self.encode_mapped(text, t, out) {
                if self.unk.is_none() {
                    if let Some(i) = out[start..].iter().position(|&id| id == NONE) {
                        let c = self.tokenizer.tokens(text)[i];
                        out.truncate(start);
                        return Err(Error::UnknownToken(c.to_string()));
                    }
                }
                return Ok(());
            }
            out.truncate(start);
        }
        let mut err = None;
        self.tokenizer
            .for_each_token(text, |c| match self.id_of_char(c) {
                Ok(id) => out.push(id),
                Err(e) => {
                    if err.is_none() {
                        err = Some(e)
                    }
                }
            });
        err.map_or(Ok(()), Err)
    }

    /// [`Vocab::encode_into`] by the lookup tables: one load per character, and branch-free
    /// compaction (every id is written, the end advances past the kept ones only). Unknown
    /// characters become the unk id, or [`NONE`] without one. False (nothing appended) when the
    /// text needs the general path.
    fn encode_mapped(&self, text: &str, t: &CharTables, out: &mut Vec<u32>) -> bool {
        let start = out.len();
        let bytes = text.as_bytes();
        // one slot per byte is enough: a character of several bytes makes at most two tokens
        out.reserve(bytes.len());
        let slots = &mut out.spare_capacity_mut()[..bytes.len()];
        let mut n = 0;
        if text.is_ascii() {
            // the same without a branch per byte
            for &b in bytes {
                let id = self.ascii_tokens[b as usize & 127];
                slots[n].write(id);
                n += (id != DROP) as usize;
            }
        } else {
            let bmp: &[u32] = self.bmp_tokens.get_or_init(|| {
                // each entry is DROP, SLOW, or a token of the plane: its id, else unk (or NONE)
                let unk = self.unk.unwrap_or(NONE);
                t.bmp
                    .iter()
                    .map(|&v| {
                        let id = match v as usize {
                            _ if v == DROP || v == SLOW => return v,
                            cp if cp < 128 => self.ascii[cp],
                            cp => self.bmp.get(cp).copied().unwrap_or(NONE),
                        };
                        if id == NONE {
                            unk
                        } else {
                            id
                        }
                    })
                    .collect()
            });
            let mut i = 0;
            loop {
                let stop = map_chars(bytes, i, &self.ascii_tokens, bmp, slots, &mut n);
                let Some((c, next)) = stop else { break };
                let Some(few) = self.tokenizer.slow_char(c) else {
                    return false;
                };
                for &l in few.as_slice() {
                    slots[n].write(self.id_or_none(l));
                    n += 1;
                }
                i = next;
            }
        }
        // SAFETY: `slots[..n]`, the `n` slots after the first `start`, were written above
        unsafe { out.set_len(start + n) };
        true
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len());
        self.encode_into(text, &mut out)?;
        Ok(out)
    }

    /// Encodes many texts, in parallel.
    pub fn encode_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        texts
            .par_iter()
            .map(|t| {
                let t = t.as_ref();
                let mut out = Vec::with_capacity(t.len());
                self.encode_into(t, &mut out).map(|_| out)
            })
            .collect()
    }

    /// Ids of already tokenized tokens (each a token string of the vocabulary, or unknown).
    pub fn encode_tokens<S: AsRef<str>>(&self, tokens: &[S]) -> Result<Vec<u32>> {
        tokens
            .iter()
            .map(|t| {
                let t = t.as_ref();
                self.id_of(t)
                    .or(self.unk)
                    .ok_or_else(|| Error::UnknownToken(t.to_owned()))
            })
            .collect()
    }

    pub fn decode(&self, ids: &[i64]) -> Result<String> {
        let mut s = String::with_capacity(ids.len());
        for &id in ids {
            let t = usize::try_from(id)
                .ok()
                .and_then(|i| self.tokens.get(i))
                .ok_or_else(|| {
                    Error::invalid(
                        "ids",
                        format!("id {id} is out of range for a vocabulary of {}", self.len()),
                    )
                })?;
            s.push_str(t);
        }
        Ok(s)
    }
}

/// Tokenizes texts into ids numbered in the order their tokens are first met, for a pass that
/// must tokenize before the vocabulary is known (counting n-grams while the vocabulary is
/// found): [`FirstSeen::vocab`] builds the vocabulary of everything met, and
/// [`FirstSeen::id_map`] maps these ids to its ids. With the tokenizer's lookup tables, a
/// character costs one table load as in [`Vocab::encode_into`]: the tables start empty
/// ([`SLOW`]) and each character's entry is filled in the first time it is met.
#[derive(Clone, Debug)]
pub struct FirstSeen {
    tokenizer: Tokenizer,
    tables: Option<Arc<CharTables>>,
    /// ASCII byte -> id, [`DROP`], or [`SLOW`] (not met yet)
    ascii: [u32; 128],
    /// The same for the Basic Multilingual Plane (also [`SLOW`] where the tables say so).
    bmp: Vec<u32>,
    ids: FxHashMap<char, u32>,
    tokens: Vec<char>,
    reserved: u32,
}

impl FirstSeen {
    /// An empty numbering whose first `reserved` ids stand for something else (BOS and EOS).
    pub fn new(tokenizer: Tokenizer, reserved: u32) -> Self {
        let tables = tokenizer.char_tables();
        let bmp = if tables.is_some() {
            vec![SLOW; 0x10000]
        } else {
            Vec::new()
        };
        FirstSeen {
            tokenizer,
            tables,
            ascii: [SLOW; 128],
            bmp,
            ids: FxHashMap::default(),
            tokens: Vec::new(),
            reserved,
        }
    }

    /// The number of ids given out so far (the reserved ones included).
    pub fn id_space(&self) -> u32 {
        self.reserved + self.tokens.len() as u32
    }

    /// The tokens met so far, in the order of their ids (after the reserved ones).
    pub fn tokens(&self) -> &[char] {
        &self.tokens
    }

    fn id(&mut self, c: char) -> u32 {
        if let Some(&id) = self.ids.get(&c) {
            return id;
        }
        let id = self.id_space();
        self.ids.insert(c, id);
        self.tokens.push(c);
        id
    }

    /// Tokenizes `text` and appends the ids of its tokens to `out`.
    pub fn encode_into(&mut self, text: &str, out: &mut Vec<u32>) {
        // (taken out for the call and put back: no reference count to touch per document)
        if let Some(tables) = self.tables.take() {
            let done = self.encode_mapped(text, &tables, out);
            self.tables = Some(tables);
            if done {
                return;
            }
        }
        for c in self.tokenizer.tokens(text) {
            let id = self.id(c);
            out.push(id);
        }
    }

    /// [`FirstSeen::encode_into`] by the lookup tables, filling them in as characters are met;
    /// false (nothing appended) when the text needs the general path.
    fn encode_mapped(&mut self, text: &str, tables: &CharTables, out: &mut Vec<u32>) -> bool {
        let start = out.len();
        let bytes = text.as_bytes();
        // one slot per byte is enough, as in `Vocab::encode_mapped`
        out.reserve(bytes.len());
        let slots = &mut out.spare_capacity_mut()[..bytes.len()];
        let mut n = 0;
        let mut i = 0;
        loop {
            let stop = map_chars(bytes, i, &self.ascii, &self.bmp, slots, &mut n);
            let Some((c, next)) = stop else { break };
            // a character met for the first time, or one the tables leave to `slow_char`
            match tables.get(c) {
                SLOW => {
                    let Some(few) = self.tokenizer.slow_char(c) else {
                        return false;
                    };
                    for &l in few.as_slice() {
                        slots[n].write(self.id(l));
                        n += 1;
                    }
                }
                v => {
                    let id = match char::from_u32(v) {
                        Some(token) if v != DROP => self.id(token),
                        _ => DROP,
                    };
                    // (the tables give SLOW beyond the Basic Multilingual Plane)
                    if c.is_ascii() {
                        self.ascii[c as usize] = id;
                    } else {
                        self.bmp[c as usize] = id;
                    }
                    slots[n].write(id);
                    n += (id != DROP) as usize;
                }
            }
            i = next;
        }
        // SAFETY: `slots[..n]`, the `n` slots after the first `start`, were written above
        unsafe { out.set_len(start + n) };
        true
    }

    /// The vocabulary of the tokens met by all `parts` (numberings of shares of the same
    /// texts): `[unk] + sorted(distinct tokens)`, as [`Vocab::from_texts`] gives.
    pub fn vocab<'a>(
        parts: impl IntoIterator<Item = &'a FirstSeen>,
        unk: Option<&str>,
        tokenizer: Tokenizer,
    ) -> Result<Vocab> {
        let mut chars: Vec<char> = parts
            .into_iter()
            .flat_map(|p| p.tokens.iter().copied())
            .collect();
        chars.sort_unstable();
        chars.dedup();
        Vocab::from_chars(chars, unk, tokenizer)
    }

    /// The id in `vocab` of each id of this numbering past the reserved ones (indexed from 0).
    pub fn id_map(&self, vocab: &Vocab) -> Result<Vec<u32>> {
        self.tokens.iter().map(|&c| vocab.id_of_char(c)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_normalization() {
        let t = Tokenizer::default();
        assert_eq!(t.normalize_text("  Hello,  World!  "), "hello world ");
        assert_eq!(t.normalize_text("学ぶ。"), "学ぶ ");
        assert_eq!(t.normalize_text("。abc"), " abc");
        assert_eq!(t.normalize_text("a\u{1c}\u{3000}b"), "a b");
        assert_eq!(t.tokens("A b。"), vec!['a', 'b']);
        // the half-width comma is seed punctuation, the Japanese comma is not
        assert_eq!(t.tokens("あ､い、う"), vec!['あ', 'い', '、', 'う']);
    }

    #[test]
    fn final_sigma_and_special_casing() {
        let t = Tokenizer::default();
        assert_eq!(t.normalize_text("ΟΔΟΣ"), "οδος");
        assert_eq!(t.normalize_text("İ"), "i\u{307}");
    }

    #[test]
    fn py_space_matches_python() {
        for c in [
            '\u{1c}', '\u{1f}', '\u{85}', '\u{a0}', '\u{2028}', '\u{3000}',
        ] {
            assert!(is_py_space(c));
        }
        for c in ['\u{200b}', '\u{180e}', 'a'] {
            assert!(!is_py_space(c));
        }
    }

    #[test]
    fn vocab_roundtrip() {
        let texts = vec!["ba。".to_string(), "ca".to_string()];
        let v = Vocab::from_texts(&texts, Some("<unk>"), Tokenizer::default()).unwrap();
        assert_eq!(v.tokens(), &["<unk>", "a", "b", "c"]);
        assert_eq!(v.encode("abz").unwrap(), vec![1, 2, 0]);
        assert_eq!(v.decode(&[2, 1, 0]).unwrap(), "ba<unk>");
        assert!(v.decode(&[4]).is_err());
        let raw = Vocab::from_texts(&texts, None, Tokenizer::raw()).unwrap();
        assert_eq!(raw.tokens(), &["a", "b", "c", "。"]);
        assert!(matches!(raw.encode("z"), Err(Error::UnknownToken(_))));
    }

    #[test]
    fn lookup_tables_agree_with_the_general_path() {
        // every character of the Basic Multilingual Plane, some of the other planes, in runs
        // mixed with ASCII, through the tables (vocabulary and encoding) and one by one
        let all: String = (0u32..0x10000)
            .chain([0x1F600, 0x10400, 0x1D400, 0x20000])
            .filter_map(char::from_u32)
            .collect();
        let texts: Vec<String> = all
            .chars()
            .collect::<Vec<_>>()
            .chunks(61)
            .map(|c| format!("Ab, {} x", c.iter().collect::<String>()))
            .collect();
        let custom = Tokenizer {
            punctuation: CharSet::new(JA_PUNCTUATION),
            ..Tokenizer::default()
        };
        let no_lower = Tokenizer {
            lowercase: false,
            ..Tokenizer::default()
        };
        for tok in [Tokenizer::default(), custom, no_lower, Tokenizer::raw()] {
            assert!(tok.char_tables().is_some());
            let v = Vocab::from_texts(&texts, Some("<unk>"), tok.clone()).unwrap();
            let mut want: Vec<char> = texts.iter().flat_map(|t| tok.tokens(t)).collect();
            want.sort_unstable();
            want.dedup();
            let got: Vec<char> = v.tokens()[1..]
                .iter()
                .map(|t| t.chars().next().unwrap())
                .collect();
            assert_eq!(got, want);
            for t in &texts {
                let ids: Vec<u32> = tok
                    .tokens(t)
                    .iter()
                    .map(|&c| v.id_of_char(c).unwrap())
                    .collect();
                assert_eq!(v.encode(t).unwrap(), ids, "{t:?}");
            }
            // unknown characters: unk, or an error naming the first one
            let small = Vocab::from_texts(&["ab"], None, tok.clone()).unwrap();
            match small.encode("ab\u{3042}x") {
                Err(Error::UnknownToken(c)) => assert_eq!(c, "\u{3042}"),
                other => panic!("{other:?}"),
            }
        }
        // final sigma: the table path hands the document to the general path
        let v = Vocab::from_texts(&["ΟΔΟΣ ΣΑ"], Some("<unk>"), Tokenizer::default()).unwrap();
        assert!(v.id_of("ς").is_some() && v.id_of("σ").is_some());
        // ... and the vocabulary holds only the form that occurs
        let medial = Vocab::from_texts(&["ΣΑ", "b"], None, Tokenizer::default()).unwrap();
        assert_eq!(medial.tokens(), ["b", "α", "σ"]);
        let last = Vocab::from_texts(&["b", "ΟΣ"], None, Tokenizer::default()).unwrap();
        assert_eq!(last.tokens(), ["b", "ο", "ς"]);
        let t = Tokenizer::default();
        let want: Vec<u32> = t
            .tokens("ΟΔΟΣ ΣΑ")
            .iter()
            .map(|&c| v.id_of_char(c).unwrap())
            .collect();
        assert_eq!(v.encode("ΟΔΟΣ ΣΑ").unwrap(), want);
    }

    #[test]
    fn vocab_rejects_bad_tokens() {
        let t = Tokenizer::default();
        assert!(Vocab::new(vec!["a".into(), "a".into()], None, t.clone()).is_err());
        assert!(Vocab::new(vec!["ab".into()], None, t.clone()).is_err());
        assert!(Vocab::new(vec!["a".into()], Some("<unk>"), t).is_err());
    }
}
