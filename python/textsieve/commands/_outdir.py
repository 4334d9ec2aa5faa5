"""What the commands that write an output folder share: checking the folder against the inputs,
and standard input (``-``) copied into it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence

from textsieve.errors import TextsieveError
from textsieve.io import STDIN, expand_inputs, stdin_copy


def prepare_outdir(
    outdir: str, inputs: Sequence[str], names: Iterable[str], **expand: object
) -> None:
    """Create ``outdir``, refusing it when it is a file or when one of the output ``names``
    would overwrite one of the ``inputs`` (expanded as the reader expands them; ``-`` aside)."""
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise TextsieveError(f"-o {outdir}: exists and is not a directory")
    found = expand_inputs([p for p in inputs if p != STDIN], **expand)  # type: ignore[arg-type]
    input_paths = {os.path.realpath(f.path) for f in found}
    for name in sorted(set(names)):
        target = os.path.realpath(os.path.join(outdir, name))
        if target in input_paths:
            raise TextsieveError(
                f"{target} is an input file; choose another -o so inputs are never overwritten"
            )
    os.makedirs(outdir, exist_ok=True)


@contextlib.contextmanager
def stdin_in(outdir: str, inputs: Sequence[str]) -> Iterator[str | None]:
    """The copy of standard input in ``outdir`` when ``-`` is among ``inputs`` (removed at the
    end), else None."""
    if STDIN not in inputs:
        yield None
        return
    with stdin_copy(outdir) as path:
        yield path
