"""What native decoders write to file descriptor 2, caught so it reaches the reviewer as
a load note on the file it concerns instead of a stray line on the terminal.

libjpeg's "Corrupt JPEG data" warnings, OpenJPEG's messages and a Rust decoder's panic
report (``thread '<unnamed>' panicked at …`` and, with RUST_BACKTRACE set, fifty lines of
backtrace) bypass Python entirely: ``sys.stderr`` and ``warnings`` never see them. The
descriptor is pointed at a temporary file for the call. It belongs to the whole process,
so calls are serialised under a lock; decoding is not done on parallel threads here
(the Ray engine uses processes), so the lock costs no parallelism.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()


@contextmanager
def captured_native_stderr() -> Iterator[list[str]]:
    """Run the block with fd 2 captured; the list it yields is filled, on exit, with the
    non-empty lines written meanwhile (a panic's backtrace left out: the exception the
    panic raises already says what went wrong)."""
    lines: list[str] = []
    with _LOCK, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(_meaningful(sink.read().decode("utf-8", "replace")))


def _meaningful(text: str) -> list[str]:
    kept: list[str] = []
    in_backtrace = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("stack backtrace:"):
            in_backtrace = True
            continue
        if in_backtrace and (line[0].isdigit() or line.startswith("at ")):
            continue
        in_backtrace = False
        if line.startswith("note: ") and "backtrace" in line:
            continue
        kept.append(line)
    return kept
