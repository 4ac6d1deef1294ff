"""``workbench plugin check FILE``: everything the workbench will do with a plugin, tried
once, with each problem named.

The file is imported on its own exactly as discovery imports it
(:func:`workbench.engine.plugins.load_plugin_file`); its imports are read from the
source (a plugin may import only ``workbench.api`` from the workbench: the rest changes
without notice); each declared plugin's class goes through discovery's own checks and
its ``Params`` through :func:`workbench.api.params_problems`, the one validator that
discovery, the command line and the GUI's form use too. Then every plugin runs
through the engine (``run_attack`` / ``run_detector``, the code the GUI and the command
line use) with the demo model on pydicom's bundled ``CT_small.dcm`` and on synthetic RGB
photos: once to measure, once more to see that a seed reproduces the result, and once
with Cancel pressed after its first model call, to see that it stops promptly.

Plugin code runs in a worker thread so that a plugin that never returns is reported
("did not finish within N s") instead of hanging the check.

The parts live beside this module: the report (``report``), the inputs (``samples``),
watching a run (``watch``), and running and judging it (``runs``).
"""

from __future__ import annotations

import ast
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from .. import api
from . import PluginKitError
from .report import FAIL, PASS, SKIP, CheckReport
from .runs import resolved_source, run_attack_checks, run_detector_checks
from .samples import cached_model

__all__ = ["DEFAULT_TIMEOUT_S", "CheckReport", "check_plugin", "forbidden_imports"]

DEFAULT_TIMEOUT_S = 120.0


