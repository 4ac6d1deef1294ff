"""Sign and verify off the GUI thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Signal


class ProvenanceSignals(QObject):
    verified = Signal(str, object)  # path, VerificationResult
    signed = Signal(str, object)  # path, record
    failed = Signal(str, str)  # path, message


def _default_ledger(create: bool) -> Any:
    from ..home import ledger_file
    from ..provenance.ledger.store import Ledger

    if not create and not ledger_file().is_file():
        return None
    return Ledger(ledger_file())


class VerifyTask(QRunnable):
    def __init__(self, path: str | Path, image: Any = None) -> None:
        super().__init__()
        self.path = str(path)
        self.image = image
        self.signals = ProvenanceSignals()
        self.setAutoDelete(False)

    def run(self) -> None:
        from ..provenance.records.verify import verify_image

        ledger = None
        try:
            ledger = _default_ledger(create=False)
            result = verify_image(self.path, image=self.image,
                                  ledger=ledger if ledger is not None else False)
            self.signals.verified.emit(self.path, result)
        except Exception as exc:  # report, never kill the worker thread silently
            self.signals.failed.emit(self.path, f"{self.path}: cannot verify ({exc})")
        finally:
            if ledger is not None:
                ledger.close()


class SignTask(QRunnable):
    def __init__(self, path: str | Path, private_key: Any, image: Any = None) -> None:
        super().__init__()
        self.path = str(path)
        self.private_key = private_key
        self.image = image
        self.signals = ProvenanceSignals()
        self.setAutoDelete(False)

    def run(self) -> None:
        from ..provenance.records.signing import sign_image, signed_state

        ledger = None
        try:
            status, message = signed_state(Path(self.path))
            if status == "sidecar mismatch":
                self.signals.failed.emit(self.path, f"{self.path}: not signed: {message}")
                return
            ledger = _default_ledger(create=True)
            record = sign_image(self.path, self.private_key, ledger=ledger, image=self.image)
            self.signals.signed.emit(self.path, record)
        except Exception as exc:
            self.signals.failed.emit(self.path, f"{self.path}: cannot sign ({exc})")
        finally:
            if ledger is not None:
                ledger.close()
