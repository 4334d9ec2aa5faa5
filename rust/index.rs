//! The on-disk dedup index: immutable segments of kept documents, looked up memory-mapped.
//!
//! An index is a directory; which segments it holds, its settings and its tombstones are in a
//! manifest the Python layer commits by atomic rename (`textsieve.index`). This module holds the
//! segments and the greedy rule over them:
//!
//! - [`Segment`]: one file per `add` (or per compaction), never changed once written. It holds,
//!   for the documents the add kept, their global numbers (sorted), their text digests (sorted,
//!   for exact copies), their texts (each compressed with LZ4, for exact verification), their
//!   ids, and per band a sorted table of `key << 24 | local position` with a directory by the
//!   key's top bits, so a lookup reads two places of the mapped file.
//! - [`Snapshot`]: the segments and tombstones of one committed state: what queries read. It is
//!   immutable, so queries run beside an add, which builds the next snapshot.
//! - [`Batch`]: an add (or a check) in progress: chunks are decided against the snapshot and
//!   the kept documents of the batch so far (the same rule and code as [`crate::greedy`]), and
//!   the kept ones are gathered for the batch's segment.
//!
//! Segment file (little-endian): a header (magic `TSDXSEG1`, version, bands, documents, keyed
//! documents, directory bits, section count, settings fingerprint, then per section offset,
//! length and CRC-32, then the header's own CRC-32), then the sections, each 8-byte aligned and
//! found by its offset: `DOCS` u32 x n, `DIGESTS` u64 x m, `DIGEST_POS` u32 x m, `TEXT_OFFSETS`
//! u64 x (n+1), `TEXTS`, `ID_OFFSETS` u64 x (n+1), `IDS`, then per band its directory (u32 x
//! (2^p + 1)) and entries (u64 x m), then (version 2 on) `FILTER`, 64-byte aligned: a blocked
//! Bloom filter over every band's keys (see [`Filter`]), so that a key absent from a segment
//! never reads its tables, then (version 4 on) `SHINGLES`: bounds on each document's distinct
//! shingles ([`sections_of`]). Segments are written `TEXTS` first, right after the header (an
//! add writes them as its documents are kept, [`InPlace`]), and the header last. Empty
//! documents (no shingles) are stored but never keyed (m <= n). Version 3 stores texts with
//! LZ4 where versions 1 and 2 used zstd ([`compress_text`]); version 5 may precede a text with
//! its shingles' [`crate::sketch`], which rules out far candidates before their texts are read.
//! Versions 1 (no filter, every key is looked up in the tables), 2 and 3 (no bounds: their
//! documents are always compared) and 4 (no sketches) are still read.

use std::borrow::Cow;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::cluster::{settings_bytes, Config, Keep};
use crate::error::{Error, Result};
use crate::greedy::{
    counts_admit, feature, similarity, Decision, DocRef, Feature, Greedy, KeptLookup, Texts,
    KEY_BITS,
};
use crate::minhash::Worker;
use crate::shingle::{hash64, Scratch};
use crate::sketch::MAX_WORDS;
use crate::store::{Store, DEFAULT_MEMORY_LIMIT};

pub const SEGMENT_MAGIC: &[u8; 8] = b"TSDXSEG1";
pub const SEGMENT_VERSION: u32 = 5;
/// The oldest segment version read (1: no filter section).
const SEGMENT_VERSION_MIN: u32 = 1;
/// Bits of a band entry that hold the document's position in its segment.
const LOCAL_BITS: u32 = 24;
/// The most documents one segment holds.
pub const MAX_SEGMENT_DOCS: usize = 1 << LOCAL_BITS;
const LOCAL_MASK: u64 = (1 << LOCAL_BITS) - 1;
const KEY_MASK: u64 = (1 << KEY_BITS) - 1;
/// Documents decided at a time within a fed chunk (as the local engine).
const CHUNK: usize = 8192;
/// Documents whose lookups in the index are made together: sorted by key, they walk each
/// table once.
const LOOKUPS: usize = 8 * CHUNK;
/// The filters of a snapshot's segments and the band tables of its first segments up to this
/// many bytes in all stay mapped (the filters alone pass it at about 8 million documents: in
/// the tenth add of the 1 GB bench batches a budget of 512 MB kept two segments' tables mapped
/// for a peak 90-170 MB higher, with no gain in time). The tables of the others are read so
/// that their pages do not stay in the process's mapping (otherwise every page of every table
/// read counts in the process's resident memory, which would grow with the index): a walk with
/// few lookups for its table's size reads them with `pread`, a few bytes a lookup, and a denser
/// one maps the table and drops its pages after ([`SPARSE_WALK`]). The filters, read by every
/// lookup, always stay (31 bytes a document); with them a walk reads few entries of a table.
const RESIDENT_TABLES: u64 = 256 << 20;
/// A walk of a table that is not kept mapped reads it with `pread` when it has fewer lookups
/// than one per this many bytes of the table, and through the mapping otherwise. Mapped, a
/// walk's lookups fault in the table 64 KB at a time (and its pages are dropped after): the
/// hundred-odd lookups a table of 7 MB gets in an add of 1 GB batches faulted in most of it, so
/// that the faults and the unmapping cost more than two small reads a lookup (1.5-2 s of kernel
/// time in the tenth add of the bench); a walk with a lookup for nearly every entry (a query of
/// indexed documents) costs a read each, several times what faulting in the table does.
const SPARSE_WALK: usize = 32 << 10;

const DOCS: usize = 0;
const DIGESTS: usize = 1;
const DIGEST_POS: usize = 2;
const TEXT_OFFSETS: usize = 3;
const TEXTS: usize = 4;
const ID_OFFSETS: usize = 5;
const IDS: usize = 6;
const BAND0: usize = 7;

/// The sections of a segment with `bands` bands: the fixed ones, the bands, the filter and (version
/// 4 on) `SHINGLES`, u32 x 2n: how many shingles each document has, repeats counted (at least
/// its distinct shingles; `u32::MAX`: unknown), then how many distinct ones when its add made
/// its shingle set (0: unknown). Bounds on a document's distinct shingles spare comparing it
/// with one much larger or smaller.
fn sections_of(bands: usize) -> usize {
    BAND0 + bands + 2
}

/// Bits of filter for each (band, key) of a segment: about 0.05% false positives (12 bits gave
/// 0.4%, and the table walks of those false positives mapped and dropped pages by the million,
/// about a tenth of the CPU time of checking 1 million documents against a 10-segment index).
const FILTER_BITS_PER_KEY: usize = 16;
/// Per 64-bit word of a filter block, how its bit is drawn from the key's hash (odd
/// multipliers; the bit is the top 6 bits of the product).
const FILTER_SALT: [u32; 8] = [
    0x47b6_137b,
    0x4497_4d91,
    0x8824_ad5b,
    0xa2b7_289d,
    0x7054_95c7,
    0x2df1_424b,
    0x9efc_4947,
    0x5c6b_fb31,
];

/// The blocks (64 bytes each) of the filter of a segment with `m` keyed documents.
fn filter_blocks(m: usize, bands: usize) -> usize {
    (m * bands * FILTER_BITS_PER_KEY).div_ceil(512)
}

/// The hash of band `b`'s key `key` that places it in a filter.
#[inline]
fn filter_hash(b: usize, key: u64) -> u64 {
    let mut z = ((key & KEY_MASK) | (b as u64) << KEY_BITS).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Which block of `blocks` a hash falls in (its top 32 bits, scaled).
#[inline]
fn filter_block(h: u64, blocks: usize) -> usize {
    (((h >> 32) * blocks as u64) >> 32) as usize
}

/// The bit of word `i` of its block that a hash sets.
#[inline]
fn filter_bit(h: u64, i: usize) -> u64 {
    1u64 << ((h as u32).wrapping_mul(FILTER_SALT[i]) >> 26)
}

/// Whether the filter block `line` (64 bytes) has every bit of hash `h`. The eight words are
/// all tested, without a branch on each: half of a block's bits are set, so which word fails
/// first is a coin toss.
#[inline]
fn filter_holds(line: &[u8], h: u64) -> bool {
    let mut missing = 0;
    for (i, w) in line.chunks_exact(8).enumerate() {
        let w = u64::from_le_bytes(w.try_into().unwrap_or([0xff; 8]));
        missing |= !w & filter_bit(h, i);
    }
    missing == 0
}

/// [`filter_holds`] with AVX2: the eight bits made by one multiply and one shift of eight
/// lanes, tested against the block's two halves at once (the per-word loop is most of a
/// lookup's cost once the block is in cache).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn filter_holds_avx2(line: &[u8; 64], h: u64) -> bool {
    use std::arch::x86_64::*;
    // SAFETY: FILTER_SALT is eight u32 (32 bytes) and `line` 64 bytes: every load is inside
    let (salt, w0, w1) = unsafe {
        (
            _mm256_loadu_si256(FILTER_SALT.as_ptr().cast()),
            _mm256_loadu_si256(line.as_ptr().cast()),
            _mm256_loadu_si256(line.as_ptr().add(32).cast()),
        )
    };
    let shift =
        _mm256_srli_epi32::<26>(_mm256_mullo_epi32(_mm256_set1_epi32(h as u32 as i32), salt));
    let one = _mm256_set1_epi64x(1);
    let b0 = _mm256_sllv_epi64(one, _mm256_cvtepu32_epi64(_mm256_castsi256_si128(shift)));
    let b1 = _mm256_sllv_epi64(
        one,
        _mm256_cvtepu32_epi64(_mm256_extracti128_si256::<1>(shift)),
    );
    let missing = _mm256_or_si256(_mm256_andnot_si256(w0, b0), _mm256_andnot_si256(w1, b1));
    _mm256_testz_si256(missing, missing) == 1
}

/// Appends to `kept` the lookups of `sorted` whose [`filter_hash`] (in `hashes`) the filter
/// `mem` of `blocks` blocks may hold: with AVX2 where the CPU has it, else word by word.
fn filter_pass<T: Copy>(
    mem: &[u8],
    blocks: usize,
    sorted: &[T],
    hashes: &[u64],
    kept: &mut Vec<T>,
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above)
        return unsafe { filter_pass_avx2(mem, blocks, sorted, hashes, kept) };
    }
    filter_pass_with(mem, blocks, sorted, hashes, kept, |l, h| filter_holds(l, h));
}

/// [`filter_pass`] with the block test `holds`; the blocks a few lookups ahead are fetched
/// first. A block past the end of `mem` holds anything.
#[inline(always)]
fn filter_pass_with<T: Copy>(
    mem: &[u8],
    blocks: usize,
    sorted: &[T],
    hashes: &[u64],
    kept: &mut Vec<T>,
    holds: impl Fn(&[u8; 64], u64) -> bool,
) {
    const AHEAD: usize = 16;
    let line = |h: u64| {
        let at = 64 * filter_block(h, blocks);
        mem.get(at..at + 64)
            .and_then(|l| <&[u8; 64]>::try_from(l).ok())
    };
    for (j, (&e, &h)) in sorted.iter().zip(hashes).enumerate() {
        if let Some(l) = hashes.get(j + AHEAD).and_then(|&f| line(f)) {
            crate::greedy::prefetch(&l[0]);
        }
        if line(h).is_none_or(|l| holds(l, h)) {
            kept.push(e);
        }
    }
}

/// [`filter_pass`] with [`filter_holds_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn filter_pass_avx2<T: Copy>(
    mem: &[u8],
    blocks: usize,
    sorted: &[T],
    hashes: &[u64],
    kept: &mut Vec<T>,
) {
    // (the closure has this function's AVX2 too)
    filter_pass_with(mem, blocks, sorted, hashes, kept, |l, h| {
        filter_holds_avx2(l, h)
    });
}

/// The lookups of every band of many documents, in the order one pass over a filter takes
/// them: counted into buckets by the top bits of their [`filter_hash`], about sixteen to a
/// bucket, so that a bucket's probes fall in a few KB of any segment's filter (a block is the
/// hash's top bits, scaled) and the filter is read front to back once for all the bands. (A
/// pass per band read each filter once a band: 21 times the cache lines.)
struct Sweep {
    hashes: Vec<u64>,
    /// `b << 24 | i`: the band and the lookup of each hash.
    slots: Vec<u32>,
}

impl Sweep {
    /// The lookups of `keys` (`None`: none wanted), `bands` of each.
    fn new(keys: &[Option<&[u64]>], bands: usize) -> Sweep {
        debug_assert!(keys.len() < 1 << 24 && bands < 1 << 8);
        let per_band: Vec<Vec<(u64, u32)>> = (0..bands)
            .into_par_iter()
            .map(|b| {
                keys.iter()
                    .enumerate()
                    .filter_map(|(i, k)| {
                        Some((filter_hash(b, k.as_ref()?[b]), (b << 24 | i) as u32))
                    })
                    .collect()
            })
            .collect();
        let n: usize = per_band.iter().map(Vec::len).sum();
        let bits = (usize::BITS - n.leading_zeros())
            .saturating_sub(4)
            .clamp(1, 16);
        let shift = 64 - bits;
        let mut start = vec![0u32; (1 << bits) + 1];
        for &(h, _) in per_band.iter().flatten() {
            start[(h >> shift) as usize + 1] += 1;
        }
        for j in 1..start.len() {
            start[j] += start[j - 1];
        }
        let (mut hashes, mut slots) = (vec![0u64; n], vec![0u32; n]);
        for &(h, slot) in per_band.iter().flatten() {
            let at = &mut start[(h >> shift) as usize];
            hashes[*at as usize] = h;
            slots[*at as usize] = slot;
            *at += 1;
        }
        Sweep { hashes, slots }
    }

    /// Part `p` of `parts` (about equal) of the lookups: its range.
    fn part(&self, p: usize, parts: usize) -> std::ops::Range<usize> {
        let n = self.hashes.len();
        n * p / parts..n * (p + 1) / parts
    }
}

/// A blocked Bloom filter being built: each (band, key) sets one bit in each of the eight
/// 64-bit words of one 64-byte block, so that a lookup reads one cache line.
struct Filter {
    words: Vec<u64>,
    blocks: usize,
}

impl Filter {
    fn new(m: usize, bands: usize) -> Self {
        let blocks = filter_blocks(m, bands);
        Filter {
            words: vec![0; blocks * 8],
            blocks,
        }
    }

    #[inline]
    fn insert_hash(&mut self, h: u64) {
        let at = filter_block(h, self.blocks) * 8;
        for (i, w) in self.words[at..at + 8].iter_mut().enumerate() {
            *w |= filter_bit(h, i);
        }
    }

    /// Enters each of `keys` in band `b`: one bit in each word of one block. The block of the
    /// key a few ahead is fetched first (each is a cache miss at random in a filter of tens of
    /// MB).
    fn insert_all(&mut self, b: usize, keys: &[u64]) {
        if self.blocks == 0 {
            return;
        }
        const AHEAD: usize = 16;
        let hashes: Vec<u64> = keys.iter().map(|&k| filter_hash(b, k)).collect();
        for (j, &h) in hashes.iter().enumerate() {
            if let Some(&f) = hashes.get(j + AHEAD) {
                crate::greedy::prefetch(&self.words[filter_block(f, self.blocks) * 8]);
            }
            self.insert_hash(h);
        }
    }

    fn bytes(&self) -> Vec<u8> {
        u64s(&self.words)
    }
}

/// A document's id: an integer or a string.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Id {
    Int(i64),
    Str(String),
}

impl Id {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Id::Int(v) => {
                out.push(0);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Id::Str(s) => {
                out.push(1);
                out.extend_from_slice(s.as_bytes());
            }
        }
    }

    fn decode(b: &[u8]) -> Option<Id> {
        match b.split_first()? {
            (0, rest) => Some(Id::Int(i64::from_le_bytes(rest.try_into().ok()?))),
            (1, rest) => Some(Id::Str(std::str::from_utf8(rest).ok()?.to_string())),
            _ => None,
        }
    }
}

/// The fingerprint of the settings that decide an index's contents (in every segment header).
pub fn settings_fingerprint(cfg: &Config) -> u64 {
    let mut w = Vec::new();
    settings_bytes(cfg, &mut w);
    hash64(&w)
}

