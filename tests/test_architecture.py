"""The house rules, checked: the import-linter contracts in pyproject.toml (Qt only in
workbench.gui, plugins only through workbench.api, the layers), module and function size
limits, and torch kept off the start-up path."""

from __future__ import annotations

import ast
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SIZES = runpy.run_path(str(REPO / "scripts" / "code_sizes.py"))
TORCH_MAY_IMPORT_AT_TOP = ("workbench/models/", "workbench/engine/", "workbench/analysis/",
                           "workbench/training/")


def test_import_contracts_are_kept():
    pytest.importorskip("importlinter")
    run = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import "
                          "lint_imports_command; sys.exit(lint_imports_command())"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "BROKEN" not in run.stdout and run.stdout.count("KEPT") >= 3


def test_no_module_over_the_limit():
    over = [(n, p) for n, p in SIZES["module_sizes"]() if n > SIZES["MODULE_LIMIT"]]
    assert not over, over


def test_no_function_over_the_limit():
    over = [(n, f) for n, f in SIZES["function_sizes"]() if n > SIZES["FUNCTION_LIMIT"]]
    assert not over, over


def _top_level_imports(tree: ast.Module) -> list[str]:
    """Modules imported when the module is imported (not inside functions)."""
    names, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif isinstance(node, ast.If | ast.Try | ast.With):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            todo += [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", []),
                     *(h for t in getattr(node, "handlers", []) for h in t.body)]
    return names


def test_torch_is_imported_lazily_outside_models_engine_analysis():
    offenders = []
    for path in sorted((REPO / "workbench").rglob("*.py")):
        rel = str(path.relative_to(REPO))
        if rel.startswith(TORCH_MAY_IMPORT_AT_TOP):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(m == "torch" or m.startswith("torch.") or m.startswith("torchvision")
               for m in _top_level_imports(tree)):
            offenders.append(rel)
    assert not offenders, offenders


@pytest.mark.parametrize("module", ["workbench.gui.main_window", "workbench.cli",
                                    "workbench.session.actions",
                                    "workbench.provenance.records.verify"])
def test_start_up_paths_do_not_load_torch(module):
    code = (f"import sys, {module}; bad = [m for m in ('torch', 'torchvision') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env={**__import__("os").environ,
                                                      "QT_QPA_PLATFORM": "offscreen"})
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_first_window_imports_nothing_heavy():
    """The window is shown before any image: numpy, torch, OpenCV and the rest load with
    the first image or the first model, not on the path to the first paint (a view's
    clear() importing numpy put 3x a bare PySide6 window on the clock)."""
    heavy = ("numpy", "torch", "torchvision", "scipy", "matplotlib", "cv2", "ray", "c2pa",
             "pynetdicom", "pydicom", "PIL", "highdicom", "dicomweb_client", "requests")
    code = ("import sys\nfrom PySide6.QtWidgets import QApplication\napp = QApplication([])\n"
            "from workbench.gui.main_window import MainWindow\nw = MainWindow()\nw.show()\n"
            "app.processEvents()\n"
            f"bad = [m for m in {heavy!r} if m in sys.modules]\nprint(bad)\n"
            "sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env={**__import__("os").environ,
                                                      "QT_QPA_PLATFORM": "offscreen"})
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_missing_xcb_library_is_named_with_its_package(monkeypatch, capsys):
    """Qt aborts with a core dump when an xcb library is missing: the CLI names the
    package instead (a library that cannot exist stands in for the missing one)."""
    from workbench.cli import images, qt_platform

    assert qt_platform.missing_xcb_packages((("libc.so.6", "libc6"),)) == []
    assert qt_platform.missing_xcb_packages((("libnot-there.so.9", "libnot-there9"),)) == [
        "libnot-there9"]
    monkeypatch.setattr(qt_platform, "XCB_LIBRARIES",
                        (("libnot-there.so.9", "libnot-there9"),))
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    assert images.open_gui([]) == 2
    err = capsys.readouterr().err
    assert "libnot-there9" in err and "apt-get install libnot-there9" in err
