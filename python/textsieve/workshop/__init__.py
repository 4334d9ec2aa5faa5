"""The math workshop: the math under language models, run rather than read (stdlib only).

Each chapter computes its exercises, prints a short STEP summary and writes an evidence folder of
CSV tables, SVG charts and Markdown notes:

- ``ch04``: vectors, probability, entropy and loss, gradient descent (``run_chapter4``)
- ``likelihood``: a loaded die, likelihood and cross-entropy (``run_likelihood``)
- ``gradients``: derivatives, the chain rule, regression and the learning rate (``run_gradients``)
- ``pretraining``: next-token loss, n-gram perplexity, compute and cost (``run_pretraining``)

From the command line: ``textsieve workshop [--chapter NAME] [-o DIR] ...`` or
``python -m textsieve.workshop ...``.

>>> import tempfile
>>> from textsieve.workshop import run_workshop
>>> result = run_workshop("ch04", tempfile.mkdtemp(), quiet=True)
>>> result.summary["best_match"], result.summary["final_x"]
('vector_similarity', 1.404571)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TextIO

from textsieve.workshop._common import ChapterResult, WorkshopError
from textsieve.workshop.chapter4 import run_chapter4
from textsieve.workshop.gradients import run_gradients
from textsieve.workshop.likelihood import run_likelihood
from textsieve.workshop.pretraining import run_pretraining

CHAPTERS: dict[str, Callable[..., ChapterResult]] = {
    "ch04": run_chapter4,
    "likelihood": run_likelihood,
    "gradients": run_gradients,
    "pretraining": run_pretraining,
}
DEFAULT_DIRS = {
    "ch04": "ch04_math_workshop_evidence",
    "likelihood": "likelihood_workshop_evidence",
    "gradients": "gradients_workshop_evidence",
    "pretraining": "pretraining_workshop_evidence",
}


def run_workshop(
    chapter: str = "ch04",
    output_dir: str | os.PathLike[str] | None = None,
    *,
    quiet: bool = False,
    stream: TextIO | None = None,
    **params: Any,
) -> ChapterResult:
    """Run one chapter: write its evidence into ``output_dir`` (default: the chapter's folder in
    the current directory), print its STEP summary unless ``quiet``, and return the result.
    ``params`` are the chapter's exercise parameters (see each ``run_*`` function)."""
    try:
        runner = CHAPTERS[chapter]
    except KeyError:
        raise WorkshopError(
            f"chapter must be one of {', '.join(CHAPTERS)}, got {chapter!r}"
        ) from None
    return runner(output_dir, quiet=quiet, stream=stream, **params)


__all__ = [
    "CHAPTERS",
    "DEFAULT_DIRS",
    "ChapterResult",
    "WorkshopError",
    "run_chapter4",
    "run_gradients",
    "run_likelihood",
    "run_pretraining",
    "run_workshop",
]
