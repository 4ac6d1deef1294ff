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


# A compressed file that decodes to more than this many times its own size, and to more
# than BOMB_FLOOR, is refused as a decompression bomb: real images compress a few times
# (lossless) to a few dozen times (lossy); a 780 KB deflated DICOM declaring 20000x20000
# pixels, or an 876 KB palette PNG declaring 30000x30000, expand thousands of times and
# take gigabytes once the analysis makes float copies of them.
BOMB_RATIO = 200
BOMB_FLOOR = 64 * 1024**2


def check_decoded_size(path: Path, nbytes: int, limit: int | None, what: str) -> None:
    """Refuse, before decoding, an image whose decoded size is over the limit, or that
    expands from its file like a decompression bomb (unless the limit was raised)."""
    limit = max_image_bytes(limit)
    if nbytes > limit:
        raise ImageTooLargeError(
            path,
            f"decoded image ({what}) would need {_human(nbytes)}, over the limit of "
            f"{_human(limit)} (set {ENV_VAR} to raise it)",
        )
    try:
        size = max(1, path.stat().st_size)
    except OSError:
        return
    raised = limit != DEFAULT_MAX_BYTES  # the user asked for big images: trust the limit
    if not raised and nbytes > BOMB_FLOOR and nbytes / size > BOMB_RATIO:
        raise ImageTooLargeError(
            path,
            f"decoded image ({what}) would need {_human(nbytes)}, {nbytes / size:.0f} times "
            f"the file's {_human(size)}: refused as a likely decompression bomb (set "
            f"{ENV_VAR} to allow it)",
        )


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"
