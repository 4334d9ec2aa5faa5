"""textsieve's exception family.

``TextsieveError`` subclasses ``ValueError`` so ``except ValueError`` keeps working; the Rust core
raises it (and ``TypeError`` for wrong types) with messages that name the argument and the value:

- ``InvalidArgumentError``: an argument's value; ``.arg`` names the argument;
- ``CorruptDataError``: a saved model, index or vocabulary that cannot be read (from a file:
  ``FileFormatError``, whose message starts with the file's path);
- ``UnknownTokenError``: a token not in the vocabulary (also a ``KeyError``); ``.token``.

Every exception pickles with its attributes.
"""

from textsieve._core import (
    CorruptDataError,
    InvalidArgumentError,
    TextsieveError,
    UnknownTokenError,
)

__all__ = [
    "CorruptDataError",
    "FileFormatError",
    "InvalidArgumentError",
    "TextsieveError",
    "UnknownTokenError",
]


class FileFormatError(CorruptDataError):
    """A saved file (model, vocabulary, index) that cannot be read: truncated, corrupt or of
    another kind. The message starts with the file's path."""
