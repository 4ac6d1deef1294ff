"""The Evaluate window: the settings form, a run of ``evaluate()`` as a session job with
progress, ETA and cancel, and its results (Table 1 with bootstrap intervals, the detector
x attack matrix, the three plots).

The evaluator does the work and keeps the run folder resumable; this window only collects
an EvalSpec, runs it through the GUI's one job adapter and shows what it returns. Pressing
Start again with the same settings and output folder resumes a cancelled run: the
evaluator skips the units already on disk. Torch is only imported by the evaluator, on
the worker thread, so opening this window stays cheap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, Qt, QUrl
from PySide6.QtGui import QCloseEvent, QDesktopServices
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ...session.jobs import Cancelled, Job, JobFailed
from ..jobs import JobRunner
from .results import EvaluationResults, fmt_duration
from .settings import EvaluationSettings

if TYPE_CHECKING:
    from ...evaluation.runner import EvalSpec


@dataclass(frozen=True)
class UnitsDone:
    """The evaluator's count after a unit (or at the start: those already on disk)."""

    done: int
    total: int
    message: str


def evaluation_job(spec: EvalSpec, **callbacks: Any) -> Job[dict[str, Any]]:
    """``evaluate(spec)`` as a job: each finished unit is published as `UnitsDone`, the
    progress within a unit is the job's progress, and its result is the summary."""

    def work(job: Job) -> dict[str, Any]:
        from ...evaluation.runner import EvaluationCancelled, EvaluationError, evaluate

        try:
            return evaluate(spec, progress=lambda d, t, m: job.publish(UnitsDone(d, t, m)),
                            unit_progress=lambda f, m: job.progress(float(f), str(m)),
                            cancelled=lambda: job.cancelled)
        except EvaluationCancelled as exc:
            raise Cancelled(str(exc)) from None
        except EvaluationError as exc:
            raise JobFailed(str(exc)) from None

    return Job("Evaluation", work, subject=spec.out, **callbacks)


