//! The outputs of exact substring dedup: each record written back with its repeated spans cut
//! out of its text (every other byte of the record kept), and one row per span.

use super::spans::{replace_text, Span};
use super::SuffixIndex;
use crate::output::{push_quoted, Ids};

/// Records as read (one JSON object each, as an output corpus holds them), back to back.
#[derive(Default)]
pub struct Records {
    raw: Vec<u8>,
    ends: Vec<u64>,
}

impl Records {
    pub fn push(&mut self, record: &[u8]) {
        self.raw.extend_from_slice(record);
        self.ends.push(self.raw.len() as u64);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, d: usize) -> Option<&[u8]> {
        let end = *self.ends.get(d)? as usize;
        let start = if d == 0 { 0 } else { self.ends[d - 1] as usize };
        self.raw.get(start..end)
    }

    pub fn nbytes(&self) -> usize {
        self.raw.len() + 8 * self.ends.len()
    }
}

/// `text` without the bytes of `spans` (spans of this text, in order, on character boundaries).
pub fn cleaned(text: &str, spans: &[Span]) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut at = 0;
    for s in spans {
        out.extend_from_slice(b.get(at..s.start).unwrap_or_default());
        at = s.end.max(at);
    }
    out.extend_from_slice(b.get(at..).unwrap_or_default());
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The spans of document `d` within `spans` (sorted by document).
pub fn spans_of(spans: &[Span], d: usize) -> &[Span] {
    let a = spans.partition_point(|s| s.doc < d);
    let b = spans.partition_point(|s| s.doc <= d);
    &spans[a..b]
}

/// The cleaned records of documents `docs`, each ending with a newline, and the documents whose
/// record could not be edited here (left out of the bytes, in order, for the caller to write).
pub fn render_cleaned(
    index: &SuffixIndex,
    records: &Records,
    spans: &[Span],
    docs: std::ops::Range<usize>,
    text_field: &str,
) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    let mut failed = Vec::new();
    for d in docs {
        let Some(rec) = records.get(d) else {
            failed.push(d);
            continue;
        };
        let mine = spans_of(spans, d);
        if mine.is_empty() {
            out.extend_from_slice(rec);
        } else {
            let text = cleaned(index.document(d).unwrap_or_default(), mine);
            match replace_text(rec, text_field, &text) {
                Some(r) => out.extend_from_slice(&r),
                None => {
                    failed.push(d);
                    continue;
                }
            }
        }
        if !out.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    (out, failed)
}

/// One row per span: `{"document": id, "start": s, "end": e, "bytes": e - s}` (offsets in
/// bytes of the document's UTF-8 text).
pub fn render_spans(ids: &Ids, spans: &[Span]) -> Vec<u8> {
    let mut out = Vec::with_capacity(spans.len() * 64);
    for s in spans {
        out.extend_from_slice(b"{\"document\": ");
        push_quoted(ids.get(s.doc).unwrap_or_default(), &mut out);
        out.extend_from_slice(
            format!(
                ", \"start\": {}, \"end\": {}, \"bytes\": {}}}\n",
                s.start,
                s.end,
                s.end - s.start
            )
            .as_bytes(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::spans::Policy;
    use super::super::Builder;
    use super::*;

    #[test]
    fn records_come_back_cleaned() {
        let texts = [
            "shared words here and there",
            "x shared words here y",
            "plain",
        ];
        let mut b = Builder::new();
        let mut recs = Records::default();
        let mut ids = Ids::default();
        for (i, t) in texts.iter().enumerate() {
            b.push(t);
            let mut r = format!("{{\"id\": \"d{i}\", \"text\": ").into_bytes();
            push_quoted(t.as_bytes(), &mut r);
            r.extend_from_slice(b", \"n\": 1}\n");
            recs.push(&r);
            ids.push(format!("d{i}").as_bytes());
        }
        let idx = b.finish().unwrap();
        let spans = idx.repeated_spans(10, Policy::Later).unwrap();
        assert_eq!(
            spans,
            vec![Span {
                doc: 1,
                start: 2,
                end: 20
            }]
        );
        let (out, failed) = render_cleaned(&idx, &recs, &spans, 0..3, "text");
        assert!(failed.is_empty());
        let lines: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
        assert_eq!(lines[1], "{\"id\": \"d1\", \"text\": \"x y\", \"n\": 1}");
        assert_eq!(
            lines[0].as_bytes(),
            &recs.get(0).unwrap()[..recs.get(0).unwrap().len() - 1]
        );
        let rows = render_spans(&ids, &spans);
        assert_eq!(
            rows,
            b"{\"document\": \"d1\", \"start\": 2, \"end\": 20, \"bytes\": 18}\n".to_vec()
        );
    }
}
