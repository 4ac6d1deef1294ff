"""The command line: ``workbench`` (GUI), ``workbench info FILE...``, ``workbench --version``.

The headless paths never import Qt or torch, so they start fast on servers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from . import __version__


def _gui_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="workbench",
        description="Forensics workbench for medical images under adversarial attack. "
        "Without a command, opens the GUI.",
        epilog="commands (each with -h): info FILE... | keys new|list|trust|untrust|export | "
        "sign PATH... | verify PATH... | ledger verify|proof|export|head|check-proof | "
        "plugins | predict INPUT... | attack --plugin P INPUT... --out DIR | detect PATH... | "
        "calibrate --detector D --clean DIR | report IMAGE... --out F.html|F.pdf | "
        "evaluate --data DIR --out RUN_DIR | certs new|import|list|trust|export | "
        "plugin new NAME --kind attack|detector | plugin check FILE | selftest [--no-torch]",
    )
    p.add_argument("--version", action="version", version=f"workbench {__version__}")
    p.add_argument("--demo", action="store_true", help="open the built-in demo study")
    p.add_argument("paths", nargs="*", help="DICOM files, photos or folders to open")
    return p


def _info_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench info",
                                description="Print what each image file is, without a GUI.")
    p.add_argument("files", nargs="+", help="DICOM files or photos")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    return p


def cmd_info(argv: Sequence[str]) -> int:
    args = _info_parser().parse_args(argv)
    from .imaging import ImageLoadError, load_image

    failures = 0
    for name in args.files:
        try:
            summary = load_image(name).describe()
        except ImageLoadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failures += 1
            continue
        if args.json:
            print(json.dumps(summary))
        else:
            print(summary.pop("file"))
            for key, value in summary.items():
                print(f"  {key.replace('_', ' '):<16} {value}")
    return 1 if failures else 0


def _display_available() -> bool:
    """Qt aborts the process when it finds no display; say so in words instead."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "info":
        return cmd_info(argv[1:])
    if argv[:1] in (["selftest"], ["--smoke"]):  # --smoke: the frozen app's spelling
        from .selftest import main as selftest

        return selftest(argv[1:])
    if argv and argv[0] == "certs":
        from .cli_certs import run as run_certs

        return run_certs(argv)
    if argv and argv[0] == "evaluate":
        from .cli_evaluate import run as run_evaluate

        return run_evaluate(argv)
    if argv and argv[0] == "plugin":
        from .cli_plugin import run as run_plugin

        return run_plugin(argv)
    if argv and argv[0] == "report":
        from .cli_report import run as run_report

        return run_report(argv)
    from .cli_attack import ATTACK_COMMANDS
    from .cli_provenance import PROVENANCE_COMMANDS

    if argv and argv[0] in ATTACK_COMMANDS:
        from .cli_attack import run as run_attack_command

        return run_attack_command(argv)

    from .cli_detect import DETECT_COMMANDS

    if argv and argv[0] in DETECT_COMMANDS:
        from .cli_detect import run as run_detect_command

        return run_detect_command(argv)

    if argv and argv[0] in PROVENANCE_COMMANDS:
        from .cli_provenance import run

        return run(argv)
    args = _gui_parser().parse_args(argv)
    if not _display_available():
        print("error: no display to open the workbench window on (DISPLAY and WAYLAND_DISPLAY "
              "are unset); use 'workbench info FILE...' headless, or set "
              "QT_QPA_PLATFORM=offscreen", file=sys.stderr)
        return 2
    from .gui.app import run_gui  # Qt is imported only on this path

    return run_gui(args.paths, demo=args.demo)


if __name__ == "__main__":
    sys.exit(main())
