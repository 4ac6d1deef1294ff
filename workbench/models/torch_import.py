"""Import torch from a worker thread without freezing the GUI thread.

A first ``import torch`` maps and relocates a few hundred megabytes of shared libraries
(``libtorch_cpu.so`` ~320 ms, ``libtorch_cuda.so`` ~150 ms on the 2-core machines) and runs
their static constructors. CPython makes the ``dlopen`` of an extension module holding the
GIL, and so does ``ctypes.CDLL``, so the GUI thread cannot run during any of it: the Model
dock's first load froze the window for 335-408 ms (``benchmarks/gui_latency.py``).

A call through ctypes to libc's own ``dlopen`` is a foreign-function call, and ctypes
releases the GIL around those. So the libraries are loaded that way first, in the order
and with the flags torch uses itself (``libtorch_global_deps.so`` with RTLD_GLOBAL, as
``torch._load_global_deps`` does; then ``libtorch_python.so``, which pulls in libtorch,
libtorch_cpu, libtorch_cuda and c10, with RTLD_LOCAL, as the import of ``torch._C`` does).
The import that follows finds them loaded (the loader matches by soname) and is left with
its Python work, which yields the GIL every switch interval like any other Python code.

Linux only; anywhere else, or when a library is not where torch keeps it (a different
build), it is a plain ``import torch``: the preload is an optimisation, never a condition.

The other stall is the cyclic garbage collector. ``import torch`` and ``torchvision`` make
some 270,000 objects; while they are made, full collections run (40-140 ms each, and the
GIL is held throughout), and every full collection afterwards scans them all again (216 ms
at 370,000 objects, seen in the middle of opening the mammogram). So automatic collection
is paused during the imports and what exists after them is frozen (``gc.freeze``: moved
to a generation collections never scan). Those objects are modules, classes and functions
that live as long as the process; reference counting still frees anything that is not in
a cycle.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib.util
import sys
import threading
from pathlib import Path
from typing import Any

_RTLD_NOW = 2
_RTLD_GLOBAL = 0x100
# One preload at a time, waited for on a Python lock (which lets go of the GIL): a second
# thread's ctypes.CDLL(None) would wait for the loader's lock, which the first thread's
# dlopen holds for ~500 ms, while holding the GIL (a 439 ms GUI stall when the model and
# its surrogate load together).
_PRELOAD_LOCK = threading.Lock()
_preloaded: list[str] = []
# (file under torch/lib, whether torch itself loads it with RTLD_GLOBAL)
_PRELOAD = (("libtorch_global_deps.so", True), ("libtorch_python.so", False))


def import_torch() -> Any:
    """``import torch``, with its shared libraries loaded first without the GIL and no
    collection while it runs."""
    if "torch" not in sys.modules:
        with collection_paused():
            if sys.platform.startswith("linux"):
                preload_torch_libraries()
            import torch
    # Not sys.modules["torch"]: while another thread is still importing it, that is a
    # partially initialised module (no torch.device yet); the import statement waits for
    # the other thread's import to finish.
    import torch

    return torch


def import_torchvision() -> Any:
    """``import torchvision`` (after torch), with no collection while it runs."""
    import_torch()
    if "torchvision" not in sys.modules:
        with collection_paused():
            import torchvision
    import torchvision  # as above: waits for another thread's import

    return torchvision


@contextlib.contextmanager
def collection_paused() -> Any:
    """No automatic garbage collection inside; on leaving, every object that exists is
    frozen (see the module docstring) and collection resumes as it was. Two threads may
    be inside at once: the one that found collection on turns it back on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def preload_torch_libraries() -> list[str]:
    """dlopen torch's libraries through libc (GIL released); the names loaded, in order.
    Stops at the first one that is missing or fails: torch's import then loads the rest
    its own way and reports any real problem itself."""
    with _PRELOAD_LOCK:
        if not _preloaded:
            _preloaded.extend(_preload())
        return list(_preloaded)


def _preload() -> list[str]:
    spec = importlib.util.find_spec("torch")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return []
    lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    try:
        libc = ctypes.CDLL(None)
        dlopen = libc.dlopen
    except (OSError, AttributeError):
        return []
    dlopen.restype = ctypes.c_void_p
    dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    loaded: list[str] = []
    for name, is_global in _PRELOAD:
        path = lib / name
        if not path.is_file():
            break
        flags = _RTLD_NOW | (_RTLD_GLOBAL if is_global else 0)
        if not dlopen(str(path).encode(), flags):
            break
        loaded.append(name)
    return loaded
