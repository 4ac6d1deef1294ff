"""Everything known about one open image, in one place.

A result belongs to the image it was computed on: the GUI shows what the current
`ImageSession` holds and nothing else, so switching images can never leave one image's
verdict beside another. Views subscribe to `changed` (session.events, no Qt) and redraw the
aspect named in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .events import Signal

#: the aspects `ImageSession.changed` names
ASPECTS = ("image", "prediction", "attack", "findings", "verification", "region",
           "comparison")


@dataclass(frozen=True)
class Prediction:
    """One model's output on one frame of the image."""

    model_name: str
    class_names: tuple[str, ...]
    probabilities: tuple[float, ...]
    positive_class: str = ""
    frame: int = 0

    @property
    def best(self) -> str:
        i = max(range(len(self.probabilities)), key=self.probabilities.__getitem__)
        return self.class_names[i]


@dataclass
class AttackRun:
    """An attack's outcome on this image, with what it was computed from: the model
    input ``x`` (CHW float), the mapping back to the stored grid (None when the image was
    resized for a universal attack, which cannot be saved at full size)."""

    outcome: Any  # engine.attack_runner.AttackOutcome
    x: Any
    mapping: Any
    image: Any  # the MedicalImage attacked
    frame: int
    class_names: tuple[str, ...]
    model_name: str
    universal: bool = False
    n_images: int = 1
    # why the model's classes are no diagnosis here (models.fit), when it does not fit
    fit_warning: str | None = None


@dataclass
class DetectorFindings:
    """The detectors' outcomes on this image, in the order they ran, and those that
    failed (name -> one-line reason)."""

    model_name: str = ""
    outcomes: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    complete: bool = False
    # the saved calibration each calibrated outcome was judged by (name -> Calibration)
    calibrations: dict[str, Any] = field(default_factory=dict)

    def verdict(self, verification: Any) -> Any:
        """The case verdict (engine.case_verdict) with the case thresholds of the
        calibrations used; None until every detector has run."""
        from ..engine.case_calibration import case_thresholds
        from ..engine.case_verdict import case_verdict

        if not self.complete:  # no verdict from some of them: the rest may fire
            return case_verdict(verification, None, running=True)
        used = [self.calibrations[n] for n, o in self.outcomes.items()
                if o.calibrated and n in self.calibrations]
        return case_verdict(verification, list(self.outcomes.values()),
                            case_thresholds(used))

    def judged(self) -> list[Any]:
        """The outcomes as the verdict judges them (engine.case_verdict.judged_outcomes):
        once every detector has run, a calibrated one against its case threshold, so the
        table agrees with the banner; while they run, each against its own threshold."""
        if not self.complete:
            return list(self.outcomes.values())
        return list(self.verdict(None).outcomes)  # the rows do not depend on the record


class ImageSession:
    """One open image: the decoded `MedicalImage` (or why it could not be read) and every
    result computed on it. Mutated only on the thread that owns the study."""

    changed = Signal(str)  # one of ASPECTS

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.image: Any = None  # MedicalImage once decoded; None again if evicted
        self.load_error: str | None = None
        self.predictions: dict[tuple[str, int], Prediction] = {}
        self.attack: AttackRun | None = None
        self.findings: DetectorFindings | None = None
        self.verification: Any = None  # provenance VerificationResult
        self.changed_region: Any = None  # where the pixels differ from the signed original
        self.comparison_reference: str | None = None

    @property
    def name(self) -> str:
        return Path(self.path).name

    def __repr__(self) -> str:
        return f"ImageSession({self.path!r})"

    # --- the image --------------------------------------------------------------------------
    def set_image(self, image: Any) -> None:
        self.image, self.load_error = image, None
        self.changed.emit("image")

    def set_load_error(self, message: str) -> None:
        self.load_error = message
        self.changed.emit("image")

    def evict(self) -> None:
        """Drop the decoded pixels (memory); results stay and the image decodes again
        when it is shown."""
        self.image = None

    # --- results ----------------------------------------------------------------------------
    def prediction(self, model_name: str, frame: int = 0) -> Prediction | None:
        return self.predictions.get((model_name, frame))

    def add_prediction(self, p: Prediction) -> None:
        self.predictions[(p.model_name, p.frame)] = p
        self.changed.emit("prediction")

    def set_attack(self, run: AttackRun | None) -> None:
        self.attack = run
        self.changed.emit("attack")

    def start_findings(self, model_name: str) -> None:
        self.findings = DetectorFindings(model_name=model_name)
        self.changed.emit("findings")

    def add_finding(self, outcome: Any, calibration: Any = None) -> None:
        if self.findings is None:
            self.findings = DetectorFindings()
        self.findings.outcomes[outcome.name] = outcome
        if calibration is not None:
            self.findings.calibrations[outcome.name] = calibration
        self.changed.emit("findings")

    def add_failed_detector(self, name: str, message: str) -> None:
        if self.findings is None:
            self.findings = DetectorFindings()
        self.findings.failures[name] = message.splitlines()[0] if message else "failed"
        self.changed.emit("findings")

    def finish_findings(self) -> None:
        if self.findings is not None:
            self.findings.complete = True
        self.changed.emit("findings")

    def evidence_maps(self) -> dict[str, Any]:
        """Detector name -> evidence map, for the detectors that gave one."""
        f = self.findings
        return {} if f is None else {n: o.evidence for n, o in f.outcomes.items()
                                     if o.evidence is not None}

    def set_verification(self, result: Any) -> None:
        self.verification = result
        self.changed_region = None  # found against the previous verdict's original
        self.changed.emit("verification")

    def set_changed_region(self, region: Any) -> None:
        self.changed_region = region
        self.changed.emit("region")

    def set_comparison_reference(self, path: str | None) -> None:
        self.comparison_reference = path
        self.changed.emit("comparison")
