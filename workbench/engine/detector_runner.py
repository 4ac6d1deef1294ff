"""Running one detector plugin on one image: needs, isolation, cancel, and the verdict.

The engine, not the plugin, decides what a score means. A calibratable detector's score is
compared with the threshold calibrated on clean images (``workbench.engine.calibration``):
above it the verdict is "suspicious", else "clean"; without a threshold the verdict is
"uncalibrated", because a raw score alone does not say how often clean images reach it.
A detector that is not calibratable (the capture-record and DICOM header checks) is
decisive: its own verdict stands.

A plugin that raises, returns a NaN score, an unknown verdict or an evidence map that is
not the size of the image is reported as :class:`DetectorFailed` naming the detector; the
caller keeps working. Cancel is enforced by a forward pre-hook on the model too, so a
model-based detector that never checks stops at its next model call.
"""

from __future__ import annotations

import dataclasses
import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from .. import api

UNCALIBRATED = "uncalibrated"
# The verdicts an outcome can carry: the plugin API's four, and "uncalibrated" for a
# score-based detector that has no threshold yet.
VERDICTS = (*api.VERDICTS, UNCALIBRATED)
FLAGGED = ("suspicious", "tampered")  # verdicts that make a reviewer look twice

NEED_WORDS = {
    "model": "needs a model",
    "capture_record": "needs a capture record",
    "reference": "needs a reference image",
    "calibration": "needs a calibration (workbench calibrate)",
}


class DetectorFailed(Exception):
    """The plugin raised or returned something invalid; the message names it and says why."""


class DetectorCancelled(Exception):  # noqa: N818
    """The user cancelled the run."""


@dataclass
class DetectorOutcome:
    """One detector's finding on one image, as the engine judged it.

    ``score`` is None when the detector could not run (missing needs). ``verdict`` is one
    of :data:`VERDICTS`. ``evidence`` is an H x W float32 numpy array the size of the
    image (frame 0), or None. ``calibrated``: a threshold decided the verdict."""

    name: str
    version: str
    score: float | None
    verdict: str
    explanation: str
    evidence: Any = None
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    calibrated: bool = False
    threshold: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # set when the case verdict judged it by a case threshold (engine.case_verdict):
    # the detector's own single-detector threshold, for the record
    own_threshold: float | None = None
    # the image's frame count: a detector examines frame 1 of it (the case verdict says so)
    frames: int = 1

    @property
    def flagged(self) -> bool:
        return self.verdict in FLAGGED

    def to_json(self) -> dict[str, Any]:
        """JSON-able: the evidence map is summarised (shape, max), not included."""
        ev = self.evidence
        return {
            "detector": self.name, "version": self.version,
            "score": None if self.score is None else round(float(self.score), 6),
            "threshold": None if self.threshold is None else round(float(self.threshold), 6),
            "verdict": self.verdict, "calibrated": self.calibrated,
            "explanation": self.explanation, "seconds": round(self.seconds, 4),
            "evidence": None if ev is None else {"shape": list(ev.shape),
                                                  "max": round(float(ev.max()), 6)},
            "details": _jsonable(self.details), "params": _jsonable(self.params),
        } | ({} if self.own_threshold is None
             else {"own_threshold": round(float(self.own_threshold), 6)})


