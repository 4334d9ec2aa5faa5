//! PyO3 bindings: argument conversion, GIL release, error mapping. No algorithm lives here.

use pyo3::prelude::*;

pub mod convert;
pub mod dedup;
pub mod errors;
pub mod index;
pub mod ngram;
pub mod reader;
pub mod suffix;
pub mod text;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    text::register(m)?;
    dedup::register(m)?;
    index::register(m)?;
    reader::register(m)?;
    ngram::register(m)?;
    suffix::register(m)?;
    Ok(())
}
