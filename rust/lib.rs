//! textsieve's Rust core. Every algorithm lives in a pure-Rust module below; `py/` holds the
//! PyO3 bindings (built only with the `python` feature, which maturin turns on).

pub mod error;
pub mod memory;
pub mod ngram;
pub mod parallel;
pub mod tokenize;

pub mod cluster;
pub mod direct;
pub mod greedy;
pub mod index;
pub mod jsonline;
pub mod lsh;
pub mod minhash;
pub mod output;
pub mod reader;
pub mod shingle;
pub mod sketch;
pub mod store;
pub mod suffix;

#[cfg(feature = "python")]
mod py;

#[cfg(feature = "python")]
#[pyo3::pymodule]
fn _core(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    keep_freed_pages();
    py::register(m)
}

/// mimalloc's `purge_delay` option (its number since mimalloc 2.1; the crate names only the
/// older options).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Lets mimalloc hold freed pages for ten seconds (10 ms by default) before it hands them back to
/// the kernel; `MIMALLOC_PURGE_DELAY` in the environment (milliseconds) overrides it. A dedup
/// run frees and allocates chunk-sized buffers many times a second, and a page handed back costs
/// a page fault and the kernel zeroing it when it is taken again. With the default, a
/// 250,000-document run took 250,000 page faults and 10-17% more CPU time; at one second, a
/// 2,000,000-document run still took 364,000 faults and 4.7 s of system time, at ten seconds
/// 74,000 and 3.5 s, for 50 MB more peak memory (1.08 GB).
pub fn keep_freed_pages() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return; // the user's own setting, read by mimalloc at start
    }
    // SAFETY: sets a number in mimalloc's option table; any value is valid for this option
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10_000) };
}

/// The core allocates and frees large buffers chunk after chunk on several threads; mimalloc
/// keeps them in per-thread pages (glibc's malloc returned them to the kernel and took page
/// faults to get them back, a tenth of a dedup run's time in the kernel).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
