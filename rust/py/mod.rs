//! PyO3 bindings: argument conversion, GIL release, error mapping. No algorithm lives here.

use pyo3::prelude::*;

pub mod convert;
pub mod dedup;
pub mod reader;
pub mod text;

pyo3::create_exception!(
    textsieve,
    TextsieveError,
    pyo3::exceptions::PyValueError,
    "Bad input or corrupt data given to textsieve (a ValueError)."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("TextsieveError", m.py().get_type::<TextsieveError>())?;
    text::register(m)?;
    dedup::register(m)?;
    reader::register(m)?;
    Ok(())
}
