"""Preferences and the first-run dialog, with real widgets in the real main window."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QFileDialog, QLineEdit

from workbench.engine.plugins import builtin_plugin_dir, discover_plugins
from workbench.gui import settings
from workbench.home import keys_dir, settings_file, trust_store_dir
from workbench.provenance.records import keys

TIMEOUT = 30_000
PLUGIN_NAME = "fgsm_from_preferences"


@pytest.fixture(autouse=True)
def _restore_look():
    """The QApplication is shared by the whole test session: put its look back."""
    app = QApplication.instance()
    palette = QPalette(app.palette()) if app else None
    style = app.style().name() if app else None
    yield
    if app is not None:
        app.setStyle(style)
        app.setPalette(palette)


def write_plugin(folder: Path) -> Path:
    """A valid attack plugin: the built-in FGSM under another class name and name."""
    text = (builtin_plugin_dir() / "fgsm.py").read_text()
    text = re.sub(r"class FGSM\(Attack\)", "class FGSMFromPreferences(Attack)", text)
    text = text.replace('name = "fgsm"', f'name = "{PLUGIN_NAME}"')
    assert PLUGIN_NAME in text and "FGSMFromPreferences" in text
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fgsm_prefs.py"
    path.write_text(text)
    return path


def click(qtbot, dialog, which: QDialogButtonBox.StandardButton) -> None:
    qtbot.mouseClick(dialog.buttons.button(which), Qt.MouseButton.LeftButton)


def open_preferences(qtbot, window):
    window.preferences_action.trigger()  # File › Preferences…
    dialog = window.preferences_dialog
    qtbot.waitExposed(dialog)
    return dialog


def test_preferences_persist_apply_and_reopen(qtbot, window, tmp_path, monkeypatch):
    plugin_dir = tmp_path / "my plugins"
    plugin_dir.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(plugin_dir)))
    before = window.palette().color(QPalette.ColorRole.Window).lightness()

    dialog = open_preferences(qtbot, window)
    assert dialog.values() == {"device": "auto", "plugin_folders": [], "theme": "system"}
    assert dialog.device_box.findData("cpu") >= 0  # torch's devices are listed
    shown = [f.text() for f in dialog.findChildren(QLineEdit)]
    assert str(keys_dir()) in shown and str(trust_store_dir()) in shown
    dialog.device_box.setCurrentIndex(dialog.device_box.findData("cpu"))
    qtbot.mouseClick(dialog.add_folder_button, Qt.MouseButton.LeftButton)
    dialog.theme_box.setCurrentIndex(dialog.theme_box.findData("dark"))
    click(qtbot, dialog, QDialogButtonBox.StandardButton.Apply)

    # saved: a fresh QSettings on the settings file reads the values back
    fresh = QSettings(str(settings_file()), QSettings.Format.IniFormat)
    assert fresh.value(settings.DEVICE_KEY) == "cpu"
    assert fresh.value(settings.THEME_KEY) == "dark"
    assert settings.plugin_folders() == [str(plugin_dir)]
    assert settings.device_preference() == "cpu"
    # applied: a darker window, and the Model dock now loads on the CPU
    def lightness() -> int:
        return window.palette().color(QPalette.ColorRole.Window).lightness()

    qtbot.waitUntil(lambda: lightness() < before - 80, timeout=5000)  # delivered by events
    assert window.models.device_box.currentText() == "cpu"

    click(qtbot, dialog, QDialogButtonBox.StandardButton.Ok)
    assert dialog.result() == QDialog.DialogCode.Accepted and not dialog.isVisible()

    dialog = open_preferences(qtbot, window)
    assert dialog.values() == {"device": "cpu", "plugin_folders": [str(plugin_dir)],
                               "theme": "dark"}
    # an edit then Cancel saves nothing
    dialog.theme_box.setCurrentIndex(dialog.theme_box.findData("light"))
    click(qtbot, dialog, QDialogButtonBox.StandardButton.Cancel)
    assert settings.theme_preference() == "dark"

    # the model really goes where the preference says
    window.models.load_model("demo")
    qtbot.waitUntil(lambda: window.study.model is not None, timeout=TIMEOUT)
    assert str(window.study.model.device) == "cpu"


def test_plugin_folder_is_used_for_discovery(qtbot, window, tmp_path, monkeypatch):
    folder = tmp_path / "extra plugins"
    write_plugin(folder)
    box = window.attacks.plugin_box
    assert box.findData(PLUGIN_NAME) < 0  # not in the default discovery

    dialog = open_preferences(qtbot, window)
    assert dialog.add_plugin_folder(str(folder))
    assert not dialog.add_plugin_folder(str(folder))  # listed once
    qtbot.mouseClick(dialog.reload_button, Qt.MouseButton.LeftButton)  # saves, rediscovers
    assert settings.plugin_folders() == [str(folder)]
    assert box.findData(PLUGIN_NAME) >= 0
    assert window.registry.get(PLUGIN_NAME).ok
    assert "Reloaded" in dialog.plugin_status.text()
    click(qtbot, dialog, QDialogButtonBox.StandardButton.Cancel)

    found = {p.name: p for p in discover_plugins(settings.preferred_plugin_dirs())}
    assert found[PLUGIN_NAME].ok and found[PLUGIN_NAME].source == str(folder / "fgsm_prefs.py")

    # the next start: a new window discovers it without being asked
    from workbench.gui.main_window import MainWindow

    second = MainWindow()
    qtbot.addWidget(second)
    second.show()
    qtbot.waitUntil(lambda: second.attacks.plugin_box.count() > 0)  # after the first paint
    assert second.attacks.plugin_box.findData(PLUGIN_NAME) >= 0
    second.close()


def test_restore_defaults_and_missing_folder(qtbot, window, tmp_path):
    settings.set_plugin_folders([str(tmp_path / "gone")])  # e.g. an unmounted drive
    settings.set_device_preference("cuda:7")  # saved on another machine
    dialog = open_preferences(qtbot, window)
    assert dialog.values()["device"] == "cuda:7"
    assert "not available" in dialog.device_box.currentText()
    assert settings.preferred_plugin_dirs() == []  # skipped, not an error
    click(qtbot, dialog, QDialogButtonBox.StandardButton.RestoreDefaults)
    assert dialog.values() == {"device": "auto", "plugin_folders": [], "theme": "system"}
    assert settings.device_preference() == "cuda:7"  # not saved until OK or Apply
    click(qtbot, dialog, QDialogButtonBox.StandardButton.Ok)
    assert settings.device_preference() == "auto" and settings.plugin_folders() == []


def test_main_window_never_asks_first_run(qtbot, window):
    from workbench.gui.dialogs.first_run import FirstRunDialog, first_run_needed

    assert first_run_needed()  # a fresh home: it would be needed...
    qtbot.wait(50)
    assert not [w for w in QApplication.topLevelWidgets()  # ...but the window did not ask
                if isinstance(w, FirstRunDialog) and w.isVisible()]


def test_first_run_creates_a_key_and_is_not_asked_again(qtbot):
    from workbench.gui.dialogs.first_run import FirstRunDialog, first_run_needed

    assert first_run_needed() and not settings.first_run_done()
    dialog = FirstRunDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    qtbot.keyClicks(dialog.label, "reading room 2")
    qtbot.keyClicks(dialog.passphrase, "correct horse")
    qtbot.keyClicks(dialog.repeat, "correct hors")
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    # the key manager's checks: a mismatch keeps the dialog open and creates nothing
    assert dialog.isVisible() and "differ" in dialog.problem.text()
    assert keys.list_keys() == [] and not settings.first_run_done()

    qtbot.keyClicks(dialog.repeat, "e")
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Accepted
    [key] = keys.list_keys()
    assert key.label == "reading room 2" and dialog.created.fingerprint == key.fingerprint
    assert (keys_dir() / f"{key.fingerprint}.key").is_file()
    assert keys.load_private_key(key.fingerprint, "correct horse") is not None
    assert settings.first_run_done()
    assert not first_run_needed()


def test_first_run_skip_sets_the_flag_without_a_key(qtbot):
    from workbench.gui.dialogs.first_run import first_run_needed, run_first_run

    assert first_run_needed()
    seen = []

    def skip() -> None:  # the dialog is modal (exec): answer it from the event loop
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(20, skip)
            return
        seen.append(dialog.windowTitle())
        qtbot.mouseClick(dialog.skip_button, Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, skip)
    assert run_first_run(None) is None
    assert seen == ["Welcome to workbench"]
    assert keys.list_keys() == []
    assert not any(keys_dir().glob("*.key"))
    assert settings.first_run_done() and not first_run_needed()
    assert run_first_run(None) is None  # answered: not asked again (no dialog to skip)


def test_first_run_not_needed_when_a_key_exists():
    from workbench.gui.dialogs.first_run import first_run_needed

    keys.generate_key("pass", "existing")
    assert not first_run_needed()


def test_device_choices_list_what_torch_sees(monkeypatch):
    import torch

    from workbench.gui.dialogs.preferences import device_choices

    assert [v for v, _ in device_choices()][:2] == ["auto", "cpu"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: f"GPU {i}")
    choices = dict(device_choices())
    assert list(choices) == ["auto", "cpu", "cuda:0", "cuda:1"]
    assert choices["cuda:1"] == "cuda:1 — GPU 1" and "cuda" in choices["auto"]
