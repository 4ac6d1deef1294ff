"""Original and suspect side by side: zoom, pan and window/level move together; an overlay
on either image or both (absolute or signed difference, SSIM, the model's saliency, a
detector's evidence) with an opacity slider; the difference statistics. Maps are computed
off the GUI thread and cached (per pair, or per image and model for saliency)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from ...session.jobs import Job, JobFailed
from ..jobs import JobRunner
from .image_view import ImageView
from .map_view import ColourBar
from .overlay_maps import (
    DIFFERENCES,
    EVIDENCE,
    OVERLAYS,
    SALIENCY,
    SIDES,
    SSIM,
    colour_map,
    fit_to,
    map_scale,
    with_levels,
)

KEPT_FRAMES = 4  # per compared pair, the frames whose maps stay cached

if TYPE_CHECKING:  # numpy loads with the first image, not with the window
    import numpy as np


def difference_maps(key: tuple, reference: Any, suspect: Any, frame: int = 0,
                    changed: list[int] | None = None) -> Job:
    """Difference maps and statistics of one pair of images at one frame (stored values),
    and how many pixels changed in each of their frames (``changed`` when the pair's
    frames were already counted: it does not depend on the frame shown)."""

    def work(_job: Job) -> dict:

        import numpy as np

        from ...analysis.difference import (
            abs_difference,
            changed_per_frame,
            difference_stats,
            signed_difference,
            ssim_map,
        )

        if reference.n_frames != suspect.n_frames:
            raise JobFailed(f"the images differ in their number of frames "
                            f"({reference.n_frames} vs {suspect.n_frames})")
        a, b = np.asarray(reference.frame(frame)), np.asarray(suspect.frame(frame))
        if a.shape != b.shape:
            raise JobFailed(f"the images differ in size ({a.shape} vs {b.shape})")
        lo, hi = reference.value_range()
        data_range = max(hi - lo, 1.0)
        maps = {"absolute difference": abs_difference(a, b),
                "signed difference": signed_difference(a, b),
                SSIM: ssim_map(a, b, data_range)}
        stats = difference_stats(a, b, data_range)
        stats["frame"] = frame
        stats["changed_per_frame"] = changed if changed is not None else changed_per_frame(
            reference, suspect)
        return {"maps": maps, "stats": stats}

    return Job("difference maps", work)


def saliency_map(model: Any, image: Any, method: str) -> Job:
    """The model's saliency map of one image (frame 0)."""

    def work(_job: Job) -> Any:
        from ...analysis.saliency import saliency

        try:
            return saliency(model, image, method)
        except Exception as exc:
            raise JobFailed(f"{method}: {exc}") from None

    return Job(method, work)


