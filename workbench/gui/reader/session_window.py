"""The reader's window: one study image at a time, full screen, with the three questions
beside it, on a `workbench.reader_study.ReaderSession`.

Blinding is the point, so the window shows the pixels and nothing else about them: no
model output, no provenance, no file or case name, no header text on the image (the view
draws no corner text, scale bar or measurement), and the image is not opened in the main
window's study list, which would verify it and run detectors on it. The title says only
"Reader study — case N of M".

Time counts only while the image is on screen: the session's clock is held while the
image loads, while the reader pauses (the image is then covered) and during the break
between two reading sessions. Every answer is on disk (fsynced) before the next case is
shown, so closing or killing the window loses at most the case being looked at, which is
asked again when the reader opens the study next time.
"""

from __future__ import annotations

import html
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut, QWheelEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ...reader_study import AnswerError, ReaderSession
from ..jobs import JobRunner
from ..views.image_view import ImageView
from .answer_panel import CONFIDENCE, AnswerPanel

PANEL_WIDTH = 360
COVER_STYLE = ("background: #6b6b6b; color: #f2f2f2; font-size: 22pt; padding: 40px;")
TICK_MS = 250  # the time label's refresh


class ReaderImageView(ImageView):
    """The project's image view (left drag window/level, right drag zoom, middle drag
    pan, double-click fit) with nothing drawn over the image, and the wheel zooming a
    single image (it steps through frames only where there are frames)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.show_corner_text = False
        self.hide_identifiers = True  # belt and braces, should corner text ever be drawn
        self.placeholder = "Loading…"

    def _draw_overlay(self, p: Any) -> None:
        # not even the scale bar: its note, or a pixel spacing, could tell sources apart
        return

    def wheelEvent(self, e: QWheelEvent) -> None:  # noqa: N802
        if self.image is not None and self.image.n_frames == 1:
            steps = e.angleDelta().y() / 120.0
            self.set_zoom(self.zoom * (1.25 ** steps), anchor=e.position())
            e.accept()
        else:
            super().wheelEvent(e)


def _instructions(study_dir: Path) -> str:
    """study.json's instructions to readers (public, the same for every case)."""
    try:
        data = json.loads((study_dir / "study.json").read_text(encoding="utf-8"))
        return str(data.get("instructions") or "")
    except (OSError, ValueError, AttributeError):
        return ""


def _clock_text(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}"


