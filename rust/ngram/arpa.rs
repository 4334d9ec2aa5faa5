//! ARPA files: the text format of backoff n-gram models (SRILM, KenLM), written from and read
//! into [`Model`]s in backoff form.
//!
//! ```text
//! \data\
//! ngram 1=3            how many n-grams of each order
//!
//! \1-grams:
//! -1.2  a  -0.3        log10 P(w), the token(s), log10 backoff (absent: 0; at the highest order)
//! ...
//! \end\
//! ```
//! A model read from a file scores with standard backoff, sentences as KenLM does (one `<s>` as
//! context, `</s>` predicted); a token that is not in the file is `<unk>`, with the file's
//! probability for it, or, when the file has none, `log10 P = -100` as KenLM gives it.

use std::borrow::Cow;
use std::io::{BufRead, Write};

use rayon::slice::ParallelSliceMut;

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::ngram::model::{
    modified_kneser_ney_orders, Backoff, Counts, KnDiscounts, Model, Padding, Shape,
};
use crate::ngram::words::WordIndex;

/// What `log10` a zero probability is written as (as SRILM and KenLM write `<s>`'s).
const LOG10_ZERO: f64 = -99.0;
/// KenLM's probability for `<unk>` when a file has none.
const LOG10_MISSING_UNK: f64 = -100.0;

fn log10(ln: f64) -> f64 {
    if ln == f64::NEG_INFINITY {
        LOG10_ZERO
    } else {
        ln / std::f64::consts::LN_10
    }
}

/// A stored n-gram: its packed key and `(ln P, ln b)`.
type Entry = (u128, (f64, f64));

/// The words that name ids `0..count()` in an ARPA file: a list, or a [`WordIndex`] (which
/// holds them in one string: a list made from it held a second copy while the file was written).
pub trait Words: Sync {
    fn count(&self) -> usize;
    fn word(&self, id: u32) -> &str;
}

impl Words for [String] {
    fn count(&self) -> usize {
        self.len()
    }
    fn word(&self, id: u32) -> &str {
        &self[id as usize]
    }
}

/// (a `Vec` as its slice: a slice cannot be made a `dyn Words` itself)
impl Words for Vec<String> {
    fn count(&self) -> usize {
        self.as_slice().count()
    }
    fn word(&self, id: u32) -> &str {
        self.as_slice().word(id)
    }
}

impl Words for WordIndex {
    fn count(&self) -> usize {
        self.len()
    }
    fn word(&self, id: u32) -> &str {
        WordIndex::word(self, id)
    }
}

/// An error unless `words` can name ids `0..vocab` in an ARPA file.
fn check_words(s: &Shape, words: &(impl Words + ?Sized)) -> Result<()> {
    if words.count() != s.vocab as usize {
        return Err(Error::invalid(
            "words",
            format!("{} words for {} ids", words.count(), s.vocab),
        ));
    }
    for (i, w) in (0..words.count() as u32).map(|i| (i, words.word(i))) {
        if w.is_empty() || w.chars().any(char::is_whitespace) || w == "<s>" || w == "</s>" {
            return Err(Error::invalid(
                "vocab",
                format!(
                    "token {w:?} (id {i}) cannot be an ARPA word (ARPA words are separated by \
                     white space, and <s>, </s> are the sentence marks)"
                ),
            ));
        }
    }
    Ok(())
}

fn io_error(e: std::io::Error) -> Error {
    Error::invalid("path", format!("cannot write the ARPA file: {e}"))
}

/// Writes the text of an ARPA file section by section: the header from the unigrams and the
/// sizes of the other orders, then each order's n-grams in key order.
struct Writer<'a, W: Write> {
    s: Shape,
    out: &'a mut W,
    names: Vec<&'a [u8]>,
    floats: zmij::Buffer,
    buf: Vec<u8>,
    ids: Vec<u32>,
    /// The unigrams a reader needs whatever the model counted (<s>, </s>), with `ln P`.
    extra: Vec<(u32, f64)>,
    /// `ln P` of the `<unk>` line to add, when the vocabulary has no counted `<unk>`.
    unk_line: Option<f64>,
}

