"""textsieve: clean a text corpus and understand the numbers behind it.

Rust core (``textsieve._core``) with a pure-Python reference (``textsieve.reference``) for every
kernel. See README.md for a tour.
"""

from textsieve._core import (
    JA_PUNCTUATION,
    SEED_PUNCTUATION,
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
from textsieve.ngram import AddKLM, NgramCounts
from textsieve.vocab import Vocab

__version__ = "0.1.0"

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
    "TextsieveError",
    "UnknownTokenError",
    "Vocab",
    "char_tokenize",
    "dedup",
    "jaccard",
    "normalize",
    "normalize_batch",
    "shingles",
]
