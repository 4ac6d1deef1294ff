"""Stored values <-> the [0, 1] image space classifiers and attacks work in.

The mapping is explicit and invertible up to quantisation, so an adversarial image can
be written back in the stored dtype and re-read:
- photos: value / (2**bits - 1), RGB (alpha dropped);
- DICOM greyscale: (stored - lo) / (hi - lo) over the frame's stored data range, inverted
  for MONOCHROME1 so the model sees the display polarity; one channel;
- DICOM colour: value / (2**bits - 1); palette colour goes through its palette to RGB;
- RGB whose three channels are equal (a chest X-ray saved as a colour JPEG): one grey
  channel, written back as three equal ones. An attack on three independent copies of
  one grey picture would have three times the freedom a real one has, and its result
  would be a colour image that no X-ray machine makes.
The EXIF orientation is not applied: attacks perturb the stored pixel grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .colour_content import has_colour
from .medical_image import MedicalImage


@dataclass(frozen=True)
class ValueMapping:
    lo: float
    hi: float
    invert: bool
    dtype: str  # numpy dtype string of the stored values
    channels: int  # 1 or 3
    from_palette: bool = False
    replicate: int = 0  # 3: one grey channel in the model's space, three equal on disk

    @property
    def levels(self) -> int | None:
        """How many steps of the stored grid span [0, 1]: every value this mapping writes
        back is j / levels for a whole j (lo and hi are whole for integer data, so that
        holds inverted too). None for floating-point pixel data, which has no grid."""
        if np.dtype(self.dtype).kind not in "ui" and not self.from_palette:
            return None
        return max(1, int(round(self.hi - self.lo)))

    def to_stored(self, x01: np.ndarray) -> np.ndarray:
        """[0, 1] values (C x H x W or H x W x C) -> stored dtype, rounded and clipped."""
        x = np.clip(np.asarray(x01, dtype=np.float64), 0.0, 1.0)
        if self.invert:
            x = 1.0 - x
        values = np.rint(self.lo + x * (self.hi - self.lo))
        if self.replicate and values.ndim == 3 and values.shape[0] == 1:
            values = np.repeat(values, self.replicate, axis=0)
        info = np.iinfo(np.dtype(self.dtype)) if np.dtype(self.dtype).kind in "ui" else None
        if info is not None:
            values = np.clip(values, info.min, info.max)
        return values.astype(np.dtype(self.dtype).newbyteorder("="))


def to_model_input(image: MedicalImage, frame: int = 0,
                   value_range: tuple[float, float] | None = None
                   ) -> tuple[np.ndarray, ValueMapping]:
    """The frame as float32 C x H x W in [0, 1], and the mapping back to stored values.

    ``value_range`` fixes (lo, hi) for DICOM greyscale instead of the frame's own data
    range: re-reading a derived image with its original's mapping gives back exactly the
    values the attack produced (up to quantisation)."""
    src = image.frame(frame)
    if image.is_palette:
        from .display import render

        rgb = render(image, frame, oriented=False)
        return (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1).copy(), \
            ValueMapping(0.0, 255.0, False, "|u1", 3, from_palette=True)
    if image.samples_per_pixel >= 3 and not has_colour(image):
        top = float(2 ** image.bits_stored - 1) if src.dtype.kind in "ui" else 1.0
        grey = src[..., 0].astype(np.float32) / top
        return grey[None].copy(), ValueMapping(0.0, top, False, src.dtype.str, 1,
                                               replicate=3)
    if image.samples_per_pixel >= 3:
        top = float(2 ** image.bits_stored - 1) if src.dtype.kind in "ui" else 1.0
        rgb = src[..., :3].astype(np.float32) / top
        return rgb.transpose(2, 0, 1).copy(), ValueMapping(0.0, top, False, src.dtype.str, 3)
    if image.kind == "photo":
        top = float(2 ** image.bits_stored - 1)
        return (src.astype(np.float32) / top)[None], \
            ValueMapping(0.0, top, False, src.dtype.str, 1)
    lo, hi = value_range if value_range is not None else (float(src.min()), float(src.max()))
    if hi <= lo:
        hi = lo + 1.0
    x = (src.astype(np.float32) - lo) / (hi - lo)
    invert = image.inverted
    if invert:
        x = 1.0 - x
    return x[None].astype(np.float32), ValueMapping(lo, hi, invert, src.dtype.str, 1)


def channels_last(x: np.ndarray) -> np.ndarray:
    """C x H x W -> H x W x C (or H x W for one channel)."""
    return x[0] if x.shape[0] == 1 else x.transpose(1, 2, 0)

