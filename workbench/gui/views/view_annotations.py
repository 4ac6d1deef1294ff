"""What the image view draws on top of the image: corner text, the scale bar and distance
measurements. Drawing only; the numbers come from imaging.corner_text and
imaging.view_geometry, so they can be tested without a screen."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPen

from ...imaging.view_geometry import PixelSpacing, nice_length

TEXT = QColor(235, 200, 60)
SHADOW = QColor(0, 0, 0, 200)
LINE = QColor(80, 220, 255)


@dataclass(frozen=True)
class Measurement:
    """A distance between two points of the stored image."""

    start: tuple[float, float]  # (x, y) in stored-pixel coordinates (pixel edges)
    end: tuple[float, float]
    pixels: float  # length in stored pixels
    mm: float | None  # None when the image states no pixel spacing

    @property
    def label(self) -> str:
        if self.mm is None:
            return f"{self.pixels:.1f} px (no pixel spacing)"
        return f"{self.mm:.1f} mm"


def _text(p: QPainter, x: float, y: float, line: str) -> None:
    """Text with a dark outline: legible on white bone and on black air alike."""
    p.setPen(SHADOW)
    for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        p.drawText(QPointF(x + dx, y + dy), line)
    p.setPen(TEXT)
    p.drawText(QPointF(x, y), line)


def draw_corners(p: QPainter, rect: QRectF, corners: dict[str, list[str]]) -> None:
    fm = QFontMetrics(p.font())
    step = fm.height()
    for corner, lines in corners.items():
        if not lines:
            continue
        bottom = corner.startswith("bottom")
        right = corner.endswith("right")
        y = rect.bottom() - 8 - step * (len(lines) - 1) if bottom else rect.top() + 6 + fm.ascent()
        for line in lines:
            x = rect.right() - 8 - fm.horizontalAdvance(line) if right else rect.left() + 8
            _text(p, x, y, line)
            y += step


def draw_scale_bar(p: QPainter, rect: QRectF, mm_per_screen_px: float,
                   spacing: PixelSpacing) -> float:
    """A bar of a round length near a fifth of the view's width, centred at the bottom;
    returns its length in mm."""
    length = nice_length(rect.width() / 5 * mm_per_screen_px)
    if length <= 0:
        return 0.0
    px = length / mm_per_screen_px
    x0 = rect.center().x() - px / 2
    y = rect.bottom() - 14
    pen = QPen(TEXT, 2)
    p.setPen(pen)
    p.drawLine(QPointF(x0, y), QPointF(x0 + px, y))
    for x in (x0, x0 + px):
        p.drawLine(QPointF(x, y - 5), QPointF(x, y + 5))
    label = f"{length:g} mm" + (f" ({spacing.note})" if spacing.note else "")
    fm = QFontMetrics(p.font())
    _text(p, rect.center().x() - fm.horizontalAdvance(label) / 2, y - 8, label)
    return length


def draw_measurement(p: QPainter, a: QPointF, b: QPointF, label: str) -> None:
    p.setPen(QPen(LINE, 2))
    p.drawLine(a, b)
    for end in (a, b):
        p.drawEllipse(end, 3, 3)
    mid = (a + b) / 2
    p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    _text(p, mid.x() + 6, mid.y() - 6, label)
