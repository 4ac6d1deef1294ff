"""The windows the main window opens besides itself: Preferences (window-modal, not
blocking), the one non-modal Evaluate window, the key manager and the Help pages, each
made on first use so that the main window does not pay for them at start-up."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QWidget


def open_preferences(window: Any) -> QWidget:
    """open(), not exec(): the event loop and tests keep running while it is up."""
    from .dialogs.preferences import PreferencesDialog

    dialog = getattr(window, "preferences_dialog", None)
    if dialog is None or not dialog.isVisible():
        dialog = window.preferences_dialog = PreferencesDialog(window)
        dialog.deviceChanged.connect(lambda _d: window.use_device_preference())
        dialog.open()
    dialog.raise_()
    dialog.activateWindow()
    return dialog


def open_evaluation(window: Any) -> QWidget:
    """It keeps its settings and results while hidden; it shares the window's plugins."""
    from .evaluate import EvaluateWindow

    win = getattr(window, "evaluation_window", None)
    if win is None:
        win = window.evaluation_window = EvaluateWindow(window, window.registry)
    win.show()
    win.raise_()
    win.activateWindow()
    return win


def open_calibration(window: Any) -> QWidget:
    """Tools > Calibrate Detectors: one non-modal dialog, kept (with its last results)."""
    from .dialogs.calibrate import CalibrateDialog

    dialog = getattr(window, "calibration_dialog", None)
    if dialog is None:
        dialog = window.calibration_dialog = CalibrateDialog(window.study, window.runner,
                                                              window.registry, window)
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog


def open_key_manager(window: Any) -> None:
    from .dialogs.key_manager import KeyManagerDialog

    KeyManagerDialog(window).exec()


def show_help(window: Any, page: str) -> QWidget:
    """Help > First Steps, Mouse and Keys, About; kept as ``window.help_box``."""
    from .dialogs.help import FIRST_STEPS, MOUSE_AND_KEYS, about_text, show_page

    text = {"first steps": FIRST_STEPS, "mouse and keys": MOUSE_AND_KEYS}.get(page)
    window.help_box = show_page(window, f"workbench — {page}", text or about_text())
    return window.help_box
