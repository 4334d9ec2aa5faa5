//! A fast scan of the common JSON line: one flat object whose values are strings, numbers,
//! `true`, `false` or `null`, its keys without escapes, its strings without `\u` escapes or
//! control characters. For such a line [`scan`] decodes the text field as it passes over it
//! (sixteen bytes at a time, one pass where parsing and then decoding took two) and finds the
//! raw value of the id field; for any other line it says so, and the caller parses it with
//! `serde_json`, so a line this accepts is one the full parser reads the same way (tested against
//! it on generated lines).
//!
//! The subset is a strict part of JSON: what it accepts, `serde_json` accepts with the same
//! values; nothing it rejects is called invalid here (the full parser decides).

/// The text field's value when it is a string, decoded (`Err(())` when it is another value),
/// and the raw JSON of the id field's value; `None` for an absent field. The last of repeated
/// keys counts, as in Python's `json` and `serde_json` maps.
pub type Found<'a> = (Option<Result<String, ()>>, Option<&'a str>);

/// The text and the id of `text_field` and `id_field` when `line` is a flat object of the subset
/// (see the module documentation), with nothing but JSON white space around it; `None` when it
/// is anything else (the caller then parses it fully).
pub fn scan<'a>(line: &'a str, text_field: &str, id_field: Option<&str>) -> Option<Found<'a>> {
    let b = line.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    let (mut text, mut id) = (None, None);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            // a key: a string without escapes
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let end = string_end(b, i, None)?;
            let key = &line[i + 1..end - 1];
            if key.contains('\\') {
                return None;
            }
            i = skip_ws(b, end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(b, i + 1);
            let start = i;
            if key == text_field {
                if b.get(i) == Some(&b'"') {
                    let mut out = Vec::with_capacity(b.len() - i);
                    i = string_end(b, i, Some(&mut out))?;
                    // SAFETY: `out` is the line's UTF-8 between its escapes (which `string_end`
                    // only takes whole, as the ASCII characters they stand for)
                    text = Some(Ok(unsafe { String::from_utf8_unchecked(out) }));
                } else {
                    i = value_end(b, i)?;
                    text = Some(Err(()));
                }
            } else {
                i = value_end(b, i)?;
                if Some(key) == id_field {
                    id = Some(&line[start..i]);
                }
            }
            i = skip_ws(b, i);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(b, i) == b.len()).then_some((text, id))
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The end (one past the closing quote) of the string starting at `b[i] == b'"'`, for a string
/// of the subset: escapes other than `\u`, no control characters. With `out`, the string's
/// value is appended to it.
fn string_end(b: &[u8], i: usize, mut out: Option<&mut Vec<u8>>) -> Option<usize> {
    let mut j = i + 1;
    loop {
        let k = match out.as_deref_mut() {
            Some(o) => copy_plain(b, j, o)?,
            None => next_special(b, j)?,
        };
        match b[k] {
            b'"' => return Some(k + 1),
            b'\\' => {
                let c = match b.get(k + 1)? {
                    c @ (b'"' | b'\\' | b'/') => *c,
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    _ => return None,
                };
                if let Some(o) = out.as_deref_mut() {
                    o.push(c);
                }
                j = k + 2;
            }
            _ => return None,
        }
    }
}

/// The sixteen bytes at `b[j..]` and the mask of those that end a run of plain string bytes:
/// a quote, a backslash or a control character (below 0x20).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn special16(b: &[u8], j: usize) -> (std::arch::x86_64::__m128i, u32) {
    use std::arch::x86_64::*;
    assert!(j + 16 <= b.len());
    // SAFETY: SSE2 is part of x86_64; the load reads b[j..j + 16], inside the slice (asserted)
    unsafe {
        let x = _mm_loadu_si128(b.as_ptr().add(j).cast());
        let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
        let slash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
        // x <= 0x1f unsigned: max(x, 0x1f) == 0x1f
        let low = _mm_set1_epi8(0x1f);
        let control = _mm_cmpeq_epi8(_mm_max_epu8(x, low), low);
        let mask = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, slash), control)) as u32;
        (x, mask)
    }
}

/// The first byte at or after `j` that ends a run of plain string bytes: a quote, a backslash or
/// a control character (below 0x20). Sixteen bytes at a time.
#[cfg(target_arch = "x86_64")]
fn next_special(b: &[u8], mut j: usize) -> Option<usize> {
    while j + 16 <= b.len() {
        let (_, mask) = special16(b, j);
        if mask != 0 {
            return Some(j + mask.trailing_zeros() as usize);
        }
        j += 16;
    }
    next_special_tail(b, j)
}

