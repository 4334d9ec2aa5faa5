"""Small stdlib-only writers for the workshop's evidence: CSV, Markdown and plain text.

Every file is written atomically (:func:`textsieve.io.atomic_write`: a temporary file in the same
folder, then a rename), so an interrupted run never leaves half a file behind, and only the named file is touched: other files in
an existing evidence folder are left alone. Output is deterministic (no timestamps), so running a
chapter twice gives byte-identical files.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from textsieve.io import atomic_write


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8, ``\\n`` line endings) to ``path`` atomically and return the path."""
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return Path(path)


def cell(value: object) -> str:
    """How one value appears in a CSV cell: floats as Python prints them (``0.9944``, ``5.01``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Render a CSV table (comma separated, ``\\n`` line endings, quoting only where needed)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"CSV row has {len(row)} cells, header has {len(header)}: {row!r}")
        writer.writerow([cell(v) for v in row])
    return buf.getvalue()


def write_csv(
    path: str | os.PathLike[str], header: Sequence[str], rows: Iterable[Sequence[object]]
) -> Path:
    """Write a CSV table atomically."""
    return write_text(path, csv_text(header, rows))


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells are escaped)."""

    def esc(value: object) -> str:
        return cell(value).replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        lines.append("| " + " | ".join(esc(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def code_block(text: str, lang: str = "") -> str:
    """A fenced Markdown code block."""
    return f"```{lang}\n{text.rstrip()}\n```\n"
