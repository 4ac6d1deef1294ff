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


def run_gui(paths: Sequence[str] = (), demo: bool = False,
            first_run: bool | None = None) -> int:
    """Show the main window and run the event loop.

    ``first_run``: offer to create a signing key when this is the first start (no key,
    question not yet answered). None means "on a real start only": not for ``--demo``
    and not for scripted runs (WORKBENCH_QUIT_AFTER_MS), which must never wait on a
    modal dialog."""
    from PySide6.QtCore import QTimer

    from .dialogs.preferences import apply_theme
    from .settings import theme_preference

    app = ensure_app()
    apply_theme(theme_preference(), app)  # before the window exists: it paints once, themed
    window = MainWindow()
    window.show()
    if demo:
        window.open_demo()
    if paths:
        window.open_paths(list(paths))
    # For scripted smoke runs (benchmarks, screenshots): quit after N ms.
    quit_after = os.environ.get("WORKBENCH_QUIT_AFTER_MS")
    if first_run is None:
        first_run = not demo and not quit_after
    if first_run:
        from .dialogs.first_run import run_first_run

        # after the event loop starts, so the window is painted behind the dialog
        QTimer.singleShot(0, lambda: run_first_run(window))
    if quit_after:
        QTimer.singleShot(int(quit_after), app.quit)
    code = app.exec()
    stuck = getattr(window, "stuck_jobs", [])
    if stuck:
        # a worker thread cannot be stopped from outside, and Qt's thread pool would wait
        # for it for ever at exit: say what was stuck and end the process
        print(f"workbench: still running at exit and stopped: {', '.join(stuck)}",
              file=sys.stderr, flush=True)
        os._exit(code)
    return code
