"""The gateway's durable queue on disk, so that nothing acknowledged is ever lost.

An instance moves through three folders, each step an atomic rename after an fsync:

- ``incoming/``: the bytes as received (``*.part`` while being written);
- ``outbox/``: signed (its record beside it and in the ledger) and acknowledged to the
  modality; waiting to be forwarded;
- ``records/``: forwarded; the instance copy is deleted, its record kept.

On start, an ``incoming/`` file was never acknowledged (the gateway died before answering):
the modality will send it again, so it is removed rather than signed twice. An
``outbox/`` file is forwarded (again, if the gateway died after the PACS's answer but
before the rename: a PACS keeps one instance per SOP Instance UID, so a repeated store of
the same bytes changes nothing there; ``forwarded.log`` says how many sends each took).
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from ..provenance.records.record import SIDECAR_SUFFIX

_SAFE = re.compile(r"[^0-9A-Za-z._-]")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.incoming, self.outbox, self.records = (self.root / n for n in
                                                     ("incoming", "outbox", "records"))
        for d in (self.incoming, self.outbox, self.records):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()
        self.log = self.root / "forwarded.log"

    @staticmethod
    def name_for(sop_instance_uid: str) -> str:
        return _SAFE.sub("_", sop_instance_uid or "no-uid") + ".dcm"

    def receive(self, sop_instance_uid: str, data: bytes) -> Path:
        """Write the instance durably into incoming/ and return its path."""
        final = self.incoming / self.name_for(sop_instance_uid)
        part = final.with_name(final.name + f".{threading.get_ident()}.part")
        with open(part, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, final)
        _fsync_dir(self.incoming)
        return final

    def to_outbox(self, path: Path) -> Path:
        """Signed: the sidecar, then the instance, into outbox/ (a record never lags)."""
        side = path.with_name(path.name + SIDECAR_SUFFIX)
        dest = self.outbox / path.name
        if side.exists():
            os.replace(side, dest.with_name(dest.name + SIDECAR_SUFFIX))
        os.replace(path, dest)
        _fsync_dir(self.outbox)
        return dest

    def drop(self, path: Path) -> None:
        for p in (path, path.with_name(path.name + SIDECAR_SUFFIX)):
            p.unlink(missing_ok=True)

    def pending(self) -> list[Path]:
        """Outbox instances, oldest first (one forwarded meanwhile is simply not listed)."""
        stamped = []
        for p in self.outbox.glob("*.dcm"):
            try:
                stamped.append((p.stat().st_mtime_ns, p.name, p))
            except FileNotFoundError:
                continue
        return [p for _t, _n, p in sorted(stamped)]

    def forwarded(self, path: Path, attempts: int) -> None:
        """Forwarded: log it, then keep the record in records/ and drop the copy. In this
        order a crash can only repeat a send (logged twice), never forget one (a kill
        between the unlink and the log line once left a delivered instance unlogged)."""
        with self._lock, open(self.log, "a") as fh:
            fh.write(f"{path.name}\t{attempts}\n")
            fh.flush()
            os.fsync(fh.fileno())
        side = path.with_name(path.name + SIDECAR_SUFFIX)
        if side.exists():
            os.replace(side, self.records / side.name)
        path.unlink(missing_ok=True)
        _fsync_dir(self.outbox)

    def recover(self) -> int:
        """Remove what was never acknowledged; returns how many files."""
        stale = [p for p in self.incoming.iterdir() if p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)