impl<'a, W: Write> Writer<'a, W> {
    /// Writes the header. `unigrams` are the model's unigram keys in order, `sizes` the number
    /// of n-grams of each order (the unigrams' own included), `oov` the `ln P` of an unseen
    /// token.
    fn start(
        s: Shape,
        words: &'a (impl Words + ?Sized),
        unk: Option<u32>,
        unigrams: impl Fn(u32) -> bool,
        sizes: &[usize],
        oov: f64,
        out: &'a mut W,
    ) -> Result<Self> {
        let name = |id: u32| -> &'a [u8] {
            if id == s.bos() {
                b"<s>"
            } else if id == s.eos() {
                b"</s>"
            } else {
                words.word(id).as_bytes()
            }
        };
        let mut extra: Vec<(u32, f64)> = Vec::new();
        for id in [s.bos(), s.eos()] {
            if !unigrams(id) {
                extra.push((id, f64::NEG_INFINITY));
            }
        }
        let unk_line = match unk {
            Some(u) if unigrams(u) => None,
            _ => Some(oov),
        };
        let mut head = String::new();
        head.push_str("\\data\\\n");
        for (k, &size) in (1..).zip(sizes) {
            let extra_k = if k == 1 {
                extra.len() + unk_line.is_some() as usize
            } else {
                0
            };
            head.push_str(&format!("ngram {k}={}\n", size + extra_k));
        }
        out.write_all(head.as_bytes()).map_err(io_error)?;
        Ok(Writer {
            s,
            out,
            names: (0..s.vocab + 2).map(name).collect(),
            floats: zmij::Buffer::new(),
            buf: Vec::with_capacity(1 << 21),
            ids: Vec::new(),
            extra,
            unk_line,
        })
    }

    /// log10 of `ln` in the shortest form that reads back to the same f64.
    fn number(&mut self, ln: f64) {
        self.buf
            .extend_from_slice(self.floats.format(log10(ln)).as_bytes());
    }

    fn line(&mut self, k: usize, lp: f64, bo: f64) {
        self.number(lp);
        self.buf.push(b'\t');
        for (i, &id) in self.ids.iter().enumerate() {
            if i > 0 {
                self.buf.push(b' ');
            }
            self.buf.extend_from_slice(self.names[id as usize]);
        }
        if k < self.s.order {
            self.buf.push(b'\t');
            self.number(bo);
        }
        self.buf.push(b'\n');
    }

    /// Writes the section of order `k`: `entry(j)` is the key and `(ln P, ln b)` of its j-th
    /// n-gram of `len`, in key order.
    fn section(&mut self, k: usize, len: usize, entry: impl Fn(usize) -> Entry) -> Result<()> {
        self.buf
            .extend_from_slice(format!("\n\\{k}-grams:\n").as_bytes());
        if k == 1 {
            if let Some(lp) = self.unk_line {
                self.number(lp);
                self.buf.extend_from_slice(if self.s.order > 1 {
                    b"\t<unk>\t0\n"
                } else {
                    b"\t<unk>\n"
                });
            }
            for (id, lp) in std::mem::take(&mut self.extra) {
                self.ids.clear();
                self.ids.push(id);
                self.line(k, lp, 0.0);
            }
        }
        for j in 0..len {
            let (key, (lp, bo)) = entry(j);
            self.ids.clear();
            unpack(&self.s, key, k, &mut self.ids);
            self.line(k, lp, bo);
            if self.buf.len() > 1 << 20 {
                self.out.write_all(&self.buf).map_err(io_error)?;
                self.buf.clear();
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        self.out.write_all(&self.buf).map_err(io_error)?;
        self.out.write_all(b"\n\\end\\\n").map_err(io_error)?;
        Ok(())
    }
}

/// Writes `model` (in backoff form) as an ARPA file. `words` names ids `0..vocab`; `unk` is
/// the id of `<unk>` when the vocabulary has one (else a `<unk>` line is added with the model's
/// probability for unseen tokens).
pub fn write<W: Write>(
    model: &Model,
    words: &(impl Words + ?Sized),
    unk: Option<u32>,
    out: &mut W,
) -> Result<()> {
    let s = model.shape;
    if !model.is_backoff() {
        return Err(Error::invalid(
            "smoothing",
            "an add-k model has a probability of its own for every n-gram, which ARPA's backoff \
             form cannot hold; ARPA files are written for mle, witten-bell, \
             absolute-discount, kneser-ney and stupid-backoff models",
        ));
    }
    check_words(&s, words)?;
    // each order's n-grams in key order: as estimated, or sorted from the hash tables
    let (tables, oov): (Vec<Cow<'_, [Entry]>>, f64) = match model.sorted_backoff() {
        Some(sorted) => (
            sorted
                .tables
                .iter()
                .map(|t| Cow::Borrowed(&t[..]))
                .collect(),
            sorted.oov,
        ),
        None => {
            let b = model.backoff().expect("a backoff model");
            let tables = b
                .tables
                .iter()
                .map(|t| {
                    let mut keys: Vec<Entry> = t.iter().map(|(&g, &e)| (g, e)).collect();
                    keys.par_sort_unstable_by_key(|e| e.0);
                    Cow::Owned(keys)
                })
                .collect();
            (tables, b.oov)
        }
    };
    let has_unigram = |id: u32| {
        tables[0]
            .binary_search_by_key(&(id as u128), |e| e.0)
            .is_ok()
    };
    let sizes: Vec<usize> = tables.iter().map(|t| t.len()).collect();
    let mut w = Writer::start(s, words, unk, has_unigram, &sizes, oov, out)?;
    for (k, table) in (1..).zip(&tables) {
        w.section(k, table.len(), |j| table[j])?;
    }
    w.finish()
}

/// Estimates modified Kneser-Ney from `counts` and writes it as an ARPA file (as
/// `write(&Model::estimate(counts, ModifiedKneserNey), ...)` would, byte for byte) one order at a
/// time, without holding the model: each order is written as soon as its probabilities are
/// computed. Returns the discounts of each order and whether each fell back to KenLM's.
pub fn write_modified_kneser_ney<W: Write>(
    counts: &Counts,
    words: &(impl Words + ?Sized),
    unk: Option<u32>,
    out: &mut W,
) -> Result<KnDiscounts> {
    let s = counts.shape;
    check_words(&s, words)?;
    let mut writer: Option<Writer<'_, W>> = None;
    let mut out = Some(out);
    let discounts = modified_kneser_ney_orders(counts, |o| {
        if o.k == 1 {
            let sizes: Vec<usize> = (1..=s.order)
                .map(|k| {
                    if k == 1 {
                        o.keys.len()
                    } else {
                        counts.distinct(k)
                    }
                })
                .collect();
            let has_unigram = |id: u32| o.keys.binary_search(&(id as u128)).is_ok();
            let out = out.take().expect("order 1 comes once, first");
            writer = Some(Writer::start(
                s,
                words,
                unk,
                has_unigram,
                &sizes,
                o.oov,
                out,
            )?);
        }
        let w = writer.as_mut().expect("the header is written with order 1");
        w.section(o.k, o.keys.len(), |j| {
            (o.keys[j], (o.log_probs[j], o.backoff(j)))
        })
    })?;
    writer.expect("at least one order").finish()?;
    Ok(discounts)
}

fn unpack(s: &Shape, key: u128, k: usize, out: &mut Vec<u32>) {
    let width = bits_of(s);
    let m = (1u128 << width) - 1;
    for i in (0..k).rev() {
        out.push(((key >> (i as u32 * width)) & m) as u32);
    }
}

fn bits_of(s: &Shape) -> u32 {
    // the key of [1, 0] is 1 << bits
    s.key(&[1, 0]).trailing_zeros()
}

/// A model read from an ARPA file, with its words (ids `0..vocab`) and the id of `<unk>`.
pub struct Arpa {
    pub model: Model,
    pub words: Vec<String>,
    pub unk: u32,
}

/// Reads an ARPA file; `source` names it in errors.
pub fn read<R: BufRead>(mut input: R, source: &str) -> Result<Arpa> {
    let mut lineno = 0usize;
    let mut line = String::new();
    let bad = |lineno: usize, msg: String| Error::Corrupt(format!("{source}:{lineno}: {msg}"));
    let mut next = |line: &mut String, lineno: &mut usize| -> Result<bool> {
        line.clear();
        *lineno += 1;
        match input.read_line(line) {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(Error::Corrupt(format!(
                "{source}:{lineno}: cannot read: {e}"
            ))),
        }
    };
    // header
    loop {
        if !next(&mut line, &mut lineno)? {
            return Err(bad(lineno, "no \\data\\ section: not an ARPA file".into()));
        }
        if line.trim() == "\\data\\" {
            break;
        }
    }
    let mut declared: Vec<usize> = Vec::new();
    loop {
        if !next(&mut line, &mut lineno)? {
            return Err(bad(
                lineno,
                "the file ends inside the \\data\\ section".into(),
            ));
        }
        let t = line.trim();
        if t.is_empty() {
            if declared.is_empty() {
                continue;
            }
            break;
        }
        let Some(rest) = t.strip_prefix("ngram ") else {
            return Err(bad(lineno, format!("expected 'ngram N=COUNT', got {t:?}")));
        };
        let (k, c) = rest
            .split_once('=')
            .and_then(|(k, c)| {
                Some((
                    k.trim().parse::<usize>().ok()?,
                    c.trim().parse::<usize>().ok()?,
                ))
            })
            .ok_or_else(|| bad(lineno, format!("expected 'ngram N=COUNT', got {t:?}")))?;
        if k != declared.len() + 1 {
            return Err(bad(lineno, format!("ngram {k}= out of order")));
        }
        declared.push(c);
    }
    let n = declared.len();
    // sections: (ids as words, log10 p, log10 bo)
    let mut grams: Vec<Vec<(Vec<u32>, f64, f64)>> = vec![Vec::new(); n];
    let mut ids: FxHashMap<String, u32> = FxHashMap::default();
    let mut words: Vec<String> = Vec::new();
    const BOS: u32 = u32::MAX - 1;
    const EOS: u32 = u32::MAX;
    let mut k = 0usize;
    loop {
        if !next(&mut line, &mut lineno)? {
            return Err(bad(lineno, "the file ends before \\end\\".into()));
        }
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if t == "\\end\\" {
            break;
        }
        if t.starts_with('\\') {
            let want = format!("\\{}-grams:", k + 1);
            if t != want {
                return Err(bad(lineno, format!("expected {want}, got {t:?}")));
            }
            k += 1;
            if k > n {
                return Err(bad(
                    lineno,
                    format!("a {k}-gram section, but \\data\\ declares {n} orders"),
                ));
            }
            continue;
        }
        if k == 0 {
            return Err(bad(lineno, format!("an n-gram before any section: {t:?}")));
        }
        let mut fields = t.split_whitespace();
        let lp: f64 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad(lineno, format!("expected a log10 probability first: {t:?}")))?;
        let mut gram = Vec::with_capacity(k);
        for _ in 0..k {
            let w = fields
                .next()
                .ok_or_else(|| bad(lineno, format!("a {k}-gram needs {k} words: {t:?}")))?;
            let id = match w {
                "<s>" => BOS,
                "</s>" => EOS,
                _ => match ids.get(w) {
                    Some(&id) => id,
                    None if k == 1 => {
                        let id = words.len() as u32;
                        ids.insert(w.to_string(), id);
                        words.push(w.to_string());
                        id
                    }
                    None => return Err(bad(lineno, format!("{w:?} has no unigram"))),
                },
            };
            gram.push(id);
        }
        let bo: f64 = match fields.next() {
            None => 0.0,
            Some(f) => f
                .parse()
                .map_err(|_| bad(lineno, format!("expected a log10 backoff last: {t:?}")))?,
        };
        if fields.next().is_some() {
            return Err(bad(
                lineno,
                format!("too many fields for a {k}-gram: {t:?}"),
            ));
        }
        grams[k - 1].push((gram, lp, bo));
    }
    for (k, (g, &d)) in grams.iter().zip(&declared).enumerate() {
        if g.len() != d {
            return Err(Error::Corrupt(format!(
                "{source}: \\data\\ declares {d} {}-grams, the file has {}",
                k + 1,
                g.len()
            )));
        }
    }
    let unk_given = ids.get("<unk>").copied();
    let unk = unk_given.unwrap_or_else(|| {
        words.push("<unk>".to_string());
        words.len() as u32 - 1
    });
    let vocab = words.len() as u32;
    let shape = Shape::new(n.max(1), vocab, Padding::Sentence)
        .map_err(|e| Error::Corrupt(format!("{source}: {e}")))?;
    let to_ln = |x: f64| x * std::f64::consts::LN_10;
    let mut tables: Vec<FxHashMap<u128, (f64, f64)>> = vec![FxHashMap::default(); n];
    for (k, g) in grams.into_iter().enumerate() {
        tables[k].reserve(g.len());
        for (mut gram, lp, bo) in g {
            for id in gram.iter_mut() {
                *id = match *id {
                    BOS => shape.bos(),
                    EOS => shape.eos(),
                    x => x,
                };
            }
            tables[k].insert(shape.key(&gram), (to_ln(lp), to_ln(bo)));
        }
    }
    let oov = match unk_given {
        Some(u) => tables[0][&(u as u128)].0,
        None => to_ln(LOG10_MISSING_UNK),
    };
    let model = Model::from_backoff(
        shape,
        Backoff {
            tables,
            missing: 0.0,
            oov,
        },
    );
    Ok(Arpa { model, words, unk })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ngram::model::{Counts, Smoothing};

    #[test]
    fn round_trip_keeps_every_probability() {
        let shape = Shape::new(3, 3, Padding::Sentence).unwrap();
        let mut c = Counts::new(shape);
        c.add(&[0, 1, 0, 1, 1, 0], &[3, 6]).unwrap();
        let words = vec!["a".to_string(), "b".to_string(), "<unk>".to_string()];
        for sm in [
            Smoothing::ModifiedKneserNey,
            Smoothing::WittenBell,
            Smoothing::KneserNey(0.1),
        ] {
            let m = Model::estimate(&c, sm).unwrap();
            let mut out = Vec::new();
            write(&m, &words, Some(2), &mut out).unwrap();
            let back = read(&out[..], "mem").unwrap();
            let mut sorted = back.words.clone();
            sorted.sort();
            assert_eq!(sorted, ["<unk>", "a", "b"]);
            // (no <unk>: these models give it nothing, which ARPA writes as -99)
            let docs = [0u32, 1, 1, 1, 0, 0, 1];
            let renamed: Vec<u32> = docs
                .iter()
                .map(|&i| {
                    back.words
                        .iter()
                        .position(|w| *w == words[i as usize])
                        .unwrap() as u32
                })
                .collect();
            let want = m.score(&docs, &[3, 7]).unwrap();
            let got = back.model.score(&renamed, &[3, 7]).unwrap();
            for (a, b) in want.iter().zip(&got) {
                assert!(
                    (a.nll - b.nll).abs() < 1e-9 * a.nll.abs().max(1.0),
                    "{sm:?} {a:?} {b:?}"
                );
            }
        }
        assert!(read(&b"hello\n"[..], "x").is_err());
        assert!(read(
            &b"\\data\\\nngram 1=2\n\n\\1-grams:\n-1\ta\n\\end\\\n"[..],
            "x"
        )
        .is_err());
    }

    #[test]
    fn written_as_estimated_equals_written_from_the_model() {
        // every padding, orders 1-5, documents of many lengths over a few ids (so that the
        // counts of counts vary and some orders fall back to KenLM's discounts)
        let mut state = 7u64;
        let mut next = |m: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % m
        };
        let (mut ids, mut ends) = (Vec::new(), Vec::new());
        for _ in 0..300 {
            let len = next(12);
            ids.extend((0..len).map(|_| next(6).min(next(6)) as u32));
            ends.push(ids.len());
        }
        let words: Vec<String> = ["a", "b", "c", "d", "e", "<unk>"]
            .map(String::from)
            .to_vec();
        for padding in [Padding::Sentence, Padding::Both, Padding::None] {
            for order in 1..=5 {
                let mut c = Counts::new(Shape::new(order, 6, padding).unwrap());
                c.add(&ids, &ends).unwrap();
                let m =
                    Model::estimate(&c, crate::ngram::model::Smoothing::ModifiedKneserNey).unwrap();
                for unk in [Some(5), None] {
                    let (mut want, mut got) = (Vec::new(), Vec::new());
                    write(&m, &words, unk, &mut want).unwrap();
                    let (d, f) = write_modified_kneser_ney(&c, &words, unk, &mut got).unwrap();
                    assert!(want == got, "{padding:?} order {order} unk {unk:?}");
                    assert_eq!((d, f), (m.discounts.clone(), m.fallback.clone()));
                }
            }
        }
        let empty = Counts::new(Shape::new(3, 6, Padding::Sentence).unwrap());
        assert!(write_modified_kneser_ney(&empty, &words, None, &mut Vec::new()).is_err());
        let c = {
            let mut c = Counts::new(Shape::new(2, 6, Padding::Sentence).unwrap());
            c.add(&ids, &ends).unwrap();
            c
        };
        assert!(write_modified_kneser_ney(&c, &words[..5], None, &mut Vec::new()).is_err());
    }
}
