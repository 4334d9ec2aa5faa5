//! Texts by document number, kept in memory up to a limit and then in a temporary file, so a
//! dedup run holds only fixed-size state per document (an offset and a length) however large
//! the corpus is. The file is unlinked as soon as it is created: it disappears with the store,
//! or with the process if that is killed.
//!
//! A text the core read from an uncompressed input file is not copied at all: the store keeps
//! where its line is ([`Store::expect`]) and reads the line again when the text is asked for. A
//! line that no longer reads as the same kind of record (the file changed under the run) is an
//! error the run reports ([`Store::check`]), never a silent empty text.

use std::borrow::Cow;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::greedy::Texts;
use crate::reader::{reread, Source};

/// No text stored for this document.
const ABSENT: u32 = u32::MAX;

/// Keep this many bytes of text in memory before moving to a file (when a folder is given).
pub const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;

/// Offsets at or above this (in `pos`) are lines of an input file: the bits above say which.
const SOURCE_SHIFT: u32 = 48;

#[derive(Debug)]
pub struct Store {
    /// Per document: offset and length of its UTF-8 bytes (`ABSENT`: none).
    pos: Vec<(u64, u32)>,
    /// The bytes while they fit in memory.
    mem: Vec<u8>,
    /// Once spilled: the temporary file, and the folder it is made in.
    file: Option<File>,
    dir: Option<PathBuf>,
    limit: usize,
    end: u64,
    /// Input files texts are read again from, with a handle each.
    sources: Vec<(Arc<Source>, Arc<File>)>,
    /// Documents fed but not yet stored whose lines can be read again: (doc, source, offset,
    /// length), by document.
    expected: std::collections::VecDeque<(u32, u16, u64, u32)>,
    /// The first failure to read a text again.
    error: Mutex<Option<String>>,
}

impl Default for Store {
    fn default() -> Self {
        Store::in_memory()
    }
}

impl Clone for Store {
    /// A copy in memory (a spilled store, and lines of input files, are read back).
    fn clone(&self) -> Self {
        let mut out = Store::in_memory();
        for d in 0..self.pos.len() {
            out.pos.push((0, ABSENT));
            if let Some(t) = self.get(d as u32) {
                let t = t.into_owned();
                out.pos[d] = (out.mem.len() as u64, t.len() as u32);
                out.mem.extend_from_slice(t.as_bytes());
            }
        }
        out.end = out.mem.len() as u64;
        out
    }
}

impl Store {
    /// Everything in memory.
    pub fn in_memory() -> Self {
        Store {
            pos: Vec::new(),
            mem: Vec::new(),
            file: None,
            dir: None,
            limit: usize::MAX,
            end: 0,
            sources: Vec::new(),
            expected: Default::default(),
            error: Mutex::new(None),
        }
    }

    /// In memory up to `limit` bytes, then in a temporary file in `dir`.
    pub fn spilling(dir: &Path, limit: usize) -> Self {
        Store {
            dir: Some(dir.to_path_buf()),
            limit,
            ..Store::in_memory()
        }
    }

    /// Documents numbered so far (stored or not).
    pub fn len(&self) -> usize {
        self.pos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pos.is_empty()
    }

    /// Bytes of text stored.
    pub fn bytes(&self) -> u64 {
        self.end
    }

    /// Whether the texts have moved to a file.
    pub fn spilled(&self) -> bool {
        self.file.is_some()
    }

    /// Numbers documents up to `n` (those not put stay absent).
    pub fn grow(&mut self, n: usize) {
        if n > self.pos.len() {
            self.pos.resize(n, (0, ABSENT));
        }
    }

    /// Says where the texts of documents `first..` can be read again, should they be stored
    /// (`at[i]`: the line of document `first + i` in `source`); documents are expected in
    /// increasing order, and those never stored are forgotten by [`Store::forget_before`].
    pub fn expect(
        &mut self,
        source: &Arc<Source>,
        first: u32,
        at: &[Option<(u64, u32)>],
    ) -> Result<()> {
        let id = match self.sources.iter().position(|(s, _)| s == source) {
            Some(i) => i,
            None => {
                if self.sources.len() >= (1 << (64 - SOURCE_SHIFT)) - 1 {
                    return Ok(()); // so many files: their texts are copied
                }
                let f = File::open(&source.path).map_err(|e| {
                    Error::invalid(
                        "inputs",
                        format!("cannot open {} again: {e}", source.path.display()),
                    )
                })?;
                self.sources.push((source.clone(), Arc::new(f)));
                self.sources.len() - 1
            }
        };
        for (i, a) in at.iter().enumerate() {
            if let Some((off, len)) = *a {
                if off < 1 << SOURCE_SHIFT {
                    self.expected
                        .push_back((first + i as u32, id as u16, off, len));
                }
            }
        }
        Ok(())
    }

