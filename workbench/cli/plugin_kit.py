"""``workbench plugin``: the plugin kit on the command line.

    workbench plugin new NAME [--kind attack|detector] [--dir DIR]
        a ready-to-edit plugin DIR/NAME.py and its tests DIR/test_NAME.py
        (DIR: the user plugin folder, where the GUI finds it on its next start)
    workbench plugin check FILE [--json] [--model demo] [--timeout S]
        import, declaration, parameters, imports, runs, seed and cancel, one line each

Exit codes: 0 all checks passed (or the files were written), 1 a check failed, 2 usage
(a missing file, a bad name, a file that exists).
"""

from __future__ import annotations

import argparse
import json

from .plumbing import EXIT_FAILED, EXIT_OK


def cmd_plugin(args: argparse.Namespace) -> int:
    if args.action == "new":
        return _new(args)
    return _check(args)


def _new(args: argparse.Namespace) -> int:
    from ..plugin_kit.scaffold import new_plugin

    plugin_file, test_file = new_plugin(args.name, args.kind, args.dir)
    print(f"wrote {plugin_file} (a working {args.kind} to edit)")
    print(f"wrote {test_file} (its tests)")
    print("next: edit the docstring, the declaration and the body, then")
    print(f"  workbench plugin check {plugin_file}")
    print(f"  python -m pytest -q {test_file}")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from ..plugin_kit.check import check_plugin

    report = check_plugin(args.file, model=args.model, timeout=args.timeout)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.to_text())
    return EXIT_OK if report.ok else EXIT_FAILED


def _plugin_arguments(p: argparse.ArgumentParser) -> None:
    ps = p.add_subparsers(dest="action", required=True)
    new = ps.add_parser("new", help="write a ready-to-edit plugin file and its test file")
    new.add_argument("name", help="the plugin's name, e.g. my-attack (file: my_attack.py)")
    new.add_argument("--kind", choices=("attack", "detector"), default="attack")
    new.add_argument("--dir", metavar="DIR",
                     help="where to write the files (default: the user plugin folder)")
    check = ps.add_parser("check", help="import, validate and run a plugin file, with the "
                                        "demo model on small real and synthetic images")
    check.add_argument("file", help="the plugin file (.py)")
    check.add_argument("--json", action="store_true", help="the report as JSON")
    check.add_argument("--model", default="demo",
                       help="the model to run it with (default: demo)")
    check.add_argument("--timeout", type=float, default=120.0, metavar="S",
                       help="seconds one run may take (default: 120)")
    p.set_defaults(handler=cmd_plugin)


ARGUMENTS = {"plugin": _plugin_arguments}


def user_errors() -> tuple[type[Exception], ...]:
    from ..plugin_kit import PluginKitError

    return (PluginKitError,)
