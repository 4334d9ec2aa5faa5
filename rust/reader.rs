//! Reading a corpus in the core: JSON Lines and plain-text files, uncompressed, gzip or zstd,
//! cut into [`Chunk`]s of documents by a background thread ([`ChunkStream`]), so that reading,
//! decompressing and parsing run beside the signing instead of in the interpreter.
//!
//! The core takes the common record and leaves every unusual one to its caller, who has the
//! full rules (and the exact messages): a line is *deferred* when it is not valid UTF-8, is not
//! a JSON object with a string text field, has an id that is not a string, holds an escape that
//! makes a lone surrogate, or anything else strict JSON parsing refuses. So a record the core
//! accepts is one that the caller would have read the same way, and nothing is lost: a deferred
//! line keeps its bytes and line number until the caller resolves or drops it.
//!
//! Lines are split on `\n` as read (a last line without one is a line); the UTF-8 byte-order
//! mark of a file's first line is not part of its record; a line holding only ASCII whitespace is
//! blank (counted, not a record). A record longer than `max_record` bytes is not held: it is
//! deferred with its reason, and reading goes on after it.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::output::push_default_id;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line; the text and the id are fields.
    Jsonl,
    /// One document per line (its line ending removed); the id is `file:line`.
    Text,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Plain,
    Gzip,
    Zstd,
}

/// One input file: where it is, the name that stands for it in ids and messages (the bytes of
/// the name as given, which need not be UTF-8), and how to read it.
#[derive(Clone, Debug)]
pub struct Input {
    pub path: PathBuf,
    pub label: Arc<[u8]>,
    pub format: Format,
    pub compression: Compression,
}

/// How lines become documents.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    pub text_field: String,
    /// `None`: every id is `file:line`.
    pub id_field: Option<String>,
    /// A chunk is sent once it holds this many documents ...
    pub chunk_docs: usize,
    /// ... or this many bytes of lines.
    pub chunk_bytes: usize,
    /// The longest record held, in bytes.
    pub max_record: usize,
}

/// The default limit on one record: longer lines are refused with a clear reason instead of
/// exhausting memory (a small compressed file can hold a line of many gigabytes).
pub const DEFAULT_MAX_RECORD: usize = 256 << 20;

/// Where an entry's id comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Id {
    /// `file:line`.
    Default,
    /// Bytes `start..end` of the chunk's id buffer.
    Given(u32, u32),
}

/// What became of a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// A document.
    Doc,
    /// For the caller to judge: `None` to parse by its own rules, `Some(reason)` a bad record.
    Deferred(Option<String>),
    /// Not a document (the caller skipped it).
    Dropped,
}

/// One non-blank line of a chunk: its bytes as they are written back (`raw[start..end]`), its
/// line number, id and text, and where the core can read the text again (`(byte offset, length)`
/// of the line in its file, when the file is not compressed and the core read the line).
#[derive(Clone, Debug)]
pub struct Entry {
    pub start: usize,
    pub end: usize,
    pub line: u64,
    pub id: Id,
    pub text: String,
    pub state: State,
    pub at: Option<(u64, u32)>,
}

/// Where each text of a chunk can be read again (see [`Entry::at`]), and from which file.
pub type Lines<'a> = (&'a Arc<Source>, &'a [Option<(u64, u32)>]);

/// A file whose lines the core can read again by offset, and how ([`reread`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub format: Format,
    pub text_field: String,
}

/// The text of a line read again from a [`Source`] (`None`: it no longer reads as a record).
pub fn reread(source: &Source, line: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(line).ok()?;
    match source.format {
        Format::Text => Some(s.trim_end_matches(['\r', '\n']).to_owned()),
        Format::Jsonl => JsonFields::new(&source.text_field, None)
            .parse(s)
            .map(|(t, _)| t),
    }
}

/// Consecutive lines of one file.
#[derive(Clone, Debug)]
pub struct Chunk {
    /// Position of the file among the inputs, and its name.
    pub file: usize,
    pub label: Arc<[u8]>,
    pub entries: Vec<Entry>,
    /// The records as they are written to an output corpus, back to back: a JSONL line as read
    /// (without the byte-order mark), a plain-text line as a JSON object with its id and text.
    pub raw: Vec<u8>,
    pub ids: Vec<u8>,
    /// Bytes read (decompressed, line endings and byte-order mark included) and blank lines.
    pub n_bytes: u64,
    pub n_blank: u64,
    /// The last chunk of its file.
    pub last: bool,
    /// Set when the entries' texts can be read again from the file (see [`Entry::at`]).
    pub source: Option<Arc<Source>>,
}

