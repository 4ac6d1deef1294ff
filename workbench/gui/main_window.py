"""The main window: study list, image view, metadata dock, window presets, frame slider.

Decoding runs on the thread pool (LoadTask); the GUI thread only paints. A bad file
shows a dialog naming the file and the reason, and the window keeps working.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from ..imaging import MedicalImage, Window
from ..imaging.presets import PRESETS_CT
from .attack_docks import attach as attach_attack_docks
from .comparison_view import ComparisonView
from .detectors_panel import DetectorsPanel, DetectTask
from .image_view import ImageView
from .load_worker import LoadTask
from .metadata_panel import MetadataPanel
from .provenance_panel import ProvenancePanel, badge_for
from .provenance_worker import SignTask, VerifyTask
from .result_view import AttackResultView, ScaledImage
from .settings import add_recent_path, device_preference, preferred_plugin_dirs, recent_paths
from .study_list import StudyList

if TYPE_CHECKING:
    from ..engine.plugins import PluginInfo

CACHE_BYTES = 2 * 1024**3  # decoded images kept in memory (least recently used dropped)


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle(f"workbench {__version__}")
        self.resize(1400, 900)
        self.setAcceptDrops(True)
        self.images: OrderedDict[str, MedicalImage] = OrderedDict()
        self.tasks: dict[str, LoadTask] = {}
        self.errors: dict[str, str] = {}
        self.current_path: str | None = None
        self.error_box: QMessageBox | None = None
        self.pool = QThreadPool(self)  # this window's workers: closing it stops only them

        self.view = ImageView()
        self.frame_slider = QSlider(Qt.Orientation.Horizontal)
        self.frame_label = QLabel()
        frame_bar = QWidget()
        fl = QHBoxLayout(frame_bar)
        fl.setContentsMargins(6, 0, 6, 2)
        fl.addWidget(QLabel("Frame"))
        fl.addWidget(self.frame_slider, 1)
        fl.addWidget(self.frame_label)
        self.frame_bar = frame_bar
        frame_bar.hide()
        image_page = QWidget()
        cl = QVBoxLayout(image_page)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(self.view, 1)
        cl.addWidget(frame_bar)
        self.result_view = AttackResultView()
        self.evidence_view = ScaledImage()
        self.tabs = QTabWidget()
        self.tabs.addTab(image_page, "Image")
        self.tabs.addTab(self.result_view, "Attack result")
        self.tabs.addTab(self.evidence_view, "Detector evidence")
        self.comparison = ComparisonView(
            self.pool, lambda: (self.attacks.model, self.attacks.model_name))
        self.tabs.addTab(self.comparison, "Compare")
        self.comparison.reference_box.activated.connect(lambda _i: self.compare_current())
        self.tabs.currentChanged.connect(self._on_tab)
        self.setCentralWidget(self.tabs)

        self.study_list = StudyList()
        self.metadata = MetadataPanel()
        self.provenance = ProvenancePanel()
        self.verifications: dict[str, object] = {}  # path -> VerificationResult
        self.provenance_tasks: dict[str, object] = {}
        self._unlocked: dict[str, object] = {}  # fingerprint -> private key, this session only
        self._add_dock("Study", self.study_list, Qt.DockWidgetArea.LeftDockWidgetArea, 400)
        prov_dock = self._add_dock("Provenance", self.provenance,
                                   Qt.DockWidgetArea.RightDockWidgetArea, 480)
        meta_dock = self._add_dock("Metadata", self.metadata,
                                   Qt.DockWidgetArea.RightDockWidgetArea, 480)
        self.splitDockWidget(prov_dock, meta_dock, Qt.Orientation.Vertical)
        self.resizeDocks([prov_dock, meta_dock], [300, 500], Qt.Orientation.Vertical)

        self.cursor_label = QLabel()
        self.window_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setFlat(True)
        self.statusBar().addWidget(self.cursor_label, 1)
        self.statusBar().addPermanentWidget(self.window_label)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self._set_busy(None)

        self.attacks = attach_attack_docks(self)
        self.use_device_preference()
        if preferred_plugin_dirs():  # the user's plugin folders (Preferences) join discovery
            self.reload_plugins()
        self.detectors = DetectorsPanel()
        self.detect_task: DetectTask | None = None
        self.report_task = None
        self._add_dock("Detectors", self.detectors, Qt.DockWidgetArea.RightDockWidgetArea, 480)
        self.detectors.run_button.clicked.connect(self.run_detectors)
        self.detectors.cancel_button.clicked.connect(
            lambda: self.detect_task.cancel() if self.detect_task else None)
        self.detectors.table.itemClicked.connect(self._show_evidence)
        self.result_view.save_button.clicked.connect(self.save_adversarial)

        self.preset_box = QComboBox()
        self.preset_box.setMinimumContentsLength(22)
        self._build_actions()

        self.provenance.signRequested.connect(self.sign_current)
        self.provenance.verifyRequested.connect(self.verify_current)
        self.provenance.keysRequested.connect(self.open_key_manager)
        self.study_list.imageSelected.connect(self.show_path)
        self.view.cursorInfo.connect(self.cursor_label.setText)
        self.view.windowChanged.connect(self._on_window_changed)
        self.view.frameChanged.connect(self._on_frame_changed)
        self.frame_slider.valueChanged.connect(self.view.set_frame)
        self.preset_box.activated.connect(self._on_preset)
        self.cancel_button.clicked.connect(self.cancel_loading)

    # --- construction ------------------------------------------------------------------------
    def _add_dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea,
                  width: int) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.resizeDocks([dock], [width], Qt.Orientation.Horizontal)
        return dock

    def _build_actions(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = QAction("&Open File…", self, shortcut=QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self._choose_files)
        self.open_folder_action = QAction("Open &Folder…", self, shortcut="Ctrl+Shift+O")
        self.open_folder_action.triggered.connect(self._choose_folder)
        self.report_action = QAction("&Export Report…", self, shortcut="Ctrl+E")
        self.report_action.triggered.connect(lambda: self.export_report())
        self.demo_action = QAction("Open &Demo Study", self)
        self.demo_action.triggered.connect(self.open_demo)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.preferences_action = QAction("&Preferences…", self,
                                          shortcut=QKeySequence.StandardKey.Preferences)
        self.preferences_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.preferences_action.triggered.connect(self.open_preferences)
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        for a in (self.open_action, self.open_folder_action, self.demo_action):
            file_menu.addAction(a)
        file_menu.insertMenu(self.demo_action, self.recent_menu)
        file_menu.addSeparator()
        file_menu.addAction(self.report_action)
        file_menu.addSeparator()
        file_menu.addAction(self.preferences_action)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)

        view_menu = self.menuBar().addMenu("&View")
        fit = QAction("&Fit to Window", self, shortcut="F")
        fit.triggered.connect(lambda: self.view.set_zoom(None))
        actual = QAction("&Actual Pixels (100%)", self, shortcut="1")
        actual.triggered.connect(lambda: self.view.set_zoom(1.0))
        reset = QAction("&Reset Window (from file)", self, shortcut="R")
        reset.triggered.connect(self._reset_window)
        for a in (fit, actual, reset):
            view_menu.addAction(a)

        prov_menu = self.menuBar().addMenu("&Provenance")
        self.sign_action = QAction("&Sign Current Image…", self, shortcut="Ctrl+Shift+S")
        self.sign_action.triggered.connect(self.sign_current)
        self.verify_action = QAction("&Verify Current Image", self, shortcut="Ctrl+Shift+V")
        self.verify_action.triggered.connect(self.verify_current)
        keys_action = QAction("&Keys and Trust Store…", self)
        keys_action.triggered.connect(self.open_key_manager)
        for a in (self.sign_action, self.verify_action, keys_action):
            prov_menu.addAction(a)

        tools_menu = self.menuBar().addMenu("&Tools")
        self.evaluate_action = QAction("&Evaluate…", self, shortcut="Ctrl+Shift+E")
        self.evaluate_action.triggered.connect(self.open_evaluation)
        tools_menu.addAction(self.evaluate_action)
        self.reload_plugins_action = QAction("&Reload Plugins", self)
        self.reload_plugins_action.triggered.connect(self.reload_plugins)
        tools_menu.addAction(self.reload_plugins_action)

        tb = self.addToolBar("Main")
        tb.setObjectName("toolbar_main")
        tb.addAction(self.open_action)
        tb.addAction(self.open_folder_action)
        tb.addSeparator()
        tb.addWidget(QLabel(" Window "))
        tb.addWidget(self.preset_box)
        tb.addAction(reset)
        tb.addSeparator()
        tb.addAction(fit)
        tb.addAction(actual)

    # --- opening -------------------------------------------------------------------------------
    def open_paths(self, paths: list[str | Path]) -> list[str]:
        """Add files (and the images inside folders) to the study list and show the first."""
        from ..imaging import find_images

        added: list[str] = []
        for raw in paths:
            p = Path(raw).expanduser()
            files = find_images(p) if p.is_dir() else [p]
            if p.is_dir() and not files:
                self._show_error(f"{p}: the folder contains no DICOM files or photos")
            for f in files:
                self.study_list.add_path(f)
                added.append(str(f))
            add_recent_path(str(p))
        if added:
            self.study_list.select_path(added[0])
        for f in added[1:]:  # badges for every entry, in the background, after the shown one
            self.verify_path(f, background=True)
        return added

    def open_demo(self) -> list[str]:
        from ..demo import demo_files

        if self.attacks.model is None:
            self.attacks.load_model("demo")  # in the background: the window stays responsive
        return self.open_paths(demo_files())

    def _choose_files(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(
            self, "Open images", "",
            "Images (*.dcm *.dicom *.ima *.jpg *.jpeg *.png *.tif *.tiff *.bmp);;All files (*)")
        if names:
            self.open_paths(names)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder")
        if folder:
            self.open_paths([folder])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        paths = recent_paths()
        if not paths:
            self.recent_menu.addAction("(none)").setEnabled(False)
        for p in paths:
            self.recent_menu.addAction(p, lambda p=p: self.open_paths([p]))

    # drag and drop of files and folders
    def dragEnterEvent(self, e) -> None:  # noqa: N802
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)
            e.acceptProposedAction()

    # --- loading -------------------------------------------------------------------------------
    def show_path(self, path: str) -> None:
        self.current_path = path
        if path in self.images:
            self.images.move_to_end(path)
            self._display(path, self.images[path])
        elif path in self.errors:
            self._show_error(self.errors[path])
        elif path not in self.tasks:
            self._start_load(path)

    def _start_load(self, path: str) -> None:
        task = LoadTask(Path(path))
        task.signals.progress.connect(self._on_progress)
        task.signals.loaded.connect(self._on_loaded)
        task.signals.failed.connect(self._on_failed)
        self.tasks[path] = task
        self.study_list.mark_loading(path)
        self._set_busy(-1.0, f"opening {Path(path).name}")
        self.pool.start(task, 2)  # what the user asked to see goes first

    def cancel_loading(self) -> None:
        for task in self.tasks.values():
            task.cancel()

    def _on_progress(self, path: str, fraction: float, message: str) -> None:
        if path == self.current_path:
            self._set_busy(fraction, message)

    def _on_loaded(self, path: str, image: MedicalImage) -> None:
        self.tasks.pop(path, None)
        self.images[path] = image
        self._evict()
        self.study_list.mark_loaded(path, image)
        if path == self.current_path:
            self._display(path, image)
        self.verify_path(path)  # every opened image is checked against its record
        if not self.tasks:
            self._set_busy(None)

    def _on_failed(self, path: str, message: str, cancelled: bool) -> None:
        self.tasks.pop(path, None)
        if not self.tasks:
            self._set_busy(None)
        if cancelled:
            self.statusBar().showMessage(f"Cancelled: {Path(path).name}", 5000)
            return
        self.errors[path] = message
        self.study_list.mark_failed(path, message)
        if path == self.current_path:
            self._show_error(message)

    def _evict(self) -> None:
        total = sum(im.pixels.nbytes for im in self.images.values())
        while total > CACHE_BYTES and len(self.images) > 1:
            _, old = self.images.popitem(last=False)
            total -= old.pixels.nbytes

    def _set_busy(self, fraction: float | None, message: str = "") -> None:
        if fraction is None:
            self.progress.hide()
            self.cancel_button.hide()
            return
        self.progress.show()
        self.cancel_button.show()
        if fraction < 0:
            self.progress.setRange(0, 0)  # indeterminate
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(message)
        self.progress.setToolTip(message)

    def _show_error(self, message: str, title: str = "Cannot open image") -> None:
        """A non-blocking dialog: the window stays usable and tests can inspect it."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, message,
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _=0: setattr(self, "error_box", None))
        self.error_box = box
        box.open()
        self.statusBar().showMessage(message, 10000)

    # --- display -------------------------------------------------------------------------------
    def _display(self, path: str, image: MedicalImage) -> None:
        self.setWindowTitle(f"{Path(path).name} — workbench {__version__}")
        self.view.set_image(image)
        self.metadata.show_metadata(image.metadata)
        result = self.verifications.get(path)
        if result is not None:
            self.provenance.show_result(result)
        else:
            self.provenance.set_busy("Verifying…" if path in self.provenance_tasks
                                     else "Not verified yet")
        self._fill_presets(image)
        multi = image.n_frames > 1
        self.frame_bar.setVisible(multi)
        self.frame_slider.blockSignals(True)
        self.frame_slider.setRange(0, image.n_frames - 1)
        self.frame_slider.setValue(0)
        self.frame_slider.blockSignals(False)
        self._on_frame_changed(0)
        self.attacks.predict_current()
        if image.load_notes:  # what the reader had to infer or work around, e.g. a missing UID
            self.statusBar().showMessage("Note: " + "; ".join(image.load_notes), 15000)

    def _fill_presets(self, image: MedicalImage) -> None:
        box = self.preset_box
        box.clear()
        file_windows = image.windows(self.view.frame)
        if not file_windows and not image.has_voi_lut:
            w = image.default_window(self.view.frame)
            box.addItem(f"Default: {w.name} ({w.center:g}/{w.width:g})", ("window", w))
        for w in file_windows:
            box.addItem(f"From file: {w.name} ({w.center:g}/{w.width:g})", ("window", w))
        if image.has_voi_lut:
            box.addItem("From file: VOI LUT", ("voi", None))
        lo, hi = image.value_range()
        box.addItem("Full data range", ("window", Window((lo + hi) / 2, max(hi - lo, 1), "data")))
        if not image.is_color:
            for w in PRESETS_CT:
                box.addItem(f"CT {w.name} ({w.width:g}/{w.center:g})", ("window", w))
        box.addItem("Custom", ("custom", None))
        box.setCurrentIndex(0)

    def _on_preset(self, index: int) -> None:
        kind, window = self.preset_box.itemData(index) or (None, None)
        if kind == "window":
            self.view.set_window(window)
        elif kind == "voi":
            self.view.set_window(self.view.window or Window(0, 1), voi_lut=True)

    def _reset_window(self) -> None:
        if self.view.image is not None:
            self.view.set_window(self.view.image.default_window(self.view.frame))
            self.preset_box.setCurrentIndex(0)

    def _on_window_changed(self, w: Window) -> None:
        self.window_label.setText(f"C {w.center:.6g} / W {w.width:.6g}")
        if w.name == "custom" and self.preset_box.count():
            self.preset_box.setCurrentIndex(self.preset_box.count() - 1)

    def _on_frame_changed(self, index: int) -> None:
        image = self.view.image
        if image is None:
            return
        self.frame_label.setText(f"{index + 1} / {image.n_frames}")
        if self.frame_slider.value() != index:
            self.frame_slider.blockSignals(True)
            self.frame_slider.setValue(index)
            self.frame_slider.blockSignals(False)

    # --- provenance ------------------------------------------------------------------------
    def verify_path(self, path: str, background: bool = False) -> None:
        """Check ``path`` against its record. Background checks (badges for entries not
        yet opened) queue behind what the user asked for."""
        if path in self.provenance_tasks or (background and path in self.verifications):
            return
        task = VerifyTask(path, self.images.get(path))
        task.signals.verified.connect(self._on_verified)
        task.signals.failed.connect(self._on_provenance_failed)
        self.provenance_tasks[path] = task
        self.study_list.mark_provenance(path, "verifying…", "#8a8f98")
        if path == self.current_path:
            self.provenance.set_busy("Verifying…")
        self.pool.start(task, -1 if background else 1)

    def verify_current(self) -> None:
        if self.current_path and self.current_path in self.images:
            self.verify_path(self.current_path)

    def _on_verified(self, path: str, result) -> None:
        self.provenance_tasks.pop(path, None)
        self.verifications[path] = result
        text, colour = badge_for(result.verdict)
        self.study_list.mark_provenance(path, text, colour, result.summary)
        if path == self.current_path:
            self.provenance.show_result(result)

    def _on_provenance_failed(self, path: str, message: str) -> None:
        self.provenance_tasks.pop(path, None)
        self.study_list.mark_provenance(path, "✖ error", "#d23c3c", message)
        if path == self.current_path:
            self.provenance.set_busy("Provenance check failed")
            self.provenance.summary_label.setText(message)
        self._show_error(message, title="Provenance")

    def unlocked_key(self):
        """The default signing key, unlocked once per session (passphrase prompt)."""
        from ..provenance import keys
        from .key_manager import KeyManagerDialog, ask_passphrase

        try:
            info = keys.resolve_key()
        except keys.KeyStoreError:
            answer = QMessageBox.question(
                self, "No signing key",
                "You have no signing key yet. Create one now?\n\nThe private key is stored "
                "encrypted with a passphrase you choose; its public key is trusted.")
            if answer != QMessageBox.StandardButton.Yes:
                return None
            created = KeyManagerDialog(self).new_key()
            if created is None:
                return None
            info = created
        if info.fingerprint in self._unlocked:
            return self._unlocked[info.fingerprint]
        while True:
            passphrase = ask_passphrase(self, info)
            if passphrase is None:
                return None
            try:
                key = keys.load_private_key(info.fingerprint, passphrase)
            except keys.KeyStoreError as exc:
                QMessageBox.warning(self, "Cannot unlock the key", str(exc))
                if keys.passphrase_from_env_or_file(None):
                    return None  # the environment's passphrase is wrong: do not loop
                continue
            self._unlocked[info.fingerprint] = key
            return key

    def sign_current(self) -> None:
        path = self.current_path
        if not path or path not in self.images:
            self.statusBar().showMessage("Open an image to sign first", 5000)
            return
        key = self.unlocked_key()
        if key is None:
            return
        task = SignTask(path, key, self.images[path])
        task.signals.signed.connect(self._on_signed)
        task.signals.failed.connect(self._on_provenance_failed)
        self.provenance_tasks[path] = task
        self.provenance.set_busy("Signing…")
        self.pool.start(task)

    def _on_signed(self, path: str, record) -> None:
        self.provenance_tasks.pop(path, None)
        self.statusBar().showMessage(f"Signed {Path(path).name}: record written beside it "
                                     "and appended to the ledger", 8000)
        self.verify_path(path)

    # --- attacks ------------------------------------------------------------------------------
    def show_attack_result(self, path: str, result: dict, class_names: tuple[str, ...]) -> None:
        self.result_view.show_result(path, result, class_names)
        self.result_view.source_path = path
        self.tabs.setCurrentWidget(self.result_view)

    def save_adversarial(self, target: str | None = None) -> str | None:
        """Save the shown adversarial image as a new file (never over the original) and
        add it to the study list."""
        from .. import __version__
        from ..imaging.export import describe_attack, save_derived

        result = self.result_view.result
        if result is None:
            return None
        source = Path(getattr(self.result_view, "source_path", "image"))
        outcome = result["outcome"]
        if target is None:
            suffix = ".dcm" if result["image"].kind == "dicom" else ".png"
            suggestion = source.with_name(f"{source.stem}_{outcome.plugin}{suffix}")
            target, _ = QFileDialog.getSaveFileName(self, "Save adversarial image",
                                                    str(suggestion))
            if not target:
                return None
        description = describe_attack(outcome.plugin, outcome.plugin_version, outcome.params,
                                      __version__)
        try:
            saved = save_derived(result["image"], outcome.adversarial[0].numpy(),
                                 result["mapping"], target, description, result["frame"])
        except (OSError, ValueError) as exc:
            self._show_error(f"{target}: {exc}", title="Cannot save")
            return None
        self.open_paths([saved])
        return str(saved)

    # --- comparison -----------------------------------------------------------------------
    def _on_tab(self, _index: int) -> None:
        if self.tabs.currentWidget() is self.comparison:
            box = self.comparison.reference_box
            current = box.currentData()
            box.blockSignals(True)
            box.clear()
            for path in self.images:
                if path != self.current_path:
                    box.addItem(Path(path).name, path)
            if current is not None and box.findData(current) >= 0:
                box.setCurrentIndex(box.findData(current))
            box.blockSignals(False)

    def compare_current(self, reference_path: str | None = None) -> bool:
        """Compare the current image with a reference (the signed original, or any image
        the reviewer picks) in the Compare tab."""
        ref = reference_path or self.comparison.reference_box.currentData()
        cur = self.current_path
        if not ref or ref not in self.images or cur not in self.images:
            return False
        self.comparison.compare(ref, self.images[ref], cur, self.images[cur])
        self.tabs.setCurrentWidget(self.comparison)
        return True

    # --- reports --------------------------------------------------------------------------
    def export_report(self, target: str | None = None) -> bool:
        """A case report (HTML or PDF) of the selected images, built off the GUI thread."""
        from .report_worker import ReportTask

        paths = [p for p in self.study_list.selected_paths() if p in self.images] or (
            [self.current_path] if self.current_path in self.images else [])
        if not paths:
            self.statusBar().showMessage("Open an image to report on first", 5000)
            return False
        if target is None:
            target, _ = QFileDialog.getSaveFileName(self, "Export report", "report.html",
                                                    "HTML (*.html);;PDF (*.pdf)")
            if not target:
                return False
        detectors = [p.create() for p in self.attacks.registry.plugins
                     if p.kind == "detector" and p.ok]
        task = ReportTask(paths, target, self.attacks.model, self.attacks.model_name, detectors)
        task.signals.done.connect(lambda result, t=target: self._on_report(result, t))
        task.signals.failed.connect(lambda m: (self._show_error(m, title="Report"),
                                               setattr(self, "report_task", None)))
        self.report_task = task
        self.statusBar().showMessage("Building the report…")
        self.pool.start(task, 1)
        return True

    def _on_report(self, result: str, target: str) -> None:
        if result.startswith("html:"):  # PDF: Qt's text document prints in the GUI thread
            from ..report.case_report import fingerprint_report
            from .report_pdf import html_to_pdf

            html_to_pdf(result[5:], target)
            fingerprint_report(target)
        self.report_task = None
        self.statusBar().showMessage(f"Report written to {target}", 10000)

    # --- detectors ------------------------------------------------------------------------
    def run_detectors(self) -> bool:
        path = self.current_path
        if not path or path not in self.images or self.detect_task is not None:
            return False
        infos = [p for p in self.attacks.registry.plugins if p.kind == "detector" and p.ok]
        task = DetectTask(path, self.images[path], infos, self.attacks.model,
                          self.attacks.model_name)
        task.signals.outcome.connect(self._on_detector_outcome)
        task.signals.failed.connect(lambda p, name, msg: self.detectors.add_failure(name, msg))
        task.signals.progress.connect(
            lambda f, m: (self.detectors.progress.setValue(int(f * 1000)),
                          self.detectors.progress.setFormat(m)))
        task.signals.done.connect(self._on_detectors_done)
        self.detectors.clear()
        self.comparison.clear_evidence(path)
        self.detectors.set_running(True)
        self.detect_task = task
        self.pool.start(task, 1)
        return True

    def _on_detector_outcome(self, path: str, out) -> None:
        if out.evidence is not None:  # offered as an overlay in the Compare tab too
            self.comparison.add_evidence(path, out.name, out.evidence)
        if path == self.current_path:
            self.detectors.add_outcome(out)

    def _on_detectors_done(self, _path: str) -> None:
        self.detect_task = None
        self.detectors.set_running(False)

    def _show_evidence(self, item, _column: int = 0) -> None:
        """A detector's evidence map over the image it was computed on: in the Compare
        tab when that image is being compared, else in the Detector evidence tab."""
        import numpy as np

        from ..analysis.perturbation import heatmap_rgb, overlay
        from ..imaging.display import orient, render
        from .comparison_view import fit_to

        name = item.data(0, Qt.ItemDataRole.UserRole)
        out = self.detectors.outcomes.get(name)
        image = self.images.get(self.current_path or "")
        if out is None or out.evidence is None or image is None:
            return
        if (self.tabs.currentWidget() is self.comparison
                and self.current_path in self.comparison.paths.values()
                and self.comparison.show_evidence(name)):
            self.statusBar().showMessage(f"{name}: {out.explanation}", 10000)
            return
        base = render(image, self.view.frame, oriented=False)
        evidence = fit_to(out.evidence, base.shape[:2])
        # Sparse maps (residuals, error levels) are scaled at their 99.5th percentile so a
        # few extreme pixels do not turn the rest black.
        top = float(np.percentile(evidence, 99.5)) or float(evidence.max()) or 1.0
        heat, _ = heatmap_rgb(evidence, scale=top)
        # maps are on the stored grid: blend there, then turn upright for the reviewer
        shown = orient(overlay(base, heat, 0.6), image.orientation)
        self.evidence_view.set_array(np.ascontiguousarray(shown))
        self.tabs.setCurrentWidget(self.evidence_view)
        self.statusBar().showMessage(f"{name}: {out.explanation}", 10000)

    def open_key_manager(self) -> None:
        from .key_manager import KeyManagerDialog

        KeyManagerDialog(self).exec()

    def open_preferences(self) -> QWidget:
        """Show the Preferences dialog, window-modal but not blocking (open(), not exec()),
        so that the event loop and tests keep running while it is up."""
        from .preferences import PreferencesDialog

        dialog = getattr(self, "preferences_dialog", None)
        if dialog is None or not dialog.isVisible():
            dialog = self.preferences_dialog = PreferencesDialog(self)
            dialog.deviceChanged.connect(lambda _d: self.use_device_preference())
            dialog.open()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def use_device_preference(self) -> None:
        """Point the Model dock's device at the preference; a loaded model is loaded again
        there, so that what runs next runs on the device the user chose."""
        pref = device_preference()
        box = self.attacks.model_panel.device_box
        if box.currentText() == pref:
            return
        if box.findText(pref) < 0:
            box.addItem(pref)
        box.setCurrentText(pref)
        if self.attacks.model is not None:
            self.attacks.load_model(self.attacks.model_name)

    def reload_plugins(self) -> list[PluginInfo]:
        """Discover the plugins again: built-in, the user folder, and the Preferences
        folders. The list is replaced in place because the Evaluate window shares it."""
        from ..engine.plugins import discover_plugins

        registry = self.attacks.registry
        registry.plugins[:] = discover_plugins(preferred_plugin_dirs())
        box = self.attacks.attack_panel.plugin_box
        current = box.currentData()
        self.attacks._fill_plugins()
        if current is not None and box.findData(current) >= 0:
            box.setCurrentIndex(box.findData(current))
        return registry.plugins

    def open_evaluation(self) -> QWidget:
        """Show the (one, non-modal) Evaluate window, made on first use so that the main
        window does not pay for it; it keeps its settings and results while hidden."""
        from .evaluate_window import EvaluateWindow

        win = getattr(self, "evaluation_window", None)
        if win is None:
            win = self.evaluation_window = EvaluateWindow(self, self.attacks.registry)
        win.show()
        win.raise_()
        win.activateWindow()
        return win

    def current_rendering(self):
        """Full-resolution RGB rendering of what is shown (for export and tests)."""
        from ..imaging.display import render

        v = self.view
        if v.image is None:
            return None
        return render(v.image, v.frame, v.window, use_voi_lut=v.use_voi_lut)

    def closeEvent(self, e) -> None:  # noqa: N802
        self.cancel_loading()
        self.attacks.cancel()
        if self.detect_task is not None:
            self.detect_task.cancel()
        self.pool.clear()  # queued background checks are dropped, not waited for
        self.pool.waitForDone(5000)
        super().closeEvent(e)
