"""The one adapter between session jobs and Qt: a `Job` runs on this runner's thread
pool in the one generic worker below, and its progress, partial results, result and error
come back to the GUI thread as queued signals, so that sessions change, and views redraw,
only on the GUI thread. Closing the owner cancels and waits for only its own jobs.

Why not superqt's FunctionWorker: it patches `warnings.showwarning` process-wide from
every worker thread, imports all of superqt's widgets (a quarter of a second before the
first paint), and superqt widgets were seen to corrupt reference counts under PySide6
6.12 on this Python; twenty lines of our own avoid all three."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from ..session.jobs import Cancelled, Job, JobFailed

#: a job's progress reaches its panel at most this often (plus the latest, at the end of
#: each interval): a plugin reporting every iteration of a fast loop queued thousands of
#: bar repaints and text elisions, and the window fell behind them
PROGRESS_MS = 50


class _Relay(QObject):
    """Lives in the GUI thread; emitting from a worker queues the call to it."""

    progressed = Signal(float, str)
    published = Signal(object)

    def __init__(self, parent: QObject, on_progress: Callable[[float, str], Any] | None
                 ) -> None:
        super().__init__(parent)
        self.on_progress = on_progress
        self._latest: tuple[float, str] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PROGRESS_MS)
        self._timer.timeout.connect(self._deliver)
        if on_progress is not None:
            self.progressed.connect(self._coalesce)

    def _coalesce(self, fraction: float, message: str) -> None:
        """The first report at once; later ones at most every PROGRESS_MS, the latest."""
        self._latest = (fraction, message)
        if not self._timer.isActive():
            self._deliver()

    def _deliver(self) -> None:
        if self._latest is not None and self.on_progress is not None:
            fraction, message = self._latest
            self._latest = None
            self._timer.start()  # the next one waits its turn
            self.on_progress(fraction, message)

    def stop(self) -> None:
        """The job is over: a report still waiting would only redraw a finished bar."""
        self._timer.stop()
        self._latest = None
        self.on_progress = None


class _Outcome(QObject):
    returned = Signal(object)
    errored = Signal(object)
    finished = Signal()


class _Worker(QRunnable):
    """Runs ``job.work()`` on a pool thread and reports how it ended."""

    def __init__(self, job: Job, outcome: _Outcome) -> None:
        super().__init__()
        self.job, self.outcome = job, outcome
        self.setAutoDelete(False)  # the runner keeps it until it has reported

    def run(self) -> None:
        try:
            result = self.job.work()
        except BaseException as exc:  # reported, never lost with the thread
            self.outcome.errored.emit(exc)
        else:
            self.outcome.returned.emit(result)
        self.outcome.finished.emit()


class JobRunner(QObject):
    """Runs jobs for one window. ``on_error(job, message)`` is told of failures that the
    job has no ``on_error`` for, and of callbacks that raised."""

    started = Signal(object)  # Job
    finished = Signal(object)  # Job, after its result, error or cancel was handled

    def __init__(self, parent: QObject | None = None,
                 on_error: Callable[[Job, str], Any] | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.on_error = on_error
        self._running: dict[Job, tuple[_Worker, _Relay]] = {}

    def start(self, job: Job, *, priority: int = 0,
              on_progress: Callable[[float, str], Any] | None = None) -> Job:
        relay = _Relay(self, on_progress)
        if job.on_partial is not None:
            # a job cancelled but still running (a plugin that ignores cancel) must not
            # land results after the user moved on
            relay.published.connect(lambda item: None if job.cancelled
                                    else self._call(job, job.on_partial, item))
        job.progressed.connect(relay.progressed.emit)
        job.published.connect(relay.published.emit)
        outcome = _Outcome(relay)
        outcome.returned.connect(lambda result: self._returned(job, result))
        outcome.errored.connect(lambda exc: self._errored(job, exc))
        outcome.finished.connect(lambda: self._finished(job))
        worker = _Worker(job, outcome)
        self._running[job] = (worker, relay)
        self.started.emit(job)
        self.pool.start(worker, priority)
        return job

    def jobs(self) -> list[Job]:
        return list(self._running)

    def busy(self, subject: str | None = None) -> bool:
        return any(subject is None or j.subject == subject for j in self._running)

    def cancel_all(self) -> None:
        for job in self._running:
            job.cancel()

    def shutdown(self, msecs: int = 5000) -> list[str]:
        """Cancel what runs, drop what is queued, and wait a bounded time; returns the
        titles of jobs still running after it (work that ignores cancel)."""
        self.cancel_all()
        self.pool.clear()
        self.pool.waitForDone(msecs)
        return [j.title for j in self._running] if self.pool.activeThreadCount() else []

    # --- back on the GUI thread -------------------------------------------------------------
    def _returned(self, job: Job, result: Any) -> None:
        if job.cancelled:
            self._cancelled(job)
        elif job.on_result is not None:
            self._call(job, job.on_result, result)

    def _call(self, job: Job, callback: Any, *args: Any) -> None:
        """A callback that raises is reported (a dialog naming the job), never left to
        abort the event loop's handling of the others."""
        try:
            callback(*args)
        except Exception as exc:
            import traceback

            traceback.print_exc()
            if self.on_error is not None:
                self.on_error(job, f"{job.title}: could not show the result "
                                   f"({type(exc).__name__}: {exc})")

    def _errored(self, job: Job, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            self._cancelled(job)
            return
        message = str(exc) if isinstance(exc, JobFailed) else (
            f"{job.title}: unexpected error: {type(exc).__name__}: {exc}")
        if job.on_error is not None:
            self._call(job, job.on_error, message)
        elif self.on_error is not None:  # nobody else will tell the user
            self.on_error(job, message)

    def _cancelled(self, job: Job) -> None:
        if job.on_cancelled is not None:
            self._call(job, job.on_cancelled)

    def _finished(self, job: Job) -> None:
        worker, relay = self._running.pop(job, (None, None))
        try:
            job.progressed.disconnect(relay.progressed.emit)
            job.published.disconnect(relay.published.emit)
        except (ValueError, AttributeError):
            pass
        if relay is not None:
            relay.stop()
            relay.deleteLater()
        self.finished.emit(job)
