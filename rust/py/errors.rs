//! textsieve's exceptions, and the one conversion of the core's [`Error`] to them.
//!
//! ```text
//! ValueError
//!  └ TextsieveError                 bad input or corrupt data given to textsieve
//!     ├ InvalidArgumentError        an argument's value; `.arg` names the argument
//!     ├ CorruptDataError            a saved model, index or vocabulary that cannot be read
//!     └ UnknownTokenError           a token not in the vocabulary (also a KeyError)
//! ```
//!
//! Every attribute lives in the exception's `__dict__`, which pickling keeps.

use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::error::Error;

pyo3::create_exception!(
    textsieve,
    TextsieveError,
    PyValueError,
    "Bad input or corrupt data given to textsieve (a ValueError)."
);
pyo3::create_exception!(
    textsieve,
    InvalidArgumentError,
    TextsieveError,
    "An argument with a value textsieve cannot work with; `arg` names the argument."
);
pyo3::create_exception!(
    textsieve,
    CorruptDataError,
    TextsieveError,
    "Saved data (a model, index or vocabulary) that is corrupt or was not written by textsieve."
);

/// `UnknownTokenError(TextsieveError, KeyError)`: made at import, as a class with two bases
/// cannot be declared by `create_exception!`.
fn unknown_token_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let class = CLASS.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let bases = PyTuple::new(
            py,
            [py.get_type::<TextsieveError>(), py.get_type::<PyKeyError>()],
        )?;
        let body = PyDict::new(py);
        body.set_item("__module__", "textsieve")?;
        body.set_item(
            "__doc__",
            "A token that is not in the vocabulary (a TextsieveError and a KeyError).",
        )?;
        let class = py
            .get_type::<PyType>()
            .call1(("UnknownTokenError", bases, body))?;
        Ok(class.cast_into::<PyType>()?.unbind())
    })?;
    Ok(class.bind(py))
}

/// An [`InvalidArgumentError`] for `arg` (which may be a position such as `texts[3]`).
pub fn invalid_argument(arg: &str, message: impl std::fmt::Display) -> PyErr {
    let err = InvalidArgumentError::new_err(format!("{arg}: {message}"));
    Python::attach(|py| {
        // (an exception object takes attributes; failing that, the message still names it)
        let _ = err.value(py).setattr("arg", arg);
    });
    err
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        match err {
            Error::InvalidArgument { arg, message } => invalid_argument(arg, message),
            Error::Corrupt(_) => CorruptDataError::new_err(err.to_string()),
            Error::Io { .. } => pyo3::exceptions::PyOSError::new_err(err.to_string()),
            Error::NotFound { .. } => {
                pyo3::exceptions::PyFileNotFoundError::new_err(err.to_string())
            }
            Error::UnknownToken(ref token) => Python::attach(|py| {
                let class = match unknown_token_error(py) {
                    Ok(class) => class,
                    Err(e) => return e,
                };
                let exc = PyErr::from_type(class.clone(), err.to_string());
                let _ = exc.value(py).setattr("token", token);
                exc
            }),
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("TextsieveError", py.get_type::<TextsieveError>())?;
    m.add(
        "InvalidArgumentError",
        py.get_type::<InvalidArgumentError>(),
    )?;
    m.add("CorruptDataError", py.get_type::<CorruptDataError>())?;
    m.add("UnknownTokenError", unknown_token_error(py)?)?;
    Ok(())
}
