"""The inputs ``workbench plugin check`` runs a plugin on: pydicom's bundled CT slice and
synthetic RGB photos, and the classifiers, each loaded once per process."""

from __future__ import annotations

import functools
from typing import Any

from .. import api


def synthetic_photo(size: int = 64, seed: int = 0) -> Any:
    """A 3 x size x size float array in [0, 1]: a dark, soft-edged spot on a shaded
    skin-coloured background with a little noise (what the demo model was trained on,
    roughly)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    cx, cy = rng.uniform(0.35, 0.65, 2)
    skin = np.array([0.85, 0.65, 0.55])[:, None, None] * (0.9 + 0.1 * xx)[None]
    spot = np.clip(1 - np.hypot(xx - cx, yy - cy) / 0.3, 0, 1) ** 0.5
    brown = np.array([0.35, 0.2, 0.15])[:, None, None]
    img = skin * (1 - spot) + brown * spot + rng.normal(0, 0.02, (3, size, size))
    return np.clip(img, 0, 1).astype(np.float32)


@functools.lru_cache(maxsize=1)
def sample_images() -> tuple[tuple[str, Any], ...]:
    """(label, MedicalImage) pairs: pydicom's bundled CT_small.dcm (a real 128 x 128
    greyscale CT slice) when installed, and two synthetic 64 x 64 RGB photos."""
    from ..imaging.in_memory import image_from_unit_array

    out = []
    try:
        from pydicom.data import get_testdata_file

        ct = get_testdata_file("CT_small.dcm", download=False)
    except Exception:  # an old or stripped pydicom: the synthetic photos still run
        ct = None
    if ct:
        from ..imaging import load_image

        out.append(("CT_small.dcm", load_image(ct)))
    for seed in (0, 1):
        out.append((f"synthetic photo {seed + 1}",
                    image_from_unit_array(synthetic_photo(seed=seed), f"synthetic-{seed}.png")))
    return tuple(out)


def attack_batches() -> list[tuple[str, Any]]:
    """Batches for attacks: CT_small alone (1 channel), the two photos together (3)."""
    import torch

    images = sample_images()
    batches = [(label, api.image_tensor(im)) for label, im in images
               if not label.startswith("synthetic")]
    photos = [api.image_tensor(im) for label, im in images if label.startswith("synthetic")]
    batches.append((f"{len(photos)} synthetic RGB photos", torch.cat(photos)))
    return batches


_MODELS: dict[str, Any] = {}


def cached_model(name: str) -> Any:
    """A classifier by name, loaded once per process (checks reuse it; it is frozen)."""
    if name not in _MODELS:
        from ..models.zoo import load_model

        _MODELS[name] = load_model(name)
    return _MODELS[name]


def forget_models() -> None:
    """Drop the loaded classifiers: a plugin left running after a timeout may keep the
    engine's cancel guard on one, so later checks load a fresh one."""
    _MODELS.clear()