class ComparisonView(QWidget):
    def __init__(self, runner: JobRunner,
                 model_provider: Callable[[], tuple[Any, str]] | None = None,
                 evidence_provider: Callable[[str], dict[str, Any]] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.model_provider = model_provider or (lambda: (None, ""))
        # a detector's evidence maps of an image, by detector, from that image's session
        self.evidence_provider = evidence_provider or (lambda _path: {})
        self.left, self.right = ImageView(), ImageView()
        self.left.placeholder = "Reference (original)"
        self.right.placeholder = "Suspect"
        self.reference_box = QComboBox()
        self.overlay_box = QComboBox()
        self.overlay_box.addItems(OVERLAYS)
        # detector names are long ("evidence: transform-instability"): never cut them off
        self.overlay_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.side_box = QComboBox()
        self.side_box.addItems(SIDES)
        self.side_box.setToolTip("Which image the overlay is drawn on")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.setSingleStep(1)
        self.opacity.setPageStep(5)
        # wide enough to set by hand at the default window size (it was squashed to 12 px)
        self.opacity.setMinimumWidth(160)
        self.opacity_label = QLabel("60%")
        self.colour_bar = ColourBar()
        self._scale: tuple[str, Any] | None = None  # (overlay kind, its colour scale)
        self.stats_label = QLabel("Choose a reference to compare the current image with.")
        self.stats_label.setWordWrap(True)
        self.overlay_label = QLabel("")
        self.overlay_label.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Reference"))
        top.addWidget(self.reference_box, 2)
        top.addWidget(QLabel("Overlay"))
        top.addWidget(self.overlay_box, 2)
        top.addWidget(QLabel("on"))
        top.addWidget(self.side_box)
        second = QHBoxLayout()  # its own row: the slider gets a usable width
        second.addWidget(QLabel("Opacity"))
        second.addWidget(self.opacity, 1)
        second.addWidget(self.opacity_label)
        second.addWidget(self.colour_bar, 3)
        self.header = QLabel("Compare the current image with a reference (the signed "
                             "original, or any other open image).")
        self.header.setStyleSheet("font-weight: bold;")
        self.header.setWordWrap(True)
        views = QHBoxLayout()
        views.addWidget(self.left)
        views.addWidget(self.right)
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addLayout(top)
        layout.addLayout(second)
        layout.addLayout(views, 1)
        layout.addWidget(self.stats_label)
        layout.addWidget(self.overlay_label)
        self.cache: dict[tuple, Any] = {}  # pair maps and per-image saliency
        self.pending: set[tuple] = set()
        self.errors: dict[tuple, str] = {}
        self.key: tuple | None = None  # (reference path, suspect path)
        self.frame = 0  # the frame both sides show, and the maps and statistics are of
        self.paths: dict[ImageView, str] = {}
        # move together: each view follows the other (set_view ignores no-op updates)
        self.left.viewChanged.connect(self.right.set_view)
        self.right.viewChanged.connect(self.left.set_view)
        self.left.windowChanged.connect(lambda w: self._sync_window(self.right, w))
        self.right.windowChanged.connect(lambda w: self._sync_window(self.left, w))
        self.overlay_box.currentIndexChanged.connect(lambda _i: self._apply_overlay())
        self.side_box.currentIndexChanged.connect(lambda _i: self._apply_overlay())
        self.opacity.valueChanged.connect(self._set_opacity)
        self.right.windowChanged.connect(lambda _w: self._update_scale())
        # one frame on both sides (the wheel steps frames): never frame 51 of the suspect
        # beside frame 1 of the reference, nor frame 1's maps over frame 51
        self.left.frameChanged.connect(lambda i: self._follow_frame(self.right, i))
        self.right.frameChanged.connect(lambda i: self._follow_frame(self.left, i))

    def _pair_key(self) -> tuple | None:
        """The cache key of the pair at the frame shown."""
        return (*self.key, self.frame) if self.key else None

    def _follow_frame(self, other: ImageView, index: int) -> None:
        if other.image is not None and other.frame != index:
            other.set_frame(index)
        if self.key is None or index == self.frame:
            return
        self.frame = index
        key = self._pair_key()
        if key in self.cache:
            self._show(key, self.cache[key])
            return
        self.stats_label.setText(f"Computing difference maps of frame {index + 1}…")
        self._apply_overlay()  # the last frame's maps come off at once
        counted = next((r["stats"]["changed_per_frame"] for k, r in self.cache.items()
                        if len(k) == 3 and k[:2] == self.key), None)
        self._start(key, difference_maps(key, self.left.image, self.right.image, index,
                                         counted))

    @staticmethod
    def _sync_window(view: ImageView, window: Any) -> None:
        if view.image is not None and view.window != window:
            view.set_window(window)

    # --- bound to the study -----------------------------------------------------------------
    def fill_references(self, study: Any) -> None:
        """Offer every other decoded image of the study as the reference."""
        box = self.reference_box
        current = box.currentData()
        box.blockSignals(True)
        box.clear()
        for s in study.decoded():
            if s is not study.current:
                box.addItem(s.name, s.path)
        if current is not None and box.findData(current) >= 0:
            box.setCurrentIndex(box.findData(current))
        box.blockSignals(False)

    def show_session(self, study: Any, session: Any) -> None:
        """The pair ``session`` was last compared in, or an empty tab naming it."""
        if session is not None and session.comparison_reference:
            self.compare_session(study, session, session.comparison_reference)
        else:
            self.clear(f"Compare {session.name} with a reference (the signed original, or "
                       "any other open image)." if session else "No image open.")

    def compare_session(self, study: Any, session: Any, reference_path: str | None) -> bool:
        """Compare ``session``'s image with a reference; the choice is kept in the session
        so that coming back to the image shows the same pair."""
        ref = study.get(reference_path or self.reference_box.currentData())
        if session is None or ref is None or ref.image is None or session.image is None:
            return False
        if session.comparison_reference != ref.path:
            session.set_comparison_reference(ref.path)
        self.compare(ref.path, ref.image, session.path, session.image)
        return True

    def show_region(self, region: Any) -> None:
        """Both sides zoomed to a changed region (session.changed_region.ChangedRegion)."""
        if self.right.image is not None and region.pixels:
            self.right.show_region(region.col, region.row, region.cols, region.rows)

    def clear(self, message: str) -> None:
        """No pair shown (the current image has no comparison yet): say so."""
        self.paths, self.key = {}, None  # first: changing a side is not a frame step
        self.left.set_image(None)
        self.right.set_image(None)
        self.header.setText(message)
        self.stats_label.setText("")
        self.overlay_label.setText("")
        self._refresh_overlay_choices()

    def compare(self, ref_path: str, reference: Any, sus_path: str, suspect: Any) -> None:
        self.header.setText(f"Suspect {Path(sus_path).name} (right) against reference "
                            f"{Path(ref_path).name} (left)")
        self.key = None  # while the sides change, their frame signals are not frame steps
        self.left.set_image(reference)
        self.right.set_image(suspect)
        self.paths = {self.left: ref_path, self.right: sus_path}
        self.key, self.frame = (ref_path, sus_path), 0  # set_image showed frame 1
        self._refresh_overlay_choices()
        key = self._pair_key()
        if key in self.cache:
            self._show(key, self.cache[key])
            return
        self.stats_label.setText("Computing difference maps…")
        self._start(key, difference_maps(key, reference, suspect))

    def _start(self, key: tuple, job: Job) -> None:
        job.on_result = lambda result: self._show(key, result)
        job.on_error = lambda message: self._failed(key, message)
        self.pending.add(key)
        self.errors.pop(key, None)
        self.runner.start(job, priority=1)

    def _failed(self, key: tuple, message: str) -> None:
        self.pending.discard(key)
        self.errors[key] = message
        if key == self._pair_key():
            self.stats_label.setText(message)
        else:
            self._apply_overlay()

    def _show(self, key: tuple, result: Any) -> None:
        self.pending.discard(key)
        if len(key) == 3:  # a pair at one frame: three maps of a frame's size each, so
            # stepping through a 120-frame cine kept 440 MB; the last few frames are kept
            older = [k for k in self.cache if len(k) == 3 and k[:2] == key[:2] and k != key]
            for k in older[:-KEPT_FRAMES + 1]:
                del self.cache[k]
        self.cache[key] = result
        if key == self._pair_key():
            self._show_stats(result["stats"])
        self._apply_overlay()

    def _show_stats(self, s: dict) -> None:
        from ...analysis.difference import frames_summary

        box = s["bounding_box"]
        where = (f"in rows {box['row']}–{box['row'] + box['rows'] - 1}, columns "
                 f"{box['col']}–{box['col'] + box['cols'] - 1}" if box else "none")
        frames = frames_summary(s["changed_per_frame"], s["frame"])
        self.stats_label.setText(
            (f"Frame {s['frame'] + 1}: " if frames else "")
            + f"L∞ {s['linf']:.6g}   L2 {s['l2']:.6g}   PSNR {s['psnr']:.2f} dB   "
            f"SSIM {s['ssim']:.4f}   changed pixels {s['changed_pixels']} ({where})"
            + (f"\nAll frames: {frames}" if frames else ""))

    # --- detector evidence ---------------------------------------------------------------
    def evidence_changed(self, path: str) -> None:
        """A detector finished on ``path``: offer its map if that image is shown."""
        if path in self.paths.values():
            self._refresh_overlay_choices()

    def show_evidence(self, detector: str) -> bool:
        """Select a detector's evidence overlay (on the side(s) that have it)."""
        index = self.overlay_box.findText(EVIDENCE + detector)
        if index < 0:
            return False
        sides = [s for v, s in ((self.right, "suspect"), (self.left, "reference"))
                 if detector in self.evidence_provider(self.paths.get(v, ""))]
        self.side_box.setCurrentText("both" if len(sides) == 2 else sides[0])
        self.overlay_box.setCurrentIndex(index)
        return True

    def _refresh_overlay_choices(self) -> None:
        names = sorted({n for p in self.paths.values() for n in self.evidence_provider(p)})
        wanted = [*OVERLAYS, *(EVIDENCE + n for n in names)]
        current = self.overlay_box.currentText()
        if [self.overlay_box.itemText(i) for i in range(self.overlay_box.count())] == wanted:
            return
        self.overlay_box.blockSignals(True)
        self.overlay_box.clear()
        self.overlay_box.addItems(wanted)
        self.overlay_box.setCurrentText(current if current in wanted else "none")
        self.overlay_box.blockSignals(False)
        self._apply_overlay()

    # --- overlays --------------------------------------------------------------------------
    def _views(self) -> list[ImageView]:
        side = self.side_box.currentText()
        return {"suspect": [self.right], "reference": [self.left]}.get(
            side, [self.left, self.right])

    def _map_for(self, view: ImageView, kind: str) -> tuple[np.ndarray | None, str]:
        """The stored-grid map of ``kind`` for the image in ``view``, and a note (what is
        shown, or why nothing is)."""
        path, image = self.paths.get(view, ""), view.image
        if image is None:
            return None, ""
        if kind in DIFFERENCES:
            result = self.cache.get(self._pair_key()) if self.key else None
            return (result["maps"][kind], "") if result else (None, "")
        if view.frame != 0:  # evidence and saliency are of the first frame
            return None, (f"{kind} is of frame 1; frame {view.frame + 1} is shown")
        if kind.startswith(EVIDENCE):
            name = kind[len(EVIDENCE):]
            m = self.evidence_provider(path).get(name)
            if m is None:
                return None, f"{name} has no evidence for {Path(path).name}"
            return fit_to(m, (image.rows, image.columns)), f"{name} on {Path(path).name}"
        method = SALIENCY[kind]
        model, model_name = self.model_provider()
        if model is None:
            return None, "Load a model in the Model dock to see its saliency."
        key = ("saliency", path, model_name, method)
        if key in self.errors:
            return None, self.errors[key]
        result = self.cache.get(key)
        if result is None:
            if key not in self.pending:
                self._start(key, saliency_map(model, image, method))
            return None, f"Computing {method} of {model_name} on {Path(path).name}…"
        return result.map, (f"{method} of {model_name} on {Path(path).name}: explains "
                            f"{result.class_name} ({result.probability:.1%})")

    def _set_opacity(self, value: int) -> None:
        """Only the blend changes: the coloured maps are kept."""
        self.opacity_label.setText(f"{value}%")
        for view in (self.left, self.right):
            if view._overlay is not None:
                view.overlay_opacity = value / 100
                view.update()

    def _apply_overlay(self) -> None:
        kind = self.overlay_box.currentText()
        notes = []
        shown = self._views() if kind != "none" else []
        maps = {}
        for view in (self.left, self.right):
            m, note = self._map_for(view, kind) if view in shown else (None, "")
            if note:
                notes.append(note)
            if m is not None:
                maps[view] = m
        # both sides on one scale: the same colour means the same value left and right
        self._scale = (kind, map_scale(kind, list(maps.values()))) if maps else None
        top = self._scale[1].high if maps else None
        for view in (self.left, self.right):
            m = maps.get(view)
            view.set_overlay(None if m is None else colour_map(kind, m, top),
                             self.opacity.value() / 100)
        self._update_scale()
        self.overlay_label.setText("   ".join(dict.fromkeys(notes)))

    def _update_scale(self) -> None:
        """The colour bar for the current window (called on every window/level move: only
        the display-levels arithmetic, never a pass over the maps)."""
        if self._scale is None:
            self.colour_bar.set_scale(None)
            return
        kind, scale = self._scale
        image = self.right.image
        slope = 1.0
        if image is not None:  # a stored-value step in output units (HU for CT)
            vt = image.value_transform(0)
            slope = 1.0 if vt.is_identity else float(vt.apply(1.0) - vt.apply(0.0))
        window = None if self.right.use_voi_lut else self.right.window
        self.colour_bar.set_scale(with_levels(scale, kind, window, slope))

    def stats(self) -> dict | None:
        """The statistics of the frame shown (None while they are computed)."""
        result = self.cache.get(self._pair_key()) if self.key else None
        return result["stats"] if result else None
