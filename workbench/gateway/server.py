"""The gateway's two halves: the Storage SCP the modality sends to, and the forwarder
that drains the spool to the PACS, with counts for the status line.

The C-STORE handler answers only after the instance is on disk (fsynced), its record is
signed and appended to the ledger (fsynced), and both are in the outbox: an instance the
modality was told is stored can always be verified and is always forwarded.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .spool import Spool

log = logging.getLogger("workbench.gateway")

SUCCESS = 0x0000
CANNOT_UNDERSTAND = 0xC000  # PS3.4 C-STORE "Error: Cannot understand"
OUT_OF_RESOURCES = 0xA700


@dataclass
class Peer:
    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Peer:
        """``AE@host:port``."""
        try:
            ae, rest = text.split("@", 1)
            host, port = rest.rsplit(":", 1)
            return cls(ae, host, int(port))
        except ValueError:
            raise ValueError(f"{text!r}: expected AE_TITLE@host:port") from None


@dataclass
class GatewayConfig:
    ae_title: str
    host: str
    port: int
    pacs: Peer
    allowed: list[str]  # calling AE titles accepted; anything else is refused
    spool: Path
    retry_seconds: float = 5.0
    source: str = ""  # where the settings came from, for the start-up log line


@dataclass
class Counts:
    received: int = 0
    signed: int = 0
    unsigned: int = 0  # not images: forwarded with no capture record (named in the log)
    forwarded: int = 0
    refused: int = 0
    held: int = 0  # signed, acknowledged, refused by the PACS: kept in spool/held
    resent: int = 0  # received again while the same bytes were still queued
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)

    def line(self, queued_at_start: int) -> str:
        queued = (queued_at_start + self.signed + self.unsigned - self.resent
                  - self.forwarded - self.held)
        return (f"received {self.received}, signed {self.signed}, unsigned {self.unsigned}, "
                f"forwarded {self.forwarded}, queued {queued}, refused {self.refused}"
                + (f", held {self.held}" if self.held else ""))


class Gateway:
    def __init__(self, config: GatewayConfig, private_key: Any, key_fingerprint: str,
                 ledger: Any) -> None:
        self.config, self.key, self.fingerprint, self.ledger = (
            config, private_key, key_fingerprint, ledger)
        self.spool = Spool(config.spool)
        self.counts = Counts()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._unsigned_heads = 0
        self._queued_at_start = 0
        self._head_lock = threading.Lock()
        self.server: Any = None
        self.forwarder: threading.Thread | None = None

    # --- receiving ------------------------------------------------------------------------
    def handle_store(self, event: Any) -> Any:
        from ..imaging.errors import ImageLoadError, NoPixelDataError
        from ..provenance.records.signing import sign_image

        uid = str(getattr(event.request, "AffectedSOPInstanceUID", "") or "")
        caller = event.assoc.requestor.ae_title
        self.counts.add("received")
        try:
            path = self.spool.receive(uid, bytes(event.encoded_dataset()))
        except OSError as exc:
            self.counts.add("refused")
            log.error("%s from %s: refused, cannot spool it (%s)", uid, caller, exc)
            return _status(OUT_OF_RESOURCES, "gateway cannot store it")
        try:
            sign_image(path, self.key, ledger=self.ledger)
            self.counts.add("signed")
            how = "signed"
        except NoPixelDataError as exc:
            self.counts.add("unsigned")
            how = f"not an image, forwarded without a capture record ({exc.reason})"
        except ImageLoadError as exc:
            self.spool.drop(path)
            self.counts.add("refused")
            log.error("%s from %s: refused: %s", uid, caller, exc.reason)
            return _status(CANNOT_UNDERSTAND, exc.reason)
        except Exception as exc:  # a failure of ours: the modality must keep its copy
            self.spool.drop(path)
            self.counts.add("refused")
            log.error("%s from %s: refused: cannot sign (%s: %s)", uid, caller,
                      type(exc).__name__, exc)
            return _status(OUT_OF_RESOURCES, "gateway cannot sign it")
        try:
            if not self.spool.to_outbox(path):
                self.counts.add("resent")  # the same bytes were still queued: one forward
        except OSError as exc:  # signed, but not safely queued: the modality must resend
            self.counts.add("refused")
            log.error("%s from %s: refused, cannot queue it (%s)", uid, caller, exc)
            return _status(OUT_OF_RESOURCES, "gateway cannot queue it")
        with self._head_lock:
            self._unsigned_heads += how == "signed"
        self._wake.set()
        # committed: from here on nothing may turn the answer into a failure
        with contextlib.suppress(Exception):  # a log line is not worth a false failure
            log.info("%s from %s: %s; %s", uid, caller, how, self.status())
        return SUCCESS

    def handle_released(self, _event: Any) -> None:
        """A signed tree head after each association (the batch of one study): deleting
        records from the end of the ledger no longer goes unnoticed."""
        with self._head_lock:
            due, self._unsigned_heads = self._unsigned_heads, 0
        if due and self.ledger is not None:
            head = self.ledger.sign_tree_head(self.key, self.fingerprint)
            log.info("ledger: tree head of %d entries signed", head.tree_size)

    def status(self) -> str:
        return self.counts.line(self._queued_at_start)

    # --- forwarding -----------------------------------------------------------------------
    def forward_pending(self) -> int:
        """Send every outbox instance to the PACS; returns how many went. Stops at the
        first failure (the PACS is down): they stay queued for the next try."""
        from pynetdicom import AE

        pending = self.spool.pending()
        if not pending:
            return 0
        import pydicom

        contexts: dict[tuple[str, str], None] = {}
        heads = {}
        for p in pending[:64]:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
            key = (str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID))
            contexts.setdefault(key, None)
            heads[p] = key
        ae = AE(ae_title=self.config.ae_title)
        for sop_class, syntax in list(contexts)[:128]:
            ae.add_requested_context(sop_class, [syntax])
        pacs = self.config.pacs
        assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
        if not assoc.is_established:
            if getattr(assoc, "rejected_contexts", None):
                # it answered, and took none of the contexts proposed (one per SOP class
                # and transfer syntax of these instances): not an outage
                for p, key in heads.items():
                    self._hold(p, "the PACS accepts no presentation context for "
                               f"{_uid_name(key[0])} in {_uid_name(key[1])}")
                return 0
            log.warning("PACS %s@%s:%d unreachable; %d instance(s) queued", pacs.ae_title,
                        pacs.host, pacs.port, len(pending))
            return 0
        sent = 0
        accepted = {(str(c.abstract_syntax), str(c.transfer_syntax[0]))
                    for c in assoc.accepted_contexts}
        try:
            for p, key in heads.items():
                if key not in accepted:  # never transcoded to fit: held, named, kept
                    self._hold(p, "the PACS accepts no presentation context for "
                               f"{_uid_name(key[0])} in {_uid_name(key[1])}")
                    continue
                status = assoc.send_c_store(p)
                code = getattr(status, "Status", None)
                if code is None:  # the association went away
                    break
                if code in (0x0000, 0xB000, 0xB007, 0xB006):  # success and warnings
                    self.spool.forwarded(p, 1)
                    self.counts.add("forwarded")
                    sent += 1
                elif 0xA700 <= code <= 0xA7FF:  # out of resources: try again later
                    log.warning("PACS out of resources (status 0x%04X) for %s; kept queued",
                                code, p.name)
                    break
                else:
                    comment = getattr(status, "ErrorComment", "") or ""
                    self._hold(p, f"the PACS refused it with status 0x{code:04X}"
                               + (f" ({comment})" if comment else ""))
        finally:
            if assoc.is_established:
                assoc.release()
        return sent

    def _hold(self, path: Path, reason: str) -> None:
        self.spool.hold(path, reason)
        self.counts.add("held")
        log.error("%s: held in %s: %s", path.name, self.spool.held, reason)

    def _forward_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.forward_pending()
            except Exception as exc:  # keep trying; the queue is on disk
                log.error("forwarding failed: %s: %s", type(exc).__name__, exc)
                sent = 0
            if sent:
                log.info("forwarded %d; %s", sent, self.status())
                continue
            self._wake.wait(self.config.retry_seconds)
            self._wake.clear()

    # --- running --------------------------------------------------------------------------
    def start(self) -> None:
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, evt
        from pynetdicom.sop_class import Verification

        dropped = self.spool.recover()
        if dropped:
            log.info("removed %d instance(s) that were never acknowledged", dropped)
        self._queued_at_start = len(self.spool.pending())
        ae = AE(ae_title=self.config.ae_title)
        # every transfer syntax, compressed ones included: the instance is stored and
        # forwarded as it came (never transcoded), so the modality's encoding is accepted
        for sop_class in storage_sop_classes():
            ae.add_supported_context(sop_class, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.require_calling_aet = list(self.config.allowed)
        handlers = [(evt.EVT_C_STORE, self.handle_store),
                    (evt.EVT_C_ECHO, lambda _e: SUCCESS),
                    (evt.EVT_RELEASED, self.handle_released),
                    (evt.EVT_REJECTED, self._rejected)]
        self.server = ae.start_server((self.config.host, self.config.port), block=False,
                                      evt_handlers=handlers)
        self.forwarder = threading.Thread(target=self._forward_loop, name="forwarder",
                                          daemon=True)
        self.forwarder.start()
        log.info("gateway %s listening on %s:%d, forwarding to %s@%s:%d; %s%s",
                 self.config.ae_title, self.config.host, self.config.port,
                 self.config.pacs.ae_title, self.config.pacs.host, self.config.pacs.port,
                 self.status(),
                 f"; configuration: {self.config.source}" if self.config.source else "")

    def _rejected(self, event: Any) -> None:
        self.counts.add("refused")
        log.warning("association from %s refused: calling AE not allowed",
                    event.assoc.requestor.ae_title)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self.server is not None:
            self.server.shutdown()
        if self.forwarder is not None:
            self.forwarder.join(timeout=30)

    def serve_forever(self) -> None:
        self.start()
        try:
            while not self._stop.is_set():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()


def _uid_name(uid: str) -> str:
    from pydicom.uid import UID

    name = UID(uid).name
    return f"{name} ({uid})" if name != uid else uid


def storage_sop_classes() -> list[str]:
    """Every Storage SOP Class: pynetdicom's current ones and the retired ones pydicom
    knows (Ultrasound Image Storage of 1993, still sent by old scanners). A gateway in
    front of the PACS must not refuse what the PACS would take."""
    import keyword as python_keywords

    from pydicom.uid import UID_dictionary
    from pynetdicom import AllStoragePresentationContexts, register_uid
    from pynetdicom.service_class import StorageServiceClass

    found = dict.fromkeys(str(c.abstract_syntax) for c in AllStoragePresentationContexts)
    for uid, (name, kind, _info, _retired, word) in UID_dictionary.items():
        if uid in found or kind != "SOP Class" or "Storage" not in name or any(
                w in name for w in ("Commitment", "Management", "Media")):
            continue
        if not word.isidentifier() or python_keywords.iskeyword(word):
            continue
        # pynetdicom routes a C-STORE by the SOP Class's service: it must know the UID
        with contextlib.suppress(ValueError):  # already registered (a second gateway)
            register_uid(uid, word, StorageServiceClass)
        found[uid] = None
    return list(found)


def _status(code: int, comment: str) -> Any:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.Status = code
    ds.ErrorComment = comment[:64]  # LO: 64 characters
    return ds
