"""The case verdict of the current image as one banner above the tabs, naming the image,
with the reasons underneath (engine.case_verdict: the capture record decides when there
is one; otherwise the calibrated detectors)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..binding import rebind

COLOURS = {"authentic": "#2e9d4a", "tampered": "#d23c3c", "suspicious": "#c98a0a",
           "no evidence of manipulation": "#4a6f8a", "inconclusive": "#8a8f98",
           "pending": "#8a8f98"}


class VerdictBanner(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: Any = None
        self.verdict: Any = None  # the CaseVerdict shown
        self.banner = QLabel()
        self.banner.setObjectName("case_verdict")
        self.banner.setWordWrap(True)
        self.reasons = QLabel()
        self.reasons.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.setSpacing(2)
        layout.addWidget(self.banner)
        layout.addWidget(self.reasons)
        self.show_session(None)

    def show_session(self, session: Any) -> None:
        self.session = rebind(self.session, session, self._on_changed)
        self._refresh()

    def _on_changed(self, aspect: str) -> None:
        if aspect in ("verification", "findings"):
            self._refresh()

    def _refresh(self) -> None:
        from ...engine.case_verdict import case_verdict

        s = self.session
        if s is None:
            self.verdict = None
            self.banner.setText("No image open")
            self._colour("#8a8f98")
            self.reasons.setText("")
            return
        v = self.verdict = (s.findings.verdict(s.verification) if s.findings is not None
                            else case_verdict(s.verification, None))
        self.banner.setText(f"{s.name} — {v.headline}")
        self._colour(COLOURS.get(v.verdict, "#8a8f98"))
        self.reasons.setText("\n".join(f"• {r}" for r in v.reasons[:4]))
        self.reasons.setToolTip("\n".join(v.reasons))

    def _colour(self, colour: str) -> None:
        self.banner.setStyleSheet(f"QLabel#case_verdict {{ background: {colour}; color: white;"
                                  " font-weight: bold; padding: 6px; border-radius: 4px; }")
