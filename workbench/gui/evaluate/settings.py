"""The evaluator's settings form: model and surrogate, data and split, sizes and seed,
the output folder, the attacks and detectors to run and each attack's parameters. It
describes one run as an ``EvalSpec``; the window runs it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..param_form import ParamForm

if TYPE_CHECKING:  # the evaluator is imported when a run starts, not with the window
    from ...engine.plugins import PluginRegistry
    from ...evaluation.runner import EvalSpec

NO_SURROGATE = "(none)"
SPLITS = ("test", "all", "train")
DEFAULT_ATTACKS = ("pgd",)  # Table 1's headline row; the slow patch attacks are opt-in


# each shipped model's own data beside the checkout, so the defaults give a meaningful run
MODEL_DATA = {"demo": ("dermoscopy", "isic"), "cxr": ("cxr-pneumonia",)}


def default_data_folder(model: str = "demo") -> str:
    """The named model's own data set beside the checkout (the ISIC dermoscopy set for
    the demo), when it is there."""
    shared = Path(__file__).resolve().parents[3].parent / "shared" / "data"
    folder = shared.joinpath(*MODEL_DATA.get(model, MODEL_DATA["demo"]))
    return str(folder) if folder.is_dir() else ""


def default_out_folder() -> str:
    """A fresh, timestamped run folder under the workbench home (all state lives there);
    not created until a run starts."""
    from ...home import workbench_home

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return str(workbench_home(create=False) / "evaluations" / f"run-{stamp}")


def _spin(low: int, high: int, value: int = 0, suffix: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    box.setSuffix(suffix)
    return box


def _row(*widgets: QWidget) -> QHBoxLayout:
    """A line edit that takes the room, then its buttons."""
    row = QHBoxLayout()
    for k, w in enumerate(widgets):
        row.addWidget(w, 1 if k == 0 else 0)
    return row


def _button(text: str, slot: Any, tip: str = "") -> QPushButton:
    b = QPushButton(text)
    b.clicked.connect(slot)
    if tip:
        b.setToolTip(tip)
    return b


def find_item(lst: QListWidget, name: str) -> QListWidgetItem | None:
    """The list's row for the plugin ``name``."""
    for i in range(lst.count()):
        if lst.item(i).data(Qt.ItemDataRole.UserRole) == name:
            return lst.item(i)
    return None


def checked_names(lst: QListWidget) -> list[str]:
    return [lst.item(i).data(Qt.ItemDataRole.UserRole) for i in range(lst.count())
            if lst.item(i).checkState() == Qt.CheckState.Checked]