# --- reading the source --------------------------------------------------------------------
def forbidden_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import of a workbench module other than ``workbench.api``
    (read from the syntax tree, so imports inside functions count too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "workbench":  # from workbench import api, engine
                found += [(node.lineno, f"workbench.{a.name}") for a in node.names
                          if a.name != "api"]
            elif _forbidden(node.module):
                found.append((node.lineno, node.module))
    return sorted(found)


def _forbidden(module: str) -> bool:
    return (module == "workbench" or module.startswith("workbench.")) and \
        module != "workbench.api"


def _describe_params(params_cls: type) -> str:
    parts = []
    for s in api.param_specs(params_cls):
        if s.choices:
            parts.append(f"{s.name} = {s.default!r} of {list(s.choices)}")
        elif s.min is not None or s.max is not None:
            lo = "-inf" if s.min is None else s.min
            hi = "inf" if s.max is None else s.max
            parts.append(f"{s.name} = {s.default!r} in [{lo}, {hi}]")
        else:
            parts.append(f"{s.name} = {s.default!r}")
    return "; ".join(parts) or "none"



# --- the check -----------------------------------------------------------------------------
def check_plugin(path: Path | str, *, model: str = "demo",
                 timeout: float = DEFAULT_TIMEOUT_S) -> CheckReport:
    """Check one plugin file (see the module docstring). Raises PluginKitError when
    ``path`` is not a Python file; everything wrong with the plugin is in the report."""
    path = Path(path)
    if not path.exists():
        raise PluginKitError(f"{path}: no such file")
    if not path.is_file() or path.suffix != ".py":
        raise PluginKitError(f"{path}: not a plugin file (a .py file)")
    report = CheckReport(str(path))
    source = path.read_text(encoding="utf-8", errors="replace")

    start = time.perf_counter()
    module, error = _import(path)
    seconds = time.perf_counter() - start
    if module is None:
        report.add("import", FAIL, error)
    else:
        report.add("import", PASS, f"imported on its own, as discovery imports it "
                                   f"({seconds:.2f} s)")
    try:
        bad = forbidden_imports(source)
    except SyntaxError:
        bad = None  # the import line above says where
    if bad:
        for line, name in bad:
            report.add("imports", FAIL, f"line {line} imports {name} (plugins may import "
                                        "only workbench.api)")
    elif bad is not None:
        report.add("imports", PASS, "no workbench module but workbench.api")
    if module is None:
        return report

    from ..engine.plugins import _plugin_classes  # discovery's own definition of a plugin

    classes = _plugin_classes(module)
    if not classes:
        report.add("declares", FAIL, "no subclass of workbench.api.Attack or Detector "
                                     "(discovery would ignore the file)")
        return report
    from ..engine.plugins import PluginRegistry, discover_plugins

    registry = PluginRegistry(discover_plugins())
    # the file's own order, not the alphabet's (by identity: module values may be arrays)
    order = {id(v): i for i, v in enumerate(vars(module).values())}
    for cls in sorted(classes, key=lambda c: order.get(id(c), len(order))):
        _check_class(cls, path, classes, report, registry, model, timeout)
    return report


def _import(path: Path) -> tuple[ModuleType | None, str]:
    """Import ``path`` with discovery's loader; (module, "") or (None, the reason)."""
    from ..engine.plugins import load_plugin_file

    infos = load_plugin_file(path)
    failed = [i.error for i in infos if i.error.startswith("import failed")]
    if failed:
        return None, failed[0]
    resolved = path.resolve()
    for name, mod in list(sys.modules.items()):
        file = getattr(mod, "__file__", None)
        if name.startswith("workbench_plugin_") and file and Path(file).resolve() == resolved:
            return mod, ""
    return None, "import failed: the module was not registered"  # pragma: no cover


def _check_class(cls: type, path: Path, classes: list[type], report: CheckReport,
                 registry: Any, model_name: str, timeout: float) -> None:
    from ..engine.plugins import class_problems

    is_detector = issubclass(cls, api.Detector)
    name = getattr(cls, "name", "") if isinstance(getattr(cls, "name", ""), str) else ""
    label = name or cls.__name__

    declared = class_problems(cls)  # discovery's checks of the class; Params below
    for problem in declared:
        report.add("declaration", FAIL, problem, label)
    if not declared:
        if is_detector:
            what = (f"detector {cls.__name__}: needs {tuple(cls.needs) or 'nothing'}, "
                    f"calibratable {cls.calibratable}, version {cls.version}")
        else:
            what = (f"attack {cls.__name__}: threat {cls.threat!r}, scope {cls.scope!r}, "
                    f"version {cls.version}"
                    + (", needs a surrogate" if getattr(cls, "needs_surrogate", False) else ""))
        report.add("declaration", PASS, what, label)

    params_cls = getattr(cls, "Params", None)
    param_problems = api.params_problems(params_cls)  # discovery's, the CLI's and the form's
    for problem in param_problems:
        report.add("parameters", FAIL, problem, label)
    if not param_problems:
        report.add("parameters", PASS, _describe_params(params_cls), label)

    if name:
        _check_name(name, path, classes, report, registry)

    if any(p.endswith("is not implemented") for p in declared):
        return
    try:
        params = params_cls()  # the declared defaults, even invalid ones: the run still says more
        plugin = cls()
    except Exception as exc:
        report.add("run", SKIP, f"not run: cannot make the plugin with its default parameters "
                                f"({type(exc).__name__}: {exc})", label)
        return
    model = cached_model(model_name)
    if is_detector:
        run_detector_checks(plugin, label, params, model, path, report, timeout)
    else:
        run_attack_checks(plugin, label, params, model, path, report, registry, timeout)


def _check_name(name: str, path: Path, classes: list[type], report: CheckReport,
                registry: Any) -> None:
    resolved = str(path.resolve())
    others = [p.source for p in registry.plugins if p.name == name
              and resolved_source(p.source) != resolved]
    if sum(getattr(c, "name", None) == name for c in classes) > 1:
        others.append("another class in this file")
    if others:
        report.add("name", FAIL, f"another plugin is already called {name!r} ({others[0]}); "
                                 "the workbench loads only one of them: rename this one", name)
    else:
        report.add("name", PASS, f"no other plugin is called {name!r}", name)
