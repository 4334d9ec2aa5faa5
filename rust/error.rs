//! The core's error type. No PyO3 here: the bindings map each variant to a Python exception.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// An argument has a value the algorithm cannot work with (`k <= 0`, `order < 1`, ...).
    /// `arg` names the argument, `message` says what to change.
    InvalidArgument { arg: &'static str, message: String },
    /// A token or id that is not in the vocabulary where one is required.
    UnknownToken(String),
    /// Serialized data (a saved model, index or vocabulary) that is corrupt or from elsewhere.
    Corrupt(String),
    /// A file or directory that cannot be read or written; `path` names it.
    Io { path: String, message: String },
    /// A file that is not there; `path` names it.
    NotFound { path: String },
}

impl Error {
    /// An I/O error on the file at `path`.
    pub fn io(path: &std::path::Path, e: impl fmt::Display) -> Self {
        Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }

    /// An I/O error on the file at `path`, a missing file told apart.
    pub fn from_io(path: &std::path::Path, e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound {
                path: path.display().to_string(),
            }
        } else {
            Error::io(path, e)
        }
    }

    pub fn invalid(arg: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            arg,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument { arg, message } => write!(f, "{arg}: {message}"),
            Error::UnknownToken(t) => write!(f, "token {t:?} is not in the vocabulary"),
            Error::Corrupt(m) => write!(f, "corrupt data: {m}"),
            Error::Io { path, message } => write!(f, "{path}: {message}"),
            Error::NotFound { path } => write!(f, "{path}: no such file or directory"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
