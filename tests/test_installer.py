"""The frozen app (PyInstaller one-folder build, installer/workbench.spec): the CI-sized
build without torch freezes, bundles the plugins, resources and a sample DICOM, and its
--smoke self test passes offscreen. The torch-inclusive build is measured by
benchmarks/freeze_build.py (GBs with CUDA wheels: too big for every CI run)."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT


def test_desktop_entry_names_the_command_and_icon():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(REPO_ROOT / "installer" / "workbench.desktop")
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application" and d["Exec"].split()[0] == "workbench"
    assert d["Icon"] == "workbench"
    assert (REPO_ROOT / "resources" / "icons" / "workbench.png").read_bytes()[:4] == \
        b"\x89PNG"


@pytest.mark.frozen
def test_frozen_app_without_torch_passes_its_smoke_test(tmp_path):
    pytest.importorskip("PyInstaller", reason="freezing needs PyInstaller (test extra)")
    env = dict(os.environ, WORKBENCH_FREEZE_TORCH="0")
    build = subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "ERROR",
         "--distpath", str(tmp_path / "dist"), "--workpath", str(tmp_path / "work"),
         str(REPO_ROOT / "installer" / "workbench.spec")],
        env=env, capture_output=True, text=True, timeout=1500, cwd=REPO_ROOT)
    assert build.returncode == 0, build.stderr[-3000:]
    app = tmp_path / "dist" / "workbench"
    internal = app / "_internal"
    assert (internal / "plugins" / "fgsm.py").is_file()
    assert (internal / "resources" / "models" / "demo_melanoma.json").is_file()
    assert (internal / "resources" / "samples" / "CT_small.dcm").is_file()
    assert not (internal / "torch").exists()  # the small build really left torch out
    run_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    run_env.update(QT_QPA_PLATFORM="offscreen", WORKBENCH_HOME=str(tmp_path / "home"))
    smoke = subprocess.run([str(app / "workbench"), "--smoke", "--no-torch"], env=run_env,
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    for step in ("sample DICOM", "main window", "load DICOM in the window",
                 "sign and verify"):
        assert f"ok   {step} (" in smoke.stdout, smoke.stdout
    assert "_internal/resources/samples/CT_small.dcm" in smoke.stdout  # the bundled one
    assert smoke.stdout.rstrip().endswith("selftest passed")