    /// Forgets the expected lines of documents before `doc` (decided, not stored).
    pub fn forget_before(&mut self, doc: u32) {
        while self.expected.front().is_some_and(|e| e.0 < doc) {
            self.expected.pop_front();
        }
    }

    /// Where `doc`'s line is, if it was expected.
    fn expected_at(&self, doc: u32) -> Option<(u16, u64, u32)> {
        let i = self.expected.partition_point(|e| e.0 < doc);
        self.expected
            .get(i)
            .filter(|e| e.0 == doc)
            .map(|e| (e.1, e.2, e.3))
    }

    /// Stores the texts of `(doc, text)` (each document at most once); an expected document
    /// keeps where its line is instead.
    pub fn put_many<'a>(&mut self, items: impl IntoIterator<Item = (u32, &'a str)>) -> Result<()> {
        let items = items
            .into_iter()
            .filter(|&(d, _)| match self.expected_at(d) {
                Some((src, off, len)) => {
                    self.grow(d as usize + 1);
                    self.pos[d as usize] = ((src as u64 + 1) << SOURCE_SHIFT | off, len);
                    false
                }
                None => true,
            });
        let items: Vec<(u32, &[u8])> = items.map(|(d, t)| (d, t.as_bytes())).collect();
        self.put_bytes_many(items)
    }

    /// Stores the bytes of `(doc, bytes)` (each document at most once) as they are: read them
    /// with [`Store::get_bytes`] (not [`Store::get`], which wants UTF-8).
    pub fn put_bytes_many<'a>(
        &mut self,
        items: impl IntoIterator<Item = (u32, &'a [u8])>,
    ) -> Result<()> {
        let items: Vec<(u32, &[u8])> = items.into_iter().collect();
        let mut total = 0;
        for &(d, t) in &items {
            if t.len() >= ABSENT as usize {
                return Err(Error::invalid(
                    "texts",
                    format!("document {d} is over 4 GiB, the most one document can be"),
                ));
            }
            total += t.len();
        }
        if self.file.is_none() && self.mem.len() + total > self.limit {
            self.spill()?;
        }
        let start = self.end;
        for &(d, t) in &items {
            self.grow(d as usize + 1);
            self.pos[d as usize] = (self.end, t.len() as u32);
            self.end += t.len() as u64;
        }
        match &self.file {
            Some(f) => {
                let mut buf = Vec::with_capacity(total);
                for (_, t) in &items {
                    buf.extend_from_slice(t);
                }
                f.write_all_at(&buf, start)
                    .map_err(|e| self.io_error("write", e))
            }
            None => {
                let need = self.mem.len() + total;
                if need > self.mem.capacity() {
                    // past 4 MB, room up to a spilling store's limit at once (pages are only
                    // taken when written): doubling copied everything held into new memory
                    // each time, a few percent of checking 100,000 documents against an index
                    let room = if need > 4 << 20 && self.dir.is_some() {
                        need.max(self.limit.min(256 << 20))
                    } else {
                        need.max(2 * self.mem.capacity())
                    };
                    self.mem.reserve_exact(room - self.mem.len());
                }
                for (_, t) in &items {
                    self.mem.extend_from_slice(t);
                }
                Ok(())
            }
        }
    }

    /// Calls `f` with the bytes of each of `docs` in turn, as stored by
    /// [`Store::put_bytes_many`] (`None`: none stored). Spilled bytes are read in pieces of
    /// 1 MB where the documents come in the order they were stored, one by one otherwise.
    pub fn for_each_bytes<E: From<Error>>(
        &self,
        docs: &[u32],
        mut f: impl FnMut(Option<&[u8]>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        const PIECE: usize = 1 << 20;
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_at = 0u64; // the file offset of buf[0]
        let mut next = u64::MAX; // where the last document read ended
        for &d in docs {
            let span = self.pos.get(d as usize).copied();
            let Some((off, len)) = span.filter(|&(o, l)| l != ABSENT && o >> SOURCE_SHIFT == 0)
            else {
                f(None)?;
                continue;
            };
            let Some(file) = &self.file else {
                f(self.mem.get(off as usize..off as usize + len as usize))?;
                continue;
            };
            let end = off + len as u64;
            if off < buf_at || end > buf_at + buf.len() as u64 {
                // refilled: a piece from here if the documents run in order, else this one
                let size = if off == next {
                    PIECE.max(len as usize)
                } else {
                    len as usize
                };
                let size = size.min((self.end - off) as usize);
                buf.resize(size, 0);
                file.read_exact_at(&mut buf, off)
                    .map_err(|e| self.io_error("read", e))?;
                buf_at = off;
            }
            next = end;
            f(Some(&buf[(off - buf_at) as usize..(end - buf_at) as usize]))?;
        }
        Ok(())
    }

    fn io_error(&self, what: &str, e: std::io::Error) -> Error {
        let dir = self.dir.as_deref().unwrap_or(Path::new("."));
        Error::invalid(
            "spill_dir",
            format!(
                "cannot {what} the temporary text file in {}: {e}",
                dir.display()
            ),
        )
    }

    /// Moves the bytes in memory to a new, already unlinked, file.
    fn spill(&mut self) -> Result<()> {
        let dir = self.dir.clone().unwrap_or_else(std::env::temp_dir);
        let mut n = 0u32;
        let (mut f, path) = loop {
            let path = dir.join(format!(".textsieve-texts-{}-{n}.tmp", std::process::id()));
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(f) => break (f, path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(self.io_error("create", e)),
            }
        };
        // unlinked at once: the space is freed when the store is dropped, even after a kill
        let _ = std::fs::remove_file(&path);
        f.seek(SeekFrom::Start(0))
            .and_then(|_| f.write_all(&self.mem))
            .map_err(|e| self.io_error("write", e))?;
        self.mem = Vec::new();
        self.file = Some(f);
        Ok(())
    }

    /// The first text that could not be read again, as an error.
    pub fn check(&self) -> Result<()> {
        match self.error.lock().ok().and_then(|mut e| e.take()) {
            Some(msg) => Err(Error::invalid("inputs", msg)),
            None => Ok(()),
        }
    }

    fn fail(&self, msg: String) {
        if let Ok(mut e) = self.error.lock() {
            e.get_or_insert(msg);
        }
    }

    /// The text of `doc`, if stored.
    pub fn get(&self, doc: u32) -> Option<Cow<'_, str>> {
        let &(off, len) = self.pos.get(doc as usize)?;
        if len == ABSENT {
            return None;
        }
        if off >> SOURCE_SHIFT != 0 {
            let (source, f) = &self.sources[(off >> SOURCE_SHIFT) as usize - 1];
            let at = off & ((1 << SOURCE_SHIFT) - 1);
            let mut buf = vec![0u8; len as usize];
            let text = f
                .read_exact_at(&mut buf, at)
                .ok()
                .and_then(|_| reread(source, &buf));
            if text.is_none() {
                self.fail(format!(
                    "{}: the line at byte {at} no longer reads as the record read there before \
                     (was the file changed during the run?)",
                    source.path.display()
                ));
            }
            return text.map(Cow::Owned);
        }
        match self.get_bytes(doc)? {
            Cow::Borrowed(b) => std::str::from_utf8(b).ok().map(Cow::Borrowed),
            Cow::Owned(b) => {
                let text = String::from_utf8(b).ok();
                if text.is_none() {
                    self.fail("cannot read back the temporary text file".into());
                }
                text.map(Cow::Owned)
            }
        }
    }

    /// The bytes stored for `doc` by [`Store::put_bytes_many`] (or a text's, by
    /// [`Store::put_many`], where it is not a line of an input file).
    pub fn get_bytes(&self, doc: u32) -> Option<Cow<'_, [u8]>> {
        let &(off, len) = self.pos.get(doc as usize)?;
        if len == ABSENT || off >> SOURCE_SHIFT != 0 {
            return None;
        }
        let (off, len) = (off as usize, len as usize);
        match &self.file {
            None => self.mem.get(off..off + len).map(Cow::Borrowed),
            Some(f) => {
                let mut buf = vec![0u8; len];
                if f.read_exact_at(&mut buf, off as u64).is_err() {
                    self.fail("cannot read back the temporary text file".into());
                    return None;
                }
                Some(Cow::Owned(buf))
            }
        }
    }

    pub fn has(&self, doc: u32) -> bool {
        self.pos.get(doc as usize).is_some_and(|p| p.1 != ABSENT)
    }
}

impl Texts for Store {
    fn text(&self, doc: u32) -> Cow<'_, str> {
        self.get(doc).unwrap_or(Cow::Borrowed(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_and_reads_back() {
        let dir = std::env::temp_dir();
        let mut s = Store::spilling(&dir, 12);
        s.put_many([(0, "hello"), (2, "wörld")]).unwrap();
        assert!(!s.spilled());
        s.put_many([(3, "a longer text that passes the limit")])
            .unwrap();
        assert!(s.spilled());
        assert_eq!(s.get(0).as_deref(), Some("hello"));
        assert_eq!(s.get(1), None);
        assert_eq!(s.get(2).as_deref(), Some("wörld"));
        assert_eq!(
            s.get(3).as_deref(),
            Some("a longer text that passes the limit")
        );
        assert_eq!(s.get(9), None);
        let c = s.clone();
        assert!(!c.spilled());
        assert_eq!(c.get(3).as_deref(), s.get(3).as_deref());
    }
}
