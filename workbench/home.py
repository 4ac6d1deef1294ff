"""The one directory that holds all of the workbench's state.

Settings, keys, the trust store, the ledger and the user plugin folder all live under
``$WORKBENCH_HOME`` when it is set, else the platform's user data directory. Keeping them
together means an auditor can back up, inspect or wipe the workbench's state in one place,
and tests can point everything at a temporary directory with one variable.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "WORKBENCH_HOME"


def workbench_home(create: bool = True) -> Path:
    """Return the state directory, creating it (mode 0700) unless ``create`` is False."""
    env = os.environ.get(ENV_VAR)
    if env:
        home = Path(env).expanduser()
    else:
        import platformdirs

        home = Path(platformdirs.user_data_dir("workbench", appauthor=False))
    if create:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def settings_file() -> Path:
    """The INI file holding user preferences (read by the GUI through QSettings)."""
    return workbench_home() / "settings.ini"


def keys_dir() -> Path:
    path = workbench_home() / "keys"
    path.mkdir(exist_ok=True, mode=0o700)
    return path


def trust_store_dir() -> Path:
    path = workbench_home() / "trust"
    path.mkdir(exist_ok=True, mode=0o700)
    return path


def ledger_file() -> Path:
    return workbench_home() / "ledger.sqlite"


def user_plugins_dir() -> Path:
    path = workbench_home() / "plugins"
    path.mkdir(exist_ok=True)
    return path


def cache_dir() -> Path:
    """Files the workbench makes for itself (e.g. the synthetic demo image)."""
    path = workbench_home() / "cache"
    path.mkdir(exist_ok=True)
    return path
