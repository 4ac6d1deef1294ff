"""Signing images at capture time: record, sidecar and ledger entry, one file or a tree.

Signing is resumable: a file whose sidecar already holds a valid record of exactly these
bytes is skipped. A file whose sidecar no longer matches it is *not* re-signed (that
would bless a changed file); it is reported, and only ``force`` signs it again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...imaging.errors import ImageLoadError
from ...imaging.medical_image import MedicalImage
from .fingerprint import file_sha256
from .record import (
    RecordError,
    build_record,
    check_signature,
    read_record,
    sidecar_path,
    sign_record,
    write_sidecar,
)

SIGNED, SKIPPED, REFUSED, FAILED = "signed", "already signed", "sidecar mismatch", "failed"


@dataclass
class SignOutcome:
    path: str
    status: str
    message: str = ""
    record: dict | None = None


@dataclass
class SignReport:
    outcomes: list[SignOutcome] = field(default_factory=list)
    cancelled: bool = False

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


def sign_image(path: str | os.PathLike[str], private_key: Any, *, ledger: Any = None,
               image: MedicalImage | None = None) -> dict[str, Any]:
    """Fingerprint, sign, write the sidecar and append to ``ledger`` (if given)."""
    if image is None:
        from ...imaging.loader import load_image

        image = load_image(path)
    record = sign_record(build_record(image), private_key)
    # the sidecar is written beside the image first (an unwritable folder fails there),
    # then the ledger entry is appended, then the sidecar is put in place: a sidecar never
    # exists without its entry, and an entry never without a sidecar being possible
    write_sidecar(record, path, before_commit=(lambda: ledger.append(record))
                  if ledger is not None else None)
    return record


def signed_state(path: Path) -> tuple[str, str]:
    """Whether ``path`` needs signing: (status, message)."""
    side = sidecar_path(path)
    if not side.is_file():
        return "", ""
    try:
        record = read_record(side)
    except RecordError as exc:
        return REFUSED, str(exc)
    ok, why = check_signature(record)
    if not ok:
        return REFUSED, f"existing sidecar is not valid ({why})"
    if (record.get("file") or {}).get("sha256") != file_sha256(path):
        return REFUSED, "file changed since it was signed (existing sidecar kept)"
    return SKIPPED, "sidecar already holds a valid record of this file"


def sign_paths(paths: list[str | os.PathLike[str]], private_key: Any, *, ledger: Any = None,
               force: bool = False,
               progress: Callable[[int, int, str], None] | None = None,
               cancelled: Callable[[], bool] | None = None) -> SignReport:
    """Sign files and folders (recursive). ``progress(done, total, name)``."""
    from ...imaging.loader import find_images

    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(find_images(p) if p.is_dir() else [p])
    report = SignReport()
    for i, f in enumerate(files):
        if cancelled and cancelled():
            report.cancelled = True
            break
        status, message = ("", "") if force else signed_state(f)
        if status:
            report.outcomes.append(SignOutcome(str(f), status, message))
        else:
            try:
                record = sign_image(f, private_key, ledger=ledger)
                report.outcomes.append(SignOutcome(str(f), SIGNED, "", record))
            except ImageLoadError as exc:
                report.outcomes.append(SignOutcome(str(f), FAILED, str(exc)))
            except OSError as exc:
                report.outcomes.append(SignOutcome(str(f), FAILED,
                                                   f"{f}: cannot write the sidecar ({exc})"))
        if progress:
            progress(i + 1, len(files), f.name)
    return report
