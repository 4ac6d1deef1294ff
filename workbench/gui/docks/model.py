"""The model dock: which classifier (and surrogate) the study uses, on which device, and
that model's prediction for the current image session, under a header naming the image.
Predictions are kept in each session per model and frame, so switching back to an image
shows its prediction again without a new model call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...session import actions
from ..binding import rebind
from ..settings import set_last_model

NO_SURROGATE = "(none)"
NO_MODEL = "(choose a model)"


class ModelPanel(QWidget):
    def __init__(self, study: Any, runner: Any, report_error: Callable[[str, str], Any],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.study, self.runner, self.report_error = study, runner, report_error
        self.session: Any = None
        self.frame = 0
        self._pending: set[tuple[str, str, int]] = set()  # predictions being computed
        self.loading: str | None = None  # the model being loaded
        self.model_box = QComboBox()
        # the box never names a model that is not loaded: it starts on "choose a model"
        from ...models.zoo import NAMED, SURROGATE_SUFFIX

        self.model_box.addItems([NO_MODEL, *NAMED, "Load model card…"])
        self.surrogate_box = QComboBox()
        surrogates_first = sorted(NAMED, key=lambda n: not n.endswith(SURROGATE_SUFFIX))
        self.surrogate_box.addItems([NO_SURROGATE, *surrogates_first])
        self.surrogate_box.setCurrentText("demo" + SURROGATE_SUFFIX)
        self.device_box = QComboBox()
        self.device_box.addItem("auto")
        self.status = QLabel("No model loaded: choose one above.")
        self.status.setWordWrap(True)
        self.header = QLabel("No image open.")
        self.header.setWordWrap(True)
        self.mismatch = QLabel()  # the model does not fit the image: why, instead of an answer
        self.mismatch.setWordWrap(True)
        self.mismatch.setStyleSheet("background: #c98a0a; color: white; padding: 6px; "
                                    "border-radius: 4px; font-weight: bold;")
        self.mismatch.hide()
        self.use_fitting = QPushButton()  # "Use cxr": the shipped model that fits instead
        self.use_fitting.hide()
        self.use_fitting.clicked.connect(lambda: self.load_model(self._fitting or ""))
        self._fitting: str | None = None
        self.caveat = QLabel()  # it fits, but the file cannot say so (a grey picture file)
        self.caveat.setWordWrap(True)
        self.caveat.setStyleSheet("color: #666; font-style: italic;")
        self.caveat.hide()
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
        layout.addWidget(self.header)
        layout.addWidget(self.mismatch)
        layout.addWidget(self.use_fitting)
        layout.addWidget(self.caveat)
        layout.addWidget(self.prediction)
        layout.addStretch(1)  # spare height below the answer, not between the lines
        self.model_box.activated.connect(self._on_model_choice)
        self.surrogate_box.activated.connect(lambda _i: self.load_surrogate())
        self.device_box.activated.connect(  # a loaded model moves to the chosen device
            lambda _i: self.load_model(self.study.model_name) if self.study.model else None)
        study.models_changed.connect(self._refresh)

    # --- models -----------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        return self.study.model

    def _on_model_choice(self, index: int) -> None:
        text = self.model_box.itemText(index)
        if text == NO_MODEL:
            self._show_loaded()
            return
        if text.startswith("Load model card"):
            name, _ = QFileDialog.getOpenFileName(self, "Model card", "", "Model cards (*.json)")
            if not name:
                return
            self.model_box.insertItem(0, name)
            self.model_box.setCurrentIndex(0)
            text = name
        self.load_model(text)

    def load_model(self, name: str) -> None:
        from ...models.zoo import NAMED, SURROGATE_SUFFIX

        if not name:
            return
        if self.model_box.findText(name) < 0:
            self.model_box.insertItem(1, name)
        if name + SURROGATE_SUFFIX in NAMED:  # a victim comes with its own surrogate
            self.surrogate_box.setCurrentText(name + SURROGATE_SUFFIX)
        self.model_box.setCurrentText(name)
        self.status.setText(f"Loading {name}…")
        self.loading = name
        job = actions.load_model(self.study, name, self.device_box.currentText())
        done = job.on_result
        job.on_result = lambda m: (done(m), self._on_loaded(m), set_last_model(name))
        job.on_error = lambda message: (setattr(self, "loading", None),
                                        self._show_loaded(f"Cannot load {name}. "),
                                        self.report_error(message, "Model"))
        self.runner.start(job, priority=1,
                          on_progress=lambda _f, m: self.status.setText(f"Loading {name}: {m}"))
        self.load_surrogate()

    def load_surrogate(self) -> None:
        name = self.surrogate_box.currentText()
        if name == NO_SURROGATE:
            self.study.set_surrogate("", None)
            return
        job = actions.load_model(self.study, name, self.device_box.currentText(),
                                 surrogate=True)
        job.on_error = lambda message: self.report_error(message, "Model")
        self.runner.start(job, priority=1)

    def _on_loaded(self, model: Any) -> None:
        self.loading = None
        self.fill_devices()  # torch is loaded now, so asking it about CUDA costs nothing
        card = model.card
        acc, auc = card.metrics.get("accuracy"), card.metrics.get("auroc")
        quality = (f"; test accuracy {acc:.3f}, AUROC {auc:.3f} (n={card.metrics.get('n_test')})"
                   if isinstance(acc, float) and isinstance(auc, float) else "")
        self.status.setText(f"{card.name} ({card.architecture}, {card.input_size[0]}², "
                            f"{model.device}){quality}")

    def use_device(self, device: str) -> None:
        """Point the device box at ``device``; a loaded model is loaded again there, so
        that what runs next runs on the device the user chose."""
        box = self.device_box
        if box.currentText() == device:
            return
        if box.findText(device) < 0:
            box.addItem(device)
        box.setCurrentText(device)
        if self.study.model is not None:
            self.load_model(self.study.model_name)

    def _show_loaded(self, prefix: str = "") -> None:
        """Point the box back at the model actually loaded (or "choose a model")."""
        self.model_box.setCurrentText(self.study.model_name or NO_MODEL)
        if prefix or self.study.model is None:
            self.status.setText(prefix + ("No model loaded: choose one above."
                                          if self.study.model is None else ""))

    def fill_devices(self) -> None:
        from ...models.device import available_devices

        for d in available_devices():
            if self.device_box.findText(d) < 0:
                self.device_box.addItem(d)

    # --- the current image's prediction -------------------------------------------------------
    def show_session(self, session: Any, frame: int = 0) -> None:
        self.session = rebind(self.session, session, self._on_changed)
        self.frame = frame
        self._refresh()

    def _on_changed(self, aspect: str) -> None:
        if aspect in ("image", "prediction"):
            self._refresh()

    def _refresh(self) -> None:
        from ...models.fit import fit_caveat, fit_problem

        self.prediction.clear()
        self.mismatch.hide()
        self.use_fitting.hide()
        self.caveat.hide()
        self.prediction.show()
        s, model, name = self.session, self.study.model, self.study.model_name
        if s is None:
            self.header.setText("No image open.")
            return
        if model is None:
            self.header.setText(f"{s.name}: load a model to classify it")
            return
        problem = fit_problem(model.card, s.image) if s.image is not None else None
        if problem is not None:  # never a diagnosis from a model trained on other images
            self.header.setText(f"{name} on {s.name}: no diagnosis")
            self.mismatch.setText("⚠ " + problem)
            self.mismatch.show()
            self.prediction.hide()  # not even an empty table of classes
            self._offer_fitting(s.image)
            return
        caveat = fit_caveat(model.card, s.image) if s.image is not None else None
        if caveat:
            self.caveat.setText("Note: " + caveat + ".")
            self.caveat.show()
        p = s.prediction(name, self.frame)
        if p is not None:
            self.header.setText(f"{name} on {s.name}" + (f", frame {self.frame + 1}"
                                                         if self.frame else ""))
            self._show(p)
        elif s.image is not None:
            self.header.setText(f"{name} on {s.name}: classifying…")
            self._classify(s, model, name)
        else:
            self.header.setText(f"{name} on {s.name}: waiting for the image")

    def _offer_fitting(self, image: Any) -> None:
        """A button for the shipped model that does fit this image, when there is one."""
        from ...models.zoo import fitting_model

        self._fitting = fitting_model(image)
        if self._fitting and self._fitting != self.study.model_name:
            self.use_fitting.setText(f"Use {self._fitting}, which fits this image")
            self.use_fitting.show()

    def _classify(self, session: Any, model: Any, name: str) -> None:
        key = (session.path, name, self.frame)
        if key in self._pending:
            return
        self._pending.add(key)
        job = actions.classify(session, model, name, self.frame)
        done = job.on_result
        job.on_result = lambda p: (self._pending.discard(key), done(p))
        job.on_error = lambda message: (self._pending.discard(key), self.status.setText(message))
        self.runner.start(job, priority=1)

    def _show(self, p: Any) -> None:
        best = max(range(len(p.probabilities)), key=p.probabilities.__getitem__)
        for i, (cls, prob) in enumerate(zip(p.class_names, p.probabilities, strict=True)):
            bar = "█" * int(round(prob * 20))
            label = cls + (" (positive)" if cls == p.positive_class else "")
            item = QTreeWidgetItem(self.prediction, [label, f"{prob:.3f}", bar])
            if i == best:
                font = item.font(0)
                font.setBold(True)
                for c in range(3):
                    item.setFont(c, font)
        self.prediction.resizeColumnToContents(0)

    def predicted_class(self) -> str:
        s = self.session
        p = s.prediction(self.study.model_name, self.frame) if s is not None else None
        return p.best if p is not None else ""
