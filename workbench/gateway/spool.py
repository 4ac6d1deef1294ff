"""The gateway's durable queue on disk, so that nothing acknowledged is ever lost.

An instance moves through three folders, each step an atomic rename after an fsync:

- ``incoming/``: the bytes as received (``*.part`` while being written);
- ``outbox/``: signed (its record beside it and in the ledger) and acknowledged to the
  modality; waiting to be forwarded;
- ``records/``: forwarded; the instance copy is deleted, its record kept;
- ``held/``: signed and acknowledged, but refused by the PACS for good (no presentation
  context for its SOP class and transfer syntax, or a failure status other than "out of
  resources"), with the reason beside it. It is kept, never dropped, and put back in the
  outbox when the gateway starts again (the PACS may have been configured meanwhile);
  one refused instance never blocks the ones behind it.

On start, an ``incoming/`` file was never acknowledged (the gateway died before answering):
the modality will send it again, so it is removed rather than signed twice. An
``outbox/`` file is forwarded (again, if the gateway died after the PACS's answer but
before the rename: a PACS keeps one instance per SOP Instance UID, so a repeated store of
the same bytes changes nothing there; ``forwarded.log`` says how many sends each took).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path

from ..provenance.durable import fsync_dir, write_synced
from ..provenance.records.record import SIDECAR_SUFFIX

_SAFE = re.compile(r"[^0-9A-Za-z._-]")


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.incoming, self.outbox, self.records, self.held = (
            self.root / n for n in ("incoming", "outbox", "records", "held"))
        for d in (self.incoming, self.outbox, self.records, self.held):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()
        self.log = self.root / "forwarded.log"

    @staticmethod
    def name_for(sop_instance_uid: str, data: bytes) -> str:
        """The UID and a digest of the bytes: a resend of the same instance lands on its
        own earlier copy, while two different instances under one UID (one study sent in
        two encodings) each keep their file, record and forward."""
        digest = hashlib.sha256(data).hexdigest()[:16]
        return f"{_SAFE.sub('_', sop_instance_uid or 'no-uid')}.{digest}.dcm"

    @staticmethod
    def uid_of(name: str) -> str:
        """The (file-safe) SOP Instance UID part of a spool file name."""
        return name.rsplit(".", 2)[0]

    def receive(self, sop_instance_uid: str, data: bytes) -> Path:
        """Write the instance durably into incoming/ and return its path."""
        final = self.incoming / self.name_for(sop_instance_uid, data)
        part = final.with_name(final.name + f".{threading.get_ident()}.part")
        write_synced(part, data)
        os.replace(part, final)
        fsync_dir(self.incoming)
        return final

    def to_outbox(self, path: Path) -> bool:
        """Signed: the sidecar, then the instance, into outbox/ (a record never lags).
        False when the same bytes were already waiting there (a resend): one forward."""
        side = path.with_name(path.name + SIDECAR_SUFFIX)
        dest = self.outbox / path.name
        new = not dest.exists()
        if side.exists():
            os.replace(side, dest.with_name(dest.name + SIDECAR_SUFFIX))
        os.replace(path, dest)
        fsync_dir(self.outbox)
        return new

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
        fsync_dir(self.outbox)

    def hold(self, path: Path, reason: str) -> Path:
        """The PACS will not take it: keep it, and the reason, out of the queue's way."""
        dest = self.held / path.name
        (self.held / (path.name + ".reason.txt")).write_text(reason + "\n", encoding="utf-8")
        side = path.with_name(path.name + SIDECAR_SUFFIX)
        if side.exists():
            os.replace(side, dest.with_name(dest.name + SIDECAR_SUFFIX))
        os.replace(path, dest)
        fsync_dir(self.held)
        fsync_dir(self.outbox)
        return dest

    def held_count(self) -> int:
        return sum(1 for _ in self.held.glob("*.dcm"))

    def recover(self) -> int:
        """Remove what was never acknowledged, and put held instances back in the outbox
        for another try; returns how many files were removed."""
        stale = [p for p in self.incoming.iterdir() if p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        for p in sorted(self.held.glob("*.dcm")):
            side = p.with_name(p.name + SIDECAR_SUFFIX)
            if side.exists():
                os.replace(side, self.outbox / side.name)
            os.replace(p, self.outbox / p.name)
            (self.held / (p.name + ".reason.txt")).unlink(missing_ok=True)
        fsync_dir(self.outbox)
        return len(stale)
