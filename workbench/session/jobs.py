"""Long work as plain objects: progress, partial results and cancel, with no Qt.

A `Job` wraps one piece of work (decode, classify, attack, detect, verify, sign, report).
The GUI runs it on its thread pool through `workbench.gui.jobs.JobRunner`; the CLI and
tests call `run()` on their own thread. Work reports through `progress()` and
`publish()` and checks `check_cancelled()`; what it returns, and each partial result, is
handed to the job's callbacks on the thread that owns the session (the GUI thread), so
that the session's events never fire from a worker thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..api import Cancelled
from .events import Signal

T = TypeVar("T")

__all__ = ["Cancelled", "Job", "JobFailed"]


class JobFailed(Exception):
    """Work that ended with a message for the user (naming the file and the problem)."""


class Job(Generic[T]):
    """One unit of long work. ``work(job)`` runs on a worker thread; ``on_result`` and
    ``on_partial`` run where the session lives."""

    #: fraction in [0, 1] (negative: unknown), message
    progressed = Signal(float, str)
    #: a partial result (one detector's finding, one image's attack outcome)
    published = Signal(object)

    def __init__(self, title: str, work: Callable[[Job[T]], T], *,
                 on_result: Callable[[T], Any] | None = None,
                 on_partial: Callable[[Any], Any] | None = None,
                 on_error: Callable[[str], Any] | None = None,
                 on_cancelled: Callable[[], Any] | None = None,
                 subject: str | None = None) -> None:
        self.title = title
        self.subject = subject  # the image (path) the job is about, when there is one
        self._work = work
        self.on_result = on_result
        self.on_partial = on_partial
        self.on_error = on_error
        self.on_cancelled = on_cancelled
        self._cancel = threading.Event()
        self._first_progress: tuple[float, float] | None = None  # (time, fraction)

    # --- called by the work ----------------------------------------------------------------
    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress; past a few seconds the message gets an estimate of the time
        left, from the rate since the first report (a 20-step PGD on a mammogram is
        long enough to want one)."""
        fraction = float(fraction)
        self.progressed.emit(fraction, message + self.eta(fraction))

    def eta(self, fraction: float) -> str:
        """" (~N s left)" once the work has run 2 s and the fraction moved, else ""."""
        now = time.monotonic()
        if self._first_progress is None or fraction < self._first_progress[1]:
            self._first_progress = (now, fraction)
            return ""
        t0, f0 = self._first_progress
        elapsed, done = now - t0, fraction - f0
        if fraction <= 0 or fraction >= 1 or done <= 0 or elapsed < 2.0:
            return ""
        left = elapsed / done * (1.0 - fraction)
        return f" (~{left:.0f} s left)" if left < 120 else f" (~{left / 60:.0f} min left)"

    def publish(self, item: Any) -> None:
        self.published.emit(item)

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise Cancelled(f"{self.title}: cancelled")

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # --- called by whoever runs it -----------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    def work(self) -> T:
        """The work alone, on the calling thread (the GUI adapter calls this on a worker)."""
        return self._work(self)

    def run(self) -> T:
        """Work and callbacks on the calling thread: for the CLI, scripts and tests."""
        if self.on_partial is not None:
            self.published.connect(self.on_partial)
        try:
            result = self.work()
        finally:
            if self.on_partial is not None:
                self.published.disconnect(self.on_partial)
        if self.on_result is not None:
            self.on_result(result)
        return result
