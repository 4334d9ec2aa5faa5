//! Converting Python arguments to Rust values, with errors that name the argument and position.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyString;

use crate::cluster::{Cluster, Keep, Verify};
use crate::error::Error;
use crate::minhash::Scheme;
use crate::shingle::Normalize;

/// A setting given by its name (`"native"`, `"exact"`, `"greedy"`, ...) as the core's enum: the
/// one place where names become values. A bad name is a `TextsieveError` naming the argument.
pub struct Named<T>(pub T);

pub trait FromName: Sized {
    fn from_name(name: &str) -> crate::error::Result<Self>;
}

macro_rules! from_name {
    ($($t:ty),*) => {$(
        impl FromName for $t {
            fn from_name(name: &str) -> crate::error::Result<Self> {
                <$t>::parse(name)
            }
        }
    )*};
}
from_name!(Scheme, Normalize, Verify, Keep, Cluster);

impl<'a, 'py, T: FromName> FromPyObject<'a, 'py> for Named<T> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let name: PyBackedStr = obj.extract()?;
        T::from_name(&name).map(Named).map_err(to_pyerr)
    }
}

/// Two NumPy arrays returned together.
pub type Arrays<'py, A, B> = (Bound<'py, A>, Bound<'py, B>);

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
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into())
        ))
    })?;
    match s.to_str() {
        Ok(t) => Ok(t.to_owned()),
        Err(_) => match errors {
            Surrogates::Replace => {
                let bytes = s.call_method1("encode", ("utf-8", "surrogatepass"))?;
                Ok(replace_surrogates(bytes.extract::<&[u8]>()?))
            }
            Surrogates::Strict => Err(PyValueError::new_err(format!(
                "{what}: contains a lone surrogate, which is not valid Unicode text; \
                 fix the input or pass errors='replace' to replace it with U+FFFD"
            ))),
        },
    }
}

/// UTF-8 with lone surrogates encoded as 3-byte sequences (`ED A0..BF xx`) to a `String` with
/// one U+FFFD per surrogate.
fn replace_surrogates(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                out.push('\u{FFFD}');
                // `surrogatepass` writes each surrogate as 3 bytes starting with 0xED
                let skip = if bad[0] == 0xED {
                    3
                } else {
                    e.error_len().unwrap_or(1)
                };
                rest = &bad[skip.min(bad.len())..];
            }
        }
    }
    out
}

/// A document borrowed from its Python `str` without copying (the UTF-8 buffer stays alive with
/// the object and may be read with the GIL released), or owned when surrogates were replaced.
pub enum PyText {
    Backed(PyBackedStr),
    Owned(String),
}

impl std::ops::Deref for PyText {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            PyText::Backed(b) => b,
            PyText::Owned(s) => s,
        }
    }
}

impl AsRef<str> for PyText {
    fn as_ref(&self) -> &str {
        self
    }
}

impl From<PyText> for String {
    fn from(t: PyText) -> String {
        match t {
            PyText::Backed(b) => b.to_string(),
            PyText::Owned(s) => s,
        }
    }
}

/// An iterable of `str` (list, tuple, generator, ...), borrowed without copying; a bare `str` is
/// refused because iterating it would silently treat each character as a document.
pub fn extract_texts(
    obj: &Bound<'_, PyAny>,
    arg: &str,
    errors: Surrogates,
) -> PyResult<Vec<PyText>> {
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{arg}: expected an iterable of str (documents), got a single str; wrap it in a list"
        )));
    }
    let iter = obj.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "{arg}: expected an iterable of str, got {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into())
        ))
    })?;
    let mut out = Vec::with_capacity(obj.len().unwrap_or(0));
    for (i, item) in iter.enumerate() {
        let item = item?;
        let text = match item
            .cast::<PyString>()
            .ok()
            .map(|s| PyBackedStr::try_from(s.clone()))
        {
            Some(Ok(b)) => PyText::Backed(b),
            _ => PyText::Owned(extract_text(&item, &format!("{arg}[{i}]"), errors)?),
        };
        out.push(text);
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
