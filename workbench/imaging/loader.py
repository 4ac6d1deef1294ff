"""One entry point to load any supported image: :func:`load_image`.

It decides by content (not by file name) whether a file is DICOM or a photo, and
guarantees that every failure is an :class:`ImageLoadError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from .dicom_reader import CancelledFn, ProgressFn, read_dicom
from .errors import (
    CorruptImageError,
    FileUnreadableError,
    ImageLoadError,
    ImageTooLargeError,
    NotAnImageError,
)
from .medical_image import MedicalImage
from .photo_reader import read_photo, sniff_photo_format

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"}


def load_image(
    path: str | os.PathLike[str],
    *,
    max_bytes: int | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> MedicalImage:
    """Load a DICOM file or photo. Only :class:`ImageLoadError` (and subclasses) escape.

    The file is opened read-only; nothing is ever written to it.
    """
    p = Path(path)
    try:
        return _load(p, max_bytes, progress, cancelled)
    except ImageLoadError:
        raise
    except MemoryError:
        raise ImageTooLargeError(p, "not enough memory to load this image") from None
    except RecursionError:
        raise CorruptImageError(p, "the file's structure is nested too deeply") from None
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # the guarantee: no other exception type reaches the caller
        # (BaseException too: decoders written in Rust panic with pyo3's PanicException)
        first = str(exc).strip().splitlines()
        detail = f"{type(exc).__name__}: {first[0]}" if first else type(exc).__name__
        raise CorruptImageError(p, f"unreadable image ({detail})") from None


def _load(
    path: Path,
    max_bytes: int | None,
    progress: ProgressFn | None,
    cancelled: CancelledFn | None,
) -> MedicalImage:
    if not path.exists():
        raise FileUnreadableError(path, "no such file")
    if path.is_dir():
        raise FileUnreadableError(path, "is a folder, not a file")
    kind = special_file_kind(path)
    if kind:  # opening a FIFO blocks until a writer comes: never open one
        raise FileUnreadableError(path, f"is {kind}, not a regular file")
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError as exc:
        raise FileUnreadableError(path, exc.strerror or str(exc)) from None
    if not head:
        raise NotAnImageError(path, "the file is empty")
    if len(head) == 132 and head[128:132] == b"DICM":
        return read_dicom(path, max_bytes=max_bytes, progress=progress, cancelled=cancelled)
    if sniff_photo_format(head) is not None:
        return read_photo(path, max_bytes=max_bytes)
    if path.suffix.lower() in PHOTO_SUFFIXES:
        raise NotAnImageError(path, f"named {path.suffix} but its content is not that format")
    # DICOM without preamble, or anything else: the DICOM reader decides and refuses clearly.
    return read_dicom(path, max_bytes=max_bytes, progress=progress, cancelled=cancelled)


def special_file_kind(path: Path) -> str:
    """"a FIFO", "a socket", "a device" for files that are not regular (reading them can
    block for ever or never end), else ""."""
    import stat

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
            named = p.suffix.lower() in PHOTO_SUFFIXES | {".dcm", ".dicom", ".ima"}
            if named or (not special_file_kind(p) and _is_dicom(p)):
                out.append(p)
    return out


def is_dicom_file(path: str | os.PathLike[str]) -> bool:
    """Whether a file is DICOM by its magic ('DICM' after the preamble) or, for the data
    sets written without one, by its suffix; no pixel is decoded."""
    p = Path(path)
    return _is_dicom(p) or (p.is_file() and p.suffix.lower() in (".dcm", ".dicom", ".ima"))


def _is_dicom(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"
