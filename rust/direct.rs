//! A file written once, front to back, in aligned blocks that bypass the page cache where the
//! system allows it (`O_DIRECT`), each block then read back into the cache in the background.
//!
//! Why: a buffered write copies every byte into page-cache pages the kernel has just taken
//! from its free lists. On a virtual machine whose host takes freed memory back (free page
//! reporting), the first touch of each such page costs the guest a fault on the host, about
//! 2.7 µs a 4 KB page: on the 2-core bench machine, writing an 800 MB index segment cost 1.5-1.9
//! CPU s in the kernel's copy, against 0.05 s for the same bytes written directly (the device
//! reads them out of the writer's own buffer, which stays warm). Asking for each block back
//! (`POSIX_FADV_WILLNEED`) leaves the file in the page cache as a buffered write does, for the
//! reads that follow (a batch reads the texts it kept as it decides the rest; the next add
//! looks up the segment's tables), at about a fifth of the copy's CPU.
//!
//! The bytes written are the same either way; [`BlockFile::flush`] makes everything written so
//! far readable through any other handle of the file (the partial block is written through
//! the page cache, and written again directly once the block is full). Where `O_DIRECT` is
//! refused (tmpfs on older kernels, some network file systems) or a direct write fails as
//! unsupported, the file is written through the page cache, as before; `TEXTSIEVE_DIRECT_IO=0`
//! in the environment asks for that everywhere.

use std::fs::File;
use std::io::{Error, ErrorKind, Result};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Bytes of a block: written at once, and read back, when full.
pub const BLOCK: usize = 1 << 20;

/// What direct writes need of buffers, offsets and lengths (the largest logical block size of
/// common devices).
const ALIGN: usize = 4096;

#[repr(C, align(4096))]
#[derive(Clone, Copy)]
struct Page([u8; ALIGN]);

/// A file written front to back through a [`BLOCK`]-sized buffer.
pub struct BlockFile {
    file: File,
    /// The same file opened for direct writes (`None`: not possible here).
    direct: Option<File>,
    buf: Vec<Page>,
    /// Bytes of `buf` in use, and how many of them [`BlockFile::flush`] wrote already.
    len: usize,
    shown: usize,
    /// Where `buf` starts in the file.
    at: u64,
}

impl BlockFile {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> Result<Self> {
        Self::create_as(path, direct_wanted())
    }

    /// Creates (or truncates) the file at `path`, written directly if `direct` and possible.
    fn create_as(path: &Path, direct: bool) -> Result<Self> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(BlockFile {
            file,
            direct: direct.then(|| open_direct(path)).flatten(),
            buf: vec![Page([0; ALIGN]); BLOCK / ALIGN],
            len: 0,
            shown: 0,
            at: 0,
        })
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `Page` is `repr(C)` bytes with no padding, so the pages are `BLOCK`
        // contiguous initialized bytes
        unsafe { std::slice::from_raw_parts_mut(self.buf.as_mut_ptr().cast::<u8>(), BLOCK) }
    }

    /// Appends `b`.
    pub fn write_all(&mut self, mut b: &[u8]) -> Result<()> {
        while !b.is_empty() {
            let n = b.len().min(BLOCK - self.len);
            let len = self.len;
            self.bytes_mut()[len..len + n].copy_from_slice(&b[..n]);
            self.len += n;
            b = &b[n..];
            if self.len == BLOCK {
                self.write_block()?;
            }
        }
        Ok(())
    }

    /// Writes the full buffer where it belongs: directly (and asks for it back into the page
    /// cache), or through the page cache where direct writes are not possible.
    fn write_block(&mut self) -> Result<()> {
        let at = self.at;
        let wrote = match &self.direct {
            Some(d) => d.write_all_at(bytes(&self.buf), at),
            None => Err(Error::from(ErrorKind::Unsupported)),
        };
        match wrote {
            Ok(()) => will_need(&self.file, at, BLOCK),
            Err(e) if self.direct.is_some() && !unsupported(&e) => return Err(e),
            Err(_) => {
                // written through the page cache from now on (after what `flush` wrote)
                self.direct = None;
                let shown = self.shown;
                (self.file).write_all_at(&bytes(&self.buf)[shown..], at + shown as u64)?;
            }
        }
        self.at += BLOCK as u64;
        self.len = 0;
        self.shown = 0;
        Ok(())
    }

    /// Makes every byte written so far readable through other handles of the file.
    pub fn flush(&mut self) -> Result<()> {
        if self.len > self.shown {
            let (shown, len, at) = (self.shown, self.len, self.at);
            (self.file).write_all_at(&bytes(&self.buf)[shown..len], at + shown as u64)?;
            self.shown = len;
        }
        Ok(())
    }

    /// Flushes, and gives the file (opened for reading and writing) back.
    pub fn into_inner(mut self) -> Result<File> {
        self.flush()?;
        Ok(self.file)
    }

    /// The file, for a sync of what was flushed.
    pub fn get_ref(&self) -> &File {
        &self.file
    }
}

