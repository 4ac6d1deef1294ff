"""A form generated from a plugin's ``Params`` dataclass (see workbench.api.param), bound
both ways: :meth:`ParamForm.values` reads the widgets, :meth:`ParamForm.set_value` writes
them.

Each declared type has one row in :data:`WIDGET_FOR_TYPE`: how to make its widget from
the field's spec, how to read it and how to write it. The declaration is checked by
``api.param_specs`` first (the one validator that discovery, ``plugin check`` and the
command line use), so a type the table does not know is an error, never a silent line
edit.

Why not magicgui: under PySide6 6.12.0 (Python 3.11) its spin box (superqt's
``QLargeIntSpinBox``), combo box and container each corrupt the reference count of
``True``/``False``/``None``; after about sixty forms the interpreter aborts ("Fatal Python
error: bool_dealloc"). Plain Qt widgets do not, and a table of four rows is all the form
needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
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

from ..api import PARAM_TYPES, ParamSpec, param_specs

# A field without a declared range still needs one (Qt's default is 0..99).
_UNBOUNDED = 10**9


@dataclass(frozen=True)
class Binding:
    """How one kind of parameter is shown: make its widget, read it, write it."""

    make: Callable[[ParamSpec], QWidget]
    read: Callable[[Any], Any]
    write: Callable[[Any, Any], None]


def _check_box(spec: ParamSpec) -> QWidget:
    box = QCheckBox()
    box.setChecked(bool(spec.default))
    return box


def _int_box(spec: ParamSpec) -> QWidget:
    spin = QSpinBox()
    spin.setRange(int(spec.min if spec.min is not None else -_UNBOUNDED),
                  int(spec.max if spec.max is not None else _UNBOUNDED))
    spin.setSingleStep(int(spec.step or 1))
    spin.setValue(int(spec.default))
    _name_the_zero(spin, spec)
    return spin


def _float_box(spec: ParamSpec) -> QWidget:
    spin = QDoubleSpinBox()
    step = float(spec.step or 0.01)
    # One decimal more than the step has; set before the range, which Qt rounds to it.
    spin.setDecimals(max(2, min(8, int(math.ceil(-math.log10(step))) + 1)) if step < 1 else 2)
    spin.setRange(float(spec.min if spec.min is not None else -_UNBOUNDED),
                  float(spec.max if spec.max is not None else _UNBOUNDED))
    spin.setSingleStep(step)
    spin.setValue(float(spec.default))
    _name_the_zero(spin, spec)
    return spin


def _name_the_zero(spin: QSpinBox | QDoubleSpinBox, spec: ParamSpec) -> None:
    """A lower bound that means "choose for me" (help says "0 = …") is shown as what it
    means, not as a bare 0.00000 that reads like a zero step."""
    help_text = getattr(spec, "help", "") or ""
    if spin.minimum() == 0 and "0 = " in help_text:
        meaning = help_text.split("0 = ", 1)[1].split(";")[0].strip()
        spin.setSpecialValueText(f"auto ({meaning})")


def _line(spec: ParamSpec) -> QWidget:
    return QLineEdit(str(spec.default))


def _combo(spec: ParamSpec) -> QWidget:
    box = QComboBox()
    for choice in spec.choices or ():
        box.addItem(str(choice), choice)
    _choose(box, spec.default)
    return box


def _choose(box: QComboBox, value: Any) -> None:
    index = box.findData(value)
    if index < 0:
        raise ValueError(f"{value!r} is not one of the choices")
    box.setCurrentIndex(index)


def _set_number(spin: QSpinBox | QDoubleSpinBox, value: Any) -> None:
    # Qt would clamp silently: a value the form cannot hold is an error, as make_params says.
    if not spin.minimum() <= value <= spin.maximum():
        raise ValueError(f"{value} is outside [{spin.minimum()}, {spin.maximum()}]")
    spin.setValue(value)


# Declared type -> its widget. A field with choices is a drop-down whatever its type.
WIDGET_FOR_TYPE: dict[type, Binding] = {
    bool: Binding(_check_box, lambda w: w.isChecked(), lambda w, v: w.setChecked(bool(v))),
    int: Binding(_int_box, lambda w: w.value(), lambda w, v: _set_number(w, int(v))),
    float: Binding(_float_box, lambda w: w.value(), lambda w, v: _set_number(w, float(v))),
    str: Binding(_line, lambda w: w.text(), lambda w, v: w.setText(str(v))),
}
WIDGET_FOR_CHOICES = Binding(_combo, lambda w: w.currentData(), _choose)
assert set(WIDGET_FOR_TYPE) == set(PARAM_TYPES.values())  # every type the API accepts


def binding_for(spec: ParamSpec) -> Binding:
    """The table's row for one parameter."""
    return WIDGET_FOR_CHOICES if spec.choices else WIDGET_FOR_TYPE[spec.type]


class ParamForm(QWidget):
    """One labelled widget per parameter, in declaration order. ``editors[name]`` is the
    Qt widget itself (a spin box, check box, combo box or line edit)."""

    def __init__(self, params_cls: type, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.specs = param_specs(params_cls)  # raises ParamError naming every problem
        self.bindings = {spec.name: binding_for(spec) for spec in self.specs}
        self.editors: dict[str, QWidget] = {}
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for spec in self.specs:
            editor = self.bindings[spec.name].make(spec)
            editor.setObjectName(f"param_{spec.name}")
            editor.setToolTip(spec.help)
            self.editors[spec.name] = editor
            layout.addRow(spec.label or spec.name.replace("_", " "), editor)

    def values(self) -> dict[str, Any]:
        """What the widgets hold now, by parameter name (values of the declared types)."""
        return {name: b.read(self.editors[name]) for name, b in self.bindings.items()}

    def set_value(self, name: str, value: Any) -> None:
        """Show ``value`` in the parameter's widget (ValueError when it cannot hold it:
        outside the range, not one of the choices)."""
        self.bindings[name].write(self.editors[name], value)
