"""File > Open from PACS: find studies on a DICOMweb archive by patient ID, study date and
modality, pick a study (or one of its series), and retrieve it into the study list, with
progress and cancel. Every network call runs as a job on the window's thread pool, so a
slow or dead archive never freezes the window; its errors are shown in the dialog.

Retrieved instances are the archive's own bytes (workbench.pacs), kept under
WORKBENCH_HOME/pacs/<host>/<study>/<series>/ so that they can be verified and reopened."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ...session.jobs import Job, JobFailed
from .. import settings

URL_KEY = "pacs/url"
MODALITIES = ["", "CT", "MR", "CR", "DX", "MG", "US", "XA", "NM", "PT", "XC", "OT", "SC"]
STUDY_COLUMNS = ["Date", "Patient ID", "Patient name", "Modalities", "Series", "Instances",
                 "Description"]
SERIES_COLUMNS = ["Series", "Modality", "Instances", "Description"]


def retrieve_folder(url: str) -> Path:
    """Where an archive's instances are kept, one folder per host and port."""
    from ...home import workbench_home

    where = urlparse(url)
    host = "".join(c if c.isalnum() or c in ".-" else "_"
                   for c in f"{where.hostname or 'pacs'}_{where.port or 80}")
    return workbench_home() / "pacs" / host


def _item(text: Any, data: Any = None) -> QTableWidgetItem:
    it = QTableWidgetItem(str(text))
    it.setFlags(it.flags() & ~Qt.ItemFlag.ItemIsEditable)
    if data is not None:
        it.setData(Qt.ItemDataRole.UserRole, data)
    return it


