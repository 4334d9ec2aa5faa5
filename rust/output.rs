//! The dedup output files' lines, written by the core: the kept records byte for byte, one
//! JSON row per removed document and per pair, with every document's id kept packed ([`Ids`]).
//!
//! The rows are the bytes Python's `json` module writes for the same values (what the engines
//! wrote before the core did): strings as `json.dumps(s, ensure_ascii=False)`, or with
//! `ensure_ascii=True` when a string holds a lone surrogate (ids and file names from Python may:
//! they arrive encoded with `surrogatepass`), so every output line is valid UTF-8 and reads back
//! as the same string; floats as Python's `repr`.

use crate::reader::Chunk;

/// Every document's id, packed (a few bytes per document besides the id itself).
#[derive(Clone, Debug, Default)]
pub struct Ids {
    buf: Vec<u8>,
    ends: Vec<u64>,
}

impl Ids {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn push(&mut self, id: &[u8]) {
        self.buf.extend_from_slice(id);
        self.ends.push(self.buf.len() as u64);
    }

    /// The ids of a sealed chunk's documents, in order.
    pub fn push_chunk(&mut self, chunk: &Chunk) {
        for i in 0..chunk.entries.len() {
            chunk.push_id(i, &mut self.buf);
            self.ends.push(self.buf.len() as u64);
        }
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(&self.buf[start..end])
    }

    /// Bytes held (ids and offsets).
    pub fn bytes(&self) -> usize {
        self.buf.len() + 8 * self.ends.len()
    }
}

/// `file:line`, the id of a record without one.
pub fn push_default_id(label: &[u8], line: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(label);
    out.push(b':');
    out.extend_from_slice(line.to_string().as_bytes());
}

/// `s` (UTF-8, or UTF-8 with encoded surrogates) as a JSON string literal, as Python's `json`
/// writes it: non-ASCII as it is, or every non-ASCII character escaped when `s` holds a
/// surrogate (which UTF-8 cannot carry).
pub fn push_quoted(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    if std::str::from_utf8(s).is_ok() {
        let mut last = 0;
        for (i, &b) in s.iter().enumerate() {
            if b < 0x20 || b == b'"' || b == b'\\' {
                out.extend_from_slice(&s[last..i]);
                push_escape(b as u32, out);
                last = i + 1;
            }
        }
        out.extend_from_slice(&s[last..]);
    } else {
        for c in code_points(s) {
            if (0x20..0x7f).contains(&c) && c != b'"' as u32 && c != b'\\' as u32 {
                out.push(c as u8);
            } else if c >= 0x10000 {
                let v = c - 0x10000;
                push_u_escape(0xd800 + (v >> 10), out);
                push_u_escape(0xdc00 + (v & 0x3ff), out);
            } else {
                push_escape(c, out);
            }
        }
    }
    out.push(b'"');
}

fn push_escape(c: u32, out: &mut Vec<u8>) {
    match c {
        0x22 => out.extend_from_slice(b"\\\""),
        0x5c => out.extend_from_slice(b"\\\\"),
        0x0a => out.extend_from_slice(b"\\n"),
        0x0d => out.extend_from_slice(b"\\r"),
        0x09 => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        _ => push_u_escape(c, out),
    }
}

fn push_u_escape(c: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
}

/// The code points of generalized UTF-8 (surrogates allowed); a stray byte stands for itself.
fn code_points(s: &[u8]) -> impl Iterator<Item = u32> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let b = *s.get(i)? as u32;
        let (n, init) = match b {
            0x00..=0x7f => (1, b),
            0xc0..=0xdf => (2, b & 0x1f),
            0xe0..=0xef => (3, b & 0x0f),
            0xf0..=0xf7 => (4, b & 0x07),
            _ => (1, b),
        };
        let tail = s
            .get(i + 1..i + n)
            .filter(|t| t.iter().all(|&c| c & 0xc0 == 0x80));
        match tail {
            Some(t) if n > 1 => {
                i += n;
                Some(
                    t.iter()
                        .fold(init, |acc, &c| (acc << 6) | (c as u32 & 0x3f)),
                )
            }
            _ => {
                i += 1;
                Some(b)
            }
        }
    })
}

/// `x` as Python's `repr` writes a float (`null` when not finite, as the engines write it).
pub fn push_float(x: f64, out: &mut Vec<u8>) {
    out.extend_from_slice(python_repr(x).as_bytes());
}

pub fn python_repr(x: f64) -> String {
    if !x.is_finite() {
        return "null".into();
    }
    // shortest round-trip digits and the exponent of the first one
    let sci = format!("{:e}", x.abs());
    let (mant, exp) = sci.split_once('e').expect("LowerExp has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent");
    let mut digits: String = mant.chars().filter(|c| *c != '.').collect();
    tie_to_even(x.abs(), exp, &mut digits);
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let decpt = exp + 1;
    if x == 0.0 {
        return format!("{sign}0.0");
    }
    if !(-4 < decpt && decpt <= 16) {
        let rest = &digits[1..];
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{}{frac}e{esign}{:02}", &digits[..1], exp.abs());
    }
    let n = digits.len() as i32;
    if decpt <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        format!("{sign}{digits}{}.0", "0".repeat((decpt - n) as usize))
    } else {
        let (a, b) = digits.split_at(decpt as usize);
        format!("{sign}{a}.{b}")
    }
}

