"""What a plugin reads and writes outside the batch: image files, its artifacts folder,
a MedicalImage as a tensor, and the capture-record verification."""

from __future__ import annotations

import threading
import weakref
from typing import Any


def read_image_file(path: str) -> Any:
    """An image file (PNG, JPEG, ...) as a C x H x W float tensor in [0, 1], RGB."""
    import cv2
    import numpy as np
    import torch

    data = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise ValueError(f"{path}: not a readable image")
    if data.ndim == 2:
        data = data[..., None]
    elif data.shape[2] >= 3:
        data = cv2.cvtColor(data[..., :3], cv2.COLOR_BGR2RGB)
    top = 65535.0 if data.dtype == np.uint16 else 255.0
    return torch.from_numpy(np.ascontiguousarray(data).astype(np.float32) / top).permute(2, 0, 1)


def write_image_file(image: Any, path: str) -> str:
    """Save a C x H x W tensor in [0, 1] as an 8-bit PNG (lossless). Returns the path."""
    import cv2
    import numpy as np

    arr = (image.detach().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    arr = arr.transpose(1, 2, 0)
    if arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), arr):
        raise OSError(f"{path}: cannot write")
    return str(path)


def artifacts_dir() -> str:
    """Where plugins keep what they make (learned patches, ...): WORKBENCH_HOME/artifacts."""
    from ..home import workbench_home

    path = workbench_home() / "artifacts"
    path.mkdir(exist_ok=True)
    return str(path)


def cache_dir() -> str:
    """Where plugins may keep what they can always recompute (a parsed catalogue, ...):
    WORKBENCH_HOME/cache. Anything here may be deleted at any time."""
    from ..home import workbench_home

    path = workbench_home() / "cache"
    path.mkdir(exist_ok=True)
    return str(path)


def new_artifact_path(kind: str, label: str, suffix: str = ".png") -> str:
    """A new file name under :func:`artifacts_dir`: kind, label and time, never reused
    (so a saved patch is never overwritten by the next run)."""
    import re
    import time
    from pathlib import Path

    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", label).strip("-") or "item"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = Path(artifacts_dir())
    nanos = time.time_ns() % 1_000_000_000
    path = folder / f"{kind}_{safe}_{stamp}-{nanos:09d}{suffix}"
    while path.exists():  # two artifacts within the same clock tick
        nanos += 1
        path = folder / f"{kind}_{safe}_{stamp}-{nanos:09d}{suffix}"
    return str(path)


def image_tensor(image: Any, frame: int = 0) -> Any:
    """A MedicalImage frame as a 1 x C x H x W float tensor in [0, 1] (the classifier's
    input space; see workbench.imaging.model_input for the mapping). A fresh tensor each
    call: the caller may write into it."""
    return _converted(image, frame, 0).clone()


def working_tensor(image: Any, longest: int, frame: int = 0) -> Any:
    """:func:`image_tensor` reduced by area interpolation so that max(H, W) <= ``longest``
    (unchanged when it already fits), the working copy detectors analyse. A fresh tensor
    each call."""
    return _converted(image, frame, int(longest)).clone()


# The conversions of the last image asked for, by (frame, longest; 0 = full size). The
# GUI runs several detectors on one image one after the other, and each of them made the
# same float copy (two of them the same reduction too). A MedicalImage's pixels are
# read-only, so a conversion cannot go stale while the image and its pixel array live;
# the image is held only weakly, and its entries go with it or when another image comes.
_CACHE: dict[str, Any] = {"key": None, "tensors": {}}
_CACHE_LOCK = threading.Lock()


def _converted(image: Any, frame: int, longest: int) -> Any:
    import torch
    import torch.nn.functional as F  # noqa: N812

    from ..imaging.model_input import to_model_input

    try:
        refs = (weakref.ref(image), weakref.ref(image.pixels))
    except TypeError:  # not weakly referable: convert every time, keep nothing
        refs = None
    with _CACHE_LOCK:
        held = _CACHE["key"]
        if refs is not None and not (held and held[0]() is image
                                     and held[1]() is image.pixels):
            _CACHE.update(key=refs, tensors={})
            weakref.finalize(image, _forget, refs[0])
        if refs is not None and (frame, longest) in _CACHE["tensors"]:
            return _CACHE["tensors"][(frame, longest)]
    if longest == 0:
        out = torch.from_numpy(to_model_input(image, frame)[0])[None]
    else:
        out = _converted(image, frame, 0)
        h, w = out.shape[-2:]
        if max(h, w) > longest:
            s = longest / max(h, w)
            out = F.interpolate(out, size=(max(1, round(h * s)), max(1, round(w * s))),
                                mode="area")
    with _CACHE_LOCK:
        held = _CACHE["key"]
        if refs is not None and held and held[0]() is image:
            _CACHE["tensors"][(frame, longest)] = out
    return out


def _forget(ref: Any) -> None:
    """The image ``ref`` named has gone: drop its conversions (if still the cached one)."""
    with _CACHE_LOCK:
        if _CACHE["key"] is not None and _CACHE["key"][0] is ref:
            _CACHE.update(key=None, tensors={})


def verify_capture(path: str) -> Any:
    """Verify an image against its capture record (sidecar or ledger): the provenance
    result with its named checks (see workbench.provenance.records.verify)."""
    from ..provenance.records.verify import verify_image

    return verify_image(path)
