"""What a study-list row says before the image is decoded: modality, size and frames,
from the header alone (a DICOM file read up to its pixel data, a photo's header), so a
folder of hundreds of files is described in a moment and nothing is decoded twice."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HeaderSummary:
    modality: str
    columns: int
    rows: int
    frames: int


def header_summary(path: str | os.PathLike[str]) -> HeaderSummary | None:
    """The row's facts from the header, or None when the header cannot say (the full
    read, when the row is opened, reports why)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            head = fh.read(132)
        if head[128:132] == b"DICM" or p.suffix.lower() in (".dcm", ".dicom", ".ima"):
            return _dicom(p)
        return _photo(p)
    except Exception:  # a header summary is a courtesy: never an error of its own
        return None


def _dicom(p: Path) -> HeaderSummary | None:
    import pydicom

    from .deflate_guard import check_deflated_dataset

    check_deflated_dataset(p)  # pydicom would inflate a bomb whole to read its header
    ds = pydicom.dcmread(p, stop_before_pixels=True)
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if not rows or not cols:
        return None
    return HeaderSummary(str(ds.get("Modality", "") or "OT"), cols, rows,
                         int(ds.get("NumberOfFrames", 1) or 1))


def _photo(p: Path) -> HeaderSummary | None:
    from PIL import Image

    with Image.open(p) as im:  # reads the header only
        cols, rows = im.size
        frames = int(getattr(im, "n_frames", 1) or 1)
    # the stored size, as the row says once the image is decoded (EXIF turns it for display)
    return HeaderSummary("XC", cols, rows, frames)
