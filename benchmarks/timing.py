"""Shared timing helper for the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_time(fn: Callable[[], object], runs: int) -> float:
    """Median wall time of ``runs`` calls (the median resists a noisy neighbour)."""
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def demo_session(path: object, device: str) -> tuple[object, object, object, object]:
    """The demo model on ``device`` and an image session of ``path``, as the GUI holds
    them: (device, model, image, session)."""
    from workbench.imaging import load_image
    from workbench.models.device import choose_device
    from workbench.models.zoo import load_model
    from workbench.session.image_session import ImageSession

    chosen = choose_device(device)
    model = load_model("demo", chosen)
    image = load_image(path)
    session = ImageSession(path)
    session.set_image(image)
    return chosen, model, image, session
