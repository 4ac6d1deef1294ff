"""Import a plugin file in a child process first, with a time limit: a file that loops at
import, calls ``os._exit`` or crashes the interpreter would otherwise hang or kill the
workbench (the GUI, ``workbench plugins``, ``detect``). Only files that import cleanly
there are imported here. The verdict is cached per file version (path, size, mtime), so
each version costs one child process, once.

Built-in plugins (shipped and tested with the workbench) are not probed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE_TIMEOUT_S = 30.0
_CACHE_NAME = "plugin_probes.json"
_CHILD = ("import importlib.util, sys\n"
          "spec = importlib.util.spec_from_file_location('workbench_plugin_probe', sys.argv[1])\n"
          "module = importlib.util.module_from_spec(spec)\n"
          "sys.modules['workbench_plugin_probe'] = module\n"
          "spec.loader.exec_module(module)\n")


def _cache_file() -> Path:
    from ..home import workbench_home

    return workbench_home() / "cache" / _CACHE_NAME


def _version(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _read_cache() -> dict:
    try:
        data = json.loads(_cache_file().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(cache: dict) -> None:
    path = _cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass  # a cache only: probing again next time is correct, just slower


def probe(path: Path, timeout: float | None = None) -> str | None:
    """None when ``path`` imports cleanly in a child process, else why not (one line);
    ``timeout`` defaults to :data:`PROBE_TIMEOUT_S`."""
    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    key = str(path.resolve())
    cache = _read_cache()
    version = _version(path)
    hit = cache.get(key)
    if isinstance(hit, dict) and hit.get("version") == version:
        return hit.get("problem")
    problem = _run_child(path, timeout)
    cache[key] = {"version": version, "problem": problem}
    _write_cache(cache)
    return problem


def _run_child(path: Path, timeout: float) -> str | None:
    try:
        run = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True,
                             text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                             check=False)
    except subprocess.TimeoutExpired:
        return (f"import did not finish in {timeout:.0f} s (a loop or a wait at import "
                "time?); not loaded")
    except OSError as exc:
        return f"cannot start a process to check it ({exc})"
    if run.returncode == 0:
        return None
    lines = [ln for ln in run.stderr.strip().splitlines() if ln.strip()]
    if lines:
        return f"import failed: {lines[-1].strip()}"
    return f"the interpreter exited with code {run.returncode} while importing it"