/// Record buffers of dropped chunks, for the next chunks to fill: a chunk's buffer is megabytes,
/// allocated on the reader's thread and freed on another, so a fresh one each time made the
/// kernel zero new pages for every chunk (a few percent of a dedup run's time).
static SPARE_BUFFERS: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
/// At most this many spare buffers are kept.
const SPARE_MAX: usize = 4;
/// Buffers smaller than this are not worth keeping.
const SPARE_MIN: usize = 1 << 20;

fn spare_buffer() -> Vec<u8> {
    let mut v = SPARE_BUFFERS
        .lock()
        .ok()
        .and_then(|mut spare| spare.pop())
        .unwrap_or_default();
    v.clear();
    v
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if self.raw.capacity() >= SPARE_MIN {
            if let Ok(mut spare) = SPARE_BUFFERS.lock() {
                if spare.len() < SPARE_MAX {
                    spare.push(std::mem::take(&mut self.raw));
                }
            }
        }
    }
}

impl Chunk {
    pub fn new(file: usize, label: Arc<[u8]>) -> Self {
        Chunk {
            file,
            label,
            entries: Vec::new(),
            raw: spare_buffer(),
            ids: Vec::new(),
            n_bytes: 0,
            n_blank: 0,
            last: false,
            source: None,
        }
    }

    /// The id of entry `i` (after [`Chunk::seal`]: of document `i`), appended to `out`.
    pub fn push_id(&self, i: usize, out: &mut Vec<u8>) {
        match self.entries[i].id {
            Id::Default => push_default_id(&self.label, self.entries[i].line, out),
            Id::Given(a, b) => out.extend_from_slice(&self.ids[a as usize..b as usize]),
        }
    }

    /// Bytes of entry `i` as written to an output corpus.
    pub fn record(&self, i: usize) -> &[u8] {
        let e = &self.entries[i];
        &self.raw[e.start..e.end]
    }

    /// Makes deferred entry `i` a document with this text and id.
    pub fn resolve(&mut self, i: usize, text: String, id: &[u8]) {
        let a = self.ids.len() as u32;
        self.ids.extend_from_slice(id);
        let e = &mut self.entries[i];
        e.text = text;
        e.id = Id::Given(a, self.ids.len() as u32);
        e.state = State::Doc;
    }

    /// Leaves only the documents: deferred entries not resolved are dropped.
    pub fn seal(&mut self) {
        self.entries.retain(|e| e.state == State::Doc);
    }

    /// The documents' texts, moved out (the entries keep empty texts), and where each can be
    /// read again.
    pub fn take_texts(&mut self) -> (Vec<String>, Vec<Option<(u64, u32)>>) {
        let at = self.entries.iter().map(|e| e.at).collect();
        let texts = self
            .entries
            .iter_mut()
            .map(|e| std::mem::take(&mut e.text))
            .collect();
        (texts, at)
    }

    fn push_entry(&mut self, start: usize, line: u64, id: Id, text: String, state: State) {
        let end = self.raw.len();
        self.entries.push(Entry {
            start,
            end,
            line,
            id,
            text,
            state,
            at: None,
        });
    }
}

/// The fields a JSON record's text and id are read from, and whether either is a dotted path
/// (decided once for a file, not for every line).
struct JsonFields<'a> {
    text: &'a str,
    id: Option<&'a str>,
    nested: bool,
}

impl<'a> JsonFields<'a> {
    fn new(text: &'a str, id: Option<&'a str>) -> Self {
        let nested = text.contains('.') || id.is_some_and(|f| f.contains('.'));
        JsonFields { text, id, nested }
    }

    /// The text and id of a JSON line (see [`parse_jsonl`]).
    fn parse(&self, line: &str) -> Option<(String, IdValue)> {
        if self.nested {
            parse_jsonl_nested(line, self.text, self.id)
        } else {
            parse_jsonl(line, self.text, self.id)
        }
    }
}

