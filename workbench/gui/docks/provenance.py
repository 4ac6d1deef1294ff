"""The provenance dock: the verdict for the current image session and each check, in
colour, under a header naming the image the verdict is about."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..binding import rebind

GREEN, AMBER, RED, GREY = "#2e9d4a", "#c98a0a", "#d23c3c", "#8a8f98"
STATUS_COLOURS = {"pass": GREEN, "warn": AMBER, "fail": RED, "skip": GREY}
STATUS_MARKS = {"pass": "✔", "warn": "!", "fail": "✖", "skip": "–"}
CHECK_TITLES = {"record": "Capture record", "signature": "Signature", "signer": "Signer trusted",
                "pixels": "Pixels", "metadata": "Identifying metadata", "header": "Header",
                "file": "File bytes", "ledger": "Ledger", "image": "Image"}
# verdict -> (badge text, colour)
BADGES = {
    "intact": ("✔ signed, intact", GREEN),
    "re-encoded": ("✔ re-encoded, pixels intact", GREEN),
    "untrusted": ("! untrusted signer", AMBER),
    "tampered": ("✖ tampered", RED),
    "invalid-signature": ("✖ invalid signature", RED),
    "unsigned": ("unsigned", GREY),
    "look-alike": ("! look-alike, unsigned", AMBER),
    "error": ("✖ unreadable", RED),
}


def badge_for(verdict: str) -> tuple[str, str]:
    return BADGES.get(verdict, (verdict, GREY))


class ProvenancePanel(QWidget):
    signRequested = Signal()
    verifyRequested = Signal()
    keysRequested = Signal()
    regionRequested = Signal(object)  # ChangedRegion: show it in Compare

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: Any = None
        self.header = QLabel("No image open.")
        self.header.setStyleSheet("font-weight: bold;")
        self.header.setWordWrap(True)
        self.verdict_label = QLabel("No image")
        self.verdict_label.setObjectName("verdict")
        self.verdict_label.setWordWrap(True)
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.checks = QTreeWidget()
        self.checks.setHeaderLabels(["", "Check", "Result"])
        self.checks.setRootIsDecorated(False)
        self.checks.setWordWrap(True)
        self.checks.setColumnWidth(0, 28)
        self.checks.setColumnWidth(1, 150)
        # where the pixels changed: found against the signed original when it is open
        self.region_label = QLabel("")
        self.region_label.setWordWrap(True)
        self.region_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.region_button = QPushButton("Show in Compare")
        self.region_button.setToolTip("Compare with the signed original, zoomed to the change")
        region_row = QHBoxLayout()
        region_row.addWidget(self.region_label, 1)
        region_row.addWidget(self.region_button)
        self.sign_button = QPushButton("Sign…")
        self.verify_button = QPushButton("Verify")
        self.keys_button = QPushButton("Keys…")
        buttons = QHBoxLayout()
        for b in (self.sign_button, self.verify_button, self.keys_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addWidget(self.verdict_label)
        layout.addWidget(self.summary_label)
        layout.addLayout(region_row)
        layout.addWidget(self.checks, 1)
        layout.addLayout(buttons)
        self.sign_button.clicked.connect(self.signRequested)
        self.verify_button.clicked.connect(self.verifyRequested)
        self.keys_button.clicked.connect(self.keysRequested)
        self.region_button.clicked.connect(
            lambda: self.regionRequested.emit(self.session.changed_region)
            if self.session is not None and self.session.changed_region else None)
        self.set_busy("No image open")

    def show_session(self, session: Any, busy: bool = False) -> None:
        """Bind to ``session`` (or None) and show its verification, or that it has none
        yet (``busy``: a check of it is running)."""
        self.session = rebind(self.session, session, self._on_changed)
        self._refresh(busy)

    def _on_changed(self, aspect: str) -> None:
        if aspect in ("verification", "region"):
            self._refresh(False)

    def _refresh(self, busy: bool) -> None:
        s = self.session
        self.header.setText(f"Provenance — {s.name}" if s is not None else "No image open.")
        if s is None:
            self.set_busy("No image open")
        elif s.verification is not None:
            self.show_result(s.verification)
        else:
            self.set_busy("Verifying…" if busy else "Not verified yet")

    def _set_verdict(self, text: str, colour: str) -> None:
        self.verdict_label.setText(text)
        self.verdict_label.setStyleSheet(
            f"QLabel#verdict {{ background: {colour}; color: white; font-weight: bold;"
            " padding: 6px; border-radius: 4px; }")

    def set_busy(self, message: str) -> None:
        self._set_verdict(message, GREY)
        self.summary_label.setText("")
        self._show_region(None)
        self.checks.clear()

    def _show_region(self, result: Any) -> None:
        """The changed-region line, when the pixels check failed."""
        pixels = result.check("pixels") if result is not None else None
        region = getattr(self.session, "changed_region", None)
        failed = pixels is not None and pixels.status == "fail"
        self.region_button.setVisible(failed and region is not None and region.pixels > 0)
        self.region_label.setVisible(failed)
        if not failed:
            self.region_label.setText("")
        elif region is None:
            self.region_label.setText(
                "Changed region: not located. The record holds hashes, not pixels; open "
                "the signed original beside this image to see where it changed.")
        else:
            from pathlib import Path

            # a look-alike's record names an image this one may not be a copy of
            what = ("the signed image it resembles" if result.verdict == "look-alike"
                    else "the signed original")
            self.region_label.setText(f"Changed region: {region.describe()} (against "
                                      f"{Path(region.original).name}, {what})")

    def show_result(self, result: Any) -> None:
        text, colour = badge_for(result.verdict)
        self._set_verdict(text, colour)
        self.summary_label.setText(result.summary + (f"\nRecord: {result.record_source}"
                                                     if result.record_source else ""))
        self._show_region(result)
        self.checks.clear()
        for c in result.checks:
            item = QTreeWidgetItem(self.checks, [STATUS_MARKS.get(c.status, "?"),
                                                 CHECK_TITLES.get(c.name, c.name), c.message])
            item.setForeground(0, QColor(STATUS_COLOURS.get(c.status, GREY)))
            item.setToolTip(2, c.message)

    def check_rows(self) -> list[tuple[str, str, str]]:
        return [tuple(self.checks.topLevelItem(i).text(c) for c in range(3))
                for i in range(self.checks.topLevelItemCount())]
