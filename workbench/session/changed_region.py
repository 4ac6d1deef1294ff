"""Where a tampered image differs from its signed original: pixel count, bounding box and
frames, for the provenance dock's "changed region" line.

A capture record holds hashes, not pixels, so a hash mismatch says *that* pixels changed,
never *where*. The place can only be found against the original itself: an open image
whose pixels match the same record (verified intact or re-encoded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .image_session import ImageSession
from .jobs import Job, JobFailed
from .study import Study


@dataclass(frozen=True)
class ChangedRegion:
    """The stored pixels that differ between ``original`` and the suspect."""

    original: str  # path of the signed original compared with
    pixels: int  # changed pixel positions (a colour pixel counts once)
    row: int  # bounding box over all changed frames, stored grid
    col: int
    rows: int
    cols: int
    frames: tuple[int, ...]  # changed frames, 1-based
    n_frames: int

    def describe(self) -> str:
        if not self.pixels:
            return "no pixel differs from the signed original"
        frames = "" if self.n_frames == 1 else (
            f" in frame(s) {', '.join(map(str, self.frames[:8]))}"
            + (" …" if len(self.frames) > 8 else "") + f" of {self.n_frames}")
        return (f"{self.pixels:,} pixel(s) changed in a {self.cols}×{self.rows} box at "
                f"x {self.col}–{self.col + self.cols - 1}, y {self.row}–"
                f"{self.row + self.rows - 1}{frames}")


def signed_original(study: Study, session: ImageSession) -> ImageSession | None:
    """An open image whose pixels match ``session``'s record: the original to compare
    with (None when the record's original is not open)."""
    mine = session.verification
    if mine is None or not mine.record_id:
        return None
    for other in study:
        v = other.verification
        if other is session or v is None or other.image is None:
            continue
        pixels = v.check("pixels")
        if v.record_id == mine.record_id and pixels is not None and pixels.status == "pass":
            return other
    return None


def changed_region(original: Any, suspect: Any, original_path: str) -> ChangedRegion:
    """Compare every frame of two images of one geometry, on their stored values."""
    import numpy as np

    if (original.n_frames, original.rows, original.columns) != \
            (suspect.n_frames, suspect.rows, suspect.columns):
        raise JobFailed(
            f"the image's geometry differs from the original's ({suspect.n_frames}×"
            f"{suspect.rows}×{suspect.columns} vs {original.n_frames}×{original.rows}×"
            f"{original.columns}): no pixel-by-pixel region")
    mask_all = np.zeros((original.rows, original.columns), dtype=bool)
    frames = []
    count = 0
    for i in range(original.n_frames):
        a, b = np.asarray(original.frame(i)), np.asarray(suspect.frame(i))
        mask = a != b
        if mask.ndim == 3:
            mask = mask.any(axis=-1)
        n = int(mask.sum())
        if n:
            frames.append(i + 1)
            count += n
            mask_all |= mask
    if not count:
        return ChangedRegion(original_path, 0, 0, 0, 0, 0, (), original.n_frames)
    rows = np.flatnonzero(mask_all.any(axis=1))
    cols = np.flatnonzero(mask_all.any(axis=0))
    return ChangedRegion(original_path, count, int(rows[0]), int(cols[0]),
                         int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1),
                         tuple(frames), original.n_frames)


def locate_change(session: ImageSession, original: ImageSession) -> Job:
    """A job that finds where ``session`` differs from ``original`` and keeps it in the
    session (aspect "region")."""
    suspect_image, original_image = session.image, original.image

    def work(_job: Job) -> ChangedRegion:
        return changed_region(original_image, suspect_image, original.path)

    return Job(f"locate the change in {session.name}", work, subject=session.path,
               on_result=session.set_changed_region)
