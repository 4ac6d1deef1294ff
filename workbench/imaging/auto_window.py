"""The percentile window of a projection radiograph, and the display figures an image's
first showing needs, computed where the image is decoded (a worker), not on the GUI
thread: on the 4688x2592 mammogram they are a percentile over 760,000 values and a
min/max over 12 million, and the percentile's first call imports numpy.ma."""

from __future__ import annotations

from typing import Any

from .medical_image import Window

# projection radiographs: their files' windows are often absent or wide, and the body
# fills only part of the detector, so a percentile window shows the anatomy
AUTO_WINDOW_MODALITIES = ("CR", "DX", "MG", "XA", "RF", "IO", "PX")


def wants_auto_window(image: Any) -> bool:
    """Whether the image is a greyscale projection radiograph (the auto window applies)."""
    return not image.is_color and (image.modality or "").upper() in AUTO_WINDOW_MODALITIES


def auto_window(image: Any, frame: int = 0) -> Window:
    """The 0.5th to 99.5th percentile of the frame's output values (after the modality
    transform), from every fourth pixel; computed once per image and frame."""
    import numpy as np

    key = ("auto_window", frame)
    cache = image.display_cache
    if key not in cache:
        values = image.value_transform(frame).apply(np.asarray(image.frame(frame))[::4, ::4])
        lo, hi = (float(v) for v in np.percentile(values, [0.5, 99.5]))
        cache[key] = Window((lo + hi) / 2, max(hi - lo, 1.0), "auto (percentile)")
    return cache[key]


def prepare_display(image: Any) -> None:
    """Compute, and keep on the image, what showing its first frame will ask for: the
    value range of its data and, for a projection radiograph, its auto window."""
    image.value_range()
    if wants_auto_window(image):
        auto_window(image, 0)
