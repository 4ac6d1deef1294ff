"""How two images of the same scene differ: maps and statistics for the comparison view,
reports and the heatmap benchmark. Arrays are H x W or H x W x C on one value scale."""

from __future__ import annotations

from typing import Any

import numpy as np


def _float(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def abs_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|b - a| per pixel, the largest over channels (H x W float32). Integer inputs are
    subtracted in a wide type so uint16 values cannot wrap around."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.dtype.kind in "ui" and b.dtype.kind in "ui":
        wide = np.int32 if max(a.dtype.itemsize, b.dtype.itemsize) <= 2 else np.int64
    else:
        wide = np.float64
    d = np.subtract(b, a, dtype=wide)
    np.abs(d, out=d)  # in place: one pass less over a 12-megapixel image
    if d.ndim == 3:
        d = d.max(axis=2)
    return d.astype(np.float32)


def signed_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """b - a (mean over channels), for a diverging colour map."""
    d = _float(b) - _float(a)
    return (d.mean(axis=2) if d.ndim == 3 else d).astype(np.float32)


def ssim_map(a: np.ndarray, b: np.ndarray, data_range: float) -> np.ndarray:
    """Structural similarity per pixel (Wang et al. 2004): Gaussian window sigma 1.5,
    K1 0.01, K2 0.03, population covariances; channels averaged."""
    import cv2

    x, y = _float(a), _float(b)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    maps = []
    for ch in range(x.shape[2]):
        xa, ya = x[..., ch], y[..., ch]

        def blur(img: np.ndarray) -> np.ndarray:
            # 11 x 11 truncation of the Gaussian, as scikit-image's sigma=1.5 default
            return cv2.GaussianBlur(img, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

        mx, my = blur(xa), blur(ya)
        vx = blur(xa * xa) - mx * mx
        vy = blur(ya * ya) - my * my
        cxy = blur(xa * ya) - mx * my
        maps.append(((2 * mx * my + c1) * (2 * cxy + c2))
                    / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return np.mean(maps, axis=0).astype(np.float32)


def difference_stats(a: np.ndarray, b: np.ndarray, data_range: float) -> dict[str, Any]:
    """L∞, L2, PSNR (dB), mean SSIM, changed-pixel count and their bounding box."""
    diff = abs_difference(a, b)
    d = _float(b) - _float(a)
    mse = float(np.mean(d * d))
    changed = np.argwhere(diff > 0)
    bbox = None
    if changed.size:
        (r0, c0), (r1, c1) = changed.min(axis=0), changed.max(axis=0)
        bbox = {"row": int(r0), "col": int(c0), "rows": int(r1 - r0 + 1),
                "cols": int(c1 - c0 + 1)}
    ssim = ssim_map(a, b, data_range)
    pad = 5  # skimage crops (win_size - 1) // 2 from each side before averaging
    return {
        "linf": float(diff.max()),
        "l2": float(np.sqrt(np.sum(d * d))),
        "psnr": float("inf") if mse == 0 else float(10 * np.log10(data_range ** 2 / mse)),
        "ssim": float(ssim[pad:-pad, pad:-pad].mean()),
        "changed_pixels": int(len(changed)),
        "bounding_box": bbox,
    }


def changed_per_frame(reference: Any, suspect: Any) -> list[int]:
    """The number of changed pixels (any channel) in each frame of two images of one
    geometry: what a comparison of one frame cannot say about the others."""
    out = []
    for i in range(reference.n_frames):
        ne = np.asarray(reference.frame(i)) != np.asarray(suspect.frame(i))
        out.append(int(np.count_nonzero(ne.any(axis=2) if ne.ndim == 3 else ne)))
    return out


def frames_summary(changed: list[int], shown: int) -> str:
    """One line on every frame, for a comparison that shows frame ``shown`` (0-based)."""
    if len(changed) <= 1:
        return ""
    differ = [i for i, n in enumerate(changed) if n]
    n = len(changed)
    if not differ:
        return f"all {n} frames identical"
    listed = ", ".join(str(i + 1) for i in differ[:8]) + (" …" if len(differ) > 8 else "")
    also = "" if shown in differ else f"; frame {shown + 1} is identical"
    return f"{len(differ)} of {n} frames differ (frame{'s' if len(differ) > 1 else ''} " \
           f"{listed}){also}"