/// The text and id fields of a JSON object, or `None` when the line is not one the core reads
/// (see the module documentation). The fields' values are taken as raw JSON while the line is
/// checked, then decoded here into a string of the right size (one allocation a field). Field
/// names are keys of the object itself (for dotted paths, [`parse_jsonl_nested`]). The common
/// line is scanned by [`crate::jsonline::scan`]; the parser reads the others.
fn parse_jsonl(line: &str, text_field: &str, id_field: Option<&str>) -> Option<(String, IdValue)> {
    let (text, id) = match crate::jsonline::scan(line, text_field, id_field) {
        Some((text, id)) => (text?.ok()?, id),
        None => {
            let mut de = serde_json::Deserializer::from_str(line);
            let fields = Fields {
                text_field,
                id_field,
            };
            let (text, id) = fields.deserialize(&mut de).ok()?;
            de.end().ok()?;
            (decode_string(text?.get())?, id.map(|r| r.get()))
        }
    };
    let id = match id {
        None | Some("null") => IdValue::Null,
        Some(raw) if raw.starts_with('"') => IdValue::Str(decode_string(raw)?),
        Some(_) => IdValue::Other,
    };
    Some((text, id))
}

/// [`parse_jsonl`] for field names with dots: a key equal to the whole name wins, else the name is
/// a path of keys into nested objects (`meta.url`). The line is parsed whole (slower than the
/// flat path, which never builds the other fields).
fn parse_jsonl_nested(
    line: &str,
    text_field: &str,
    id_field: Option<&str>,
) -> Option<(String, IdValue)> {
    use serde_json::Value;
    let obj: Value = serde_json::from_str(line).ok()?;
    let obj = obj.as_object()?;
    let text = match field(obj, text_field)? {
        Value::String(s) => s.clone(),
        _ => return None,
    };
    let id = match id_field.and_then(|f| field(obj, f)) {
        None | Some(Value::Null) => IdValue::Null,
        Some(Value::String(s)) => IdValue::Str(s.clone()),
        Some(_) => IdValue::Other,
    };
    Some((text, id))
}

/// The value a field name (see [`parse_jsonl_nested`]) picks out of an object.
fn field<'v>(
    obj: &'v serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Option<&'v serde_json::Value> {
    if let Some(v) = obj.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut v = obj.get(parts.next()?)?;
    for part in parts {
        v = v.as_object()?.get(part)?;
    }
    Some(v)
}

/// A JSON string literal (already checked by the parser) as a `String`; `None` for any other
/// value, or a string holding a lone surrogate (which UTF-8 cannot carry).
fn decode_string(raw: &str) -> Option<String> {
    let body = raw.strip_prefix('"')?.strip_suffix('"')?;
    let b = body.as_bytes();
    let mut out = String::with_capacity(body.len());
    let mut i = 0;
    while let Some(k) = memchr::memchr(b'\\', &b[i..]) {
        out.push_str(&body[i..i + k]);
        i += k + 1;
        let c = match *b.get(i)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = hex4(b.get(i + 1..i + 5)?)?;
                i += 4;
                let code = if (0xd800..0xdc00).contains(&hi) {
                    // a high surrogate must be followed by an escaped low one
                    if b.get(i + 1..i + 3)? != b"\\u" {
                        return None;
                    }
                    let lo = hex4(b.get(i + 3..i + 7)?)?;
                    if !(0xdc00..0xe000).contains(&lo) {
                        return None;
                    }
                    i += 6;
                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                } else {
                    hi
                };
                char::from_u32(code)?
            }
            _ => return None,
        };
        out.push(c);
        i += 1;
    }
    out.push_str(&body[i..]);
    Some(out)
}

fn hex4(h: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(h).ok()?;
    u32::from_str_radix(s, 16)
        .ok()
        .filter(|_| s.len() == 4 && !s.starts_with('+'))
}

/// An id field's value: a string, JSON `null` (the default id), or anything else (left to the
/// caller, who writes it as JSON).
enum IdValue {
    Str(String),
    Null,
    Other,
}

/// Which field a key names.
enum Key {
    Text,
    Id,
    Other,
}

struct Fields<'f> {
    text_field: &'f str,
    id_field: Option<&'f str>,
}

type Raw<'de> = Option<&'de serde_json::value::RawValue>;

impl<'de> DeserializeSeed<'de> for Fields<'_> {
    type Value = (Raw<'de>, Raw<'de>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = (Raw<'de>, Raw<'de>);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // a repeated key: the last one counts, as in Python's json
        let (mut text, mut id) = (None, None);
        let keys = KeySeed {
            text_field: self.text_field,
            id_field: self.id_field,
        };
        while let Some(key) = map.next_key_seed(keys.clone())? {
            match key {
                Key::Text => text = Some(map.next_value()?),
                Key::Id => id = Some(map.next_value()?),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((text, id))
    }
}

/// Reads a key and says which field it names, without making a string of it.
#[derive(Clone)]
struct KeySeed<'f> {
    text_field: &'f str,
    id_field: Option<&'f str>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
        Ok(if v == self.text_field {
            Key::Text
        } else if Some(v) == self.id_field {
            Key::Id
        } else {
            Key::Other
        })
    }
}

