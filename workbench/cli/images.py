"""Looking at images: ``workbench info FILE...`` headless, and ``workbench [PATH...]`` (the
GUI, the one path that imports Qt)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from .commands import synopsis
from .plumbing import EXIT_FAILED, EXIT_OK, EXIT_USAGE, print_error, print_json_line


def cmd_info(args: argparse.Namespace) -> int:
    from ..imaging import ImageLoadError, load_image
    from ..imaging.warning_notes import warnings_as_notes

    failures = 0
    for name in args.files:
        try:
            with warnings_as_notes() as later:  # values pydicom only checks when read
                summary = load_image(name).describe()
        except ImageLoadError as exc:  # one bad file never hides the others
            print_error(str(exc))
            failures += 1
            continue
        notes = summary.get("notes", [])
        if extra := [t for t in later if t not in notes]:
            summary["notes"] = [*notes, *extra]
        if args.json:
            print_json_line(summary)
        else:
            print(summary.pop("file"))
            for key, value in summary.items():
                print(f"  {key.replace('_', ' '):<16} {value}")
    return EXIT_FAILED if failures else EXIT_OK


def _info_arguments(p: argparse.ArgumentParser) -> None:
    p.description = "Print what each image file is, without a GUI."
    p.add_argument("files", nargs="+", help="DICOM files or photos")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=cmd_info)


ARGUMENTS = {"info": _info_arguments}


def _gui_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="workbench",
        description="Forensics workbench for medical images under adversarial attack. "
        "Without a command, opens the GUI.",
        epilog=synopsis(),
    )
    p.add_argument("--version", action="version", version=f"workbench {__version__}")
    p.add_argument("--demo", action="store_true", help="open the built-in demo study")
    p.add_argument("paths", nargs="*", help="DICOM files, photos or folders to open")
    return p


def _display_available() -> bool:
    """Qt aborts the process when it finds no display; say so in words instead."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_gui(argv: Sequence[str]) -> int:
    """``workbench [--demo] [PATH...]``: the window, or one line when there is no display."""
    args = _gui_parser().parse_args(argv)
    if not _display_available():
        print_error("no display to open the workbench window on (DISPLAY and WAYLAND_DISPLAY "
                    "are unset); use 'workbench info FILE...' headless, or set "
                    "QT_QPA_PLATFORM=offscreen")
        return EXIT_USAGE
    from .qt_platform import missing_xcb_packages, uses_xcb

    missing = missing_xcb_packages() if uses_xcb() else []
    if missing:
        print_error("the window needs Qt's X11 (xcb) libraries, and these are not installed: "
                    f"{' '.join(missing)}; install them (Debian/Ubuntu: apt-get install "
                    f"{' '.join(missing)}), or run headless with QT_QPA_PLATFORM=offscreen")
        return EXIT_USAGE
    from ..gui.app import run_gui  # Qt is imported only on this path

    return run_gui(args.paths, demo=args.demo)
