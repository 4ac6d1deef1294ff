"""Error level analysis (ELA) for JPEG photographs.

A JPEG that is saved again at the same quality changes little where it was already
compressed at that quality, and more where its pixels were altered after the last save
(pasted, retouched or perturbed regions have not settled into the quantisation grid).
Re-saving at a known quality (90) and mapping the absolute difference shows regions whose
error level stands out from the rest (Krawetz, "A Picture's Worth: Digital Image Analysis
and Forensics", Black Hat 2007). It only means something for JPEG files: a PNG or DICOM
has no JPEG history, and the detector says so instead of producing a misleading map.

Score: how much the most error-prone 8 x 8 blocks stand out, the 99th percentile of the
per-block mean error divided by (median + 1), so a uniformly noisy photo does not score
high. Evidence: the error level per pixel (largest over channels), in 8-bit levels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.api import DetectionContext, Detector, Finding, param


class ErrorLevelAnalysis(Detector):
    name = "ela"
    summary = "Error level analysis of JPEG photos: re-save at quality 90, map the change."
    needs = ()
    calibratable = True
    version = "1"

    @dataclass
    class Params:
        quality: int = param(90, min=50, max=100, step=1, help="re-save JPEG quality")

    def analyze(self, image: Any, params: Any, ctx: DetectionContext) -> Finding:
        import cv2
        import numpy as np

        fmt = str(image.transfer_syntax).upper() if image.kind == "photo" else "DICOM"
        if image.kind != "photo" or fmt not in ("JPEG", "JPG", "MPO"):
            return Finding(score=0.0, verdict="inconclusive",
                           explanation=f"ELA applies to JPEG images only (this is {fmt})",
                           details={"format": fmt})
        src = np.asarray(image.frame(0))
        if src.dtype != np.uint8:
            return Finding(score=0.0, verdict="inconclusive",
                           explanation=f"ELA applies to 8-bit JPEG images only "
                                       f"(this is {src.dtype})")
        bgr = np.ascontiguousarray(src[..., 2::-1] if src.ndim == 3 and src.shape[2] >= 3
                                   else src)
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, params.quality])
        if not ok:
            raise RuntimeError("OpenCV could not re-encode the image as JPEG")
        resaved = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        level = error_level(bgr, resaved)
        h, w = level.shape
        hb, wb = h // 8, w // 8
        if hb == 0 or wb == 0:
            return Finding(score=0.0, verdict="inconclusive",
                           explanation="image smaller than one 8 x 8 JPEG block")
        blocks = block_means(level, hb, wb)
        p99, med = float(np.percentile(blocks, 99)), float(np.median(blocks))
        score = p99 / (med + 1.0)
        mean = float(level.mean())
        explanation = (f"error level at quality {params.quality}: mean {mean:.2f}, "
                       f"top 1% of blocks {p99:.2f} vs median {med:.2f} (8-bit levels)")
        # "clean" = it ran; the engine judges the score against the calibrated threshold
        return Finding(score=score, verdict="clean", explanation=explanation, evidence=level,
                       details={"mean": mean, "block_p99": p99,
                                "block_median": med, "quality": params.quality,
                                "evidence_units": "8-bit levels"})


def error_level(original: Any, resaved: Any) -> Any:
    """|original - resaved| per pixel (two contiguous uint8 arrays of one shape), largest
    over channels, as H x W float32 levels.

    Done in 8 bits (OpenCV's absdiff saturates nothing here: |a - b| of two uint8 values
    fits one), then one conversion of the H x W result: the same whole numbers as taking
    the difference in int16 and converting all channels to float first, without
    three full-size temporaries and numpy's slow reduction over a 3-long last axis."""
    import cv2
    import numpy as np

    diff = cv2.absdiff(original, resaved)
    if diff.ndim == 3:
        level = diff[..., 0].copy()
        for c in range(1, diff.shape[2]):
            np.maximum(level, diff[..., c], out=level)
        diff = level
    return diff.astype(np.float32)


def block_means(level: Any, hb: int, wb: int) -> Any:
    """Mean of each whole 8 x 8 block of an H x W float32 map of whole levels (0..255).

    Summed as integers: a block's sum (at most 64 x 255) and its mean (the sum / 64, a
    power of two) are exact in float32 whichever order they are added, so this equals
    numpy's float32 mean over the blocks bit for bit, at a fraction of the cost."""
    import numpy as np

    whole = level[: hb * 8, : wb * 8].astype(np.int32).reshape(hb, 8, wb * 8)
    rows = whole.sum(axis=1)  # hb x (wb * 8): each block's 8 rows added
    return (rows.reshape(hb, wb, 8).sum(axis=2) / 64.0).astype(np.float32)
