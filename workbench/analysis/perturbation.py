"""Where and how much an image differs from its original, as a picture people can read."""

from __future__ import annotations

import numpy as np


def perturbation_map(original: np.ndarray, adversarial: np.ndarray) -> np.ndarray:
    """|adversarial - original| per pixel, the largest over channels: H x W float32.
    Inputs are C x H x W (or H x W) arrays on the same scale."""
    a = np.asarray(original, dtype=np.float32)
    b = np.asarray(adversarial, dtype=np.float32)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    d = np.abs(b - a)
    return d.max(axis=0) if d.ndim == 3 else d


def heatmap_rgb(diff: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, float]:
    """Colour-map a difference map (inferno: black = unchanged, yellow = largest change).
    ``scale`` is the difference shown at full colour; default the map's own maximum, so
    an imperceptible perturbation becomes visible (the amplification is returned)."""
    import cv2

    top = float(scale) if scale else float(diff.max())
    top = top if top > 0 else 1.0
    level = np.clip(diff / top * 255.0, 0, 255).astype(np.uint8)
    bgr = cv2.applyColorMap(level, cv2.COLORMAP_INFERNO)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), top


def to_rgb8(x: np.ndarray) -> np.ndarray:
    """C x H x W (C = 1 or 3) in [0, 1] -> H x W x 3 uint8 for display.

    In 8 bits before a grey channel is repeated, and repeated by OpenCV: np.repeat of the
    float channel held the GIL through a 146 MB copy on a mammogram (160 ms in which the
    GUI thread could not run), and took three times the arithmetic."""
    from ..imaging.in_memory import unit_to_uint8

    x = np.asarray(x, dtype=np.float32)
    u8 = unit_to_uint8(x[None] if x.ndim == 2 else x)
    if u8.ndim == 2:
        import cv2

        return cv2.cvtColor(u8, cv2.COLOR_GRAY2RGB)
    return u8


def overlay(base_rgb: np.ndarray, heat_rgb: np.ndarray, opacity: float) -> np.ndarray:
    """Blend the heatmap over the image (opacity 0 = image only, 1 = heatmap only)."""
    a = float(np.clip(opacity, 0.0, 1.0))
    out = base_rgb.astype(np.float32) * (1 - a) + heat_rgb.astype(np.float32) * a
    return np.rint(out).astype(np.uint8)
