//! textsieve's Rust core. Every algorithm lives in a pure-Rust module below; `py/` holds the
//! PyO3 bindings (built only with the `python` feature, which maturin turns on).

pub mod error;
pub mod memory;
pub mod ngram;
pub mod parallel;
pub mod tokenize;

pub mod cluster;
pub mod greedy;
pub mod index;
pub mod lsh;
pub mod minhash;
pub mod output;
pub mod reader;
pub mod shingle;
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

/// Lets mimalloc hold freed pages for a second (10 ms by default) before it hands them back to
/// the kernel. A dedup run frees and allocates chunk-sized buffers many times a second; with the
/// default, a 250,000-document run took 250,000 page faults (the kernel zeroing each page again)
/// and 10-17% more CPU time, for 60 MB less peak memory.
pub fn keep_freed_pages() {
    // SAFETY: sets a number in mimalloc's option table; any value is valid for this option
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
}

/// The core allocates and frees large buffers chunk after chunk on several threads; mimalloc
/// keeps them in per-thread pages (glibc's malloc returned them to the kernel and took page
/// faults to get them back, a tenth of a dedup run's time in the kernel).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
