"""Which files under a folder may be images, without reading any pixel: photos by
suffix, DICOM by its magic or suffix. Standard library only: the GUI lists a dropped
folder on its own thread, and importing the readers (pydicom, numpy) there froze the
window for a fifth of a second on the first open."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"}
DICOM_SUFFIXES = {".dcm", ".dicom", ".ima"}


def find_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Files under a folder that may be images, sorted: photos by suffix, and anything
    else that starts like DICOM (many DICOM files have no suffix at all). A FIFO, socket
    or device is listed only when its name says image (so that the command reports it
    and goes on), and is never opened here."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            p = Path(root) / name
            named = p.suffix.lower() in PHOTO_SUFFIXES | DICOM_SUFFIXES
            if named or (not special_file_kind(p) and _is_dicom(p)):
                out.append(p)
    return out


def is_dicom_file(path: str | os.PathLike[str]) -> bool:
    """Whether a file is DICOM by its magic ('DICM' after the preamble) or, for the data
    sets written without one, by its suffix; no pixel is decoded."""
    p = Path(path)
    return _is_dicom(p) or (p.is_file() and p.suffix.lower() in DICOM_SUFFIXES)


def special_file_kind(path: Path) -> str:
    """"a FIFO", "a socket", "a device" for files that are not regular (reading them can
    block for ever or never end), else ""."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return ""  # a broken link or a loop: opening it fails with a clear message
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return ""


def _is_dicom(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"
