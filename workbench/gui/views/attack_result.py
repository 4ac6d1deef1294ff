"""Original, adversarial and perturbation heatmap side by side, with the predictions: the
attack result of the current image session, under a header naming that image."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from .image_view import numpy_to_qimage

if TYPE_CHECKING:  # numpy loads with the first image, not with the window
    import numpy as np


class ScaledImage(QLabel):
    """A picture that keeps its aspect ratio as the panel resizes."""

    def __init__(self) -> None:
        super().__init__()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setStyleSheet("background: #0c0c0e;")
        self._pixmap: QPixmap | None = None
        self.array: np.ndarray | None = None

    def clear(self) -> None:
        self.array = None
        self._pixmap = None
        super().clear()

    def set_array(self, rgb: np.ndarray) -> None:
        self.array = rgb
        self._pixmap = QPixmap.fromImage(numpy_to_qimage(rgb))
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is not None:
            self.setPixmap(self._pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, e) -> None:  # noqa: N802
        self._rescale()
        super().resizeEvent(e)


class AttackResultView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.original, self.adversarial, self.heatmap = ScaledImage(), ScaledImage(), ScaledImage()
        self.titles = [QLabel(), QLabel(), QLabel()]
        self.captions = [QLabel(), QLabel(), QLabel()]
        grid = QGridLayout()
        for col, (img, title, cap) in enumerate(zip(
                (self.original, self.adversarial, self.heatmap), self.titles, self.captions,
                strict=True)):
            title.setStyleSheet("font-weight: bold;")
            cap.setWordWrap(True)
            grid.addWidget(title, 0, col)
            grid.addWidget(img, 1, col)
            grid.addWidget(cap, 2, col)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(70)
        self.opacity.setObjectName("heatmap_opacity")
        self.save_button = QPushButton("Save adversarial image…")
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Heatmap opacity"))
        controls.addWidget(self.opacity, 1)
        controls.addWidget(self.save_button)
        self.header = QLabel("No image open.")
        self.header.setStyleSheet("font-weight: bold;")
        self.verdict = QLabel("Run an attack to see its result here.")
        self.verdict.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addWidget(self.verdict)
        layout.addLayout(grid, 1)
        layout.addLayout(controls)
        self.opacity.valueChanged.connect(self._update_heatmap)
        self._base: np.ndarray | None = None
        self._heat: np.ndarray | None = None
        self.result: Any = None  # the AttackRun shown
        self.source_path: str | None = None

    def show_session(self, session: Any) -> None:
        """Show the attack result of ``session`` (an ImageSession, or None), or say that
        there is none: never another image's result."""
        if session is None:
            self._clear("No image open.", "")
        elif session.attack is None:
            self._clear(f"Attack result — {session.name}",
                        f"No attack has been run on {session.name} yet.")
        else:
            self.show_result(session.path, session.attack)

    def _clear(self, header: str, message: str) -> None:
        self.result = self.source_path = None
        self._base = self._heat = None
        self.header.setText(header)
        self.verdict.setText(message)
        for img, title, cap in zip((self.original, self.adversarial, self.heatmap),
                                   self.titles, self.captions, strict=True):
            img.clear()
            title.setText("")
            cap.setText("")
        self.save_button.setEnabled(False)

    def show_result(self, path: str, result: Any) -> None:
        from pathlib import Path

        from ...analysis.perturbation import heatmap_rgb, perturbation_map, to_rgb8

        self.result, self.source_path = result, path
        self.header.setText(f"Attack result — {Path(path).name}")
        class_names = result.class_names
        outcome = result.outcome
        x = result.x
        adv = outcome.adversarial[0].numpy()
        diff = perturbation_map(x, adv)
        self._base = to_rgb8(adv)
        self._heat, top = heatmap_rgb(diff)
        self.original.set_array(to_rgb8(x))
        self.adversarial.set_array(self._base)
        self._update_heatmap()
        info = outcome.per_image(class_names)[0]
        patch = outcome.artifacts.get("patch")
        self.save_button.setEnabled(result.mapping is not None)

        def probs(d: dict) -> str:
            return ", ".join(f"{k} {v:.3f}" for k, v in d.items())

        # a model that does not fit the image gives classes, not a diagnosis: say so
        output = " (model output, not a diagnosis)" if result.fit_warning else ""
        if result.fit_warning:
            self.header.setText(f"Attack result — {Path(path).name}. ⚠ {result.fit_warning}")
        self.titles[0].setText(f"Original{output}: {info['clean_class']}")
        self.captions[0].setText(probs(info["clean_probabilities"]))
        self.titles[1].setText(f"Adversarial{output}: {info['adversarial_class']}")
        self.captions[1].setText(probs(info["adversarial_probabilities"]))
        self.titles[2].setText("Perturbation |adv − orig|")
        self.captions[2].setText(
            f"L∞ {info['linf']:.4f}, L2 {info['l2']:.3f}; full colour = {top:.4f} "
            f"(amplified {1 / top if top else 0:.0f}x)")
        flipped = "prediction changed" if info["clean_class"] != info["adversarial_class"] \
            else "prediction unchanged"
        ok = "succeeded" if info["success"] else "did not succeed"
        # Score-based attacks are judged by their queries; a plugin's notes say what it did.
        effort = (f"{info['queries']} queries" if info.get("queries") is not None else
                  f"{info['iterations'] or '-'} iteration(s)")
        notes = f"<br><i>{html.escape(outcome.notes)}</i>" if outcome.notes else ""
        self.verdict.setText(f"<b>{outcome.plugin}</b> on {path}: {ok} ({flipped}), "
                             f"{effort}, {outcome.seconds:.2f} s{notes}")
        if result.universal:
            rate = float(outcome.success.float().mean())
            where = outcome.artifacts.get("patch_path", "")
            self.verdict.setText(
                f"<b>{outcome.plugin}</b> over {result.n_images} image(s) "
                f"({outcome.seconds:.1f} s): success on {rate:.0%} of them; showing "
                f"{Path(path).name}. {'Patch saved to ' + str(where) if where else ''}")
            if patch is not None:  # the learned patch itself, in the third panel
                self.titles[2].setText("Learned patch")
                self.heatmap.set_array(to_rgb8(patch.detach().cpu().numpy()))
                self._heat = None
                self.captions[2].setText(f"{tuple(patch.shape[-2:])} px; apply it to any "
                                         "image with the apply-patch plugin")

    def _update_heatmap(self) -> None:
        from ...analysis.perturbation import overlay

        if self._base is not None and self._heat is not None:
            self.heatmap.set_array(overlay(self._base, self._heat, self.opacity.value() / 100))
