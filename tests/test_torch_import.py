"""models.torch_import: torch's libraries loaded through libc's dlopen (the GIL released)
before the import, in a fresh interpreter each time so torch is not loaded already."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from workbench.models.torch_import import import_torch, preload_torch_libraries
loaded = preload_torch_libraries()
maps = open("/proc/self/maps").read()
before = {"loaded": loaded, "torch_module": "torch" in sys.modules,
          "libtorch_cpu_mapped": "libtorch_cpu.so" in maps}
import gc
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info))
torch = import_torch()
gc.callbacks.clear()
after = {"collections_during_import": len(collections), "gc_enabled": gc.isenabled(),
         "frozen": gc.get_freeze_count()}
# the network library works after the preload: a convolution and its gradient
x = torch.ones(1, 3, 8, 8, requires_grad=True)
y = torch.nn.functional.conv2d(x, torch.ones(2, 3, 3, 3)).sum()
y.backward()
print(json.dumps({**before, **after, "value": float(y), "grad": float(x.grad.sum()),
                  "cpu_libs": sorted({line.split("/")[-1].strip()
                                      for line in open("/proc/self/maps")
                                      if "libtorch_cpu.so" in line})}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the preload is Linux-only")
def test_preload_maps_torch_without_importing_it_and_torch_then_works() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, str(REPO)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["loaded"] == ["libtorch_global_deps.so", "libtorch_python.so"]
    # the heavy library is in the process before any Python module of torch is
    assert got["libtorch_cpu_mapped"] and not got["torch_module"]
    # no full collection held the GIL during the import, and what it made is frozen: a
    # later collection does not scan torch's ~270,000 objects again. Collection is back on.
    assert got["collections_during_import"] == 0 and got["gc_enabled"]
    assert got["frozen"] > 100_000
    # one copy of it, the one torch then uses
    assert got["cpu_libs"] == ["libtorch_cpu.so"]
    # 2 output channels x 6 x 6 positions x 27 ones; each input pixel's gradient counts the
    # windows over it (1,2,3,3,3,3,2,1 along each axis: 18 x 18) x 3 channels x 2 outputs
    assert got["value"] == 1944.0 and got["grad"] == 1944.0


RACE = r"""
import json, sys, threading, time
sys.path.insert(0, sys.argv[1])
from workbench.models.torch_import import import_torch
other = threading.Thread(target=import_torch)
other.start()
while "torch" not in sys.modules:  # the other thread's import has begun
    time.sleep(0.0005)
partial = not hasattr(sys.modules["torch"], "device")
torch = import_torch()  # a second caller meanwhile (a second load, a detector)
ok = hasattr(torch, "device") and hasattr(torch, "nn")
other.join()
print(json.dumps({"saw_partial": partial, "complete": ok, "device": str(torch.device("cpu"))}))
"""


def test_a_second_caller_during_the_import_gets_the_whole_module() -> None:
    """Two loads at once (the last model reloaded after the first paint and one the user
    asked for): the second must wait for the first's import, not take the partially
    initialised module from sys.modules ("partially initialized module 'torch' has no
    attribute 'device'", seen in one GUI start in three)."""
    out = subprocess.run([sys.executable, "-c", RACE, str(REPO)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["complete"] and got["device"] == "cpu", got
