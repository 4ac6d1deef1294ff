"""Calibrating detectors from the GUI (Tools > Calibrate Detectors): each chosen detector
in turn on one folder of clean images at one false-positive rate, as a `Job`.

Each detector's outcome is published as soon as it is known (a threshold saved to
WORKBENCH_HOME/calibration, or why there is none); one detector that cannot be
calibrated never stops the others. Cancel is checked between images, and a detector
cancelled half-way writes nothing. Thresholds saved here come before the shipped ones
(see :func:`workbench.engine.calibration.threshold_for`), so verdicts made from then on
use them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .jobs import Cancelled, Job, JobFailed


@dataclass(frozen=True)
class DetectorCalibrated:
    """One detector's outcome: its new threshold and where it was saved, or an error."""

    detector: str
    threshold: float | None = None
    fpr: float = 0.0
    n: int = 0  # clean images the threshold was measured on
    skipped: int = 0  # images it could not judge
    path: str = ""  # the saved calibration file
    error: str = ""  # why there is no threshold (empty when there is one)

    @property
    def ok(self) -> bool:
        return not self.error


def images_needed(fpr: float) -> int:
    """About how many clean images a threshold at ``fpr`` needs to mean much (1 / fpr)."""
    return max(2, math.ceil(1.0 / fpr - 1e-9)) if fpr > 0 else 2


def clean_images(folder: str | os.PathLike[str]) -> list[Path]:
    """The images under ``folder`` (recursively), or :class:`JobFailed` saying why there
    are none to calibrate on (no folder given, missing, not a folder, no images)."""
    from ..imaging.loader import find_images

    text = str(folder).strip()
    if not text:
        raise JobFailed("Choose a folder of clean images first.")
    path = Path(text).expanduser()
    if not path.exists():
        raise JobFailed(f"{path}: no such folder.")
    if not path.is_dir():
        raise JobFailed(f"{path}: not a folder; choose the folder that holds the clean images.")
    try:
        files = find_images(path)
    except OSError as exc:
        raise JobFailed(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    if not files:
        raise JobFailed(f"{path}: no images found (looked for DICOM files and "
                        "JPEG/PNG/TIFF/BMP photos, in sub-folders too).")
    return files


def calibrate_detectors(infos: list[Any], clean: list[str | os.PathLike[str]], model: Any,
                        fpr: float, *, directory: str | os.PathLike[str] | None = None
                        ) -> Job[list[DetectorCalibrated]]:
    """Calibrate each detector of ``infos`` (PluginInfo) on the image files ``clean``
    with ``model`` (given only to detectors that need one) at false-positive rate ``fpr``,
    with default parameters (those the detectors dock runs with). Publishes a
    :class:`DetectorCalibrated` per detector; returns them all. Saves to ``directory``
    (default: WORKBENCH_HOME/calibration)."""
    files = [Path(f) for f in clean]

    def work(job: Job) -> list[DetectorCalibrated]:
        done: list[DetectorCalibrated] = []
        n = len(infos)
        for i, info in enumerate(infos):
            job.check_cancelled()
            job.progress(i / n, f"{info.name} ({i + 1} of {n})…")
            result = _calibrate_one(job, info, files, model, fpr, directory, i, n)
            done.append(result)
            job.publish(result)
        job.progress(1.0, "done")
        return done

    names = ", ".join(i.name for i in infos)
    return Job(f"calibrate {names}", work)


def _calibrate_one(job: Job, info: Any, files: list[Path], model: Any, fpr: float,
                   directory: Any, i: int, n: int) -> DetectorCalibrated:
    from ..engine.calibration import CalibrationError, calibrate, calibration_file
    from ..engine.detector_runner import DetectorCancelled

    name = info.name
    if not getattr(info, "ok", True):
        return DetectorCalibrated(name, fpr=fpr,
                                  error=f"did not load: {getattr(info, 'error', '')}")
    needs_model = "model" in getattr(info, "needs", ())
    if needs_model and model is None:
        return DetectorCalibrated(name, fpr=fpr, error="needs a model and none is loaded "
                                  "(load one in the Model dock)")

    def progress(done: int, total: int, image: str) -> None:
        job.progress((i + done / max(total, 1)) / n,
                     f"{name} ({i + 1} of {n}): image {done} of {total}, {image}")

    try:
        cal = calibrate(info, {}, files, model=model if needs_model else None, fpr=fpr,
                        progress=progress, cancelled=lambda: job.cancelled, save=True,
                        directory=directory)
    except DetectorCancelled:
        raise Cancelled(f"calibrate {name}: cancelled") from None
    except CalibrationError as exc:
        return DetectorCalibrated(name, fpr=fpr, error=str(exc))
    except Exception as exc:  # one detector's bug never stops the others
        return DetectorCalibrated(name, fpr=fpr, error=f"{type(exc).__name__}: {exc}")
    return DetectorCalibrated(name, threshold=cal.threshold, fpr=cal.fpr, n=cal.n,
                              skipped=len(cal.skipped),
                              path=str(calibration_file(name, directory)))
