"""The standard signatures beside our own record: DICOM PS3.15 digital signatures in a
DICOM file, and a C2PA manifest in (or beside) a JPEG or PNG.

``standard_checks`` turns them into named checks of the verification result; ``combine``
folds them into its verdict:
- a standard signature that fails (data changed after signing) makes the verdict
  "tampered", whatever our own record says;
- with no record of ours (a look-alike's record is not the image's own), a valid
  signature from a trusted certificate makes the image
  "intact" (it is the captured one, by the hospital's or the camera's signature), and a
  valid one from an untrusted certificate "untrusted";
- otherwise our own record decides; the standard ones are shown beside it.
"""

from __future__ import annotations

from typing import Any

from ..records.verify import (
    FAIL,
    INTACT,
    LOOKALIKE,
    PASS,
    SKIP,
    TAMPERED,
    UNSIGNED,
    UNTRUSTED,
    WARN,
    Check,
    VerificationResult,
)

DICOM_SIGNATURE = "DICOM signature"
C2PA = "C2PA manifest"


def standard_checks(path: str, image: Any) -> list[Check]:
    checks: list[Check] = []
    if image.kind == "dicom":
        checks += _dicom_checks(path, image)
    elif str(image.transfer_syntax).upper() in ("JPEG", "PNG"):
        checks += _c2pa_checks(path)
    return checks


def verify_non_image(path: str, why: str) -> VerificationResult:
    """A DICOM object without pixel data (``why``): its DICOM signatures decide, since a
    capture record of ours is made of pixels and cannot exist for it."""
    checks = [Check("image", SKIP, f"{why}: not an image, so no capture record applies")]
    try:
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:
        checks.append(Check(DICOM_SIGNATURE, FAIL, f"cannot read the header: {exc}"))
        return VerificationResult(path, "error", f"{why}; cannot read its header", checks)
    if not ds.get("SOPClassUID"):  # no object at all (a cut-short or garbage file)
        checks = [Check("image", FAIL, f"{why}, and no SOP Class: not a DICOM object")]
        return VerificationResult(path, "error", f"{path}: {why}, and no SOP Class: not "
                                  "a readable DICOM object", checks)
    signed = _dicom_signature_checks(path, ds)
    if not signed:
        return VerificationResult(path, UNSIGNED, f"unsigned: {why}, and no DICOM "
                                  "signature", checks)
    checks += signed
    verdict, summary = combine(UNSIGNED, "", checks)
    return VerificationResult(path, verdict, summary, checks, DICOM_SIGNATURE)


def _dicom_checks(path: str, image: Any) -> list[Check]:
    return _dicom_signature_checks(path, image.metadata)


def _dicom_signature_checks(path: str, ds: Any) -> list[Check]:
    if ds is None or (0xFFFA, 0xFFFA) not in ds:
        return []
    try:
        from .dicom_signature.verify import verify_dicom_signatures

        results = verify_dicom_signatures(path)
    except Exception as exc:  # a checker problem is shown, never a crash
        return [Check(DICOM_SIGNATURE, WARN, f"cannot check: {exc}")]
    checks = []
    for i, r in enumerate(results, 1):
        name = DICOM_SIGNATURE if len(results) == 1 else f"{DICOM_SIGNATURE} {i}"
        who = r.get("signer") or "unknown signer"
        if not r.get("valid"):
            checks.append(Check(name, FAIL, r.get("reason") or "signature does not verify"))
        elif not r.get("trusted"):
            checks.append(Check(name, WARN, f"valid, but {who} is not trusted: "
                                f"{r.get('reason', '')}".rstrip(": ")))
        else:
            checks.append(Check(name, PASS, f"valid, signed by {who} on "
                                f"{r.get('datetime', '?')} ({r.get('elements_signed', '?')} "
                                "elements)"))
    return checks


def _c2pa_checks(path: str) -> list[Check]:
    try:
        from .c2pa_manifest import c2pa_available, verify_c2pa
    except ImportError:
        return []
    if not c2pa_available():
        return []
    try:
        r = verify_c2pa(path)
    except Exception as exc:
        return [Check(C2PA, WARN, f"cannot check: {exc}")]
    state = r.get("state")
    if state == "missing":
        return []
    codes = ", ".join(r.get("failure_codes") or [])
    message = r.get("reason") or state
    if codes and codes not in message:
        message = f"{message} ({codes})"
    # A derived image (an exported attack) is "intact" as the image that was signed; its
    # manifest says what was done to it, and a reviewer must read that beside the verdict.
    edits = [a.get("parameters", {}).get("description") or a.get("action")
             for a in r.get("actions") or [] if a.get("action") not in
             ("c2pa.created", "c2pa.opened")]
    if edits:
        message = f"{message}; declared edits: {'; '.join(map(str, edits))}"
    if state == "Trusted":
        return [Check(C2PA, PASS, message)]
    if state == "Valid":
        return [Check(C2PA, WARN, message)]
    return [Check(C2PA, FAIL, message)]


def combine(verdict: str, summary: str, checks: list[Check]) -> tuple[str, str]:
    """The verdict with the standard signatures' checks taken into account (see the
    module docstring)."""
    standard = [c for c in checks if c.name.startswith((DICOM_SIGNATURE, C2PA))]
    if not standard:
        return verdict, summary
    failed = [c for c in standard if c.status == FAIL]
    if failed:
        return TAMPERED, f"{failed[0].name} fails: {failed[0].message}"
    if verdict in (UNSIGNED, LOOKALIKE):
        passed = [c for c in standard if c.status == PASS]
        if passed:
            return INTACT, f"intact by its {passed[0].name} ({passed[0].message})"
        return UNTRUSTED, f"{standard[0].name} {standard[0].message}"
    return verdict, summary
