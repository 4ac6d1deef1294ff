"""One entry point to load any supported image: :func:`load_image`.

It decides by content (not by file name) whether a file is DICOM or a photo, and
guarantees that every failure is an :class:`ImageLoadError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from .dicom_reader import CancelledFn, ProgressFn, read_dicom

# re-exported: callers list folders through the loader as before
from .discovery import (  # noqa: F401
    PHOTO_SUFFIXES,
    find_images,
    is_dicom_file,
    special_file_kind,
)
from .errors import (
    CorruptImageError,
    FileUnreadableError,
    ImageLoadError,
    ImageTooLargeError,
    NotAnImageError,
)
from .medical_image import MedicalImage
from .photo_reader import read_photo, sniff_photo_format


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
