# Stubs for the Rust extension ``textsieve._core``; checked by ``python -m mypy.stubtest``.
import os
from collections.abc import Iterable
from typing import Any, Literal, final

import numpy as np
import numpy.typing as npt

_Errors = Literal["strict", "replace"]
_Scheme = Literal["native", "datasketch-legacy", "datasketch-affine32"]
_Shingle = Literal["char", "word"]
_Normalize = Literal["default", "none", "nfkc"]
_Verify = Literal["exact", "minhash"]
_Keep = Literal["first", "longest"]
_Cluster = Literal["greedy", "components"]

SEED_PUNCTUATION: str
UNICODE_VERSIONS: dict[str, tuple[int, int, int]]
JA_PUNCTUATION: str

class TextsieveError(ValueError): ...

class InvalidArgumentError(TextsieveError):
    arg: str

class CorruptDataError(TextsieveError): ...

class UnknownTokenError(TextsieveError, KeyError):
    token: str

# --- text: tokenization, vocabulary, n-grams ---

def normalize(
    text: str,
    *,
    lowercase: bool = True,
    punctuation: str = ...,
    nfkc: bool = False,
    errors: _Errors = "strict",
) -> str: ...
def normalize_batch(
    texts: Iterable[str],
    *,
    lowercase: bool = True,
    punctuation: str = ...,
    nfkc: bool = False,
    errors: _Errors = "strict",
    num_threads: int | None = None,
) -> list[str]: ...
def char_tokenize(
    text: str,
    *,
    lowercase: bool = True,
    punctuation: str = ...,
    nfkc: bool = False,
    keep_spaces: bool = False,
    normalize: bool = True,
    errors: _Errors = "strict",
) -> list[str]: ...

@final
class Vocab:
    def __new__(
        cls,
        tokens: list[str],
        unk: str | None = ...,
        *,
        normalize: bool = True,
        lowercase: bool = True,
        punctuation: str = ...,
        nfkc: bool = False,
        keep_spaces: bool = False,
    ) -> Vocab: ...
    @staticmethod
    def from_texts(
        texts: Iterable[str],
        unk: str | None = ...,
        *,
        normalize: bool = True,
        lowercase: bool = True,
        punctuation: str = ...,
        nfkc: bool = False,
        keep_spaces: bool = False,
        errors: _Errors = "strict",
        num_threads: int | None = None,
    ) -> Vocab: ...
    @property
    def tokens(self) -> list[str]: ...
    @property
    def unk(self) -> str | None: ...
    @property
    def unk_id(self) -> int | None: ...
    @property
    def options(self) -> tuple[bool, bool, str, bool, bool]: ...
    def __len__(self) -> int: ...
    def id_of(self, token: str) -> int | None: ...
    def token_of(self, id: int) -> str | None: ...
    def tokenize(self, text: str) -> list[str]: ...
    def encode(self, text: str, *, errors: _Errors = "strict") -> npt.NDArray[np.int32]: ...
    def encode_batch(
        self, texts: Iterable[str], *, errors: _Errors = "strict", num_threads: int | None = None
    ) -> list[npt.NDArray[np.int32]]: ...
    def encode_tokens(self, tokens: list[str]) -> npt.NDArray[np.int32]: ...
    def decode(self, ids: npt.NDArray[np.int64]) -> str: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class NgramModel:
    def __new__(cls, vocab: Vocab, order: int, pad: bool = False) -> NgramModel: ...
    @staticmethod
    def from_texts(
        texts: Iterable[str],
        order: int,
        pad: bool = False,
        unk: str | None = ...,
        *,
        normalize: bool = True,
        lowercase: bool = True,
        punctuation: str = ...,
        nfkc: bool = False,
        keep_spaces: bool = False,
        errors: _Errors = "strict",
        num_threads: int | None = None,
    ) -> NgramModel: ...
    @staticmethod
    def from_entries(
        vocab: Vocab,
        order: int,
        pad: bool,
        ids: npt.NDArray[np.uint32],
        counts: npt.NDArray[np.uint64],
    ) -> NgramModel: ...
    @property
    def vocab(self) -> Vocab: ...
    @property
    def order(self) -> int: ...
    @property
    def pad(self) -> bool: ...
    @property
    def id_space(self) -> int: ...
    @property
    def total(self) -> int: ...
    @property
    def distinct(self) -> int: ...
    def fit(
        self, texts: Iterable[str], *, errors: _Errors = "strict", num_threads: int | None = None
    ) -> None: ...
    def merge(self, other: NgramModel) -> None: ...
    def copy(self) -> NgramModel: ...
    def count(self, gram: list[int]) -> int: ...
    def context_count(self, context: list[int]) -> int: ...
    def entries(self) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.uint64]]: ...
    def dense_bigrams(self, max_cells: int = 16777216) -> npt.NDArray[np.uint64]: ...
    def prob(self, context: list[int], token: int, k: float) -> float: ...
    def score(
        self,
        texts: Iterable[str],
        k: float,
        *,
        errors: _Errors = "strict",
        num_threads: int | None = None,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint64]]: ...
    def corpus_score(
        self,
        texts: Iterable[str],
        k: float,
        *,
        errors: _Errors = "strict",
        num_threads: int | None = None,
    ) -> tuple[float, int]: ...
    def sample(
        self, start: list[int], length: int, k: float, temperature: float, seed: int
    ) -> list[int]: ...

