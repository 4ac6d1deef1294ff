"""Calibrating a score-based detector on clean images to a chosen false-positive rate.

The threshold is the (1 - fpr) quantile of the detector's scores on a folder of clean
images, computed with numpy's default "linear" interpolation (Hyndman & Fan type 7:
between order statistics). A score above it is "suspicious": about ``fpr`` of images like
the calibration set will be flagged although clean. Only clean images are used: no
detector is trained on adversarial examples, so a threshold does not learn one attack.

What the threshold was measured on is saved with it (the pixel fingerprint of every
calibration image, the detector's name, version and parameters, the model, the date in
UTC) as JSON in ``WORKBENCH_HOME/calibration/<detector>.json``; an auditor can re-run it.
A threshold only applies to the same detector version, parameters and model:
:meth:`Calibration.applies_to` says whether it does.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import api
from ..imaging.colour_content import has_colour
from .detector_runner import DetectorCancelled, DetectorFailed, run_detector

DEFAULT_FPR = 0.05
QUANTILE_METHOD = "linear"  # numpy.quantile's default, Hyndman & Fan (1996) type 7
FORMAT = "workbench-calibration"


class CalibrationError(Exception):
    """The calibration cannot be made (not calibratable, too few usable clean images)."""


@dataclass
class Calibration:
    detector: str
    detector_version: str
    params: dict[str, Any]
    threshold: float
    fpr: float
    n: int
    quantile_method: str
    summary: dict[str, float]  # min, max, mean, std, median of the clean scores
    scores: list[float]
    fingerprints: list[dict[str, str]]  # {"path", "pixel_sha256"} per image used
    date: str  # UTC, ISO 8601
    model: str = ""  # the model card's name, for detectors that need a model
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}
    # what the clean images were (DICOM modality codes; photos XC): a threshold measured
    # on dermoscopy photos says nothing about how often a clean CT reaches it
    modalities: list[str] = field(default_factory=list)
    # True: every clean image was in colour; False: none was (a chest X-ray saved as a
    # JPEG is modality XC like a dermoscopy photo, but a grey one); None: mixed or unknown
    colour: bool | None = None
    format: str = FORMAT
    version: int = 1

    def applies_to(self, detector: Any, params: Any, model_name: str = "") -> tuple[bool, str]:
        """Whether this threshold may judge ``detector`` run with ``params`` on the model
        named ``model_name``: (yes/no, why not)."""
        if str(getattr(detector, "version", "")) != self.detector_version:
            return False, (f"calibrated for {self.detector} v{self.detector_version}, "
                           f"not v{getattr(detector, 'version', '')}")
        p = params if dataclasses.is_dataclass(params) else api.make_params(detector.Params,
                                                                             params)
        live, saved = _plain(asdict(p)), _plain(self.params)
        if live != saved:
            differ = [f"{k}={saved.get(k)!r}, not {live.get(k)!r}"
                      for k in sorted(set(live) | set(saved)) if live.get(k) != saved.get(k)]
            return False, f"calibrated with {'; '.join(differ)}"
        if self.model and model_name and model_name != self.model:
            return False, f"calibrated on model {self.model}, not {model_name}"
        return True, ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        if data.get("format") != FORMAT:
            raise CalibrationError("not a workbench calibration file")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def calibration_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """Where calibrations live: ``directory`` if given, else WORKBENCH_HOME/calibration."""
    if directory is not None:
        return Path(directory)
    from ..home import workbench_home

    return workbench_home() / "calibration"


def calibration_file(name: str, directory: str | os.PathLike[str] | None = None) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return calibration_dir(directory) / f"{safe}.json"


def save_calibration(cal: Calibration, directory: str | os.PathLike[str] | None = None) -> Path:
    path = calibration_file(cal.detector, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(cal.to_json(), indent=2) + "\n")
    os.replace(tmp, path)  # a reader never sees half a file
    return path


def load_calibration(name: str, directory: str | os.PathLike[str] | None = None
                     ) -> Calibration | None:
    """The saved calibration of detector ``name``, or None when there is none. A file
    that exists but cannot be read raises :class:`CalibrationError`. Parsed once per
    version of the file: every detector run on every image asks for it."""
    path = calibration_file(name, directory)
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _LOADED.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        cal = Calibration.from_json(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise CalibrationError(f"{path}: unreadable calibration ({exc})") from None
    _LOADED[path] = (key, cal)
    return cal


_LOADED: dict[Path, tuple[tuple[int, int], Calibration]] = {}


def run_calibrated(detector: Any, image: Any, params: Any, *, model: Any = None,
                   directory: str | os.PathLike[str] | None = None, **run: Any
                   ) -> tuple[Any, Calibration | None, str]:
    """Run ``detector`` judged by the saved threshold that applies to ``image`` (the
    user's, else the shipped one; see :func:`threshold_for`), as the GUI, the report and
    ``workbench detect`` all do: (outcome, the calibration that judged it or None, a note
    when a saved one exists but does not apply, also appended to the outcome's
    explanation). ``run``: run_detector's other options."""
    cal, note = (threshold_for(detector.name, detector, params, model, directory, image=image)
                 if getattr(detector, "calibratable", False) else (None, ""))
    out = run_detector(detector, image, params, model=model,
                       threshold=cal.threshold if cal is not None else None, **run)
    if note:  # every table that shows the row shows why it was judged as it was
        out.explanation = f"{out.explanation} [{note}]"
    return out, (cal if out.calibrated else None), note


def shipped_calibration_dir() -> Path:
    """``resources/calibration``: thresholds shipped for the demo models, made on their
    cards' training images (never the test split), so a fresh install gives calibrated
    verdicts. The user's own calibrations (WORKBENCH_HOME/calibration) come first."""
    from ..models.zoo import models_dir

    return models_dir().parent / "calibration"


def shipped_calibration_dirs() -> list[Path]:
    """The shipped folders in the order they are asked: the dermoscopy demo's (the root)
    and then one per other model (``resources/calibration/<card name>``). Which one
    judges an image is decided by what each was measured on (model, modality, colour)."""
    root = shipped_calibration_dir()
    subs = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return [root, *subs]



def image_modality(image: Any) -> str:
    """The image's modality code for calibration purposes: photos are XC."""
    return "XC" if image.kind == "photo" else str(image.modality or "OT").upper()


def threshold_for(name: str, detector: Any, params: Any, model: Any,
                  directory: str | os.PathLike[str] | None = None, image: Any = None
                  ) -> tuple[Calibration | None, str]:
    """The saved calibration that applies to ``detector`` run with ``params`` on
    ``model`` (matched by its card's name) for ``image`` (its modality must be one the
    calibration images had), and a note when one exists but does not apply.
    ``directory`` given: only that folder; else the user's, then the shipped."""
    card_name = str(getattr(getattr(model, "card", None), "name", "")) if model else ""
    note = users = ""
    for folder in ([directory] if directory is not None
                   else [None, *shipped_calibration_dirs()]):
        try:
            cal = load_calibration(name, folder)
        except CalibrationError as exc:
            note = str(exc)
            continue
        if cal is None:
            continue
        ok, why = cal.applies_to(detector, params, card_name)
        if ok and image is not None and cal.modalities and \
                image_modality(image) not in cal.modalities:
            ok, why = False, (f"calibrated on {'/'.join(cal.modalities)} images, not "
                              f"{image_modality(image)}")
        if ok and image is not None and cal.colour is not None and \
                has_colour(image) != cal.colour:
            ok, why = False, ("calibrated on " + ("colour" if cal.colour else "greyscale")
                              + " images, not " + ("greyscale" if cal.colour else "colour")
                              + " ones")
        if ok:
            # The user calibrated this detector themselves: say that a shipped threshold
            # judged it instead, and why theirs did not (e.g. made with other params).
            return cal, (f"your calibration was not used ({users}); the shipped one judged "
                         "this" if users else "")
        if folder is None:  # the user's own folder (only asked when no directory is given)
            users = why
        note = note or f"saved calibration not used: {why}"
    return None, note


def threshold_at(scores: list[float], fpr: float) -> float:
    """The (1 - fpr) quantile of clean scores, linear interpolation (see module doc)."""
    import numpy as np

    return float(np.quantile(np.asarray(scores, dtype=np.float64), 1.0 - fpr,
                             method=QUANTILE_METHOD))


def calibrate(detector: Any, params: dict[str, Any] | Any, clean: list[str | os.PathLike[str]],
              model: Any = None, fpr: float = DEFAULT_FPR, *, progress: Any = None,
              cancelled: Any = None, save: bool = True,
              directory: str | os.PathLike[str] | None = None) -> Calibration:
    """Calibrate ``detector`` (a Detector instance, or a PluginInfo) on clean images.

    ``clean``: image files and/or folders (searched recursively). ``progress(done, total,
    name)``. Images the detector cannot judge (unreadable, inconclusive, failed) are
    skipped and listed. Saves to :func:`calibration_file` unless ``save`` is False.
    """
    import numpy as np

    from ..imaging.errors import ImageLoadError
    from ..imaging.loader import find_images, load_image
    from ..provenance.records.fingerprint import pixel_fingerprint

    if hasattr(detector, "create") and hasattr(detector, "kind"):  # a PluginInfo
        detector = detector.create()
    name = getattr(detector, "name", type(detector).__name__)
    if not getattr(detector, "calibratable", False):
        raise CalibrationError(f"{name} is not calibratable: its verdict is decisive")
    if not 0.0 < fpr < 1.0:
        raise CalibrationError(f"false-positive rate {fpr} is not between 0 and 1")
    p = params if dataclasses.is_dataclass(params) and not isinstance(params, type) \
        else api.make_params(detector.Params, params)
    files: list[Path] = []
    for item in map(Path, clean):
        files.extend(find_images(item) if item.is_dir() else [item])
    scores: list[float] = []
    prints: list[dict[str, str]] = []
    skipped: list[dict[str, str]] = []
    modalities: set[str] = set()
    colours: set[bool] = set()
    for i, f in enumerate(files):
        if cancelled is not None and cancelled():
            raise DetectorCancelled(f"{name}: calibration cancelled")
        try:
            image = load_image(f)
            out = run_detector(detector, image, p, model=model, cancelled=cancelled)
        except ImageLoadError as exc:
            skipped.append({"path": str(f), "reason": exc.reason})
        except DetectorFailed as exc:
            skipped.append({"path": str(f), "reason": str(exc).splitlines()[0]})
        else:
            if out.score is None or out.verdict == "inconclusive":
                skipped.append({"path": str(f), "reason": out.explanation or "inconclusive"})
            else:
                scores.append(float(out.score))
                prints.append({"path": str(f), "pixel_sha256": pixel_fingerprint(image).sha256})
                modalities.add(image_modality(image))
                colours.add(has_colour(image))
        if progress is not None:
            progress(i + 1, len(files), f.name)
    if len(scores) < 2:
        reasons = [s["reason"] for s in skipped]
        common = max(set(reasons), key=reasons.count) if reasons else ""
        raise CalibrationError(f"{name}: only {len(scores)} usable clean image(s) of "
                               f"{len(files)}; a threshold needs at least 2 (and about "
                               f"{int(np.ceil(1 / fpr))} for a {fpr:.0%} rate to mean much)"
                               + (f"; most were skipped because: {common}" if common else ""))
    arr = np.asarray(scores)
    card = getattr(model, "card", None)
    cal = Calibration(
        detector=name, detector_version=str(getattr(detector, "version", "")),
        params=_plain(asdict(p)), threshold=threshold_at(scores, fpr), fpr=float(fpr),
        n=len(scores), quantile_method=QUANTILE_METHOD,
        summary={"min": float(arr.min()), "max": float(arr.max()), "mean": float(arr.mean()),
                 "std": float(arr.std()), "median": float(np.median(arr))},
        scores=[float(s) for s in scores], fingerprints=prints,
        date=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        model=str(getattr(card, "name", "")) if "model" in getattr(detector, "needs", ())
        else "",
        skipped=skipped, modalities=sorted(modalities),
        colour=next(iter(colours)) if len(colours) == 1 else None)
    if save:
        save_calibration(cal, directory)
    return cal


def _plain(value: Any) -> Any:
    """JSON round-trip form (tuples become lists), so saved and live params compare."""
    return json.loads(json.dumps(value))
