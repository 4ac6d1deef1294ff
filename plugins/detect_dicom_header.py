"""DICOM header consistency: does the file say what it is, and do its pixels agree?

A DICOM file describes its own history (PS3.3 C.7.6.1 General Image, C.7.6.3 Image
Pixel): Image Type ORIGINAL or DERIVED, a Derivation Description and Derivation Code
Sequence, the Source Image Sequence it was made from, Burned In Annotation, Bits Stored
and the display window. A manipulated image either says so (the workbench's own exports
do: DERIVED, "Adversarial research image ...") or contradicts its header.

Two kinds of finding, because real archives are full of honest derived images (lossy
recompression makes an image DERIVED; ultrasound carries burned-in text):
- notes, which describe the image and never make it suspicious on their own: Image Type
  DERIVED, derivation description or codes, source images, burned-in annotation, UIDs
  from pydicom's root or differing from the file meta information;
- flags, which do: a derivation or description that declares an adversarial, synthetic
  or perturbed image; stored values outside the range Bits Stored allows (bits set above
  it in the raw Pixel Data: decoders mask them away, so no viewer shows them); pixel values
  that no declared window shows (the pixels were rescaled or replaced under an old
  header); and low-bit noise: a large part of the image is flat to within +/-1 stored
  value, yet almost none of it is exactly flat. Real flat regions (padding, air,
  collimation) are exact; +/-1 noise everywhere is what least-significant-bit embedding
  or a tiny additive perturbation leaves. Thresholds were set so that every original in
  the project's real DICOM collection passes (see tests/test_detectors.py).

The verdict is suspicious when there is at least one flag, else clean; the explanation
lists the flags, then the notes. Not calibratable: it is a rule check, not a score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.api import DetectionContext, Detector, Finding, param

PYDICOM_UID_ROOT = "1.2.826.0.1.3680043.8.498."
DECLARED_WORDS = ("adversarial", "perturb", "synthetic", "attack", "inpaint", "deepfake",
                  "generative", "gan ", "manipulat")
DESCRIPTION_WORDS = ("adversarial", "synthetic image", "not for clinical use")
NEAR_FLAT_MIN = 0.10  # share of the image flat to within +/-1 for the low-bit test to apply
# Share of that which is exactly flat, below which it is noise. Measured: +/-1 noise
# leaves 0-3% (3% where values clip at 0); every original here with a large near-flat
# part keeps over 50% of it exactly flat (a lossy JPEG 2000 CT, 11% of a smaller part).
EXACT_FLAT_MAX = 0.08
WINDOW_MIN_INSIDE = 0.005  # share of pixels some declared window must show


class DicomHeaderCheck(Detector):
    name = "dicom-header"
    summary = "DICOM header consistency: derivation, UIDs, bits stored, window, low bits."
    needs = ()
    calibratable = False
    version = "1"

    @dataclass
    class Params:
        max_frames: int = param(4, min=1, max=10000, step=1,
                                help="frames whose pixels are checked (the header always is)")

    def analyze(self, image: Any, params: Any, ctx: DetectionContext) -> Finding:
        if image.kind != "dicom":
            return Finding(score=0.0, verdict="inconclusive",
                           explanation=f"the DICOM header check applies to DICOM files only "
                                       f"(this is a {image.transfer_syntax} photo)")
        ds = image.metadata
        flags: list[str] = []
        notes: list[str] = []
        evidence = None
        _derivation(ds, flags, notes)
        _uids(ds, notes)
        if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
            notes.append("burned-in annotation: the pixels contain text")
        frames = range(min(image.n_frames, params.max_frames))
        out_of_range = _bits_stored(image, frames, flags)
        if out_of_range is not None:
            evidence = out_of_range
        _window(image, flags)
        low_bits = _low_bits(image, frames, flags)
        if low_bits is not None and evidence is None:
            evidence = low_bits
        score = len(flags) + 0.1 * len(notes)
        verdict = "suspicious" if flags else "clean"
        parts = [f"FLAG {f}" for f in flags] + [f"note: {n}" for n in notes]
        explanation = "; ".join(parts) if parts else "header consistent with an original image"
        return Finding(score=score, verdict=verdict, explanation=explanation, evidence=evidence,
                       details={"flags": flags, "notes": notes})


def _derivation(ds: Any, flags: list[str], notes: list[str]) -> None:
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    if image_type and image_type[0] == "DERIVED":
        notes.append("Image Type " + "\\".join(image_type[:2]) + " (not ORIGINAL)")
    description = str(ds.get("DerivationDescription", "") or "")
    codes = [str(item.get("CodeMeaning", "")) for item in ds.get("DerivationCodeSequence", [])]
    if description:
        notes.append(f"derivation: {description[:80]}")
    if codes:
        notes.append("derivation codes: " + ", ".join(c for c in codes if c))
    if image_type[:1] == ["DERIVED"] and not description and not codes:
        notes.append("DERIVED without a derivation description or code")
    sources = ds.get("SourceImageSequence") or []
    if sources:
        uid = str(sources[0].get("ReferencedSOPInstanceUID", ""))
        notes.append(f"made from source image {uid or '(no UID)'}")
    said = " ".join([description, *codes]).lower()
    declared = [w.strip() for w in DECLARED_WORDS if w in said]
    series = " ".join(str(ds.get(k, "") or "") for k in ("SeriesDescription", "ImageComments"))
    declared += [w for w in DESCRIPTION_WORDS if w in series.lower() and w not in declared]
    if declared:
        flags.append("the file declares a manipulated image (" + ", ".join(declared) + ")")


def _uids(ds: Any, notes: list[str]) -> None:
    sop = str(ds.get("SOPInstanceUID", ""))
    meta = getattr(ds, "file_meta", None)
    media = str(meta.get("MediaStorageSOPInstanceUID", "")) if meta is not None else ""
    if sop and media and sop != media:
        notes.append("SOP Instance UID differs from the file meta information's")
    scripted = [k for k in ("SOPInstanceUID", "SeriesInstanceUID")
                if str(ds.get(k, "")).startswith(PYDICOM_UID_ROOT)]
    if scripted:
        notes.append(f"{' and '.join(scripted)} generated with pydicom's UID root")


def _bits_stored(image: Any, frames: range, flags: list[str]) -> Any:
    """Flag stored values that Bits Stored cannot hold; the mask of them as evidence.

    Decoders (pydicom among them) mask native pixel data to Bits Stored, so values set in
    the unused high bits never reach the decoded array: those are counted in the raw
    Pixel Data. Decoded values are checked too (a codec may return more bits)."""
    import numpy as np

    if image.is_palette or image.pixels.dtype.kind not in "ui":
        return None
    raw = _unused_high_bits(image, frames)
    if raw is not None:
        count, first = raw
        flags.append(f"{count} stored values set bits above Bits Stored "
                     f"({image.bits_stored} of {image.bits_allocated}): outside the declared "
                     f"range, and invisible to viewers")
        return first
    bits = int(image.bits_stored)
    lo, hi = ((-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if image.pixel_representation
              else (0, 2 ** bits - 1))
    bad, worst = 0, None
    for i in frames:
        f = image.frame(i)
        fmin, fmax = int(f.min()), int(f.max())
        if fmin < lo or fmax > hi:
            mask = (f < lo) | (f > hi)
            bad += int(mask.sum())
            if worst is None:
                worst = (mask.any(axis=2) if mask.ndim == 3 else mask).astype(np.float32)
    if bad:
        flags.append(f"{bad} stored values outside the {lo}..{hi} that Bits Stored "
                     f"({bits}) allows")
    return worst


def _unused_high_bits(image: Any, frames: range) -> tuple[int, Any] | None:
    """(how many values, mask of frame 0's) where native Pixel Data sets bits above Bits
    Stored, or None. Signed data may sign-extend into them; overlay planes declared in
    the high bits (retired, but real) are left out."""
    import numpy as np

    ds = image.metadata
    ba, bs = int(image.bits_allocated), int(image.bits_stored)
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if bs >= ba or ba not in (8, 16, 32) or "PixelData" not in ds or (
            syntax is not None and syntax.is_encapsulated):
        return None
    order = "<" if syntax is None or syntax.is_little_endian else ">"
    raw = np.frombuffer(ds.PixelData, dtype=np.dtype(f"{order}u{ba // 8}"))
    per_frame = image.rows * image.columns * image.samples_per_pixel
    if raw.size < per_frame * image.n_frames:
        return None
    high_bit = int(ds.get("HighBit", bs - 1))
    used = ((1 << bs) - 1) << max(0, high_bit - bs + 1)
    unused = ((1 << ba) - 1) & ~used
    for elem in ds:  # Overlay Bit Position (60xx,0102) of each overlay group
        if elem.tag.group & 0xFF00 == 0x6000 and elem.tag.element == 0x0102:
            unused &= ~(1 << int(elem.value or 0))
    values = raw[: per_frame * len(frames)].astype(np.uint64)
    extra = values & unused
    if image.pixel_representation:  # sign extension fills them with the sign bit
        sign = (values >> high_bit) & 1
        extra = np.where(sign == 1, extra ^ unused, extra)
    bad = extra != 0
    if not bad.any():
        return None
    first = bad[:per_frame].reshape(image.rows, image.columns, -1).any(axis=2)
    return int(bad.sum()), first.astype(np.float32)


def _window(image: Any, flags: list[str]) -> None:
    """Flag pixel values that none of the file's windows shows (a rescaled image under an
    old header displays as a blank field)."""
    import numpy as np

    windows = image.windows(0)
    if not windows or image.is_color or image.is_palette:
        return
    values = image.value_transform(0).apply(image.frame(0))
    inside = [float(((values >= w.low) & (values <= w.high)).mean()) for w in windows]
    if max(inside) < WINDOW_MIN_INSIDE:
        lo, hi = float(np.min(values)), float(np.max(values))
        flags.append(f"pixel values {lo:g}..{hi:g} lie outside every declared window "
                     f"({', '.join(f'{w.low:g}..{w.high:g}' for w in windows)})")


def _low_bits(image: Any, frames: range, flags: list[str]) -> Any:
    """Flag +/-1 noise over regions that are otherwise flat; the map of such pixels."""
    import cv2
    import numpy as np

    if image.is_palette:
        return None
    for i in frames:
        f = image.frame(i)
        f = (f[..., 0] if f.ndim == 3 else f).astype(np.float32)  # exact below 2**24
        kernel = np.ones((3, 3), np.uint8)
        spread = cv2.dilate(f, kernel) - cv2.erode(f, kernel)  # 3 x 3 local range
        near = spread <= 2  # flat to within +/-1 of the neighbourhood's middle
        near_share = float(near.mean())
        if near_share < NEAR_FLAT_MIN:
            continue
        exact_share = float((spread == 0).mean()) / near_share
        if exact_share < EXACT_FLAT_MAX:
            flags.append(f"low-bit noise{'' if image.n_frames == 1 else f' in frame {i + 1}'}:"
                         f" {near_share:.0%} of the image is flat to within +/-1, but only "
                         f"{exact_share:.1%} of that is exactly flat")
            return (near & (spread > 0)).astype(np.float32)
    return None
