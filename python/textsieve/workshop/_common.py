"""What every chapter shares: the result type, the error type, value checks and the printer."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from textsieve import _checks
from textsieve.errors import TextsieveError


class WorkshopError(TextsieveError):
    """A workshop parameter with a value the exercise cannot use (a ``ValueError``)."""


@dataclass
class ChapterResult:
    """What a chapter did: its folder, the files it wrote (in print order), its key numbers, and
    the exact text it printed (``text``)."""

    chapter: str
    output_dir: Path
    files: list[Path]
    summary: dict[str, Any]
    text: str
    params: dict[str, Any] = field(default_factory=dict)


class Report:
    """Collects the STEP lines a chapter prints: steps separated by one blank line."""

    def __init__(self) -> None:
        self.blocks: list[list[str]] = []

    def step(self, number: int, title: str) -> None:
        self.blocks.append([f"STEP {number}: {title}"])

    def line(self, text: str) -> None:
        self.blocks[-1].append(text)

    def text(self) -> str:
        return "\n\n".join("\n".join(block) for block in self.blocks) + "\n"


def emit(text: str, quiet: bool, stream: TextIO | None) -> None:
    if not quiet:
        out = stream if stream is not None else sys.stdout
        out.write(text)
        out.flush()


# The package's checks (textsieve._checks), raising WorkshopError for a value out of range.


def check_finite(name: str, value: float) -> float:
    return _checks.check_float(name, value, error=WorkshopError)


def check_positive(name: str, value: float) -> float:
    return _checks.check_float(name, value, above=0.0, error=WorkshopError)


def check_probability(name: str, value: float) -> float:
    return _checks.check_probability(name, value, error=WorkshopError)


def check_count(name: str, value: int, minimum: int = 1, maximum: int = 1_000_000) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 12.0 from a computation is 12 steps
    return _checks.check_int(name, value, minimum, maximum, error=WorkshopError)


def parse_numbers(name: str, value: str | Sequence[float], count: int | None = None) -> list[float]:
    """``"1.0,0.7,0.2"`` (or a sequence) -> finite floats, optionally exactly ``count`` of them."""
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
        try:
            numbers = [float(part) for part in items]
        except ValueError:
            raise WorkshopError(
                f"{name} must be comma-separated numbers such as 1.0,0.7,0.2, got {value!r}"
            ) from None
    else:
        numbers = [float(v) for v in value]
    if count is not None and len(numbers) != count:
        raise WorkshopError(
            f"{name} needs exactly {count} comma-separated numbers, got {len(numbers)}: {value!r}"
        )
    if not numbers:
        raise WorkshopError(f"{name} needs at least one number")
    for number in numbers:
        if not math.isfinite(number):
            raise WorkshopError(f"{name} must hold finite numbers, got {value!r}")
    return numbers


def safe_exp(x: float) -> float:
    """exp(x), or inf where the result is too large for a float (instead of OverflowError)."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def plain(value: float) -> float | int:
    """2.0 -> 2, 0.65 -> 0.65: a number as a person would type it in a command."""
    value = float(value)
    return int(value) if value.is_integer() and abs(value) < 1e15 else value


def rerun_flags(params: dict[str, Any]) -> str:
    """The command-line flags that reproduce ``params`` (``--learning-rate 0.2 --steps 12``)."""
    parts = []
    for key, value in params.items():
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        parts.append(f"--{key.replace('_', '-')} {value}")
    return " ".join(parts)
