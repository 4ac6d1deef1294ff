"""The model dock (classifier, device, prediction) and the attack dock (plugin, generated
parameter form, run, progress, cancel), and what connects them to the main window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .attack_worker import AttackTask, LoadModelTask, PredictTask
from .param_form import ParamForm

NO_SURROGATE = "(none)"


class ModelPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_box = QComboBox()
        self.model_box.addItems(["demo", "demo-surrogate", "Load model card…"])
        self.surrogate_box = QComboBox()
        self.surrogate_box.addItems([NO_SURROGATE, "demo-surrogate", "demo"])
        self.surrogate_box.setCurrentText("demo-surrogate")
        self.device_box = QComboBox()
        self.device_box.addItem("auto")
        self.status = QLabel("No model loaded")
        self.status.setWordWrap(True)
        self.prediction = QTreeWidget()
        self.prediction.setHeaderLabels(["Class", "Probability", ""])
        self.prediction.setRootIsDecorated(False)
        self.prediction.setMaximumHeight(110)
        form = QFormLayout()
        form.addRow("Model", self.model_box)
        form.addRow("Surrogate", self.surrogate_box)
        form.addRow("Device", self.device_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(self.prediction)

    def show_prediction(self, class_names: tuple[str, ...], probs: list[float],
                        positive: str = "") -> None:
        self.prediction.clear()
        best = max(range(len(probs)), key=probs.__getitem__)
        for i, (name, p) in enumerate(zip(class_names, probs, strict=True)):
            bar = "█" * int(round(p * 20))
            item = QTreeWidgetItem(self.prediction, [name + (" (positive)" if name == positive
                                                             else ""), f"{p:.3f}", bar])
            if i == best:
                font = item.font(0)
                font.setBold(True)
                for c in range(3):
                    item.setFont(c, font)
        self.prediction.resizeColumnToContents(0)

    def predicted_class(self) -> str:
        best = None
        for i in range(self.prediction.topLevelItemCount()):
            item = self.prediction.topLevelItem(i)
            if best is None or float(item.text(1)) > float(best.text(1)):
                best = item
        return best.text(0).replace(" (positive)", "") if best else ""


class AttackPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plugin_box = QComboBox()
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.form_holder = QVBoxLayout()
        self.form: ParamForm | None = None
        self.targeted = QCheckBox("Targeted (push to the other class)")
        self.run_current = QPushButton("Run on current image")
        self.run_selected = QPushButton("Run on selected images")
        self.cancel_button = QPushButton("Cancel")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.broken = QLabel()
        self.broken.setWordWrap(True)
        self.broken.setStyleSheet("color: #d23c3c")
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_current)
        buttons.addWidget(self.run_selected)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.plugin_box)
        layout.addWidget(self.summary)
        layout.addLayout(self.form_holder)
        layout.addWidget(self.targeted)
        layout.addLayout(buttons)
        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        layout.addWidget(self.broken)
        layout.addStretch(1)
        self.set_running(False)

    def set_running(self, running: bool) -> None:
        self.run_current.setEnabled(not running)
        self.run_selected.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)


class AttackController(QObject):
    """Owns the model, the plugins and the attack jobs of one main window."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        from ..engine.plugins import PluginRegistry

        self.window = window
        self.model_panel = ModelPanel()
        self.attack_panel = AttackPanel()
        self.model: Any = None
        self.model_name = ""
        self.surrogate: Any = None
        self.task: AttackTask | None = None
        self.pending: list[QObject] = []  # tasks in flight (kept alive until they report)
        self.results: dict[str, dict] = {}
        self.registry = PluginRegistry()
        self._fill_plugins()
        mp, ap = self.model_panel, self.attack_panel
        mp.model_box.activated.connect(self._on_model_choice)
        mp.surrogate_box.activated.connect(lambda _i: self.load_surrogate())
        mp.device_box.activated.connect(lambda _i: self.load_model(self.model_name or "demo"))
        ap.plugin_box.currentIndexChanged.connect(self._on_plugin)
        ap.run_current.clicked.connect(self.run_on_current)
        ap.run_selected.clicked.connect(self.run_on_selected)
        ap.cancel_button.clicked.connect(self.cancel)
        self._on_plugin(ap.plugin_box.currentIndex())

    # --- plugins -----------------------------------------------------------------------------
    def _fill_plugins(self) -> None:
        box = self.attack_panel.plugin_box
        box.clear()
        broken = []
        for info in self.registry.attacks():
            if info.ok:
                box.addItem(f"{info.name} — {info.threat}", info.name)
            else:
                broken.append(f"{info.name}: {info.error.splitlines()[0]} ({info.source})")
        # One short line: the full reasons (often long paths) squashed the parameter form
        # when shown in the dock; they are in the tooltip and in 'workbench plugins'.
        names = [b.split(":", 1)[0] for b in broken]
        self.attack_panel.broken.setText(
            f"⚠ broken plugins (not loaded): {', '.join(names)} — hover for why"
            if broken else "")
        self.attack_panel.broken.setToolTip("\n".join(broken))
        index = box.findData("pgd")
        if index >= 0:
            box.setCurrentIndex(index)

    def _on_plugin(self, index: int) -> None:
        name = self.attack_panel.plugin_box.itemData(index)
        ap = self.attack_panel
        if ap.form is not None:
            ap.form.setParent(None)
            ap.form.deleteLater()
            ap.form = None
        if not name:
            return
        info = self.registry.get(name)
        ap.summary.setText(info.summary + ("\nNeeds a surrogate model." if getattr(
            info.cls, "needs_surrogate", False) else ""))
        ap.form = ParamForm(info.cls.Params)
        ap.form_holder.addWidget(ap.form)

    def current_plugin(self) -> Any:
        return self.registry.get(self.attack_panel.plugin_box.currentData())

    # --- models -------------------------------------------------------------------------------
    def fill_devices(self) -> None:
        from ..models.device import available_devices

        box = self.model_panel.device_box
        for d in available_devices():
            if box.findText(d) < 0:
                box.addItem(d)

    def _on_model_choice(self, index: int) -> None:
        text = self.model_panel.model_box.itemText(index)
        if text.startswith("Load model card"):
            name, _ = QFileDialog.getOpenFileName(self.window, "Model card", "",
                                                  "Model cards (*.json)")
            if not name:
                return
            self.model_panel.model_box.insertItem(0, name)
            self.model_panel.model_box.setCurrentIndex(0)
            text = name
        self.load_model(text)

    def load_model(self, name: str) -> None:
        self.model_panel.status.setText(f"Loading {name}…")
        task = LoadModelTask(name, self.model_panel.device_box.currentText())
        task.signals.loaded.connect(self._on_model_loaded)
        task.signals.failed.connect(self._on_model_failed)
        self._start(task)
        self.load_surrogate()

    def load_surrogate(self) -> None:
        name = self.model_panel.surrogate_box.currentText()
        self.surrogate = None
        if name == NO_SURROGATE:
            return
        task = LoadModelTask(name, self.model_panel.device_box.currentText())
        task.signals.loaded.connect(lambda _n, m: setattr(self, "surrogate", m))
        task.signals.failed.connect(self._on_model_failed)
        self._start(task)

    def _on_model_loaded(self, name: str, model: Any) -> None:
        self.model, self.model_name = model, name
        self.fill_devices()  # torch is loaded now, so asking it about CUDA costs nothing
        card = model.card
        acc = card.metrics.get("accuracy")
        auc = card.metrics.get("auroc")
        quality = (f"; test accuracy {acc:.3f}, AUROC {auc:.3f} (n={card.metrics.get('n_test')})"
                   if isinstance(acc, float) and isinstance(auc, float) else "")
        self.model_panel.status.setText(f"{card.name} ({card.architecture}, "
                                        f"{card.input_size[0]}², {model.device}){quality}")
        self.predict_current()

    def _on_model_failed(self, name: str, message: str) -> None:
        self.model_panel.status.setText(f"Cannot load {name}")
        self.window._show_error(message, title="Model")

    def predict_current(self) -> None:
        w = self.window
        path = w.current_path
        if self.model is None or not path or path not in w.images:
            return
        task = PredictTask(path, w.images[path], w.view.frame, self.model)
        task.signals.predicted.connect(self._on_predicted)
        task.signals.failed.connect(lambda p, m: self.model_panel.status.setText(m))
        self._start(task)

    def _on_predicted(self, path: str, probs: list[float]) -> None:
        if path == self.window.current_path and self.model is not None:
            self.model_panel.show_prediction(self.model.class_names, probs,
                                             self.model.card.positive_class)

    # --- attacks ------------------------------------------------------------------------------
    def run_on_current(self) -> None:
        path = self.window.current_path
        if path:
            self.run_on([path])

    def run_on_selected(self) -> None:
        self.run_on(self.window.study_list.selected_paths())

    def run_on(self, paths: list[str]) -> bool:
        w = self.window
        if self.model is None:
            w._show_error("Load a model first (Model dock).", title="Attack")
            return False
        jobs = [(p, w.images[p], w.view.frame if p == w.current_path else 0)
                for p in paths if p in w.images]
        if not jobs:
            w._show_error("Open the image(s) first: only decoded images can be attacked.",
                          title="Attack")
            return False
        info = self.current_plugin()
        plugin = info.create()
        if plugin.needs_surrogate and self.surrogate is None:
            w._show_error(f"{info.name} needs a surrogate model (Model dock).", title="Attack")
            return False
        from .. import api

        try:
            params = api.make_params(plugin.Params, self.attack_panel.form.values())
        except api.ParamError as exc:
            w._show_error(str(exc), title="Attack parameters")
            return False
        task = AttackTask(jobs, plugin, self.model, params, self.attack_panel.targeted.isChecked(),
                          self.surrogate, self.registry.create)
        task.signals.progress.connect(self._on_progress)
        task.signals.finished.connect(self._on_finished)
        task.signals.failed.connect(self._on_failed)
        task.signals.cancelled.connect(self._on_cancelled)
        task.signals.done.connect(self._on_done)
        self.task = task
        self.attack_panel.set_running(True)
        self.attack_panel.progress.setValue(0)
        self._start(task)
        return True

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _on_progress(self, fraction: float, message: str) -> None:
        self.attack_panel.progress.setValue(int(fraction * 1000))
        self.attack_panel.progress.setFormat(message[:60])

    def _on_finished(self, path: str, result: dict) -> None:
        self.results[path] = result
        self.window.show_attack_result(path, result, self.model.class_names)

    def _on_failed(self, path: str, message: str) -> None:
        self.window._show_error(f"{Path(path).name}: {message.splitlines()[0]}",
                                title="Attack failed")

    def _on_cancelled(self, path: str) -> None:
        self.window.statusBar().showMessage(f"Attack cancelled ({Path(path).name})", 8000)

    def _on_done(self) -> None:
        self.attack_panel.set_running(False)
        self.task = None

    def _start(self, task: Any) -> None:
        self.pending.append(task)
        for signal_name in ("loaded", "failed", "predicted", "done"):
            sig = getattr(task.signals, signal_name, None)
            if sig is not None:
                sig.connect(lambda *_a, t=task: self.pending.remove(t) if t in self.pending
                            else None)
        self.window.pool.start(task, 1)

    def busy(self) -> bool:
        return self.task is not None


def attach(window: Any) -> AttackController:
    """Create the controller and its docks on ``window``."""
    controller = AttackController(window)
    window._add_dock("Model", controller.model_panel, Qt.DockWidgetArea.LeftDockWidgetArea, 400)
    window._add_dock("Attack", controller.attack_panel, Qt.DockWidgetArea.LeftDockWidgetArea, 400)
    return controller
