"""The Detector evidence tab: one detector's evidence map blended over the image it was
computed on, under a header naming both. Switching images shows that image's evidence
(the detector last looked at on it) or nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from .map_view import INFERNO, ArrayView, ColourBar, Scale
from .prepare import Preparer

if TYPE_CHECKING:  # numpy loads with the first image, not with the window
    import numpy as np


def evidence_layers(image: Any, frame: int, evidence: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The rendered image and the evidence heatmap, both upright as the reviewer sees
    them, the value drawn at full colour and the map's largest value."""
    import numpy as np

    from ...analysis.perturbation import heatmap_rgb
    from ...imaging.display import orient, render
    from .overlay_maps import fit_to

    base = render(image, frame, oriented=False)
    m = fit_to(evidence, base.shape[:2])
    # Sparse maps (residuals, error levels) are scaled at their 99.5th percentile so a few
    # extreme pixels do not turn the rest black.
    top = float(np.percentile(m, 99.5)) or float(m.max()) or 1.0
    heat, _ = heatmap_rgb(m, scale=top)
    # maps are on the stored grid: turn both upright together for the reviewer
    return (np.ascontiguousarray(orient(base, image.orientation)),
            np.ascontiguousarray(orient(heat, image.orientation)), top, float(m.max()))


class EvidenceView(QWidget):
    def __init__(self, runner: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # a large image's layers are made on the window's workers (runner), not in a slot
        self.preparer = Preparer("prepare the evidence map", runner)
        self.header = QLabel("No image open.")
        self.header.setStyleSheet("font-weight: bold;")
        self.header.setWordWrap(True)
        self.picture = ArrayView()
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.setMinimumWidth(160)
        self.opacity.valueChanged.connect(
            lambda v: (setattr(self.picture, "overlay_opacity", v / 100), self.picture.update()))
        self.colour_bar = ColourBar()
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Opacity"))
        controls.addWidget(self.opacity, 1)
        controls.addWidget(self.colour_bar, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addWidget(self.picture, 1)
        layout.addLayout(controls)
        self.shown: dict[str, str] = {}  # image path -> detector whose evidence was shown
        self.path: str | None = None

    @property
    def array(self) -> np.ndarray | None:
        return self.picture.array

    def show_session(self, session: Any) -> None:
        self.path = session.path if session is not None else None
        name = self.shown.get(self.path or "")
        if session is None:
            self._empty("No image open.")
        elif not self.show_detector(session, name):
            self._empty(f"Detector evidence — {session.name}: run the detectors and click a "
                        "row marked ▣ to see its map here.")

    def show_detector(self, session: Any, name: str | None) -> bool:
        """Show ``name``'s evidence on ``session``'s image, over its first frame, the one
        detectors examine; True when there is one to show (on a large image it lands a
        moment later, made on a worker)."""
        findings = session.findings
        out = findings.outcomes.get(name) if findings is not None and name else None
        if out is None or out.evidence is None or session.image is None:
            return False
        self.path = session.path
        self.shown[session.path] = name
        image, frame = session.image, 0  # whatever frame the Image tab shows
        title = f"Detector evidence — {name} on {session.name}" + (
            f", frame {frame + 1} of {image.n_frames}" if image.n_frames > 1 else "")

        def make() -> tuple[Any, ...]:  # on a worker for a large image: no Qt here
            return evidence_layers(image, frame, out.evidence)

        def show(layers: tuple[Any, ...]) -> None:
            base, heat, top, most = layers
            self.picture.set_array(base)
            self.picture.set_overlay(heat, self.opacity.value() / 100)
            self.colour_bar.set_scale(Scale(INFERNO, 0.0, top, f"{name} evidence, in the "
                                            "detector's own units", saturates=most > top,
                                            note="full colour at the map's 99.5th percentile"))
            self.header.setText(f"{title}: {out.explanation}")

        def waiting() -> None:
            self.picture.clear()
            self.colour_bar.set_scale(None)
            self.header.setText(f"{title}: preparing the map…")

        self.preparer.request((session.path, name, frame), image.rows * image.columns, make,
                              show, waiting=waiting,
                              failed=lambda message: self.header.setText(
                                  f"{title}: cannot show the map ({message})"))
        return True

    def _empty(self, message: str) -> None:
        self.preparer.forget()
        self.picture.clear()
        self.colour_bar.set_scale(None)
        self.header.setText(message)
