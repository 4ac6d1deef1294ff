"""The command line: ``workbench`` (GUI), ``workbench COMMAND ...`` (headless), ``--version``.

The command table (``commands.py``) says which family module runs each command; only that
module is imported, so the headless paths never import Qt or torch unless the command
needs them, and start fast on servers.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence

from .commands import find_command, run_command


def main(argv: Sequence[str] | None = None) -> int:
    """The ``workbench`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):
        # a file name that is not UTF-8 (undecodable bytes become surrogates) is printed
        # escaped, never raised as UnicodeEncodeError halfway through a folder
        if hasattr(stream, "reconfigure"):
            with contextlib.suppress(ValueError, OSError):
                stream.reconfigure(errors="backslashreplace")
    command = find_command(argv[0]) if argv else None
    if command is not None:
        return run_command(command, argv[1:])
    from .images import open_gui

    return open_gui(argv)


if __name__ == "__main__":
    sys.exit(main())
