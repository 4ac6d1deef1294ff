"""The main window: layout, menus and wiring. What it shows is the current image session
of its `Study`: every dock and tab is bound to that session and names the image its
content describes, so switching images never leaves one image's findings beside another.
Long work runs as session jobs on the window's `JobRunner`; the GUI thread only paints."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QDockWidget,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from ..session import Study
from .docks.attack import AttackPanel
from .docks.detectors import DetectorsPanel
from .docks.metadata import MetadataPanel
from .docks.model import ModelPanel
from .docks.provenance import ProvenancePanel
from .docks.study_list import StudyList
from .jobs import JobRunner
from .menus import build_menus
from .opening import ImageOpener
from .other_windows import open_key_manager
from .provenance_actions import ProvenanceActions
from .settings import device_preference, last_model, preferred_plugin_dirs
from .status_bar import StatusBar
from .views.attack_result import AttackResultView
from .views.comparison import ComparisonView
from .views.evidence import EvidenceView
from .views.image_page import ImagePage
from .views.verdict_banner import VerdictBanner

LEFT, RIGHT = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
LEFT_WIDTH, RIGHT_WIDTH = 300, 370  # of a 1400-pixel window: 52% or more is the image


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        from ..engine.plugins import PluginRegistry

        super().__init__()
        self.setWindowTitle(f"workbench {__version__}")
        self.resize(1400, 900)
        self.setAcceptDrops(True)
        self.error_box: QMessageBox | None = None
        self.report_task: Any = None
        self.study = Study()
        self.runner = JobRunner(self, on_error=lambda _job, m: self.show_error(m, "Error"))
        # the user's plugin folders (Preferences) join discovery, which runs after the
        # first paint (_fill_plugins) or when something asks for a plugin first
        self.registry = PluginRegistry(extra_dirs=preferred_plugin_dirs)
        self._build_central()
        self._build_status_bar()  # before the docks: Qt leaves a stray tab bar otherwise
        self._build_docks()
        build_menus(self)
        self._wire()
        self.show_session(None)
        self._painted = False  # plugins and preferences come right after the first paint

    # --- construction ------------------------------------------------------------------------
    def _build_central(self) -> None:
        self.image_page = ImagePage()
        self.view, self.preset_box = self.image_page.view, self.image_page.preset_box
        self.result_view = AttackResultView(self.runner)
        self.evidence_view = EvidenceView(self.runner)
        self.comparison = ComparisonView(
            self.runner, lambda: (self.study.model, self.study.model_name),
            lambda path: s.evidence_maps() if (s := self.study.get(path)) else {})
        self.tabs = QTabWidget()
        self.tabs.addTab(self.image_page, "Image")
        self.tabs.addTab(self.result_view, "Attack result")
        self.tabs.addTab(self.evidence_view, "Detector evidence")
        self.tabs.addTab(self.comparison, "Compare")
        self.verdict_banner = VerdictBanner()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.verdict_banner)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

    def _build_docks(self) -> None:
        self.docks: list[QDockWidget] = []
        self.study_list = StudyList()
        self.metadata = MetadataPanel()
        self.provenance = ProvenancePanel()
        self.models = ModelPanel(self.study, self.runner, self.show_error)
        self.attacks = AttackPanel(self.study, self.runner, self.registry,
                                   lambda: self.study_list.selected_paths(), self.show_error)
        self.detectors = DetectorsPanel(self.study, self.runner, self.registry)
        # The image comes first: two narrow columns of docks leave most of the window to
        # it; the reviewer's tools share one tabbed dock (Detectors|Attack|Metadata). One
        # tab group only: Qt 6 paints a stray copy of the tab bar of a second one.
        study = self._add_dock("Study", self.study_list, LEFT)
        model = self._add_dock("Model", self.models, LEFT)
        prov = self._add_dock("Provenance", self.provenance, RIGHT)
        detectors = self._add_dock("Detectors", self.detectors, RIGHT)
        self._add_dock("Attack", self.attacks, RIGHT, tab_with=detectors)
        self._add_dock("Metadata", self.metadata, RIGHT, tab_with=detectors)
        self.resizeDocks([study, prov], [LEFT_WIDTH, RIGHT_WIDTH], Qt.Orientation.Horizontal)
        self.resizeDocks([study, model], [420, 400], Qt.Orientation.Vertical)
        self.resizeDocks([prov, detectors], [300, 520], Qt.Orientation.Vertical)
        self.opener = ImageOpener(self.study, self.runner, self.study_list, self.show_error, self)
        self.signing = ProvenanceActions(self.study, self.runner, self.study_list,
                                         self.provenance, self.show_error, self)

    def _add_dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea,
                  tab_with: QDockWidget | None = None) -> QDockWidget:
        """A dock in ``area``, or as a tab behind ``tab_with`` (which stays in front)."""
        dock = QDockWidget(title, self)
        self.docks.append(dock)
        dock.setObjectName(f"dock_{title.lower()}")
        dock.setWidget(widget)
        if tab_with is None:
            self.addDockWidget(area, dock)
        else:
            self.tabifyDockWidget(tab_with, dock)
            tab_with.raise_()
        return dock

    def _build_status_bar(self) -> None:
        bar = self.status_bar = StatusBar(self)
        self.setStatusBar(bar)
        self.cursor_label, self.window_label = bar.cursor_label, bar.window_label
        self.progress, self.cancel_button = bar.progress, bar.cancel_button

    def _wire(self) -> None:
        say = lambda m: self.statusBar().showMessage(m, 8000)  # noqa: E731
        self.study.current_changed.connect(self.show_session)
        # a detector's evidence becomes an overlay choice while its image is compared
        self.study.added.connect(lambda s: s.changed.connect(
            lambda aspect: self.comparison.evidence_changed(s.path)
            if aspect == "findings" else None))
        self.study_list.imageSelected.connect(self.opener.show_path)
        self.opener.decoded.connect(self._on_decoded)
        self.opener.progress.connect(self.status_bar.set_busy)
        self.opener.idle.connect(lambda: self.status_bar.set_busy(None))
        self.opener.message.connect(say)
        self.signing.message.connect(say)
        self.attacks.message.connect(say)
        self.attacks.resultReady.connect(self._on_attack_result)
        self.result_view.save_button.clicked.connect(lambda: self.save_adversarial())
        self.detectors.evidenceRequested.connect(self.show_evidence)
        self.provenance.signRequested.connect(self.sign_current)
        self.provenance.verifyRequested.connect(self.verify_current)
        self.provenance.keysRequested.connect(lambda: open_key_manager(self))
        self.provenance.regionRequested.connect(self.show_changed_region)
        self.comparison.reference_box.activated.connect(lambda _i: self.compare_current())
        self.tabs.currentChanged.connect(lambda _i: self._fill_references())
        self.view.cursorInfo.connect(self.cursor_label.setText)
        self.image_page.windowText.connect(self.window_label.setText)
        self.cancel_button.clicked.connect(self.cancel_loading)

    # --- the current image ---------------------------------------------------------------------
    def show_session(self, session: Any) -> None:
        """Bind every panel to ``session`` (or to nothing)."""
        image = session.image if session is not None else None
        self.setWindowTitle(f"{session.name} — workbench {__version__}" if session
                            else f"workbench {__version__}")
        self.image_page.show_image(image, "" if session is None else (
            f"{session.name} could not be read" if session.load_error else
            f"Opening {session.name}…"))
        self.metadata.show_metadata(image.metadata if image is not None else None)
        self.provenance.show_session(session, busy=session is not None
                                     and session.path in self.signing.running)
        self.models.show_session(session)
        self.detectors.show_session(session)
        self.result_view.show_session(session)
        self.evidence_view.show_session(session)
        self.verdict_banner.show_session(session)
        self.comparison.show_session(self.study, session)
        if session is not None and session.load_error is not None:
            self.show_error(session.load_error)
        elif image is not None and image.load_notes:  # what the reader had to work around
            self.statusBar().showMessage("Note: " + "; ".join(image.load_notes), 15000)

    def _on_decoded(self, session: Any) -> None:
        if session is self.study.current:
            self.show_session(session)
        self.signing.verify(session)  # every opened image is checked against its record

    def _on_attack_result(self, session: Any) -> None:
        if session is self.study.current:
            self.result_view.show_session(session)
            self.tabs.setCurrentWidget(self.result_view)

    # --- opening -------------------------------------------------------------------------------
    def open_paths(self, paths: list[str | Path]) -> list[str]:
        added = self.opener.open_paths(paths)
        self._queue_badges(added[1:])  # the shown one is verified once decoded
        return added

    def _queue_badges(self, paths: list[str], chunk: int = 8) -> None:
        """Badges for every entry, verified in the background: started a slice per turn
        of the event loop. Starting 2,000 jobs at once held the window for a second, and
        while earlier ones decode, each start waits for the GIL (64 a turn: 250 ms)."""
        for f in paths[:chunk]:
            if (session := self.study.get(f)) is not None:  # still in the study
                self.signing.verify(session, background=True)
        if len(paths) > chunk:
            QTimer.singleShot(0, lambda: self._queue_badges(paths[chunk:], chunk))

    def open_from_pacs(self) -> Any:
        """File > Open from PACS (non-modal; one dialog per window, raised if open)."""
        from .dialogs.pacs_open import OpenFromPacsDialog

        if getattr(self, "pacs_dialog", None) is None:
            self.pacs_dialog = OpenFromPacsDialog(self)
        self.pacs_dialog.show()
        self.pacs_dialog.raise_()
        return self.pacs_dialog

    def open_demo(self) -> list[str]:
        from ..demo import demo_files

        if self.study.model is None and self.models.loading is None:
            self.models.load_model("demo")  # in the background: the window stays responsive
        return self.open_paths(demo_files())

    def cancel_loading(self) -> None:
        self.opener.cancel_loading()

    def dragEnterEvent(self, e: Any) -> None:  # noqa: N802
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e: Any) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)
            e.acceptProposedAction()

    # --- feedback ------------------------------------------------------------------------------
    def show_error(self, message: str, title: str = "Cannot open image") -> None:
        """A non-blocking dialog: the window stays usable and tests can inspect it."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, message,
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _=0: setattr(self, "error_box", None))
        self.error_box = box
        box.open()
        self.statusBar().showMessage(message, 10000)

    # --- provenance ----------------------------------------------------------------------------
    def sign_current(self) -> bool:
        return self.signing.sign(self.study.current)

    def verify_current(self) -> None:
        s = self.study.current
        if s is not None and s.image is not None:
            self.signing.verify(s)

    @property
    def verifications(self) -> dict[str, Any]:
        return {s.path: s.verification for s in self.study if s.verification is not None}

    # --- attacks, detectors, comparison ----------------------------------------------------
    def save_adversarial(self, target: str | None = None) -> str | None:
        from .exports import save_adversarial

        return save_adversarial(self, self.result_view.result, self.result_view.source_path,
                                target)

    def export_report(self, target: str | None = None) -> bool:
        from .exports import export_report

        return export_report(self, target)

    def export_evidence(self, out_dir: str | None = None, send: str | None = None,
                        *, ask: bool = True) -> Any:
        from .evidence_export import export_evidence

        return export_evidence(self, out_dir, send, ask=ask)

    def run_detectors(self) -> bool:
        return self.detectors.run_on(self.study.current)

    @property
    def detect_task(self) -> Any:
        return self.detectors.job

    def show_evidence(self, session: Any, name: str) -> None:
        """A detector's evidence over the image it was computed on: in the Compare tab when
        that image is being compared, else in the Detector evidence tab."""
        out = session.findings.outcomes.get(name) if session.findings else None
        if out is None or out.evidence is None:
            return
        if (self.tabs.currentWidget() is self.comparison
                and session.path in self.comparison.paths.values()
                and self.comparison.show_evidence(name)):
            pass
        elif self.evidence_view.show_detector(session, name):
            self.tabs.setCurrentWidget(self.evidence_view)
        self.statusBar().showMessage(f"{name} on {session.name}: {out.explanation}", 10000)

    def show_changed_region(self, region: Any) -> bool:
        """Compare the current image with its signed original, zoomed to the change."""
        if region is None or not self.compare_current(region.original):
            return False
        self.comparison.show_region(region)
        return True

    def _fill_references(self) -> None:
        if self.tabs.currentWidget() is self.comparison:
            self.comparison.fill_references(self.study)

    def compare_current(self, reference_path: str | None = None) -> bool:
        """Compare the current image with a reference (the signed original, or any image
        the reviewer picks) in the Compare tab."""
        ok = self.comparison.compare_session(self.study, self.study.current, reference_path)
        if ok:
            self.tabs.setCurrentWidget(self.comparison)
        return ok

    # --- preferences, plugins, other windows -----------------------------------------------
    def open_preferences(self) -> QWidget:
        from .other_windows import open_preferences

        return open_preferences(self)

    def open_evaluation(self) -> QWidget:
        from .other_windows import open_evaluation

        return open_evaluation(self)

    def open_reader_study(self, study_dir: str | Path | None = None,
                          reader: str | None = None) -> QWidget | None:
        """Study > Reader Study…: a blinded reader's session in a full-screen window of
        its own; asks for the folder and the name when not given. The images never join
        this window's study list, which would verify them and run detectors on them."""
        from .reader import open_reader_study

        return open_reader_study(self, study_dir, reader)

    def use_device_preference(self) -> None:
        self.models.use_device(device_preference())

    def reload_plugins(self) -> list[Any]:
        """Discover the plugins again: built-in, the user folder, and the Preferences
        folders. The list is replaced in place because the Evaluate window shares it."""
        self.registry.reload(preferred_plugin_dirs())
        self.attacks.fill_plugins()
        return self.registry.plugins

    def paintEvent(self, e: Any) -> None:  # noqa: N802
        super().paintEvent(e)
        if not self._painted:  # discovery imports every plugin file: paint first
            self._painted = True
            QTimer.singleShot(0, self._after_first_paint)

    def _after_first_paint(self) -> None:
        self.use_device_preference()  # QSettings: a dozen ms the first paint need not wait
        self.attacks.fill_plugins()
        # the model chosen last time is loaded again, in the background, with progress
        last = last_model()
        if last and self.study.model is None and self.models.loading is None:
            self.models.load_model(last)
        # Qt, numpy, pydicom and our modules live as long as the window: a full collection
        # need not scan them again (each one held the GIL ~40 ms). torch's import freezes
        # its own objects the same way (models.torch_import).
        gc.freeze()

    def closeEvent(self, e: Any) -> None:  # noqa: N802
        # this window's jobs only; queued checks are dropped. Work that ignores cancel (a
        # stuck plugin) is named, and app.run_gui ends the process rather than wait on it
        self.stuck_jobs = self.runner.shutdown(5000)
        super().closeEvent(e)
