"""The window's status bar: the value under the cursor, the shown window, and the progress
of the current image's decode with its Cancel button (hidden when nothing runs)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QWidget


class StatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cursor_label, self.window_label = QLabel(), QLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setFlat(True)
        self.addWidget(self.cursor_label, 1)
        self.addPermanentWidget(self.window_label)
        self.addPermanentWidget(self.progress)
        self.addPermanentWidget(self.cancel_button)
        self.set_busy(None)

    def set_busy(self, fraction: float | None, message: str = "") -> None:
        """``fraction`` in [0, 1], negative for unknown, None for idle."""
        self.progress.setVisible(fraction is not None)
        self.cancel_button.setVisible(fraction is not None)
        if fraction is None:
            return
        self.progress.setRange(0, 0 if fraction < 0 else 1000)  # 0, 0: indeterminate
        if fraction >= 0:
            self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(message)
        self.progress.setToolTip(message)
