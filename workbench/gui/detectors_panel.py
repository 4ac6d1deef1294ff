"""The detectors dock: run every applicable detector on the current image off the GUI
thread, a table of score / threshold / verdict / explanation, and a row's evidence map
over the image when the row is clicked."""

from __future__ import annotations

import threading
import traceback
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

VERDICT_COLOURS = {"clean": "#2e9d4a", "suspicious": "#c98a0a", "tampered": "#d23c3c",
                   "inconclusive": "#8a8f98", "uncalibrated": "#8a8f98"}


class DetectSignals(QObject):
    outcome = Signal(str, object)  # path, DetectorOutcome
    failed = Signal(str, str, str)  # path, detector, message
    progress = Signal(float, str)
    done = Signal(str)


class DetectTask(QRunnable):
    def __init__(self, path: str, image: Any, infos: list, model: Any, model_name: str) -> None:
        super().__init__()
        self.path, self.image, self.infos = path, image, infos
        self.model, self.model_name = model, model_name
        self.signals = DetectSignals()
        self._cancel = threading.Event()
        self.setAutoDelete(False)

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        from .. import api
        from ..engine.calibration import load_calibration
        from ..engine.detector_runner import DetectorCancelled, DetectorFailed, run_detector

        n = len(self.infos)
        for i, info in enumerate(self.infos):
            if self._cancel.is_set():
                break
            self.signals.progress.emit(i / n, f"{info.name}…")
            try:
                det = info.create()
                params = api.make_params(det.Params, {})
                threshold = None
                cal = load_calibration(info.name) if info.calibratable else None
                if cal is not None and cal.applies_to(det, params, self.model_name)[0]:
                    threshold = cal.threshold
                out = run_detector(det, self.image, params, model=self.model,
                                   threshold=threshold, cancelled=self._cancel.is_set)
                self.signals.outcome.emit(self.path, out)
            except DetectorCancelled:
                break
            except DetectorFailed as exc:
                self.signals.failed.emit(self.path, info.name, str(exc).splitlines()[0])
            except Exception as exc:  # one bad detector never stops the others
                self.signals.failed.emit(self.path, info.name, f"{type(exc).__name__}: {exc}\n"
                                         + traceback.format_exc(limit=-1))
        self.signals.done.emit(self.path)


class DetectorsPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_button = QPushButton("Run detectors on current image")
        self.cancel_button = QPushButton("Cancel")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.table = QTreeWidget()
        self.table.setHeaderLabels(["Detector", "Score", "Threshold", "Verdict", "Explanation"])
        self.table.setRootIsDecorated(False)
        self.table.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.run_button, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.table, 1)
        self.outcomes: dict[str, Any] = {}
        self.set_running(False)

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
        item = QTreeWidgetItem(self.table, [out.name, score, threshold, out.verdict,
                                            out.explanation])
        item.setForeground(3, QBrush(QColor(VERDICT_COLOURS.get(out.verdict, "#8a8f98"))))
        item.setToolTip(4, out.explanation)
        item.setData(0, Qt.ItemDataRole.UserRole, out.name)
        if out.evidence is not None:
            item.setText(0, out.name + "  ▣")  # has a map: click to see it
        self.outcomes[out.name] = out
        for c in range(4):
            self.table.resizeColumnToContents(c)

    def add_failure(self, name: str, message: str) -> None:
        item = QTreeWidgetItem(self.table, [name, "-", "-", "failed", message.splitlines()[0]])
        item.setForeground(3, QBrush(QColor("#d23c3c")))

    def rows(self) -> list[tuple[str, ...]]:
        return [tuple(self.table.topLevelItem(i).text(c) for c in range(5))
                for i in range(self.table.topLevelItemCount())]
