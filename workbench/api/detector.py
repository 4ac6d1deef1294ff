"""Detectors: the base class a plugin subclasses, what ``analyze`` is given and returns."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .attack import Cancelled

VERDICTS = ("clean", "suspicious", "tampered", "inconclusive")
NEEDS = ("model", "capture_record", "reference", "calibration")


@dataclass
class Finding:
    """What a detector says about one image. ``score``: higher = more suspicious (the
    engine compares it with the calibrated threshold). ``evidence``: an optional H x W
    float map the size of the image (where the detector looked / what it found).
    ``explanation``: one line a reviewer understands."""

    score: float
    verdict: str = "inconclusive"
    explanation: str = ""
    evidence: Any = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class DetectionContext:
    """What a running detector may use. ``image`` passed to ``analyze`` is the decoded
    MedicalImage (stored pixels, metadata, path); these are the rest."""

    device: Any = None
    model: Any = None  # the classifier under review (images in [0, 1], any size)
    record: dict[str, Any] | None = None  # the capture record, when one was found
    reference: Any = None  # a reference MedicalImage (e.g. the signed original)
    threshold: float | None = None  # calibrated threshold for this detector, if any
    generator: Any = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("workbench.plugin"))
    progress_callback: Callable[[float, str], None] | None = None
    cancelled_callback: Callable[[], bool] | None = None

    def progress(self, fraction: float, message: str = "") -> None:
        if self.progress_callback is not None:
            self.progress_callback(max(0.0, min(1.0, float(fraction))), message)

    def check_cancelled(self) -> None:
        if self.cancelled_callback is not None and self.cancelled_callback():
            raise Cancelled()


class Detector:
    """Base class of detector plugins. ``needs`` lists what ``analyze`` requires from
    NEEDS; the engine skips a detector (verdict inconclusive, saying why) when it is
    missing. ``calibratable``: the score can be thresholded at a false-positive rate on
    clean images (the engine does it; the verdict is "uncalibrated" until then)."""

    name: str = ""
    summary: str = ""
    needs: tuple[str, ...] = ()
    calibratable: bool = True
    version: str = "1"

    @dataclass
    class Params:
        pass

    def analyze(self, image: Any, params: Any, ctx: DetectionContext) -> Finding:
        raise NotImplementedError
