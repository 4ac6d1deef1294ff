"""Preferences stored under WORKBENCH_HOME (one home for all state), via QSettings."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from ..home import settings_file

MAX_RECENT = 10


def app_settings() -> QSettings:
    return QSettings(str(settings_file()), QSettings.Format.IniFormat)


def recent_paths() -> list[str]:
    value = app_settings().value("recent/paths", [])
    if isinstance(value, str):  # QSettings returns a bare string for a one-item list
        value = [value]
    return [str(v) for v in (value or [])]


def add_recent_path(path: str) -> list[str]:
    paths = [p for p in recent_paths() if p != path]
    paths.insert(0, path)
    paths = paths[:MAX_RECENT]
    s = app_settings()
    s.setValue("recent/paths", paths)
    s.sync()
    return paths