/// Where two shortest digit strings are equally near `x` (it lies exactly halfway between them),
/// Python's `repr` takes the one with the even last digit, Rust's formatting the upper one:
/// `digits` (Rust's, of `x >= 0`) is moved down to the even one then. A tie needs the exact
/// value of `x` to have one digit more than `digits`, so only a float with few bits after the
/// binary point (a large one, as 562949953421312.25) can have one.
fn tie_to_even(x: f64, exp: i32, digits: &mut String) {
    let n = digits.len();
    let last = digits.as_bytes()[n - 1];
    if n < 2 || last.is_multiple_of(2) {
        return;
    }
    // x = m * 2^e exactly, m odd: its decimal expansion has max(0, -e) digits after the point
    let bits = x.to_bits();
    let (m, e) = match ((bits >> 52) & 0x7ff) as i32 {
        0 => (bits & ((1 << 52) - 1), -1074),
        b => ((bits & ((1 << 52) - 1)) | 1 << 52, b - 1075),
    };
    if m == 0 {
        return;
    }
    let e = e + m.trailing_zeros() as i32;
    // the exact value's significant digits: -e after the point (the last one a 5) and the
    // exp + 1 places from the first digit to the point, so it must be n + 1 (a cheap test that
    // keeps the exact formatting below from nearly every call)
    if (e < 0 && -e + exp + 1 != n as i32 + 1) || (e >= 0 && exp > 17) {
        return;
    }
    let exact = format!("{x:.0$}", (-e).max(0) as usize);
    let sig = exact.replace('.', "");
    let sig = sig.trim_start_matches('0').trim_end_matches('0');
    let mut down = digits.clone().into_bytes();
    down[n - 1] = last - 1;
    if sig.len() == n + 1 && sig.as_bytes()[..n] == down[..] && sig.ends_with('5') {
        let down = String::from_utf8(down).expect("ASCII digits");
        // and the lower string must read back as x (below a power of two the doubles are
        // closer together, and it may not)
        let again: Option<f64> = format!("{}.{}e{exp}", &down[..1], &down[1..]).parse().ok();
        if again == Some(x) {
            *digits = down;
        }
    }
}

/// A plain-text line as a record of an output corpus: `{"<id_field>": id, "<text_field>": text}`
/// and a newline (the text alone when the two fields have one name).
pub fn push_text_record(
    out: &mut Vec<u8>,
    id_field: &[u8],
    id: &[u8],
    text_field: &[u8],
    text: &str,
) {
    out.push(b'{');
    if id_field != text_field {
        push_quoted(id_field, out);
        out.extend_from_slice(b": ");
        push_quoted(id, out);
        out.extend_from_slice(b", ");
    }
    push_quoted(text_field, out);
    out.extend_from_slice(b": ");
    push_quoted(text.as_bytes(), out);
    out.extend_from_slice(b"}\n");
}

/// The lines of the three output files for a chunk numbered from `first`: its kept records,
/// one row per removed document, and (unless every pair is listed separately) one pair row per
/// removed document. `duplicate_of[d] < 0` keeps document `d`.
#[derive(Debug, Default)]
pub struct Rendered {
    pub kept: Vec<u8>,
    pub removed: Vec<u8>,
    pub pairs: Vec<u8>,
    pub n_kept: usize,
    pub n_removed: usize,
    /// Removed documents whose id is their kept document's: ids repeated across the inputs.
    pub n_same_id: usize,
}

/// `annotate`: every record goes to `kept`, with its decision added (see [`push_annotated`]).
pub fn render_chunk(
    chunk: &Chunk,
    first: usize,
    duplicate_of: &[i64],
    similarity: &[f64],
    ids: &Ids,
    pair_rows: bool,
    annotate: bool,
) -> Rendered {
    let mut r = Rendered::default();
    // the kept records are most of the chunk's bytes: one allocation, not a doubling series
    r.kept.reserve(chunk.raw.len() + duplicate_of.len());
    let (mut me, mut other) = (Vec::new(), Vec::new());
    for (i, (&d, &sim)) in duplicate_of.iter().zip(similarity).enumerate() {
        if d < 0 {
            let rec = chunk.record(i);
            if annotate {
                push_annotated(rec, (first + i) as u64, None, f64::NAN, &mut r.kept);
            } else {
                r.kept.extend_from_slice(rec);
                if !rec.ends_with(b"\n") {
                    r.kept.push(b'\n');
                }
            }
            r.n_kept += 1;
            continue;
        }
        r.n_removed += 1;
        me.clear();
        match ids.get(first + i) {
            Some(id) => push_quoted(id, &mut me),
            None => chunk.push_id(i, &mut me),
        }
        other.clear();
        push_quoted(ids.get(d as usize).unwrap_or_default(), &mut other);
        if annotate {
            push_annotated(chunk.record(i), d as u64, Some(&other), sim, &mut r.kept);
        }
        r.n_same_id += usize::from(other == me);
        let row = &mut r.removed;
        row.extend_from_slice(b"{\"id\": ");
        row.extend_from_slice(&me);
        row.extend_from_slice(format!(", \"cluster\": {d}, \"duplicate_of\": ").as_bytes());
        row.extend_from_slice(&other);
        row.extend_from_slice(b", \"jaccard\": ");
        push_float(sim, row);
        row.extend_from_slice(b", \"source\": ");
        push_quoted(&chunk.label, row);
        row.extend_from_slice(format!(", \"line\": {}}}\n", chunk.entries[i].line).as_bytes());
        if pair_rows {
            let row = &mut r.pairs;
            row.extend_from_slice(b"{\"id\": ");
            row.extend_from_slice(&me);
            row.extend_from_slice(b", \"duplicate_of\": ");
            row.extend_from_slice(&other);
            row.extend_from_slice(b", \"jaccard\": ");
            push_float(sim, row);
            row.extend_from_slice(b"}\n");
        }
    }
    r
}

