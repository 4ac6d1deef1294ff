"""The evaluator's plots on screen: a PNG written by the run, scaled to its tab."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent, QPixmap, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy

#: the PNGs the evaluator writes into the run folder, and their tab titles
PLOTS = (("roc.png", "ROC"), ("confidence.png", "Confidence"),
         ("detector_matrix.png", "Detector matrix plot"))


class PlotLabel(QLabel):
    """A PNG that keeps its aspect ratio as the tab resizes. The size policy is Ignored so
    the scaled pixmap never feeds back into the layout's size (no grow-only loop)."""

    clicked = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setMinimumSize(120, 120)
        self.source: QPixmap | None = None

    def load(self, path: Path) -> bool:
        """Show the PNG at ``path``; False (and a line saying so) when it is not there."""
        pix = QPixmap(str(path)) if path.is_file() else QPixmap()
        if pix.isNull():
            self.reset()
            self.setText(f"{path.name} was not written")
            return False
        self.source = pix
        self.setStyleSheet("background: white;")  # the plots' own background, edge to edge
        self._rescale()
        return True

    def reset(self) -> None:
        self.source = None
        self.clear()
        self.setStyleSheet("")

    def _rescale(self) -> None:
        if self.source is not None:
            self.setPixmap(self.source.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                              Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, e: QResizeEvent) -> None:  # noqa: N802
        self._rescale()
        super().resizeEvent(e)

    def mousePressEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if e.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mousePressEvent(e)