thread_local! {
    /// One zstd decompression context per thread (texts of version 1 and 2 segments): making
    /// one costs more than a text's decompression.
    static ZSTD: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// A text as stored: a tag byte, then the UTF-8 bytes (tag 0), or the length (u32) and an LZ4
/// block (tag 2, version 3 segments), or the length and a zstd frame (tag 1, versions 1 and 2,
/// still read). Each text is compressed alone, since a document is read alone when it is
/// compared with one: on 1 KB documents zstd -1 built its entropy tables for each kilobyte, and
/// LZ4, which has none, compresses them 1.7 times as fast (3.1 against 5.3 us a text here,
/// zstd's compression was 13% of the CPU time of adding a million documents to an index) and
/// reads them back 2.4 times as fast (what a candidate from the index costs), to 0.694 of
/// their size against zstd's 0.672. A text that does not shrink is stored as it is.
///
/// Version 5 on, a text may be preceded by its [`crate::sketch`]: tag [`SKETCHED`], the base-2
/// logarithm of its 64-bit words, the words, then the text as above. A candidate from the index
/// is ruled out from its sketch before its text is read and shingled
/// ([`Segment::sketch_admits`]).
fn compress_text(t: &str, sketch: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    compress_text_into(t, sketch, &mut out);
    out
}

/// Appends what [`compress_text`] makes of `t` to `out` (one buffer for many texts: no
/// allocation a text).
fn compress_text_into(t: &str, sketch: &[u64], out: &mut Vec<u8>) {
    if !sketch.is_empty() && sketch.len().is_power_of_two() && sketch.len() <= MAX_WORDS {
        out.push(SKETCHED);
        out.push(sketch.len().trailing_zeros() as u8);
        out.extend(sketch.iter().flat_map(|w| w.to_le_bytes()));
    }
    compress_bare_into(t, out);
}

/// The tag of a stored text preceded by its sketch.
const SKETCHED: u8 = 0x80;

/// The sketch that precedes a stored text, and the text as stored after it (`None` for the
/// sketch when there is none; `None` altogether when the bytes are cut short).
fn split_sketch(b: &[u8]) -> Option<(Option<&[u8]>, &[u8])> {
    match b.split_first()? {
        (&SKETCHED, rest) => {
            let words = 1usize << *rest.first()?.min(&30);
            (words <= MAX_WORDS).then_some(())?;
            let end = 1 + 8 * words;
            Some((Some(rest.get(1..end)?), rest.get(end..)?))
        }
        _ => Some((None, b)),
    }
}

/// Appends a text as stored without a sketch to `out`.
fn compress_bare_into(t: &str, out: &mut Vec<u8>) {
    let raw = t.as_bytes();
    let at = out.len();
    if raw.len() >= 64 {
        let bound = lz4_flex::block::get_maximum_output_size(raw.len());
        out.resize(at + 5 + bound, 0);
        if let Ok(n) = lz4_flex::block::compress_into(raw, &mut out[at + 5..]) {
            if n + 5 < raw.len() {
                out[at] = 2;
                out[at + 1..at + 5].copy_from_slice(&(raw.len() as u32).to_le_bytes());
                out.truncate(at + 5 + n);
                return;
            }
        }
        out.truncate(at);
    }
    out.reserve(raw.len() + 1);
    out.push(0);
    out.extend_from_slice(raw);
}

/// The text [`compress_text`] stored (or an earlier version's zstd frame); `None` for bytes
/// that are not one.
fn decompress_text(b: &[u8]) -> Option<String> {
    let (_, b) = split_sketch(b)?;
    let (tag, rest) = b.split_first()?;
    if *tag == 0 {
        return String::from_utf8(rest.to_vec()).ok();
    }
    let n = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let body = &rest[4..];
    let raw = match tag {
        2 => {
            // an LZ4 block expands at most 255 times: a damaged length allocates nothing large
            if n > body.len().saturating_mul(255) {
                return None;
            }
            let mut raw = vec![0u8; n];
            (lz4_flex::block::decompress_into(body, &mut raw).ok()? == n).then_some(raw)?
        }
        1 => ZSTD
            .with(|z| {
                let mut z = z.borrow_mut();
                if z.is_none() {
                    *z = zstd::bulk::Decompressor::new().ok();
                }
                z.as_mut().map(|d| d.decompress(body, n))
            })?
            .ok()?,
        _ => return None,
    };
    (raw.len() == n).then_some(())?;
    String::from_utf8(raw).ok()
}

/// Pushes the position of each of a band table's `entries` (from a key's directory slot on,
/// in key order) whose key is `key`.
fn push_matching(entries: impl Iterator<Item = u64>, key: u64, out: &mut Vec<u32>) {
    for e in entries {
        let k = e >> LOCAL_BITS;
        if k == key {
            out.push((e & LOCAL_MASK) as u32);
        } else if k > key {
            break;
        }
    }
}

/// The directory bits for `m` keyed documents: about four entries a directory slot.
fn dir_bits(m: usize) -> u32 {
    let mut p = 0;
    while p < 24 && (1usize << p) * 4 < m {
        p += 1;
    }
    p
}

fn header_len(sections: usize) -> usize {
    48 + 24 * sections + 8
}

/// Bytes written to a segment between two background syncs.
const SYNC_EVERY: u64 = 64 << 20;

/// Writes a segment's sections in order, each 8-byte aligned, with its CRC.
struct SegmentWriter {
    file: crate::direct::BlockFile,
    path: PathBuf,
    pos: u64,
    /// A sync of what was written up to `synced`, running in the background: started every
    /// [`SYNC_EVERY`] bytes (skipped while the last one runs), so that the disk writes
    /// overlap the compression instead of all waiting for the final sync (hundreds of MB).
    syncing: Option<std::thread::JoinHandle<std::io::Result<()>>>,
    synced: u64,
    /// (section index, offset, length, CRC) in the order written.
    sections: Vec<(usize, u64, u64, u32)>,
    crc: crc32fast::Hasher,
    start: u64,
    cur: usize,
    head: [u64; 3],
    p: u32,
    bands: usize,
    fp: u64,
}

impl SegmentWriter {
    fn create(path: &Path, bands: usize, n: usize, m: usize, fp: u64) -> Result<Self> {
        let io = |e: std::io::Error| io_error(path, "cannot write", e);
        let file = crate::direct::BlockFile::create(path).map_err(io)?;
        let mut w = SegmentWriter {
            file,
            path: path.to_path_buf(),
            pos: 0,
            syncing: None,
            synced: 0,
            sections: Vec::new(),
            crc: crc32fast::Hasher::new(),
            start: 0,
            cur: 0,
            head: [n as u64, m as u64, 0],
            p: dir_bits(m),
            bands,
            fp,
        };
        let zeros = vec![0u8; header_len(sections_of(bands))];
        w.raw(&zeros)?;
        Ok(w)
    }

    /// Sets the documents and keyed documents of the segment (one begun before they were
    /// known, its texts written as they were kept), before its band tables are written.
    fn counts(&mut self, n: usize, m: usize) {
        self.head = [n as u64, m as u64, 0];
        self.p = dir_bits(m);
    }

    fn raw(&mut self, b: &[u8]) -> Result<()> {
        self.file
            .write_all(b)
            .map_err(|e| io_error(&self.path, "cannot write", e))?;
        self.pos += b.len() as u64;
        if self.pos - self.synced >= SYNC_EVERY
            && self.syncing.as_ref().is_none_or(|t| t.is_finished())
        {
            self.join_sync()?;
            let io = |e| io_error(&self.path, "cannot write", e);
            self.file.flush().map_err(io)?;
            let f = self.file.get_ref().try_clone().map_err(io)?;
            self.syncing = Some(std::thread::spawn(move || f.sync_data()));
            self.synced = self.pos;
        }
        Ok(())
    }

    /// Waits for the background sync, if any; its error is this write's.
    fn join_sync(&mut self) -> Result<()> {
        let Some(t) = self.syncing.take() else {
            return Ok(());
        };
        let done = t
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the sync thread panicked")));
        done.map_err(|e| io_error(&self.path, "cannot write", e))
    }

    /// Starts the next section (by index: as many as were written).
    fn begin(&mut self) -> Result<()> {
        self.begin_at(self.sections.len())
    }

    /// Starts section `idx` (sections may be written out of order).
    fn begin_at(&mut self, idx: usize) -> Result<()> {
        self.begin_aligned(idx, 8)
    }

    /// Starts section `idx` at an offset that is a multiple of `align` (at most 64).
    fn begin_aligned(&mut self, idx: usize, align: u64) -> Result<()> {
        self.cur = idx;
        let pad = (align - self.pos % align) % align;
        self.raw(&[0u8; 64][..pad as usize])?;
        self.start = self.pos;
        self.crc = crc32fast::Hasher::new();
        Ok(())
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.crc.update(b);
        self.raw(b)
    }

    fn end(&mut self) {
        let crc = std::mem::take(&mut self.crc).finalize();
        self.sections
            .push((self.cur, self.start, self.pos - self.start, crc));
    }

    fn section(&mut self, b: &[u8]) -> Result<()> {
        self.section_at(self.sections.len(), b)
    }

    fn section_at(&mut self, idx: usize, b: &[u8]) -> Result<()> {
        self.begin_at(idx)?;
        self.write(b)?;
        self.end();
        Ok(())
    }

    /// Writes the filter section (the last one, after the bands).
    fn filter(&mut self, f: &Filter) -> Result<()> {
        self.begin_aligned(BAND0 + self.bands, 64)?;
        self.write(&f.bytes())?;
        self.end();
        Ok(())
    }

    /// Writes the header, flushes and syncs the file.
    fn finish(mut self) -> Result<()> {
        let io = |p: &Path, e| io_error(p, "cannot write", e);
        self.sections.sort_by_key(|s| s.0);
        debug_assert!(self.sections.iter().enumerate().all(|(i, s)| s.0 == i));
        let mut h = Vec::with_capacity(header_len(self.sections.len()));
        h.extend_from_slice(SEGMENT_MAGIC);
        h.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
        h.extend_from_slice(&(self.bands as u32).to_le_bytes());
        h.extend_from_slice(&self.head[0].to_le_bytes());
        h.extend_from_slice(&self.head[1].to_le_bytes());
        h.extend_from_slice(&self.p.to_le_bytes());
        h.extend_from_slice(&(self.sections.len() as u32).to_le_bytes());
        h.extend_from_slice(&self.fp.to_le_bytes());
        for &(_, o, l, c) in &self.sections {
            h.extend_from_slice(&o.to_le_bytes());
            h.extend_from_slice(&l.to_le_bytes());
            h.extend_from_slice(&c.to_le_bytes());
            h.extend_from_slice(&0u32.to_le_bytes());
        }
        let crc = crc32fast::hash(&h);
        h.extend_from_slice(&crc.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        let path = self.path.clone();
        self.join_sync()?;
        self.file.flush().map_err(|e| io(&path, e))?;
        let mut f = self.file.into_inner().map_err(|e| io(&path, e))?;
        f.seek(SeekFrom::Start(0)).map_err(|e| io(&path, e))?;
        f.write_all(&h).map_err(|e| io(&path, e))?;
        f.sync_all().map_err(|e| io(&path, e))?;
        Ok(())
    }
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: format!("{what}: {e}"),
    }
}

fn u64s(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn u32s(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes the band tables and then the filter of a segment: `entries(b)` gives band `b`'s
/// `key << LOCAL_BITS | local` of every keyed document, in any order.
fn write_bands(
    w: &mut SegmentWriter,
    m: usize,
    entries: impl Fn(usize) -> Vec<u64> + Sync,
) -> Result<()> {
    let mut bands = Bands::new(w.bands, w.p, m);
    bands.write_from(w, 0, &entries)
}

/// A segment's band tables being built, and its filter.
struct Bands {
    filter: Filter,
    bands: usize,
    p: u32,
}

impl Bands {
    /// For a segment of `m` keyed documents with `p` directory bits.
    fn new(bands: usize, p: u32, m: usize) -> Self {
        Bands {
            filter: Filter::new(m, bands),
            bands,
            p,
        }
    }

    /// The tables of `range` (directory and sorted entries, band by band), sorted on every
    /// core.
    fn tables(
        p: u32,
        range: std::ops::Range<usize>,
        entries: &(impl Fn(usize) -> Vec<u64> + Sync),
    ) -> Vec<(Vec<u32>, Vec<u64>)> {
        range
            .into_par_iter()
            .map(|b| {
                let mut e = entries(b);
                crate::shingle::sort_uniform(&mut e);
                (band_dir(p, &e), e)
            })
            .collect()
    }

    /// [`Bands::tables`] of `range`, their keys entered in the filter.
    fn build(
        &mut self,
        range: std::ops::Range<usize>,
        entries: &(impl Fn(usize) -> Vec<u64> + Sync),
    ) -> Vec<(Vec<u32>, Vec<u64>)> {
        let tables = Self::tables(self.p, range.clone(), entries);
        for (b, (_, e)) in range.zip(&tables) {
            let keys: Vec<u64> = e.iter().map(|x| x >> LOCAL_BITS).collect();
            self.filter.insert_all(b, &keys);
        }
        tables
    }

    /// Builds and writes the tables of bands `from..`, a few at a time (as many as there are
    /// cores: one band's entries are 8 bytes a document), then the filter.
    fn write_from(
        &mut self,
        w: &mut SegmentWriter,
        from: usize,
        entries: &(impl Fn(usize) -> Vec<u64> + Sync),
    ) -> Result<()> {
        let group = rayon::current_num_threads().clamp(1, 4);
        for first in (from..self.bands).step_by(group) {
            let tables = self.build(first..(first + group).min(self.bands), entries);
            put_tables(w, tables)?;
        }
        w.filter(&self.filter)
    }
}

/// Writes built band tables, in band order.
fn put_tables(w: &mut SegmentWriter, tables: Vec<(Vec<u32>, Vec<u64>)>) -> Result<()> {
    for (dir, e) in tables {
        w.begin()?;
        w.write(&u32s(&dir))?;
        if dir.len() % 2 == 1 {
            w.write(&[0u8; 4])?;
        }
        for piece in e.chunks(1 << 13) {
            w.write(&u64s(piece))?;
        }
        w.end();
    }
    Ok(())
}

/// The directory of a band's sorted entries: where the keys with each top `p` bits start.
fn band_dir(p: u32, entries: &[u64]) -> Vec<u32> {
    let shift = KEY_BITS - p;
    let mut dir = Vec::with_capacity((1 << p) + 1);
    let mut i = 0usize;
    for u in 0..=(1u64 << p) {
        while i < entries.len() && (entries[i] >> LOCAL_BITS) >> shift < u {
            i += 1;
        }
        dir.push(i as u32);
    }
    dir
}

/// A segment begun before its batch is decided: its file (a hidden temporary one in the
/// batch's folder until [`Pending::write`] names it) holds the compressed texts of the kept
/// documents as they are kept, in number order, where the segment keeps them: nothing is
/// copied when the segment is finished.
struct InPlace {
    /// Taken when the segment is written (by a batch shared with readers of its texts).
    w: std::sync::Mutex<Option<SegmentWriter>>,
    /// The file again, to read texts back (for the documents decided after them).
    read: File,
    tmp: PathBuf,
    /// Where each text starts in the file, then where the last one ends.
    offs: Vec<u64>,
}

impl std::fmt::Debug for InPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "InPlace({}, {} texts)",
            self.tmp.display(),
            self.offs.len() - 1
        )
    }
}

impl InPlace {
    fn create(dir: &Path, bands: usize, fp: u64) -> Result<Self> {
        static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let made = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(".seg-{}-{made}.tmp", std::process::id()));
        let mut w = SegmentWriter::create(&tmp, bands, 0, 0, fp)?;
        w.begin_at(TEXTS)?;
        let read = File::open(&tmp).map_err(|e| io_error(&tmp, "cannot read", e))?;
        let offs = vec![w.pos];
        Ok(InPlace {
            w: std::sync::Mutex::new(Some(w)),
            read,
            tmp,
            offs,
        })
    }

    fn put(&mut self, z: &[u8]) -> Result<()> {
        let w = (self.writer()).ok_or_else(|| Error::invalid("texts", "segment written"))?;
        w.write(z)?;
        let end = w.pos;
        self.offs.push(end);
        Ok(())
    }

    fn writer(&mut self) -> Option<&mut SegmentWriter> {
        self.w.get_mut().unwrap_or_else(|e| e.into_inner()).as_mut()
    }

    /// Makes what was put readable through `read`.
    fn flush(&mut self) -> Result<()> {
        let tmp = self.tmp.clone();
        match self.writer() {
            Some(w) => (w.file.flush()).map_err(|e| io_error(&tmp, "cannot write", e)),
            None => Ok(()),
        }
    }

    fn get(&self, i: usize) -> Option<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let (a, b) = (*self.offs.get(i)?, *self.offs.get(i + 1)?);
        let mut buf = vec![0u8; (b - a) as usize];
        self.read.read_exact_at(&mut buf, a).ok()?;
        Some(buf)
    }
}

