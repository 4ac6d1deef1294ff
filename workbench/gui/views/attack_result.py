"""Original, adversarial and perturbation heatmap side by side, with the predictions: the
attack result of the current image session, under a header naming that image. The three
views zoom and pan together (Ctrl+wheel, right drag; left drag pans), and the heatmap has
a colour bar in the model's input units and in 8-bit levels."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from .map_view import INFERNO, ArrayView, ColourBar, Scale, link_views
from .prepare import Preparer

if TYPE_CHECKING:  # numpy loads with the first image, not with the window
    import numpy as np


def prepare_result(result: Any) -> dict[str, Any]:
    """Everything the view shows of an attack run that takes numpy time: the original and
    adversarial renderings, the perturbation heatmap and its scale, the per-image figures.
    No Qt, so that it can run on a worker (seconds on a mammogram)."""
    from ...analysis.perturbation import heatmap_rgb, perturbation_map, to_rgb8

    outcome = result.outcome
    adv = outcome.adversarial[0].numpy()
    heat, top = heatmap_rgb(perturbation_map(result.x, adv))
    original, adversarial = to_rgb8(result.x), to_rgb8(adv)
    prepared = {"top": top, "heat": heat, "original": original, "adversarial": adversarial,
                "info": outcome.per_image(result.class_names)[0]}
    patch = outcome.artifacts.get("patch") if result.universal else None
    if patch is not None:
        prepared["patch"] = to_rgb8(patch.detach().cpu().numpy())
        prepared["patch_shape"] = tuple(patch.shape[-2:])
    return prepared


class AttackResultView(QWidget):
    def __init__(self, runner: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # a large image's arrays are made on the window's workers (runner), not in a slot
        self.preparer = Preparer("prepare the attack result", runner)
        self.original, self.adversarial, self.heatmap = ArrayView(), ArrayView(), ArrayView()
        link_views([self.original, self.adversarial, self.heatmap])
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
        self.opacity.setMinimumWidth(160)
        self.colour_bar = ColourBar()
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
        layout.addWidget(self.colour_bar)
        layout.addLayout(controls)
        self.opacity.valueChanged.connect(self._update_heatmap)
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
        self.preparer.forget()
        self.result = self.source_path = None
        self._heat = None
        self.colour_bar.set_scale(None)
        self.header.setText(header)
        self.verdict.setText(message)
        for img, title, cap in zip((self.original, self.adversarial, self.heatmap),
                                   self.titles, self.captions, strict=True):
            img.clear()
            title.setText("")
            cap.setText("")
        self.save_button.setEnabled(False)

    def show_result(self, path: str, result: Any) -> None:
        """Show ``result``, the attack run on the image at ``path``. A large image's
        arrays are made on a worker; meanwhile the view names the image and says so."""
        from pathlib import Path

        self._clear(f"Attack result — {Path(path).name}",
                    f"Preparing the attack result of {Path(path).name}…")
        x = result.x
        self.preparer.request(
            (path, result), int(x.shape[-1] * x.shape[-2]),
            lambda: prepare_result(result),
            lambda prepared: self._show_prepared(path, result, prepared),
            failed=lambda message: self.verdict.setText(
                f"Cannot show the attack result: {message}"))

    def _show_prepared(self, path: str, result: Any, prepared: dict[str, Any]) -> None:
        from pathlib import Path

        self.result, self.source_path = result, path
        frames = getattr(result.image, "n_frames", 1)
        # the attack perturbed one frame of a multi-frame image: name it
        name = Path(path).name + (f", frame {result.frame + 1} of {frames}" if frames > 1
                                  else "")
        self.header.setText(f"Attack result — {name}")
        outcome = result.outcome
        top = prepared["top"]
        self._heat = prepared["heat"]
        self.original.set_array(prepared["original"], keep_view=False)
        base = prepared["adversarial"]
        self.adversarial.set_array(base, keep_view=False)
        self.heatmap.set_array(base, keep_view=False)
        self._update_heatmap()
        self.colour_bar.set_scale(Scale(
            INFERNO, 0.0, top, "|adversarial − original| on the model's 0..1 input scale",
            note=f"= {top * 255:.3g} levels of 255; shown amplified "
                 f"{1 / top if top else 0:.0f}x"))
        info = prepared["info"]
        self.save_button.setEnabled(result.mapping is not None)

        def probs(d: dict) -> str:
            return ", ".join(f"{k} {v:.3f}" for k, v in d.items())

        # a model that does not fit the image gives classes, not a diagnosis: say so
        output = " (model output, not a diagnosis)" if result.fit_warning else ""
        if result.fit_warning:
            self.header.setText(f"Attack result — {name}. ⚠ {result.fit_warning}")
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
            patch = prepared.get("patch")
            if patch is not None:  # the learned patch itself, in the third panel
                self.titles[2].setText("Learned patch")
                self._heat = None
                self.heatmap.set_array(patch, keep_view=False)
                self.colour_bar.set_scale(None)
                self.captions[2].setText(f"{tuple(prepared['patch_shape'])} px; apply it to "
                                         "any image with the apply-patch plugin")

    def _update_heatmap(self) -> None:
        """The heatmap over the adversarial image at the slider's opacity (a blend only:
        the zoom and the colours stay)."""
        if self._heat is not None:
            self.heatmap.set_overlay(self._heat, self.opacity.value() / 100)