/// The name of the field `--annotate` adds to every record.
pub const ANNOTATION_FIELD: &str = "dedup";

/// A record (a JSON object, maybe followed by a line ending) with its decision added as the
/// last field: `"dedup": {"keep": .., "cluster": .., "duplicate_of": .., "jaccard": ..}`, with
/// `duplicate_of` (the kept document's id, already quoted) and `jaccard` null for a kept
/// document. The record's own bytes are kept; a line ending is added when it has none.
pub fn push_annotated(
    rec: &[u8],
    cluster: u64,
    duplicate_of: Option<&[u8]>,
    jaccard: f64,
    out: &mut Vec<u8>,
) {
    // the reader only passes on JSON objects, and makes one of a text line
    let close = rec.iter().rposition(|&b| b == b'}').unwrap_or(rec.len());
    let (body, tail) = rec.split_at(close);
    out.extend_from_slice(body);
    let open = body.iter().position(|&b| b == b'{').map_or(0, |p| p + 1);
    if body[open..].iter().any(|b| !b.is_ascii_whitespace()) {
        out.extend_from_slice(b", ");
    }
    push_quoted(ANNOTATION_FIELD.as_bytes(), out);
    out.extend_from_slice(b": {\"keep\": ");
    out.extend_from_slice(if duplicate_of.is_none() {
        b"true"
    } else {
        b"false"
    });
    out.extend_from_slice(format!(", \"cluster\": {cluster}, \"duplicate_of\": ").as_bytes());
    out.extend_from_slice(duplicate_of.unwrap_or(b"null"));
    out.extend_from_slice(b", \"jaccard\": ");
    push_float(jaccard, out);
    out.push(b'}');
    out.extend_from_slice(tail);
    if !tail.ends_with(b"\n") {
        out.push(b'\n');
    }
}

/// One row per verified pair (`all_pairs`): `{"id_a", "id_b", "jaccard"}`.
pub fn render_pairs(ids: &Ids, i: &[u64], j: &[u64], jaccard: &[f64]) -> Vec<u8> {
    let mut out = Vec::new();
    for ((&a, &b), &x) in i.iter().zip(j).zip(jaccard) {
        out.extend_from_slice(b"{\"id_a\": ");
        push_quoted(ids.get(a as usize).unwrap_or_default(), &mut out);
        out.extend_from_slice(b", \"id_b\": ");
        push_quoted(ids.get(b as usize).unwrap_or_default(), &mut out);
        out.extend_from_slice(b", \"jaccard\": ");
        push_float(x, &mut out);
        out.extend_from_slice(b"}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &[u8]) -> String {
        let mut out = Vec::new();
        push_quoted(s, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn quoting_is_pythons() {
        assert_eq!(q(b"plain"), "\"plain\"");
        assert_eq!(
            q("a\"b\\c\nd\te\u{1}\u{7f}é".as_bytes()),
            "\"a\\\"b\\\\c\\nd\\te\\u0001\u{7f}é\""
        );
        // a lone surrogate (U+D800, as Python's surrogatepass encodes it): everything escaped
        assert_eq!(
            q(b"\xed\xa0\x80\xc3\xa9\xf0\x9f\x98\x80\x7f"),
            "\"\\ud800\\u00e9\\ud83d\\ude00\\u007f\""
        );
    }

    #[test]
    fn floats_are_pythons_repr() {
        for (x, want) in [
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.8, "0.8"),
            (6.0 / 7.0, "0.8571428571428571"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123.25, "123.25"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            // exactly halfway between two shortest strings: the even last digit, as Python
            (562_949_953_421_312.2, "562949953421312.2"),
            (562_949_953_421_312.8, "562949953421312.8"),
            (-281_474_976_710_656.1, "-281474976710656.1"),
            // halfway too, but the lower string reads back as the double below
            (2f64.powi(-24), "5.960464477539063e-08"),
            (f64::NAN, "null"),
        ] {
            assert_eq!(python_repr(x), want, "{x}");
        }
    }
}
