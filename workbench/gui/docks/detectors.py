"""The detectors dock: run every detector on the current image off the GUI thread, and a
table of score / threshold / verdict / explanation of the findings of the current image
session only, under a header naming that image. Clicking a row asks for its evidence map."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..binding import rebind

VERDICT_COLOURS = {"clean": "#2e9d4a", "suspicious": "#c98a0a", "tampered": "#d23c3c",
                   "inconclusive": "#8a8f98", "uncalibrated": "#8a8f98"}


def fast_first(infos: list[Any], seconds: dict[str, float]) -> list[Any]:
    """Detectors in the order that gives the first verdicts soonest: by their last measured
    time; before any is measured, those that need no model call first."""
    return sorted(infos, key=lambda i: (seconds.get(i.name, 1.0 if "model" in i.needs
                                                    else 0.0), i.name))


class DetectorsPanel(QWidget):
    evidenceRequested = Signal(object, str)  # ImageSession, detector name

    def __init__(self, study: Any, runner: Any, registry: Any,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.study, self.runner, self.registry = study, runner, registry
        self.session: Any = None
        self.job: Any = None  # the detectors' run in progress (one at a time)
        self.header = QLabel("No image open.")
        self.header.setStyleSheet("font-weight: bold;")
        self.header.setWordWrap(True)
        self.run_button = QPushButton("Run detectors on current image")
        self.cancel_button = QPushButton("Cancel")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.table = QTreeWidget()
        self.table.setHeaderLabels(["Detector", "Score", "Threshold", "Verdict", "Time",
                                    "Explanation"])
        self.table.setRootIsDecorated(False)
        self.table.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.run_button, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.table, 1)
        self.outcomes: dict[str, Any] = {}
        self.seconds: dict[str, float] = {}  # each detector's last time: fast ones run first
        self.set_running(False)
        self.run_button.clicked.connect(lambda: self.run_on(self.study.current))
        self.cancel_button.clicked.connect(lambda: self.job.cancel() if self.job else None)
        self.table.itemClicked.connect(self._on_row)

    # --- running ----------------------------------------------------------------------------
    def run_on(self, session: Any) -> bool:
        """Run every detector that loaded on ``session``'s image; its findings replace the
        ones it had."""
        from ...session import actions

        if session is None or session.image is None or self.job is not None:
            return False
        infos = fast_first([p for p in self.registry.plugins if p.kind == "detector" and p.ok],
                           self.seconds)
        job = actions.detect(session, infos, self.study.model, self.study.model_name)
        done = job.on_result
        # the panel's own state first: a failing view must not leave it "running"
        job.on_result = lambda r: (self._finished(), done(r))
        job.on_cancelled = lambda: (self._finished(), session.finish_findings())
        job.on_error = lambda _m: self._finished()
        self.job = job
        self.set_running(True)
        self.runner.start(job, priority=1, on_progress=self._on_progress)
        return True

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(f"{message} — {self.job.title}" if self.job else message)

    def _finished(self) -> None:
        self.job = None
        self.set_running(False)

    def _on_row(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        name = item.data(0, Qt.ItemDataRole.UserRole)
        if self.session is not None and name in self.outcomes:
            self.evidenceRequested.emit(self.session, name)

    # --- showing ----------------------------------------------------------------------------
    def show_session(self, session: Any) -> None:
        """Bind to ``session`` (or None): the table shows its findings and nothing else."""
        self.session = rebind(self.session, session, self._on_changed)
        self._refresh()

    def _on_changed(self, aspect: str) -> None:
        if aspect in ("findings", "image"):
            self._refresh()

    def _refresh(self) -> None:
        self.clear()
        s = self.session
        if s is None:
            self.header.setText("No image open.")
            return
        f = s.findings
        if f is None:
            self.header.setText(f"Detectors — {s.name}: not run yet")
            return
        state = "complete" if f.complete else (
            "running… (each row judged by its own threshold until all have run)")
        model = f" with {f.model_name}" if f.model_name else " (no model loaded)"
        frames = s.image.n_frames if s.image is not None else 1
        where = f", frame 1 of {frames}" if frames > 1 else ""  # all they examine
        self.header.setText(f"Detectors — {s.name}{where}{model}: {state}")
        for out in f.judged():  # by the thresholds the banner's verdict uses
            self.add_outcome(out)
        for name, message in f.failures.items():
            self.add_failure(name, message)

    def set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)

    def clear(self) -> None:
        self.table.clear()
        self.outcomes.clear()

    def add_outcome(self, out: Any) -> None:
        score = "-" if out.score is None else f"{out.score:.4g}"
        threshold = "-" if out.threshold is None else f"{out.threshold:.4g}"
        self.seconds[out.name] = out.seconds
        item = QTreeWidgetItem(self.table, [out.name, score, threshold, out.verdict,
                                            f"{out.seconds:.2f} s", out.explanation])
        item.setForeground(3, QBrush(QColor(VERDICT_COLOURS.get(out.verdict, "#8a8f98"))))
        # the explanation column is often off the dock's right edge: the whole row says it
        for c in range(6):
            item.setToolTip(c, out.explanation)
        item.setData(0, Qt.ItemDataRole.UserRole, out.name)
        if out.evidence is not None:
            item.setText(0, out.name + "  ▣")  # has a map: click to see it
        self.outcomes[out.name] = out
        for c in range(5):
            self.table.resizeColumnToContents(c)

    def add_failure(self, name: str, message: str) -> None:
        item = QTreeWidgetItem(self.table, [name, "-", "-", "failed", "",
                                            message.splitlines()[0]])
        item.setForeground(3, QBrush(QColor("#d23c3c")))

    def rows(self) -> list[tuple[str, ...]]:
        return [tuple(self.table.topLevelItem(i).text(c) for c in range(6))
                for i in range(self.table.topLevelItemCount())]
