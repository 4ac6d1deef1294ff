"""Qt-free imaging core: the MedicalImage model, readers, and the display pipeline."""

from .errors import (
    CorruptImageError,
    FileUnreadableError,
    ImageLoadError,
    ImageTooLargeError,
    NoPixelDataError,
    NotAnImageError,
    TruncatedFileError,
    UnsupportedEncodingError,
)
from .medical_image import MedicalImage, ValueTransform, Window


def __getattr__(name: str):
    # The readers pull in numpy; load them on first use so that importing the package
    # (e.g. for Window or the error types) stays cheap for the GUI's first paint.
    if name == "load_image":
        from . import loader

        return loader.load_image
    if name == "find_images":  # no reader behind it: the GUI lists folders on its thread
        from .discovery import find_images

        return find_images
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "CorruptImageError",
    "FileUnreadableError",
    "ImageLoadError",
    "ImageTooLargeError",
    "MedicalImage",
    "NoPixelDataError",
    "NotAnImageError",
    "TruncatedFileError",
    "UnsupportedEncodingError",
    "ValueTransform",
    "Window",
    "find_images",
    "load_image",
]
