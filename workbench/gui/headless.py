"""The main window without a person in front of it (the self test, the frozen app's
--smoke): open it, and wait for something while Qt keeps processing events."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any


def open_main_window() -> tuple[Any, Any]:
    """(QApplication, shown MainWindow); the application is reused when one exists."""
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow()
    window.show()
    app.processEvents()
    return app, window


def wait_for(app: Any, done: Callable[[], bool], timeout: float) -> bool:
    """Process events until ``done()`` or ``timeout`` seconds; whether it got done."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    return done()
