"""Original and suspect side by side: zoom, pan and window/level move together; an overlay
on the suspect (absolute or signed difference, SSIM) with an opacity slider; the
difference statistics. Maps are computed off the GUI thread and cached per pair."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRunnable, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from .image_view import ImageView

OVERLAYS = ("none", "absolute difference", "signed difference", "SSIM (dark = dissimilar)")


class MapSignals(QObject):
    ready = Signal(object, object)  # key, {"maps": {...}, "stats": {...}}
    failed = Signal(str)


class MapTask(QRunnable):
    """Difference maps and statistics of one pair of images (stored values, frame 0)."""

    def __init__(self, key: tuple, reference: Any, suspect: Any) -> None:
        super().__init__()
        self.key, self.reference, self.suspect = key, reference, suspect
        self.signals = MapSignals()
        self.setAutoDelete(False)

    def run(self) -> None:
        try:
            from ..analysis.difference import (
                abs_difference,
                difference_stats,
                signed_difference,
                ssim_map,
            )

            a, b = np.asarray(self.reference.frame(0)), np.asarray(self.suspect.frame(0))
            if a.shape != b.shape:
                raise ValueError(f"the images differ in size ({a.shape} vs {b.shape})")
            lo, hi = self.reference.value_range()
            data_range = max(hi - lo, 1.0)
            maps = {"absolute difference": abs_difference(a, b),
                    "signed difference": signed_difference(a, b),
                    "SSIM (dark = dissimilar)": ssim_map(a, b, data_range)}
            self.signals.ready.emit(self.key, {"maps": maps,
                                               "stats": difference_stats(a, b, data_range)})
        except Exception as exc:  # shown in the panel; the window keeps working
            self.signals.failed.emit(str(exc))


def colour_map(kind: str, m: np.ndarray) -> np.ndarray:
    """A map as RGB: inferno for magnitudes, a blue-white-red diverging map for signed
    differences, inverted grey for SSIM."""
    import cv2

    from ..analysis.perturbation import heatmap_rgb

    if kind == "signed difference":
        top = float(np.abs(m).max()) or 1.0
        t = np.clip(m / top, -1, 1)
        r = np.where(t > 0, 1.0, 1 + t)
        b = np.where(t < 0, 1.0, 1 - t)
        g = 1 - np.abs(t)
        return (np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)
    if kind.startswith("SSIM"):
        level = (np.clip(m, 0, 1) * 255).astype(np.uint8)
        return cv2.cvtColor(level, cv2.COLOR_GRAY2RGB)
    top = float(np.percentile(m, 99.9)) or float(m.max()) or 1.0
    return heatmap_rgb(m, scale=top)[0]


class ComparisonView(QWidget):
    def __init__(self, pool: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.left, self.right = ImageView(), ImageView()
        self.left.placeholder = "Reference (original)"
        self.right.placeholder = "Suspect"
        self.reference_box = QComboBox()
        self.overlay_box = QComboBox()
        self.overlay_box.addItems(OVERLAYS)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.stats_label = QLabel("Choose a reference to compare the current image with.")
        self.stats_label.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Reference"))
        top.addWidget(self.reference_box, 2)
        top.addWidget(QLabel("Overlay"))
        top.addWidget(self.overlay_box, 1)
        top.addWidget(QLabel("Opacity"))
        top.addWidget(self.opacity, 1)
        views = QHBoxLayout()
        views.addWidget(self.left)
        views.addWidget(self.right)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(views, 1)
        layout.addWidget(self.stats_label)
        self.cache: dict[tuple, dict] = {}
        self.pending: dict[tuple, MapTask] = {}
        self.key: tuple | None = None
        # move together: each view follows the other (set_view ignores no-op updates)
        self.left.viewChanged.connect(self.right.set_view)
        self.right.viewChanged.connect(self.left.set_view)
        self.left.windowChanged.connect(lambda w: self._sync_window(self.right, w))
        self.right.windowChanged.connect(lambda w: self._sync_window(self.left, w))
        self.overlay_box.currentIndexChanged.connect(lambda _i: self._apply_overlay())
        self.opacity.valueChanged.connect(lambda _v: self._apply_overlay())

    @staticmethod
    def _sync_window(view: ImageView, window: Any) -> None:
        if view.image is not None and view.window != window:
            view.set_window(window)

    def compare(self, ref_path: str, reference: Any, sus_path: str, suspect: Any) -> None:
        self.left.set_image(reference)
        self.right.set_image(suspect)
        self.key = (ref_path, sus_path)
        if self.key in self.cache:
            self._show(self.key, self.cache[self.key])
            return
        self.stats_label.setText("Computing difference maps…")
        task = MapTask(self.key, reference, suspect)
        task.signals.ready.connect(self._show)
        task.signals.failed.connect(self.stats_label.setText)
        self.pending[self.key] = task
        self.pool.start(task, 1)

    def _show(self, key: tuple, result: dict) -> None:
        self.pending.pop(key, None)
        self.cache[key] = result
        if key != self.key:
            return
        s = result["stats"]
        box = s["bounding_box"]
        where = (f"in rows {box['row']}–{box['row'] + box['rows'] - 1}, columns "
                 f"{box['col']}–{box['col'] + box['cols'] - 1}" if box else "none")
        self.stats_label.setText(
            f"L∞ {s['linf']:.6g}   L2 {s['l2']:.6g}   PSNR {s['psnr']:.2f} dB   "
            f"SSIM {s['ssim']:.4f}   changed pixels {s['changed_pixels']} ({where})")
        self._apply_overlay()

    def _apply_overlay(self) -> None:
        kind = self.overlay_box.currentText()
        result = self.cache.get(self.key) if self.key else None
        if kind == "none" or result is None:
            self.right.set_overlay(None)
            return
        self.right.set_overlay(colour_map(kind, result["maps"][kind]),
                               self.opacity.value() / 100)

    def stats(self) -> dict | None:
        result = self.cache.get(self.key) if self.key else None
        return result["stats"] if result else None
