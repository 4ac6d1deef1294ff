"""Study > Reader Study…: ask for the study folder and the reader's name (unless given),
then open that reader's window. One window per reader and study: two would append to one
answer file at once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit

from ...reader_study import StudyError


def _ask_folder(window: Any) -> str | None:
    folder = QFileDialog.getExistingDirectory(window, "Choose the reader study folder")
    return folder or None


def _ask_reader(window: Any) -> str | None:
    name, ok = QInputDialog.getText(
        window, "Reader study", "Your reader name (letters, digits, '.', '_' or '-'):",
        QLineEdit.EchoMode.Normal, "")
    return name.strip() if ok and name.strip() else None


def open_reader_study(window: Any, study_dir: str | os.PathLike[str] | None = None,
                      reader: str | None = None) -> Any:
    """The reader's window, shown full screen; None when the user cancelled or the study
    cannot be opened (``window.show_error`` says why)."""
    from .session_window import ReaderWindow

    study_dir = study_dir if study_dir is not None else _ask_folder(window)
    if study_dir is None:
        return None
    reader = reader if reader is not None else _ask_reader(window)
    if reader is None:
        return None
    windows = getattr(window, "reader_windows", None)
    if windows is None:
        windows = window.reader_windows = {}
    key = (str(Path(study_dir).resolve()), reader)
    if key in windows:
        windows[key].show_reading()
        return windows[key]
    try:
        reader_window = ReaderWindow(study_dir, reader, parent=window,
                                     on_closed=lambda: windows.pop(key, None))
    except StudyError as exc:  # AnswerError (a bad reader name) is one too
        window.show_error(str(exc), "Reader study")
        return None
    except OSError as exc:  # e.g. a torn answer file on a read-only share
        window.show_error(f"{study_dir}: cannot open the answers ({exc.strerror or exc})",
                          "Reader study")
        return None
    if (Path(study_dir) / "key.json").exists():
        # said in the organiser's window, never in the reader's
        window.statusBar().showMessage(
            "This study folder still holds key.json, the answer key: move it out before "
            "readers use the folder.", 15000)
    windows[key] = reader_window
    reader_window.show_reading()
    return reader_window
