"""The decompression-bomb guard: refuse images whose decoded size exceeds a limit.

The size is computed from the header before any pixel is decoded, so a tiny file that
declares a gigantic image is refused without allocating memory for it.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ImageTooLargeError

ENV_VAR = "WORKBENCH_MAX_IMAGE_BYTES"
DEFAULT_MAX_BYTES = 2 * 1024**3  # 2 GiB: 100x the largest real study in our test data


def max_image_bytes(override: int | None = None) -> int:
    """The limit in force: an explicit value, else $WORKBENCH_MAX_IMAGE_BYTES, else 2 GiB."""
    if override is not None:
        return int(override)
    env = os.environ.get(ENV_VAR)
    if env:
        try:
            return int(float(env))
        except ValueError:
            pass
    return DEFAULT_MAX_BYTES


def check_decoded_size(path: Path, nbytes: int, limit: int | None, what: str) -> None:
    limit = max_image_bytes(limit)
    if nbytes > limit:
        raise ImageTooLargeError(
            path,
            f"decoded image ({what}) would need {_human(nbytes)}, over the limit of "
            f"{_human(limit)} (set {ENV_VAR} to raise it)",
        )


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"
