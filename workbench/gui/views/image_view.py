"""The central image view, with the mouse habits of DICOM viewers.

left drag = window/level (horizontal: width, vertical: centre, scaled to the image's
value range); middle drag = pan; right drag or Ctrl+wheel = zoom; wheel = next/previous
frame; double-click = fit. Zoomed out, only every n-th stored pixel is rendered (the
screen cannot show more), which keeps window/level interactive on 12-megapixel
mammograms; zoomed in, pixels are drawn as crisp squares.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from ...imaging import MedicalImage, Window

if TYPE_CHECKING:
    import numpy as np

MIN_ZOOM, MAX_ZOOM = 0.02, 64.0


def numpy_to_qimage(array: np.ndarray) -> QImage:
    """Wrap a uint8 (h, w) or (h, w, 3) array as a QImage that owns a copy of the data."""
    import numpy as np

    array = np.ascontiguousarray(array)
    h, w = array.shape[:2]
    if array.ndim == 2:
        qimg = QImage(array.data, w, h, array.strides[0], QImage.Format.Format_Grayscale8)
    else:
        qimg = QImage(array.data, w, h, array.strides[0], QImage.Format.Format_RGB888)
    return qimg.copy()  # detach from the numpy buffer


class ImageView(QWidget):
    windowChanged = Signal(object)  # Window
    frameChanged = Signal(int)
    cursorInfo = Signal(str)
    zoomChanged = Signal(float)
    viewChanged = Signal(float, float, float)  # zoom, centre x, centre y (image pixels)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 200)
        self.image: MedicalImage | None = None
        self.frame = 0
        self.window: Window | None = None
        self.use_voi_lut = False
        self._zoom: float | None = None  # None = fit to the widget
        self._center = QPointF(0, 0)  # image point shown at the widget centre
        self._qimage: QImage | None = None
        self._rendered: np.ndarray | None = None
        self._render_key: tuple | None = None
        self._drag_button: Qt.MouseButton | None = None
        self._drag_last = QPointF()
        self.placeholder = "Open a DICOM file or photo (File ▸ Open, or drop it here)"
        self._overlay: QImage | None = None
        self.overlay_opacity = 0.6
        self.inverted = False  # display only: white on black becomes black on white

    # --- state --------------------------------------------------------------------------
    def set_image(self, image: MedicalImage | None, frame: int = 0) -> None:
        self.image = image
        self.frame = 0
        self.use_voi_lut = False
        self._zoom = None
        self._render_key = None
        self._overlay = None
        if image is not None:
            self.frame = max(0, min(frame, image.n_frames - 1))
            self.window = image.default_window(self.frame)
            # The file's VOI LUT is its preferred display when it gives no window.
            self.use_voi_lut = image.has_voi_lut and not image.windows(self.frame)
            h, w = self.display_shape()
            self._center = QPointF(w / 2, h / 2)
            self.windowChanged.emit(self.window)
            self.frameChanged.emit(self.frame)
        else:
            self.window = None
        self.update()

    def set_inverted(self, inverted: bool) -> None:
        self.inverted = bool(inverted)
        self.update()

    def set_window(self, window: Window, *, voi_lut: bool = False) -> None:
        self.window = window
        self.use_voi_lut = voi_lut
        self.windowChanged.emit(window)
        self.update()

    def set_frame(self, index: int) -> None:
        if self.image is None:
            return
        index = max(0, min(int(index), self.image.n_frames - 1))
        if index != self.frame:
            self.frame = index
            self.frameChanged.emit(index)
            self.update()

    def display_shape(self) -> tuple[int, int]:
        if self.image is None:
            return (0, 0)
        from ...imaging.display import oriented_shape

        return oriented_shape(self.image.rows, self.image.columns, self.image.orientation)

    @property
    def zoom(self) -> float:
        if self._zoom is not None:
            return self._zoom
        h, w = self.display_shape()
        if not h or not w:
            return 1.0
        return min(self.width() / w, self.height() / h)

    def set_zoom(self, zoom: float | None, anchor: QPointF | None = None) -> None:
        """Set the zoom (None = fit). ``anchor`` (widget coordinates) stays put."""
        if zoom is None:
            self._zoom = None
            h, w = self.display_shape()
            self._center = QPointF(w / 2, h / 2)
        else:
            zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
            if anchor is not None:
                before = self.widget_to_image(anchor)
                self._zoom = zoom
                after = self.widget_to_image(anchor)
                self._center += before - after
            else:
                self._zoom = zoom
        self.zoomChanged.emit(self.zoom)
        self.viewChanged.emit(self.zoom, self._center.x(), self._center.y())
        self.update()

    def set_view(self, zoom: float, cx: float, cy: float) -> None:
        """Show the same zoom and centre as another view (synchronised comparison)."""
        if (self._zoom, self._center.x(), self._center.y()) == (zoom, cx, cy):
            return  # already there: no signal, so two linked views do not ping-pong
        self._zoom = zoom
        self._center = QPointF(cx, cy)
        self.zoomChanged.emit(zoom)
        self.update()

    def set_overlay(self, rgb: np.ndarray | None, opacity: float = 0.6) -> None:
        """A picture drawn over the image (e.g. a difference map) on the image's *stored*
        grid, like every map the workbench computes; it is turned here with the image's
        EXIF orientation so it lands on the pixels it describes."""
        if rgb is not None and self.image is not None and self.image.orientation != 1:
            import numpy as np

            from ...imaging.display import orient

            rgb = np.ascontiguousarray(orient(rgb, self.image.orientation))
        self._overlay = None if rgb is None else numpy_to_qimage(rgb)
        self.overlay_opacity = opacity
        self.update()

    def rendered_array(self) -> np.ndarray | None:
        """The last rendering (uint8, possibly decimated when zoomed out)."""
        return self._rendered

    # --- geometry -------------------------------------------------------------------------
    def widget_to_image(self, p: QPointF) -> QPointF:
        z = self.zoom
        return QPointF((p.x() - self.width() / 2) / z + self._center.x(),
                       (p.y() - self.height() / 2) / z + self._center.y())

    def image_rect(self) -> QRectF:
        h, w = self.display_shape()
        z = self.zoom
        x0 = self.width() / 2 - self._center.x() * z
        y0 = self.height() / 2 - self._center.y() * z
        return QRectF(x0, y0, w * z, h * z)

    # --- rendering ------------------------------------------------------------------------
    def _step(self) -> int:
        return max(1, int(math.floor(1.0 / self.zoom))) if self.zoom < 1 else 1

    def _ensure_rendered(self) -> None:
        if self.image is None:
            self._qimage = None
            return
        from ...imaging.display import render

        step = self._step()
        w = self.window
        key = (id(self.image), self.frame, w, self.use_voi_lut, step, self.inverted)
        if key == self._render_key and self._qimage is not None:
            return
        self._rendered = render(self.image, self.frame, w, use_voi_lut=self.use_voi_lut,
                                step=step, gray=True)
        if self.inverted:
            self._rendered = 255 - self._rendered
        self._qimage = numpy_to_qimage(self._rendered)
        self._render_key = key

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(12, 12, 14))
        if self.image is None:
            p.setPen(QColor(150, 150, 160))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        self._ensure_rendered()
        target = self.image_rect()
        zoomed_in = self.zoom >= 1.0
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not zoomed_in)
        p.drawImage(target, self._qimage, QRectF(self._qimage.rect()))
        if self._overlay is not None and self.overlay_opacity > 0:
            p.setOpacity(self.overlay_opacity)
            p.drawImage(target, self._overlay, QRectF(self._overlay.rect()))
            p.setOpacity(1.0)
        self._draw_overlay(p)

    def _draw_overlay(self, p: QPainter) -> None:
        img, w = self.image, self.window
        lines = [f"{img.modality}  {img.columns}×{img.rows}"]
        if img.n_frames > 1:
            lines.append(f"frame {self.frame + 1}/{img.n_frames}")
        if self.use_voi_lut:
            lines.append("VOI LUT (file)")
        elif w is not None:
            lines.append(f"C {w.center:.6g}  W {w.width:.6g}")
        if self.inverted:
            lines.append("inverted (display)")
        lines.append(f"zoom {self.zoom * 100:.0f}%")
        p.setPen(QColor(235, 200, 60))
        y = 18
        for line in lines:
            p.drawText(8, y, line)
            y += 16

    # --- mouse ------------------------------------------------------------------------------
    def mousePressEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if self.image is None:
            return
        self._drag_button = e.button()
        self._drag_last = e.position()
        e.accept()

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if e.button() == self._drag_button:
            self._drag_button = None

    def mouseDoubleClickEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        self.set_zoom(None)

    def mouseMoveEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        pos = e.position()
        if self.image is not None and self._drag_button is not None:
            d = pos - self._drag_last
            self._drag_last = pos
            if self._drag_button == Qt.MouseButton.LeftButton:
                self._drag_window(d.x(), d.y())
            elif self._drag_button == Qt.MouseButton.MiddleButton:
                z = self.zoom
                if self._zoom is None:
                    self._zoom = z
                self._center -= QPointF(d.x() / z, d.y() / z)
                self.viewChanged.emit(self._zoom, self._center.x(), self._center.y())
                self.update()
            elif self._drag_button == Qt.MouseButton.RightButton:
                self.set_zoom(self.zoom * math.exp(-d.y() / 150.0))
        self._report_cursor(pos)

    def _drag_window(self, dx: float, dy: float) -> None:
        lo, hi = self.image.value_range()
        span = max(hi - lo, 1.0)
        sensitivity = span / 400.0  # a 400-pixel drag sweeps the image's whole range
        w = self.window or self.image.default_window(self.frame)
        # a width past the data's range or a centre outside it shows nothing more
        width = min(max(1.0, w.width + dx * sensitivity), span)
        center = min(max(w.center + dy * sensitivity, lo), hi)
        self.set_window(Window(center, width, "custom", w.function))

    def wheelEvent(self, e: QWheelEvent) -> None:  # noqa: N802
        if self.image is None:
            return
        steps = e.angleDelta().y() / 120.0
        if e.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.set_zoom(self.zoom * (1.25**steps), anchor=e.position())
        elif steps:
            self.set_frame(self.frame + (-1 if steps > 0 else 1))
        e.accept()

    def _report_cursor(self, pos: QPointF) -> None:
        if self.image is None:
            return
        self.cursorInfo.emit(self.describe_point(self.widget_to_image(pos)))

    def describe_point(self, image_point: QPointF) -> str:
        """The stored value (and modality value, e.g. HU) under an image point."""
        img = self.image
        dr, dc = int(math.floor(image_point.y())), int(math.floor(image_point.x()))
        h, w = self.display_shape()
        if not (0 <= dr < h and 0 <= dc < w):
            return ""
        from ...imaging.display import display_to_stored

        r, c = display_to_stored(dr, dc, img.rows, img.columns, img.orientation)
        value = img.stored_value(self.frame, r, c)
        text = f"x {c}  y {r}   stored {value}"
        vt = img.value_transform(self.frame)
        if not isinstance(value, list) and (not vt.is_identity or vt.unit):
            out = float(vt.apply(value))
            text += f"   {out:.6g} {vt.unit}".rstrip()
        return text

    def resizeEvent(self, e) -> None:  # noqa: N802
        if self._zoom is None:
            self.zoomChanged.emit(self.zoom)
        super().resizeEvent(e)