# --- n-gram model family (rust/py/ngram.rs) ---

_Pad = Literal["none", "both", "sentence"]

@final
class TokenCounts:
    def __new__(cls, order: int, vocab_size: int, pad: _Pad) -> TokenCounts: ...
    @property
    def order(self) -> int: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def pad(self) -> str: ...
    def add(
        self,
        ids: npt.NDArray[np.uint32],
        ends: npt.NDArray[np.uint64],
        *,
        num_threads: int | None = None,
    ) -> None: ...
    def merge(self, other: TokenCounts) -> None: ...
    def copy(self) -> TokenCounts: ...
    def total(self, k: int) -> int: ...
    def distinct(self, k: int) -> int: ...
    def count(self, gram: list[int]) -> int: ...
    def entries(self, k: int) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint64]]: ...
    def set_entries(
        self, k: int, ids: npt.NDArray[np.uint32], counts: npt.NDArray[np.uint64]
    ) -> None: ...
    def first_seen(self) -> npt.NDArray[np.uint32]: ...
    def set_first_seen(self, ids: npt.NDArray[np.uint32]) -> None: ...

@final
class SmoothedModel:
    @staticmethod
    def estimate(
        counts: TokenCounts,
        smoothing: str,
        param: float = ...,
        *,
        num_threads: int | None = None,
    ) -> SmoothedModel: ...
    @staticmethod
    def read_arpa(path: str | os.PathLike[str]) -> tuple[SmoothedModel, list[str], int]: ...
    @staticmethod
    def read_arpa_bytes(data: bytes, source: str) -> tuple[SmoothedModel, list[str], int]: ...
    def write_arpa(self, fh: Any, words: list[str], unk: int | None = None) -> None: ...
    def arpa_bytes(self, words: list[str], unk: int | None = None) -> bytes: ...
    @property
    def order(self) -> int: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def pad(self) -> str: ...
    @property
    def is_backoff(self) -> bool: ...
    @property
    def discounts(self) -> list[tuple[float, float, float]]: ...
    @property
    def fallback(self) -> list[bool]: ...
    def log_prob(self, context: list[int], token: int) -> float: ...
    def score(
        self,
        ids: npt.NDArray[np.uint32],
        ends: npt.NDArray[np.uint64],
        *,
        num_threads: int | None = None,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint64]]: ...
    def token_log_probs(self, ids: npt.NDArray[np.uint32]) -> npt.NDArray[np.float64]: ...
    def sample(
        self,
        start: list[int],
        length: int,
        temperature: float,
        seed: int,
        exclude: int | None = None,
    ) -> list[int]: ...

@final
class WordIndex:
    def __new__(cls, words: list[str], unk: int | None = None) -> WordIndex: ...
    @staticmethod
    def distinct(docs: Iterable[str | Iterable[str]]) -> list[str]: ...
    def encode_texts(
        self, texts: Iterable[str], *, num_threads: int | None = None
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint64]]: ...
    def encode_documents(
        self, docs: list[Any], arg: str = "documents", *, num_threads: int | None = None
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint64]]: ...
    def encode_tokens(self, tokens: list[str]) -> npt.NDArray[np.uint32]: ...

# --- dedup ---

@final
class MinHasherCore:
    def __new__(
        cls,
        num_perm: int,
        seed: int,
        scheme: _Scheme,
        shingle: _Shingle,
        k: int,
        normalize: _Normalize,
    ) -> MinHasherCore: ...
    def signatures(
        self, texts: Iterable[str], num_threads: int | None = None, errors: _Errors = "strict"
    ) -> npt.NDArray[np.uint32] | npt.NDArray[np.uint64]: ...
    def signatures_from_hashes(
        self,
        hashes: npt.NDArray[np.uint64],
        offsets: npt.NDArray[np.int64],
        num_threads: int | None = None,
    ) -> npt.NDArray[np.uint32]: ...
    def permutations(self) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]: ...
    @property
    def num_perm(self) -> int: ...

@final
class DedupConfig:
    def __new__(
        cls,
        threshold: float,
        num_perm: int,
        seed: int,
        scheme: _Scheme,
        shingle: _Shingle,
        k: int,
        normalize: _Normalize,
        bands: int | None,
        rows: int | None,
        verify: _Verify,
        keep: _Keep,
        cluster: _Cluster,
    ) -> DedupConfig: ...
    @property
    def bands(self) -> int: ...
    @property
    def rows(self) -> int: ...

