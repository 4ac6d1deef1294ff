"""Finding the capture record of an image: its sidecar, else the ledger, by SOP Instance
UID, file hash, pixel fingerprint or perceptual hash (in that order: the most exact way
that finds one)."""

from __future__ import annotations

import os
from typing import Any

from ...imaging.medical_image import MedicalImage
from .fingerprint import dataset_sha256, file_sha256, perceptual_hash, pixel_fingerprint
from .record import read_record, sidecar_path

#: bits of 64 within which a perceptual hash names a suspect copy's record
PERCEPTUAL_MAX_DISTANCE = 10
#: in the "how it was found" text of a record found by appearance alone: the record of
#: an image that looks like this one, which may be another image (a neighbouring slice)
BY_APPEARANCE = "by perceptual hash"


def find_record(image: MedicalImage, ledger: Any = None,
                perceptual: str | None = None, *,
                sidecar: bool = True) -> tuple[dict | None, str]:
    """The record of ``image``: its sidecar (unless ``sidecar`` is False), else the ledger
    by SOP Instance UID, pixel hash, file hash or perceptual hash. Returns (record, how it
    was found); raises RecordError for a sidecar that cannot be read."""
    side = sidecar_path(image.path)
    if sidecar and side.is_file():
        return read_record(side), f"sidecar {side.name}"
    if ledger is None:
        return None, "no sidecar and no ledger"
    uid = image.metadata.get("SOPInstanceUID") if image.kind == "dicom" else None
    if uid:
        hits = ledger.find(sop_instance_uid=str(uid))
        if len(hits) > 1:
            # one UID captured more than once (a modality resending, or sending the same
            # instance in two encodings): the record of these very bytes, if one is
            hit = _record_of_these_bytes(image.path, hits)
            if hit is not None:
                return record_of_entry(hit), (f"ledger entry {hit.index} by SOP Instance UID "
                                         f"and file hash ({len(hits)} records of this UID)")
            return record_of_entry(hits[-1]), (f"ledger entry {hits[-1].index} by SOP Instance "
                                          f"UID (the latest of {len(hits)})")
        if hits:
            return record_of_entry(hits[-1]), f"ledger entry {hits[-1].index} by SOP Instance UID"
    hits = ledger.find(file_sha256=file_sha256(image.path))
    if hits:
        return record_of_entry(hits[-1]), f"ledger entry {hits[-1].index} by file hash"
    hits = ledger.find(pixel_sha256=pixel_fingerprint(image).sha256)
    if hits:
        return record_of_entry(hits[-1]), f"ledger entry {hits[-1].index} by pixel fingerprint"
    near = ledger.find_by_perceptual_hash(perceptual or perceptual_hash(image),
                                          PERCEPTUAL_MAX_DISTANCE)
    if near:
        entry, distance = near[0]
        return record_of_entry(entry), (f"ledger entry {entry.index} {BY_APPEARANCE} "
                                        f"(distance {distance} of 64 bits)")
    return None, "no sidecar, and no ledger entry matches its UID, hashes or appearance"


def _record_of_these_bytes(path: str | os.PathLike[str], hits: list) -> Any:
    """The latest of ``hits`` whose record names this file's bytes or data set bytes."""
    whole, dataset = file_sha256(path), dataset_sha256(path)
    for entry in reversed(hits):
        recorded = record_of_entry(entry).get("file") or {}
        if recorded.get("sha256") == whole or (
                dataset is not None and recorded.get("dataset_sha256") == dataset):
            return entry
    return None


def record_of_entry(entry: Any) -> dict:
    """The signed record a ledger entry holds."""
    from .canonical_json import parse_json

    return parse_json(entry.record_bytes)
