"""Instances from a DICOMweb archive into a folder, one file each, atomically: a
cancelled or failed retrieval leaves only complete files, and one instance the archive
cannot send is reported without stopping the rest."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .dicomweb import DicomWeb, InstanceRef, PacsError, check_uid


@dataclass
class Retrieved:
    files: list[tuple[InstanceRef, Path]] = field(default_factory=list)
    failed: list[tuple[InstanceRef, str]] = field(default_factory=list)
    cancelled: bool = False


def instance_path(dest: Path, ref: InstanceRef) -> Path:
    """``dest/<study>/<series>/<instance>.dcm``: UIDs are digits and dots only (PS3.5
    9.1), so they are safe file names; anything else is refused rather than walked."""
    for uid in (ref.study_uid, ref.series_uid, ref.sop_uid):
        check_uid(uid)
    return dest / ref.study_uid / ref.series_uid / f"{ref.sop_uid}.dcm"


def retrieve(archive: DicomWeb, refs: Sequence[InstanceRef], dest: str | os.PathLike[str], *,
             progress: Callable[[int, int, str], None] | None = None,
             cancel: threading.Event | None = None) -> Retrieved:
    """Fetch ``refs`` into ``dest``. ``progress(done, total, name)`` after each one;
    ``cancel`` is looked at between instances. A PACS that cannot be reached at all
    raises PacsError (nothing else would arrive either)."""
    dest = Path(dest)
    out = Retrieved()
    for i, ref in enumerate(refs):
        if cancel is not None and cancel.is_set():
            out.cancelled = True
            break
        try:
            path = instance_path(dest, ref)
            data = archive.fetch(ref)
        except PacsError as exc:
            if str(exc).startswith("cannot reach"):
                raise
            out.failed.append((ref, str(exc)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            part = path.with_name(path.name + ".part")
            part.write_bytes(data)
            os.replace(part, path)
            out.files.append((ref, path))
        if progress is not None:
            progress(i + 1, len(refs), ref.sop_uid)
    return out
