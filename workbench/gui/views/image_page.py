"""The Image tab: the image view, its frame slider for multi-frame images, and the
window presets of the toolbar (from the file, the data range, CT presets, custom)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from ...imaging import Window
from ...imaging.auto_window import auto_window, wants_auto_window
from ...imaging.presets import PRESETS_CT
from .image_view import ImageView

EMPTY = "Open a DICOM file or photo (File ▸ Open, or drop it here)"


class ImagePage(QWidget):
    windowText = Signal(str)  # "C … / W …" of the shown window

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = ImageView()
        self.frame_slider = QSlider(Qt.Orientation.Horizontal)
        self.frame_label = QLabel()
        self.frame_bar = QWidget()
        fl = QHBoxLayout(self.frame_bar)
        fl.setContentsMargins(6, 0, 6, 2)
        fl.addWidget(QLabel("Frame"))
        fl.addWidget(self.frame_slider, 1)
        fl.addWidget(self.frame_label)
        self.frame_bar.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.frame_bar)
        self.preset_box = QComboBox()  # lives in the window's toolbar
        self.preset_box.setMinimumContentsLength(22)
        self.view.windowChanged.connect(self._on_window_changed)
        self.view.frameChanged.connect(self._on_frame_changed)
        self.frame_slider.valueChanged.connect(self.view.set_frame)
        self.preset_box.activated.connect(self._on_preset)

    def show_image(self, image: Any, placeholder: str = "") -> None:
        """Show ``image``; with None, the view is empty and says ``placeholder`` (never
        the previous image under the new one's name)."""
        self.view.placeholder = placeholder or EMPTY
        self.view.set_image(image)
        if image is None:
            self.preset_box.clear()
            self.frame_bar.hide()
            return
        self._fill_presets(image)
        self.frame_bar.setVisible(image.n_frames > 1)
        self.frame_slider.blockSignals(True)
        self.frame_slider.setRange(0, image.n_frames - 1)
        self.frame_slider.setValue(0)
        self.frame_slider.blockSignals(False)
        self._on_frame_changed(0)

    def reset_window(self) -> None:
        if self.view.image is not None:
            self.view.set_window(self.view.image.default_window(self.view.frame))
            self.preset_box.setCurrentIndex(0)

    def _fill_presets(self, image: Any) -> None:
        box = self.preset_box
        box.clear()
        file_windows = image.windows(self.view.frame)
        if not file_windows and not image.has_voi_lut:
            w = image.default_window(self.view.frame)
            box.addItem(f"Default: {w.name} ({w.center:g}/{w.width:g})", ("window", w))
        for w in file_windows:
            box.addItem(f"From file: {w.name} ({w.center:g}/{w.width:g})", ("window", w))
        if image.has_voi_lut:
            box.addItem("From file: VOI LUT", ("voi", None))
        lo, hi = image.value_range()
        box.addItem("Full data range", ("window", Window((lo + hi) / 2, max(hi - lo, 1), "data")))
        auto, auto_index = None, box.count()
        if wants_auto_window(image):  # computed by the decode's worker for frame 0
            auto = auto_window(image, self.view.frame)
            box.addItem(f"Auto: 0.5–99.5 percentile ({auto.center:g}/{auto.width:g})",
                        ("window", auto))
        if not image.is_color:
            for w in PRESETS_CT:
                box.addItem(f"CT {w.name} ({w.width:g}/{w.center:g})", ("window", w))
        box.addItem("Custom", ("custom", None))
        box.setCurrentIndex(0)
        if auto is not None and not file_windows and not image.has_voi_lut:
            # a projection radiograph whose file states no window: the data range shows a
            # grey sheet (16-bit film scans), the percentile window shows the anatomy
            box.setCurrentIndex(auto_index)
            self.view.set_window(auto)

    def _on_preset(self, index: int) -> None:
        kind, window = self.preset_box.itemData(index) or (None, None)
        if kind == "window":
            self.view.set_window(window)
        elif kind == "voi":
            self.view.set_window(self.view.window or Window(0, 1), voi_lut=True)

    def _on_window_changed(self, w: Window) -> None:
        self.windowText.emit(f"C {w.center:.6g} / W {w.width:.6g}")
        if w.name == "custom" and self.preset_box.count():
            self.preset_box.setCurrentIndex(self.preset_box.count() - 1)

    def _on_frame_changed(self, index: int) -> None:
        image = self.view.image
        if image is None:
            return
        self.frame_label.setText(f"{index + 1} / {image.n_frames}")
        if self.frame_slider.value() != index:
            self.frame_slider.blockSignals(True)
            self.frame_slider.setValue(index)
            self.frame_slider.blockSignals(False)
