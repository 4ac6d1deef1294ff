"""The shown images: one encode path for originals and manipulated images alike.

Whatever a file says beside its pixels must be the same for both kinds, or the file gives
the answer away:

- Photographs: decoded, then written by the same 8-bit PNG writer whether attacked or not
  (an original JPEG is decoded and re-encoded too, so its compression cannot tell it
  apart). Only the critical chunks IHDR, PLTE, IDAT and IEND are kept: no text, time,
  colour-profile or EXIF chunk. The zlib stream is stored (level 0), so a file's size
  depends on its width, height and channels only: an attack's noise, which deflates
  worse than a smooth photo, cannot show in the size.
- DICOM: both kinds go through the workbench's export (uncompressed, Explicit VR Little
  Endian), then the header is made neutral the same way: private tags, derivation
  descriptions and source references, icons (a thumbnail of the unmodified pixels) and
  comments removed; every instance UID regenerated from the study's seed; dates and times
  set to one fixed value; patient name and ID replaced by the case. The DERIVED value that
  the export writes into Image Type stays, on both kinds alike.
- Every file gets the same modification time, so a folder listing sorted by time does
  not reveal in which order (originals first?) they were made.

This is not a de-identification: what the sources say about the patient otherwise stays.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

# 2000-01-01T00:00:00Z: the one modification time of every shown file
SHOWN_MTIME = 946_684_800
SHOWN_DATE, SHOWN_TIME = "20000101", "000000"
SERIES_DESCRIPTION = "READER STUDY IMAGE - NOT FOR CLINICAL USE"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_KEPT = (b"IHDR", b"PLTE", b"IDAT", b"IEND")
# What would tell a manipulated copy from an original, or link a case to its source.
_REMOVED = frozenset({
    "DerivationDescription", "DerivationCodeSequence", "SourceImageSequence",
    "SourceImageEvidenceSequence", "DerivationImageSequence", "ReferencedImageSequence",
    "ReferencedSeriesSequence", "ReferencedStudySequence", "ReferencedPatientSequence",
    "ReferencedPerformedProcedureStepSequence", "ContributingEquipmentSequence",
    "RequestAttributesSequence", "OriginalAttributesSequence", "IconImageSequence",
    "DigitalSignaturesSequence", "MACParametersSequence", "ImageComments",
    "StudyDescription", "PerformedProcedureStepDescription", "AccessionNumber",
})


def shown_suffix(image: Any) -> str:
    """The shown file's extension: every photo becomes a PNG, every DICOM stays DICOM."""
    return ".png" if image.kind == "photo" else ".dcm"


def write_shown(image: Any, x01: np.ndarray, mapping: Any, out: Path, case: str,
                uid_seed: str) -> Path:
    """Write ``x01`` (C x H x W in [0, 1], the original's pixels or the attacked ones)
    as the shown file of ``case`` at ``out`` (its suffix is :func:`shown_suffix`)."""
    if image.kind == "photo":
        out.write_bytes(png_bytes(x01, mapping))
    else:
        _write_dicom(image, x01, mapping, out, case, uid_seed)
    os.utime(out, (SHOWN_MTIME, SHOWN_MTIME))
    return out


def png_bytes(x01: np.ndarray, mapping: Any) -> bytes:
    """The 8-bit PNG of ``x01``: the photo's mapping (grey stays grey, three equal
    channels stay three), at 8 bits whatever the source's depth."""
    import cv2

    from ..imaging.model_input import channels_last

    eight = dataclasses.replace(mapping, lo=0.0, hi=255.0, dtype="|u1")
    stored = channels_last(eight.to_stored(x01))
    if stored.ndim == 3:
        stored = cv2.cvtColor(np.ascontiguousarray(stored), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(stored),
                           [cv2.IMWRITE_PNG_COMPRESSION, 0])
    if not ok:
        raise OSError("cannot encode a PNG")
    return critical_chunks_only(buf.tobytes())


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of every chunk of a PNG file's bytes."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    out, pos = [], len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        out.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return out


def critical_chunks_only(data: bytes) -> bytes:
    """The PNG without its ancillary chunks (text, time, profiles, EXIF): whatever an
    encoder adds, nothing but the pixels is left to read."""
    kept, pos = [PNG_SIGNATURE], len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        if data[pos + 4:pos + 8] in PNG_KEPT:
            kept.append(data[pos:pos + 12 + length])
        pos += 12 + length
    return b"".join(kept)


def _write_dicom(image: Any, x01: np.ndarray, mapping: Any, out: Path, case: str,
                 uid_seed: str) -> None:
    import pydicom

    from ..imaging.export import save_derived

    tmp = out.with_name(f".{out.stem}.export.dcm")
    try:
        written = save_derived(image, x01, mapping, tmp, "", 0)
        ds = pydicom.dcmread(written)
        neutralise(ds, case, uid_seed)
        ds.save_as(out, enforce_file_format=True)
    finally:
        for leftover in (tmp, tmp.with_suffix(".dcm")):
            leftover.unlink(missing_ok=True)


def neutralise(ds: Any, case: str, uid_seed: str) -> None:
    """Make a DICOM header say the same for an original and a manipulated copy (see the
    module docstring); in place."""
    from pydicom.uid import generate_uid

    ds.remove_private_tags()
    uids: dict[str, str] = {}

    def new_uid(old: str) -> str:
        if old not in uids:
            uids[old] = generate_uid(entropy_srcs=[uid_seed, case, old])
        return uids[old]

    def visit(dataset: Any) -> None:
        for elem in list(dataset):
            if elem.keyword in _REMOVED:
                del dataset[elem.tag]
            elif elem.VR == "SQ":
                for item in elem.value:
                    visit(item)
            elif elem.VR == "UI" and elem.value:
                # DICOM's own UIDs (SOP classes, transfer syntaxes, coding schemes) say
                # what the object is, the same for both kinds; every other one is an
                # instance's identity, which would link a case to its source
                values = elem.value if isinstance(elem.value, list) else [elem.value]
                new = [str(v) if str(v).startswith("1.2.840.10008.") else new_uid(str(v))
                       for v in values]
                elem.value = new if isinstance(elem.value, list) else new[0]
            elif elem.VR in ("DA", "TM", "DT") and elem.value:
                elem.value = {"DA": SHOWN_DATE, "TM": SHOWN_TIME,
                              "DT": SHOWN_DATE + SHOWN_TIME}[elem.VR]

    visit(ds)
    if "PatientBirthDate" in ds:
        ds.PatientBirthDate = ""
    ds.PatientName = "READER^STUDY"
    ds.PatientID = case
    ds.SeriesDescription = SERIES_DESCRIPTION
    for kw in ("SeriesNumber", "InstanceNumber"):
        if kw in ds:
            setattr(ds, kw, 1)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
