"""Decode images off the GUI thread, with progress and cancel."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, Signal

from ..imaging.errors import ImageLoadError


class LoadSignals(QObject):
    progress = Signal(str, float, str)  # path, fraction (negative = unknown), message
    loaded = Signal(str, object)  # path, MedicalImage
    failed = Signal(str, str, bool)  # path, message, cancelled


class LoadTask(QRunnable):
    """One image decode on the thread pool. Results come back as queued signals."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.signals = LoadSignals()
        self._cancel = threading.Event()
        self.setAutoDelete(False)  # the window keeps a reference until the result arrives

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:
        from ..imaging.loader import load_image  # numpy & co load off the GUI thread

        key = str(self.path)
        try:
            self.signals.progress.emit(key, -1.0, f"opening {self.path.name}")
            image = load_image(
                self.path,
                progress=lambda f, m: self.signals.progress.emit(key, f, m),
                cancelled=self._cancel.is_set,
            )
        except ImageLoadError as exc:
            self.signals.failed.emit(key, str(exc), self._cancel.is_set())
            return
        except BaseException as exc:  # never let a worker die silently
            self.signals.failed.emit(key, f"{self.path}: unexpected error: {exc}", False)
            return
        if self._cancel.is_set():
            self.signals.failed.emit(key, f"{self.path}: cancelled by the user", True)
        else:
            self.signals.loaded.emit(key, image)
