"""The comparison view's maps as pictures: colours, scales and the fitting of a map to
the stored grid, made off the widgets (the views draw them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy loads with the first image, not with the window
    import numpy as np

SSIM = "1 − SSIM (bright = dissimilar)"
DIFFERENCES = ("absolute difference", "signed difference", SSIM)
SALIENCY = {"saliency: input gradient": "input gradient", "saliency: Grad-CAM": "Grad-CAM"}
OVERLAYS = ("none", *DIFFERENCES, *SALIENCY)
EVIDENCE = "evidence: "
SIDES = ("suspect", "reference", "both")


def diverging_rgb(m: np.ndarray, top: float) -> np.ndarray:
    """Blue (−top) – white (0) – red (+top)."""
    import numpy as np

    t = np.clip(m / (top or 1.0), -1, 1)
    r = np.where(t > 0, 1.0, 1 + t)
    b = np.where(t < 0, 1.0, 1 - t)
    g = 1 - np.abs(t)
    return (np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)


def map_top(kind: str, m: np.ndarray) -> float:
    """The value drawn at full colour. Sparse maps (residuals, gradients, differences) are
    scaled at their 99.9th percentile so a few extreme pixels do not turn the rest black;
    signed differences at their largest magnitude; 1 − SSIM on its own 0..1 scale."""
    import numpy as np

    if kind == SSIM:
        return 1.0
    if kind == "signed difference":
        return float(np.abs(m).max()) or 1.0
    return float(np.percentile(m, 99.9)) or float(m.max()) or 1.0


def map_unit(kind: str) -> str:
    if kind == "absolute difference":
        return "|suspect − reference|, stored values"
    if kind == "signed difference":
        return "suspect − reference, stored values (blue: lower, red: higher)"
    if kind == SSIM:
        return "1 − local SSIM (0 = identical structure)"
    if kind.startswith(EVIDENCE):
        return f"{kind[len(EVIDENCE):]} evidence, in the detector's own units"
    return "saliency, relative to the map's own range"


def colour_map(kind: str, m: np.ndarray, top: float | None = None) -> np.ndarray:
    """A map as RGB on the scale ``top`` (default: :func:`map_top`): inferno for
    magnitudes, blue-white-red for signed differences. A difference map is RGBA, clear
    where the two images are identical: drawn there in inferno's black (or the diverging
    map's white) it dimmed (or paled) one side alone, which read as the two differing."""
    import numpy as np

    from ...analysis.perturbation import heatmap_rgb

    top = map_top(kind, m) if top is None else top
    if kind == "signed difference":
        rgb, same = diverging_rgb(m, top), m == 0
    elif kind == SSIM:
        rgb, same = heatmap_rgb(1.0 - np.clip(m, 0, 1), scale=1.0)[0], m >= 1.0
    else:
        rgb = heatmap_rgb(m, scale=top)[0]
        if kind != "absolute difference":
            return rgb
        same = m == 0
    alpha = np.where(same, 0, 255).astype(np.uint8)
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


def map_scale(kind: str, maps: list[np.ndarray]) -> Any:
    """The colour bar's scale of ``maps``, drawn with one shared top (a pass over every
    map: made once per overlay, never per window/level move; see :func:`with_levels`)."""
    import numpy as np

    from .map_view import DIVERGING, INFERNO, Scale

    top = max(map_top(kind, m) for m in maps)
    most = max(float(np.abs(m).max()) for m in maps) if kind != SSIM else 1.0
    low = -top if kind == "signed difference" else 0.0
    return Scale(DIVERGING if kind == "signed difference" else INFERNO, low, top,
                 map_unit(kind), saturates=most > top * (1 + 1e-6))


def with_levels(scale: Any, kind: str, window: Any = None, value_slope: float = 1.0) -> Any:
    """``scale`` with the range of a stored-value difference in 8-bit display levels of
    the shown ``window`` (arithmetic only: it follows every window/level drag)."""
    from dataclasses import replace

    if kind not in ("absolute difference", "signed difference") or window is None \
            or getattr(window, "width", 0) <= 0:
        return replace(scale, note="")
    levels = scale.high * abs(value_slope) * 255.0 / window.width
    return replace(scale, note=f"= {levels:.3g} display levels of 255 at W "
                               f"{window.width:.6g}")


def fit_to(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A map resized to (rows, cols) of the stored grid (detectors may work smaller)."""
    import cv2
    import numpy as np

    m = np.asarray(m, dtype=np.float32)
    if m.ndim == 3:
        m = m.max(axis=-1)
    if m.shape != tuple(shape):
        m = cv2.resize(m, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return m
