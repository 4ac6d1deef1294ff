"""``workbench plugin new``: a ready-to-edit plugin file and its pytest file."""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from pathlib import Path

from . import PluginKitError
from .templates import TEMPLATES, render

KINDS = ("attack", "detector")
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")


@dataclass(frozen=True)
class PluginNames:
    """The spellings of one plugin: ``name`` (shown, hyphens), ``stem`` (file, snake
    case: a pytest file name must be a module name) and ``cls`` (its class)."""

    name: str
    stem: str
    cls: str


def plugin_names(name: str, kind: str) -> PluginNames:
    """The spellings of ``name`` (``my-attack`` or ``my_attack``), or PluginKitError."""
    if not _NAME.match(name):
        raise PluginKitError(f"{name!r} is not a plugin name: use lower-case letters, digits "
                             "and - or _, starting with a letter (e.g. my-attack)")
    cls = "".join(part.capitalize() for part in re.split(r"[-_]", name))
    if keyword.iskeyword(cls):  # "none" -> None, "true" -> True
        cls += kind.capitalize()
    return PluginNames(name.replace("_", "-"), name.replace("-", "_"), cls)


def new_plugin(name: str, kind: str = "attack", directory: Path | str | None = None
               ) -> tuple[Path, Path]:
    """Write ``DIR/STEM.py`` (a working plugin of ``kind``) and ``DIR/test_STEM.py``; DIR
    defaults to the user plugin folder, where the workbench finds it on its next start.
    Refuses to overwrite either file. Returns both paths."""
    if kind not in KINDS:
        raise PluginKitError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    names = plugin_names(name, kind)
    if directory is None:
        from ..home import user_plugins_dir

        folder = user_plugins_dir()
    else:
        folder = Path(directory).expanduser()
        if folder.exists() and not folder.is_dir():
            raise PluginKitError(f"{folder}: not a folder")
        folder.mkdir(parents=True, exist_ok=True)
    plugin_file = folder / f"{names.stem}.py"
    test_file = folder / f"test_{names.stem}.py"
    for path in (plugin_file, test_file):
        if path.exists():
            raise PluginKitError(f"{path} exists; not overwriting it (choose another name or "
                                 "move the file)")
    plugin_text, test_text = (render(t, name=names.name, stem=names.stem, cls=names.cls)
                              for t in TEMPLATES[kind])
    # Exclusive creation: a file that appeared since the check above is not clobbered.
    with open(plugin_file, "x", encoding="utf-8") as fh:
        fh.write(plugin_text)
    with open(test_file, "x", encoding="utf-8") as fh:
        fh.write(test_text)
    return plugin_file, test_file
