"""Character language models: a GRU (NumPy backend always, PyTorch when installed) and the
one-hidden-layer bigram MLP, with training, evaluation, generation and backend-neutral save/load.

>>> from textsieve.lm import GRULanguageModel, MLPBigramLM, load
"""

from textsieve.lm.history import History, HistoryRow
from textsieve.lm.model import (
    CharLanguageModel,
    Evaluation,
    GRULanguageModel,
    MLPBigramLM,
    load,
    read_header,
    resolve_backend,
    torch_available,
)

__all__ = [
    "CharLanguageModel",
    "Evaluation",
    "GRULanguageModel",
    "History",
    "HistoryRow",
    "MLPBigramLM",
    "load",
    "read_header",
    "resolve_backend",
    "torch_available",
]
