//! Converting Python arguments to Rust values, with errors that name the argument and position.

use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyString;

use super::errors::invalid_argument;
use crate::cluster::{Cluster, Keep, Verify};
use crate::minhash::Scheme;
use crate::shingle::Normalize;

/// An argument's value as a Rust value, or an error that names the argument: a `TypeError` for
/// the wrong type, an `InvalidArgumentError` for a value out of the type's range (PyO3 alone
/// says "int too big to convert" or "can't convert negative int to unsigned", naming nothing).
pub trait Arg: Sized {
    fn extract_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Self>;
}

macro_rules! unsigned_arg {
    ($($t:ty),*) => {$(
        impl Arg for $t {
            fn extract_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Self> {
                match obj.extract::<$t>() {
                    Ok(v) => Ok(v),
                    Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
                        Err(if obj.lt(0)? {
                            invalid_argument(name, format!("must not be negative, got {obj}"))
                        } else {
                            invalid_argument(name, format!("must be at most {}, got {obj}", <$t>::MAX))
                        })
                    }
                    Err(e) => Err(e),
                }
            }
        }
    )*};
}
unsigned_arg!(u8, u32, u64, usize);

impl Arg for String {
    fn extract_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Self> {
        let s = obj.cast::<PyString>()?;
        match s.to_str() {
            Ok(t) => Ok(t.to_owned()),
            Err(_) => Err(invalid_argument(
                name,
                format!("contains a lone surrogate, which is not valid Unicode text: {s:?}"),
            )),
        }
    }
}

/// A list (or any iterable but a `str`) whose items are named `name[i]` in errors.
impl<T: Arg> Arg for Vec<T> {
    fn extract_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Self> {
        if obj.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(format!(
                "{name}: expected a list, got a single str"
            )));
        }
        let mut out = Vec::with_capacity(obj.len().unwrap_or(0));
        for (i, item) in obj.try_iter()?.enumerate() {
            out.push(T::extract_arg(&item?, &format!("{name}[{i}]"))?);
        }
        Ok(out)
    }
}

impl<T: Arg> Arg for Option<T> {
    fn extract_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Self> {
        if obj.is_none() {
            Ok(None)
        } else {
            T::extract_arg(obj, name).map(Some)
        }
    }
}

/// The extractors of the arguments the bindings take as integers or settings strings, one
/// function per argument name, for `#[pyo3(from_py_with = arg::num_threads)]`.
pub mod arg {
    use super::Arg;
    use pyo3::prelude::*;

    macro_rules! named {
        ($($name:ident),*) => {$(
            pub fn $name<T: Arg>(obj: &Bound<'_, PyAny>) -> PyResult<T> {
                T::extract_arg(obj, stringify!($name))
            }
        )*};
    }
    named!(
        num_threads,
        num_perm,
        seed,
        k,
        order,
        length,
        max_cells,
        bands,
        rows,
        samples,
        punctuation,
        unk,
        tokens
    );
}

/// A setting given by its name (`"native"`, `"exact"`, `"greedy"`, ...) as the core's enum: the
/// one place where names become values. A bad name is a `TextsieveError` naming the argument.
pub struct Named<T>(pub T);

pub trait FromName: Sized {
    /// The argument that takes these names.
    const ARG: &'static str;
    fn from_name(name: &str) -> crate::error::Result<Self>;
}

macro_rules! from_name {
    ($($t:ty = $arg:literal),*) => {$(
        impl FromName for $t {
            const ARG: &'static str = $arg;
            fn from_name(name: &str) -> crate::error::Result<Self> {
                <$t>::parse(name)
            }
        }
    )*};
}
from_name!(
    Scheme = "scheme",
    Normalize = "normalize",
    Verify = "verify",
    Keep = "keep",
    Cluster = "cluster"
);

impl<'a, 'py, T: FromName> FromPyObject<'a, 'py> for Named<T> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let name = String::extract_arg(&obj, T::ARG)?;
        Ok(Named(T::from_name(&name)?))
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
            other => Err(invalid_argument(
                "errors",
                format!("expected 'strict' or 'replace', got {other:?}"),
            )),
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
            Surrogates::Strict => Err(invalid_argument(
                what,
                "contains a lone surrogate, which is not valid Unicode text; \
                 fix the input or pass errors='replace' to replace it with U+FFFD",
            )),
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
