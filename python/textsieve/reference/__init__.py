"""Pure-Python reference implementations (stdlib only) of every Rust kernel.

They are the specification: the tests assert that the Rust core gives the same results, and the
benchmarks time both. Written for clarity, in the style of the teaching notebook.
"""

from textsieve.reference import (
    dedup,  # noqa: F401
    suffix,  # noqa: F401
)
from textsieve.reference.text import (
    SEED_PUNCTUATION,
    addk_prob,
    build_vocab,
    char_tokenize,
    count_ngrams,
    document_perplexities,
    encode,
    normalize,
    perplexity,
    score_documents,
    train_addk,
)

__all__ = [
    "SEED_PUNCTUATION",
    "addk_prob",
    "build_vocab",
    "char_tokenize",
    "count_ngrams",
    "document_perplexities",
    "encode",
    "normalize",
    "perplexity",
    "score_documents",
    "train_addk",
]
