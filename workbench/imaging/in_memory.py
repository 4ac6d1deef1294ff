"""A MedicalImage made from an array in memory (an attacked batch during evaluation):
the 8-bit RGB or greyscale photo that saving it as PNG would give, without the disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .medical_image import MedicalImage


def image_from_unit_array(x01: np.ndarray, name: str) -> MedicalImage:
    """C x H x W (C = 1 or 3) values in [0, 1] -> an 8-bit photo called ``name``."""
    x = np.asarray(x01, dtype=np.float32)
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"{name}: expected C x H x W with C = 1 or 3, got {x.shape}")
    return image_from_uint8(unit_to_uint8(x), name)


def unit_to_uint8(x01: np.ndarray) -> np.ndarray:
    """C x H x W (C = 1 or 3) values in [0, 1] -> H x W (grey) or H x W x 3 uint8, each
    value round(255 * clip(v, 0, 1)): what an 8-bit PNG of it holds. The arithmetic is
    done in place on one float copy (a mammogram's channel is 49 MB)."""
    levels = np.clip(np.asarray(x01, dtype=np.float32), 0, 1)
    levels *= 255
    pixels = np.rint(levels, out=levels).astype(np.uint8)
    return pixels[0] if pixels.shape[0] == 1 else np.ascontiguousarray(
        pixels.transpose(1, 2, 0))


def image_from_uint8(pixels: np.ndarray, name: str,
                     value_range: tuple[float, float] | None = None) -> MedicalImage:
    """An H x W (grey) or H x W x 3 (RGB) uint8 array as an 8-bit photo called ``name``,
    its pixels the array itself (no copy; it becomes read-only, as every image's pixels
    are). ``value_range``: when the caller knows it (a rendering: the 8-bit scale), so
    that nothing scans the pixels for it."""
    photometric = "MONOCHROME2" if pixels.ndim == 2 else "RGB"
    return MedicalImage(
        path=Path(name), kind="photo", pixels=pixels, n_frames=1,
        samples_per_pixel=1 if pixels.ndim == 2 else 3, photometric=photometric,
        stored_photometric=photometric, modality="XC",
        metadata={"Format": "in-memory", "Width": pixels.shape[1], "Height": pixels.shape[0]},
        transfer_syntax="in-memory", transfer_syntax_name="in-memory (8-bit, lossless)",
        bits_allocated=8, bits_stored=8, pixel_representation=0, _value_range=value_range)