impl Drop for InPlace {
    fn drop(&mut self) {
        // a batch dropped before its segment was written leaves nothing behind
        if self.writer().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Texts as stored ([`compress_text`]) one after another in one buffer, made on one core, and
/// where each ends.
struct PackedRun {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

/// Texts a [`PackedRun`] holds: enough for a core's share to outweigh handing it out, few
/// enough that a chunk's runs spread over the cores.
const PACK_RUN: usize = 128;

impl PackedRun {
    fn pieces(&self) -> impl Iterator<Item = &[u8]> + Clone {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(a, &b)| &self.bytes[a..b])
    }
}

/// The kept documents of a batch, gathered for its segment.
#[derive(Debug, Default)]
struct Pending {
    docs: Vec<u32>,
    /// Per band, `key << LOCAL_BITS | i` for each document `i` (in the order pushed) that is
    /// not empty: the band's table entries once `i` is made the document's place in the
    /// segment (the same where documents are kept in number order). Held band by band, as the
    /// tables are, so that writing the segment sorts them where they are (with a document's
    /// keys side by side, each band's gather read all of them, and the tables were a second
    /// copy); taken by [`Pending::write`].
    entries: std::sync::Mutex<Vec<Vec<u64>>>,
    empty: Vec<bool>,
    digests: Vec<u64>,
    /// Shingles counted with repeats ([`crate::cluster::Signed::shingles`]), and distinct
    /// shingles when their set was made (0: not made).
    shingles: Vec<u32>,
    distinct: Vec<u32>,
    /// The texts, by position: in memory up to a limit, then in an unlinked temporary file.
    texts: Store,
    /// Whether `texts` holds them as stored in a segment ([`compress_text`]): compressed as
    /// they are kept, a chunk at a time on every core, where the segment is to be written;
    /// as they are where the batch only decides (a check).
    packed: bool,
    /// Where the segment is begun, when its texts can be written in place as they are kept
    /// (kept in number order, for a segment with `bands` bands and settings `fp`).
    in_place_at: Option<(PathBuf, usize, u64)>,
    in_place: Option<InPlace>,
    id_offsets: Vec<u64>,
    ids: Vec<u8>,
    pos: FxHashMap<u32, u32>,
}

impl Pending {
    fn new(spill_dir: &Path, packed: bool) -> Self {
        Pending {
            texts: Store::spilling(spill_dir, DEFAULT_MEMORY_LIMIT),
            packed,
            id_offsets: vec![0],
            ..Default::default()
        }
    }

    fn text(&self, doc: u32) -> Option<String> {
        let i = *self.pos.get(&doc)?;
        if let Some(ip) = &self.in_place {
            decompress_text(&ip.get(i as usize)?)
        } else if self.packed {
            decompress_text(&self.texts.get_bytes(i)?)
        } else {
            self.texts.get(i).map(Cow::into_owned)
        }
    }

    fn shingles(&self, doc: u32) -> Option<(u32, u32)> {
        let i = *self.pos.get(&doc)? as usize;
        Some((self.distinct[i], self.shingles[i]))
    }

    /// Adds kept document `doc`, the `d`th of `signed`, with `distinct` shingles (0: not
    /// counted); its text is then given to [`Pending::put_texts`].
    fn push(
        &mut self,
        doc: u32,
        signed: &crate::cluster::Signed,
        d: usize,
        distinct: u32,
        id: &Id,
    ) {
        let i = self.docs.len() as u32;
        self.pos.insert(doc, i);
        self.docs.push(doc);
        if !signed.empty[d] {
            let entries = self.entries.get_mut().unwrap_or_else(|e| e.into_inner());
            entries.resize_with(signed.bands, Vec::new);
            let keys = &signed.keys[d * signed.bands..(d + 1) * signed.bands];
            for (e, &k) in entries.iter_mut().zip(keys) {
                e.push((k & KEY_MASK) << LOCAL_BITS | u64::from(i) & LOCAL_MASK);
            }
        }
        self.empty.push(signed.empty[d]);
        self.digests.push(signed.digests[d]);
        self.shingles.push(signed.shingles[d]);
        self.distinct.push(distinct);
        id.encode(&mut self.ids);
        self.id_offsets.push(self.ids.len() as u64);
    }

    /// Room for `docs` kept documents in all, with `bands` bands.
    fn reserve(&mut self, docs: usize, bands: usize) {
        let more = docs.saturating_sub(self.docs.len());
        let id_bytes = self.ids.len() / self.docs.len().max(1);
        self.docs.reserve(more);
        let entries = self.entries.get_mut().unwrap_or_else(|e| e.into_inner());
        entries.resize_with(bands, Vec::new);
        for e in entries {
            e.reserve(more);
        }
        self.empty.reserve(more);
        self.digests.reserve(more);
        self.shingles.reserve(more);
        self.distinct.reserve(more);
        self.id_offsets.reserve(more);
        self.ids.reserve(more * id_bytes * 11 / 10);
        self.pos.reserve(more);
    }

    /// Stores the texts of the documents pushed since the last call, in order (one write).
    /// Each text comes with its [`crate::sketch`] (empty: none), stored beside it in a segment.
    fn put_texts<'a>(
        &mut self,
        texts: impl IntoIterator<Item = (&'a str, &'a [u64])>,
    ) -> Result<()> {
        let texts: Vec<(&str, &[u64])> = texts.into_iter().collect();
        let packed = self.pack(&texts);
        self.put_packed(&texts, packed)
    }

    /// What [`Pending::put_packed`] stores for `texts`: compressed on every core when the
    /// batch keeps them so (None: kept as they are). Touches nothing of the batch, so it can
    /// run beside the deciding of the next chunk.
    fn pack(&self, texts: &[(&str, &[u64])]) -> Option<Vec<PackedRun>> {
        self.packed.then(|| {
            texts
                .par_chunks(PACK_RUN)
                .map(|run| {
                    let size = run.iter().map(|(t, s)| t.len() + 8 * s.len() + 8);
                    let mut bytes = Vec::with_capacity(size.sum::<usize>() * 11 / 10);
                    let ends = run
                        .iter()
                        .map(|&(t, sketch)| {
                            compress_text_into(t, sketch, &mut bytes);
                            bytes.len()
                        })
                        .collect();
                    PackedRun { bytes, ends }
                })
                .collect()
        })
    }

    /// Stores `texts` (of the documents pushed since the last call, in order), or what
    /// [`Pending::pack`] made of them.
    fn put_packed(
        &mut self,
        texts: &[(&str, &[u64])],
        packed: Option<Vec<PackedRun>>,
    ) -> Result<()> {
        let pieces = packed
            .as_ref()
            .map(|p| p.iter().flat_map(PackedRun::pieces));
        if let (Some(pieces), Some((dir, bands, fp))) = (pieces.clone(), &self.in_place_at) {
            if self.in_place.is_none() {
                self.in_place = Some(InPlace::create(dir, *bands, *fp)?);
            }
            let ip = self.in_place.as_mut().expect("made above");
            for z in pieces {
                ip.put(z)?;
            }
            ip.flush()?;
            return (ip.offs.len() - 1 == self.docs.len())
                .then_some(())
                .ok_or_else(|| Error::invalid("texts", "a kept document has no text"));
        }
        let from = self.texts.len() as u32;
        let stored = match pieces {
            Some(pieces) => self.texts.put_bytes_many((from..).zip(pieces)),
            None => self.texts.put_many((from..).zip(texts.iter().map(|t| t.0))),
        };
        stored.and_then(|()| {
            (self.texts.len() == self.docs.len())
                .then_some(())
                .ok_or_else(|| Error::invalid("texts", "a kept document has no text"))
        })
    }

    /// Writes the texts section of the segment, the documents in `order`; where each starts.
    fn write_texts(&self, w: &mut SegmentWriter, order: &[u32]) -> Result<Vec<u64>> {
        w.begin_at(TEXTS)?;
        let mut offs = Vec::with_capacity(order.len() + 1);
        offs.push(0u64);
        let mut put = |w: &mut SegmentWriter, z: &[u8]| {
            offs.push(offs.last().copied().unwrap_or(0) + z.len() as u64);
            w.write(z)
        };
        if self.packed {
            self.texts.for_each_bytes(order, |z| match z {
                Some(z) if !z.is_empty() => put(w, z),
                _ => Err(Error::invalid("texts", "a kept document has no text")),
            })?;
        } else {
            for block in order.chunks(4096) {
                let packed: Vec<Vec<u8>> = block
                    .par_iter()
                    .map(|&i| compress_text(&self.texts.get(i).unwrap_or_default(), &[]))
                    .collect();
                for z in packed {
                    put(w, &z)?;
                }
            }
        }
        w.end();
        self.texts.check()?;
        Ok(offs)
    }

    /// Writes the segment: the documents sorted by number, their texts first (already there
    /// when they were written in place).
    fn write(&self, path: &Path, bands: usize, fp: u64) -> Result<()> {
        let n = self.docs.len();
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by_key(|&i| self.docs[i as usize]);
        let keyed: Vec<u32> = (0..n as u32)
            .filter(|&l| !self.empty[order[l as usize] as usize])
            .collect();
        let m = keyed.len();
        let in_place = self.in_place.as_ref().and_then(|ip| {
            let w = ip.w.lock().unwrap_or_else(|e| e.into_inner()).take()?;
            Some((w, &ip.tmp, &ip.offs))
        });
        let (mut w, moved) = match in_place {
            Some((mut w, tmp, offs)) => {
                if order.iter().enumerate().any(|(l, &i)| l as u32 != i) {
                    let _ = std::fs::remove_file(tmp);
                    return Err(Error::invalid(
                        "texts",
                        "kept documents out of number order",
                    ));
                }
                w.counts(n, m);
                (w, Some((tmp, offs)))
            }
            None => (SegmentWriter::create(path, bands, n, m, fp)?, None),
        };
        let written = self.write_rest(&mut w, &order, &keyed, bands, moved.map(|x| &x.1[..]));
        let Some((tmp, _)) = moved else {
            return written.and_then(|()| w.finish());
        };
        let done = written
            .and_then(|()| w.finish())
            .and_then(|()| {
                std::fs::rename(tmp, path).map_err(|e| io_error(path, "cannot write", e))
            })
            .and_then(|()| sync_dir(path));
        if done.is_err() {
            let _ = std::fs::remove_file(tmp);
        }
        done
    }

    /// Writes every section but the header, after the texts when they are in place (`offs`:
    /// where each starts in the file, then where the last ends).
    fn write_rest(
        &self,
        w: &mut SegmentWriter,
        order: &[u32],
        keyed: &[u32],
        bands: usize,
        offs: Option<&[u64]>,
    ) -> Result<()> {
        let (n, m) = (order.len(), keyed.len());
        let taken = std::mem::take(&mut *self.entries.lock().unwrap_or_else(|e| e.into_inner()));
        let whole = (taken.is_empty() && m == 0)
            || (taken.len() == bands && taken.iter().all(|e| e.len() == m));
        if !whole {
            return Err(Error::invalid("texts", "segment written"));
        }
        let mut taken: Vec<std::sync::Mutex<Vec<u64>>> =
            taken.into_iter().map(std::sync::Mutex::new).collect();
        taken.resize_with(bands, Default::default);
        // a document's place in the segment, where it is not its place in `self` (kept out of
        // number order)
        let place: Option<Vec<u32>> =
            order
                .iter()
                .enumerate()
                .any(|(l, &i)| l as u32 != i)
                .then(|| {
                    let mut place = vec![0u32; n];
                    for (l, &i) in order.iter().enumerate() {
                        place[i as usize] = l as u32;
                    }
                    place
                });
        let lock = |b: usize| taken[b].lock().unwrap_or_else(|e| e.into_inner());
        // the texts (compressed as they were kept, or here a block at a time in parallel),
        // while the band tables are sorted where they are, and the filter filled beside both
        // (its inserts are cache misses, one core's work; a band's keys are the same sorted or
        // not)
        let p = w.p;
        let mut filter = Filter::new(m, bands);
        let ((offs, dirs), ()) = rayon::join(
            || {
                rayon::join(
                    || match offs {
                        Some(o) => {
                            w.end();
                            Ok(o.iter().map(|&x| x - o[0]).collect())
                        }
                        None => self.write_texts(w, order),
                    },
                    || {
                        (0..bands)
                            .into_par_iter()
                            .map(|b| {
                                let mut e = lock(b);
                                if let Some(place) = &place {
                                    for x in e.iter_mut() {
                                        let l = place[(*x & LOCAL_MASK) as usize];
                                        *x = *x & !LOCAL_MASK | u64::from(l);
                                    }
                                }
                                crate::shingle::sort_uniform(&mut e);
                                band_dir(p, &e)
                            })
                            .collect::<Vec<_>>()
                    },
                )
            },
            || {
                for b in 0..bands {
                    let keys: Vec<u64> = lock(b).iter().map(|x| x >> LOCAL_BITS).collect();
                    filter.insert_all(b, &keys);
                }
            },
        );
        let offs = offs?;
        let docs: Vec<u32> = order.iter().map(|&i| self.docs[i as usize]).collect();
        w.section_at(DOCS, &u32s(&docs))?;
        let mut dig: Vec<(u64, u32)> = keyed
            .iter()
            .map(|&l| (self.digests[order[l as usize] as usize], l))
            .collect();
        dig.sort_unstable();
        w.section_at(DIGESTS, &u64s(&dig.iter().map(|d| d.0).collect::<Vec<_>>()))?;
        w.section_at(
            DIGEST_POS,
            &u32s(&dig.iter().map(|d| d.1).collect::<Vec<_>>()),
        )?;
        w.section_at(TEXT_OFFSETS, &u64s(&offs))?;
        let mut id_offs = Vec::with_capacity(n + 1);
        id_offs.push(0u64);
        for &i in order {
            let len = self.id_offsets[i as usize + 1] - self.id_offsets[i as usize];
            id_offs.push(id_offs.last().copied().unwrap_or(0) + len);
        }
        w.section_at(ID_OFFSETS, &u64s(&id_offs))?;
        w.begin_at(IDS)?;
        for &i in order {
            let (a, b) = (
                self.id_offsets[i as usize] as usize,
                self.id_offsets[i as usize + 1] as usize,
            );
            w.write(&self.ids[a..b])?;
        }
        w.end();
        let entries = taken
            .into_iter()
            .map(|e| e.into_inner().unwrap_or_else(|e| e.into_inner()));
        put_tables(w, dirs.into_iter().zip(entries).collect())?;
        w.filter(&filter)?;
        let shingles: Vec<u32> = (order.iter().map(|&i| self.shingles[i as usize]))
            .chain(order.iter().map(|&i| self.distinct[i as usize]))
            .collect();
        w.section(&u32s(&shingles))
    }
}

/// Makes the entry of `path` in its folder durable (after a rename).
fn sync_dir(path: &Path) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, "cannot sync", e))
}

/// One segment file, memory-mapped.
#[derive(Debug)]
pub struct Segment {
    pub path: PathBuf,
    map: Mmap,
    /// The texts are read from the file, not the mapping: verifying a candidate reads one
    /// text, where a mapped read would map (and count as resident) the pages around it.
    file: File,
    /// Documents, and the keyed (non-empty) ones.
    pub n: usize,
    m: usize,
    p: u32,
    sections: Vec<(usize, usize, u32)>,
    /// The filter's offset in the file and its blocks (version 2 on; `None`: every key may be
    /// there).
    filter: Option<(usize, usize)>,
    /// Whether the filter's checksum holds, found on first use (read where it is mapped: a
    /// batch's lookups probe it in hash order, front to back, so its 4 KB pages are each
    /// mapped once and their TLB misses few; a copy into memory cost its zeroing and copying
    /// on every open). `false`: every key is looked up in the tables (the answers stay
    /// right; `verify` reports the damage).
    filter_ok: std::sync::OnceLock<bool>,
    /// Whether it counts its documents' shingles (version 4 on).
    sized: bool,
    pub version: u32,
    pub header_crc: u32,
    pub bytes: u64,
    pub first: u32,
    pub last: u32,
}