/// The bytes of a buffer of pages.
fn bytes(pages: &[Page]) -> &[u8] {
    // SAFETY: `Page` is `repr(C)` bytes with no padding, so the pages are contiguous
    // initialized bytes
    unsafe { std::slice::from_raw_parts(pages.as_ptr().cast::<u8>(), std::mem::size_of_val(pages)) }
}

/// Whether direct writes are to be tried: yes unless `TEXTSIEVE_DIRECT_IO` is `0` (for a file
/// system that takes `O_DIRECT` but misbehaves with it, or to measure the difference).
fn direct_wanted() -> bool {
    std::env::var_os("TEXTSIEVE_DIRECT_IO").is_none_or(|v| v != "0")
}

/// `path` opened again for direct writes, where the system allows it.
fn open_direct(path: &Path) -> Option<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        File::options()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

/// Whether a direct write failed because the file or device does not take them as asked
/// (rather than for want of space or an I/O error, which the caller must hear of).
fn unsupported(e: &Error) -> bool {
    e.kind() == ErrorKind::Unsupported || e.raw_os_error() == Some(libc::EINVAL)
}

/// Asks the kernel to read `len` bytes at `at` of `file` into the page cache, in the
/// background.
fn will_need(file: &File, at: u64, len: usize) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: an advice on a range of an open descriptor; it changes no data
        unsafe {
            libc::posix_fadvise(
                file.as_raw_fd(),
                at as libc::off_t,
                len as libc::off_t,
                libc::POSIX_FADV_WILLNEED,
            )
        };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, at, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file holds exactly what was written, in pieces of every size across block
    /// boundaries, flushed at odd points, written directly (where the system allows) or not.
    #[test]
    fn writes_what_it_is_given() {
        for direct in [true, false] {
            writes_what_it_is_given_as(direct);
        }
    }

    fn writes_what_it_is_given_as(direct: bool) {
        let dir = std::env::temp_dir().join(format!("ts-direct-{}-{direct}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let mut want = Vec::new();
        let mut f = BlockFile::create_as(&path, direct).unwrap();
        assert!(direct || f.direct.is_none());
        let mut x = 1u64;
        for i in 0..400usize {
            let n = [1, 7, 4096, 100_003, BLOCK, 3 * BLOCK / 2][i % 6];
            let piece: Vec<u8> = (0..n)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (x >> 56) as u8
                })
                .collect();
            f.write_all(&piece).unwrap();
            want.extend_from_slice(&piece);
            if i % 5 == 0 {
                f.flush().unwrap();
                // readable through another handle at once
                assert_eq!(std::fs::read(&path).unwrap(), want);
            }
            if want.len() > 40 * BLOCK {
                break;
            }
        }
        let file = f.into_inner().unwrap();
        file.write_all_at(b"head", 0).unwrap();
        want[..4].copy_from_slice(b"head");
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), want);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