class ReaderWindow(QMainWindow):
    """One reader's session on one study. Raises ``StudyError`` (or ``AnswerError``, for
    a bad reader name) when the study cannot be opened; the caller says so."""

    def __init__(self, study_dir: str | os.PathLike[str], reader: str, *,
                 clock: Callable[[], float] = time.monotonic,
                 parent: QWidget | None = None,
                 on_closed: Callable[[], Any] | None = None) -> None:
        self.session = ReaderSession(study_dir, reader, clock=clock)  # before any widget
        super().__init__(parent, Qt.WindowType.Window)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.study_dir = Path(study_dir)
        self.on_closed = on_closed
        self.runner = JobRunner(self, on_error=lambda _job, m: print(m, file=sys.stderr))
        self.case: str | None = None
        self.loading = False
        self.failed = False  # the current image could not be read
        self.user_paused = False
        self.job: Any = None
        self._build()
        self._keys()
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.timer.start()
        self.show_next()

    # --- construction -------------------------------------------------------------------
    def _build(self) -> None:
        s = self.session
        self.view = ReaderImageView()
        self.cover = QLabel()  # hides the image: paused, a break, done, unreadable
        self.cover.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.cover.setWordWrap(True)
        self.cover.setStyleSheet(COVER_STYLE)
        self.cover.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.cover)

        side = QWidget()
        side.setFixedWidth(PANEL_WIDTH)
        font = side.font()  # read at arm's length in a reading room: a size up
        font.setPointSizeF(font.pointSizeF() * 1.15)
        side.setFont(font)
        v = QVBoxLayout(side)
        v.setContentsMargins(12, 12, 12, 12)
        self.progress_label = QLabel()
        self.progress_label.setStyleSheet("font-size: 16pt; font-weight: bold;")
        self.time_label = QLabel()
        self.notice_label = QLabel(
            "A half-written answer (an interrupted session) was discarded; its case is "
            "asked again.")
        self.notice_label.setWordWrap(True)
        self.notice_label.setStyleSheet("color: #b26a00;")
        self.notice_label.setVisible(s.recovered_torn_line is not None)
        self.instructions_label = QLabel(_instructions(self.study_dir))
        self.instructions_label.setWordWrap(True)
        self.instructions_label.setStyleSheet("color: gray;")
        self.instructions_label.setVisible(bool(self.instructions_label.text()))
        self.panel = AnswerPanel(s.class_names, s.study.questions)
        self.panel.changed.connect(self._refresh)
        self.next_button = QPushButton("Next   [Enter]")
        self.next_button.setStyleSheet("font-size: 13pt; padding: 8px;")
        self.next_button.clicked.connect(self.next_case)
        self.pause_button = QPushButton("Pause   [P]")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.reset_button = QPushButton("Reset view")
        self.reset_button.clicked.connect(self.reset_view)
        for b in (self.next_button, self.pause_button, self.reset_button):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Enter and Space stay shortcuts
        self.help_label = QLabel(
            "Mouse: left drag window/level, wheel or right drag zoom, middle drag pan, "
            "double-click fit.  Esc leaves full screen, F11 returns.")
        self.help_label.setWordWrap(True)
        self.help_label.setStyleSheet("color: gray;")
        for w in (self.progress_label, self.time_label, self.notice_label,
                  self.instructions_label, self.panel, self.next_button):
            v.addWidget(w)
        v.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.pause_button)
        row.addWidget(self.reset_button)
        v.addLayout(row)
        v.addWidget(self.help_label)
        self.side = side

        central = QWidget()
        h = QHBoxLayout(central)
        h.setContentsMargins(0, 0, 0, 0)
        h.setSpacing(0)
        h.addWidget(self.stack, 1)
        h.addWidget(side)
        self.setCentralWidget(central)

    def _keys(self) -> None:
        def key(seq: Any, slot: Callable[[], Any]) -> None:
            QShortcut(QKeySequence(seq), self).activated.connect(slot)

        key("R", lambda: self._choose(lambda: self.panel.choose_authentic("real")))
        key("M", lambda: self._choose(lambda: self.panel.choose_authentic("manipulated")))
        for letter in self.panel.diagnosis_keys:
            key(letter, lambda k=letter: self._choose(
                lambda: self.panel.choose_diagnosis_key(k)))
        for n in CONFIDENCE:
            key(str(n), lambda n=n: self._choose(lambda: self.panel.choose_confidence(n)))
        for seq in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            key(seq, self.next_case)
        key("P", self.toggle_pause)
        key(Qt.Key.Key_Escape, self.leave_full_screen)
        key(Qt.Key.Key_F11, self.toggle_full_screen)

    # --- showing a case -----------------------------------------------------------------
    @property
    def running(self) -> bool:
        """The image is on screen and the case's clock runs."""
        return (self.case is not None and not self.loading and not self.failed
                and not self.user_paused)

    @property
    def image_shown(self) -> bool:
        return self.running and self.view.image is not None

    def show_next(self) -> None:
        """Show the first unanswered case (or the end); a new reading session (block)
        begins with a break: paused until the reader resumes."""
        previous = self.case
        self.session.pause()  # held until the image is on screen
        case = self.session.next_case()
        self.case, self.failed = case, False
        self.panel.clear()
        self.view.set_image(None)  # never the last case's image under this case's number
        if case is None:
            self._show_done()
            return
        study = self.session.study
        if previous is not None and study.block_of(previous) != study.block_of(case):
            self.user_paused = True
            over = study.block_of(previous) + 1
            self.cover.setText(f"Session {over} of {len(study.blocks)} is over.\n\n"
                               "Take a break. Press Resume (P) to start the next session.")
        number, total = self.session.cases.index(case) + 1, len(self.session.cases)
        self.progress_label.setText(f"Case {number} of {total}")
        self.setWindowTitle(f"Reader study — case {number} of {total}")
        self._load(case)
        self._refresh()

    def _load(self, case: str) -> None:
        from ...imaging.loader import load_image
        from ...session.jobs import Job

        if self.job is not None:
            self.job.cancel()
        path = self.session.image_path(case)
        self.loading = True
        # a mammogram takes a moment to decode: off the GUI thread, like every load
        self.job = Job("Reader study image",
                       lambda job: load_image(path, cancelled=lambda: job.cancelled),
                       on_result=lambda image: self._loaded(case, image),
                       on_error=lambda message: self._load_failed(case, message))
        self.runner.start(self.job)

    def _loaded(self, case: str, image: Any) -> None:
        if case != self.case:
            return  # a late result for a case already left
        self.job, self.loading = None, False
        self.view.set_image(image)
        self._refresh()

    def _load_failed(self, case: str, message: str) -> None:
        if case != self.case:
            return
        print(f"reader study: {message}", file=sys.stderr)  # for the organiser, not shown
        self.job, self.loading, self.failed = None, False, True
        # the message names the file: the reader is told only that something is wrong
        self.cover.setText("This image cannot be shown.\n\nPlease tell the study's "
                           "organiser. Your answers so far are saved.")
        self._refresh()

    def _show_done(self) -> None:
        n = len(self.session.cases)
        self.timer.stop()
        self.user_paused = False
        # no score, nor anything else of the key: the reader may read on another day
        self.cover.setText(
            f"<p>All {n} cases answered. Thank you.</p><p style='font-size: 12pt;'>"
            f"Your answers are saved in<br>{html.escape(str(self.session.path))}</p>")
        self.progress_label.setText(f"{n} of {n} answered")
        self.setWindowTitle(f"Reader study — all {n} cases answered")
        self.side.setVisible(False)
        self.stack.setCurrentWidget(self.cover)

    def _refresh(self) -> None:
        """Clock, cover and buttons after any change of state."""
        if self.case is None:
            return
        if self.running:
            self.session.resume()
        else:
            self.session.pause()
        covered = self.user_paused or self.failed
        self.stack.setCurrentWidget(self.cover if covered else self.view)
        self.panel.setEnabled(self.running)
        self.next_button.setEnabled(self.running and self.panel.complete())
        self.pause_button.setText("Resume   [P]" if self.user_paused else "Pause   [P]")
        self.reset_button.setEnabled(self.running)
        self._tick()

    def _tick(self) -> None:
        self.time_label.setText(f"Time on this case: {_clock_text(self.session.elapsed())}")

    # --- the reader's actions -------------------------------------------------------------
    def _choose(self, choose: Callable[[], Any]) -> None:
        if self.running:  # no answering an image that is not on screen
            choose()

    def next_case(self) -> bool:
        """Save the answer (on disk when this returns) and show the next case."""
        if not (self.running and self.panel.complete()):
            return False
        try:
            self.session.answer(self.case, self.panel.authentic(), self.panel.diagnosis(),
                                self.panel.confidence())
        except (AnswerError, OSError) as exc:  # a full disk: the case stays, nothing lost
            QMessageBox.warning(self, "Reader study", f"Your answer could not be saved: {exc}")
            return False
        self.show_next()
        return True

    def toggle_pause(self) -> None:
        if self.case is None:
            return
        self.user_paused = not self.user_paused
        if self.user_paused:
            self.cover.setText("Paused\n\nPress Resume (P) to go on.")
        self._refresh()

    def reset_view(self) -> None:
        """The whole image, at the file's window, as it was first shown."""
        if self.view.image is not None:
            self.view.set_image(self.view.image)

    def _fill_screen(self) -> None:
        """Cover the screen the main window is on even where nothing honours "full
        screen" or "maximised" (an X server without a window manager)."""
        owner = self.parentWidget()
        screen = (owner.screen() if owner is not None else None) or self.screen()
        if screen is not None:
            self.setGeometry(screen.availableGeometry())

    def show_reading(self) -> None:
        self._fill_screen()
        self.showFullScreen()
        self.raise_()
        self.activateWindow()

    def leave_full_screen(self) -> None:
        if self.isFullScreen():
            self.showMaximized()

    def toggle_full_screen(self) -> None:
        if self.isFullScreen():
            self.showMaximized()
        else:
            self._fill_screen()
            self.showFullScreen()

    def closeEvent(self, e: Any) -> None:  # noqa: N802
        # answers are already on disk; only the case on screen goes unanswered
        self.timer.stop()
        self.session.pause()
        self.runner.shutdown(2000)
        if self.on_closed is not None:
            self.on_closed()
        super().closeEvent(e)
