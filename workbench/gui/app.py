"""Start the Qt application."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from PySide6.QtWidgets import QApplication

from .main_window import MainWindow


def ensure_app() -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("workbench")
        app.setOrganizationName("workbench")
        app.setStyle("Fusion")
    return app


def run_gui(paths: Sequence[str] = (), demo: bool = False) -> int:
    app = ensure_app()
    window = MainWindow()
    window.show()
    if demo:
        window.open_demo()
    if paths:
        window.open_paths(list(paths))
    # For scripted smoke runs (benchmarks, screenshots): quit after N ms.
    quit_after = os.environ.get("WORKBENCH_QUIT_AFTER_MS")
    if quit_after:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(int(quit_after), app.quit)
    return app.exec()