/// A line with nothing but ASCII whitespace (as Python's `bytes.strip` sees it).
fn is_blank(line: &[u8]) -> bool {
    line.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
}

/// Reads lines of one input into chunks.
struct LineSource {
    input: Input,
    file: usize,
    reader: Box<dyn BufRead + Send>,
    line: u64,
    /// Bytes of the (decompressed) file before the current line, and after it.
    pos: u64,
    /// The file's [`Source`] when its lines can be read again by offset (plain files).
    source: Option<Arc<Source>>,
}

/// What one call of [`LineSource::read_line`] found.
enum Line {
    /// A line, appended to the buffer (with its `\n` if it had one).
    Held(usize),
    /// A line longer than the limit, consumed but not held: its length.
    TooLong(u64),
    End,
}

fn open(input: &Input) -> io::Result<Box<dyn BufRead + Send>> {
    open_as(&input.path, input.compression)
}

impl Compression {
    /// The compression of the file at `path`, by its magic number (gzip `1f 8b`, zstd
    /// `28 b5 2f fd`), whatever its name.
    pub fn sniff(path: &Path) -> io::Result<Compression> {
        let mut head = [0u8; 4];
        let mut f = File::open(path)?;
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(match &head[..n] {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
            _ => Compression::Plain,
        })
    }
}

/// The file at `path`, decompressed as `compression` says, buffered.
pub fn open_as(path: &Path, compression: Compression) -> io::Result<Box<dyn BufRead + Send>> {
    let f = File::open(path)?;
    const BUF: usize = 1 << 20;
    Ok(match compression {
        Compression::Plain => Box::new(BufReader::with_capacity(BUF, f)),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            BUF,
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(BUF, f)),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            BUF,
            // a file cut inside a frame is an UnexpectedEof error, not a clean end
            zstd::stream::read::Decoder::new(f)?,
        )),
    })
}

impl LineSource {
    /// Appends the next line to `out`, holding at most `max` bytes of it.
    fn read_line(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<Line> {
        let start = out.len();
        let mut total: u64 = 0;
        let mut held = true;
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                break;
            }
            let (take, done) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            total += take as u64;
            if held && total as usize > max {
                held = false;
                out.truncate(start);
            }
            if held {
                out.extend_from_slice(&buf[..take]);
            }
            self.reader.consume(take);
            if done {
                break;
            }
        }
        if total == 0 {
            return Ok(Line::End);
        }
        self.line += 1;
        self.pos += total;
        Ok(if held {
            Line::Held(total as usize)
        } else {
            Line::TooLong(total)
        })
    }

    /// The next chunk of this file (`last` set at its end).
    fn chunk(&mut self, opts: &ReadOptions, line_buf: &mut Vec<u8>) -> io::Result<Chunk> {
        let mut c = Chunk::new(self.file, self.input.label.clone());
        c.source = self.source.clone();
        // room for a chunk and one more record, so the buffer is not copied as it grows
        c.raw.reserve(opts.chunk_bytes + (64 << 10));
        c.entries.reserve(opts.chunk_docs.min(1 << 16));
        let fields = JsonFields::new(&opts.text_field, opts.id_field.as_deref());
        while c.entries.len() < opts.chunk_docs && c.raw.len() < opts.chunk_bytes {
            line_buf.clear();
            let n = match self.read_line(line_buf, opts.max_record)? {
                Line::End => {
                    c.last = true;
                    break;
                }
                Line::TooLong(n) => {
                    c.n_bytes += n;
                    // the words of textsieve.io.too_long
                    let reason = format!(
                        "record longer than {} bytes ({n} bytes), the most one record may be",
                        opts.max_record
                    );
                    let start = c.raw.len();
                    c.push_entry(
                        start,
                        self.line,
                        Id::Default,
                        String::new(),
                        State::Deferred(Some(reason)),
                    );
                    continue;
                }
                Line::Held(n) => n,
            };
            c.n_bytes += n as u64;
            let mut body: &[u8] = line_buf;
            let mut at = self.pos - n as u64;
            if self.line == 1 && body.starts_with(b"\xef\xbb\xbf") {
                body = &body[3..];
                at += 3;
            }
            if is_blank(body) {
                c.n_blank += 1;
                continue;
            }
            self.add(&mut c, body, opts, &fields);
            let e = c.entries.last_mut().expect("an entry was added");
            if self.source.is_some() && e.state == State::Doc {
                e.at = u32::try_from(body.len()).ok().map(|len| (at, len));
            }
        }
        Ok(c)
    }

    fn add(&self, c: &mut Chunk, body: &[u8], opts: &ReadOptions, fields: &JsonFields) {
        let start = c.raw.len();
        let line = self.line;
        let defer = |c: &mut Chunk| {
            c.raw.extend_from_slice(body);
            c.push_entry(
                start,
                line,
                Id::Default,
                String::new(),
                State::Deferred(None),
            );
        };
        let Ok(s) = simdutf8::basic::from_utf8(body) else {
            return defer(c);
        };
        match self.input.format {
            Format::Text => {
                let text = s.trim_end_matches(['\r', '\n']);
                let mut id = Vec::new();
                push_default_id(&self.input.label, line, &mut id);
                crate::output::push_text_record(
                    &mut c.raw,
                    opts.id_field.as_deref().unwrap_or("id").as_bytes(),
                    &id,
                    opts.text_field.as_bytes(),
                    text,
                );
                c.push_entry(start, line, Id::Default, text.to_owned(), State::Doc);
            }
            Format::Jsonl => match fields.parse(s) {
                Some((text, IdValue::Str(id))) => {
                    let a = c.ids.len() as u32;
                    c.ids.extend_from_slice(id.as_bytes());
                    let b = c.ids.len() as u32;
                    c.raw.extend_from_slice(body);
                    c.push_entry(start, line, Id::Given(a, b), text, State::Doc);
                }
                Some((text, IdValue::Null)) => {
                    c.raw.extend_from_slice(body);
                    c.push_entry(start, line, Id::Default, text, State::Doc);
                }
                Some((_, IdValue::Other)) | None => defer(c),
            },
        }
    }
}