impl Segment {
    /// Opens a segment written for settings with fingerprint `fp`; with `verify`, every
    /// section's checksum is checked (the file is read through once, not kept in memory). A
    /// truncated, corrupt or foreign file is an error naming it.
    pub fn open(path: &Path, bands: usize, fp: u64, verify: bool) -> Result<Segment> {
        let corrupt = |m: String| Error::Corrupt(format!("{}: {m}", path.display()));
        let mut file = File::open(path).map_err(|e| io_error(path, "cannot open", e))?;
        let bytes = file
            .metadata()
            .map_err(|e| io_error(path, "cannot read", e))?
            .len();
        let mut head = vec![0u8; 48];
        file.read_exact(&mut head)
            .map_err(|_| corrupt("truncated (shorter than a segment header)".into()))?;
        if &head[..8] != SEGMENT_MAGIC {
            return Err(corrupt(
                "not a textsieve index segment (bad magic bytes)".into(),
            ));
        }
        let rd32 =
            |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]));
        let rd64 =
            |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]));
        let version = rd32(&head, 8);
        if !(SEGMENT_VERSION_MIN..=SEGMENT_VERSION).contains(&version) {
            return Err(corrupt(format!(
                "segment format version {version}; this textsieve reads versions \
                 {SEGMENT_VERSION_MIN} to {SEGMENT_VERSION}"
            )));
        }
        let filtered = version >= 2;
        let sized = version >= 4;
        let seg_bands = rd32(&head, 12) as usize;
        let (n, m, p) = (
            rd64(&head, 16) as usize,
            rd64(&head, 24) as usize,
            rd32(&head, 32),
        );
        let ns = rd32(&head, 36) as usize;
        if rd64(&head, 40) != fp {
            return Err(corrupt(
                "segment written for other settings (a foreign segment)".into(),
            ));
        }
        if ns != BAND0 + seg_bands + filtered as usize + sized as usize
            || seg_bands != bands
            || p > 24
            || m > n
            || n > MAX_SEGMENT_DOCS
        {
            return Err(corrupt(format!(
                "segment header does not match the index ({seg_bands} bands for {bands})"
            )));
        }
        let hl = header_len(ns);
        head.resize(hl, 0);
        file.read_exact(&mut head[48..])
            .map_err(|_| corrupt("truncated header".into()))?;
        let header_crc = rd32(&head, hl - 8);
        if crc32fast::hash(&head[..hl - 8]) != header_crc {
            return Err(corrupt(
                "header checksum mismatch (the file is corrupt)".into(),
            ));
        }
        let mut sections = Vec::with_capacity(ns);
        for s in 0..ns {
            let at = 48 + 24 * s;
            let (o, l, c) = (rd64(&head, at), rd64(&head, at + 8), rd32(&head, at + 16));
            if o.checked_add(l).is_none_or(|end| end > bytes) || o % 8 != 0 {
                return Err(corrupt(format!(
                    "truncated: section {s} ends past the end of the file ({bytes} bytes)"
                )));
            }
            sections.push((o as usize, l as usize, c));
        }
        let dir = (1usize << p) + 1;
        let dir_bytes = (dir * 4).div_ceil(8) * 8;
        let want = |s: usize| -> Option<usize> {
            Some(match s {
                DOCS => 4 * n,
                DIGESTS => 8 * m,
                DIGEST_POS => 4 * m,
                TEXT_OFFSETS | ID_OFFSETS => 8 * (n + 1),
                TEXTS | IDS => return None,
                s if s == BAND0 + bands => 64 * filter_blocks(m, bands),
                s if s == BAND0 + bands + 1 => 8 * n,
                _ => dir_bytes + 8 * m,
            })
        };
        for (s, &(_, l, _)) in sections.iter().enumerate() {
            if want(s).is_some_and(|w| w != l) {
                return Err(corrupt(format!("section {s} has the wrong length")));
            }
        }
        if verify {
            file.seek(SeekFrom::Start(0))
                .map_err(|e| io_error(path, "cannot read", e))?;
            let mut buf = vec![0u8; 1 << 20];
            for (s, &(o, l, c)) in sections.iter().enumerate() {
                file.seek(SeekFrom::Start(o as u64))
                    .map_err(|e| io_error(path, "cannot read", e))?;
                let mut h = crc32fast::Hasher::new();
                let mut left = l;
                while left > 0 {
                    let k = left.min(buf.len());
                    file.read_exact(&mut buf[..k])
                        .map_err(|e| io_error(path, "cannot read", e))?;
                    h.update(&buf[..k]);
                    left -= k;
                }
                if h.finalize() != c {
                    return Err(corrupt(format!(
                        "checksum mismatch in section {s} (the file is corrupt)"
                    )));
                }
            }
        }
        // SAFETY: segments are never written after they are committed (a new state writes new
        // files); a file changed by someone else is caught by the checksums or gives wrong
        // answers, never undefined behaviour, as every read below goes through bounds checks.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| io_error(path, "cannot map", e))?;
        // lookups jump around the file: no read-ahead (it would fill memory for nothing)
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Random);
        let mut seg = Segment {
            path: path.to_path_buf(),
            map,
            file,
            n,
            m,
            p,
            filter: filtered.then(|| (sections[BAND0 + bands].0, filter_blocks(m, bands))),
            filter_ok: std::sync::OnceLock::new(),
            sized,
            sections,
            version,
            header_crc,
            bytes,
            first: 0,
            last: 0,
        };
        if n > 0 {
            seg.first = seg.doc(0);
            seg.last = seg.doc(n - 1);
        }
        Ok(seg)
    }

    #[inline]
    fn u32_at(&self, s: usize, i: usize) -> u32 {
        let o = self.sections[s].0 + 4 * i;
        self.map
            .get(o..o + 4)
            .map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
    }

    #[inline]
    fn u64_at(&self, s: usize, i: usize) -> u64 {
        let o = self.sections[s].0 + 8 * i;
        self.map
            .get(o..o + 8)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }

    /// At least and at most how many distinct shingles the document at `local` has, when
    /// the segment counts them.
    fn shingles(&self, local: usize) -> Option<(u32, u32)> {
        // (the last section)
        let s = self.sections.len() - 1;
        (self.sized && local < self.n)
            .then(|| (self.u32_at(s, self.n + local), self.u32_at(s, local)))
    }

    /// The global number of the document at `local`.
    #[inline]
    pub fn doc(&self, local: usize) -> u32 {
        self.u32_at(DOCS, local)
    }

    /// The position of document `doc` in this segment.
    pub fn local(&self, doc: u32) -> Option<usize> {
        if self.n == 0 || doc < self.first || doc > self.last {
            return None;
        }
        // numbers are kept about evenly: search near where it would be if they were (within
        // 1,024 places, a few pages of the section), else everywhere
        let span = u64::from(self.last - self.first).max(1);
        let guess = (u64::from(doc - self.first) * (self.n as u64 - 1) / span) as usize;
        let (mut lo, mut hi) = (guess.saturating_sub(1024), (guess + 1025).min(self.n));
        if self.doc(lo) > doc {
            lo = 0;
        }
        if self.doc(hi - 1) < doc {
            hi = self.n;
        }
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.doc(mid) < doc {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo < self.n && self.doc(lo) == doc).then_some(lo)
    }

    fn blob(&self, offsets: usize, blob: usize, local: usize) -> Option<&[u8]> {
        let (a, b) = (
            self.u64_at(offsets, local) as usize,
            self.u64_at(offsets, local + 1) as usize,
        );
        let (o, l, _) = self.sections[blob];
        if a > b || b > l {
            return None;
        }
        self.map.get(o + a..o + b)
    }

    /// A stored text's bytes, read from the file.
    fn text_bytes(&self, local: usize) -> Option<Vec<u8>> {
        self.text_head(local, usize::MAX)
    }

    /// The first `limit` bytes of a stored text (all of them where it is shorter).
    fn text_head(&self, local: usize, limit: usize) -> Option<Vec<u8>> {
        let (a, b) = (
            self.u64_at(TEXT_OFFSETS, local) as usize,
            self.u64_at(TEXT_OFFSETS, local + 1) as usize,
        );
        let (o, l, _) = self.sections[TEXTS];
        if a > b || b > l {
            return None;
        }
        let b = b.min(a.saturating_add(limit));
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            let mut buf = vec![0u8; b - a];
            self.file.read_exact_at(&mut buf, (o + a) as u64).ok()?;
            Some(buf)
        }
        #[cfg(not(unix))]
        {
            self.map.get(o + a..o + b).map(<[u8]>::to_vec)
        }
    }

    /// Where a sample of their offsets (or, those cached, of the texts) is not in the page
    /// cache, asks the kernel for the pages that reading the texts and shingle counts of
    /// `locals` (ascending) will read: their offsets and counts, then, those read, the texts.
    /// Read cold one by one, each verification of an indexed candidate waited for a disk read
    /// or two.
    fn read_ahead_texts(&self, locals: &[usize]) {
        let (o, l, _) = self.sections[TEXTS];
        let Some(texts) = self.map.get(o..o + l).filter(|_| !locals.is_empty()) else {
            return;
        };
        let section = |s: usize| {
            let (o, l, _) = self.sections[s];
            self.map.get(o..o + l).unwrap_or_default()
        };
        let offsets = section(TEXT_OFFSETS);
        let range = |i: usize| {
            self.u64_at(TEXT_OFFSETS, i) as usize..self.u64_at(TEXT_OFFSETS, i + 1) as usize
        };
        let at = |&i: &usize| 8 * i..8 * i + 16;
        // (a sample of the offsets, and if they are cached, of the texts)
        if crate::memory::sample_cached(offsets, locals, at)
            && crate::memory::sample_cached(texts, locals, |&i| range(i))
        {
            return;
        }
        crate::memory::will_need(offsets, locals.iter().map(at));
        if self.sized {
            let counts = section(self.sections.len() - 1);
            for at in [0, self.n] {
                crate::memory::will_need(
                    counts,
                    locals.iter().map(|&i| 4 * (at + i)..4 * (at + i) + 4),
                );
            }
        }
        crate::memory::will_need(texts, locals.iter().map(|&i| range(i)));
    }

    /// Whether the document at `local` may be within Jaccard `threshold` of the set `a`: its
    /// shingle counts ([`counts_admit`]), read once, then (only where they leave a chance) its
    /// sketch, with the counted size where its add counted it.
    fn admits(&self, local: usize, a: &[u64], threshold: f64) -> bool {
        let bounds = self.shingles(local);
        counts_admit(bounds, a.len(), threshold)
            && self.sketch_admits(local, a, threshold, bounds.map_or(0, |(lo, _)| lo))
    }

    /// Whether the sketch stored before document `local`'s text leaves a set `a` (distinct
    /// shingle hashes) a chance of Jaccard `threshold` with it, the document having at least
    /// `at_least` distinct shingles ([`crate::sketch::admits`]); true where it has none, or it
    /// cannot be read (the text's own reading says what is wrong).
    pub fn sketch_admits(&self, local: usize, a: &[u64], threshold: f64, at_least: u32) -> bool {
        // the tag, the size and a sketch of 1,024 bits, a larger one read again whole
        let Some(mut head) = self.text_head(local, 2 + 8 * 16) else {
            return true;
        };
        if let [SKETCHED, log, ..] = head[..] {
            let whole = 2 + (8usize << log.min(30));
            if whole > head.len() {
                match self.text_head(local, whole) {
                    Some(all) => head = all,
                    None => return true,
                }
            }
        }
        match split_sketch(&head) {
            Some((Some(bm), _)) => {
                let words: Vec<u64> = bm
                    .chunks_exact(8)
                    .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
                    .collect();
                crate::sketch::admits(&words, a, threshold, at_least)
            }
            _ => true,
        }
    }

    pub fn text(&self, local: usize) -> Result<String> {
        self.text_bytes(local)
            .and_then(|b| decompress_text(&b))
            .ok_or_else(|| {
                Error::Corrupt(format!(
                    "{}: the text of document {local} cannot be read",
                    self.path.display()
                ))
            })
    }

    pub fn id(&self, local: usize) -> Result<Id> {
        self.blob(ID_OFFSETS, IDS, local)
            .and_then(Id::decode)
            .ok_or_else(|| {
                Error::Corrupt(format!(
                    "{}: the id of document {local} cannot be read",
                    self.path.display()
                ))
            })
    }

    /// The filter's blocks (`None`: no filter, or it is damaged); its checksum is checked on
    /// first use.
    #[inline]
    fn filter_mem(&self) -> Option<&[u8]> {
        let (o, blocks) = self.filter?;
        let mem = self.map.get(o..o + 64 * blocks)?;
        let ok = self.filter_ok.get_or_init(|| {
            // (the last section, or the one before the shingle counts)
            let at = self.sections.len().checked_sub(1 + self.sized as usize);
            at.and_then(|s| self.sections.get(s))
                .is_some_and(|&(_, _, crc)| {
                    if !crate::memory::mostly_cached(mem) {
                        self.read_through(o, mem.len());
                    }
                    crc32fast::hash(mem) == crc
                })
        });
        ok.then_some(mem)
    }

    /// Reads `len` bytes of the file at `o` in order, a megabyte at a time, and forgets them:
    /// the kernel reads them ahead into the page cache. Read through the mapping (advised
    /// random, for the lookups elsewhere in the file), each page would be read from the disk
    /// alone: the filters of a 10-segment index not in the page cache (300 MB) took 1.9 s to
    /// check, 57,000 page faults at 165 MB/s, against 0.15 s read so.
    fn read_through(&self, o: usize, len: usize) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            let mut buf = vec![0u8; (1 << 20).min(len)];
            let mut at = 0;
            while at < len {
                let part = buf.len().min(len - at);
                if self
                    .file
                    .read_exact_at(&mut buf[..part], (o + at) as u64)
                    .is_err()
                {
                    return; // the checksum, read through the mapping, says what is wrong
                }
                at += part;
            }
        }
        #[cfg(not(unix))]
        let _ = (o, len);
    }

    /// The filter block a hash falls in (`None` without a filter, or past the file's end).
    #[inline]
    fn filter_line(&self, h: u64) -> Option<&[u8]> {
        let (_, blocks) = self.filter?;
        if blocks == 0 {
            return Some(&[0u8; 64]);
        }
        let mem = self.filter_mem()?;
        let at = 64 * filter_block(h, blocks);
        mem.get(at..at + 64)
    }

    /// Asks for the filter block of a [`filter_hash`] (a hint).
    #[inline]
    fn prefetch_filter(&self, h: u64) {
        if let Some(line) = self.filter_line(h) {
            crate::greedy::prefetch(&line[0]);
        }
    }

    /// Whether band `b` may hold `key`: false only when no document of this segment has it.
    #[inline]
    pub fn may_have(&self, b: usize, key: u64) -> bool {
        self.may_have_hash(filter_hash(b, key))
    }

    /// [`Segment::may_have`] of a [`filter_hash`] (which does not depend on the segment, so a
    /// lookup's is made once for every segment). The eight words are all tested, without a
    /// branch on each: half of a block's bits are set, so which word fails first is a coin toss.
    #[inline]
    fn may_have_hash(&self, h: u64) -> bool {
        self.filter_line(h).is_none_or(|line| filter_holds(line, h))
    }

    /// The directory slot of a band key: its top `p` bits (the table's entries with that slot
    /// are at the positions the slot and the next one hold).
    #[inline]
    fn dir_slot(&self, key: u64) -> usize {
        ((key & KEY_MASK) >> (KEY_BITS - self.p)) as usize
    }

    /// Where a band table's entries start in its section, in `u64`s: after the directory's
    /// `2^p + 1` slots, aligned to 8 bytes.
    #[inline]
    fn entries_at(&self) -> usize {
        (((1usize << self.p) + 1) * 4).div_ceil(8)
    }

    /// Asks for the directory slot of band `b` key `key` (a hint).
    #[inline]
    fn prefetch_dir(&self, b: usize, key: u64) {
        if self.m == 0 {
            return;
        }
        let u = self.dir_slot(key);
        if let Some(x) = self.map.get(self.sections[BAND0 + b].0 + 4 * u) {
            crate::greedy::prefetch(x);
        }
    }

    /// Asks for the first entry of band `b` key `key` (its directory slot read).
    #[inline]
    fn prefetch_entries(&self, b: usize, key: u64) {
        if self.m == 0 {
            return;
        }
        let s = BAND0 + b;
        let lo = self.u32_at(s, self.dir_slot(key)) as usize;
        if let Some(x) = self
            .map
            .get(self.sections[s].0 + 8 * (self.entries_at() + lo))
        {
            crate::greedy::prefetch(x);
        }
    }

    /// Adds the positions of the documents with band `b` key `key` to `out`.
    #[inline]
    fn band_lookup(&self, b: usize, key: u64, out: &mut Vec<u32>) {
        if self.m > 0 && self.may_have(b, key) {
            self.table_lookup(b, key, out);
        }
    }

    /// [`Segment::band_lookup`] without the filter.
    #[inline]
    fn table_lookup(&self, b: usize, key: u64, out: &mut Vec<u32>) {
        if self.m == 0 {
            return;
        }
        let key = key & KEY_MASK;
        let s = BAND0 + b;
        let u = self.dir_slot(key);
        let (lo, hi) = (self.u32_at(s, u) as usize, self.u32_at(s, u + 1) as usize);
        let base = self.entries_at();
        let entries = (lo..hi.min(self.m)).map(|i| self.u64_at(s, base + i));
        push_matching(entries, key, out);
    }

    /// [`Segment::table_lookup`] with `pread` (two small reads: the directory slot, then the
    /// entries it points to), for a table not read through the mapping; where a read fails,
    /// through the mapping after all.
    fn table_read(&self, b: usize, key: u64, buf: &mut Vec<u8>, out: &mut Vec<u32>) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            if self.m == 0 {
                return;
            }
            let key = key & KEY_MASK;
            let o = self.sections[BAND0 + b].0 as u64;
            let mut slots = [0u8; 8];
            let at = o + 4 * self.dir_slot(key) as u64;
            if self.file.read_exact_at(&mut slots, at).is_ok() {
                let [lo, hi] = [0, 4].map(|i| {
                    u32::from_le_bytes([slots[i], slots[i + 1], slots[i + 2], slots[i + 3]])
                        as usize
                });
                let hi = hi.min(self.m);
                if lo >= hi {
                    return;
                }
                buf.resize(8 * (hi - lo), 0);
                let at = o + 8 * (self.entries_at() + lo) as u64;
                if self.file.read_exact_at(buf, at).is_ok() {
                    let entries = buf.chunks_exact(8).map(|c| {
                        u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
                    });
                    push_matching(entries, key, out);
                    return;
                }
            }
        }
        self.table_lookup(b, key, out);
    }

    /// [`Segment::walk_sorted`] with [`Segment::table_read`]: no page of the table is mapped.
    fn walk_read(&self, b: usize, sorted: &[u64], mut found: impl FnMut(u32, u32)) {
        self.read_ahead(b, sorted);
        let (mut locals, mut buf) = (Vec::new(), Vec::new());
        for &e in sorted {
            locals.clear();
            self.table_read(b, e >> 24, &mut buf, &mut locals);
            for &l in &locals {
                found((e & 0xFF_FFFF) as u32, l);
            }
        }
    }

    /// Calls `found(i, local)` for each `key << 24 | i` of `sorted` (ascending: lookups that
    /// passed the filter, or all of them without one) and each position of this segment with
    /// band `b` key `key`: the table walked in key order.
    fn walk_sorted(&self, b: usize, sorted: &[u64], mut found: impl FnMut(u32, u32)) {
        self.read_ahead(b, sorted);
        // the directory slots a few lookups ahead are fetched first, then their entries
        const AHEAD: usize = 8;
        let mut locals = Vec::new();
        for (j, &e) in sorted.iter().enumerate() {
            if let Some(&f) = sorted.get(j + AHEAD) {
                self.prefetch_dir(b, f >> 24);
            }
            if let Some(&f) = sorted.get(j + AHEAD / 2) {
                self.prefetch_entries(b, f >> 24);
            }
            locals.clear();
            self.table_lookup(b, e >> 24, &mut locals);
            for &l in &locals {
                found((e & 0xFF_FFFF) as u32, l);
            }
        }
    }

    /// Where a sample of the directory slots that the lookups of `sorted` (as
    /// [`Segment::walk_sorted`] takes them) will read is not in the page cache, asks the kernel
    /// for the pages of all their slots, then, those read, of their entries. Walked cold, each
    /// lookup waited for two random disk reads, one after the other, on each thread (a first
    /// `check` of 100,000 fresh documents against a 10-segment index not in the page cache:
    /// 71,800 page faults); asked for first, the reads of a band are in flight together.
    fn read_ahead(&self, b: usize, sorted: &[u64]) {
        if self.m == 0 || sorted.len() < 2 {
            return;
        }
        let s = BAND0 + b;
        let (o, l, _) = self.sections[s];
        let Some(table) = self.map.get(o..o + l) else {
            return;
        };
        let dir = |&e: &u64| 4 * self.dir_slot(e >> 24)..4 * self.dir_slot(e >> 24) + 8;
        if crate::memory::sample_cached(table, sorted, dir) {
            return;
        }
        crate::memory::will_need(table, sorted.iter().map(dir));
        let base = 8 * self.entries_at();
        crate::memory::will_need(
            table,
            sorted.iter().map(|&e| {
                let u = self.dir_slot(e >> 24);
                let (lo, hi) = (self.u32_at(s, u) as usize, self.u32_at(s, u + 1) as usize);
                base + 8 * lo..base + 8 * hi.max(lo + 1)
            }),
        );
    }

    /// Appends to `out` the slots of `sweep`'s lookups in `range` that this segment's filter
    /// lets through (all of them without a filter, or with one that fails its checksum).
    fn sweep(&self, sweep: &Sweep, range: std::ops::Range<usize>, out: &mut Vec<u32>) {
        let slots = &sweep.slots[range.clone()];
        match self.filter {
            _ if self.m == 0 => {}
            Some((_, 0)) => {}
            Some((_, blocks)) => match self.filter_mem() {
                Some(mem) => filter_pass(mem, blocks, slots, &sweep.hashes[range], out),
                None => out.extend_from_slice(slots),
            },
            None => out.extend_from_slice(slots),
        }
    }

    /// Adds `(i, document)` to `out` for each slot `b << 24 | i` of `slots` and each live
    /// document of this segment with band `b` key `keys[i][b]`: band by band, the lookups walk
    /// the table in key order. With `release`, no page of a table walked stays mapped: a sparse
    /// walk reads the table with `pread` ([`Segment::walk_read`]), a dense one has its pages
    /// dropped after.
    fn walk_slots(
        &self,
        keys: &[Option<&[u64]>],
        slots: &[u32],
        removed: &[u32],
        release: bool,
        out: &mut Vec<u64>,
    ) {
        let mut per_band: Vec<Vec<u64>> = Vec::new();
        for &slot in slots {
            let (b, i) = ((slot >> 24) as usize, (slot & 0xFF_FFFF) as usize);
            let Some(k) = keys[i] else { continue };
            if per_band.len() <= b {
                per_band.resize(b + 1, Vec::new());
            }
            per_band[b].push((k[b] & KEY_MASK) << 24 | i as u64);
        }
        for (b, mut lookups) in per_band.into_iter().enumerate() {
            if lookups.is_empty() {
                continue;
            }
            crate::shingle::sort_uniform(&mut lookups);
            let found = |i, l| {
                let d = self.doc(l as usize);
                if removed.binary_search(&d).is_err() {
                    out.push((i as u64) << 32 | d as u64);
                }
            };
            if !release {
                self.walk_sorted(b, &lookups, found);
            } else if lookups.len() < self.sections[BAND0 + b].1 / SPARSE_WALK {
                self.walk_read(b, &lookups, found);
            } else {
                self.walk_sorted(b, &lookups, found);
                self.release(b);
            }
        }
    }

    /// Drops the pages of band `b`'s table from this process's mapping.
    fn release(&self, b: usize) {
        #[cfg(unix)]
        {
            let (o, l, _) = self.sections[BAND0 + b];
            // SAFETY: the mapping is shared and never written: dropped pages are read again
            // from the file, unchanged (and the range is within the mapping)
            let _ = unsafe {
                self.map
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, o, l)
            };
        }
        #[cfg(not(unix))]
        let _ = b;
    }

    fn digest_lookup(&self, digest: u64, out: &mut Vec<u32>) {
        let (mut lo, mut hi) = (0usize, self.m);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.u64_at(DIGESTS, mid) < digest {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        while lo < self.m && self.u64_at(DIGESTS, lo) == digest {
            out.push(self.u32_at(DIGEST_POS, lo));
            lo += 1;
        }
    }
}

