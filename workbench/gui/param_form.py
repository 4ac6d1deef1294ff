"""A form generated from a plugin's ``Params`` dataclass (see workbench.api.param)."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from ..api import ParamSpec, param_specs


class ParamForm(QWidget):
    def __init__(self, params_cls: type, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.specs = param_specs(params_cls)
        self.editors: dict[str, QWidget] = {}
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for spec in self.specs:
            editor = self._editor(spec)
            editor.setObjectName(f"param_{spec.name}")
            editor.setToolTip(spec.help)
            self.editors[spec.name] = editor
            layout.addRow(spec.label or spec.name.replace("_", " "), editor)

    @staticmethod
    def _editor(spec: ParamSpec) -> QWidget:
        if spec.choices:
            box = QComboBox()
            for c in spec.choices:
                box.addItem(str(c), c)
            box.setCurrentIndex(list(spec.choices).index(spec.default))
            return box
        if spec.type is bool:
            check = QCheckBox()
            check.setChecked(bool(spec.default))
            return check
        if spec.type is int:
            spin = QSpinBox()
            spin.setRange(int(spec.min if spec.min is not None else -10**9),
                          int(spec.max if spec.max is not None else 10**9))
            spin.setSingleStep(int(spec.step or 1))
            spin.setValue(int(spec.default))
            return spin
        if spec.type is float:
            spin = QDoubleSpinBox()
            step = float(spec.step or 0.01)
            decimals = max(2, min(8, int(math.ceil(-math.log10(step))) + 1)) if step < 1 else 2
            spin.setDecimals(decimals)
            spin.setRange(float(spec.min if spec.min is not None else -1e9),
                          float(spec.max if spec.max is not None else 1e9))
            spin.setSingleStep(step)
            spin.setValue(float(spec.default))
            return spin
        line = QLineEdit(str(spec.default))
        return line

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for spec in self.specs:
            w = self.editors[spec.name]
            if isinstance(w, QComboBox):
                out[spec.name] = w.currentData()
            elif isinstance(w, QCheckBox):
                out[spec.name] = w.isChecked()
            elif isinstance(w, QSpinBox | QDoubleSpinBox):
                out[spec.name] = w.value()
            else:
                out[spec.name] = w.text()
        return out

    def set_value(self, name: str, value: Any) -> None:
        w = self.editors[name]
        if isinstance(w, QComboBox):
            w.setCurrentIndex(w.findData(value))
        elif isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QSpinBox | QDoubleSpinBox):
            w.setValue(value)
        else:
            w.setText(str(value))
