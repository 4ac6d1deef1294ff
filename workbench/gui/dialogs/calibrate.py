"""Tools > Calibrate Detectors: make new detector thresholds from a folder of clean images.

Non-modal: the calibration runs on the window's job runner (session.calibrating) while
the reviewer keeps working. Each detector's threshold is saved to the user's calibration
folder, which comes before the shipped thresholds, so verdicts made afterwards use it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...session.calibrating import calibrate_detectors, clean_images, images_needed
from ...session.jobs import JobFailed

COLUMNS = ["Detector", "Threshold", "Images used", "Skipped", "Saved to / why not"]
ERROR_COLOUR = "#d23c3c"


class CalibrateDialog(QDialog):
    """Folder, false-positive rate, detectors; Start / Cancel; progress; a result table."""

    def __init__(self, study: Any, runner: Any, registry: Any,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Calibrate Detectors")
        self.setModal(False)
        self.study, self.runner, self.registry = study, runner, registry
        self.job: Any = None
        self._warning = ""
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("a folder of clean images")
        self.browse_button = QPushButton("Browse…")
        self.fpr_spin = QDoubleSpinBox()
        self.fpr_spin.setRange(0.1, 50.0)
        self.fpr_spin.setDecimals(1)
        self.fpr_spin.setSingleStep(0.5)
        self.fpr_spin.setSuffix(" %")
        self.fpr_spin.setValue(5.0)
        self.fpr_spin.setToolTip("About this share of clean images will be flagged "
                                 "suspicious although clean.")
        self.detector_list = QListWidget()
        self.detector_list.setMaximumHeight(130)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.close_button = QPushButton("Close")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.table.horizontalHeader()
        for c in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self._lay_out()
        self.browse_button.clicked.connect(self.browse)
        self.fpr_spin.valueChanged.connect(lambda _v: self._update_note())
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        self.study.models_changed.connect(self.refresh)
        self.refresh()
        self.resize(760, 600)

    def _lay_out(self) -> None:
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("Clean images:", folder_row)
        fpr_row = QHBoxLayout()
        fpr_row.addWidget(self.fpr_spin)
        fpr_row.addWidget(QLabel("of clean images flagged although clean"))
        fpr_row.addStretch(1)
        form.addRow("False-positive rate:", fpr_row)
        form.addRow("Detectors:", self.detector_list)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status_label)
        layout.addWidget(self.table, 1)

    # --- what can be calibrated ---------------------------------------------------------------
    def refresh(self) -> None:
        """List the calibratable detectors (ticks kept by name; new ones ticked); those
        that need a model are off while none is loaded."""
        if self.job is not None:
            return
        ticked = {self._name(it): it.checkState() for it in self._items()}
        self.detector_list.clear()
        no_model = self.study.model is None
        for info in self.registry.detectors():
            if not (info.ok and info.calibratable):
                continue
            item = QListWidgetItem(info.name)
            needs_model = "model" in info.needs
            if needs_model and no_model:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                item.setCheckState(Qt.CheckState.Unchecked)
                item.setText(f"{info.name}  (needs a model)")
                item.setToolTip("needs a model: load one in the Model dock")
            else:
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(ticked.get(info.name, Qt.CheckState.Checked))
                item.setToolTip(info.summary or info.name)
            item.setData(Qt.ItemDataRole.UserRole, info)
            self.detector_list.addItem(item)
        self._update_note()
        self._set_running(False)

    def _items(self) -> list[QListWidgetItem]:
        return [self.detector_list.item(r) for r in range(self.detector_list.count())]

    @staticmethod
    def _name(item: QListWidgetItem) -> str:
        return item.data(Qt.ItemDataRole.UserRole).name

    def set_checked(self, names: list[str]) -> None:
        for it in self._items():
            if it.flags() & Qt.ItemFlag.ItemIsEnabled:
                it.setCheckState(Qt.CheckState.Checked if self._name(it) in names
                                 else Qt.CheckState.Unchecked)

    def checked(self) -> list[Any]:
        return [it.data(Qt.ItemDataRole.UserRole) for it in self._items()
                if it.flags() & Qt.ItemFlag.ItemIsEnabled
                and it.checkState() == Qt.CheckState.Checked]

    def fpr(self) -> float:
        return self.fpr_spin.value() / 100.0

    def _update_note(self) -> None:
        if self.study.model is None:
            model = ("<b>No model loaded</b>: detectors that need one are greyed out; "
                     "load one in the Model dock to calibrate them.")
        else:
            model = (f"Detectors that need a model are calibrated on the loaded model, "
                     f"<b>{self.study.model_name or 'unnamed'}</b>; their thresholds "
                     "apply to it only.")
        self.note.setText(
            "Use <b>clean</b> images only, never the images under review, of the same kind "
            "as those you will check (photos for photos, CT for CT). At "
            f"{self.fpr_spin.value():g}% about <b>{images_needed(self.fpr())}</b> images "
            f"are needed (1 / rate), more is better. {model}")

    # --- running ------------------------------------------------------------------------------
    def browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of clean images",
                                                  self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def is_running(self) -> bool:
        return self.job is not None

    def start(self) -> bool:
        """Check the input (a message here, never a traceback) and start the job."""
        if self.job is not None:
            return False
        infos = self.checked()
        try:
            if not infos:
                raise JobFailed("Tick at least one detector.")
            files = clean_images(self.folder_edit.text())
        except JobFailed as exc:
            self._say(str(exc), error=True)
            return False
        need = images_needed(self.fpr())
        self._warning = (f"Only {len(files)} image(s): at {self.fpr_spin.value():g}% a "
                         f"threshold needs about {need} to mean much.\n"
                         if len(files) < need else "")
        self.table.setRowCount(0)
        job = calibrate_detectors(infos, files, self.study.model, self.fpr())
        job.on_partial = self._add_row
        job.on_result = self._finished
        job.on_error = lambda message: self._ended(message, error=True, bar="failed")
        job.on_cancelled = lambda: self._ended(
            "Cancelled: the detector in progress saved nothing; those finished before it "
            "keep their new thresholds.", bar="cancelled")
        self.job = job
        self._set_running(True)
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self._say(self._warning + f"Calibrating {len(infos)} detector(s) on "
                  f"{len(files)} image(s)…")
        self.runner.start(job, on_progress=self._on_progress)
        return True

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.cancel_button.setEnabled(False)
            self.progress.setFormat("cancelling…")

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(max(0.0, fraction) * 1000))
        self.progress.setFormat(message)

    def _add_row(self, result: Any) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        cells = [result.detector,
                 f"{result.threshold:.6g}" if result.ok else "—",
                 str(result.n) if result.ok else "—",
                 str(result.skipped) if result.ok else "—",
                 result.path if result.ok else result.error]
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            if c in (1, 2, 3):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if not result.ok and c == len(cells) - 1:
                item.setForeground(QBrush(QColor(ERROR_COLOUR)))
            self.table.setItem(r, c, item)
        self.table.resizeRowsToContents()

    def _finished(self, results: list[Any]) -> None:
        made = [r for r in results if r.ok]
        if made:
            text = (f"Saved {len(made)} new threshold(s) at {self.fpr_spin.value():g}% "
                    "false positives. New verdicts use these thresholds (they come before "
                    "the shipped ones); run the detectors again to re-judge an image "
                    "already checked.")
        else:
            text = "No threshold was made: see why in the table."
        self.progress.setValue(1000)
        self.progress.setFormat("done")
        self._ended(self._warning + text, error=not made)

    def _ended(self, message: str, error: bool = False, bar: str = "") -> None:
        self.job = None
        if bar:
            self.progress.setFormat(bar)
        self._set_running(False)
        self._say(message, error=error)

    def _say(self, message: str, error: bool = False) -> None:
        self.status_label.setStyleSheet(f"color: {ERROR_COLOUR};" if error else "")
        self.status_label.setText(message)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for w in (self.folder_edit, self.browse_button, self.fpr_spin, self.detector_list):
            w.setEnabled(not running)

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt's name)
        self.refresh()  # plugins reloaded or a model loaded while it was hidden
        super().showEvent(event)
