"""Display-only geometry: the reviewer's rotation and flip of the view, and the physical
size of a pixel for the scale bar and distance measurement.

Rotation and flip never touch the stored pixels; they turn the *rendered* image. A point
on the screen maps back to the stored grid through :meth:`ViewTransform.to_oriented` and
then the EXIF orientation (``display.display_to_stored``), so the cursor read-out and a
measurement always name stored pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy loads with the first image, not with the window
    import numpy as np


@dataclass(frozen=True)
class ViewTransform:
    """Flip left-right first (when ``hflip``), then rotate clockwise by ``rotation``."""

    rotation: int = 0  # 0, 90, 180 or 270 degrees clockwise
    hflip: bool = False

    @property
    def is_identity(self) -> bool:
        return self.rotation == 0 and not self.hflip

    # the screen operations, composed onto this transform
    def rotated(self, degrees: int) -> ViewTransform:
        return replace(self, rotation=(self.rotation + degrees) % 360)

    def flipped_horizontally(self) -> ViewTransform:
        # fliplr ∘ rot(θ) = rot(-θ) ∘ fliplr
        return ViewTransform((-self.rotation) % 360, not self.hflip)

    def flipped_vertically(self) -> ViewTransform:
        # flipud = rot(180) ∘ fliplr
        return ViewTransform((180 - self.rotation) % 360, not self.hflip)

    def apply(self, array: np.ndarray) -> np.ndarray:
        """The array as shown (a view where numpy allows it)."""
        import numpy as np

        a = array[:, ::-1] if self.hflip else array
        return np.rot90(a, -(self.rotation // 90)) if self.rotation else a

    def shape(self, rows: int, cols: int) -> tuple[int, int]:
        return (cols, rows) if self.rotation in (90, 270) else (rows, cols)

    def to_oriented(self, x: float, y: float, rows: int, cols: int) -> tuple[float, float]:
        """A point (x, y) on the shown image (continuous pixel-edge coordinates) as
        (x, y) on the un-rotated, un-flipped image of shape (rows, cols)."""
        h, w = rows, cols
        if self.rotation == 90:
            fx, fy = y, h - x
        elif self.rotation == 180:
            fx, fy = w - x, h - y
        elif self.rotation == 270:
            fx, fy = w - y, x
        else:
            fx, fy = x, y
        return (w - fx, fy) if self.hflip else (fx, fy)

    def describe(self) -> str:
        parts = [f"rotated {self.rotation}°"] if self.rotation else []
        if self.hflip:
            parts.append("flipped")
        return ", ".join(parts)


@dataclass(frozen=True)
class PixelSpacing:
    """Millimetres between pixel centres: down a column (row spacing) and along a row."""

    row_mm: float
    col_mm: float
    source: str  # the attribute it came from
    note: str = ""  # what the number means (e.g. measured at the detector)

    def distance_mm(self, dy_pixels: float, dx_pixels: float) -> float:
        return math.hypot(dy_pixels * self.row_mm, dx_pixels * self.col_mm)


def _pair(value: Any) -> tuple[float, float] | None:
    try:
        row, col = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (row, col) if row > 0 and col > 0 else None


def pixel_spacing(image: Any) -> PixelSpacing | None:
    """The image's pixel spacing from its DICOM header, or None when it states none (photos,
    secondary captures): then no length can honestly be given in mm.

    PixelSpacing (in the patient) wins; an enhanced object's shared Pixel Measures come
    next; ImagerPixelSpacing (at the detector, larger than the patient by the geometric
    magnification) is used with that said; EstimatedRadiographicMagnificationFactor
    corrects it when present, as PS3.3 C.8.11.7 describes.
    """
    ds = image.metadata if getattr(image, "kind", "") == "dicom" else None
    if ds is None:
        return None
    pair = _pair(ds.get("PixelSpacing"))
    if pair:
        return PixelSpacing(*pair, "PixelSpacing")
    for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        try:
            measures = ds[group][0].PixelMeasuresSequence[0]
        except (KeyError, IndexError, AttributeError):
            continue
        pair = _pair(measures.get("PixelSpacing"))
        if pair:
            return PixelSpacing(*pair, f"{group} PixelSpacing")
    pair = _pair(ds.get("ImagerPixelSpacing"))
    if pair:
        try:
            factor = float(ds.get("EstimatedRadiographicMagnificationFactor") or 0)
        except (TypeError, ValueError):
            factor = 0.0
        if factor > 0:
            return PixelSpacing(pair[0] / factor, pair[1] / factor,
                                "ImagerPixelSpacing / EstimatedRadiographicMagnificationFactor",
                                f"corrected for magnification {factor:g}")
        return PixelSpacing(*pair, "ImagerPixelSpacing", "at the detector plane")
    return None


def nice_length(target_mm: float) -> float:
    """The largest 1, 2 or 5 × 10^k mm not above ``target_mm`` (a scale bar's length)."""
    if target_mm <= 0:
        return 0.0
    exp = math.floor(math.log10(target_mm))
    for m in (5, 2, 1):
        if m * 10 ** exp <= target_mm:
            return float(m * 10 ** exp)
    return float(10 ** exp)
