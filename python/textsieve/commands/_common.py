"""What the commands that read a corpus and write an output folder share: the input options,
checking the folder against the inputs, and standard input (``-``) copied into it."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence

from textsieve.errors import TextsieveError
from textsieve.io import STDIN, CorpusReader, expand_inputs, stdin_copy


def add_input_options(p: argparse.ArgumentParser) -> None:
    """The ``input`` group: which field holds the text and the id, how files are found and
    read, and what a malformed record does."""
    g = p.add_argument_group("input")
    g.add_argument(
        "--text-field",
        default="text",
        metavar="NAME",
        help="JSONL/Parquet text field (text); a.b: field b of object a",
    )
    g.add_argument(
        "--id-field",
        default="id",
        metavar="NAME",
        help="JSONL/Parquet id field (id); records without it get FILE:LINE",
    )
    g.add_argument("--doc-per-file", action="store_true", help="every input file is one document")
    g.add_argument(
        "--glob", metavar="PATTERN", help="only files whose name matches, in directories ('*.py')"
    )
    g.add_argument(
        "--format",
        choices=("auto", "jsonl", "text", "parquet"),
        default="auto",
        help="input format (auto: by file name; for -: by the first bytes)",
    )
    g.add_argument(
        "--on-error",
        choices=("stop", "skip"),
        default="stop",
        help="malformed record: stop with its file and line (default), or count and skip it",
    )


def reader_factory(
    args: argparse.Namespace,
    inputs: Sequence[str],
    *,
    stdin: str | None,
    doc_per_file: bool,
    glob: str | None,
    on_error: str,
    exclude: Sequence[str] = (),
) -> Callable[[], CorpusReader]:
    """What makes a reader of ``inputs`` with the input options of :func:`add_input_options`
    (an engine calls it again for a second pass)."""

    def make_reader() -> CorpusReader:
        return CorpusReader(
            inputs,
            text_field=args.text_field,
            id_field=args.id_field,
            doc_per_file=doc_per_file,
            on_error=on_error,
            format=args.format,
            glob=glob,
            exclude_dirs=exclude,
            stdin=stdin,
        )

    return make_reader


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
