"""The reader's three questions beside the image: real or manipulated, the diagnosis, and
the confidence, each an exclusive group of buttons with a key of its own, so a reader can
answer without the mouse (M, B, 4, Enter) and never by a key meant for another question.

Why the diagnosis has letter keys and the confidence the digits: both cannot have the
number keys, and the confidence *is* a number (1 = guessing, 5 = certain, the question's
own words), so its keys need no learning; the diagnosis keys are printed on its buttons.
The letters skip R, M and P, which answer real, manipulated and pause.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractButton,
    QButtonGroup,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

DIAGNOSIS_KEYS = "ABCDEFGHIJKLNOQSTUVWXYZ"  # no M, P or R: those keys are taken
CONFIDENCE = (1, 2, 3, 4, 5)


def _question_text(questions: Any, qid: str, default: str) -> str:
    for q in questions or ():
        if isinstance(q, dict) and q.get("id") == qid and q.get("text"):
            return str(q["text"])
    return default


class _Group(QButtonGroup):
    """An exclusive group that can also be emptied (Qt's cannot, while exclusive)."""

    def clear(self) -> None:
        self.setExclusive(False)
        for b in self.buttons():
            b.setChecked(False)
        self.setExclusive(True)


class AnswerPanel(QWidget):
    """The questions; ``changed`` fires whenever an answer is chosen or cleared."""

    changed = Signal()

    def __init__(self, class_names: tuple[str, ...], questions: Any = (),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.class_names = tuple(class_names)
        self.diagnosis_keys = {DIAGNOSIS_KEYS[i]: name
                               for i, name in enumerate(self.class_names[:len(DIAGNOSIS_KEYS)])}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

        self.authentic_group = _Group(self)
        self.authentic_buttons: dict[str, QRadioButton] = {}
        box = self._box(_question_text(questions, "authentic",
                                       "Is this image real or manipulated?"))
        row = QHBoxLayout()
        for value, key in (("real", "R"), ("manipulated", "M")):
            b = self._button(f"{value.capitalize()}   [{key}]", self.authentic_group)
            self.authentic_buttons[value] = b
            row.addWidget(b)
        box.layout().addLayout(row)
        layout.addWidget(box)

        self.diagnosis_group = _Group(self)
        self.diagnosis_buttons: dict[str, QRadioButton] = {}
        box = self._box(_question_text(questions, "diagnosis", "What is the diagnosis?"))
        keys = {name: key for key, name in self.diagnosis_keys.items()}
        for name in self.class_names:
            text = f"{name}   [{keys[name]}]" if name in keys else name
            b = self._button(text, self.diagnosis_group)
            self.diagnosis_buttons[name] = b
            box.layout().addWidget(b)
        layout.addWidget(box)

        self.confidence_group = _Group(self)
        self.confidence_buttons: dict[int, QRadioButton] = {}
        box = self._box(_question_text(questions, "confidence",
                                       "How confident are you (1 = guessing, 5 = certain)?"))
        grid = QGridLayout()
        for i, n in enumerate(CONFIDENCE):
            b = self._button(str(n), self.confidence_group)
            self.confidence_buttons[n] = b
            grid.addWidget(b, 0, i, Qt.AlignmentFlag.AlignHCenter)
        for col, text, align in ((0, "guessing", Qt.AlignmentFlag.AlignLeft),
                                 (4, "certain", Qt.AlignmentFlag.AlignRight)):
            hint = QLabel(text)
            hint.setStyleSheet("color: gray;")
            grid.addWidget(hint, 1, col, 1, 1, align)
        box.layout().addLayout(grid)
        layout.addWidget(box)

    def _box(self, title: str) -> QGroupBox:
        box = QGroupBox()
        v = QVBoxLayout(box)
        # the question as a word-wrapped label: a group box title would be cut off
        label = QLabel(title)
        label.setWordWrap(True)
        label.setStyleSheet("font-weight: bold;")
        v.addWidget(label)
        return box

    def _button(self, text: str, group: QButtonGroup) -> QRadioButton:
        b = QRadioButton(text)
        # no keyboard focus: Space and the arrows must not change an answer unseen, and
        # the keys go to the window's shortcuts
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        group.addButton(b)
        b.toggled.connect(lambda _on: self.changed.emit())
        return b

    # --- the answers ------------------------------------------------------------------------
    def authentic(self) -> str | None:
        return _checked(self.authentic_buttons)

    def diagnosis(self) -> str | None:
        return _checked(self.diagnosis_buttons)

    def confidence(self) -> int | None:
        return _checked(self.confidence_buttons)

    def complete(self) -> bool:
        return None not in (self.authentic(), self.diagnosis(), self.confidence())

    def choose_authentic(self, value: str) -> None:
        self.authentic_buttons[value].setChecked(True)

    def choose_diagnosis_key(self, key: str) -> None:
        if key in self.diagnosis_keys:
            self.diagnosis_buttons[self.diagnosis_keys[key]].setChecked(True)

    def choose_confidence(self, n: int) -> None:
        self.confidence_buttons[n].setChecked(True)

    def clear(self) -> None:
        """Nothing chosen: every case starts blank, so no answer carries over unseen."""
        for g in (self.authentic_group, self.diagnosis_group, self.confidence_group):
            g.clear()
        self.changed.emit()


def _checked(buttons: dict[Any, QAbstractButton]) -> Any:
    return next((v for v, b in buttons.items() if b.isChecked()), None)
