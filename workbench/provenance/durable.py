"""Writes that survive a power cut: a file's bytes on disk before it is renamed into
place, and the rename itself on disk (the folder's entry). Without the first, ext4 and
others can leave a renamed file empty after a crash; without the second, the rename
itself can be lost."""

from __future__ import annotations

import os
from pathlib import Path


def write_synced(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` and wait until it is on disk."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Put the folder's entries (a rename, a new file) on disk. A no-op where folders
    cannot be opened (Windows, whose renames are durable through NTFS's journal)."""
    try:
        fd = os.open(Path(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
