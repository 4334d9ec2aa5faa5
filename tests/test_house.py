"""One of each small helper: atomic writes in textsieve.io, argument checks in textsieve._checks."""

from __future__ import annotations

import re
from pathlib import Path

import textsieve

ROOT = Path(textsieve.__path__[0])


def _sources_matching(pattern: str) -> set[str]:
    rx = re.compile(pattern, re.M)
    return {
        p.relative_to(ROOT).as_posix()
        for p in ROOT.rglob("*.py")
        if rx.search(p.read_text(encoding="utf-8"))
    }


def test_one_atomic_write() -> None:
    # pipeline.py renames its several outputs together at the end of a run (its own commit step)
    assert _sources_matching(r"os\.replace\(") <= {"io.py", "pipeline.py"}


def test_one_set_of_argument_checks() -> None:
    assert _sources_matching(r"^def _?check_(int|float|seed|threshold)\(") == {"_checks.py"}
