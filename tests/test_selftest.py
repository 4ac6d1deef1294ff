"""``workbench selftest`` (what the frozen app's --smoke runs): every step passes on this
installation, in a subprocess as a user would run it, and leaves the user's state alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

STEPS = ("sample DICOM", "main window", "load DICOM in the window", "demo model",
         "attack (fgsm)", "detector (feature-squeezing)", "sign and verify")


@pytest.mark.parametrize("flag", ["selftest", "--smoke"])
def test_selftest_runs_every_step(tmp_path, flag):
    home = tmp_path / "home"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", WORKBENCH_HOME=str(home),
               PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "workbench", flag], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for step in STEPS:
        assert any(line.startswith(f"ok   {step} (") for line in lines), (step, lines)
    assert "one pixel changed: tampered" in done.stdout
    assert lines[-1] == "selftest passed"
    assert not home.exists() or not any(home.iterdir())  # a private home was used


def test_selftest_without_torch_skips_the_model_steps(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run([sys.executable, "-m", "workbench", "selftest", "--no-torch"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "demo model" not in done.stdout and "ok   sign and verify" in done.stdout
