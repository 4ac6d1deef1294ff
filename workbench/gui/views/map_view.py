"""Pieces for showing maps a reviewer can read: a colour bar that says what the colours
mean (the range, its unit, where the scale saturates), and a zoomable view of an RGB
array (attack results, evidence) that links with its neighbours like Compare does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFontMetrics, QImage, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from .image_view import ImageView, numpy_to_qimage

if TYPE_CHECKING:  # numpy loads with the first image, not with the window
    import numpy as np

INFERNO, DIVERGING = "inferno", "diverging"
BAR_WIDTH = 180


@dataclass(frozen=True)
class Scale:
    """What a map's colours stand for: ``low`` at the left end, ``high`` at the right,
    in ``unit``; ``saturates``: values past ``high`` are drawn at full colour too."""

    colours: str  # INFERNO or DIVERGING
    low: float
    high: float
    unit: str
    saturates: bool = False
    note: str = ""  # a second line, e.g. the same range in 8-bit display levels

    def label(self) -> str:
        high = f"≥ {self.high:.4g}" if self.saturates else f"{self.high:.4g}"
        return f"{self.low:.4g} … {high} {self.unit}".rstrip()


def ramp_rgb(colours: str, n: int = 256) -> np.ndarray:
    """1 x n x 3 uint8: the colours of a scale from its low end to its high end, made by
    the same functions that colour the maps (so the bar cannot disagree with them)."""
    import numpy as np

    from ...analysis.perturbation import heatmap_rgb
    from .overlay_maps import diverging_rgb

    t = np.linspace(0.0, 1.0, n, dtype=np.float32)[None, :]
    if colours == DIVERGING:
        return diverging_rgb(t * 2 - 1, 1.0)
    return heatmap_rgb(t, scale=1.0)[0]


class ColourBar(QWidget):
    """A horizontal colour bar with its range and unit; empty (and small) with no map."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.scale: Scale | None = None
        self._ramp: QImage | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(44)

    def set_scale(self, scale: Scale | None) -> None:
        if scale is not None and (self.scale is None or scale.colours != self.scale.colours):
            self._ramp = numpy_to_qimage(ramp_rgb(scale.colours))
        self.scale = scale
        self.setToolTip(self.text())
        if scale is not None:  # room for the bar and its words: never cut the unit off
            fm = QFontMetrics(self.font())
            words = max(fm.horizontalAdvance(scale.unit), fm.horizontalAdvance(scale.note))
            self.setMinimumWidth(int(BAR_WIDTH + 26 + words))
        self.update()

    def text(self) -> str:
        s = self.scale
        return "" if s is None else s.label() + (f"  ({s.note})" if s.note else "")

    def paintEvent(self, _e) -> None:  # noqa: N802 (Qt API)
        s = self.scale
        if s is None or self._ramp is None:
            return
        p = QPainter(self)
        fm = QFontMetrics(p.font())
        bar = QRectF(8, 4, BAR_WIDTH, 14)
        p.drawImage(bar, self._ramp)
        p.setPen(QColor(120, 120, 128))
        p.drawRect(bar)
        p.setPen(self.palette().windowText().color())
        y = bar.bottom() + fm.ascent() + 2
        p.drawText(QRectF(bar.left(), bar.bottom() + 2, bar.width(), fm.height()),
                   Qt.AlignmentFlag.AlignLeft, f"{s.low:.4g}")
        high = f"≥ {s.high:.4g}" if s.saturates else f"{s.high:.4g}"
        p.drawText(QRectF(bar.left(), bar.bottom() + 2, bar.width(), fm.height()),
                   Qt.AlignmentFlag.AlignRight, high)
        x = bar.right() + 10
        p.drawText(int(x), int(bar.top() + fm.ascent()), s.unit)
        if s.note:
            p.drawText(int(x), int(y), s.note)


class ArrayView(ImageView):
    """An RGB (h, w, 3) uint8 array in a zoomable, pannable view (no window/level: the
    array is already a rendering), with an optional overlay and its opacity."""

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(160, 160)
        self.show_corner_text = False
        self.placeholder = placeholder
        self.array: np.ndarray | None = None

    def set_array(self, rgb: np.ndarray | None, keep_view: bool = True) -> None:
        """Show ``rgb``; a same-sized array keeps the zoom and centre (a new opacity or
        overlay is not a new picture)."""
        self.array = rgb
        if rgb is None:
            self.set_image(None)
            return
        view = (self._zoom, self._center) if keep_view and self.image is not None \
            and (self.image.rows, self.image.columns) == rgb.shape[:2] else None
        from ...imaging.in_memory import image_from_uint8

        # the array itself, no float round trip or copy, and its range the 8-bit scale:
        # nothing scans a mammogram's twelve megapixels on the GUI thread
        self.set_image(image_from_uint8(rgb, "rendering", (0.0, 255.0)))
        if view is not None:
            self._zoom, self._center = view
        self.update()

    def _ensure_rendered(self) -> None:
        """The array itself, sampled for the zoom: it is a rendering already (the window
        pipeline would give back the same 8-bit values, at the cost of a lookup pass)."""
        if self.image is None:
            self._qimage = None
            return
        step = self._step()
        key = (id(self.image), step, self.inverted, self.transform)
        if key == self._render_key and self._qimage is not None:
            return
        shown = self.image.pixels[::step, ::step] if step > 1 else self.image.pixels
        if not self.transform.is_identity:
            shown = self.transform.apply(shown)
        if self.inverted:
            shown = 255 - shown
        self._rendered = shown
        self._qimage = numpy_to_qimage(shown)
        self._render_key = key

    def clear(self) -> None:
        self.set_array(None)

    def _drag_window(self, dx: float, dy: float) -> None:
        """A rendering has no window to drag: left drag pans instead."""
        self._pan(dx, dy)


def link_views(views: list[ImageView]) -> None:
    """Zoom and pan move together across ``views`` (set_view ignores no-op updates, so
    linked views never ping-pong)."""
    for v in views:
        for other in views:
            if other is not v:
                v.viewChanged.connect(other.set_view)
