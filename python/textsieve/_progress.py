"""A small progress bar on stderr, shared by every long-running command.

Silent when stderr is not a terminal or when ``enabled=False`` (``--quiet``). No dependency.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Progress over a known or unknown total, with item and byte rates.

    >>> with Progress(total=3, unit="docs", enabled=False) as bar:
    ...     for _ in range(3):
    ...         bar.update(1, nbytes=10)
    """

    def __init__(
        self,
        total: int | None = None,
        *,
        unit: str = "items",
        desc: str = "",
        enabled: bool | None = None,
        stream: TextIO | None = None,
        min_interval: float = 0.2,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.total = total
        self.unit = unit
        self.desc = desc
        self.count = 0
        self.nbytes = 0
        self.start = time.perf_counter()
        self._last = 0.0
        self.min_interval = min_interval

    def update(self, n: int = 1, *, nbytes: int = 0) -> None:
        self.count += n
        self.nbytes += nbytes
        if self.enabled:
            now = time.perf_counter()
            if now - self._last >= self.min_interval:
                self._last = now
                self._draw(now)

    def _draw(self, now: float, end: str = "\r") -> None:
        elapsed = max(now - self.start, 1e-9)
        rate = self.count / elapsed
        parts = [self.desc] if self.desc else []
        if self.total:
            frac = min(self.count / self.total, 1.0)
            filled = int(frac * 24)
            parts.append(f"[{'#' * filled}{'.' * (24 - filled)}] {frac:6.1%}")
            parts.append(f"{self.count}/{self.total} {self.unit}")
        else:
            parts.append(f"{self.count} {self.unit}")
        parts.append(f"{rate:,.0f} {self.unit}/s")
        if self.nbytes:
            parts.append(f"{self.nbytes / elapsed / 1e6:,.1f} MB/s")
        parts.append(f"{elapsed:,.1f}s")
        self.stream.write("\x1b[2K" + "  ".join(parts) + end)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.perf_counter(), end="\n")
            self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None and self.enabled:
            # Interrupted or failed: erase the bar, so that the error (or ``interrupted``) is the
            # only line left on the terminal.
            self.stream.write("\x1b[2K\r")
            self.stream.flush()
            self.enabled = False
        self.close()
