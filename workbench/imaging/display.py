"""The display pipeline: stored values -> 8-bit RGB for any window/level.

Order of operations, as in DICOM PS3.3 C.11: modality transform (rescale slope and
intercept), then the VOI transform (window centre/width with the file's VOI LUT
function, or the file's VOI LUT), then the presentation (MONOCHROME1 inverted, palette
colour looked up). For integer data of up to 16 bits the whole chain is folded into one
lookup table over every possible stored code, so rendering is one indexing pass over a
view of the original array: the stored pixels are never copied or changed.

EXIF orientation is applied last, as a view, for photos.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .medical_image import MedicalImage, Window
from .presets import PRESETS_CT  # noqa: F401  (re-exported for callers of the pipeline)


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """Map output values to 0..255 with the DICOM VOI LUT function of ``window``."""
    x = np.asarray(values, dtype=np.float64)
    c, w = float(window.center), float(window.width)
    function = window.function.upper()
    if function == "SIGMOID":
        with np.errstate(over="ignore"):  # exp overflow -> inf -> y = 0, as it should
            y = 255.0 / (1.0 + np.exp(-4.0 * (x - c) / max(w, 1e-12)))
    elif function == "LINEAR_EXACT":
        w = max(w, 1e-12)
        y = np.clip((x - c) / w + 0.5, 0.0, 1.0) * 255.0
    else:  # LINEAR (C.11.2.1.2.1): width is at least 1
        w = max(w, 1.0)
        if w == 1.0:
            y = np.where(x <= c - 0.5, 0.0, 255.0)
        else:
            y = np.clip((x - (c - 0.5)) / (w - 1.0) + 0.5, 0.0, 1.0) * 255.0
    return np.rint(y).astype(np.uint8)


def _code_domain(dtype: np.dtype) -> np.ndarray | None:
    """Every value a stored integer of this dtype can take, in the order of its unsigned
    bit pattern (so ``lut[codes_view]`` indexes it directly); None if too wide for a LUT."""
    if dtype.kind not in "ui" or dtype.itemsize > 2:
        return None
    unsigned = np.arange(2 ** (8 * dtype.itemsize), dtype=f"u{dtype.itemsize}")
    return unsigned.view(f"i{dtype.itemsize}") if dtype.kind == "i" else unsigned


def _as_codes(frame: np.ndarray) -> np.ndarray:
    """Reinterpret signed integers as their unsigned bit patterns (a view, no copy)."""
    if frame.dtype.kind == "i":
        return frame.view(frame.dtype.str.replace("i", "u"))
    return frame


def _voi_lut_values(image: MedicalImage, values: np.ndarray) -> np.ndarray:
    """Apply the file's VOI LUT (PS3.3 C.11.2.1.1), scaled from its output range to 0..255."""
    lut = image.voi_lut
    out = lut.apply(values)
    top = max(float(lut.lut.max()), 1.0)
    return np.rint(out / top * 255.0).astype(np.uint8)


def _gray_map(image: MedicalImage, values_in: np.ndarray, frame: int, window: Window | None,
              use_voi_lut: bool) -> np.ndarray:
    values = image.value_transform(frame).apply(values_in)
    if use_voi_lut and image.has_voi_lut:
        out = _voi_lut_values(image, values)
    else:
        out = apply_window(values, window or image.default_window(frame))
    if image.inverted:
        out = 255 - out
    return out


def _palette_table(image: MedicalImage) -> np.ndarray:
    """(codes, 3) uint8 RGB table of a PALETTE COLOR image, built once per image."""
    cache = image.display_cache
    if "palette" not in cache:
        from pydicom.pixels import apply_color_lut

        codes = _code_domain(image.pixels.dtype)
        rgb = apply_color_lut(codes, image.metadata)
        if rgb.dtype != np.uint8:
            rgb = np.rint(rgb.astype(np.float64) / 257.0).astype(np.uint8)
        cache["palette"] = np.ascontiguousarray(rgb.reshape(len(codes), 3))
    return cache["palette"]


def render(
    image: MedicalImage,
    frame: int = 0,
    window: Window | None = None,
    *,
    use_voi_lut: bool = False,
    step: int = 1,
    gray: bool = False,
    oriented: bool = True,
) -> np.ndarray:
    """Render one frame as uint8 RGB (rows, cols, 3), or (rows, cols) when ``gray`` is set
    and the image is monochrome (a third of the memory, for the GUI's fast path).

    ``step`` > 1 renders every step-th pixel (for a zoomed-out view). The result is a new
    array; ``image.pixels`` is only read.
    """
    src = image.frame(frame)
    if oriented and image.orientation != 1:
        # orient first (a view), so that a decimated rendering samples the same grid as
        # the full one: render(step=s) == render()[::s, ::s]
        src = orient(src, image.orientation)
    if step > 1:
        src = src[::step, ::step]
    if image.samples_per_pixel == 4:  # RGBA photos: the alpha channel is not displayed
        src = src[..., :3]
    codes = _code_domain(src.dtype)
    if codes is not None and not image.is_palette and src.size * 2 < codes.size:
        # fewer pixels than half the codes (a 128x128 CT against 65,536 codes): mapping
        # the pixels directly is cheaper than building the table, and gives the same bytes
        codes = None

    if image.is_palette and codes is not None:
        out = _palette_table(image)[_as_codes(src)]
    elif codes is not None:
        lut = _gray_map(image, codes, frame, window, use_voi_lut)
        indexed = _as_codes(src)
        if image.is_color or gray:
            out = lut[indexed]
        else:
            out = np.repeat(lut[:, None], 3, axis=1)[indexed]
    else:  # 32-bit or float data: compute directly
        out = _gray_map(image, src, frame, window, use_voi_lut)
        if not image.is_color and not gray:
            out = np.repeat(out[..., None], 3, axis=-1)
    return out


# --- EXIF orientation (1..8), as views --------------------------------------------------
def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation to an image array (rows, cols[, ...]) as a view."""
    a = array
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return a.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(a, -1)
    if orientation == 7:
        return a[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(a, 1)
    return a


def oriented_shape(rows: int, cols: int, orientation: int) -> tuple[int, int]:
    return (cols, rows) if orientation in (5, 6, 7, 8) else (rows, cols)


def display_to_stored(row: int, col: int, rows: int, cols: int,
                      orientation: int) -> tuple[int, int]:
    """Map a pixel of the oriented display back to (row, col) in the stored array of
    shape (rows, cols): the inverse of :func:`orient`."""
    h, w = rows, cols
    mapping: dict[int, Any] = {
        1: lambda r, c: (r, c),
        2: lambda r, c: (r, w - 1 - c),
        3: lambda r, c: (h - 1 - r, w - 1 - c),
        4: lambda r, c: (h - 1 - r, c),
        5: lambda r, c: (c, r),
        6: lambda r, c: (h - 1 - c, r),
        7: lambda r, c: (h - 1 - c, w - 1 - r),
        8: lambda r, c: (c, w - 1 - r),
    }
    return mapping.get(orientation, mapping[1])(row, col)