/// One committed state: the segments (by first document), the tombstones, the documents
/// numbered so far.
#[derive(Debug)]
pub struct Snapshot {
    pub cfg: Config,
    pub segments: Vec<Arc<Segment>>,
    /// Removed documents, sorted.
    pub tombstones: Vec<u32>,
    pub n_docs: u32,
    pub fingerprint: u64,
    /// Per segment: whether its tables' pages are kept out of the mapping (past
    /// [`RESIDENT_TABLES`]).
    release: Vec<bool>,
}

impl Snapshot {
    pub fn new(
        cfg: Config,
        mut segments: Vec<Arc<Segment>>,
        mut tombstones: Vec<u32>,
        n_docs: u32,
    ) -> Self {
        segments.sort_by_key(|s| s.first);
        tombstones.sort_unstable();
        tombstones.dedup();
        let fingerprint = settings_fingerprint(&cfg);
        let mut table_bytes: u64 = segments
            .iter()
            .filter_map(|s| s.filter.map(|(_, blocks)| 64 * blocks as u64))
            .sum();
        let release = segments
            .iter()
            .map(|s| {
                table_bytes += s.sections[BAND0..BAND0 + cfg.bands]
                    .iter()
                    .map(|x| x.1 as u64)
                    .sum::<u64>();
                table_bytes > RESIDENT_TABLES
            })
            .collect();
        Snapshot {
            cfg,
            segments,
            tombstones,
            n_docs,
            fingerprint,
            release,
        }
    }

    pub fn is_removed(&self, doc: u32) -> bool {
        self.tombstones.binary_search(&doc).is_ok()
    }

    /// Live (kept, not removed) documents.
    pub fn len(&self) -> usize {
        self.segments.iter().map(|s| s.n).sum::<usize>() - self.tombstones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The segment holding document `doc`, and its position there.
    pub fn find(&self, doc: u32) -> Option<(&Segment, usize)> {
        let i = self.segments.partition_point(|s| s.first <= doc);
        let seg = self.segments.get(i.checked_sub(1)?)?;
        seg.local(doc).map(|l| (&**seg, l))
    }

    pub fn id(&self, doc: u32) -> Result<Id> {
        match self.find(doc) {
            Some((s, l)) => s.id(l),
            None => Err(Error::invalid(
                "doc",
                format!("document {doc} is not indexed"),
            )),
        }
    }

    /// Live documents sharing a band key with `keys` (sorted, distinct) into `out`.
    fn candidates(&self, keys: &[u64], out: &mut Vec<u32>) {
        let mut locals = Vec::new();
        // the filter blocks of every band of every segment are fetched first, then the
        // directory slots of the keys they let through, then their entries, so the memory
        // waits overlap
        let hashes: Vec<u64> = keys
            .iter()
            .enumerate()
            .map(|(b, &k)| filter_hash(b, k))
            .collect();
        for seg in &self.segments {
            for &h in &hashes {
                seg.prefetch_filter(h);
            }
        }
        let asked: Vec<(usize, usize)> = (0..self.segments.len())
            .flat_map(|s| (0..keys.len()).map(move |b| (s, b)))
            .filter(|&(s, b)| self.segments[s].may_have_hash(hashes[b]))
            .collect();
        for &(s, b) in &asked {
            self.segments[s].prefetch_dir(b, keys[b]);
        }
        for &(s, b) in &asked {
            self.segments[s].prefetch_entries(b, keys[b]);
        }
        for &(s, b) in &asked {
            let seg = &self.segments[s];
            seg.table_lookup(b, keys[b], &mut locals);
            out.extend(
                locals
                    .drain(..)
                    .map(|l| seg.doc(l as usize))
                    .filter(|&d| !self.is_removed(d)),
            );
        }
        out.sort_unstable();
        out.dedup();
    }

    /// Checks every segment's filter (reads it through for its checksum), the segments in
    /// parallel: a walk would check each on first use, one thread at a time while the others
    /// wait for it (420 MB for an index of 10 million documents).
    fn load_filters(&self) {
        self.segments.par_iter().for_each(|s| {
            s.filter_mem();
        });
    }

    /// Per segment, `(i << 32 | document)` for each lookup `i` of `keys` (`None`: none wanted)
    /// and each document of that segment, not in `removed`, that shares one of the first
    /// `bands` band keys with it. The lookups of every band pass each segment's filter in one
    /// sweep ([`Sweep`], in parts run as tasks of their own, so that one segment keeps every
    /// core busy); those it lets through walk the tables band by band in key order, so a page
    /// of a table is mapped once for all the lookups that fall in it.
    fn looked_up(&self, keys: &[Option<&[u64]>], bands: usize, removed: &[u32]) -> Vec<Vec<u64>> {
        const PARTS: usize = 8;
        debug_assert!(keys.len() < 1 << 24);
        if self.segments.is_empty() {
            return Vec::new();
        }
        self.load_filters();
        let sweep = Sweep::new(keys, bands);
        let passed: Vec<Vec<u32>> = (0..self.segments.len() * PARTS)
            .into_par_iter()
            .map(|t| {
                let mut v = Vec::new();
                self.segments[t / PARTS].sweep(&sweep, sweep.part(t % PARTS, PARTS), &mut v);
                v
            })
            .collect();
        drop(sweep);
        passed
            .par_chunks(PARTS)
            .zip(&self.segments)
            .zip(&self.release)
            .map(|((parts, seg), &release)| {
                let mut v = Vec::new();
                seg.walk_slots(keys, &parts.concat(), removed, release, &mut v);
                v
            })
            .collect()
    }

    /// [`Snapshot::candidates`] for many documents (`None`: none wanted), through
    /// [`Snapshot::looked_up`].
    fn candidates_sorted(&self, keys: &[Option<&[u64]>]) -> Vec<Vec<u32>> {
        let mut out = vec![Vec::new(); keys.len()];
        let found = self.looked_up(keys, self.cfg.bands, &self.tombstones);
        let mut all: Vec<u64> = found.concat();
        all.par_sort_unstable();
        all.dedup();
        for x in all {
            out[(x >> 32) as usize].push(x as u32);
        }
        out
    }

    /// Every live document within the threshold of each text: `(doc, similarity)`, best
    /// first (ties: smaller number first). Empty texts match nothing.
    pub fn query_many<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Vec<Vec<(u32, f64)>> {
        let cfg = &self.cfg;
        let mut out = Vec::with_capacity(texts.len());
        for part in texts.chunks(LOOKUPS) {
            let signed = cfg.sign(part);
            let keys: Vec<Option<&[u64]>> = (0..part.len())
                .map(|i| {
                    (!signed.empty[i]).then(|| &signed.keys[i * cfg.bands..(i + 1) * cfg.bands])
                })
                .collect();
            let cands = self.candidates_sorted(&keys);
            self.will_read(&cands);
            out.par_extend(cands.into_par_iter().zip(part).with_min_len(16).map_init(
                || (Worker::default(), Scratch::default()),
                |(w, s), (cands, text)| {
                    let text = text.as_ref();
                    // an indexed copy of the text is similarity 1 without shingling either
                    // side (a query of indexed documents is mostly that); the text's own
                    // feature is made for the first candidate that is not one
                    let mut mine = None;
                    let mut hits: Vec<(u32, f64)> = Vec::new();
                    for &d in &cands {
                        // once it is made, a candidate whose sketch rules it out is not read
                        if let Some(Feature::Set(a)) = &mine {
                            if !self.admits(d, a, cfg.threshold) {
                                continue;
                            }
                        }
                        let theirs = self.text(d);
                        let j = if theirs == text {
                            1.0
                        } else {
                            let mine = mine.get_or_insert_with(|| feature(cfg, text, w, s));
                            similarity(mine, &feature(cfg, &theirs, w, s))
                        };
                        if j >= cfg.threshold {
                            hits.push((d, j));
                        }
                    }
                    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                    hits
                },
            ));
        }
        out
    }

    /// The live documents with one of these ids, sorted.
    pub fn docs_with_ids(&self, ids: &[Id]) -> Result<Vec<u32>> {
        let want: rustc_hash::FxHashSet<&Id> = ids.iter().collect();
        let found: Vec<Result<Vec<u32>>> = self
            .segments
            .par_iter()
            .map(|seg| {
                let mut v = Vec::new();
                for l in 0..seg.n {
                    if want.contains(&seg.id(l)?) {
                        v.push(seg.doc(l));
                    }
                }
                Ok(v)
            })
            .collect();
        let mut out = Vec::new();
        for f in found {
            out.extend(f?.into_iter().filter(|&d| !self.is_removed(d)));
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Up to `count` live documents numbered from `from`: `(doc, id, text)`, in order.
    pub fn documents(&self, from: u32, count: usize) -> Result<Vec<(u32, Id, String)>> {
        let mut out = Vec::new();
        let start = self.segments.partition_point(|s| s.last < from);
        for seg in &self.segments[start..] {
            let mut l = seg.local(from).unwrap_or_else(|| {
                let (mut lo, mut hi) = (0, seg.n);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    if seg.doc(mid) < from {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                lo
            });
            while l < seg.n && out.len() < count {
                let d = seg.doc(l);
                if !self.is_removed(d) {
                    out.push((d, seg.id(l)?, seg.text(l)?));
                }
                l += 1;
            }
            if out.len() >= count {
                break;
            }
        }
        Ok(out)
    }

    /// Writes the live documents of `self.segments[range]` into one new segment at `path`
    /// (texts and ids copied as stored, band tables rebuilt one band at a time); `None` when
    /// no document is live.
    pub fn compact_into(
        &self,
        range: std::ops::Range<usize>,
        path: &Path,
    ) -> Result<Option<Segment>> {
        let segs = &self.segments[range];
        // (segment, local) of each live document, in number order
        let mut live: Vec<(usize, usize)> = Vec::new();
        for (si, seg) in segs.iter().enumerate() {
            live.extend(
                (0..seg.n)
                    .filter(|&l| !self.is_removed(seg.doc(l)))
                    .map(|l| (si, l)),
            );
        }
        if live.is_empty() {
            return Ok(None);
        }
        if live.len() > MAX_SEGMENT_DOCS {
            return Err(Error::invalid(
                "segments",
                "too many documents for one segment",
            ));
        }
        // new positions of the keyed documents: old (segment, local) -> new local
        let mut new_local: Vec<Vec<u32>> = segs.iter().map(|s| vec![u32::MAX; s.n]).collect();
        for (nl, &(si, l)) in live.iter().enumerate() {
            new_local[si][l] = nl as u32;
        }
        let mut dig: Vec<(u64, u32)> = Vec::new();
        for (si, seg) in segs.iter().enumerate() {
            for i in 0..seg.m {
                let l = seg.u32_at(DIGEST_POS, i) as usize;
                let nl = new_local[si].get(l).copied().unwrap_or(u32::MAX);
                if nl != u32::MAX {
                    dig.push((seg.u64_at(DIGESTS, i), nl));
                }
            }
        }
        dig.sort_unstable();
        let m = dig.len();
        let mut w = SegmentWriter::create(path, self.cfg.bands, live.len(), m, self.fingerprint)?;
        let docs: Vec<u32> = live.iter().map(|&(si, l)| segs[si].doc(l)).collect();
        w.section(&u32s(&docs))?;
        w.section(&u64s(&dig.iter().map(|d| d.0).collect::<Vec<_>>()))?;
        w.section(&u32s(&dig.iter().map(|d| d.1).collect::<Vec<_>>()))?;
        drop(dig);
        for (offs, blob) in [(TEXT_OFFSETS, TEXTS), (ID_OFFSETS, IDS)] {
            let mut o = Vec::with_capacity(live.len() + 1);
            o.push(0u64);
            for &(si, l) in &live {
                let len = segs[si].u64_at(offs, l + 1) - segs[si].u64_at(offs, l);
                o.push(o.last().copied().unwrap_or(0) + len);
            }
            w.section(&u64s(&o))?;
            w.begin()?;
            for &(si, l) in &live {
                let b = segs[si].blob(offs, blob, l).ok_or_else(|| {
                    Error::Corrupt(format!(
                        "{}: document {l} cannot be read",
                        segs[si].path.display()
                    ))
                })?;
                w.write(b)?;
            }
            w.end();
        }
        write_bands(&mut w, m, |b| {
            let mut entries = Vec::with_capacity(m);
            for (si, seg) in segs.iter().enumerate() {
                if seg.m == 0 {
                    continue;
                }
                let base = seg.entries_at();
                for i in 0..seg.m {
                    let e = seg.u64_at(BAND0 + b, base + i);
                    let nl = new_local[si]
                        .get((e & LOCAL_MASK) as usize)
                        .copied()
                        .unwrap_or(u32::MAX);
                    if nl != u32::MAX {
                        entries.push((e >> LOCAL_BITS) << LOCAL_BITS | nl as u64);
                    }
                }
            }
            entries
        })?;
        let known: Vec<(u32, u32)> = live
            .iter()
            .map(|&(si, l)| segs[si].shingles(l).unwrap_or((0, u32::MAX)))
            .collect();
        let shingles: Vec<u32> = (known.iter().map(|x| x.1))
            .chain(known.iter().map(|x| x.0))
            .collect();
        w.section(&u32s(&shingles))?;
        w.finish()?;
        Segment::open(path, self.cfg.bands, self.fingerprint, false).map(Some)
    }

    fn text(&self, doc: u32) -> String {
        self.find(doc)
            .and_then(|(s, l)| s.text(l).ok())
            .unwrap_or_default()
    }

    /// The shingle counts, then (only where they leave a chance) the sketch, of the document
    /// found once.
    fn admits(&self, doc: u32, set: &[u64], threshold: f64) -> bool {
        self.find(doc)
            .is_none_or(|(s, l)| s.admits(l, set, threshold))
    }

    fn will_read(&self, cands: &[Vec<u32>]) {
        self.will_read_below(cands, u32::MAX);
    }
}

impl Snapshot {
    /// [`Texts::will_read`] of the candidates below document `below`, segment by segment.
    fn will_read_below(&self, cands: &[Vec<u32>], below: u32) {
        if self.segments.is_empty() {
            return;
        }
        let mut docs: Vec<u32> = cands
            .iter()
            .flatten()
            .copied()
            .filter(|&d| d < below)
            .collect();
        docs.sort_unstable();
        docs.dedup();
        let mut rest = &docs[..];
        for seg in &self.segments {
            let start = rest.partition_point(|&d| d < seg.first);
            let end = start + rest[start..].partition_point(|&d| d <= seg.last);
            if end > start {
                let locals: Vec<usize> = rest[start..end]
                    .iter()
                    .filter_map(|&d| seg.local(d))
                    .collect();
                seg.read_ahead_texts(&locals);
            }
            rest = &rest[end..];
        }
    }
}

impl KeptLookup for Snapshot {
    fn add_candidates(&self, keys: &[u64], out: &mut Vec<u32>) {
        if self.segments.is_empty() {
            return;
        }
        self.candidates(keys, out);
    }

    fn candidates_many(&self, keys: &[Option<&[u64]>]) -> Vec<Vec<u32>> {
        self.candidates_sorted(keys)
    }

    /// As [`Snapshot::with_digest`]: for each segment, the documents whose first band key is
    /// found there ([`Snapshot::looked_up`] of band 0) look for their digest.
    fn with_digest_many(&self, asked: &[Option<(u64, &[u64])>]) -> Vec<Vec<u32>> {
        let mut out = vec![Vec::new(); asked.len()];
        let keys: Vec<Option<&[u64]>> = asked.iter().map(|a| a.map(|(_, k)| k)).collect();
        let found = self.looked_up(&keys, 1, &[]);
        let found: Vec<Vec<(u32, u32)>> = (found.par_iter().zip(&self.segments))
            .map(|(hits, seg)| {
                let mut hit: Vec<u32> = hits.iter().map(|x| (x >> 32) as u32).collect();
                hit.dedup(); // a lookup's hits are side by side
                let mut v = Vec::new();
                let mut locals = Vec::new();
                for i in hit {
                    let Some((digest, _)) = asked[i as usize] else {
                        continue;
                    };
                    locals.clear();
                    seg.digest_lookup(digest, &mut locals);
                    v.extend(
                        locals
                            .iter()
                            .map(|&l| seg.doc(l as usize))
                            .filter(|&d| !self.is_removed(d))
                            .map(|d| (i, d)),
                    );
                }
                v
            })
            .collect();
        // segment by segment, as one text's lookup goes
        for (i, d) in found.into_iter().flatten() {
            out[i as usize].push(d);
        }
        out
    }

    fn with_digest(&self, digest: u64, keys: &[u64]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut locals = Vec::new();
        for seg in &self.segments {
            // a copy shares every band key: one band's lookup (two reads) rules most segments
            // out before the binary search of the digests (twenty)
            locals.clear();
            if let Some(&k) = keys.first() {
                seg.band_lookup(0, k, &mut locals);
                if locals.is_empty() {
                    continue;
                }
                locals.clear();
            }
            seg.digest_lookup(digest, &mut locals);
            out.extend(
                locals
                    .drain(..)
                    .map(|l| seg.doc(l as usize))
                    .filter(|&d| !self.is_removed(d)),
            );
        }
        out
    }
}

/// A snapshot's answers for the documents of a fed chunk, looked up before they are decided
/// [`CHUNK`] at a time (so a walk of a table serves [`LOOKUPS`] documents).
#[derive(Default)]
struct Looked {
    cands: Vec<Vec<u32>>,
    copies: Vec<Vec<u32>>,
    /// Where the documents being decided start.
    at: usize,
}

/// [`Looked`] as the kept documents of the snapshot, for the documents being decided: entry
/// `j` of what [`Greedy::decide_also`] asks is its document `j`.
struct LookedPart<'a> {
    snap: &'a Snapshot,
    looked: &'a Looked,
}

impl KeptLookup for LookedPart<'_> {
    fn add_candidates(&self, keys: &[u64], out: &mut Vec<u32>) {
        self.snap.add_candidates(keys, out);
    }

    fn with_digest(&self, digest: u64, keys: &[u64]) -> Vec<u32> {
        self.snap.with_digest(digest, keys)
    }

    fn candidates_many(&self, keys: &[Option<&[u64]>]) -> Vec<Vec<u32>> {
        let got = &self.looked.cands[self.looked.at..self.looked.at + keys.len()];
        keys.iter()
            .zip(got)
            .map(|(k, c)| if k.is_some() { c.clone() } else { Vec::new() })
            .collect()
    }

    fn with_digest_many(&self, asked: &[Option<(u64, &[u64])>]) -> Vec<Vec<u32>> {
        let got = &self.looked.copies[self.looked.at..self.looked.at + asked.len()];
        asked
            .iter()
            .zip(got)
            .map(|(a, c)| if a.is_some() { c.clone() } else { Vec::new() })
            .collect()
    }
}

/// The texts of a batch's earlier kept documents: the snapshot's, then the batch's own.
struct BatchTexts<'a, S> {
    snap: &'a Snapshot,
    pending: &'a Pending,
    first: u32,
    /// The texts of the call being decided, from document `fed` on: its kept texts are read
    /// here (they reach `pending` a chunk late, and need no decompressing here).
    fed: u32,
    texts: &'a [S],
}

impl<S: AsRef<str> + Sync> Texts for BatchTexts<'_, S> {
    fn will_read(&self, cands: &[Vec<u32>]) {
        // (the batch's own kept texts are in memory)
        self.snap.will_read_below(cands, self.first);
    }

