"""Plugin discovery: the built-in ``plugins/`` folder, the user plugin folder, and the
``workbench.plugins`` entry-point group. Each plugin file is imported in isolation; one
that fails to import or declares itself wrongly is listed as broken with the reason,
and the rest load.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .. import api

ENTRY_POINT_GROUP = "workbench.plugins"


@dataclass
class PluginInfo:
    name: str
    kind: str  # "attack" (detectors follow)
    source: str  # file path or entry point
    status: str  # "ok" or "broken"
    error: str = ""
    cls: type | None = None
    summary: str = ""
    threat: str = ""
    scope: str = ""
    version: str = ""

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


def declaration_problems(cls: type) -> list[str]:
    """What is wrong with an Attack subclass's declaration (empty list = fine)."""
    problems = []
    if not isinstance(getattr(cls, "name", None), str) or not cls.name.strip():
        problems.append("no name")
    if not isinstance(getattr(cls, "summary", None), str) or not cls.summary.strip():
        problems.append("no summary")
    if getattr(cls, "threat", None) not in api.THREATS:
        problems.append(f"threat {getattr(cls, 'threat', None)!r} is not one of {api.THREATS}")
    if getattr(cls, "scope", None) not in api.SCOPES:
        problems.append(f"scope {getattr(cls, 'scope', None)!r} is not one of {api.SCOPES}")
    params = getattr(cls, "Params", None)
    if params is None or not dataclasses.is_dataclass(params):
        problems.append("Params is not a dataclass")
    else:
        for f in dataclasses.fields(params):
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.append(f"parameter {f.name} has no default")
        try:
            for s in api.param_specs(params):
                if s.min is not None and s.max is not None and s.min > s.max:
                    problems.append(f"parameter {s.name}: min {s.min} > max {s.max}")
            api.make_params(params, {})
        except (api.ParamError, TypeError) as exc:
            problems.append(f"default parameters are invalid: {exc}")
    if getattr(cls, "run", None) is api.Attack.run:
        problems.append("run() is not implemented")
    return problems


def _info_from_class(cls: type, source: str) -> PluginInfo:
    problems = declaration_problems(cls)
    name = getattr(cls, "name", "") or cls.__name__
    common = {key: str(getattr(cls, key, "")) for key in ("summary", "threat", "scope", "version")}
    if problems:
        return PluginInfo(name, "attack", source, "broken", "; ".join(problems), None, **common)
    return PluginInfo(name, "attack", source, "ok", "", cls, **common)


def _attack_classes(module: ModuleType) -> list[type]:
    return [obj for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, api.Attack) and obj is not api.Attack
            and obj.__module__ == module.__name__]


def load_plugin_file(path: Path) -> list[PluginInfo]:
    """Import one plugin file on its own and describe the attacks it declares."""
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
        return [PluginInfo(path.stem, "attack", str(path), "broken", f"import failed: {tb}",
                           None)]
    classes = _attack_classes(module)
    if not classes:
        return []  # helper modules are not plugins
    return [_info_from_class(c, str(path)) for c in classes]


def _entry_point_plugins() -> list[PluginInfo]:
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
        classes = [obj] if inspect.isclass(obj) else _attack_classes(obj)
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
            if not f.name.startswith("_"):
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
    """The discovered plugins by name."""

    def __init__(self, plugins: list[PluginInfo] | None = None) -> None:
        self.plugins = plugins if plugins is not None else discover_plugins()

    def get(self, name: str) -> PluginInfo:
        for p in self.plugins:
            if p.name == name:
                return p
        raise KeyError(f"no plugin named {name!r}; available: "
                       + ", ".join(p.name for p in self.plugins if p.ok))

    def attacks(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.kind == "attack"]

    def create(self, name: str) -> Any:
        info = self.get(name)
        return info.create()