/// An error reading an input, naming it.
#[derive(Debug)]
pub struct ReadError {
    pub file: usize,
    pub message: String,
}

/// Chunks of every input in order, read ahead by a background thread (at most `depth` chunks
/// wait). Dropping the stream stops the thread.
pub struct ChunkStream {
    rx: Option<Receiver<Result<Chunk, ReadError>>>,
    thread: Option<JoinHandle<()>>,
}

impl ChunkStream {
    pub fn start(inputs: Vec<Input>, opts: ReadOptions, depth: usize) -> io::Result<Self> {
        let (tx, rx) = sync_channel(depth.max(1));
        let thread = std::thread::Builder::new()
            .name("textsieve-reader".into())
            .spawn(move || {
                let mut line_buf = Vec::new();
                for (file, input) in inputs.into_iter().enumerate() {
                    let name = String::from_utf8_lossy(&input.label).into_owned();
                    let fail = |what: &str, e: io::Error| ReadError {
                        file,
                        message: format!("{name}: {what}: {}", describe(&e)),
                    };
                    let reader = match open(&input) {
                        Ok(r) => r,
                        Err(e) => {
                            let _ = tx.send(Err(fail("cannot open", e)));
                            return;
                        }
                    };
                    let compressed = input.compression != Compression::Plain;
                    let source = (input.compression == Compression::Plain).then(|| {
                        Arc::new(Source {
                            path: input.path.clone(),
                            format: input.format,
                            text_field: opts.text_field.clone(),
                        })
                    });
                    let mut src = LineSource {
                        input,
                        file,
                        reader,
                        line: 0,
                        pos: 0,
                        source,
                    };
                    loop {
                        let got = src.chunk(&opts, &mut line_buf);
                        let last = matches!(&got, Ok(c) if c.last);
                        let failed = got.is_err();
                        let msg = got.map_err(|e| {
                            fail(
                                if compressed {
                                    "cannot decompress"
                                } else {
                                    "cannot read"
                                },
                                e,
                            )
                        });
                        if tx.send(msg).is_err() || failed {
                            return;
                        }
                        if last {
                            break;
                        }
                    }
                }
            })?;
        Ok(ChunkStream {
            rx: Some(rx),
            thread: Some(thread),
        })
    }

    /// The next chunk (or the error that ended the reading), waiting at most `wait`.
    pub fn next_within(&self, wait: Duration) -> Next {
        let Some(rx) = &self.rx else {
            return Next::End;
        };
        match rx.recv_timeout(wait) {
            Ok(item) => Next::Item(item),
            Err(RecvTimeoutError::Timeout) => Next::Waiting,
            Err(RecvTimeoutError::Disconnected) => Next::End,
        }
    }
}