/// [`next_special`], appending the plain bytes before it to `out`: each block of sixteen is
/// stored whole into `out`'s spare room and the length moved past its plain bytes only (a text
/// of source code has an escape every 30 bytes or so: a copy call for each run between them cost
/// 3% of a dedup run's CPU time).
#[cfg(target_arch = "x86_64")]
fn copy_plain(b: &[u8], mut j: usize, out: &mut Vec<u8>) -> Option<usize> {
    use std::arch::x86_64::*;
    while j + 16 <= b.len() {
        let (x, mask) = special16(b, j);
        out.reserve(16);
        let len = out.len();
        // SAFETY: `reserve` made room for 16 more bytes; `set_len` below counts only the plain
        // ones, all of them written by the store
        unsafe { _mm_storeu_si128(out.as_mut_ptr().add(len).cast(), x) };
        let plain = if mask != 0 {
            mask.trailing_zeros() as usize
        } else {
            16
        };
        // SAFETY: the first `plain` bytes past `len` were written just above
        unsafe { out.set_len(len + plain) };
        if mask != 0 {
            return Some(j + plain);
        }
        j += 16;
    }
    let k = next_special_tail(b, j)?;
    out.extend_from_slice(&b[j..k]);
    Some(k)
}

#[cfg(not(target_arch = "x86_64"))]
fn next_special(b: &[u8], j: usize) -> Option<usize> {
    next_special_tail(b, j)
}

#[cfg(not(target_arch = "x86_64"))]
fn copy_plain(b: &[u8], j: usize, out: &mut Vec<u8>) -> Option<usize> {
    let k = next_special_tail(b, j)?;
    out.extend_from_slice(&b[j..k]);
    Some(k)
}

fn next_special_tail(b: &[u8], j: usize) -> Option<usize> {
    let k = b
        .get(j..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    Some(j + k)
}

/// The end of the value of the subset starting at `b[i]`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i, None),
        b't' => literal(b, i, b"true"),
        b'f' => literal(b, i, b"false"),
        b'n' => literal(b, i, b"null"),
        b'-' | b'0'..=b'9' => number_end(b, i),
        _ => None,
    }
}

fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    b[i..].starts_with(word).then_some(i + word.len())
}

