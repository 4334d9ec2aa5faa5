"""textsieve: clean a text corpus and understand the numbers behind it.

Rust core (``textsieve._core``) with a pure-Python reference (``textsieve.reference``) for every
kernel. See README.md for a tour.
"""

from textsieve._core import (
    JA_PUNCTUATION,
    SEED_PUNCTUATION,
    UNICODE_VERSIONS,
    char_tokenize,
    normalize,
    normalize_batch,
)
from textsieve.dedup import (
    DedupIndex,
    DedupResult,
    DedupSettings,
    MinHasher,
    dedup,
    jaccard,
    shingles,
)
from textsieve.errors import (
    CorruptDataError,
    FileFormatError,
    InvalidArgumentError,
    TextsieveError,
    UnknownTokenError,
)
from textsieve.index import PersistentDedupIndex
from textsieve.ngram import AddKLM, NgramCounts
from textsieve.ngram_lm import NgramLM
from textsieve.suffix import SuffixIndex, repeated_spans
from textsieve.vocab import Vocab

__version__ = "0.1.0"

#: The Unicode version of the tables textsieve follows for case mapping and whitespace (the
#: Rust standard library's of the build), as a string like ``"17.0.0"``; NFKC may follow a
#: newer one (``UNICODE_VERSIONS["nfkc"]``). Python's own ``unicodedata`` is usually older: on a
#: code point it does not know, textsieve and ``str.lower()`` can differ.
UNICODE_VERSION = ".".join(map(str, UNICODE_VERSIONS["case"]))

__all__ = [
    "JA_PUNCTUATION",
    "SEED_PUNCTUATION",
    "AddKLM",
    "CorruptDataError",
    "DedupIndex",
    "DedupResult",
    "DedupSettings",
    "FileFormatError",
    "InvalidArgumentError",
    "MinHasher",
    "NgramCounts",
    "NgramLM",
    "PersistentDedupIndex",
    "SuffixIndex",
    "TextsieveError",
    "UNICODE_VERSION",
    "UNICODE_VERSIONS",
    "UnknownTokenError",
    "Vocab",
    "char_tokenize",
    "dedup",
    "jaccard",
    "normalize",
    "normalize_batch",
    "repeated_spans",
    "shingles",
]
