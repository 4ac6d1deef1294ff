"""The central image view, with the mouse habits of DICOM viewers.

left drag = window/level (horizontal: width, vertical: centre, scaled to the image's
value range); middle drag = pan; right drag or Ctrl+wheel = zoom; wheel = next/previous
frame; double-click = fit; Shift+left drag (or left drag in measure mode) = measure a
distance, in mm where the header gives the pixel spacing. Rotation, flip and invert are
display only: the cursor read-out and measurements always name stored pixels.

Zoomed out, only every n-th stored pixel is rendered (the screen cannot show more), which
keeps window/level interactive on 12-megapixel mammograms; zoomed in, pixels are drawn as
crisp squares.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from ...imaging import MedicalImage, Window
from ...imaging.view_geometry import PixelSpacing, ViewTransform, pixel_spacing
from .view_annotations import Measurement, draw_corners, draw_measurement, draw_scale_bar

if TYPE_CHECKING:
    import numpy as np

MIN_ZOOM, MAX_ZOOM = 0.02, 64.0


def numpy_to_qimage(array: np.ndarray) -> QImage:
    """Wrap a uint8 (h, w), (h, w, 3) or (h, w, 4: RGBA, an overlay with clear places)
    array as a QImage that owns a copy of the data."""
    import numpy as np

    array = np.ascontiguousarray(array)
    h, w = array.shape[:2]
    f = QImage.Format
    fmt = f.Format_Grayscale8 if array.ndim == 2 else (
        f.Format_RGBA8888 if array.shape[2] == 4 else f.Format_RGB888)
    return QImage(array.data, w, h, array.strides[0], fmt).copy()  # detach from numpy


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
        self._overlay_rgb: np.ndarray | None = None  # on the stored grid, as given
        self._overlay_shown: np.ndarray | None = None  # turned as the image is shown
        self._overlay_step = 0  # the sampling of the overlay's QImage
        self.overlay_opacity = 0.6
        self.inverted = False  # display only: white on black becomes black on white
        self.transform = ViewTransform()  # display only: the reviewer's rotation and flip
        self.hide_identifiers = False  # the privacy switch of the corner text
        self.show_corner_text = True
        self.measure_mode = False
        self.spacing: PixelSpacing | None = None
        self.measurements: list[Measurement] = []
        self._measuring: tuple[QPointF, QPointF] | None = None  # image points while dragging

    # --- state --------------------------------------------------------------------------
    def set_image(self, image: MedicalImage | None, frame: int = 0) -> None:
        self.image = image
        self.frame = 0
        self.use_voi_lut = False
        self._zoom = None
        self._render_key = None
        self._overlay = None
        self._overlay_rgb = None
        self._overlay_shown = None
        self.transform = ViewTransform()
        self.measurements = []
        self._measuring = None
        self.spacing = pixel_spacing(image) if image is not None else None
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

    def set_transform(self, transform: ViewTransform) -> None:
        """Rotate/flip the display; the view shows the whole image again."""
        if transform == self.transform:
            return
        self.transform = transform
        self._render_key = None
        self.set_overlay(self._overlay_rgb, self.overlay_opacity)
        self.set_zoom(None)

    def rotate(self, degrees: int) -> None:
        self.set_transform(self.transform.rotated(degrees))

    def flip(self, horizontal: bool = True) -> None:
        t = self.transform
        self.set_transform(t.flipped_horizontally() if horizontal else t.flipped_vertically())

    def set_hide_identifiers(self, hide: bool) -> None:
        self.hide_identifiers = bool(hide)
        self.update()

    def set_measure_mode(self, on: bool) -> None:
        self.measure_mode = bool(on)
        self.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)

    def clear_measurements(self) -> None:
        self.measurements = []
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
        return self.transform.shape(*self._oriented_shape())

    def _oriented_shape(self) -> tuple[int, int]:
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
        self._overlay_rgb = rgb
        self._overlay_shown = None
        if rgb is not None and self.image is not None:
            from ...imaging.display import orient

            # a view, not a copy: only the part the screen shows becomes a QImage
            self._overlay_shown = self.transform.apply(orient(rgb, self.image.orientation))
        self._overlay = None
        self._overlay_step = 0
        self._ensure_overlay(self._step())
        self.overlay_opacity = opacity
        self.update()

    def _ensure_overlay(self, step: int) -> None:
        """The overlay as a QImage sampled like the image (every ``step``-th pixel): a
        full-size one scaled at every paint cost a mammogram's view seconds."""
        shown = self._overlay_shown
        if shown is None:
            self._overlay = None
        elif self._overlay is None or step != self._overlay_step:
            self._overlay = numpy_to_qimage(shown[::step, ::step] if step > 1 else shown)
            self._overlay_step = step

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
        key = (id(self.image), self.frame, w, self.use_voi_lut, step, self.inverted,
               self.transform)
        if key == self._render_key and self._qimage is not None:
            return
        self._rendered = render(self.image, self.frame, w, use_voi_lut=self.use_voi_lut,
                                step=step, gray=True)
        if not self.transform.is_identity:
            self._rendered = self.transform.apply(self._rendered)
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
        self._ensure_overlay(self._step())
        target = self.image_rect()
        zoomed_in = self.zoom >= 1.0
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not zoomed_in)
        p.drawImage(target, self._qimage, QRectF(self._qimage.rect()))
        if self._overlay is not None and self.overlay_opacity > 0:
            p.setOpacity(self.overlay_opacity)
            p.drawImage(target, self._overlay, QRectF(self._overlay.rect()))
            p.setOpacity(1.0)
        self._draw_overlay(p)

    def corner_lines(self) -> dict[str, list[str]]:
        """The corner text as drawn: the header's (imaging.corner_text) and the view's own
        state (window, zoom, frame, display changes) bottom left."""
        from ...imaging.corner_text import corner_text

        img, w = self.image, self.window
        corners = corner_text(img, hide_identifiers=self.hide_identifiers)
        state = []
        if img.n_frames > 1:
            state.append(f"frame {self.frame + 1}/{img.n_frames}")
        if self.use_voi_lut:
            state.append("W/L: VOI LUT (file)")
        elif w is not None:
            state.append(f"W {w.width:.6g}  L {w.center:.6g}")
        state.append(f"zoom {self.zoom * 100:.0f}%")
        shown = [s for s in ("inverted" if self.inverted else "", self.transform.describe())
                 if s]
        if shown:
            state.append("display " + ", ".join(shown))
        corners["bottom-left"] = state
        return corners

    def mm_per_screen_pixel(self) -> float | None:
        """Millimetres per screen pixel along the screen's x axis (None: no spacing)."""
        if self.spacing is None:
            return None
        # turned by 90°, the screen's x axis runs down the stored columns
        along_x = self.spacing.row_mm if self.transform.rotation in (90, 270) \
            else self.spacing.col_mm
        return along_x / self.zoom

    def _draw_overlay(self, p: QPainter) -> None:
        rect = QRectF(self.rect())
        if self.show_corner_text:
            draw_corners(p, rect, self.corner_lines())
        mm = self.mm_per_screen_pixel()
        if mm is not None:
            draw_scale_bar(p, rect, mm, self.spacing)
        for m in self.measurements:
            a, b = (self.image_to_widget(self.stored_to_view(*pt)) for pt in (m.start, m.end))
            draw_measurement(p, a, b, m.label)
        if self._measuring is not None:
            a, b = self._measuring
            m = self.measure(a, b)
            draw_measurement(p, self.image_to_widget(a), self.image_to_widget(b), m.label)

    # --- measurement ------------------------------------------------------------------------
    def view_to_stored(self, point: QPointF) -> tuple[float, float]:
        """A point of the shown image (view pixels, continuous) as (x, y) on the stored
        grid: through the reviewer's rotation/flip, then the EXIF orientation."""
        rows, cols = self._oriented_shape()
        x, y = self.transform.to_oriented(point.x(), point.y(), rows, cols)
        o = self.image.orientation
        if o == 1:
            return x, y
        # the EXIF map of whole pixels is affine on pixel centres: extend it to the plane
        from ...imaging.display import display_to_stored

        g = [display_to_stored(r, c, self.image.rows, self.image.columns, o)
             for r, c in ((0, 0), (0, 1), (1, 0))]
        u, v = x - 0.5, y - 0.5
        row = g[0][0] + (g[1][0] - g[0][0]) * u + (g[2][0] - g[0][0]) * v
        col = g[0][1] + (g[1][1] - g[0][1]) * u + (g[2][1] - g[0][1]) * v
        return col + 0.5, row + 0.5

    def stored_to_view(self, x: float, y: float) -> QPointF:
        """Inverse of :meth:`view_to_stored` (for drawing measurements)."""
        # the map view -> stored is affine (turns and flips): solve it from three points
        o = QPointF(0, 0)
        p0, px, py = (self.view_to_stored(q) for q in (o, QPointF(1, 0), QPointF(0, 1)))
        ax, ay = px[0] - p0[0], px[1] - p0[1]
        bx, by = py[0] - p0[0], py[1] - p0[1]
        det = ax * by - ay * bx or 1.0
        dx, dy = x - p0[0], y - p0[1]
        return QPointF((dx * by - dy * bx) / det, (ax * dy - ay * dx) / det)

    def show_region(self, col: int, row: int, cols: int, rows: int,
                    margin: float = 3.0) -> None:
        """Zoom to a box of the stored grid (with room around it) and centre it."""
        corners = [self.stored_to_view(x, y) for x, y in
                   ((col, row), (col + cols, row + rows))]
        w = abs(corners[1].x() - corners[0].x()) or 1.0
        h = abs(corners[1].y() - corners[0].y()) or 1.0
        zoom = min(self.width() / (w * margin), self.height() / (h * margin), 16.0)
        self._zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
        self._center = (corners[0] + corners[1]) / 2
        self.zoomChanged.emit(self._zoom)
        self.viewChanged.emit(self._zoom, self._center.x(), self._center.y())
        self.update()

    def image_to_widget(self, point: QPointF) -> QPointF:
        z = self.zoom
        return QPointF((point.x() - self._center.x()) * z + self.width() / 2,
                       (point.y() - self._center.y()) * z + self.height() / 2)

    def measure(self, a: QPointF, b: QPointF) -> Measurement:
        """The distance between two points of the shown image, computed on the stored grid
        (so rotation and flip never change it), in mm where the header gives the spacing."""
        (x0, y0), (x1, y1) = self.view_to_stored(a), self.view_to_stored(b)
        pixels = math.hypot(x1 - x0, y1 - y0)
        mm = self.spacing.distance_mm(y1 - y0, x1 - x0) if self.spacing else None
        return Measurement((x0, y0), (x1, y1), pixels, mm)

    def add_measurement(self, a: QPointF, b: QPointF) -> Measurement:
        m = self.measure(a, b)
        self.measurements.append(m)
        self.update()
        return m

    # --- mouse ------------------------------------------------------------------------------
    def mousePressEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if self.image is None:
            return
        self._drag_button = e.button()
        self._drag_last = e.position()
        if e.button() == Qt.MouseButton.LeftButton and (
                self.measure_mode or e.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            start = self.widget_to_image(e.position())
            self._measuring = (start, start)
        e.accept()

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if e.button() == self._drag_button:
            self._drag_button = None
            if self._measuring is not None:
                a, b = self._measuring
                self._measuring = None
                if a != b:
                    m = self.add_measurement(a, b)
                    self.cursorInfo.emit(f"distance {m.label}")
                self.update()

    def mouseDoubleClickEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        self.set_zoom(None)

    def mouseMoveEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        pos = e.position()
        if self.image is not None and self._drag_button is not None:
            d = pos - self._drag_last
            self._drag_last = pos
            if self._measuring is not None:
                self._measuring = (self._measuring[0], self.widget_to_image(pos))
                self.update()
            elif self._drag_button == Qt.MouseButton.LeftButton:
                self._drag_window(d.x(), d.y())
            elif self._drag_button == Qt.MouseButton.MiddleButton:
                self._pan(d.x(), d.y())
            elif self._drag_button == Qt.MouseButton.RightButton:
                self.set_zoom(self.zoom * math.exp(-d.y() / 150.0))
        self._report_cursor(pos)

    def _pan(self, dx: float, dy: float) -> None:
        """Move the image by (dx, dy) screen pixels; linked views follow."""
        z = self.zoom
        if self._zoom is None:
            self._zoom = z
        self._center -= QPointF(dx / z, dy / z)
        self.viewChanged.emit(self._zoom, self._center.x(), self._center.y())
        self.update()

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
        h, w = self.display_shape()
        if not (0 <= image_point.y() < h and 0 <= image_point.x() < w):
            return ""
        x, y = self.view_to_stored(image_point)
        r = min(max(int(math.floor(y)), 0), img.rows - 1)
        c = min(max(int(math.floor(x)), 0), img.columns - 1)
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