    fn admits(&self, doc: u32, set: &[u64], threshold: f64) -> bool {
        // (the batch's kept documents reach `pending` as each chunk is decided; they have no
        // sketches)
        if doc >= self.first {
            counts_admit(self.pending.shingles(doc), set.len(), threshold)
        } else {
            self.snap.admits(doc, set, threshold)
        }
    }

    fn text(&self, doc: u32) -> Cow<'_, str> {
        if doc >= self.fed {
            return self
                .texts
                .get((doc - self.fed) as usize)
                .map_or(Cow::Borrowed(""), |t| Cow::Borrowed(t.as_ref()));
        }
        Cow::Owned(if doc >= self.first {
            self.pending.text(doc).unwrap_or_default()
        } else {
            self.snap.text(doc)
        })
    }
}

/// The texts of a group fed to be decided later ([`Batch::feed_later`]), whatever their type.
trait OwnedTexts: Send + Sync {
    fn strs(&self) -> Vec<&str>;
}

impl<S: AsRef<str> + Send + Sync> OwnedTexts for Vec<S> {
    fn strs(&self) -> Vec<&str> {
        self.iter().map(|t| t.as_ref()).collect()
    }
}

/// What deciding a group needs that the snapshot alone gives, made before its turn: its band
/// keys and digests, its decision order, and the index's answers for its first documents.
struct Prepared {
    signed: crate::cluster::Signed,
    order: Vec<u32>,
    looked: Looked,
}

/// A group fed and prepared, waiting to be decided.
struct Queued {
    texts: Box<dyn OwnedTexts>,
    ids: Vec<Id>,
    prepared: Prepared,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Queued({} texts)", self.ids.len())
    }
}

/// The decisions for a group, and which of its documents are empty.
pub type Fed = (Vec<Decision>, Vec<bool>);

/// The index's answers (candidates and exact copies) for the documents `next` of `signed`.
fn look_up(snap: &Snapshot, signed: &crate::cluster::Signed, next: &[u32]) -> Looked {
    let bands = snap.cfg.bands;
    let keys = |d: u32| {
        let d = d as usize;
        (!signed.empty[d]).then(|| &signed.keys[d * bands..(d + 1) * bands])
    };
    let asked: Vec<Option<&[u64]>> = next.iter().map(|&d| keys(d)).collect();
    let cands = snap.candidates_sorted(&asked);
    let asked: Vec<Option<(u64, &[u64])>> = next
        .iter()
        .map(|&d| keys(d).map(|k| (signed.digests[d as usize], k)))
        .collect();
    Looked {
        cands,
        copies: snap.with_digest_many(&asked),
        at: 0,
    }
}

/// Signs `texts` and looks up its first [`LOOKUPS`] documents in the index: the part of
/// deciding them that does not depend on the documents before them.
fn prepare<S: AsRef<str> + Sync>(snap: &Snapshot, texts: &[S], sketch: bool) -> Prepared {
    let signed = if sketch {
        snap.cfg.sign_sketched(texts)
    } else {
        snap.cfg.sign(texts)
    };
    let order = snap.cfg.decision_order(&signed.lengths);
    let looked = look_up(snap, &signed, &order[..order.len().min(LOOKUPS)]);
    Prepared {
        signed,
        order,
        looked,
    }
}

/// An add (or check) in progress: documents numbered from `first`, decided chunk by chunk.
#[derive(Debug)]
pub struct Batch {
    pub snap: Arc<Snapshot>,
    pub first: u32,
    /// The number of the next document to decide.
    pub next: u32,
    greedy: Greedy,
    pending: Pending,
    /// A group fed by [`Batch::feed_later`], not yet decided.
    queued: Option<Queued>,
}

impl Batch {
    /// A batch after `snap`. With `write`, its kept texts are compressed as they are kept,
    /// for its segment, and written where the segment keeps them, in a file begun in
    /// `spill_dir` (which [`Batch::write`] renames: the folder of the segment) when they are
    /// kept in number order (`keep="first"`), else kept like those of a check. Without, the
    /// batch only decides, its kept texts move to an unlinked file in `spill_dir` past 64 MB
    /// (its segment can still be written, compressing them then).
    pub fn new(snap: Arc<Snapshot>, spill_dir: &Path, write: bool) -> Self {
        let first = snap.n_docs;
        let greedy = Greedy::new(snap.cfg.bands);
        let mut pending = Pending::new(spill_dir, write);
        if write && snap.cfg.keep == Keep::First {
            // kept in number order: their segment is begun in `spill_dir` with the first
            pending.in_place_at = Some((spill_dir.to_path_buf(), snap.cfg.bands, snap.fingerprint));
        }
        Batch {
            snap,
            first,
            next: first,
            greedy,
            pending,
            queued: None,
        }
    }

    /// Says that about `docs` documents will be fed in all: a hint that sizes the batch's
    /// tables of kept documents once ([`Greedy::size_tables`]); the decisions do not depend
    /// on it.
    pub fn expect(&mut self, docs: usize) {
        self.greedy.expect(docs);
    }

    /// Kept documents of the batch so far.
    pub fn kept(&self) -> usize {
        self.pending.docs.len()
    }

    /// Refuses to go on while a group fed by [`Batch::feed_later`] waits to be decided.
    fn nothing_queued(&self) -> Result<()> {
        match self.queued {
            Some(_) => Err(Error::invalid(
                "texts",
                "a group fed to be decided later is waiting: flush it first",
            )),
            None => Ok(()),
        }
    }

    /// Refuses a group whose ids do not match its texts, or that would number past the last
    /// document an index can hold.
    fn check_group(&self, texts: usize, ids: usize) -> Result<()> {
        if ids != texts {
            return Err(Error::invalid(
                "ids",
                format!("expected {texts} ids (one per text), got {ids}"),
            ));
        }
        let queued = self.queued.as_ref().map_or(0, |q| q.ids.len());
        if self.next as usize + queued + texts >= crate::greedy::MAX_DOCS {
            return Err(Error::invalid(
                "texts",
                format!(
                    "more than {} documents in one index",
                    crate::greedy::MAX_DOCS - 1
                ),
            ));
        }
        Ok(())
    }

    /// Decides the next documents (after every one fed before), remembering the kept ones
    /// with their ids; returns the decisions and which documents are empty. Nothing may be
    /// waiting from [`Batch::feed_later`].
    pub fn feed<S: AsRef<str> + Sync>(&mut self, texts: &[S], ids: &[Id]) -> Result<Fed> {
        self.nothing_queued()?;
        self.check_group(texts.len(), ids.len())?;
        let prepared = prepare(&self.snap, texts, self.pending.packed);
        self.decide(texts, ids, prepared)
    }

