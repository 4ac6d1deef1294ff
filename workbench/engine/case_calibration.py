"""Thresholds for the case verdict, so that the detectors TOGETHER flag about ``fpr`` of
clean images. Each detector calibrated alone at 5% flags 5% of clean images; five of them
in an "any fires" rule flagged 17 of 60 clean test images (28%) in our measurement. The
calibration files keep every clean score and the pixel SHA-256 of its image, so the
images the detectors were calibrated on together can be lined up, and one quantile level
q is chosen for all of them: the highest-scoring (1 - q) of each detector's clean scores
are above its case threshold, and q is the lowest level at which at most ``fpr`` of the
calibration images have any detector above (the max-statistic rule; it accounts for
detectors that fire on the same images, which Bonferroni does not).

When fewer than MIN_SHARED images were calibrated on by all of them (calibrations made on
different folders), each detector gets its Bonferroni level fpr / k instead.
"""

from __future__ import annotations

from typing import Any

MIN_SHARED = 20


def case_thresholds(calibrations: list[Any], fpr: float | None = None) -> dict[str, float]:
    """Detector name -> case threshold, from their Calibration objects. ``fpr``: the
    rate of clean images the detectors together may flag; by default the lowest rate
    they were calibrated at (5% for the shipped ones), so one detector calibrated alone
    keeps its own threshold, at the rate its user chose."""
    if not calibrations:
        return {}
    if fpr is None:
        fpr = min(float(c.fpr) for c in calibrations)
    if len(calibrations) == 1 and float(calibrations[0].fpr) == fpr:
        return {calibrations[0].detector: float(calibrations[0].threshold)}
    key = (fpr, *((c.detector, c.date, c.n, c.threshold) for c in calibrations))
    if key not in _CACHE:  # the banner asks on every change of the image's findings
        _CACHE[key] = dict(_thresholds(tuple(calibrations), fpr))
    return dict(_CACHE[key])


_CACHE: dict[tuple, dict[str, float]] = {}


def _thresholds(calibrations: tuple, fpr: float) -> tuple[tuple[str, float], ...]:
    import numpy as np

    from .calibration import QUANTILE_METHOD, threshold_at

    names = [c.detector for c in calibrations]
    by_image: dict[str, dict[str, float]] = {}
    for c in calibrations:
        for fp, s in zip(c.fingerprints, c.scores, strict=False):
            by_image.setdefault(fp["pixel_sha256"], {})[c.detector] = float(s)
    rows = [r for r in by_image.values() if len(r) == len(names)]
    if len(rows) < MIN_SHARED:
        k = len(calibrations)
        return tuple((c.detector, threshold_at(c.scores, fpr / k)) for c in calibrations)
    scores = np.array([[r[n] for n in names] for r in rows])

    def at(q: float) -> tuple[float, Any]:
        th = np.quantile(scores, q, axis=0, method=QUANTILE_METHOD)
        return float((scores > th).any(axis=1).mean()), th

    lo, hi = 1.0 - fpr, 1.0  # at q = 1 - fpr each alone flags fpr; at q = 1 none flags
    for _ in range(40):
        mid = (lo + hi) / 2
        if at(mid)[0] > fpr:
            lo = mid
        else:
            hi = mid
    return tuple(zip(names, (float(t) for t in at(hi)[1]), strict=True))
