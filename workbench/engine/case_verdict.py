"""One verdict per image: the capture record, when there is one, decides; without one,
the calibrated detectors do, and they can only ever say "suspicious" or "no detector
fired", never "authentic". The reasons are kept beside the verdict, because a reviewer
must see why, and a verdict is never stronger than its evidence:

- record intact / re-encoded: AUTHENTIC, whatever a detector says (a detector firing on a
  signed original is a false positive, named as such);
- record tampered / invalid signature: TAMPERED (the checks that failed are the reasons);
- no record, a look-alike's record only (found by appearance, of an image that differs:
  perhaps a changed copy, perhaps the next slice), or one by an untrusted signer:
  SUSPICIOUS when any calibrated detector is
  above its threshold, NO_EVIDENCE when calibrated detectors ran and none fired,
  INCONCLUSIVE when no calibrated detector ran. Uncalibrated scores are not evidence; a
  rule detector's flag (e.g. a header that declares an adversarial image) is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

AUTHENTIC, TAMPERED, SUSPICIOUS = "authentic", "tampered", "suspicious"
NO_EVIDENCE, INCONCLUSIVE, PENDING = "no evidence of manipulation", "inconclusive", "pending"


@dataclass(frozen=True)
class CaseVerdict:
    verdict: str  # one of the constants above
    headline: str  # one line for the banner
    reasons: tuple[str, ...]  # one line each, most important first
    # the detector outcomes as this verdict judged them (judged_outcomes): the rows every
    # table beside the verdict shows, so that they cannot disagree with it
    outcomes: tuple[Any, ...] = ()


def case_verdict(verification: Any, outcomes: list[Any] | None,
                 thresholds: dict[str, float] | None = None, *,
                 running: bool = False) -> CaseVerdict:
    """The verdict of one image from its provenance check (a VerificationResult, or None
    while it runs) and its detector outcomes (None when the detectors have not run).
    ``thresholds``: the case thresholds (engine.case_calibration), so that the detectors
    together flag about 5% of clean images; without them each detector's own verdict.
    ``running``: the detectors are running (``outcomes`` is None until they all have).
    Detectors examine a multi-frame image's first frame only (each outcome carries the
    frame count), so a verdict they decide says so; a record covers every frame."""
    judged = None if outcomes is None else judged_outcomes(outcomes, thresholds)
    verdict = _decide(verification, outcomes, judged, thresholds, running)
    frames = max((getattr(o, "frames", 1) for o in outcomes or ()), default=1)
    if frames > 1 and verdict.verdict not in (AUTHENTIC, TAMPERED):
        seen = f"the detectors examined frame 1 of {frames} only"
        verdict = replace(verdict, headline=f"{verdict.headline} ({seen})",
                          reasons=(*verdict.reasons, f"{seen}: a change in another frame "
                                   "is not looked for"))
    return replace(verdict, outcomes=tuple(judged or ()))


def _decide(verification: Any, outcomes: list[Any] | None, judged: list[Any] | None,
            thresholds: dict[str, float] | None, running: bool) -> CaseVerdict:
    record = getattr(verification, "verdict", None)
    if record in ("intact", "re-encoded"):
        fired = [o for o in judged or [] if o.flagged]  # as the table shows them
        reasons = [verification.summary] + [
            f"{o.name} fired ({o.explanation}); the signed record is decisive, so this is a "
            "false positive" for o in fired]
        return CaseVerdict(AUTHENTIC, "Authentic: the image matches its signed capture record"
                           + (" (re-encoded losslessly)" if record == "re-encoded" else ""),
                           tuple(reasons))
    if record in ("tampered", "invalid-signature"):
        failed = [f"{c.name}: {c.message}" for c in getattr(verification, "checks", ())
                  if getattr(c, "status", "") == "fail"]
        return CaseVerdict(TAMPERED, "Tampered: the image does not match its capture record",
                           tuple(failed or [verification.summary]))
    context = _record_context(record, verification)
    if outcomes is None:
        return CaseVerdict(PENDING if record is None else INCONCLUSIVE,
                           "No verdict yet: " + (context or "checking the capture record")
                           + ("; the detectors are running" if running
                              else "; run the detectors"), (context,) if context else ())
    calibrated = [o for o in judged if o.calibrated]
    limit = {o.name: o.threshold for o in calibrated}
    fired = [o for o in calibrated if o.verdict == SUSPICIOUS]
    # rule detectors (not calibratable: a flag, not a score) are decisive when they flag:
    # a header that declares an adversarial image is evidence whatever any threshold says
    decisive = [o for o in outcomes if not o.calibrated
                and o.verdict in ("tampered", "suspicious")]
    if fired or decisive:
        kind = "case threshold" if thresholds else "threshold"
        said = {o.name: o.explanation for o in outcomes}  # without the threshold note
        reasons = [f"{o.name}: {said[o.name]} (score {o.score:.4g} > {kind} "
                   f"{limit[o.name]:.4g})" for o in fired]
        reasons += [f"{o.name}: {o.explanation}" for o in decisive]
        return CaseVerdict(SUSPICIOUS, f"Suspicious: {len(fired) + len(decisive)} detector(s) "
                           f"fired{'; ' + context if context else ''}", tuple(reasons))
    if calibrated:
        names = ", ".join(o.name for o in calibrated)
        return CaseVerdict(NO_EVIDENCE, f"No detector fired ({len(calibrated)} calibrated); "
                           f"{context or 'no capture record'}: this is not proof of "
                           "authenticity", (f"calibrated detectors below their "
                           f"{'case ' if thresholds else ''}thresholds: {names}",))
    return CaseVerdict(INCONCLUSIVE, f"Inconclusive: {context or 'no capture record'} and no "
                       "calibrated detector", ("calibrate the detectors (workbench calibrate) "
                                               "or sign images at capture",))


def judged_outcomes(outcomes: list[Any], thresholds: dict[str, float] | None
                    ) -> list[Any]:
    """The outcomes as the case verdict judges them, for every table beside it (GUI,
    ``workbench detect``, the report): a calibrated detector's threshold is its case
    threshold and its verdict "suspicious" or "clean" against it. Each detector's own
    5% threshold flags more images than the case verdict counts (five of them together
    flagged 28% of clean images), so a row marked "suspicious" under a banner saying "no
    detector fired" told the reviewer two different things; the own threshold is kept in
    ``own_threshold`` and named in the explanation when it differs."""
    if not thresholds:
        return list(outcomes)
    judged = []
    for o in outcomes:
        case = thresholds.get(o.name)
        if not o.calibrated or o.score is None or case is None or case == o.threshold:
            judged.append(o)
            continue
        verdict = SUSPICIOUS if o.score > case else "clean"
        alone = "above" if o.threshold is not None and o.score > o.threshold else "below"
        note = (f" [case threshold {case:.4g}, set so that the detectors together flag 5% "
                f"of clean images; {alone} this detector's own 5% threshold "
                f"{o.threshold:.4g}]")
        judged.append(replace(o, threshold=case, verdict=verdict,
                              explanation=o.explanation + note, own_threshold=o.threshold))
    return judged


def _record_context(record: str | None, verification: Any) -> str:
    if record == "untrusted":
        return "its capture record is signed by an untrusted key"
    if record == "error":
        return f"the provenance check failed ({verification.summary})"
    if record == "unsigned":
        return "no capture record"
    if record == "look-alike":
        return ("no capture record of its own; it resembles a signed image and differs "
                "from it")
    return ""