class EvaluationSettings(QWidget):
    """The left-hand form of the Evaluate window. Disabled as a whole during a run: what
    is shown is what is being computed."""

    def __init__(self, registry: PluginRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self._forms: dict[str, ParamForm] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._run_box())
        layout.addWidget(self._attacks_box(), 1)
        layout.addWidget(self._detectors_box())
        self._fill_attacks()
        self._fill_detectors()
        # seven short rows: show them all rather than give the list a scroll bar
        self.detector_list.setFixedHeight(
            sum(self.detector_list.sizeHintForRow(i) for i in range(self.detector_list.count()))
            + 2 * self.detector_list.frameWidth() + 4)

    # --- building ------------------------------------------------------------------------
    def _model_boxes(self) -> None:
        from ...models.zoo import NAMED

        self.model_box = QComboBox()
        self.model_box.setEditable(True)  # a named model, or the path of a model card
        self.model_box.addItems(list(NAMED))
        self.model_box.setToolTip("A named model or the path of a model card (.json)")
        self.surrogate_box = QComboBox()
        self.surrogate_box.setEditable(True)
        self.surrogate_box.addItems([NO_SURROGATE, *NAMED])
        # Finlayson et al.'s black-box rows need a surrogate, as the Attack dock defaults
        if "demo-surrogate" in NAMED:
            self.surrogate_box.setCurrentText("demo-surrogate")
        self.surrogate_box.setToolTip("Crafts the black-box (transfer) rows; (none) = "
                                      "white-box rows only")
        self.model_box.currentTextChanged.connect(self._pair_with_model)

    def _pair_with_model(self, name: str) -> None:
        """A shipped victim brings its own surrogate and, while the data folder is still a
        default one, its own data set."""
        from ...models.zoo import NAMED, SURROGATE_SUFFIX

        if name + SURROGATE_SUFFIX in NAMED:
            self.surrogate_box.setCurrentText(name + SURROGATE_SUFFIX)
        edit = getattr(self, "data_edit", None)
        defaults = {default_data_folder(m) for m in MODEL_DATA}
        if edit is not None and name in MODEL_DATA and edit.text() in defaults:
            edit.setText(default_data_folder(name))

    def _run_box(self) -> QGroupBox:
        self._model_boxes()
        self.data_edit = QLineEdit(default_data_folder())
        self.data_edit.setPlaceholderText("folder with labels.csv, a CSV, or class folders")
        self.split_box = QComboBox()
        self.split_box.addItems(list(SPLITS))
        # "test" by default: the demo models were trained on their card's train split, so
        # only the held-out images give honest clean accuracy
        self.split_box.setToolTip("The model card's split: test = held-out images only")
        self.limit_spin = _spin(0, 1_000_000)
        self.limit_spin.setSpecialValueText("all")
        self.limit_spin.setToolTip("At most this many images per class (0 = all)")
        self.size_spin = _spin(16, 2048, 224, " px")
        self.batch_spin = _spin(1, 1024, 8)
        self.seed_spin = _spin(0, 2**31 - 1)
        self.out_edit = QLineEdit(default_out_folder())
        form = QFormLayout()
        form.addRow("Model", self.model_box)
        form.addRow("Surrogate", self.surrogate_box)
        form.addRow("Data", _row(self.data_edit, _button("Folder…", self._browse_data_folder),
                                 _button("CSV…", self._browse_data_csv)))
        form.addRow("Split", self.split_box)
        form.addRow("Images per class", self.limit_spin)
        form.addRow("Image size", self.size_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Seed", self.seed_spin)
        form.addRow("Output folder", _row(
            self.out_edit, _button("Browse…", self._browse_out),
            _button("New", lambda: self.out_edit.setText(default_out_folder()),
                    "A fresh run folder (needed after changing the settings of a run)")))
        box = QGroupBox("Run")
        box.setLayout(form)
        return box

    def _attacks_box(self) -> QGroupBox:
        self.attack_list = QListWidget()
        self.attack_list.setObjectName("attack_list")
        # the forms sit in one layout and only the current one is visible: unlike a
        # QStackedWidget, hidden forms take no room, so a short form leaves no empty band
        self.param_holder = QWidget()
        self._param_layout = QVBoxLayout(self.param_holder)
        self._param_layout.setContentsMargins(0, 0, 0, 0)
        self.param_hint = QLabel()
        self.param_hint.setWordWrap(True)
        self._no_form = QLabel("Select an attack to set its parameters.")
        self._no_form.setWordWrap(True)
        self._param_layout.addWidget(self._no_form)
        self.attack_list.currentItemChanged.connect(self._on_attack_highlighted)
        box = QGroupBox("Attacks (check to run; select to set parameters)")
        layout = QVBoxLayout(box)
        layout.addWidget(self.attack_list, 1)
        layout.addWidget(self.param_hint)
        layout.addWidget(self.param_holder)
        return box

    def _detectors_box(self) -> QGroupBox:
        self.detector_list = QListWidget()
        self.detector_list.setObjectName("detector_list")
        box = QGroupBox("Detectors")
        QVBoxLayout(box).addWidget(self.detector_list)
        return box

    def _fill_attacks(self) -> None:
        for info in self.registry.attacks():
            item = QListWidgetItem(f"{info.name} — {info.threat}" if info.threat else info.name)
            item.setData(Qt.ItemDataRole.UserRole, info.name)
            if info.ok:
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if info.name in DEFAULT_ATTACKS
                                   else Qt.CheckState.Unchecked)
                item.setToolTip(info.summary)
            else:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                item.setToolTip(f"broken: {info.error.splitlines()[0] if info.error else ''}")
            self.attack_list.addItem(item)
        for name in DEFAULT_ATTACKS:
            item = find_item(self.attack_list, name)
            if item is not None:
                self.attack_list.setCurrentItem(item)
                break

    def _fill_detectors(self) -> None:
        for info in self.registry.detectors():
            item = QListWidgetItem(info.name)
            item.setData(Qt.ItemDataRole.UserRole, info.name)
            # The matrix needs a score to threshold on clean images, so only calibratable
            # detectors can be evaluated (capture-record and dicom-header are verdicts on
            # file records, not scores). They are checked by default because the detector
            # x attack matrix is half of what an evaluation is for; unchecking is one click.
            if info.ok and info.calibratable:
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked)
                item.setToolTip(info.summary)
            else:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                item.setText(f"{info.name} (no score to evaluate)" if info.ok
                             else f"{info.name} (broken)")
                item.setToolTip(info.summary if info.ok else info.error)
            self.detector_list.addItem(item)

    # --- plugins and parameters ----------------------------------------------------------
    def param_form(self, attack: str) -> ParamForm:
        """The attack's parameter form, made once and kept, so values set for one attack
        survive highlighting another."""
        if attack not in self._forms:
            form = ParamForm(self.registry.get(attack, kind="attack").cls.Params)
            self._forms[attack] = form
            form.hide()
            self._param_layout.addWidget(form)
        return self._forms[attack]

    def current_form(self) -> ParamForm | None:
        """The parameter form shown (the highlighted attack's), if any."""
        return next((f for f in self._forms.values() if not f.isHidden()), None)

    def _show_form(self, form: QWidget) -> None:
        for w in (self._no_form, *self._forms.values()):
            w.setVisible(w is form)

    def _on_attack_highlighted(self, item: QListWidgetItem | None, _prev: Any = None) -> None:
        name = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        if not name or not (item.flags() & Qt.ItemFlag.ItemIsEnabled):
            self._show_form(self._no_form)
            self.param_hint.setText("")
            return
        info = self.registry.get(name, kind="attack")
        hint = info.summary
        if getattr(info.cls, "needs_surrogate", False):
            hint += " Needs a surrogate model."
        self.param_hint.setText(f"<b>{name}</b>: {hint}")
        self._show_form(self.param_form(name))

    def select_attack(self, name: str, checked: bool = True) -> ParamForm:
        """Check (or uncheck) an attack, highlight it and return its parameter form."""
        item = find_item(self.attack_list, name)
        if item is None:
            raise KeyError(f"no attack {name}")
        item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.attack_list.setCurrentItem(item)
        self._on_attack_highlighted(item)  # no change signal when it was already current
        return self.param_form(name)

    def set_checked(self, lst: QListWidget, names: list[str]) -> None:
        """Check exactly ``names`` in an attack or detector list."""
        for i in range(lst.count()):
            item = lst.item(i)
            if item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
                item.setCheckState(Qt.CheckState.Checked
                                   if item.data(Qt.ItemDataRole.UserRole) in names
                                   else Qt.CheckState.Unchecked)

    # --- browsing ------------------------------------------------------------------------
    def _browse_data_folder(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Dataset folder", self.data_edit.text())
        if d:
            self.data_edit.setText(d)

    def _browse_data_csv(self) -> None:
        f, _ = QFileDialog.getOpenFileName(self, "Labels CSV", self.data_edit.text(),
                                           "CSV files (*.csv)")
        if f:
            self.data_edit.setText(f)

    def _browse_out(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Output folder",
                                             str(Path(self.out_edit.text()).parent))
        if d:
            self.out_edit.setText(d)

    # --- the run they describe -----------------------------------------------------------
    def spec(self) -> EvalSpec:
        """The EvalSpec the settings describe. Every checked attack gets its form's full
        values (defaults included) so the run's identity does not depend on which forms
        happened to be opened: a resume with the same settings matches."""
        from ...evaluation.runner import EvalSpec

        surrogate = self.surrogate_box.currentText().strip()
        return EvalSpec(
            model=self.model_box.currentText().strip(),
            surrogate=None if surrogate in ("", NO_SURROGATE) else surrogate,
            data=self.data_edit.text().strip(), out=self.out_edit.text().strip(),
            attacks=[{"name": n, "params": self.param_form(n).values()}
                     for n in checked_names(self.attack_list)],
            detectors=[{"name": n} for n in checked_names(self.detector_list)],
            image_size=self.size_spin.value(), batch_size=self.batch_spin.value(),
            seed=self.seed_spin.value(), split=self.split_box.currentText(),
            limit=self.limit_spin.value() or None)

    def problem(self, spec: EvalSpec) -> str:
        """What is missing before ``spec`` can run, or ""."""
        return ("Choose a model." if not spec.model else
                "Choose the data: a folder or a labels CSV." if not spec.data else
                "Choose an output folder." if not spec.out else "")
