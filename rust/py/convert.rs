//! Converting Python arguments to Rust values, with errors that name the argument and position.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::error::Error;

/// How to treat lone surrogates (which cannot be UTF-8): refuse them, or replace them with U+FFFD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surrogates {
    Strict,
    Replace,
}

impl Surrogates {
    pub fn parse(errors: &str) -> PyResult<Self> {
        match errors {
            "strict" => Ok(Surrogates::Strict),
            "replace" => Ok(Surrogates::Replace),
            other => Err(PyValueError::new_err(format!(
                "errors: expected 'strict' or 'replace', got {other:?}"
            ))),
        }
    }
}

/// One `str` argument as a Rust `String`; `what` names it in errors (e.g. `text` or `texts[3]`).
pub fn extract_text(obj: &Bound<'_, PyAny>, what: &str, errors: Surrogates) -> PyResult<String> {
    let s = obj.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what}: expected str, got {}",
            obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
        ))
    })?;
    match s.to_str() {
        Ok(t) => Ok(t.to_owned()),
        Err(_) => match errors {
            Surrogates::Replace => Ok(s.to_string_lossy().into_owned()),
            Surrogates::Strict => Err(PyValueError::new_err(format!(
                "{what}: contains a lone surrogate, which is not valid Unicode text; \
                 fix the input or pass errors='replace' to replace it with U+FFFD"
            ))),
        },
    }
}

/// An iterable of `str` (list, tuple, generator, ...) as `Vec<String>`; a bare `str` is refused
/// because iterating it would silently treat each character as a document.
pub fn extract_texts(obj: &Bound<'_, PyAny>, arg: &str, errors: Surrogates) -> PyResult<Vec<String>> {
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{arg}: expected an iterable of str (documents), got a single str; wrap it in a list"
        )));
    }
    let iter = obj.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "{arg}: expected an iterable of str, got {}",
            obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
        ))
    })?;
    let mut out = Vec::with_capacity(obj.len().unwrap_or(0));
    for (i, item) in iter.enumerate() {
        out.push(extract_text(&item?, &format!("{arg}[{i}]"), errors)?);
    }
    Ok(out)
}

/// Map a core error to the exception a user would catch.
pub fn to_pyerr(err: Error) -> PyErr {
    match err {
        Error::UnknownToken(_) => pyo3::exceptions::PyKeyError::new_err(err.to_string()),
        _ => super::TextsieveError::new_err(err.to_string()),
    }
}
