"""textsieve's exception family.

``TextsieveError`` subclasses ``ValueError`` so ``except ValueError`` keeps working; the Rust core
raises it (and ``TypeError`` for wrong types) with messages that name the argument and the value.
"""

from textsieve._core import TextsieveError

__all__ = ["FileFormatError", "TextsieveError"]


class FileFormatError(TextsieveError):
    """A saved file (model, vocabulary, index) that cannot be read: truncated, corrupt or of
    another kind. The message starts with the file's path."""
