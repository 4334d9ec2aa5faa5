//! A [`SuffixIndex`] on disk: a directory of four files, written to a temporary directory beside
//! it and renamed into place (the index appears whole or not at all), and mapped into memory
//! when opened (the operating system pages in what the queries touch).
//!
//! ```text
//! manifest.json   {"format": "textsieve-suffix-index", "version": 1, "documents": D,
//!                  "bytes": N, "characters": C, "position_bytes": 4 | 8}
//! text.bin        the corpus: each document's UTF-8 bytes followed by 0xFF      N bytes
//! sa.bin          the suffix array, little-endian u32 or u64                    N x 4 or 8
//! docs.bin        each document's start in text.bin, then N, little-endian u64  (D + 1) x 8
//! ```

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{Store, SuffixArray, SuffixIndex, Width, SEP};
use crate::error::{Error, Result};

pub const FORMAT: &str = "textsieve-suffix-index";
pub const VERSION: u64 = 1;

fn corrupt(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("{}: {what}", path.display()))
}

fn write_file(path: &Path, parts: &[&[u8]]) -> Result<()> {
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    for part in parts {
        w.write_all(part).map_err(|e| Error::io(path, e))?;
    }
    let file = w.into_inner().map_err(|e| Error::io(path, e.error()))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}

impl SuffixIndex {
    /// Writes the index to the directory `dir`, which must not exist yet.
    pub fn save(&self, dir: &Path) -> Result<()> {
        if !cfg!(target_endian = "little") {
            return Err(Error::invalid(
                "path",
                "indexes are written on little-endian machines only",
            ));
        }
        if dir.exists() {
            return Err(Error::invalid(
                "path",
                format!("{} already exists", dir.display()),
            ));
        }
        let name = dir.file_name().ok_or_else(|| {
            Error::invalid("path", format!("{} names no directory", dir.display()))
        })?;
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = parent.join(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let written = self
            .write_files(&tmp)
            .and_then(|()| fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e)));
        if written.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        written
    }

    fn write_files(&self, tmp: &Path) -> Result<()> {
        write_file(&tmp.join("text.bin"), &[self.text()])?;
        let sa: &[u8] = match &self.sa {
            SuffixArray::U32(s) => bytemuck::cast_slice(s.as_slice()),
            SuffixArray::U64(s) => bytemuck::cast_slice(s.as_slice()),
        };
        write_file(&tmp.join("sa.bin"), &[sa])?;
        write_file(
            &tmp.join("docs.bin"),
            &[bytemuck::cast_slice(self.starts())],
        )?;
        let manifest = json!({
            "format": FORMAT,
            "version": VERSION,
            "documents": self.n_docs(),
            "bytes": self.n_bytes(),
            "characters": self.n_chars,
            "position_bytes": self.width().bytes(),
        });
        let text = serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n";
        write_file(&tmp.join("manifest.json"), &[text.as_bytes()])
    }

    /// Opens an index written by [`SuffixIndex::save`], its files mapped into memory.
    pub fn open(dir: &Path) -> Result<SuffixIndex> {
        if !cfg!(target_endian = "little") {
            return Err(Error::invalid(
                "path",
                "indexes are read on little-endian machines only",
            ));
        }
        let mpath = dir.join("manifest.json");
        let raw = fs::read(&mpath).map_err(|e| Error::io(&mpath, e))?;
        let m: Value = serde_json::from_slice(&raw).map_err(|e| corrupt(&mpath, e))?;
        if m.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(corrupt(&mpath, "not a textsieve suffix index"));
        }
        let field = |k: &str| {
            m.get(k)
                .and_then(Value::as_u64)
                .ok_or_else(|| corrupt(&mpath, format!("no {k:?}")))
        };
        let version = field("version")?;
        if version != VERSION {
            return Err(corrupt(
                &mpath,
                format!("format version {version}, this textsieve reads version {VERSION}"),
            ));
        }
        let (n_docs, n, n_chars) = (field("documents")?, field("bytes")?, field("characters")?);
        let width = match field("position_bytes")? {
            4 => Width::U32,
            8 => Width::U64,
            w => return Err(corrupt(&mpath, format!("positions of {w} bytes"))),
        };
        let sizes = (n_docs.checked_add(1).and_then(|d| d.checked_mul(8)))
            .zip(n.checked_mul(width.bytes() as u64))
            .ok_or_else(|| corrupt(&mpath, "sizes overflow"))?;
        let text = map(&dir.join("text.bin"), n)?;
        let sa_path = dir.join("sa.bin");
        let sa = match width {
            Width::U32 => SuffixArray::U32(map(&sa_path, sizes.1)?),
            Width::U64 => SuffixArray::U64(map(&sa_path, sizes.1)?),
        };
        let starts = map(&dir.join("docs.bin"), sizes.0)?;
        let idx = SuffixIndex {
            text,
            sa,
            starts,
            n_chars,
        };
        let s = idx.starts();
        let dpath = dir.join("docs.bin");
        if s.first().copied().unwrap_or(1) != 0 || s.last().copied() != Some(n) {
            return Err(corrupt(&dpath, "the documents do not cover the text"));
        }
        let t = idx.text();
        for w in s.windows(2) {
            if w[1] <= w[0] || t.get(w[1] as usize - 1) != Some(&SEP) {
                return Err(corrupt(
                    &dpath,
                    format!("a document ends badly at byte {}", w[1]),
                ));
            }
        }
        Ok(idx)
    }
}

