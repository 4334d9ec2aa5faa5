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
    py::register(m)
}

/// The core allocates and frees large buffers chunk after chunk on several threads; mimalloc
/// keeps them in per-thread pages (glibc's malloc returned them to the kernel and took page
/// faults to get them back, a tenth of a dedup run's time in the kernel).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
