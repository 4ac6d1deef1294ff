"""The main window's menus and toolbar: what each item is called, its shortcut, and which
window method it calls. Kept apart so the window itself is layout and wiring."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel

from .other_windows import open_calibration, open_key_manager, show_help
from .settings import recent_paths


def _action(w: Any, text: str, slot: Any, shortcut: Any = None) -> QAction:
    a = QAction(text, w)
    if shortcut is not None:
        a.setShortcut(QKeySequence(shortcut))
    a.triggered.connect(lambda _checked=False: slot())
    return a


def _checkable(w: Any, text: str, slot: Any, shortcut: Any = None) -> QAction:
    a = QAction(text, w)
    a.setCheckable(True)
    if shortcut is not None:
        a.setShortcut(QKeySequence(shortcut))
    a.toggled.connect(slot)
    return a


def _build_view_menu(w: Any) -> tuple[Any, QAction, QAction, QAction]:
    """The View menu: zoom, window, display-only turns and flips, measurement, privacy;
    returns it and the actions the toolbar shares."""
    view_menu = w.menuBar().addMenu("&View")
    fit = _action(w, "&Fit to Window", lambda: w.view.set_zoom(None), "F")
    actual = _action(w, "&Actual Pixels (100%)", lambda: w.view.set_zoom(1.0), "1")
    reset = _action(w, "&Reset Window (from file)", w.image_page.reset_window, "R")
    w.invert_action = _checkable(w, "&Invert (display only)", w.view.set_inverted, "I")
    for a in (fit, actual, reset, w.invert_action):
        view_menu.addAction(a)
    view_menu.addSeparator()
    w.rotate_right_action = _action(w, "Rotate &Right 90°", lambda: w.view.rotate(90), "]")
    w.rotate_left_action = _action(w, "Rotate &Left 90°", lambda: w.view.rotate(270), "[")
    w.flip_h_action = _action(w, "Flip &Horizontal", lambda: w.view.flip(True), "H")
    w.flip_v_action = _action(w, "Flip &Vertical", lambda: w.view.flip(False), "V")
    for a in (w.rotate_right_action, w.rotate_left_action, w.flip_h_action, w.flip_v_action):
        view_menu.addAction(a)
    view_menu.addSeparator()
    w.measure_action = _checkable(w, "&Measure Distance (drag)", w.view.set_measure_mode, "M")
    w.clear_measurements_action = _action(w, "Clear Measurements", w.view.clear_measurements,
                                          "Esc")
    w.privacy_action = _checkable(w, "Hide &Patient Identifiers", w.view.set_hide_identifiers,
                                  "Ctrl+Shift+H")
    for a in (w.measure_action, w.clear_measurements_action, w.privacy_action):
        view_menu.addAction(a)
    return view_menu, fit, actual, reset


def build_menus(w: Any) -> None:
    """Menus File, View, Provenance, Tools, Study, Help and the main toolbar of window ``w``; the
    actions tests and other code trigger are kept as attributes of ``w``."""
    file_menu = w.menuBar().addMenu("&File")
    w.open_action = _action(w, "&Open File…", w.opener.choose_files,
                            QKeySequence.StandardKey.Open)
    w.open_folder_action = _action(w, "Open &Folder…", w.opener.choose_folder, "Ctrl+Shift+O")
    w.open_pacs_action = _action(w, "Open from &PACS…", w.open_from_pacs, "Ctrl+Shift+P")
    w.demo_action = _action(w, "Open &Demo Study", w.open_demo)
    w.report_action = _action(w, "&Export Report…", w.export_report, "Ctrl+E")
    w.evidence_action = _action(w, "Export E&vidence as DICOM…", w.export_evidence)
    w.preferences_action = _action(w, "&Preferences…", w.open_preferences,
                                   QKeySequence.StandardKey.Preferences)
    w.preferences_action.setMenuRole(QAction.MenuRole.PreferencesRole)
    w.recent_menu = file_menu.addMenu("Open &Recent")
    w.recent_menu.aboutToShow.connect(lambda: _fill_recent(w))
    for a in (w.open_action, w.open_folder_action, w.open_pacs_action, w.demo_action):
        file_menu.addAction(a)
    file_menu.insertMenu(w.demo_action, w.recent_menu)
    for group in ((w.report_action, w.evidence_action), (w.preferences_action,),
                  (_action(w, "&Quit", w.close, QKeySequence.StandardKey.Quit),)):
        file_menu.addSeparator()
        for a in group:
            file_menu.addAction(a)

    view_menu, fit, actual, reset = _build_view_menu(w)

    prov_menu = w.menuBar().addMenu("&Provenance")
    w.sign_action = _action(w, "&Sign Current Image…", w.sign_current, "Ctrl+Shift+S")
    w.verify_action = _action(w, "&Verify Current Image", w.verify_current, "Ctrl+Shift+V")
    for a in (w.sign_action, w.verify_action,
              _action(w, "&Keys and Trust Store…", lambda: open_key_manager(w))):
        prov_menu.addAction(a)

    w.docks_menu = view_menu.addMenu("&Docks")  # show a closed dock again
    for dock in w.docks:
        w.docks_menu.addAction(dock.toggleViewAction())

    tools_menu = w.menuBar().addMenu("&Tools")
    w.evaluate_action = _action(w, "&Evaluate…", w.open_evaluation, "Ctrl+Shift+E")
    w.reload_plugins_action = _action(w, "&Reload Plugins", w.reload_plugins)
    tools_menu.addAction(w.evaluate_action)
    w.calibrate_action = _action(w, "&Calibrate Detectors…", lambda: open_calibration(w))
    tools_menu.addAction(w.calibrate_action)
    tools_menu.addAction(w.reload_plugins_action)

    # a blinded reader's session: its own full-screen window, nothing of this one shown
    study_menu = w.menuBar().addMenu("&Study")
    w.reader_study_action = _action(w, "&Reader Study…", w.open_reader_study)
    study_menu.addAction(w.reader_study_action)

    help_menu = w.menuBar().addMenu("&Help")
    w.help_actions = {}
    for title, page in (("&First Steps", "first steps"), ("&Mouse and Keys", "mouse and keys"),
                        ("&About workbench", "about")):
        w.help_actions[page] = _action(w, title, lambda page=page: show_help(w, page))
        help_menu.addAction(w.help_actions[page])

    tb = w.addToolBar("Main")
    tb.setObjectName("toolbar_main")
    tb.addAction(w.open_action)
    tb.addAction(w.open_folder_action)
    tb.addSeparator()
    tb.addWidget(QLabel(" Window "))
    tb.addWidget(w.preset_box)
    tb.addAction(reset)
    tb.addSeparator()
    tb.addAction(fit)
    tb.addAction(actual)


def _fill_recent(w: Any) -> None:
    w.recent_menu.clear()
    paths = recent_paths()
    if not paths:
        w.recent_menu.addAction("(none)").setEnabled(False)
    for p in paths:
        w.recent_menu.addAction(p, lambda p=p: w.open_paths([p]))
