//! Buffers whose size follows from the arguments (documents x permutations, a sample's length,
//! a dense matrix), refused with an error before allocating when they cannot fit: Rust aborts
//! the process on a failed allocation, which for a Python caller is a crash, not an exception.
//! And large zeroed arrays mapped from the system, which go back to it the moment they are
//! dropped.

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// `len` copies of `fill` (`None`: the size overflowed), or an error naming `arg` when the bytes
/// exceed the machine's memory or the allocator refuses them. `what` describes the buffer for
/// the message ("1000 signatures of 128 permutations").
pub fn filled<T: Clone>(
    arg: &'static str,
    what: impl FnOnce() -> String,
    len: Option<usize>,
    fill: T,
) -> Result<Vec<T>> {
    let mut out = reserved(arg, what, len)?;
    out.resize(len.unwrap_or(0), fill);
    Ok(out)
}

/// An empty vector with room for exactly `len` items, refused as [`filled`] does.
pub fn reserved<T>(
    arg: &'static str,
    what: impl FnOnce() -> String,
    len: Option<usize>,
) -> Result<Vec<T>> {
    let item = std::mem::size_of::<T>().max(1);
    let bytes = len.and_then(|n| n.checked_mul(item));
    let refuse = |need: String| {
        let have = physical_memory()
            .map(|m| format!(" ({} here)", human(m)))
            .unwrap_or_default();
        Error::invalid(
            arg,
            format!(
                "{} would take {need}, more memory than this machine has{have}",
                what()
            ),
        )
    };
    let (len, bytes) = match (len, bytes) {
        (Some(len), Some(bytes)) => (len, bytes),
        _ => return Err(refuse("more than 2^64 bytes".into())),
    };
    if physical_memory().is_some_and(|m| bytes as u64 > m) {
        return Err(refuse(human(bytes as u64)));
    }
    let mut out = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|_| refuse(human(bytes as u64)))?;
    Ok(out)
}

/// `bytes` of zeroed memory mapped straight from the system (`None` where it refuses), so that
/// dropping it hands the pages back at once, whatever the allocator's purge delay. One of 2 MB
/// or more asks for 2 MB pages (read at random, it would miss the TLB on nearly every access
/// with 4 KB ones, and fill a page fault at a time); a smaller one takes only its 4 KB pages.
pub fn zeroed_map(bytes: usize) -> Option<memmap2::MmapMut> {
    let map = memmap2::MmapMut::map_anon(bytes).ok()?;
    #[cfg(target_os = "linux")]
    if bytes >= 2 << 20 {
        let _ = map.advise(memmap2::Advice::HugePage);
    }
    Some(map)
}

/// The size of a memory page (`None` where the system does not say).
#[cfg(unix)]
fn page_size() -> Option<usize> {
    // SAFETY: sysconf reads a constant
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).ok().filter(|&p| p > 0)
}

/// Whether nine pages in ten of the mapped `mem` are in the page cache (`true` where the kernel
/// does not say): a file's part that is not is better read in order than page by page through
/// its mapping.
pub fn mostly_cached(mem: &[u8]) -> bool {
    #[cfg(unix)]
    {
        let Some(page) = page_size().filter(|_| !mem.is_empty()) else {
            return true;
        };
        let start = mem.as_ptr() as usize / page * page;
        let len = mem.as_ptr() as usize + mem.len() - start;
        let mut pages = vec![0u8; len.div_ceil(page)];
        // SAFETY: `start..start + len` lies within the mapping `mem` is part of (rounded down
        // to its page, which the mapping holds too), and `pages` has a byte for each page
        let r =
            unsafe { libc::mincore(start as *mut libc::c_void, len, pages.as_mut_ptr().cast()) };
        r != 0 || pages.iter().filter(|&&p| p & 1 != 0).count() * 10 >= pages.len() * 9
    }
    #[cfg(not(unix))]
    {
        let _ = mem;
        true
    }
}

/// Whether each of up to [`SAMPLE`] of `items`, taken evenly, has its byte range (`range`,
/// within the mapped `mem`) in pages of the page cache: for a large part of a file read here
/// and there, where [`mostly_cached`] over all of it would say little (and cost a look at every
/// page). Only the sample's ranges are made, one `mincore` call each.
pub fn sample_cached<T>(
    mem: &[u8],
    items: &[T],
    range: impl Fn(&T) -> std::ops::Range<usize>,
) -> bool {
    let step = items.len().div_ceil(SAMPLE).max(1);
    items.iter().step_by(step).map(range).all(|r| {
        let (a, b) = (r.start.min(mem.len()), r.end.min(mem.len()));
        mostly_cached(&mem[a..b.max(a)])
    })
}

/// The ranges [`sample_cached`] looks at. It is asked before every walk of a band table and
/// every group of texts read: with 32 (nine in ten to be cached), an add of 1 GB against 9
/// segments made 157,000 `mincore` calls, 0.4 CPU s.
const SAMPLE: usize = 8;