@final
class DedupRun:
    def __new__(
        cls,
        config: DedupConfig,
        all_pairs: bool = False,
        spill_dir: str | os.PathLike[str] | None = None,
        samples: int = 0,
    ) -> DedupRun: ...
    def feed(
        self, texts: list[str], num_threads: int | None = None, errors: _Errors = "strict"
    ) -> tuple[int, int, dict[str, npt.NDArray[Any]] | None]: ...
    def flush(self, num_threads: int | None = None) -> dict[str, npt.NDArray[Any]]: ...
    def feed_chunk(
        self, chunk: ChunkCore, num_threads: int | None = None
    ) -> tuple[int, int, dict[str, npt.NDArray[Any]] | None]: ...
    def step(self, num_threads: int | None = None) -> tuple[int, int]: ...
    @property
    def streaming(self) -> bool: ...
    def text(self, doc: int) -> str | None: ...
    def finish(self, num_threads: int | None = None) -> dict[str, object]: ...

@final
class IndexCore:
    def __new__(cls, config: DedupConfig) -> IndexCore: ...
    def add(
        self, texts: Iterable[str], num_threads: int | None = None, errors: _Errors = "strict"
    ) -> dict[str, object]: ...
    def query(self, text: str, errors: _Errors = "strict") -> list[tuple[int, float]]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> IndexCore: ...
    def __len__(self) -> int: ...
    def settings(self) -> dict[str, object]: ...
    def kept(self) -> npt.NDArray[np.bool_]: ...

def shingle_strings(
    text: str, k: int, shingle: _Shingle, normalize: _Normalize, errors: _Errors = "strict"
) -> list[str]: ...
def shingle_hashes(
    text: str, k: int, shingle: _Shingle, normalize: _Normalize, errors: _Errors = "strict"
) -> npt.NDArray[np.uint64]: ...
def jaccard_texts(
    a: str, b: str, k: int, shingle: _Shingle, normalize: _Normalize, errors: _Errors = "strict"
) -> float: ...
def hash64(data: bytes) -> int: ...
def greedy_pairs(
    i: npt.NDArray[np.uint64],
    j: npt.NDArray[np.uint64],
    jaccard: npt.NDArray[np.float64],
    nodes: npt.NDArray[np.uint64],
    rank: npt.NDArray[np.uint64],
    threshold: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]: ...
def optimal_params(
    threshold: float,
    num_perm: int,
    false_positive_weight: float = 0.5,
    false_negative_weight: float = 0.5,
) -> tuple[int, int]: ...
def recall_params(threshold: float, num_perm: int, min_recall: float = ...) -> tuple[int, int]: ...
def band_keys(sigs: npt.NDArray[np.uint32], bands: int, rows: int) -> npt.NDArray[np.uint64]: ...
def jaccard_pairs(
    texts: Iterable[str],
    i: npt.NDArray[np.uint32],
    j: npt.NDArray[np.uint32],
    k: int,
    shingle: _Shingle,
    normalize: _Normalize,
    num_threads: int | None = None,
    errors: _Errors = "strict",
) -> npt.NDArray[np.float64]: ...
def connected_components(
    i: npt.NDArray[np.uint64], j: npt.NDArray[np.uint64]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]: ...

@final
class ChunkReader:
    def __new__(
        cls,
        inputs: list[tuple[bytes, bytes, str, str | None]],
        text_field: str,
        id_field: str | None,
        chunk_docs: int,
        chunk_bytes: int,
        max_record: int,
        depth: int = 2,
    ) -> ChunkReader: ...
    def __iter__(self) -> ChunkReader: ...
    def __next__(self) -> ChunkCore: ...
    def close(self) -> None: ...

@final
class ChunkCore:
    @staticmethod
    def from_records(
        file: int,
        label: bytes,
        lines: list[int],
        ids: list[bytes],
        texts: list[str],
        raws: list[bytes],
    ) -> ChunkCore: ...
    @property
    def file(self) -> int: ...
    @property
    def n_bytes(self) -> int: ...
    @property
    def n_blank(self) -> int: ...
    @property
    def last(self) -> bool: ...
    def __len__(self) -> int: ...
    def deferred(self) -> list[tuple[int, int, bytes, str | None]]: ...
    def resolve(self, i: int, text: str, id: bytes) -> None: ...
    def seal(self) -> None: ...

@final
class IdsCore:
    def __new__(cls) -> IdsCore: ...
    def push_chunk(self, chunk: ChunkCore) -> None: ...
    def extend(self, ids: list[bytes]) -> None: ...
    def __len__(self) -> int: ...
    def __getitem__(self, key: int, /) -> str: ...
    def nbytes(self) -> int: ...

def render_chunk(
    chunk: ChunkCore,
    first: int,
    duplicate_of: npt.NDArray[np.int64],
    similarity: npt.NDArray[np.float64],
    ids: IdsCore,
    pair_rows: bool,
    annotate: bool = False,
) -> tuple[bytes, bytes, bytes, int]: ...
def render_pairs(
    ids: IdsCore,
    i: npt.NDArray[np.uint64],
    j: npt.NDArray[np.uint64],
    jaccard: npt.NDArray[np.float64],
) -> bytes: ...
def quote_json(s: bytes) -> str: ...
def annotate_record(
    record: bytes, cluster: int, duplicate_of: bytes | None, jaccard: float
) -> bytes: ...