/// The end of a JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], i: usize| {
        let n = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        (n > 0).then_some(i + n)
    };
    if b[i] == b'-' {
        i += 1;
    }
    i = match b.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(b, i)?,
        _ => return None,
    };
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1)?;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        i = digits(b, i)?;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `serde_json` says: the raw values of the two fields of a valid object, `None` for
    /// anything that is not a JSON object.
    fn full(line: &str) -> Option<(Option<String>, Option<String>)> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let obj = v.as_object()?;
        let text = obj.get("text").map(|v| match v {
            serde_json::Value::String(_) => v.to_string(),
            _ => "(not a string)".into(),
        });
        Some((text, obj.get("id").map(|v| v.to_string())))
    }

    /// The fast scan's values, parsed and written again as `full` writes them.
    fn fast(line: &str) -> Option<(Option<String>, Option<String>)> {
        let (t, i) = scan(line, "text", Some("id"))?;
        let text = match t {
            None => None,
            Some(Ok(t)) => Some(serde_json::Value::String(t).to_string()),
            // not a string: the value is checked against the full parser's by type
            Some(Err(())) => Some("(not a string)".into()),
        };
        let id = i.map(|r| {
            serde_json::from_str::<serde_json::Value>(r)
                .expect("a value the scan took parses")
                .to_string()
        });
        Some((text, id))
    }

    #[test]
    fn common_lines() {
        let line =
            "{\"id\": \"d1\", \"text\": \"a \\\"b\\\"\\n\\tc\", \"n\": -1.5e3, \"ok\": true}\n";
        assert_eq!(
            scan(line, "text", Some("id")),
            Some((Some(Ok("a \"b\"\n\tc".into())), Some("\"d1\"")))
        );
        assert_eq!(scan(" {} ", "text", None), Some((None, None)));
        // the last of repeated keys
        assert_eq!(
            scan(r#"{"text":"a","text":"b\/\b\f\r"}"#, "text", None),
            Some((Some(Ok("b/\u{8}\u{c}\r".into())), None))
        );
        assert_eq!(
            scan(r#"{"text":1,"id":null}"#, "text", Some("id")),
            Some((Some(Err(())), Some("null")))
        );
        // left to the full parser
        for line in [
            r#"{"text":"\u00e9"}"#,
            r#"{"text":"a","meta":{"x":1}}"#,
            r#"{"text":"a","tags":[1]}"#,
            r#"{"te\u0078t":"a"}"#,
            "{\"text\":\"a\tb\"}",
            r#"{"text":"a"} x"#,
            r#"{"text":"a",}"#,
            r#"{"text":01}"#,
            r#"["text"]"#,
            r#"{"text":"a""#,
            "",
        ] {
            assert_eq!(scan(line, "text", Some("id")), None, "{line}");
        }
    }

    /// Text values longer than the sixteen-byte blocks, with an escape, a quote or a control
    /// character at every place: the value read is serde_json's (or the line is refused).
    #[test]
    fn long_strings_with_escapes_anywhere() {
        for len in [0, 1, 15, 16, 17, 31, 32, 33, 47, 70] {
            let plain: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            for at in 0..=len {
                for special in ["\\n", "\\\"", "\\\\", "é", "\\t\\r", "\u{1}", "\""] {
                    let raw = format!("{}{}{}", &plain[..at], special, &plain[at..]);
                    let line = format!(r#"{{"id": 1, "text": "{raw}"}}"#);
                    let ours = scan(&line, "text", Some("id")).map(|(t, _)| t);
                    let theirs = serde_json::from_str::<serde_json::Value>(&line).ok();
                    match (ours, theirs) {
                        (Some(Some(Ok(t))), Some(v)) => assert_eq!(v["text"].as_str(), Some(&*t)),
                        (None, None) => {}
                        (o, t) => panic!("{line}: {o:?} against {t:?}"),
                    }
                }
            }
        }
    }

    /// Objects built of random keys and values, half of them then damaged by a few random
    /// edits: wherever the scan takes a line, the full parser reads the same fields from it.
    #[test]
    fn agrees_with_serde_json_on_generated_lines() {
        const KEYS: &[&str] = &["\"text\"", "\"id\"", "\"x\"", "\"te\\u0078t\"", "\"\""];
        const VALUES: &[&str] = &[
            "\"a b\"",
            "\"q\\\"\"",
            "\"\\\\\"",
            "\"\\n\\/\"",
            "\"\\u0041\"",
            "\"\\x\"",
            "\"\u{1}\"",
            "\"\u{7f}é\"",
            "1",
            "-0",
            "01",
            "1.",
            "1.5",
            "2e",
            "3E+7",
            "-",
            "true",
            "tru",
            "false",
            "null",
            "nulls",
            "[1]",
            "{}",
            "\"\"",
        ];
        const EDITS: &[&str] = &[
            "{", "}", "\"", "\\", ":", ",", " ", "\t", "\n", "0", "e", "-",
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let (mut taken, mut valid) = (0, 0);
        for round in 0..100_000 {
            let mut line = String::from(if next(4) == 0 { " {" } else { "{" });
            for m in 0..next(5) {
                if m > 0 {
                    line.push_str([",", " , "][next(2)]);
                }
                line.push_str(KEYS[next(KEYS.len())]);
                line.push_str([":", " :\t"][next(2)]);
                line.push_str(VALUES[next(VALUES.len())]);
            }
            line.push_str(["}", "}\n", "} \r\n"][next(3)]);
            if round % 2 == 1 {
                for _ in 0..1 + next(2) {
                    let mut at = next(line.len() + 1);
                    while !line.is_char_boundary(at) {
                        at -= 1;
                    }
                    match next(3) {
                        0 => line.insert_str(at, EDITS[next(EDITS.len())]),
                        1 if at < line.len() => {
                            line.remove(at);
                        }
                        _ => line.truncate(at),
                    }
                }
            }
            let want = full(&line);
            valid += usize::from(want.is_some());
            if let Some(got) = fast(&line) {
                taken += 1;
                assert_eq!(Some(got), want, "{line:?}");
            }
        }
        // the generator reaches both sides
        assert!(
            taken > 10_000 && valid > taken,
            "{taken} taken, {valid} valid"
        );
    }
}