/// Asks the kernel to read into the page cache, in the background, the pages of the mapped
/// `mem` that the byte ranges `ranges` (within `mem`; best in ascending order) fall in: runs of
/// pages closer than [`AHEAD_GAP`] pages are asked for as one. A walk of a table not in the page
/// cache reads each of its pages only when it touches it, one disk read at a time per thread;
/// asked for first, they are read side by side.
pub fn will_need(mem: &[u8], ranges: impl IntoIterator<Item = std::ops::Range<usize>>) {
    #[cfg(unix)]
    {
        let Some(page) = page_size().filter(|_| !mem.is_empty()) else {
            return;
        };
        let base = mem.as_ptr() as usize;
        let ask = |first: usize, last: usize| {
            let start = first * page;
            let len = (last + 1) * page - start;
            // SAFETY: `first..=last` are pages that bytes of `mem` lie in, so the range is
            // within the mapping `mem` is part of; WILLNEED only reads ahead, it changes no
            // byte of the mapping
            unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_WILLNEED) };
        };
        let mut run: Option<(usize, usize)> = None;
        for r in ranges {
            let (a, b) = (r.start.min(mem.len()), r.end.min(mem.len()));
            if a >= b {
                continue;
            }
            let (first, last) = ((base + a) / page, (base + b - 1) / page);
            run = match run {
                Some((f, l)) if first <= l + AHEAD_GAP && f <= last + AHEAD_GAP => {
                    Some((f.min(first), l.max(last)))
                }
                Some((f, l)) => {
                    ask(f, l);
                    Some((first, last))
                }
                None => Some((first, last)),
            };
        }
        if let Some((f, l)) = run {
            ask(f, l);
        }
    }
    #[cfg(not(unix))]
    let _ = (mem, ranges.into_iter());
}

/// Pages between two ranges asked for by [`will_need`] under which both are read as one run
/// (reading a few pages more costs less than another request).
const AHEAD_GAP: usize = 4;

/// Bytes of memory this process may use: the machine's (`MemTotal`), or less under a cgroup
/// limit; None where neither can be read (then only the allocator decides).
pub fn physical_memory() -> Option<u64> {
    static MEMORY: OnceLock<Option<u64>> = OnceLock::new();
    *MEMORY.get_or_init(|| {
        let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kb.checked_mul(1024)
        });
        // cgroup v2 ("max" when unlimited, which does not parse)
        let limit = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        match (total, limit) {
            (Some(t), Some(l)) => Some(t.min(l)),
            (t, l) => t.or(l),
        }
    })
}

/// Bytes for people: "1.5 GB" (powers of 1000).
fn human(bytes: u64) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn pages_not_yet_touched_are_not_cached() {
        // an anonymous map has no pages until they are written
        let mut map = memmap2::MmapMut::map_anon(64 << 12).unwrap();
        assert!(!mostly_cached(&map[..]));
        map[..32 << 12].fill(1);
        assert!(!mostly_cached(&map[..]), "half of the pages");
        assert!(mostly_cached(&map[..32 << 12]));
        assert!(
            mostly_cached(&map[5..(32 << 12) - 5]),
            "unaligned, within the written pages"
        );
        map.fill(2);
        assert!(mostly_cached(&map[..]));
        assert!(mostly_cached(&map[..0]));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_sample_of_ranges_says_whether_they_are_cached() {
        let mut map = memmap2::MmapMut::map_anon(64 << 12).unwrap();
        map[..32 << 12].fill(1);
        let pages = |r: std::ops::Range<usize>| -> Vec<_> {
            r.map(|p| (p << 12) + 100..(p << 12) + 200).collect()
        };
        assert!(sample_cached(&map, &pages(0..32), Clone::clone));
        assert!(!sample_cached(&map, &pages(32..64), Clone::clone));
        assert!(
            !sample_cached(&map, &pages(16..48), Clone::clone),
            "half of them"
        );
        // of 16 ranges, every other one is looked at: one not cached among them says no, one
        // between them is not seen
        let with_cold = |at: usize| -> Vec<_> {
            let mut v = pages(0..16);
            v[at] = pages(40..41)[0].clone();
            v
        };
        assert!(!sample_cached(&map, &with_cold(2), Clone::clone));
        assert!(sample_cached(&map, &with_cold(3), Clone::clone));
        assert!(sample_cached(&map, &[], Clone::clone));
        // asking for pages of an anonymous map reads nothing and changes nothing
        will_need(&map, pages(0..64));
        assert!(map[..32 << 12].iter().all(|&b| b == 1) && map[32 << 12..].iter().all(|&b| b == 0));
    }

    #[test]
    fn small_buffers_are_made() {
        let v = filled("n", || "ten numbers".into(), Some(10), 7u32).unwrap();
        assert_eq!(v, vec![7; 10]);
        let r: Vec<u64> = reserved("n", String::new, Some(3)).unwrap();
        assert!(r.is_empty() && r.capacity() >= 3);
        assert!(filled("n", String::new, Some(0), 0u8).unwrap().is_empty());
    }

    #[test]
    fn impossible_buffers_are_refused_before_allocating() {
        // overflowed, beyond the address space, beyond the machine
        let overflow = filled("num_perm", || "the signatures".into(), None, 0u32).unwrap_err();
        assert!(
            overflow
                .to_string()
                .starts_with("num_perm: the signatures would take more than"),
            "{overflow}"
        );
        let huge = filled("length", || "the sample".into(), Some(1 << 60), 0u32).unwrap_err();
        assert!(matches!(huge, Error::InvalidArgument { arg: "length", .. }));
        assert!(huge.to_string().contains("would take 4.6 EB"), "{huge}");
        if let Some(m) = physical_memory() {
            let over = usize::try_from(m / 8 + 1).unwrap();
            assert!(reserved::<u64>("k", String::new, Some(over)).is_err());
        }
    }

    #[test]
    fn maps_are_zeroed_and_sized() {
        for bytes in [4096, 3 << 20] {
            let m = zeroed_map(bytes).unwrap();
            assert_eq!(m.len(), bytes);
            assert!(m.iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human(999), "999 bytes");
        assert_eq!(human(1_500_000_000), "1.5 GB");
    }
}