class EvaluateWindow(QWidget):
    """Non-modal top-level window; ``parent`` (the main window) only owns it."""

    def __init__(self, parent: QWidget | None = None, registry: Any = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        from ...engine.plugins import PluginRegistry

        self.setWindowTitle("Evaluate — workbench")
        self.resize(1500, 920)
        self.registry = registry if registry is not None else PluginRegistry()
        # its own runner: closing this window waits on its run only; one run at a time
        self.runner = JobRunner(self)
        self.runner.pool.setMaxThreadCount(1)
        self.job: Job | None = None
        self.summary: dict[str, Any] | None = None
        self.run_dir: Path | None = None
        self.error_box: QMessageBox | None = None
        self._t0 = 0.0
        self._done_at_start = self._done = self._total = 0

        self.settings = EvaluationSettings(self.registry)
        self.results = EvaluationResults()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._settings_scroll())
        splitter.addWidget(self.results)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([470, 1030])
        table1 = QWidget()
        inner = QVBoxLayout(table1)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addWidget(splitter, 1)
        inner.addLayout(self._run_controls())
        inner.addWidget(self.status_label)
        # robustness sweeps (Du-Harpur et al.) beside Table 1: the same window's runner,
        # so one heavy run at a time
        from .sweep_panel import SweepPanel

        self.sweep = SweepPanel(self.runner)
        self.tabs = QTabWidget()
        self.tabs.addTab(table1, "Table 1 (attacks and detectors)")
        self.tabs.addTab(self.sweep, "Robustness sweep")
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        self._set_running(False)
        if parent is not None:
            # a child window gets no close event when the main window closes; without
            # this the pool's destructor would wait for a whole run at exit
            parent.installEventFilter(self)

    def _settings_scroll(self) -> QScrollArea:
        scroll = QScrollArea()
        scroll.setWidget(self.settings)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(440)
        return scroll

    def _run_controls(self) -> QHBoxLayout:
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.setToolTip("Start, or resume a cancelled run in the same folder")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.eta_label = QLabel()
        self.eta_label.setMinimumWidth(260)
        self.open_folder_button = QPushButton("Open run folder")
        self.open_folder_button.setEnabled(False)
        self.open_folder_button.clicked.connect(self._open_run_folder)
        self.status_label = QLabel("Ready.")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        controls = QHBoxLayout()
        controls.addWidget(self.start_button)
        controls.addWidget(self.cancel_button)
        controls.addWidget(self.progress, 1)
        controls.addWidget(self.eta_label)
        controls.addWidget(self.open_folder_button)
        return controls

    def _open_run_folder(self) -> None:
        if self.run_dir is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.run_dir)))

    # --- running -------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.job is not None

    def start(self) -> bool:
        """Start (or resume) the run the settings describe; False if nothing started."""
        if self.job is not None:
            return False
        spec = self.settings.spec()
        problem = self.settings.problem(spec)
        if problem:
            self._fail(problem)
            return False
        self.run_dir = Path(spec.out)
        self.summary = None
        self.results.clear_results()
        self._t0 = time.perf_counter()
        self._done_at_start = self._done = self._total = 0
        self.progress.setValue(0)
        self.progress.setFormat("preparing…")
        self.eta_label.setText("")
        self._set_status("Preparing: reading the dataset and checking the plugins…")
        # every callback names its job: a late report of a run this window gave up
        # waiting for (closed, then started again) must not touch the new run's display
        job = evaluation_job(spec)
        job.on_partial = partial(self._on_units, job)
        job.on_result = partial(self._on_done, job)
        job.on_error = partial(self._on_failed, job)
        job.on_cancelled = partial(self._on_cancelled, job)
        self.job = job
        self._set_running(True)
        self.runner.start(job, on_progress=partial(self._on_unit_progress, job))
        return True

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.cancel_button.setEnabled(False)
            self._set_status("Cancelling after the current step…")

    def _set_running(self, running: bool) -> None:
        # settings are frozen during a run: what is shown is what is being computed
        self.settings.setEnabled(not running)
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #d23c3c;" if error else "")

    def _on_units(self, job: Job, units: UnitsDone) -> None:
        if job is not self.job:
            return
        done, total, message = units.done, units.total, units.message
        if self._total == 0:  # the first report: units already on disk are not timed
            self._done_at_start = done
            self._t0 = time.perf_counter()
        self._done, self._total = done, total
        self._show_progress(0.0)
        if done > self._done_at_start:
            self._set_status(f"Finished unit {message} ({done} of {total}).")
        elif done:
            self._set_status(f"Resuming: {message}.")
        else:
            self._set_status(f"Running {total} units…")

    def _on_unit_progress(self, job: Job, fraction: float, message: str) -> None:
        if job is not self.job or not self._total:
            return
        self._show_progress(min(max(fraction, 0.0), 1.0))
        if message:
            self._set_status(f"Unit {self._done + 1} of {self._total}: {message}")

    def _show_progress(self, fraction: float) -> None:
        total = max(self._total, 1)
        self.progress.setValue(int(1000 * min(self._done + fraction, total) / total))
        self.progress.setFormat(f"{self._done} of {self._total} units")
        elapsed = time.perf_counter() - self._t0
        computed = self._done - self._done_at_start + fraction
        text = f"{fmt_duration(elapsed)} elapsed"
        if computed > 0.05 and self._done < self._total:
            eta = elapsed / computed * (self._total - self._done - fraction)
            text += f" · about {fmt_duration(eta)} left"
        self.eta_label.setText(text)

    def _finish(self) -> None:
        self.job = None
        self._set_running(False)
        self.open_folder_button.setEnabled(self.run_dir is not None and self.run_dir.is_dir())

    def _on_done(self, job: Job, summary: dict[str, Any]) -> None:
        if job is not self.job:
            return
        self._finish()
        self.summary = summary
        self.progress.setValue(1000)
        self.progress.setFormat(f"{self._total} of {self._total} units")
        secs = summary.get("seconds_this_session")
        self.eta_label.setText(f"done in {fmt_duration(secs)}" if secs is not None else "done")
        self.results.show_summary(summary, self.run_dir)
        self._set_status(f"Done: {summary.get('n_images', '?')} images, "
                         f"{len(summary.get('conditions', {}))} conditions. Results in "
                         f"{self.run_dir}")

    def _on_failed(self, job: Job, message: str) -> None:
        if job is not self.job:
            return
        self._finish()
        self.progress.setFormat("failed")
        self._fail(message)

    def _on_cancelled(self, job: Job) -> None:
        if job is not self.job:
            return
        self._finish()
        self.progress.setFormat(f"cancelled at {self._done} of {self._total} units")
        self.eta_label.setText("")
        self._set_status(f"Cancelled: {self._done} of {self._total} units finished and kept "
                         f"in {self.run_dir}. Press Start with the same settings to resume.")

    def _fail(self, message: str) -> None:
        """A red status line and a non-blocking message box: the window stays usable."""
        self._set_status(f"Error: {message}", error=True)
        if self.error_box is not None:
            self.error_box.close()
        box = QMessageBox(QMessageBox.Icon.Warning, "Evaluation", message,
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _=0: setattr(self, "error_box", None))
        self.error_box = box
        box.open()

    # --- closing -------------------------------------------------------------------------
    def shutdown(self, wait_ms: int = 5000) -> bool:
        """Cancel a running evaluation and wait up to ``wait_ms`` for it to stop at its next
        check; True if nothing is left running. Finished units stay on disk."""
        self.runner.shutdown(wait_ms)
        return self.runner.pool.activeThreadCount() == 0

    def closeEvent(self, e: QCloseEvent) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(e)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.parent() and event.type() == QEvent.Type.Close:
            self.shutdown()
        return super().eventFilter(watched, event)