def run_detector(detector: Any, image: Any, params: dict[str, Any] | Any = None, *,
                 model: Any = None, record: dict[str, Any] | None = None,
                 reference: Any = None, threshold: float | None = None, seed: int = 0,
                 progress: Any = None, cancelled: Any = None) -> DetectorOutcome:
    """Run ``detector`` (a Detector instance) on ``image`` (a MedicalImage).

    ``params``: a Params instance, or a dict of user values checked against the
    declaration (None = defaults). ``threshold``: the calibrated threshold, if any. The
    returned verdict is one of :data:`VERDICTS` ("uncalibrated" included).
    """
    name = getattr(detector, "name", type(detector).__name__)
    version = str(getattr(detector, "version", ""))
    p = params if _is_params_instance(params) else api.make_params(detector.Params, params)
    p_dict = dataclasses.asdict(p)
    calibratable = bool(getattr(detector, "calibratable", False))
    available = {"model": model is not None, "capture_record": record is not None,
                 "reference": reference is not None, "calibration": threshold is not None}
    missing = [n for n in getattr(detector, "needs", ()) if not available.get(n, False)]
    if missing:
        return DetectorOutcome(name, version, None, "inconclusive",
                               "; ".join(NEED_WORDS.get(n, f"needs {n}") for n in missing),
                               details={"missing": missing}, threshold=threshold,
                               params=p_dict, frames=int(getattr(image, "n_frames", 1) or 1))

    ctx, hooks = _context(model, record, reference, threshold, seed, progress, cancelled)
    start = time.perf_counter()
    try:
        finding = detector.analyze(image, p, ctx)
    except api.Cancelled:
        raise DetectorCancelled(f"{name}: cancelled") from None
    except Exception as exc:
        tb = traceback.format_exc(limit=-3)
        raise DetectorFailed(f"{name} raised {type(exc).__name__}: {exc}\n{tb}") from None
    finally:
        for h in hooks:
            h.remove()
    seconds = time.perf_counter() - start
    score, evidence = _validated(name, finding, image)

    verdict, used = finding.verdict, False
    if calibratable and verdict not in ("inconclusive", "tampered"):
        # The plugin's own clean/suspicious is a guess; the calibrated threshold decides.
        if threshold is None:
            verdict = UNCALIBRATED
        else:
            verdict, used = ("suspicious" if score > threshold else "clean"), True
    return DetectorOutcome(name, version, score, verdict, finding.explanation, evidence,
                           dict(finding.details or {}), seconds, used, threshold, p_dict,
                           frames=int(getattr(image, "n_frames", 1) or 1))


def _is_params_instance(obj: Any) -> bool:
    return dataclasses.is_dataclass(obj) and not isinstance(obj, type)


def _context(model: Any, record: Any, reference: Any, threshold: Any, seed: int,
             progress: Any, cancelled: Any) -> tuple[api.DetectionContext, list[Any]]:
    generator, device, hooks = None, "cpu", []
    if model is not None:
        import torch

        device = model.device
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)

        def guard(_module: Any, _inputs: Any) -> None:
            if cancelled is not None and cancelled():
                raise api.Cancelled()

        hooks.append(model.register_forward_pre_hook(guard))
    ctx = api.DetectionContext(device=device, model=model, record=record, reference=reference,
                               threshold=threshold, generator=generator,
                               progress_callback=progress, cancelled_callback=cancelled)
    return ctx, hooks


def _validated(name: str, finding: Any, image: Any) -> tuple[float, Any]:
    import numpy as np

    if not isinstance(finding, api.Finding):
        raise DetectorFailed(f"{name} returned {type(finding).__name__}, not a Finding")
    try:
        score = float(finding.score)
    except (TypeError, ValueError):
        raise DetectorFailed(f"{name} returned a score that is not a number: "
                             f"{finding.score!r}") from None
    if not math.isfinite(score):
        raise DetectorFailed(f"{name} returned a NaN or infinite score")
    if finding.verdict not in api.VERDICTS:
        raise DetectorFailed(f"{name} returned verdict {finding.verdict!r}, not one of "
                             f"{api.VERDICTS}")
    ev = finding.evidence
    if ev is None:
        return score, None
    if hasattr(ev, "detach"):  # a torch tensor
        ev = ev.detach().cpu().numpy()
    ev = np.asarray(ev, dtype=np.float32)
    want = (image.rows, image.columns)
    if ev.shape != want:
        raise DetectorFailed(f"{name} returned an evidence map of shape {ev.shape}; the image "
                             f"is {want[0]} x {want[1]}")
    if not np.isfinite(ev).all():
        raise DetectorFailed(f"{name} returned an evidence map with NaN or infinite values")
    return score, ev


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays, torch tensors
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