    /// Feeds the next group of documents and decides the group fed before it (returned, or
    /// `None` for the first): this group is signed and looked up in the index while that one
    /// is decided, so the cores stay busy through the one-core parts of deciding. The last
    /// group is decided by [`Batch::flush`].
    pub fn feed_later<S: AsRef<str> + Send + Sync + 'static>(
        &mut self,
        texts: Vec<S>,
        ids: Vec<Id>,
    ) -> Result<Option<Fed>> {
        self.check_group(texts.len(), ids.len())?;
        let snap = self.snap.clone();
        let sketch = self.pending.packed;
        let (prepared, decided) = match self.queued.take() {
            None => (prepare(&snap, &texts, sketch), None),
            Some(q) => {
                let strs = q.texts.strs();
                let (prepared, decided) = rayon::join(
                    || prepare(&snap, &texts, sketch),
                    || self.decide(&strs, &q.ids, q.prepared),
                );
                (prepared, Some(decided))
            }
        };
        self.queued = Some(Queued {
            texts: Box::new(texts),
            ids,
            prepared,
        });
        decided.transpose()
    }

    /// Decides the group waiting from [`Batch::feed_later`], if any.
    pub fn flush(&mut self) -> Result<Option<Fed>> {
        let Some(q) = self.queued.take() else {
            return Ok(None);
        };
        let strs = q.texts.strs();
        self.decide(&strs, &q.ids, q.prepared).map(Some)
    }

    /// Decides a prepared group, numbered from `self.next`.
    fn decide<S: AsRef<str> + Sync>(
        &mut self,
        texts: &[S],
        ids: &[Id],
        prepared: Prepared,
    ) -> Result<Fed> {
        let decided = (self.next - self.first) as usize;
        if let Some(kept) = self.greedy.size_tables(decided, self.kept()) {
            // the kept documents' own vectors are made for as many at once too (grown by
            // halves, each growth copied them into new pages: about 2% of a profiled check)
            self.pending.reserve(kept, self.snap.cfg.bands);
        }
        let Prepared {
            signed,
            order,
            mut looked,
        } = prepared;
        let cfg = &self.snap.cfg;
        let undecided = Decision {
            duplicate_of: None,
            similarity: f64::NAN,
            examined: 0,
        };
        let mut out = vec![undecided; texts.len()];
        let first = self.next;
        // kept documents whose texts are not yet stored (the chunk decided last)
        let mut waiting: Vec<u32> = Vec::new();
        for (p, part) in order.chunks(CHUNK).enumerate() {
            if p > 0 && p % (LOOKUPS / CHUNK) == 0 {
                // the index's answers for the next documents, all at once
                let next = &order[p * CHUNK..order.len().min(p * CHUNK + LOOKUPS)];
                looked = look_up(&self.snap, &signed, next);
            }
            let refs: Vec<DocRef<'_>> = part
                .iter()
                .map(|&d| signed.doc(texts, first, d as usize))
                .collect();
            // the kept texts of the chunk before are compressed while this one is decided
            // (its ordered pass is one core's work)
            let before: Vec<(&str, &[u64])> = waiting
                .iter()
                .map(|&d| (texts[d as usize].as_ref(), signed.sketch(d as usize)))
                .collect();
            let ((decided, distinct), packed) = {
                let old = BatchTexts {
                    snap: &self.snap,
                    pending: &self.pending,
                    first: self.first,
                    fed: first,
                    texts,
                };
                let more = LookedPart {
                    snap: &self.snap,
                    looked: &looked,
                };
                let (greedy, pending) = (&mut self.greedy, &self.pending);
                rayon::join(
                    || greedy.decide_counted(cfg, &refs, &old, &more),
                    || pending.pack(&before),
                )
            };
            looked.at += part.len();
            self.pending.put_packed(&before, packed)?;
            waiting.clear();
            for ((&d, dec), &distinct) in part.iter().zip(&decided).zip(&distinct) {
                if dec.duplicate_of.is_none() {
                    let d = d as usize;
                    self.pending
                        .push(first + d as u32, &signed, d, distinct, &ids[d]);
                    waiting.push(d as u32);
                }
            }
            for (&d, dec) in part.iter().zip(decided) {
                out[d as usize] = dec;
            }
        }
        // the last chunk's kept texts
        self.pending.put_texts(
            waiting
                .iter()
                .map(|&d| (texts[d as usize].as_ref(), signed.sketch(d as usize))),
        )?;
        self.next += texts.len() as u32;
        Ok((out, signed.empty))
    }

    /// Takes kept documents as they are, with their numbers (an index saved by the old
    /// in-memory `DedupIndex`): no decision is made.
    pub fn import<S: AsRef<str> + Sync>(
        &mut self,
        docs: &[u32],
        texts: &[S],
        ids: &[Id],
    ) -> Result<()> {
        if docs.len() != texts.len() || ids.len() != texts.len() {
            return Err(Error::invalid(
                "docs",
                "docs, texts and ids differ in length",
            ));
        }
        self.nothing_queued()?;
        let signed = if self.pending.packed {
            self.snap.cfg.sign_sketched(texts)
        } else {
            self.snap.cfg.sign(texts)
        };
        for (d, t) in texts.iter().enumerate() {
            let doc = docs[d];
            if doc < self.next {
                return Err(Error::invalid("docs", "document numbers must increase"));
            }
            self.pending.push(doc, &signed, d, 0, &ids[d]);
            self.pending.put_texts([(t.as_ref(), signed.sketch(d))])?;
            self.next = doc + 1;
        }
        Ok(())
    }

    /// The text of a kept document of the batch or of the snapshot.
    pub fn text(&self, doc: u32) -> Option<String> {
        if doc >= self.first {
            self.pending.text(doc)
        } else {
            self.snap.find(doc).and_then(|(s, l)| s.text(l).ok())
        }
    }

    /// Numbers the documents up to `n_docs` (the last ones were removed, not imported).
    pub fn skip_to(&mut self, n_docs: u32) {
        self.next = self.next.max(n_docs);
    }

    /// Writes the batch's kept documents as a segment at `path` (synced), or nothing when
    /// none was kept.
    pub fn write(&self, path: &Path) -> Result<Option<Segment>> {
        self.nothing_queued()?;
        if self.pending.docs.is_empty() {
            return Ok(None);
        }
        if self.pending.docs.len() > MAX_SEGMENT_DOCS {
            return Err(Error::invalid(
                "texts",
                format!("more than {MAX_SEGMENT_DOCS} documents kept by one add; add in smaller batches"),
            ));
        }
        let fp = self.snap.fingerprint;
        self.pending.write(path, self.snap.cfg.bands, fp)?;
        Segment::open(path, self.snap.cfg.bands, fp, false).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Cluster;

    fn cfg(threshold: f64) -> Config {
        crate::cluster::test_config(threshold, Keep::First, Cluster::Greedy)
    }

    fn corpus(n: usize) -> Vec<String> {
        let words: Vec<String> = (0..n + 40)
            .map(|i| format!("w{}x{}", i * 7919 % 1000, i))
            .collect();
        let mut v: Vec<String> = (0..n).map(|i| words[i..i + 40].join(" ")).collect();
        v.push(String::new());
        v.push(v[3].clone());
        v
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ts-index-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn texts_compressed_as_kept_write_the_same_segment() {
        // kept texts compressed as they are kept (an add) or when the segment is written (a
        // check's batch), written in place in the segment begun with the batch, or kept in
        // memory or spilled to a file and copied: the same segment, byte for byte (with the
        // texts' sketches where they were compressed as kept: a check's batch signs without
        // them)
        let c = cfg(0.8);
        let texts = corpus(3000);
        let ids: Vec<Id> = (0..texts.len()).map(|i| Id::Int(i as i64)).collect();
        let dir = tmp("packed");
        let mut written = Vec::new();
        for (k, (write, in_place, limit)) in [
            (false, false, usize::MAX),
            (true, false, usize::MAX),
            (true, false, 4096),
            (false, false, 4096),
            (true, true, 0),
        ]
        .into_iter()
        .enumerate()
        {
            let snap = Arc::new(Snapshot::new(c.clone(), vec![], vec![], 0));
            let mut batch = Batch::new(snap, &dir, write);
            assert_eq!(batch.pending.in_place_at.is_some(), write);
            if !in_place {
                batch.pending.in_place_at = None;
            }
            batch.pending.texts = Store::spilling(&dir, limit);
            for (t, i) in texts.chunks(700).zip(ids.chunks(700)) {
                batch.feed(t, i).unwrap();
            }
            assert_eq!(
                batch.pending.texts.spilled(),
                limit < usize::MAX && !in_place
            );
            assert_eq!(batch.pending.in_place.is_some(), in_place);
            assert_eq!(batch.text(5).as_deref(), Some(texts[5].as_str()));
            assert_eq!(batch.text(texts.len() as u32 - 1), None); // a copy of text 3
            let path = dir.join(format!("seg{k}"));
            let seg = batch.write(&path).unwrap().unwrap();
            let l = seg.local(5).unwrap();
            assert_eq!(seg.text(l).unwrap(), texts[5]);
            // the sketch kept before a text rules out a set far from it, never its own
            let mut scratch = Scratch::default();
            let own = c.hasher.shingler.hash_set(&texts[5], &mut scratch);
            let far = c.hasher.shingler.hash_set(&unrelated(), &mut scratch);
            assert!(seg.sketch_admits(l, &own, 0.99, 0));
            assert_eq!(seg.sketch_admits(l, &far, 0.5, 0), !write, "{k}");
            written.push(std::fs::read(&path).unwrap());
        }
        for k in [2, 4] {
            assert!(written[k] == written[1], "{k}");
        }
        assert!(written[3] == written[0]);
        assert!(written[1].len() > written[0].len());
        // queries answer the same with the sketches as without: texts with words changed (near
        // and far from their sources), and one far from all
        let fp = settings_fingerprint(&c);
        let snap = |k: usize| {
            let seg = Segment::open(&dir.join(format!("seg{k}")), c.bands, fp, true).unwrap();
            Snapshot::new(c.clone(), vec![Arc::new(seg)], vec![], texts.len() as u32)
        };
        let mut probes: Vec<String> = (0..300)
            .map(|i| {
                let words: Vec<&str> = texts[i * 7].split(' ').collect();
                let cut = (i % 8) * 3;
                format!("{} {}", words[cut..].join(" "), words[..cut].join(" x"))
            })
            .collect();
        probes.push(unrelated());
        let (with, without) = (snap(1).query_many(&probes), snap(0).query_many(&probes));
        assert_eq!(with, without);
        assert!(with.iter().filter(|h| !h.is_empty()).count() > 100);
        // the file begun in place was renamed: nothing else is left in the folder
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["seg0", "seg1", "seg2", "seg3", "seg4"]);
        // a batch dropped before its segment is written removes the file it began
        let snap = Arc::new(Snapshot::new(c.clone(), vec![], vec![], 0));
        let mut batch = Batch::new(snap, &dir, true);
        batch.feed(&texts[..100], &ids[..100]).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 6);
        drop(batch);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 5);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A text sharing next to no shingle with any of [`corpus`].
    fn unrelated() -> String {
        (0..2000u64)
            .map(|i| char::from(b'a' + (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 59) as u8 % 26))
            .collect()
    }

    /// Adds `texts` in batches of `size`, each as a segment; the keep mask.
    fn add_in_batches(c: &Config, texts: &[String], size: usize, dir: &Path) -> Vec<bool> {
        let mut snap = Arc::new(Snapshot::new(c.clone(), vec![], vec![], 0));
        let mut keep = Vec::new();
        for (b, part) in texts.chunks(size).enumerate() {
            let mut batch = Batch::new(snap.clone(), &std::env::temp_dir(), true);
            let ids: Vec<Id> = (0..part.len())
                .map(|i| Id::Int((b * size + i) as i64))
                .collect();
            let (d, _) = batch.feed(part, &ids).unwrap();
            keep.extend(d.iter().map(|x| x.duplicate_of.is_none()));
            let mut segs = snap.segments.clone();
            if let Some(s) = batch.write(&dir.join(format!("seg{b}"))).unwrap() {
                segs.push(Arc::new(s));
            }
            snap = Arc::new(Snapshot::new(c.clone(), segs, vec![], batch.next));
        }
        keep
    }

    #[test]
    fn batches_decide_as_one_run() {
        let c = cfg(0.7);
        let texts = corpus(300);
        let dir = tmp("batches");
        std::fs::create_dir_all(dir.join("a")).unwrap();
        let whole = add_in_batches(&c, &texts, texts.len(), &dir.join("a"));
        assert!(whole.iter().filter(|k| !**k).count() > 10);
        for size in [7, 100] {
            std::fs::create_dir_all(dir.join(format!("b{size}"))).unwrap();
            let got = add_in_batches(&c, &texts, size, &dir.join(format!("b{size}")));
            assert_eq!(got, whole, "batches of {size}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn groups_fed_to_decide_later_decide_as_one_feed() {
        let c = cfg(0.7);
        let texts = corpus(300);
        let ids: Vec<Id> = (0..texts.len()).map(|i| Id::Int(i as i64)).collect();
        let dir = tmp("later");
        std::fs::create_dir_all(&dir).unwrap();
        let snap = Arc::new(Snapshot::new(c.clone(), vec![], vec![], 0));
        let mut whole = Batch::new(snap.clone(), &dir, true);
        let (want, want_empty) = whole.feed(&texts, &ids).unwrap();
        assert!(want.iter().filter(|d| d.duplicate_of.is_some()).count() > 10);
        for size in [1, 7, 300] {
            let mut batch = Batch::new(snap.clone(), &dir, true);
            assert!(batch.flush().unwrap().is_none());
            let (mut got, mut empty) = (Vec::new(), Vec::new());
            for (g, part) in texts.chunks(size).enumerate() {
                let fed = batch
                    .feed_later(part.to_vec(), ids[g * size..g * size + part.len()].to_vec())
                    .unwrap();
                // one group behind: the first call decides nothing
                assert_eq!(fed.is_none(), g == 0, "group {g} of {size}");
                if let Some((d, e)) = fed {
                    got.extend(d);
                    empty.extend(e);
                }
                // nothing else goes on while a group waits
                assert!(batch.feed(&texts[..1], &ids[..1]).is_err());
                assert!(batch.write(&dir.join("never")).is_err());
            }
            let (d, e) = batch.flush().unwrap().expect("the last group");
            got.extend(d);
            empty.extend(e);
            assert!(batch.flush().unwrap().is_none());
            // (`examined` is work done, which depends on where groups are cut)
            let key = |d: &[Decision]| -> Vec<(Option<u32>, u64)> {
                d.iter()
                    .map(|x| (x.duplicate_of, x.similarity.to_bits()))
                    .collect()
            };
            assert_eq!(key(&got), key(&want), "groups of {size}");
            assert_eq!(empty, want_empty);
            assert_eq!(batch.next, texts.len() as u32);
            assert_eq!(batch.kept(), whole.kept());
        }
        assert!(!dir.join("never").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn documents_are_found_however_their_numbers_spread() {
        // 3,000 numbers in a row, then 3,000 a thousand apart: the guess of an even spread is
        // far off for most of them
        let c = cfg(0.8);
        let texts = corpus(6000);
        let docs: Vec<u32> = (0..6000u32)
            .map(|i| {
                if i < 3000 {
                    i
                } else {
                    3000 + (i - 3000) * 1000
                }
            })
            .collect();
        let ids: Vec<Id> = (0..6000).map(|i| Id::Int(i as i64)).collect();
        let dir = tmp("spread");
        let snap = Arc::new(Snapshot::new(c.clone(), vec![], vec![], 0));
        let mut batch = Batch::new(snap, &dir, true);
        batch.import(&docs, &texts[..6000], &ids).unwrap();
        let seg = batch.write(&dir.join("seg")).unwrap().unwrap();
        assert_eq!(seg.n, 6000);
        for (l, &d) in docs.iter().enumerate() {
            assert_eq!(seg.local(d), Some(l), "document {d}");
            if d > 3000 {
                assert_eq!(seg.local(d - 1), None);
                assert_eq!(seg.local(d + 1), None);
            }
        }
        assert_eq!(seg.local(*docs.last().unwrap() + 1), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn segments_round_trip_and_refuse_corruption() {
        let c = cfg(0.8);
        let texts: Vec<String> = (0..50)
            .map(|i| format!("document {i}: {}", "lorem ipsum dolor ".repeat(i % 7 + 3)))
            .map(|t| t.replace('o', &format!("{}", t.len() % 10)))
            .collect();
        let dir = tmp("seg");
        let snap = Arc::new(Snapshot::new(c.clone(), vec![], vec![], 0));
        let mut batch = Batch::new(snap, &std::env::temp_dir(), true);
        let ids: Vec<Id> = (0..texts.len())
            .map(|i| {
                if i % 2 == 0 {
                    Id::Int(i as i64)
                } else {
                    Id::Str(format!("d{i}"))
                }
            })
            .collect();
        batch.feed(&texts, &ids).unwrap();
        let path = dir.join("seg");
        let seg = batch.write(&path).unwrap().unwrap();
        let fp = settings_fingerprint(&c);
        let again = Segment::open(&path, c.bands, fp, true).unwrap();
        assert_eq!(again.n, seg.n);
        let l = again.local(1).unwrap();
        assert_eq!(again.text(l).unwrap(), texts[1]);
        assert_eq!(again.id(l).unwrap(), Id::Str("d1".into()));
        // a sweep of the filter and walks of the band tables find what the lookups find, also
        // with the tables read by `pread`
        let signed = c.sign(&texts);
        let keys: Vec<Option<&[u64]>> = (0..texts.len())
            .map(|i| Some(&signed.keys[i * c.bands..(i + 1) * c.bands]))
            .collect();
        let sweep = Sweep::new(&keys, c.bands);
        let mut walked = [Vec::new(), Vec::new(), Vec::new()];
        for (k, release) in [false, true, false].into_iter().enumerate() {
            let mut slots = Vec::new();
            for p in 0..3 {
                again.sweep(&sweep, sweep.part(p, 3), &mut slots);
            }
            again.walk_slots(&keys, &slots, &[], release, &mut walked[k]);
            walked[k].sort_unstable();
        }
        assert_eq!(walked[0], walked[1]);
        assert_eq!(walked[0], walked[2]);
        // a table read with `pread` gives what its mapping gives (a key of every document,
        // and keys no document has)
        for b in 0..c.bands {
            let mut lookups: Vec<u64> = keys
                .iter()
                .enumerate()
                .flat_map(|(i, k)| {
                    let k = k.unwrap()[b] & KEY_MASK;
                    [k << 24 | i as u64, (k ^ 0x5555) << 24 | i as u64]
                })
                .collect();
            lookups.sort_unstable();
            let (mut mapped, mut read) = (Vec::new(), Vec::new());
            again.walk_sorted(b, &lookups, |i, l| mapped.push((i, l)));
            again.walk_read(b, &lookups, |i, l| read.push((i, l)));
            assert!(mapped.len() >= texts.len());
            assert_eq!(mapped, read);
        }
        let mut looked: Vec<u64> = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            for (b, &key) in k.unwrap().iter().enumerate() {
                let mut locals = Vec::new();
                again.band_lookup(b, key, &mut locals);
                looked.extend(
                    locals
                        .iter()
                        .map(|&l| (i as u64) << 32 | again.doc(l as usize) as u64),
                );
            }
        }
        looked.sort_unstable();
        assert_eq!(walked[0], looked);
        assert!(walked[0].len() >= seg.n);
        let snap = Snapshot::new(c.clone(), vec![Arc::new(again)], vec![], texts.len() as u32);
        let hits = snap.query_many(&[texts[5].clone()]);
        assert_eq!(hits[0][0], (5, 1.0));
        // foreign settings, a flipped byte, a truncated file
        assert!(Segment::open(&path, c.bands, fp ^ 1, true).is_err());
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 100;
        bytes[at] ^= 0xFF;
        std::fs::write(dir.join("bad"), &bytes).unwrap();
        let err = Segment::open(&dir.join("bad"), c.bands, fp, true).unwrap_err();
        assert!(err.to_string().contains("bad"), "{err}");
        std::fs::write(dir.join("short"), &bytes[..bytes.len() / 2]).unwrap();
        assert!(Segment::open(&dir.join("short"), c.bands, fp, false).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A segment of this version as version 1 wrote it: the filter section dropped (the texts
    /// stay as they are: every version reads every codec, see `texts_of_every_codec_read_back`).
    fn downgrade(bytes: &[u8], version: u32) -> Vec<u8> {
        // the last sections (physically last too) are the filter (version 2 on) and the
        // shingle counts (version 4 on)
        let rd32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_eq!(rd32(8), SEGMENT_VERSION);
        let ns = rd32(36) as usize;
        assert!(version == 1 || version == 3);
        let keep = if version == 1 { ns - 2 } else { ns - 1 };
        let cut = 48 + 24 * keep;
        let end = u64::from_le_bytes(bytes[cut..cut + 8].try_into().unwrap());
        let mut h = bytes[..48].to_vec();
        h[8..12].copy_from_slice(&version.to_le_bytes());
        h[36..40].copy_from_slice(&(keep as u32).to_le_bytes());
        h.extend_from_slice(&bytes[48..cut]);
        let crc = crc32fast::hash(&h);
        h.extend_from_slice(&crc.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        let mut out = bytes[..end as usize].to_vec();
        out[..h.len()].copy_from_slice(&h);
        out
    }

    #[test]
    fn texts_of_every_codec_read_back() {
        let texts = [
            String::new(),
            "short".to_string(),
            "a longer text, a longer text, a longer text, a longer text: ".repeat(20),
            "日本語の文章、日本語の文章。".repeat(30),
            (0..200u32)
                .map(|i| char::from(b'a' + (i * 7919 % 26) as u8))
                .collect(),
        ];
        let sketch: Vec<u64> = (0..16u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        for t in &texts {
            // with a sketch before it: the same text back, and the sketch
            let with = compress_text(t, &sketch);
            assert_eq!(with[..2], [SKETCHED, 4]);
            assert_eq!(decompress_text(&with).as_deref(), Some(t.as_str()));
            let (bm, rest) = split_sketch(&with).unwrap();
            assert_eq!(bm.unwrap(), &u64s(&sketch)[..]);
            assert_eq!(rest, &compress_text(t, &[])[..]);
            for cut in [1, 2, 9, 2 + 8 * 16] {
                assert_eq!(decompress_text(&with[..cut]), None, "cut at {cut}");
            }
            // a sketch of a size no sketch has is not stored
            assert_eq!(compress_text(t, &sketch[..3]), compress_text(t, &[]));
            let b = compress_text(t, &[]);
            // compressed (tag 2) when it shrinks, else as it is (tag 0)
            assert_eq!(b[0], if t.len() > 100 { 2 } else { 0 }, "{t:.20}");
            assert!(b.len() <= t.len() + 1);
            assert_eq!(decompress_text(&b).as_deref(), Some(t.as_str()));
            // as versions 1 and 2 stored them: a zstd frame (tag 1)
            let z = zstd::bulk::compress(t.as_bytes(), -1).unwrap();
            let mut old = vec![1u8];
            old.extend_from_slice(&(t.len() as u32).to_le_bytes());
            old.extend_from_slice(&z);
            assert_eq!(decompress_text(&old).as_deref(), Some(t.as_str()));
        }
        // damaged bytes give None, never a panic: cut, a wrong length, a byte changed, a
        // tag unknown
        let good = compress_text(&texts[2], &[]);
        for cut in [0, 1, 3, 5, good.len() / 2, good.len() - 1] {
            assert_eq!(decompress_text(&good[..cut]), None, "cut at {cut}");
        }
        let mut long = good.clone();
        long[1] ^= 1;
        assert_eq!(decompress_text(&long), None);
        long[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decompress_text(&long), None);
        for at in 5..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x5a;
            assert_ne!(decompress_text(&bad).as_deref(), Some(texts[2].as_str()));
        }
        let mut tag = good.clone();
        tag[0] = 9;
        assert_eq!(decompress_text(&tag), None);
    }

    #[test]
    fn filters_spare_absent_keys_and_old_segments_still_read() {
        let c = cfg(0.8);
        let texts = corpus(3000);
        let dir = tmp("filter");
        let keep = add_in_batches(&c, &texts, 1000, &dir);
        let fp = settings_fingerprint(&c);
        let seg = Segment::open(&dir.join("seg1"), c.bands, fp, true).unwrap();
        assert_eq!(seg.version, SEGMENT_VERSION);
        let (_, blocks) = seg.filter.unwrap();
        assert_eq!(seg.filter_mem().unwrap().len(), 64 * blocks);
        // no false negatives: every key of every kept document of the segment passes
        let signed = c.sign(&texts);
        let mut present = 0;
        for l in 0..seg.n {
            let d = seg.doc(l) as usize;
            if signed.empty[d] {
                continue;
            }
            for b in 0..c.bands {
                assert!(seg.may_have(b, signed.keys[d * c.bands + b]));
                present += 1;
            }
        }
        assert!(present > 1000);
        // few false positives: keys that are in no segment
        let passed = (0..100_000u64)
            .filter(|&k| seg.may_have((k % 21) as usize, hash64(&k.to_le_bytes())))
            .count();
        assert!(
            passed < 1500,
            "{passed} of 100000 absent keys pass the filter"
        );
        // the same index with version 1 segments (no filter) or version 3 ones (no shingle
        // counts) answers alike, and a damaged segment is refused by a verifying open
        let old = dir.join("old");
        std::fs::create_dir_all(&old).unwrap();
        let mut segs = Vec::new();
        let mut v3s = Vec::new();
        let mut snaps = Vec::new();
        for b in 0..3 {
            let bytes = std::fs::read(dir.join(format!("seg{b}"))).unwrap();
            let v1 = downgrade(&bytes, 1);
            assert!(v1.len() < bytes.len());
            let p = old.join(format!("seg{b}"));
            std::fs::write(&p, &v1).unwrap();
            let s = Segment::open(&p, c.bands, fp, true).unwrap();
            assert_eq!((s.version, s.filter, s.shingles(0)), (1, None, None));
            segs.push(Arc::new(s));
            let p = old.join(format!("v3-{b}"));
            std::fs::write(&p, downgrade(&bytes, 3)).unwrap();
            let s = Segment::open(&p, c.bands, fp, true).unwrap();
            assert!(s.filter.is_some());
            assert_eq!((s.version, s.shingles(0)), (3, None));
            v3s.push(Arc::new(s));
            let mut bad = bytes.clone();
            let at = bad.len() - 10;
            bad[at] ^= 0x40;
            let p = old.join(format!("bad{b}"));
            std::fs::write(&p, &bad).unwrap();
            let err = Segment::open(&p, c.bands, fp, true).unwrap_err();
            assert!(err.to_string().contains(&format!("bad{b}")), "{err}");
            assert!(err.to_string().contains("checksum"), "{err}");
            snaps.push(Arc::new(
                Segment::open(&dir.join(format!("seg{b}")), c.bands, fp, false).unwrap(),
            ));
        }
        let n = texts.len() as u32;
        let v1 = Snapshot::new(c.clone(), segs, vec![], n);
        let v3 = Snapshot::new(c.clone(), v3s, vec![], n);
        let v2 = Snapshot::new(c.clone(), snaps, vec![], n);
        let probes = corpus(3400);
        assert_eq!(v1.query_many(&probes), v2.query_many(&probes));
        let mut one = Vec::new();
        let mut two = Vec::new();
        for i in (0..signed.empty.len())
            .filter(|&i| !signed.empty[i])
            .step_by(7)
        {
            let mut k: Vec<u64> = signed.keys[i * c.bands..(i + 1) * c.bands].to_vec();
            one.clear();
            two.clear();
            v1.candidates(&k, &mut one);
            v2.candidates(&k, &mut two);
            assert_eq!(one, two);
            k[0] ^= 1;
            assert_eq!(
                v1.with_digest(signed.digests[i], &k),
                v2.with_digest(signed.digests[i], &k)
            );
        }
        // a batch decided against either decides alike
        let more = corpus(4000);
        let ids: Vec<Id> = (0..1000).map(|i| Id::Int(i as i64)).collect();
        let decide = |snap: Snapshot| {
            let mut batch = Batch::new(Arc::new(snap), &std::env::temp_dir(), false);
            let (d, _) = batch.feed(&more[3000..4000], &ids).unwrap();
            d.iter().map(|x| x.duplicate_of).collect::<Vec<_>>()
        };
        let now = decide(v2);
        assert_eq!(decide(v1), now);
        assert_eq!(decide(v3), now);
        assert!(keep.iter().any(|&k| !k));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_filter_not_in_the_page_cache_is_read_ahead_and_checked() {
        let c = cfg(0.8);
        let texts = corpus(2000);
        let dir = tmp("cold");
        add_in_batches(&c, &texts, 2000, &dir);
        let fp = settings_fingerprint(&c);
        let path = dir.join("seg0");
        evict(&path);
        let seg = Segment::open(&path, c.bands, fp, false).unwrap();
        let (o, blocks) = seg.filter.unwrap();
        let mem = &seg.map[o..o + 64 * blocks];
        if !crate::memory::mostly_cached(mem) {
            // (where the file system keeps it in memory anyway, there is nothing to read)
            seg.read_through(o, mem.len());
            assert!(
                crate::memory::mostly_cached(mem),
                "read ahead into the page cache"
            );
        }
        // evicted again, the first use reads it ahead, checks it and uses it
        drop(seg);
        evict(&path);
        let seg = Segment::open(&path, c.bands, fp, false).unwrap();
        assert_eq!(seg.filter_mem().map(<[u8]>::len), Some(64 * blocks));
        let signed = c.sign(&texts[..50]);
        let kept = (0..seg.n).map(|l| seg.doc(l) as usize).filter(|&d| d < 50);
        for d in kept.filter(|&d| !signed.empty[d]) {
            assert!((0..c.bands).all(|b| seg.may_have(b, signed.keys[d * c.bands + b])));
        }
        // a damaged filter is found however it is read: every key may then be there
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[o + 64 * blocks / 2] ^= 0x10;
        let bad = dir.join("bad");
        std::fs::write(&bad, &bytes).unwrap();
        evict(&bad);
        let seg = Segment::open(&bad, c.bands, fp, false).unwrap();
        assert!(seg.filter_mem().is_none());
        assert!(seg.may_have(0, 12345));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Drops a file's pages from the page cache.
    #[cfg(target_os = "linux")]
    fn evict(p: &Path) {
        use std::os::fd::AsRawFd;
        let f = File::open(p).unwrap();
        f.sync_all().unwrap();
        // SAFETY: advice on a file descriptor we hold; clean pages leave the page cache
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }

    /// Whether `cached()` turns true within two seconds (pages asked for arrive in the
    /// background).
    #[cfg(target_os = "linux")]
    fn arrives(cached: impl Fn() -> bool) -> bool {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while !cached() {
            if std::time::Instant::now() > until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        true
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_pages_of_lookups_and_texts_of_a_cold_segment_are_asked_for_first() {
        use crate::memory::sample_cached;
        let c = cfg(0.8);
        let texts = corpus(3000);
        let dir = tmp("ahead");
        add_in_batches(&c, &texts, 3000, &dir);
        let path = dir.join("seg0");
        let fp = settings_fingerprint(&c);
        let signed = c.sign(&texts);
        let seg = Segment::open(&path, c.bands, fp, false).unwrap();
        let kept: Vec<usize> = (0..seg.n)
            .filter(|&l| !signed.empty[seg.doc(l) as usize])
            .collect();
        assert!(kept.len() > 50, "{}", kept.len());
        let b = 3;
        let mut sorted: Vec<u64> = kept
            .iter()
            .map(|&l| {
                let d = seg.doc(l) as usize;
                (signed.keys[d * c.bands + b] & KEY_MASK) << 24 | d as u64
            })
            .collect();
        sorted.sort_unstable();
        let walk = |seg: &Segment| {
            let mut found = Vec::new();
            seg.walk_sorted(b, &sorted, |i, l| found.push((i, l as usize)));
            found.sort_unstable();
            found
        };
        let warm = walk(&seg);
        let texts_of =
            |seg: &Segment| -> Vec<String> { kept.iter().map(|&l| seg.text(l).unwrap()).collect() };
        let warm_texts = texts_of(&seg);
        // each kept document finds itself, and its text is the one added
        for (&l, t) in kept.iter().zip(&warm_texts) {
            let d = seg.doc(l);
            assert!(warm.binary_search(&(d, l)).is_ok());
            assert_eq!(t, &texts[d as usize]);
        }
        drop(seg);
        evict(&path);
        let seg = Segment::open(&path, c.bands, fp, false).unwrap();
        let section = |s: usize| {
            let (o, l, _) = seg.sections[s];
            &seg.map[o..o + l]
        };
        let dirs: Vec<_> = sorted
            .iter()
            .map(|&e| 4 * seg.dir_slot(e >> 24)..4 * seg.dir_slot(e >> 24) + 8)
            .collect();
        let offsets: Vec<_> = kept.iter().map(|&l| 8 * l..8 * l + 16).collect();
        let table = section(BAND0 + b);
        if !sample_cached(table, &dirs, Clone::clone) {
            // (where the file system keeps it in memory anyway, there is nothing to ask for)
            seg.read_ahead(b, &sorted);
            assert!(
                arrives(|| sample_cached(table, &dirs, Clone::clone)),
                "directory slots"
            );
            seg.read_ahead_texts(&kept);
            assert!(arrives(|| sample_cached(
                section(TEXT_OFFSETS),
                &offsets,
                Clone::clone
            )));
            let stored: Vec<_> = kept
                .iter()
                .map(|&l| {
                    seg.u64_at(TEXT_OFFSETS, l) as usize..seg.u64_at(TEXT_OFFSETS, l + 1) as usize
                })
                .collect();
            assert!(
                arrives(|| sample_cached(section(TEXTS), &stored, Clone::clone)),
                "texts"
            );
        }
        // asked for or not, read cold the lookups and texts are the same
        assert_eq!(walk(&seg), warm);
        assert_eq!(texts_of(&seg), warm_texts);
        drop(seg);
        evict(&path);
        let seg = Segment::open(&path, c.bands, fp, false).unwrap();
        assert_eq!(walk(&seg), warm);
        assert_eq!(texts_of(&seg), warm_texts);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn filter_tests_agree() {
        // random blocks from sparse to full, and random hashes: the AVX2 test is the word loop
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = || crate::minhash::splitmix64(&mut state);
        let mut held = 0;
        for round in 0..200_000 {
            let mut line = [0u8; 64];
            for w in line.chunks_exact_mut(8) {
                let mut x = u64::MAX;
                for _ in 0..round % 4 {
                    x &= next();
                }
                w.copy_from_slice(&x.to_le_bytes());
            }
            let h = next();
            let want = filter_holds(&line, h);
            held += usize::from(want);
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above)
                assert_eq!(
                    unsafe { filter_holds_avx2(&line, h) },
                    want,
                    "{line:?} {h:#x}"
                );
            }
        }
        assert!(held > 50_000 && held < 150_000, "{held}");
        // a whole pass, with a filter built from half of the keys
        let keys: Vec<u64> = (0..20_000).map(|_| next() & KEY_MASK).collect();
        let mut f = Filter::new(10_000, 1);
        f.insert_all(0, &keys[..10_000]);
        let mem = f.bytes();
        let blocks = mem.len() / 64;
        let lookups: Vec<u64> = keys
            .iter()
            .enumerate()
            .map(|(i, &k)| k << 24 | i as u64)
            .collect();
        let hashes: Vec<u64> = lookups.iter().map(|&e| filter_hash(0, e >> 24)).collect();
        let mut scalar = Vec::new();
        filter_pass_with(&mem, blocks, &lookups, &hashes, &mut scalar, |l, h| {
            filter_holds(l, h)
        });
        // kept in order: the inserted keys all pass, and few others
        assert_eq!(scalar[..10_000], lookups[..10_000]);
        assert!(scalar.len() < 10_100, "{} passed", scalar.len());
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            let mut wide = Vec::new();
            // SAFETY: the CPU supports AVX2 (checked just above)
            unsafe { filter_pass_avx2(&mem, blocks, &lookups, &hashes, &mut wide) };
            assert_eq!(wide, scalar);
        }
    }

    #[test]
    fn compaction_keeps_answers_and_drops_tombstones() {
        let c = cfg(0.7);
        let texts = corpus(200);
        let dir = tmp("compact");
        let mut snap = Arc::new(Snapshot::new(c.clone(), vec![], vec![], 0));
        for (b, part) in texts.chunks(60).enumerate() {
            let mut batch = Batch::new(snap.clone(), &std::env::temp_dir(), true);
            let ids: Vec<Id> = (0..part.len())
                .map(|i| Id::Int((b * 60 + i) as i64))
                .collect();
            batch.feed(part, &ids).unwrap();
            let mut segs = snap.segments.clone();
            segs.extend(
                batch
                    .write(&dir.join(format!("s{b}")))
                    .unwrap()
                    .map(Arc::new),
            );
            snap = Arc::new(Snapshot::new(c.clone(), segs, vec![], batch.next));
        }
        let some = [snap.segments[0].doc(0), snap.segments[1].doc(1)];
        let gone = snap
            .docs_with_ids(&[Id::Int(some[0] as i64), Id::Int(some[1] as i64)])
            .unwrap();
        assert_eq!(gone, some.to_vec());
        let snap = Snapshot::new(c.clone(), snap.segments.clone(), gone, snap.n_docs);
        let before = snap.query_many(&texts);
        let n = snap.segments.len();
        let one = snap.compact_into(0..n, &dir.join("all")).unwrap().unwrap();
        let compacted = Snapshot::new(c.clone(), vec![Arc::new(one)], vec![], snap.n_docs);
        assert_eq!(compacted.len(), snap.len());
        assert_eq!(compacted.query_many(&texts), before);
        // the texts' sketches are copied with them
        let far = c
            .hasher
            .shingler
            .hash_set(&unrelated(), &mut Scratch::default());
        let seg = &compacted.segments[0];
        assert!((0..seg.n)
            .filter(|&l| !seg.text(l).unwrap().is_empty())
            .all(|l| !seg.sketch_admits(l, &far, 0.5, 0)));
        assert!(before.iter().flatten().all(|h| !some.contains(&h.0)));
        assert!(before.iter().filter(|h| !h.is_empty()).count() > 50);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
