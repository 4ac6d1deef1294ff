"""The Evaluate window: settings for a batch evaluation (workbench.evaluation), a run on a
worker thread with progress, ETA and cancel, and its results (Table 1 with bootstrap
intervals, the detector x attack matrix, the three plots).

The evaluator does the work and keeps the run folder resumable; this window only collects
an EvalSpec, runs ``evaluate()`` off the GUI thread and shows what it returns. Pressing
Start again with the same settings and output folder resumes a cancelled run: the
evaluator skips the units already on disk. Torch is only imported by the evaluator, on
the worker thread, so opening this window stays cheap.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, QRunnable, Qt, QThreadPool, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .param_form import ParamForm

if TYPE_CHECKING:  # the evaluator is imported when a run starts, not with the window
    from ..evaluation.runner import EvalSpec

NO_SURROGATE = "(none)"
SPLITS = ("test", "all", "train")
DEFAULT_ATTACKS = ("pgd",)  # Table 1's headline row; the slow patch attacks are opt-in
PLOTS = (("roc.png", "ROC"), ("confidence.png", "Confidence"),
         ("detector_matrix.png", "Detector matrix plot"))
TABLE1_COLUMNS = ("Condition", "n", "Accuracy [95% CI]", "AUROC [95% CI]",
                  "Confidence [95% CI]", "L2", "L∞", "Flip rate", "Queries",
                  "Paper acc / AUROC")
TABLE1_TIPS = ("Clean, or attack/mode (white: crafted on the model; black: on the "
               "surrogate; query: score-based; transfer: needs the surrogate)",
               "Images", "Accuracy", "AUROC for the positive class",
               "Mean confidence in the predicted class", "Mean L2 norm of the perturbation",
               "Mean L∞ norm of the perturbation",
               "Du-Harpur et al.: of the positives the model got right, how many flipped",
               "Mean model queries per image (score-based attacks)",
               "Finlayson et al. 2019, Table 1, dermoscopy column")
DETECTOR_COLUMNS = ("Detector", "Threshold", "FPR (clean)", "Condition", "AUROC",
                    "Detection rate", "… of successful")


def default_data_folder() -> str:
    """The ISIC dermoscopy set beside the checkout, when it is there (the demo models'
    own data, so the defaults give a meaningful first run)."""
    isic = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dermoscopy" / "isic"
    return str(isic) if isic.is_dir() else ""


def default_out_folder() -> str:
    """A fresh, timestamped run folder under the workbench home (all state lives there);
    not created until a run starts."""
    from ..home import workbench_home

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return str(workbench_home(create=False) / "evaluations" / f"run-{stamp}")


# --- formatting ---------------------------------------------------------------------------
def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt_ci(m: dict[str, Any] | None, pct: bool = False) -> str:
    """``value [low, high]``; the interval is left out when the bootstrap gave none."""
    if not m or _is_missing(m.get("value")):
        return "–"
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.3f}")
    lo, hi = m.get("ci_low"), m.get("ci_high")
    ci = "" if _is_missing(lo) or _is_missing(hi) else f" [{f(lo)}, {f(hi)}]"
    return f"{f(m['value'])}{ci}"


def fmt_num(v: Any, digits: int = 4, pct: bool = False) -> str:
    if _is_missing(v):
        return "–"
    return f"{100 * v:.1f}%" if pct else f"{v:.{digits}g}"


def fmt_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {(seconds % 3600) // 60:02d} min"


# --- the worker ---------------------------------------------------------------------------
class EvaluateSignals(QObject):
    progress = Signal(int, int, str)  # units done, units in all, last unit or message
    unit_progress = Signal(float, str)  # fraction of the current unit, message
    done = Signal(object)  # the summary dict
    failed = Signal(str)
    cancelled = Signal(str)


class EvaluateTask(QRunnable):
    """One ``evaluate()`` call on a pool thread; signals are queued to the GUI thread."""

    def __init__(self, spec: EvalSpec) -> None:
        super().__init__()
        self.spec = spec
        self.signals = EvaluateSignals()
        self._cancel = threading.Event()
        # the window keeps a reference until the task reports, so Qt must not delete it
        self.setAutoDelete(False)

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        from ..evaluation.runner import EvaluationCancelled, EvaluationError, evaluate

        try:
            summary = evaluate(
                self.spec,
                progress=lambda d, t, m: self.signals.progress.emit(d, t, m),
                unit_progress=lambda f, m: self.signals.unit_progress.emit(float(f), str(m)),
                cancelled=self._cancel.is_set)
        except EvaluationCancelled as exc:
            self.signals.cancelled.emit(str(exc))
        except EvaluationError as exc:
            self.signals.failed.emit(str(exc))
        except Exception as exc:  # the window reports it and keeps working
            self.signals.failed.emit(f"{type(exc).__name__}: {exc}")
        else:
            self.signals.done.emit(summary)


# --- widgets ------------------------------------------------------------------------------
class PlotLabel(QLabel):
    """A PNG that keeps its aspect ratio as the tab resizes. The size policy is Ignored so
    the scaled pixmap never feeds back into the layout's size (no grow-only loop)."""

    clicked = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setMinimumSize(120, 120)
        self.source: QPixmap | None = None

    def load(self, path: Path) -> bool:
        pix = QPixmap(str(path)) if path.is_file() else QPixmap()
        if pix.isNull():
            self.reset()
            self.setText(f"{path.name} was not written")
            return False
        self.source = pix
        self.setStyleSheet("background: white;")  # the plots' own background, edge to edge
        self._rescale()
        return True

    def reset(self) -> None:
        self.source = None
        self.clear()
        self.setStyleSheet("")

    def _rescale(self) -> None:
        if self.source is not None:
            self.setPixmap(self.source.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                              Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, e) -> None:  # noqa: N802
        self._rescale()
        super().resizeEvent(e)

    def mousePressEvent(self, e) -> None:  # noqa: N802
        if e.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mousePressEvent(e)


