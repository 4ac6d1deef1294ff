"""A terminal progress bar with ETA on stderr (headless commands; no dependency)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None, width: int = 28) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.start = time.monotonic()
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0

    def update(self, done: int, total: int, item: str = "") -> None:
        now = time.monotonic()
        final = done >= total
        # Redraw at most 10 times a second on a terminal; in logs, one line per 10 %.
        if self.interactive and not final and now - self._last < 0.1:
            return
        if not self.interactive and not final and (done * 10 // max(total, 1)) == (
                (done - 1) * 10 // max(total, 1)):
            return
        self._last = now
        frac = done / total if total else 1.0
        elapsed = now - self.start
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        bar = "#" * int(frac * self.width)
        line = (f"{self.label} [{bar:<{self.width}}] {done}/{total} "
                f"{frac * 100:3.0f}% ETA {eta:4.0f}s {item[:40]}")
        if self.interactive:
            self.stream.write("\r" + line.ljust(110))
            if final:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
