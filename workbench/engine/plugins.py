"""Plugin discovery: the built-in ``plugins/`` folder, the user plugin folder, and the
``workbench.plugins`` entry-point group. Each plugin file is imported in isolation; one
that fails to import or declares itself wrongly is listed as broken with the reason,
and the rest load.

A file may declare attacks (subclasses of ``api.Attack``, kind "attack") and detectors
(subclasses of ``api.Detector``, kind "detector"); each kind has its own declaration
checks, and both have their ``Params`` checked by ``api.params_problems``, the same
check ``workbench plugin check``, the command line and the GUI's form use.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .. import api

ENTRY_POINT_GROUP = "workbench.plugins"


@dataclass
class PluginInfo:
    name: str
    kind: str  # "attack" or "detector"
    source: str  # file path or entry point
    status: str  # "ok" or "broken"
    error: str = ""
    cls: type | None = None
    summary: str = ""
    threat: str = ""
    scope: str = ""
    version: str = ""
    needs: tuple[str, ...] = ()  # detectors: what analyze() requires (a subset of api.NEEDS)
    calibratable: bool = False  # detectors: the score can be thresholded on clean images

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def create(self) -> Any:
        if self.cls is None:
            raise RuntimeError(f"plugin {self.name} is broken: {self.error}")
        return self.cls()


def builtin_plugin_dir() -> Path | None:
    """The repository's ``plugins/`` folder (installed as the ``plugins`` package too)."""
    here = Path(__file__).resolve().parents[2] / "plugins"
    if here.is_dir():
        return here
    spec = importlib.util.find_spec("plugins")
    if spec and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return None


def _name_problems(cls: type) -> list[str]:
    problems = []
    if not isinstance(getattr(cls, "name", None), str) or not cls.name.strip():
        problems.append("no name")
    if not isinstance(getattr(cls, "summary", None), str) or not cls.summary.strip():
        problems.append("no summary")
    return problems


def declaration_problems(cls: type) -> list[str]:
    """What is wrong with an Attack or Detector subclass's declaration (empty = fine):
    its class attributes, then its ``Params`` as the API's one validator sees them."""
    return class_problems(cls) + api.params_problems(getattr(cls, "Params", None))


def class_problems(cls: type) -> list[str]:
    """What is wrong with the class attributes of an Attack or Detector subclass (its
    ``Params`` aside: :func:`workbench.api.params_problems` says that)."""
    if issubclass(cls, api.Detector):
        return _detector_problems(cls)
    problems = _name_problems(cls)
    if getattr(cls, "threat", None) not in api.THREATS:
        problems.append(f"threat {getattr(cls, 'threat', None)!r} is not one of {api.THREATS}")
    if getattr(cls, "scope", None) not in api.SCOPES:
        problems.append(f"scope {getattr(cls, 'scope', None)!r} is not one of {api.SCOPES}")
    if getattr(cls, "run", None) is api.Attack.run:
        problems.append("run() is not implemented")
    return problems


def _detector_problems(cls: type) -> list[str]:
    problems = _name_problems(cls)
    needs = getattr(cls, "needs", None)
    if not isinstance(needs, (tuple, list)) or not all(isinstance(n, str) for n in needs):
        problems.append(f"needs {needs!r} is not a tuple of names from {api.NEEDS}")
    else:
        unknown = [n for n in needs if n not in api.NEEDS]
        if unknown:
            problems.append(f"needs {', '.join(map(repr, unknown))}: not in {api.NEEDS}")
    if not isinstance(getattr(cls, "calibratable", None), bool):
        problems.append("calibratable is not True or False")
    if getattr(cls, "analyze", None) is api.Detector.analyze:
        problems.append("analyze() is not implemented")
    return problems


def _kind(cls: type) -> str:
    return "detector" if issubclass(cls, api.Detector) else "attack"


def _info_from_class(cls: type, source: str) -> PluginInfo:
    problems = declaration_problems(cls)
    name = getattr(cls, "name", "") or cls.__name__
    kind = _kind(cls)
    common: dict[str, Any] = {key: str(getattr(cls, key, ""))
                              for key in ("summary", "version")}
    if kind == "attack":
        common.update(threat=str(getattr(cls, "threat", "")), scope=str(getattr(cls, "scope", "")))
    else:
        needs = getattr(cls, "needs", ())
        common.update(needs=tuple(needs) if isinstance(needs, (tuple, list)) else (),
                      calibratable=getattr(cls, "calibratable", False) is True)
    if problems:
        return PluginInfo(name, kind, source, "broken", "; ".join(problems), None, **common)
    return PluginInfo(name, kind, source, "ok", "", cls, **common)


def _plugin_classes(module: ModuleType) -> list[type]:
    """The Attack and Detector subclasses a module defines (not the ones it imports)."""
    return [obj for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, (api.Attack, api.Detector))
            and obj not in (api.Attack, api.Detector)
            and obj.__module__ == module.__name__]


