"""The attack dock: plugin, generated parameter form, run on the current or the selected
images, progress and cancel. Each image's outcome lands in its own session; the Attack
result tab shows the current session's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...session import actions
from ..param_form import ParamForm

STILL_RUNNING_MS = 3000  # after cancel, when a plugin that ignores it is called out


class AttackPanel(QWidget):
    resultReady = Signal(object)  # the ImageSession whose attack result just landed
    message = Signal(str)  # a line for the status bar

    def __init__(self, study: Any, runner: Any, registry: Any,
                 selected: Callable[[], list[str]], report_error: Callable[[str, str], Any],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.study, self.runner, self.registry = study, runner, registry
        self.selected, self.report_error = selected, report_error
        self.job: Any = None  # the attack in progress (one at a time)
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
        self.summary.setText("Loading plugins…")  # the window fills the list after painting
        self.plugin_box.currentIndexChanged.connect(self._on_plugin)
        self.run_current.clicked.connect(
            lambda: self.run_on([self.study.current.path] if self.study.current else []))
        self.run_selected.clicked.connect(lambda: self.run_on(self.selected()))
        self.cancel_button.clicked.connect(self.cancel)

    def set_running(self, running: bool) -> None:
        self.run_current.setEnabled(not running)
        self.run_selected.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)

    # --- plugins ----------------------------------------------------------------------------
    def fill_plugins(self) -> None:
        """(Re)list the attack plugins, keeping the chosen one when it is still there."""
        box = self.plugin_box
        current = box.currentData()
        box.blockSignals(True)
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
        self.broken.setText(f"⚠ broken plugins (not loaded): {', '.join(names)} — hover for why"
                            if broken else "")
        self.broken.setToolTip("\n".join(broken))
        index = box.findData(current) if current is not None else -1
        box.setCurrentIndex(index if index >= 0 else max(box.findData("pgd"), 0))
        box.blockSignals(False)
        self._on_plugin(box.currentIndex())

    def _on_plugin(self, index: int) -> None:
        name = self.plugin_box.itemData(index)
        if self.form is not None:
            self.form.setParent(None)
            self.form.deleteLater()
            self.form = None
        if not name:
            return
        info = self.registry.get(name)
        self.summary.setText(info.summary + ("\nNeeds a surrogate model." if getattr(
            info.cls, "needs_surrogate", False) else ""))
        self.form = ParamForm(info.cls.Params)
        self.form_holder.addWidget(self.form)

    def current_plugin(self) -> Any:
        return self.registry.get(self.plugin_box.currentData())

    # --- running ----------------------------------------------------------------------------
    def run_on(self, paths: list[str]) -> bool:
        from ... import api

        study = self.study
        if study.model is None:
            self.report_error("Load a model first (Model dock).", "Attack")
            return False
        targets = [(s, 0) for s in (study.get(p) for p in paths)
                   if s is not None and s.image is not None]
        if not targets:
            self.report_error("Open the image(s) first: only decoded images can be attacked.",
                              "Attack")
            return False
        # a universal attack's result is shown on its first image: make that the current one
        targets.sort(key=lambda t: t[0] is not study.current)
        info = self.current_plugin()
        plugin = info.create()
        if plugin.needs_surrogate and study.surrogate is None:
            self.report_error(f"{info.name} needs a surrogate model (Model dock).", "Attack")
            return False
        try:
            params = api.make_params(plugin.Params, self.form.values())
        except api.ParamError as exc:
            self.report_error(str(exc), "Attack parameters")
            return False
        job = actions.attack(targets, plugin, study.model, study.model_name, params,
                             targeted=self.targeted.isChecked(), surrogate=study.surrogate,
                             plugin_lookup=self.registry.create)
        land = job.on_partial
        job.on_partial = lambda item: (land(item), self._landed(*item))
        job.on_result = lambda _r: self._finished()
        job.on_cancelled = lambda: self._finished(f"Attack cancelled ({job.title})")
        job.on_error = lambda message: (self.report_error(message, "Attack failed"),
                                        self._finished())
        self.job = job
        self.set_running(True)
        self.progress.setValue(0)
        self.runner.start(job, priority=1, on_progress=self._on_progress)
        return True

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            job = self.job
            QTimer.singleShot(STILL_RUNNING_MS, lambda: self._if_still_running(job))

    def _if_still_running(self, job: Any) -> None:
        """The plugin has not stopped: it does not check for cancel. Its results are
        dropped when they come; the panel is free again at once (never a frozen dock)."""
        if self.job is not job or job not in self.runner.jobs():
            return
        self._finished(f"{job.title}: cancel asked, but the plugin does not check for it; it "
                       "finishes in the background and its results are dropped")
        self.progress.setFormat("cancelled (the plugin finishes in the background)")

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        # cut in the middle to the bar's width: the start says what runs, the end how long
        # is left (the job adds that), and the whole message is the tooltip
        fm = self.progress.fontMetrics()
        self.progress.setFormat(fm.elidedText(message, Qt.TextElideMode.ElideMiddle,
                                              max(self.progress.width() - 16, 120)))
        self.progress.setToolTip(message)

    def _landed(self, session: Any, run: Any) -> None:
        if isinstance(run, str):  # this image failed; the others go on
            self.report_error(f"{Path(session.path).name}: {run.splitlines()[0]}",
                              "Attack failed")
        else:
            self.resultReady.emit(session)

    def _finished(self, message: str = "") -> None:
        self.job = None
        self.set_running(False)
        if message:
            self.message.emit(message)
