"""The Preferences dialog (device, plugin folders, key and trust store locations, theme)
and the theme palettes it applies.

Values live in the workbench's settings file (settings.py); the dialog only edits them.
Torch is imported when the dialog opens, not when the window starts, so that a start
without opening Preferences never pays for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QStyleFactory,
    QVBoxLayout,
    QWidget,
)

from ...home import keys_dir, trust_store_dir, user_plugins_dir
from .. import settings

THEME_LABELS = {"system": "System", "light": "Light", "dark": "Dark"}

# The palette the application started with: "system" goes back to it after light or dark.
_system_palette: QPalette | None = None


# --- theme ----------------------------------------------------------------------------------
def dark_palette() -> QPalette:
    """A dark Fusion palette (the usual one: grey surfaces, white text, blue selection)."""
    p = QPalette()
    window, base, text = QColor(53, 53, 53), QColor(35, 35, 35), QColor(230, 230, 230)
    disabled = QColor(127, 127, 127)
    highlight = QColor(42, 130, 218)
    for role, colour in (
        (QPalette.ColorRole.Window, window),
        (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base),
        (QPalette.ColorRole.AlternateBase, QColor(45, 45, 45)),
        (QPalette.ColorRole.ToolTipBase, QColor(25, 25, 25)),
        (QPalette.ColorRole.ToolTipText, text),
        (QPalette.ColorRole.PlaceholderText, disabled),
        (QPalette.ColorRole.Text, text),
        (QPalette.ColorRole.Button, window),
        (QPalette.ColorRole.ButtonText, text),
        (QPalette.ColorRole.BrightText, QColor(255, 80, 80)),
        (QPalette.ColorRole.Light, QColor(75, 75, 75)),
        (QPalette.ColorRole.Midlight, QColor(62, 62, 62)),
        (QPalette.ColorRole.Mid, QColor(40, 40, 40)),
        (QPalette.ColorRole.Dark, QColor(25, 25, 25)),
        (QPalette.ColorRole.Shadow, QColor(10, 10, 10)),
        (QPalette.ColorRole.Link, QColor(90, 160, 240)),
        (QPalette.ColorRole.Highlight, highlight),
        (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
    ):
        p.setColor(role, colour)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Highlight, QColor(80, 80, 80))
    return p


def apply_theme(theme: str, app: QApplication | None = None) -> None:
    """Set the application palette for ``theme`` ("system", "light" or "dark").

    Light and dark use the Fusion style, the one style that draws every widget from the
    palette (native styles ignore parts of it)."""
    global _system_palette
    app = app or QApplication.instance()
    if app is None:
        return
    if _system_palette is None:
        _system_palette = QPalette(app.palette())
    if theme in ("light", "dark") and app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    if theme == "dark":
        app.setPalette(dark_palette())
    elif theme == "light":
        fusion = QStyleFactory.create("Fusion")
        app.setPalette(fusion.standardPalette() if fusion else QPalette())
    else:
        app.setPalette(_system_palette)


# --- devices --------------------------------------------------------------------------------
def device_choices() -> list[tuple[str, str]]:
    """(value, label) for auto, cpu and each CUDA device torch sees here."""
    try:
        import torch  # here, not at module level: only opening Preferences pays for it

        cuda = bool(torch.cuda.is_available())
        count = torch.cuda.device_count() if cuda else 0
    except Exception:  # a broken torch install must not stop the dialog from opening
        torch, cuda, count = None, False, 0
    out = [("auto", f"auto (here: {'cuda' if cuda else 'cpu'})"), ("cpu", "cpu")]
    for i in range(count):
        try:
            name = torch.cuda.get_device_name(i)
        except Exception:
            name = "CUDA device"
        out.append((f"cuda:{i}", f"cuda:{i} — {name}"))
    return out


# --- the dialog -----------------------------------------------------------------------------
def _path_field(path: Path) -> QLineEdit:
    """A read-only, selectable path: it scrolls rather than clips a long one."""
    field = QLineEdit(str(path))
    field.setReadOnly(True)
    field.setToolTip(str(path))
    field.setCursorPosition(0)
    return field


class PreferencesDialog(QDialog):
    """Edits the preferences; OK and Apply save them (and apply the theme at once)."""

    deviceChanged = Signal(str)  # noqa: N815 (Qt naming)
    applied = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.setMinimumWidth(640)
        self.main_window = parent
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Apply
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults)
        self.buttons.clicked.connect(self._on_button)
        layout = QVBoxLayout(self)
        for box in (self._model_box(), self._plugin_box(parent), self._trust_box(),
                    self._look_box()):
            layout.addWidget(box)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.load()

    def _model_box(self) -> QGroupBox:
        self.device_box = QComboBox()
        for value, label in device_choices():
            self.device_box.addItem(label, value)
        device_note = QLabel("Models loaded in the Model dock run here, and attacks run where "
                             "their model is. <i>auto</i> picks CUDA when torch sees it.")
        device_note.setWordWrap(True)
        box = QGroupBox("Model")
        form = QFormLayout(box)
        form.addRow("Device", self.device_box)
        form.addRow(device_note)
        return box

    def _plugin_box(self, parent: QWidget | None) -> QGroupBox:
        self.plugin_list = QListWidget()
        self.plugin_list.setMinimumHeight(90)
        self.plugin_list.setMaximumHeight(130)
        self.plugin_list.currentRowChanged.connect(
            lambda row: self.remove_folder_button.setEnabled(row >= 0))
        self.add_folder_button = QPushButton("Add…")
        self.add_folder_button.clicked.connect(self._choose_folder)
        self.remove_folder_button = QPushButton("Remove")
        self.remove_folder_button.clicked.connect(self.remove_selected_folder)
        self.reload_button = QPushButton("Reload plugins")
        self.reload_button.clicked.connect(self.reload_plugins)
        self._reload = getattr(parent, "reload_plugins", None)
        self.reload_button.setEnabled(callable(self._reload))
        self.reload_button.setToolTip("Save and discover the plugins again now" if callable(
            self._reload) else "Plugins are discovered again on the next start")
        self.plugin_status = QLabel(
            f"Searched after the built-in plugins and {user_plugins_dir()}, on the next start "
            "or when you reload.")
        self.plugin_status.setWordWrap(True)
        side = QVBoxLayout()
        for b in (self.add_folder_button, self.remove_folder_button, self.reload_button):
            side.addWidget(b)
        side.addStretch(1)
        lists = QHBoxLayout()
        lists.addWidget(self.plugin_list, 1)
        lists.addLayout(side)
        box = QGroupBox("Plugin folders")
        layout = QVBoxLayout(box)
        layout.addLayout(lists)
        layout.addWidget(self.plugin_status)
        return box

    def _trust_box(self) -> QGroupBox:
        """Where the keys and the trust store are; the key manager changes what is in them."""
        self.keys_path, self.trust_path = keys_dir(), trust_store_dir()
        self.manage_keys_button = QPushButton("Manage keys…")
        self.manage_keys_button.clicked.connect(self.open_key_manager)
        open_keys = QPushButton("Open folder")
        open_keys.clicked.connect(lambda: self.open_folder(self.keys_path))
        open_trust = QPushButton("Open folder")
        open_trust.clicked.connect(lambda: self.open_folder(self.trust_path))
        self.open_status = QLabel("")
        self.open_status.setStyleSheet("color: #d23c3c")
        self.open_status.hide()
        box = QGroupBox("Signing keys and trust store")
        grid = QGridLayout(box)  # a grid, so both paths and both Open buttons line up
        grid.addWidget(QLabel("Keys"), 0, 0)
        grid.addWidget(_path_field(self.keys_path), 0, 1)
        grid.addWidget(open_keys, 0, 2)
        grid.addWidget(self.manage_keys_button, 0, 3)
        grid.addWidget(QLabel("Trust store"), 1, 0)
        grid.addWidget(_path_field(self.trust_path), 1, 1)
        grid.addWidget(open_trust, 1, 2)
        grid.addWidget(self.open_status, 2, 0, 1, 4)
        grid.setColumnStretch(1, 1)
        return box

    def _look_box(self) -> QGroupBox:
        self.theme_box = QComboBox()
        for value in settings.THEMES:
            self.theme_box.addItem(THEME_LABELS[value], value)
        box = QGroupBox("Appearance")
        QFormLayout(box).addRow("Theme", self.theme_box)
        return box

    # --- values -----------------------------------------------------------------------------
    def load(self) -> None:
        """Show the saved preferences."""
        self._set_device(settings.device_preference())
        self.plugin_list.clear()
        for folder in settings.plugin_folders():
            self._add_item(folder)
        self.remove_folder_button.setEnabled(False)
        self.theme_box.setCurrentIndex(max(0, self.theme_box.findData(
            settings.theme_preference())))

    def values(self) -> dict[str, Any]:
        """What the dialog shows now (saved or not)."""
        return {"device": self.device_box.currentData(),
                "plugin_folders": [self.plugin_list.item(i).text()
                                   for i in range(self.plugin_list.count())],
                "theme": self.theme_box.currentData()}

    def _set_device(self, device: str) -> None:
        index = self.device_box.findData(device)
        if index < 0:  # saved on another machine (cuda:1 here without CUDA): keep it visible
            self.device_box.addItem(f"{device} (not available here)", device)
            index = self.device_box.count() - 1
        self.device_box.setCurrentIndex(index)

    def restore_defaults(self) -> None:
        """Defaults in the widgets; saved only by OK or Apply, like any other edit."""
        self._set_device(settings.DEFAULT_DEVICE)
        self.plugin_list.clear()
        self.theme_box.setCurrentIndex(self.theme_box.findData(settings.DEFAULT_THEME))

    def apply(self) -> None:
        """Save what is shown, apply the theme, and tell the window of a new device."""
        v = self.values()
        old_device = settings.device_preference()
        settings.set_device_preference(v["device"])
        settings.set_plugin_folders(v["plugin_folders"])
        settings.set_theme_preference(v["theme"])
        apply_theme(v["theme"])
        if v["device"] != old_device:
            self.deviceChanged.emit(v["device"])
        self.applied.emit()

    def _on_button(self, button: QAbstractButton) -> None:
        role = self.buttons.standardButton(button)
        if role == QDialogButtonBox.StandardButton.Ok:
            self.apply()
            self.accept()
        elif role == QDialogButtonBox.StandardButton.Apply:
            self.apply()
        elif role == QDialogButtonBox.StandardButton.RestoreDefaults:
            self.restore_defaults()
        else:
            self.reject()

    # --- plugin folders ---------------------------------------------------------------------
    def _add_item(self, folder: str) -> None:
        item = QListWidgetItem(folder)
        if not Path(folder).expanduser().is_dir():
            item.setForeground(QColor("#d23c3c"))
            item.setToolTip("Not found: skipped until it exists again")
        self.plugin_list.addItem(item)

    def add_plugin_folder(self, folder: str) -> bool:
        """Add ``folder`` to the list (not yet saved); False when it is listed already."""
        folder = str(Path(folder).expanduser())
        if not folder or folder in self.values()["plugin_folders"]:
            return False
        self._add_item(folder)
        self.plugin_list.setCurrentRow(self.plugin_list.count() - 1)
        return True

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Plugin folder", str(Path.home()))
        if folder:
            self.add_plugin_folder(folder)

    def remove_selected_folder(self) -> None:
        row = self.plugin_list.currentRow()
        if row >= 0:
            self.plugin_list.takeItem(row)

    def reload_plugins(self) -> None:
        """Save (discovery reads the saved folders), then discover again in the window."""
        if not callable(self._reload):
            return
        self.apply()
        plugins = self._reload() or []
        ok = sum(1 for p in plugins if p.ok)
        broken = len(plugins) - ok
        self.plugin_status.setText(f"Reloaded: {ok} plugins" + (
            f", {broken} broken (listed in the Attack dock)" if broken else "") + ".")

    # --- keys and trust store ---------------------------------------------------------------
    def open_folder(self, path: Path) -> bool:
        """Show ``path`` in the desktop's file manager."""
        ok = QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
        self.open_status.setVisible(not ok)
        if not ok:
            self.open_status.setText(f"No file manager could open {path}")
        return ok

    def open_key_manager(self) -> None:
        from .key_manager import KeyManagerDialog

        KeyManagerDialog(self).exec()  # over this dialog, so it is not hidden behind it
