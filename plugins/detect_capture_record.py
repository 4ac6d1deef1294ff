"""Capture-record check: is this the image that was captured?

The provenance verification (Finlayson et al., Science 2019: "hash at the moment of
capture, compare later") as a detector finding. The image's capture record is found
beside it (sidecar) or in the ledger (by UID, file hash or pixel hash), its signature and
signer are checked, and the decoded pixels and identifying metadata are compared with
what was signed. The verdict is decisive, not a score: pixels or metadata changed ->
tampered; intact or only re-encoded -> clean; signed by a key you do not trust ->
suspicious; no record -> inconclusive. A record found only by appearance (perceptual
hash) is a look-alike's: a changed copy and the next slice of a signed series look the
same to it, so it is inconclusive too, unless a reference says which image this is.

With a reference image (e.g. the signed original) of the same size, the evidence map is
the absolute difference of the stored values (largest over colour channels). A copy whose
own record cannot be found (a large patch moves its perceptual hash beyond the lookup's
reach) is judged against the reference when the reference verifies: any changed pixel
-> tampered, none -> clean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.api import DetectionContext, Detector, Finding, verify_capture

# Provenance verdicts -> (detector verdict, score). Scores only order the verdicts.
VERDICT_OF = {
    "tampered": ("tampered", 1.0),
    "invalid-signature": ("tampered", 1.0),
    "untrusted": ("suspicious", 0.5),
    "intact": ("clean", 0.0),
    "re-encoded": ("clean", 0.0),
    "unsigned": ("inconclusive", 0.0),
    "look-alike": ("inconclusive", 0.0),
    "error": ("inconclusive", 0.0),
}


class CaptureRecordCheck(Detector):
    name = "capture-record"
    summary = "Verify the image against its signed capture record (decisive when one exists)."
    needs = ()  # the record is looked up from the image itself (sidecar or ledger)
    calibratable = False
    version = "1"

    @dataclass
    class Params:
        pass

    def analyze(self, image: Any, params: Any, ctx: DetectionContext) -> Finding:
        result = verify_capture(str(image.path))
        verdict, score = VERDICT_OF.get(result.verdict, ("inconclusive", 0.0))
        explanation = result.summary
        if result.verdict == "unsigned":
            explanation = "no capture record found (unsigned): provenance cannot be checked"
        elif result.verdict == "re-encoded":
            explanation = "re-encoded losslessly: pixels and identifying metadata intact"
        details = {"provenance_verdict": result.verdict,
                   "record_source": result.record_source, "record_id": result.record_id,
                   "checks": {c.name: f"{c.status}: {c.message}" for c in result.checks}}
        evidence = None
        if ctx.reference is not None:
            evidence = difference_map(image, ctx.reference)
            if evidence is not None:
                changed, most = int((evidence > 0).sum()), float(evidence.max())
                details["reference_max_difference"] = most
                details["reference_changed_pixels"] = changed
                if verdict == "inconclusive":
                    # No record of its own (a copy whose appearance moved too far for the
                    # perceptual lookup): judge it against the reference if that is signed.
                    verdict, score, explanation = _against_reference(ctx.reference, changed,
                                                                     most, explanation)
        return Finding(score=score, verdict=verdict, explanation=explanation,
                       evidence=evidence, details=details)


def _against_reference(reference: Any, changed: int, most: float,
                       fallback: str) -> tuple[str, float, str]:
    ref = verify_capture(str(reference.path))
    name = getattr(reference.path, "name", str(reference.path))
    if not ref.ok:
        return "inconclusive", 0.0, f"{fallback}; the reference {name} is not verified " \
            f"either ({ref.summary})"
    if changed:
        return "tampered", 1.0, (f"no capture record of its own; differs from the signed "
                                 f"original {name} in {changed} pixels (largest change "
                                 f"{most:g} stored levels)")
    return "clean", 0.0, f"no capture record of its own; pixels identical to the signed " \
        f"original {name}"


def difference_map(image: Any, reference: Any) -> Any:
    """|image - reference| of the stored values of frame 0, max over channels; None when
    the two differ in size (a map would not line up)."""
    import numpy as np

    a, b = image.frame(0), reference.frame(0)
    if a.shape != b.shape:
        return None
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return (diff.max(axis=2) if diff.ndim == 3 else diff).astype(np.float32)
