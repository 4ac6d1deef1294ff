"""Preferences stored under WORKBENCH_HOME (one home for all state), via QSettings.

Every reader opens a fresh QSettings on the INI file, so a value written by the
Preferences dialog is what the next reader (this process or the next start) sees.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from ..home import settings_file

MAX_RECENT = 10

DEVICE_KEY = "model/device"
PLUGIN_FOLDERS_KEY = "plugins/folders"
THEME_KEY = "appearance/theme"
FIRST_RUN_KEY = "first_run_done"
LAST_MODEL_KEY = "model/last"

DEFAULT_DEVICE = "auto"
THEMES = ("system", "light", "dark")
DEFAULT_THEME = "system"


def app_settings() -> QSettings:
    return QSettings(str(settings_file()), QSettings.Format.IniFormat)


def _list_value(key: str) -> list[str]:
    value = app_settings().value(key, [])
    if isinstance(value, str):  # QSettings returns a bare string for a one-item list
        value = [value]
    return [str(v) for v in (value or [])]


def _set(key: str, value: object) -> None:
    s = app_settings()
    if isinstance(value, list) and not value:
        s.remove(key)  # an empty list reads back as None from INI: store nothing instead
    else:
        s.setValue(key, value)
    s.sync()


def recent_paths() -> list[str]:
    return _list_value("recent/paths")


def add_recent_path(path: str) -> list[str]:
    paths = [p for p in recent_paths() if p != path]
    paths.insert(0, path)
    paths = paths[:MAX_RECENT]
    _set("recent/paths", paths)
    return paths


# --- device -------------------------------------------------------------------------------
def device_preference() -> str:
    """'auto', 'cpu', 'cuda' or 'cuda:N' (what models.device.choose_device accepts)."""
    value = str(app_settings().value(DEVICE_KEY, DEFAULT_DEVICE) or DEFAULT_DEVICE)
    return value.strip().lower() or DEFAULT_DEVICE


def set_device_preference(device: str) -> None:
    _set(DEVICE_KEY, (device or DEFAULT_DEVICE).strip().lower())


def last_model() -> str:
    """The model the user last loaded (a zoo name or a card path), loaded again at start;
    empty on a fresh install, where the user chooses."""
    return str(app_settings().value(LAST_MODEL_KEY, "") or "")


def set_last_model(name: str) -> None:
    _set(LAST_MODEL_KEY, name)


# --- plugin folders -----------------------------------------------------------------------
def plugin_folders() -> list[str]:
    """Extra folders searched for plugins, as the user entered them."""
    return _list_value(PLUGIN_FOLDERS_KEY)


def set_plugin_folders(folders: list[str]) -> None:
    unique: list[str] = []
    for f in folders:
        if f and f not in unique:
            unique.append(f)
    _set(PLUGIN_FOLDERS_KEY, unique)


def preferred_plugin_dirs() -> list[Path]:
    """The plugin folders that exist now: a folder on a drive that is not mounted is
    skipped, not an error, so the window still starts."""
    return [p for p in (Path(f).expanduser() for f in plugin_folders()) if p.is_dir()]


# --- theme --------------------------------------------------------------------------------
def theme_preference() -> str:
    value = str(app_settings().value(THEME_KEY, DEFAULT_THEME) or DEFAULT_THEME).lower()
    return value if value in THEMES else DEFAULT_THEME


def set_theme_preference(theme: str) -> None:
    if theme not in THEMES:
        raise ValueError(f"theme {theme!r} is not one of {THEMES}")
    _set(THEME_KEY, theme)


# --- first run ----------------------------------------------------------------------------
def first_run_done() -> bool:
    return bool(app_settings().value(FIRST_RUN_KEY, False, type=bool))


def set_first_run_done(done: bool = True) -> None:
    _set(FIRST_RUN_KEY, bool(done))