def _table(columns: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels(columns)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.horizontalHeader().setStretchLastSection(True)
    t.verticalHeader().setVisible(False)
    return t


class OpenFromPacsDialog(QDialog):
    """Non-modal: the window stays usable while a retrieval runs."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.setWindowTitle("Open from PACS")
        self.resize(900, 560)
        self.job: Job | None = None
        self.studies: list[Any] = []
        self.series: list[Any] = []
        self.opened_paths: list[str] = []  # what the last retrieval opened

        self.url = QLineEdit(str(settings.app_settings().value(URL_KEY, "") or ""))
        self.url.setPlaceholderText("http://pacs.example:8042/dicom-web")
        self.patient = QLineEdit()
        self.patient.setPlaceholderText("any (wildcards * and ?)")
        self.date = QLineEdit()
        self.date.setPlaceholderText("any, YYYYMMDD, or a range YYYYMMDD-YYYYMMDD")
        self.modality = QComboBox()
        self.modality.addItems(["any"] + MODALITIES[1:])
        form = QFormLayout()
        form.addRow("DICOMweb URL", self.url)
        form.addRow("Patient ID", self.patient)
        form.addRow("Study date", self.date)
        form.addRow("Modality", self.modality)

        self.search_button = QPushButton("&Search")
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)
        self.study_table = _table(STUDY_COLUMNS)
        self.study_table.itemSelectionChanged.connect(self._study_chosen)
        self.series_table = _table(SERIES_COLUMNS)
        self.retrieve_button = QPushButton("&Retrieve and Open")
        self.retrieve_button.setEnabled(False)
        self.retrieve_button.clicked.connect(self.retrieve)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.status = QLabel("Search the archive, then choose a study (and a series, or "
                             "none for the whole study).")
        self.status.setWordWrap(True)

        buttons = QHBoxLayout()
        buttons.addWidget(self.search_button)
        buttons.addStretch(1)
        buttons.addWidget(self.progress, 2)
        buttons.addWidget(self.retrieve_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Studies"))
        layout.addWidget(self.study_table, 3)
        layout.addWidget(QLabel("Series of the chosen study"))
        layout.addWidget(self.series_table, 2)
        layout.addWidget(self.status)
        layout.addLayout(buttons)

    # --- jobs -------------------------------------------------------------------------------
    def _run(self, title: str, work: Any, on_result: Any) -> None:
        if self.job is not None:
            self.job.cancel()
        self.job = Job(title, work, on_result=lambda r: self._done(on_result, r),
                       on_error=self._failed, on_cancelled=self._cancelled)
        self._busy(True)
        self.window.runner.start(self.job, on_progress=self._progressed)

    def _busy(self, busy: bool) -> None:
        self.search_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.retrieve_button.setEnabled(not busy and self._chosen_study() is not None)

    def _done(self, on_result: Any, result: Any) -> None:
        self.job = None
        self._busy(False)
        on_result(result)

    def _failed(self, message: str) -> None:
        self.job = None
        self._busy(False)
        self.progress.setVisible(False)
        self.status.setText(f"<span style='color:#c62828'>{message}</span>")

    def _cancelled(self) -> None:
        self.job = None
        self._busy(False)
        self.progress.setVisible(False)
        self.status.setText("Cancelled; the instances already retrieved are complete and "
                            "kept.")

    def _progressed(self, fraction: float, message: str) -> None:
        if fraction >= 0:
            self.progress.setVisible(True)
            self.progress.setValue(int(fraction * 100))
        self.status.setText(message)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    @staticmethod
    def _archive(url: str) -> Any:
        """On the worker thread: from the URL string read on the GUI thread (a widget is
        never touched off it)."""
        from ...pacs.dicomweb import DicomWeb, PacsError

        try:
            return DicomWeb(url)
        except PacsError as exc:
            raise JobFailed(str(exc)) from None

    # --- searching ----------------------------------------------------------------------------
    def search(self) -> None:
        url = self.url.text().strip()
        if not url:
            self._failed("Enter the archive's DICOMweb URL.")
            return
        settings.app_settings().setValue(URL_KEY, url)
        patient = self.patient.text().strip() or None
        date = self.date.text().strip().replace(" ", "") or None
        modality = self.modality.currentText()
        modality = None if modality == "any" else modality

        def work(job: Job) -> list[Any]:
            from ...pacs.dicomweb import PacsError

            job.progress(-1, f"searching {url}…")
            try:
                return self._archive(url).find_studies(patient_id=patient, date=date,
                                                    modality=modality)
            except PacsError as exc:
                raise JobFailed(str(exc)) from None

        self._run("Search the PACS", work, self._show_studies)

    def _show_studies(self, rows: list[Any]) -> None:
        self.studies = rows
        self.series = []
        self.series_table.setRowCount(0)
        self.study_table.setRowCount(len(rows))
        for r, s in enumerate(rows):
            for c, value in enumerate((s.date, s.patient_id, s.patient_name, s.modalities,
                                       s.series, s.instances, s.description)):
                self.study_table.setItem(r, c, _item(value, s.study_uid if c == 0 else None))
        self.study_table.resizeColumnsToContents()
        self.status.setText(f"{len(rows)} stud{'y' if len(rows) == 1 else 'ies'} found.")
        self.retrieve_button.setEnabled(False)

    def _chosen_study(self) -> Any:
        rows = self.study_table.selectionModel().selectedRows()
        return self.studies[rows[0].row()] if rows and rows[0].row() < len(self.studies) \
            else None

    def _chosen_series(self) -> Any:
        rows = self.series_table.selectionModel().selectedRows()
        return self.series[rows[0].row()] if rows and rows[0].row() < len(self.series) \
            else None

    def _study_chosen(self) -> None:
        study = self._chosen_study()
        url = self.url.text().strip()
        self.series_table.setRowCount(0)
        self.series = []
        if study is None or self.job is not None:
            self.retrieve_button.setEnabled(False)
            return

        def work(job: Job) -> list[Any]:
            from ...pacs.dicomweb import PacsError

            job.progress(-1, "listing the series…")
            try:
                return self._archive(url).find_series(study.study_uid)
            except PacsError as exc:
                raise JobFailed(str(exc)) from None

        self._run("List the series", work, self._show_series)

    def _show_series(self, rows: list[Any]) -> None:
        self.series = rows
        self.series_table.setRowCount(len(rows))
        for r, s in enumerate(rows):
            for c, value in enumerate((s.number, s.modality, s.instances, s.description)):
                self.series_table.setItem(r, c, _item(value))
        self.series_table.resizeColumnsToContents()
        self.status.setText(f"{len(rows)} series. Choose one, or none for the whole study.")
        self.retrieve_button.setEnabled(True)

    # --- retrieving ---------------------------------------------------------------------------
    def retrieve(self) -> None:
        study, series = self._chosen_study(), self._chosen_series()
        if study is None:
            return
        url = self.url.text().strip()
        dest = retrieve_folder(url)

        def work(job: Job) -> Any:
            import threading

            from ...pacs.dicomweb import PacsError
            from ...pacs.retrieve import retrieve

            cancel = threading.Event()
            try:
                archive = self._archive(url)
                refs = archive.instances(study.study_uid,
                                         series.series_uid if series else None)
                if not refs:
                    raise JobFailed("the PACS lists no instances for this "
                                    + ("series" if series else "study"))

                def step(done: int, total: int, _name: str) -> None:
                    if job.cancelled:
                        cancel.set()
                    job.progress(done / total, f"retrieved {done} of {total} instance(s)")

                job.progress(0.0, f"retrieving {len(refs)} instance(s)…")
                got = retrieve(archive, refs, dest, progress=step, cancel=cancel)
            except PacsError as exc:
                raise JobFailed(str(exc)) from None
            job.check_cancelled()
            return got

        self._run("Retrieve from the PACS", work, self._opened)

    def _opened(self, got: Any) -> None:
        self.progress.setVisible(False)
        paths = [str(p) for _ref, p in got.files]
        failed = "".join(f"<br>{ref.sop_uid}: {why}" for ref, why in got.failed[:5])
        if paths:
            self.window.open_paths(paths)
        self.status.setText(f"{len(paths)} instance(s) retrieved and opened"
                            + (f"; {len(got.failed)} not retrieved:{failed}" if failed else "."))
        self.opened_paths = paths

    def closeEvent(self, event: Any) -> None:  # noqa: N802
        self.cancel()
        super().closeEvent(event)
