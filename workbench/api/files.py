"""What a plugin reads and writes outside the batch: image files, its artifacts folder,
a MedicalImage as a tensor, and the capture-record verification."""

from __future__ import annotations

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
    input space; see workbench.imaging.model_input for the mapping)."""
    import torch

    from ..imaging.model_input import to_model_input

    x, _ = to_model_input(image, frame)
    return torch.from_numpy(x)[None]


def verify_capture(path: str) -> Any:
    """Verify an image against its capture record (sidecar or ledger): the provenance
    result with its named checks (see workbench.provenance.records.verify)."""
    from ..provenance.records.verify import verify_image

    return verify_image(path)
