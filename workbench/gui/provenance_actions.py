"""Verify and sign from the GUI: each opened image is checked against its record in the
background (badges in the study list), and signing follows the CLI's policy. Private keys
are unlocked once per session, with a passphrase prompt, and kept only in memory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from ..session import actions
from .docks.provenance import badge_for


class ProvenanceActions(QObject):
    message = Signal(str)

    def __init__(self, study: Any, runner: Any, study_list: Any, dock: Any,
                 report_error: Callable[[str, str], Any], window: QWidget) -> None:
        super().__init__(window)
        self.study, self.runner, self.study_list, self.dock = study, runner, study_list, dock
        self.report_error, self.window = report_error, window
        self.running: dict[str, Any] = {}  # path -> the verify or sign job in flight

    def verify(self, session: Any, background: bool = False) -> None:
        """Check ``session``'s image against its record. Background checks (badges for
        entries not opened yet) queue behind what the user asked for."""
        path = session.path
        if path in self.running or (background and session.verification is not None):
            return
        job = actions.verify(session)
        verified = job.on_result
        job.on_result = lambda result: (self.running.pop(path, None), verified(result),
                                        self._badge(session), self.locate_changes(session))
        job.on_error = lambda message: self._failed(session, message)
        self.running[path] = job
        self.study_list.mark_provenance(path, "verifying…", "#8a8f98")
        if session is self.study.current:
            self.dock.show_session(session, busy=True)
        self.runner.start(job, priority=-1 if background else 1)

    def locate_changes(self, session: Any) -> None:
        """Find where pixels changed, against the signed original, when both are open:
        for ``session`` if its pixels fail, or for the open images whose pixels fail
        against the record ``session`` (an intact original) matches."""
        from ..session.changed_region import locate_change, signed_original

        v = session.verification
        pixels = v.check("pixels") if v is not None else None
        if pixels is None:
            return
        if pixels.status == "fail":
            pairs = [(session, signed_original(self.study, session))]
        elif pixels.status == "pass":
            pairs = [(s, session) for s in self.study
                     if s is not session and s.image is not None and s.verification
                     and s.verification.record_id == v.record_id
                     and (c := s.verification.check("pixels")) and c.status == "fail"
                     and s.changed_region is None]
        else:
            return
        for suspect, original in pairs:
            if original is not None and suspect.image is not None:
                job = locate_change(suspect, original)
                job.on_error = lambda message, s=suspect: self.message.emit(
                    f"{s.name}: cannot locate the change ({message})")
                self.runner.start(job, priority=0)

    def _badge(self, session: Any) -> None:
        result = session.verification
        text, colour = badge_for(result.verdict)
        self.study_list.mark_provenance(session.path, text, colour, result.summary)

    def _failed(self, session: Any, message: str) -> None:
        self.running.pop(session.path, None)
        self.study_list.mark_provenance(session.path, "✖ error", "#d23c3c", message)
        if session is self.study.current:
            self.dock.set_busy("Provenance check failed")
            self.dock.summary_label.setText(message)
        self.report_error(message, "Provenance")

    def sign(self, session: Any, force: bool = False) -> bool:
        if session is None or session.image is None:
            self.message.emit("Open an image to sign first")
            return False
        key = self.unlocked_key()
        if key is None:
            return False
        job = actions.sign(session, key, force=force, ask_on_refuse=True)
        job.on_result = lambda decision: self._signed(session, decision)
        job.on_error = lambda message: self._failed(session, message)
        self.running[session.path] = job
        self.dock.set_busy("Signing…")
        self.runner.start(job, priority=1)
        return True

    def _signed(self, session: Any, decision: Any) -> None:
        self.running.pop(session.path, None)
        if decision.signs:
            self.message.emit(f"Signed {session.name}: record written beside it and "
                              "appended to the ledger")
        else:  # the policy skipped or refused it: the user decides, as --force would
            self.ask_to_force(session, decision)
        self.verify(session)

    def ask_to_force(self, session: Any, decision: Any) -> QMessageBox:
        """Ask before signing again: a skipped file already has a valid record (a second
        one adds a ledger entry for the same capture); a refused one changed since it was
        signed, and signing it would bless the changed bytes as the original."""
        from ..session.signing_policy import REFUSE

        changed = decision.action == REFUSE
        text = (f"{decision.reason}\n\n" + (
            "Signing it now would record the CHANGED file as the original and hide that it "
            "changed. Sign anyway?" if changed else
            "Sign it again? The ledger gets a second record for the same capture."))
        box = QMessageBox(QMessageBox.Icon.Warning if changed else QMessageBox.Icon.Question,
                          "Already signed", text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                          self.window)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        yes = box.button(QMessageBox.StandardButton.Yes)
        box.finished.connect(lambda _r: self.sign(session, force=True)
                             if box.clickedButton() is yes else None)
        self.force_box = box
        box.open()  # not exec(): the window and tests go on
        return box

    def unlocked_key(self) -> Any:
        """The default signing key, unlocked once per session (passphrase prompt)."""
        from ..provenance.records import keys
        from .dialogs.key_manager import KeyManagerDialog, ask_passphrase

        try:
            info = keys.resolve_key()
        except keys.KeyStoreError:
            answer = QMessageBox.question(
                self.window, "No signing key",
                "You have no signing key yet. Create one now?\n\nThe private key is stored "
                "encrypted with a passphrase you choose; its public key is trusted.")
            if answer != QMessageBox.StandardButton.Yes:
                return None
            info = KeyManagerDialog(self.window).new_key()
            if info is None:
                return None
        unlocked = self.study.unlocked_keys
        if info.fingerprint in unlocked:
            return unlocked[info.fingerprint]
        while True:
            passphrase = ask_passphrase(self.window, info)
            if passphrase is None:
                return None
            try:
                key = keys.load_private_key(info.fingerprint, passphrase)
            except keys.KeyStoreError as exc:
                QMessageBox.warning(self.window, "Cannot unlock the key", str(exc))
                if keys.passphrase_from_env_or_file(None):
                    return None  # the environment's passphrase is wrong: do not loop
                continue
            unlocked[info.fingerprint] = key
            return key
