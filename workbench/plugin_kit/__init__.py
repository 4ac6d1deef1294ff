"""The plugin kit: what makes a new attack or detector plugin a ten-minute job.

- :func:`new_plugin` (``workbench plugin new``) writes a ready-to-edit plugin file and a
  pytest file beside it, from the templates in :mod:`workbench.plugin_kit.templates`;
- :func:`check_plugin` (``workbench plugin check``) imports a plugin file the way
  discovery does, checks its declaration, parameters and imports, and runs it through the
  engine on real and synthetic images with the demo model, cancel included;
- :mod:`workbench.plugin_kit.apidoc` renders the API reference in ``docs/plugins.md``
  from the ``workbench/api/`` package itself.

Importing this package is cheap: torch loads only when a check runs.
"""

from __future__ import annotations

__all__ = ["PluginKitError", "check_plugin", "new_plugin"]


class PluginKitError(ValueError):
    """A usage problem (a bad name, a file that exists or is missing): one line, exit 2."""


# Below the error class: both modules import it from here.
from .check import check_plugin  # noqa: E402
from .scaffold import new_plugin  # noqa: E402
