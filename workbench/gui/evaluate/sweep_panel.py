"""The Evaluate window's Robustness sweep tab: a model, a labelled dataset, the
transformations to sweep one at a time (Du-Harpur et al.: colour offsets per channel,
rotation, translation, brightness, JPEG quality), run as a job with progress and cancel,
and its results: the key lines in Du-Harpur's form ("green −10: false negatives 8 → 9,
+12%") and one plot per transformation with its 95% interval bands.

The work is workbench.evaluation.sweep's; this panel collects a SweepSpec and shows the
files the sweep writes, so the tab and ``workbench sweep`` give the same figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ...session.jobs import Cancelled, Job, JobFailed
from ..jobs import JobRunner
from .plots import PlotLabel

MODELS = ("demo", "cxr")


def _default_data() -> str:
    from ...demo import shared_data_dir

    shared = shared_data_dir()
    return str(shared / "dermoscopy" / "isic") if shared is not None else ""


def _browse(parent: QWidget, edit: QLineEdit, title: str) -> None:
    folder = QFileDialog.getExistingDirectory(parent, title, edit.text())
    if folder:
        edit.setText(folder)


def sweep_job(spec: Any, out: str, **callbacks: Any) -> Job[dict[str, Any]]:
    """``run_sweep(spec)`` and its files in ``out`` as a job; the result is the sweep."""

    def work(job: Job) -> dict[str, Any]:
        from ...evaluation.sweep import SweepCancelled, SweepError, run_sweep
        from ...evaluation.sweep_plots import key_lines, write_outputs

        job.progress(-1, f"loading the model {spec.model}…")
        try:
            result = run_sweep(spec, progress=lambda d, t, m: job.progress(d / max(t, 1), m),
                               cancelled=lambda: job.cancelled)
        except SweepCancelled as exc:
            raise Cancelled(str(exc)) from None
        except (SweepError, ValueError, OSError) as exc:
            raise JobFailed(str(exc)) from None
        result["written"] = [str(p) for p in write_outputs(out, result)]
        result["lines"] = key_lines(result)
        return result

    return Job("Robustness sweep", work, subject=out, **callbacks)


class SweepPanel(QWidget):
    def __init__(self, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from ...evaluation.sweep import TRANSFORMS

        self.runner = runner
        self.job: Job | None = None
        self.result: dict[str, Any] | None = None
        self.model = QComboBox()
        self.model.setEditable(True)  # a model card path as well as a shipped name
        self.model.addItems(MODELS)
        self.data = QLineEdit(_default_data())
        self.split = QComboBox()
        self.split.addItems(["test", "all", "train"])
        self.out = QLineEdit(str(Path.home() / "workbench-sweep"))
        self.transforms = {name: QCheckBox(name) for name in TRANSFORMS}
        for box in self.transforms.values():
            box.setChecked(True)
        data_row, out_row = QHBoxLayout(), QHBoxLayout()
        for row, edit, title in ((data_row, self.data, "Labelled dataset folder"),
                                 (out_row, self.out, "Folder for the sweep's results")):
            browse = QPushButton("Browse…")
            browse.clicked.connect(lambda _c=False, e=edit, t=title: _browse(self, e, t))
            row.addWidget(edit, 1)
            row.addWidget(browse)
        checks = QHBoxLayout()
        for box in self.transforms.values():
            checks.addWidget(box)
        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("Data", data_row)
        form.addRow("Split", self.split)
        form.addRow("Transformations", checks)
        form.addRow("Results folder", out_row)
        self.start_button = QPushButton("Start sweep")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.status = QLabel("One transformation at a time, over the model card's split: "
                             "accuracy, sensitivity and false negatives of the positive "
                             "class, with 95% intervals.")
        self.status.setWordWrap(True)
        self.lines = QLabel("")
        self.lines.setWordWrap(True)
        self.lines.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.plots = QTabWidget()
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.lines)
        layout.addWidget(self.plots, 1)

    def spec(self) -> Any:
        from ...evaluation.sweep import SweepSpec

        chosen = tuple(n for n, box in self.transforms.items() if box.isChecked())
        if not chosen:
            raise JobFailed("choose at least one transformation")
        if not self.data.text().strip():
            raise JobFailed("choose the labelled dataset folder")
        return SweepSpec(model=self.model.currentText().strip(), data=self.data.text().strip(),
                         split=self.split.currentText(), transforms=chosen)

    def start(self, spec: Any = None) -> Job | None:
        if self.job is not None:
            return None
        try:
            spec = spec or self.spec()
        except JobFailed as exc:
            self._failed(str(exc))
            return None
        out = self.out.text().strip()
        self.job = sweep_job(spec, out, on_result=self._show, on_error=self._failed,
                             on_cancelled=lambda: self._failed("Cancelled."))
        self._running(True)
        return self.runner.start(self.job, on_progress=self._progressed)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)
        if not running:
            self.job = None

    def _progressed(self, fraction: float, message: str) -> None:
        if fraction >= 0:
            self.progress.setValue(int(100 * fraction))
        self.status.setText(message)

    def _failed(self, message: str) -> None:
        self._running(False)
        self.status.setText(f"<span style='color:#c62828'>{message}</span>")

    def _show(self, result: dict[str, Any]) -> None:
        self._running(False)
        self.result = result
        b = result["baseline"]
        self.status.setText(
            f"{result['data']['n']} images; baseline accuracy "
            f"{100 * b['accuracy']['value']:.1f}%, sensitivity "
            f"{100 * b['sensitivity']['value']:.1f}%, false negatives "
            f"{b['false_negatives']['value']} of {b['n_positive']}. Files in "
            f"{self.out.text().strip()}.")
        self.lines.setText("<br>".join(result["lines"]))
        self.plots.clear()
        for path in (Path(p) for p in result["written"] if p.endswith(".png")):
            label = PlotLabel()
            label.load(path)
            self.plots.addTab(label, path.stem.replace("sweep_", ""))
