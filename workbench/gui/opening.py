"""Opening images into the study: files and folders, decoding off the GUI thread with
progress and cancel, and what the study list says of each (loading, loaded, error). A
file that cannot be read is reported naming the file and the reason; the rest still open."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from ..session import actions
from .settings import add_recent_path


class ImageOpener(QObject):
    progress = Signal(float, str)  # of the current image's decode (negative: unknown)
    idle = Signal()  # no decode is running any more
    decoded = Signal(object)  # ImageSession, its image now in memory
    message = Signal(str)  # a line for the status bar

    def __init__(self, study: Any, runner: Any, study_list: Any,
                 report_error: Callable[[str, str], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.study, self.runner, self.study_list = study, runner, study_list
        self.report_error = report_error
        self.tasks: dict[str, Any] = {}  # path -> the decode job in flight

    def open_paths(self, paths: list[str | Path]) -> list[str]:
        """Add files (and the images inside folders) to the study; select the first."""
        from ..imaging.discovery import find_images

        added: list[str] = []
        for raw in paths:
            p = Path(raw).expanduser()
            files = find_images(p) if p.is_dir() else [p]
            if p.is_dir() and not files:
                self.report_error(f"{p}: the folder contains no DICOM files or photos",
                                  "Cannot open image")
            for f in files:
                self.study.open(f)
                self.study_list.add_path(f)
                added.append(str(f))
            add_recent_path(str(p))
        if added:
            self.study_list.select_path(added[0])
            headers = actions.read_headers(added)
            headers.on_partial = lambda item: self.study_list.mark_header(*item)
            self.runner.start(headers, priority=0)
        return added

    def choose_files(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        names, _ = QFileDialog.getOpenFileNames(
            self.parent(), "Open images", "",
            "Images (*.dcm *.dicom *.ima *.jpg *.jpeg *.png *.tif *.tiff *.bmp);;All files (*)")
        if names:
            self.parent().open_paths(names)

    def choose_folder(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self.parent(), "Open folder")
        if folder:
            self.parent().open_paths([folder])

    def show_path(self, path: str) -> Any:
        """Make ``path`` the current image, decoding it when it is not in memory."""
        session = self.study.set_current(path)
        if session.image is None and session.load_error is None and path not in self.tasks:
            self._start_load(session)
        return session

    def cancel_loading(self) -> None:
        for job in self.tasks.values():
            job.cancel()

    def _start_load(self, session: Any) -> None:
        job = actions.open_image(self.study, session)
        path = session.path
        decoded = job.on_result
        job.on_result = lambda image: (decoded(image), self._loaded(session))
        failed = job.on_error
        job.on_error = lambda message: (failed(message), self._failed(session, message))
        job.on_cancelled = lambda: (self._done(path),
                                    self.message.emit(f"Cancelled: {session.name}"))
        self.tasks[path] = job
        self.study_list.mark_loading(path)
        self.progress.emit(-1.0, f"opening {session.name}")
        # what the user asked to see goes first
        self.runner.start(job, priority=2, on_progress=lambda f, m: self._progress(path, f, m))

    def _progress(self, path: str, fraction: float, message: str) -> None:
        if self.study.current is not None and self.study.current.path == path:
            self.progress.emit(fraction, message)

    def _done(self, path: str) -> None:
        self.tasks.pop(path, None)
        if not self.tasks:
            self.idle.emit()

    def _loaded(self, session: Any) -> None:
        self._done(session.path)
        self.study_list.mark_loaded(session.path, session.image)
        self.decoded.emit(session)

    def _failed(self, session: Any, message: str) -> None:
        self._done(session.path)
        self.study_list.mark_failed(session.path, message)
        if session is self.study.current:
            self.report_error(message, "Cannot open image")