def _fit_height(table: QTableWidget, max_rows: int = 10) -> None:
    """As tall as its rows (at most ``max_rows``, then it scrolls), so short tables leave
    no empty band and the plots below get the room."""
    rows = min(table.rowCount(), max_rows)
    h = table.horizontalHeader().sizeHint().height() + 2 * table.frameWidth()
    h += sum(table.rowHeight(r) for r in range(rows)) if rows else 24
    if table.horizontalScrollBar().isVisible() or (
            table.horizontalHeader().length() > table.viewport().width()):
        h += table.horizontalScrollBar().sizeHint().height()
    table.setFixedHeight(h)


def _table(columns: tuple[str, ...]) -> QTableWidget:
    t = QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels(list(columns))
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setAlternatingRowColors(True)
    t.setWordWrap(False)
    t.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    return t


class EvaluateWindow(QWidget):
    """Non-modal top-level window; ``parent`` (the main window) only owns it."""

    def __init__(self, parent: QWidget | None = None, registry: Any = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        from ..engine.plugins import PluginRegistry
        from ..models.zoo import NAMED

        self.setWindowTitle("Evaluate — workbench")
        self.resize(1500, 920)
        self.registry = registry if registry is not None else PluginRegistry()
        self.pool = QThreadPool(self)  # its own pool: closing this window waits on it only
        self.pool.setMaxThreadCount(1)
        self.task: EvaluateTask | None = None
        self.summary: dict[str, Any] | None = None
        self.run_dir: Path | None = None
        self.error_box: QMessageBox | None = None
        self._forms: dict[str, ParamForm] = {}
        self._t0 = 0.0
        self._done_at_start = 0
        self._done = 0
        self._total = 0

        # settings ----------------------------------------------------------------------
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
        self.data_edit = QLineEdit(default_data_folder())
        self.data_edit.setPlaceholderText("folder with labels.csv, a CSV, or class folders")
        data_folder = QPushButton("Folder…")
        data_folder.clicked.connect(self._browse_data_folder)
        data_csv = QPushButton("CSV…")
        data_csv.clicked.connect(self._browse_data_csv)
        self.split_box = QComboBox()
        self.split_box.addItems(list(SPLITS))
        # "test" by default: the demo models were trained on their card's train split, so
        # only the held-out images give honest clean accuracy
        self.split_box.setToolTip("The model card's split: test = held-out images only")
        self.limit_spin = QSpinBox()
        self.limit_spin.setRange(0, 1_000_000)
        self.limit_spin.setSpecialValueText("all")
        self.limit_spin.setToolTip("At most this many images per class (0 = all)")
        self.size_spin = QSpinBox()
        self.size_spin.setRange(16, 2048)
        self.size_spin.setValue(224)
        self.size_spin.setSuffix(" px")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 1024)
        self.batch_spin.setValue(8)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)

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
        self.detector_list = QListWidget()
        self.detector_list.setObjectName("detector_list")
        self.attack_list.currentItemChanged.connect(self._on_attack_highlighted)
        self._fill_plugins()
        # seven short rows: show them all rather than give the list a scroll bar
        self.detector_list.setFixedHeight(
            sum(self.detector_list.sizeHintForRow(i) for i in range(self.detector_list.count()))
            + 2 * self.detector_list.frameWidth() + 4)

        self.out_edit = QLineEdit(default_out_folder())
        out_browse = QPushButton("Browse…")
        out_browse.clicked.connect(self._browse_out)
        out_new = QPushButton("New")
        out_new.setToolTip("A fresh run folder (needed after changing the settings of a run)")
        out_new.clicked.connect(lambda: self.out_edit.setText(default_out_folder()))

        form = QFormLayout()
        form.addRow("Model", self.model_box)
        form.addRow("Surrogate", self.surrogate_box)
        data_row = QHBoxLayout()
        data_row.addWidget(self.data_edit, 1)
        data_row.addWidget(data_folder)
        data_row.addWidget(data_csv)
        form.addRow("Data", data_row)
        form.addRow("Split", self.split_box)
        form.addRow("Images per class", self.limit_spin)
        form.addRow("Image size", self.size_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Seed", self.seed_spin)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(out_browse)
        out_row.addWidget(out_new)
        form.addRow("Output folder", out_row)
        data_box = QGroupBox("Run")
        data_box.setLayout(form)

        attacks_box = QGroupBox("Attacks (check to run; select to set parameters)")
        al = QVBoxLayout(attacks_box)
        al.addWidget(self.attack_list, 1)
        al.addWidget(self.param_hint)
        al.addWidget(self.param_holder)
        detectors_box = QGroupBox("Detectors")
        dl = QVBoxLayout(detectors_box)
        dl.addWidget(self.detector_list)

        settings = QWidget()
        sl = QVBoxLayout(settings)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(data_box)
        sl.addWidget(attacks_box, 1)
        sl.addWidget(detectors_box)
        self.settings = settings
        scroll = QScrollArea()
        scroll.setWidget(settings)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(440)

        # results -----------------------------------------------------------------------
        self.table = _table(TABLE1_COLUMNS)
        self.table.setObjectName("table1")
        for c, tip in enumerate(TABLE1_TIPS):
            self.table.horizontalHeaderItem(c).setToolTip(tip)
        self.detector_table = _table(DETECTOR_COLUMNS)
        self.detector_table.setObjectName("detector_table")
        self.results_caption = QLabel("No results yet: set up a run and press Start.")
        self.results_caption.setWordWrap(True)
        self.notes_label = QLabel()
        self.notes_label.setWordWrap(True)
        self.notes_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        tables = QWidget()
        tl = QVBoxLayout(tables)
        tl.addWidget(self.results_caption)
        tl.addWidget(QLabel("<b>Table 1</b> (Finlayson et al. 2019), with 95% bootstrap "
                            "intervals"))
        tl.addWidget(self.table)
        tl.addWidget(QLabel("<b>Detector × attack</b>"))
        tl.addWidget(self.detector_table)
        tl.addWidget(self.notes_label)
        # the tables are only as tall as their rows; the space left shows the plots small
        # (click one for its own tab), so one glance at the overview gives the whole run
        thumbs = QHBoxLayout()
        self.thumb_labels: dict[str, PlotLabel] = {}
        self.plot_labels: dict[str, PlotLabel] = {}
        self.results_tabs = QTabWidget()
        self.results_tabs.addTab(tables, "Overview")
        for k, (name, title) in enumerate(PLOTS):
            label = PlotLabel()
            label.setObjectName(f"plot_{name.removesuffix('.png')}")
            self.plot_labels[name] = label
            self.results_tabs.addTab(label, title)
            thumb = PlotLabel()
            thumb.setToolTip(f"{title}: click to enlarge")
            thumb.clicked.connect(lambda k=k: self.results_tabs.setCurrentIndex(k + 1))
            self.thumb_labels[name] = thumb
            thumbs.addWidget(thumb, 1)
        tl.addLayout(thumbs, 1)
        self.open_folder_button = QPushButton("Open run folder")
        self.open_folder_button.setEnabled(False)
        self.open_folder_button.clicked.connect(self._open_run_folder)

        # run controls ------------------------------------------------------------------
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.setToolTip("Start, or resume a cancelled run in the same folder")
        self.cancel_button = QPushButton("Cancel")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.eta_label = QLabel()
        self.eta_label.setMinimumWidth(260)
        self.status_label = QLabel("Ready.")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)

        controls = QHBoxLayout()
        controls.addWidget(self.start_button)
        controls.addWidget(self.cancel_button)
        controls.addWidget(self.progress, 1)
        controls.addWidget(self.eta_label)
        controls.addWidget(self.open_folder_button)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(self.results_tabs)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([470, 1030])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addLayout(controls)
        layout.addWidget(self.status_label)
        self._set_running(False)
        self._fit_tables()
        if parent is not None:
            # a child window gets no close event when the main window closes; without
            # this the pool's destructor would wait for a whole run at exit
            parent.installEventFilter(self)

    # --- plugins and parameters --------------------------------------------------------
    def _fill_plugins(self) -> None:
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
        for name in DEFAULT_ATTACKS:
            item = self._item(self.attack_list, name)
            if item is not None:
                self.attack_list.setCurrentItem(item)
                break

    @staticmethod
    def _item(lst: QListWidget, name: str) -> QListWidgetItem | None:
        for i in range(lst.count()):
            if lst.item(i).data(Qt.ItemDataRole.UserRole) == name:
                return lst.item(i)
        return None

    def _checked(self, lst: QListWidget) -> list[str]:
        return [lst.item(i).data(Qt.ItemDataRole.UserRole) for i in range(lst.count())
                if lst.item(i).checkState() == Qt.CheckState.Checked]

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
        item = self._item(self.attack_list, name)
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

    # --- browsing ----------------------------------------------------------------------
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

    def _open_run_folder(self) -> None:
        if self.run_dir is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.run_dir)))

    # --- running -----------------------------------------------------------------------
    def spec(self) -> EvalSpec:
        """The EvalSpec the settings describe. Every checked attack gets its form's full
        values (defaults included) so the run's identity does not depend on which forms
        happened to be opened: a resume with the same settings matches."""
        from ..evaluation.runner import EvalSpec

        surrogate = self.surrogate_box.currentText().strip()
        return EvalSpec(
            model=self.model_box.currentText().strip(),
            surrogate=None if surrogate in ("", NO_SURROGATE) else surrogate,
            data=self.data_edit.text().strip(), out=self.out_edit.text().strip(),
            attacks=[{"name": n, "params": self.param_form(n).values()}
                     for n in self._checked(self.attack_list)],
            detectors=[{"name": n} for n in self._checked(self.detector_list)],
            image_size=self.size_spin.value(), batch_size=self.batch_spin.value(),
            seed=self.seed_spin.value(), split=self.split_box.currentText(),
            limit=self.limit_spin.value() or None)

    def is_running(self) -> bool:
        return self.task is not None

    def start(self) -> bool:
        """Start (or resume) the run the settings describe; False if nothing started."""
        if self.task is not None:
            return False
        spec = self.spec()
        problem = ("Choose a model." if not spec.model else
                   "Choose the data: a folder or a labels CSV." if not spec.data else
                   "Choose an output folder." if not spec.out else "")
        if problem:
            self._fail(problem)
            return False
        self.run_dir = Path(spec.out)
        self._reset_results()
        self._t0 = time.perf_counter()
        self._done_at_start = self._done = self._total = 0
        self.progress.setValue(0)
        self.progress.setFormat("preparing…")
        self.eta_label.setText("")
        self._set_status("Preparing: reading the dataset and checking the plugins…")
        task = EvaluateTask(spec)
        task.signals.progress.connect(self._on_progress)
        task.signals.unit_progress.connect(self._on_unit_progress)
        task.signals.done.connect(self._on_done)
        task.signals.failed.connect(self._on_failed)
        task.signals.cancelled.connect(self._on_cancelled)
        self.task = task
        self._set_running(True)
        self.pool.start(task)
        return True

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.cancel_button.setEnabled(False)
            self._set_status("Cancelling after the current step…")

    def _set_running(self, running: bool) -> None:
        # settings are frozen during a run: what is shown is what is being computed
        self.settings.setEnabled(not running)
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #d23c3c;" if error else "")

    def _on_progress(self, done: int, total: int, message: str) -> None:
        if not self._current():
            return
        if self._total == 0:  # the first report: units already on disk are not timed
            self._done_at_start = done
            self._t0 = time.perf_counter()
        self._done, self._total = done, total
        self._show_progress(0.0)
        if done > self._done_at_start:
            self._set_status(f"Finished unit {message} ({done} of {total}).")
        elif done:
            self._set_status(f"Resuming: {message}.")
        else:
            self._set_status(f"Running {total} units…")

    def _on_unit_progress(self, fraction: float, message: str) -> None:
        if not self._current() or not self._total:
            return
        self._show_progress(min(max(fraction, 0.0), 1.0))
        if message:
            self._set_status(f"Unit {self._done + 1} of {self._total}: {message}")

    def _show_progress(self, fraction: float) -> None:
        total = max(self._total, 1)
        self.progress.setValue(int(1000 * min(self._done + fraction, total) / total))
        self.progress.setFormat(f"{self._done} of {self._total} units")
        elapsed = time.perf_counter() - self._t0
        computed = self._done - self._done_at_start + fraction
        text = f"{fmt_duration(elapsed)} elapsed"
        if computed > 0.05 and self._done < self._total:
            eta = elapsed / computed * (self._total - self._done - fraction)
            text += f" · about {fmt_duration(eta)} left"
        self.eta_label.setText(text)

    def _finish(self) -> None:
        self.task = None
        self._set_running(False)
        self.open_folder_button.setEnabled(self.run_dir is not None and self.run_dir.is_dir())

    def _current(self) -> bool:
        """Whether the signal being handled comes from the run in progress, not a late
        report of one this window gave up waiting for (closed, then started again)."""
        return self.task is not None and self.sender() is self.task.signals

    def _on_done(self, summary: dict[str, Any]) -> None:
        if not self._current():
            return
        self._finish()
        self.summary = summary
        self.progress.setValue(1000)
        self.progress.setFormat(f"{self._total} of {self._total} units")
        secs = summary.get("seconds_this_session")
        self.eta_label.setText(f"done in {fmt_duration(secs)}" if secs is not None else "done")
        self.show_results(summary, self.run_dir)
        self._set_status(f"Done: {summary.get('n_images', '?')} images, "
                         f"{len(summary.get('conditions', {}))} conditions. Results in "
                         f"{self.run_dir}")

    def _on_failed(self, message: str) -> None:
        if not self._current():
            return
        self._finish()
        self.progress.setFormat("failed")
        self._fail(message)

    def _on_cancelled(self, _message: str) -> None:
        if not self._current():
            return
        self._finish()
        self.progress.setFormat(f"cancelled at {self._done} of {self._total} units")
        self.eta_label.setText("")
        self._set_status(f"Cancelled: {self._done} of {self._total} units finished and kept "
                         f"in {self.run_dir}. Press Start with the same settings to resume.")

    def _fail(self, message: str) -> None:
        """A red status line and a non-blocking message box: the window stays usable."""
        self._set_status(f"Error: {message}", error=True)
        if self.error_box is not None:
            self.error_box.close()
        box = QMessageBox(QMessageBox.Icon.Warning, "Evaluation", message,
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _=0: setattr(self, "error_box", None))
        self.error_box = box
        box.open()

    # --- results -----------------------------------------------------------------------
    def _reset_results(self) -> None:
        self.summary = None
        self.table.setRowCount(0)
        self.detector_table.setRowCount(0)
        self.notes_label.setText("")
        self.results_caption.setText("Running…")
        for label in (*self.plot_labels.values(), *self.thumb_labels.values()):
            label.reset()
        self._fit_tables()

    def _fit_tables(self) -> None:
        for t in (self.table, self.detector_table):
            t.resizeColumnsToContents()  # with no rows: the headers' widths
            t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
            _fit_height(t)

    @staticmethod
    def _set_row(table: QTableWidget, row: int, cells: list[str],
                 tooltip: str = "") -> None:
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if col > 0 and text[:1] in "0123456789–-":  # numbers line up on the right
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                      | Qt.AlignmentFlag.AlignVCenter)
            if tooltip:
                item.setToolTip(tooltip)
            table.setItem(row, col, item)

    def show_results(self, summary: dict[str, Any], run_dir: Path | None = None) -> None:
        """Fill the tables from a summary dict and load the plots from ``run_dir``."""
        conditions = summary.get("conditions", {})
        self.table.setRowCount(len(conditions))
        for r, (cond, m) in enumerate(conditions.items()):
            paper = m.get("paper_dermoscopy")
            self._set_row(self.table, r, [
                cond, str(m.get("n", "")), fmt_ci(m.get("accuracy"), pct=True),
                fmt_ci(m.get("auroc")), fmt_ci(m.get("mean_confidence")),
                fmt_num(m.get("mean_l2")), fmt_num(m.get("mean_linf")),
                fmt_num(m.get("flip_rate_correct_positives"), pct=True),
                fmt_num(m.get("mean_queries"), 6),
                f"{100 * paper[0]:.1f}% / {paper[1]:.3f}" if paper else "–"])
        rows = []
        for name, d in summary.get("detectors", {}).items():
            source = str(d.get("threshold_source", ""))
            if d.get("threshold") is None or not d.get("conditions"):
                rows.append(([name, fmt_num(d.get("threshold")), fmt_num(d.get("fpr_clean"),
                             pct=True), "–", "–", "–", "–"], source))
                continue
            for cond, c in d["conditions"].items():
                rows.append(([name, fmt_num(d["threshold"]),
                              fmt_num(d.get("fpr_clean"), pct=True), cond,
                              fmt_num(c.get("auroc"), 3),
                              fmt_num(c.get("detection_rate"), pct=True),
                              fmt_num(c.get("detection_rate_successful"), pct=True)],
                             f"threshold from {source}"))
        self.detector_table.setRowCount(len(rows))
        for r, (cells, tip) in enumerate(rows):
            self._set_row(self.detector_table, r, cells, tip)
        self._fit_tables()
        self.results_caption.setText(
            f"{summary.get('n_images', '?')} images at {summary.get('image_size', '?')} px, "
            f"positive class {summary.get('positive_class', '?')}, seed "
            f"{summary.get('seed', '?')}" + (f" — {run_dir}" if run_dir else ""))
        notes = list(summary.get("notes", []))
        notes += [f"{name}: threshold from {d.get('threshold_source', '?')}"
                  if d.get("threshold") is not None else
                  f"{name}: no threshold ({d.get('threshold_source', '?')})"
                  for name, d in summary.get("detectors", {}).items()]
        self.notes_label.setText("\n".join(f"• {n}" for n in notes))
        if run_dir is not None:
            for name, label in self.plot_labels.items():
                label.load(run_dir / name)
                self.thumb_labels[name].load(run_dir / name)

    # --- closing -----------------------------------------------------------------------
    def shutdown(self, wait_ms: int = 5000) -> bool:
        """Cancel a running evaluation and wait up to ``wait_ms`` for it to stop at its next
        check; True if nothing is left running. Finished units stay on disk."""
        if self.task is not None:
            self.task.cancel()
        return self.pool.waitForDone(wait_ms)

    def closeEvent(self, e) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(e)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.parent() and event.type() == QEvent.Type.Close:
            self.shutdown()
        return super().eventFilter(watched, event)
