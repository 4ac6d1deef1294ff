"""Typed errors for images that cannot be loaded.

Every failure to read an image surfaces as one :class:`ImageLoadError` (or a subclass)
whose message names the file and the reason, so the GUI can show it in a dialog and the
CLI can print it on one line. No other exception type escapes the readers.
"""

from __future__ import annotations

from pathlib import Path


class ImageLoadError(Exception):
    """An image could not be loaded. ``str(err)`` is "<file>: <reason>"."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason.strip().splitlines()[0] if reason.strip() else "unknown error"
        super().__init__(f"{self.path}: {self.reason}")


class FileUnreadableError(ImageLoadError):
    """The file does not exist, is a directory, or cannot be opened."""


class NotAnImageError(ImageLoadError):
    """The file is neither DICOM nor a supported photo format."""


class TruncatedFileError(ImageLoadError):
    """The file ends before its declared content (pixel data or header) does."""


class NoPixelDataError(ImageLoadError):
    """A DICOM object without an image (a structured report, a plan, ...)."""


class UnsupportedEncodingError(ImageLoadError):
    """The pixel data uses an encoding no installed decoder can handle."""


class CorruptImageError(ImageLoadError):
    """The header was read but the pixel data could not be decoded."""


class ImageTooLargeError(ImageLoadError):
    """The decoded image would exceed the configured size limit (decompression bomb guard)."""