/// A file of exactly `len` bytes, mapped into memory.
fn map<T: bytemuck::Pod>(path: &Path, len: u64) -> Result<Store<T>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let have = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if have != len {
        return Err(corrupt(
            path,
            format!("{have} bytes where {len} were expected"),
        ));
    }
    if len == 0 {
        return Ok(Store::Owned(Vec::new()));
    }
    // SAFETY: the file is opened read-only and the map is never written through; an index
    // directory is written once (save renames it into place) and not changed afterwards.
    let m = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    Ok(Store::Mapped(m))
}

#[cfg(test)]
mod tests {
    use super::super::{Builder, Width};
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ts-suffix-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn saved_index_answers_as_the_built_one() {
        for w in [Width::U32, Width::U64] {
            let mut b = Builder::new();
            for d in ["the cat sat", "on the mat", "", "the end"] {
                b.push(d);
            }
            let idx = b.finish_as(w).unwrap();
            let root = tmpdir(&format!("{w:?}"));
            let dir = root.join("idx");
            idx.save(&dir).unwrap();
            let back = SuffixIndex::open(&dir).unwrap();
            assert_eq!(back.width(), w);
            assert_eq!(back.n_docs(), 4);
            for s in ["the", "at", "e", "x", "the end"] {
                assert_eq!(back.count(s), idx.count(s));
                assert_eq!(back.locate(s, None), idx.locate(s, None));
            }
            assert_eq!(back.document(3), Some("the end"));
            assert!(matches!(idx.save(&dir), Err(Error::InvalidArgument { .. })));
            fs::remove_dir_all(&root).unwrap();
        }
    }

    #[test]
    fn a_damaged_index_is_corrupt() {
        let mut b = Builder::new();
        b.push("hello");
        let root = tmpdir("bad");
        let dir = root.join("idx");
        b.finish().unwrap().save(&dir).unwrap();
        fs::write(dir.join("sa.bin"), b"123").unwrap();
        assert!(matches!(SuffixIndex::open(&dir), Err(Error::Corrupt(_))));
        fs::write(dir.join("manifest.json"), b"{").unwrap();
        assert!(matches!(SuffixIndex::open(&dir), Err(Error::Corrupt(_))));
        assert!(matches!(
            SuffixIndex::open(&root.join("none")),
            Err(Error::Io { .. })
        ));
        fs::remove_dir_all(&root).unwrap();
    }
}
