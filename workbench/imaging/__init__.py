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
from .loader import find_images, load_image
from .medical_image import MedicalImage, ValueTransform, Window

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