# A file that does not import cannot say what it declares: its source text can.
_DETECTOR_CLASS = re.compile(r"^class\s+\w+\s*\(\s*(?:\w+\.)*Detector\s*\)", re.MULTILINE)
_ATTACK_CLASS = re.compile(r"^class\s+\w+\s*\(\s*(?:\w+\.)*Attack\s*\)", re.MULTILINE)


def _kind_from_source(path: Path) -> str:
    """The kind a file declares, read from its text: detector when it declares only
    detectors, else attack (the older default)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "attack"
    if _DETECTOR_CLASS.search(text) and not _ATTACK_CLASS.search(text):
        return "detector"
    return "attack"


def load_plugin_file(path: Path) -> list[PluginInfo]:
    """Import one plugin file on its own and describe the attacks and detectors it
    declares."""
    module_name = f"workbench_plugin_{abs(hash(str(path.resolve())))}_{path.stem}"
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError("not a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses need the module registered
        spec.loader.exec_module(module)
    except BaseException as exc:  # a plugin must never take the application down
        sys.modules.pop(module_name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return [PluginInfo(path.stem, _kind_from_source(path), str(path), "broken",
                           f"import failed: {tb}", None)]
    classes = _plugin_classes(module)
    if not classes:
        return []  # helper modules are not plugins
    return [_info_from_class(c, str(path)) for c in classes]


def _entry_point_plugins() -> list[PluginInfo]:
    import importlib.metadata  # 18 ms: only when discovery runs, not at start-up

    out = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            out.append(PluginInfo(ep.name, "attack", f"entry point {ep.value}", "broken",
                                  f"import failed: {type(exc).__name__}: {exc}"))
            continue
        classes = [obj] if inspect.isclass(obj) else _plugin_classes(obj)
        out.extend(_info_from_class(c, f"entry point {ep.value}") for c in classes)
    return out


def discover_plugins(extra_dirs: list[Path] | None = None, *, user_dir: bool = True,
                     entry_points: bool = True) -> list[PluginInfo]:
    """All plugins, built-in first. A name declared twice keeps the first and marks the
    later one broken ("duplicate name"), so what runs is never ambiguous."""
    dirs: list[Path] = []
    builtin = builtin_plugin_dir()
    if builtin:
        dirs.append(builtin)
    if user_dir:
        from ..home import user_plugins_dir

        dirs.append(user_plugins_dir())
    dirs.extend(extra_dirs or [])
    found: list[PluginInfo] = []
    for d in dirs:
        for f in sorted(Path(d).glob("*.py")):
            if f.name.startswith("_"):
                continue
            if builtin is None or Path(d) != builtin:
                from .plugin_probe import probe

                problem = probe(f)  # in a child process first: hangs and exits stay there
                if problem is not None:
                    found.append(PluginInfo(f.stem, _kind_from_source(f), str(f), "broken",
                                            problem, None))
                    continue
            found.extend(load_plugin_file(f))
    if entry_points:
        found.extend(_entry_point_plugins())
    seen: set[str] = set()
    for info in found:
        if info.ok and info.name in seen:
            info.status, info.error, info.cls = "broken", f"duplicate name {info.name!r}", None
        seen.add(info.name)
    return found


class PluginRegistry:
    """The discovered plugins by name. Without a list, discovery runs when the plugins are
    first asked for (the window paints before it pays for importing every plugin file)."""

    def __init__(self, plugins: list[PluginInfo] | None = None,
                 extra_dirs: list[Path] | Callable[[], list[Path]] | None = None) -> None:
        self._plugins = plugins
        self._extra_dirs = extra_dirs  # a callable is asked when discovery runs

    @property
    def plugins(self) -> list[PluginInfo]:
        if self._plugins is None:
            dirs = self._extra_dirs() if callable(self._extra_dirs) else self._extra_dirs
            self._plugins = discover_plugins(dirs)
        return self._plugins

    @property
    def discovered(self) -> bool:
        return self._plugins is not None

    def reload(self, extra_dirs: list[Path] | None = None) -> list[PluginInfo]:
        """Discover again. The list is replaced in place: windows that share it (the
        Evaluate window) see the new plugins too."""
        self._extra_dirs = extra_dirs
        found = discover_plugins(extra_dirs)
        if self._plugins is None:
            self._plugins = found
        else:
            self._plugins[:] = found
        return self._plugins

    def get(self, name: str, kind: str | None = None) -> PluginInfo:
        """The plugin called ``name`` (of ``kind``, "attack" or "detector", when given)."""
        for p in self.plugins:
            if p.name == name and (kind is None or p.kind == kind):
                return p
        # a plugin whose file failed to import is known only by its file name: name its
        # failure rather than saying there is no such plugin
        wanted = name.replace("-", "_").lower()
        for p in self.plugins:
            if not p.ok and p.name.replace("-", "_").lower() == wanted:
                return p
        raise KeyError(f"no {kind or 'plugin'} named {name!r}; available: "
                       + ", ".join(p.name for p in self.plugins
                                   if p.ok and (kind is None or p.kind == kind)))

    def attacks(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.kind == "attack"]

    def detectors(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.kind == "detector"]

    def create(self, name: str) -> Any:
        info = self.get(name)
        return info.create()
