"""The blinded reader study's window (Study > Reader Study…), on the headless
`workbench.reader_study.ReaderSession`."""

from __future__ import annotations

from .launch import open_reader_study
from .session_window import ReaderWindow

__all__ = ["ReaderWindow", "open_reader_study"]