/// What [`ChunkStream::next_within`] found.
pub enum Next {
    Item(Result<Chunk, ReadError>),
    /// Nothing yet.
    Waiting,
    /// Every chunk was taken.
    End,
}

impl Drop for ChunkStream {
    fn drop(&mut self) {
        // the thread's next send fails once the receiver is gone; it then returns
        self.rx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An I/O error in words (without Rust's `Custom { .. }` wrapping).
fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            "the file ends in the middle of a compressed block (truncated?)".into()
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &str) -> Option<(String, Option<String>)> {
        parse_jsonl(line, "text", Some("id")).and_then(|(t, id)| match id {
            IdValue::Str(s) => Some((t, Some(s))),
            IdValue::Null => Some((t, None)),
            IdValue::Other => None,
        })
    }

    #[test]
    fn takes_plain_records_and_defers_the_rest() {
        let t = |s: &str| Some((s.to_string(), Some("a".to_string())));
        assert_eq!(fields(r#"{"id": "a", "text": "x"}"#), t("x"));
        assert_eq!(
            fields(r#"{"id":"a","text":"x\ny\u00e9","o":{"k":[1,2.5e3,null,true]}}"#),
            t("x\nyé")
        );
        assert_eq!(fields(r#"{"text": "1", "id": "a", "text": "2"}"#), t("2"));
        assert_eq!(fields(r#"{"text": "x"}"#), Some(("x".into(), None)));
        assert_eq!(
            fields(r#" {"text": "x", "id": null} "#),
            Some(("x".into(), None))
        );
        for deferred in [
            r#"{"id": 1, "text": "x"}"#,
            r#"{"text": 5}"#,
            r#"{"id": "a"}"#,
            r#"[1]"#,
            r#"{"text": "x"} trailing"#,
            r#"{"text": "\ud800"}"#,
            r#"{"text": "x", "n": NaN}"#,
            "{\"text\": \"raw\u{1}control\"}",
        ] {
            assert_eq!(fields(deferred), None, "{deferred}");
        }
    }

    fn source(data: &'static [u8]) -> LineSource {
        LineSource {
            input: Input {
                path: PathBuf::from("mem"),
                label: Arc::from(&b"mem"[..]),
                format: Format::Jsonl,
                compression: Compression::Plain,
            },
            file: 0,
            reader: Box::new(io::Cursor::new(data)),
            line: 0,
            pos: 0,
            source: None,
        }
    }

    #[test]
    fn chunks_count_blank_lines_bom_and_long_records() {
        let opts = ReadOptions {
            text_field: "text".into(),
            id_field: Some("id".into()),
            chunk_docs: 100,
            chunk_bytes: 1 << 20,
            max_record: 40,
        };
        let data = b"\xef\xbb\xbf{\"text\": \"a\"}\n \t\r\n{\"text\": \"this line is far longer than forty bytes\"}\n{\"text\": \"b\"}";
        let mut s = source(data);
        let c = s.chunk(&opts, &mut Vec::new()).unwrap();
        assert!(c.last);
        assert_eq!(c.n_bytes, data.len() as u64);
        assert_eq!(c.n_blank, 1);
        let states: Vec<_> = c
            .entries
            .iter()
            .map(|e| (e.line, e.state.clone()))
            .collect();
        assert_eq!(states[0], (1, State::Doc));
        assert!(
            matches!(&states[1], (3, State::Deferred(Some(r))) if r.contains("longer than 40"))
        );
        assert_eq!(states[2], (4, State::Doc));
        assert_eq!(c.record(0), b"{\"text\": \"a\"}\n");
        assert_eq!(c.record(2), b"{\"text\": \"b\"}");
        let mut id = Vec::new();
        c.push_id(2, &mut id);
        assert_eq!(id, b"mem:4");
    }

    #[test]
    fn chunks_are_cut_by_documents() {
        let opts = ReadOptions {
            text_field: "text".into(),
            id_field: None,
            chunk_docs: 2,
            chunk_bytes: 1 << 20,
            max_record: DEFAULT_MAX_RECORD,
        };
        let mut s = source(b"{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": \"c\"}\n");
        let mut buf = Vec::new();
        let sizes: Vec<(usize, bool)> = std::iter::from_fn(|| {
            let c = s.chunk(&opts, &mut buf).unwrap();
            Some((c.entries.len(), c.last))
        })
        .take(2)
        .collect();
        assert_eq!(sizes, [(2, false), (1, true)]);
    }
}
