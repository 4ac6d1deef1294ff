"""``workbench selftest``: proof that an installation (a frozen app included) works.

Opens the main window offscreen, loads a bundled DICOM, runs one short attack and one
detector, signs a copy of the image and verifies it (and that a changed copy fails), then
exits 0; each step prints one line with its time. ``--no-torch`` skips the model steps
(for a build without torch). All state goes to a temporary WORKBENCH_HOME: a self test
never touches the user's keys, ledger or settings.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def sample_dicom() -> Path:
    """A small real DICOM: bundled beside the app (frozen) or pydicom's CT_small."""
    from .engine.plugins import builtin_plugin_dir

    base = builtin_plugin_dir()
    candidates = []
    if base is not None:
        candidates.append(base.parent / "resources" / "samples" / "CT_small.dcm")
    candidates.append(Path(__file__).resolve().parents[1] / "resources" / "samples" /
                      "CT_small.dcm")
    for c in candidates:
        if c.is_file():
            return c
    from pydicom.data import get_testdata_file

    found = get_testdata_file("CT_small.dcm", download=False)
    if found is None:
        raise FileNotFoundError("no sample DICOM (resources/samples/CT_small.dcm) and "
                                "pydicom's test files are not installed")
    return Path(found)


def run_selftest(*, torch_steps: bool = True, out: Callable[[str], None] = print) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    home = tempfile.mkdtemp(prefix="workbench-selftest-")
    previous = os.environ.get("WORKBENCH_HOME")
    os.environ["WORKBENCH_HOME"] = home
    failures = 0

    def step(name: str, fn: Callable[[], str]) -> Any:
        nonlocal failures
        start = time.perf_counter()
        try:
            detail = fn()
        except Exception as exc:  # a self test reports every failure and goes on
            failures += 1
            out(f"FAIL {name}: {type(exc).__name__}: {exc}")
            return None
        out(f"ok   {name} ({time.perf_counter() - start:.2f} s){': ' + detail if detail else ''}")
        return detail

    state: dict[str, Any] = {}
    try:
        step("sample DICOM", lambda: str(state.setdefault("dicom", sample_dicom())))
        step("main window", lambda: _open_window(state))
        if "window" in state and "dicom" in state:
            step("load DICOM in the window", lambda: _load(state))
        if torch_steps:
            step("demo model", lambda: _model(state))
            if "model" in state and "image" in state:
                step("attack (fgsm)", lambda: _attack(state))
                step("detector (feature-squeezing)", lambda: _detector(state))
        if "dicom" in state:
            step("sign and verify", lambda: _sign_verify(state, Path(home)))
    finally:
        window = state.get("window")
        if window is not None:
            window.close()
        if previous is None:
            os.environ.pop("WORKBENCH_HOME", None)
        else:
            os.environ["WORKBENCH_HOME"] = previous
        shutil.rmtree(home, ignore_errors=True)
    out("selftest passed" if not failures else f"selftest FAILED: {failures} step(s)")
    return 0 if not failures else 1


def _open_window(state: dict[str, Any]) -> str:
    from .gui.headless import open_main_window

    state["app"], state["window"] = open_main_window()
    return f"platform {state['app'].platformName()}"


def _load(state: dict[str, Any]) -> str:
    from .gui.headless import wait_for

    w = state["window"]
    w.open_paths([state["dicom"]])
    if not wait_for(state["app"], lambda: w.view.image is not None, 60):
        raise RuntimeError("the image did not load within 60 s")
    state["image"] = img = w.view.image
    return f"{img.modality} {img.columns}x{img.rows}"


def _model(state: dict[str, Any]) -> str:
    from .models.zoo import load_model

    state["model"] = load_model("demo")
    return state["model"].card.name


def _attack(state: dict[str, Any]) -> str:
    import torch

    from .api import image_tensor
    from .engine.attack_runner import run_attack
    from .engine.plugins import PluginRegistry

    plugin = PluginRegistry().get("fgsm", kind="attack").create()
    x = image_tensor(state["image"])
    outcome = run_attack(plugin, state["model"], x, params={"eps": 0.01})
    linf = float(outcome.linf[0])
    if not (0 < linf <= 0.01 + 1e-6) or not torch.isfinite(outcome.adversarial).all():
        raise RuntimeError(f"unexpected perturbation (L-inf {linf})")
    return f"L∞ {linf:.4f}, {outcome.model_calls} model calls"


def _detector(state: dict[str, Any]) -> str:
    from .engine.detector_runner import run_detector
    from .engine.plugins import PluginRegistry

    det = PluginRegistry().get("feature-squeezing", kind="detector").create()
    o = run_detector(det, state["image"], model=state["model"])
    if o.score is None:
        raise RuntimeError(f"no score: {o.explanation}")
    return f"score {o.score:.4g} ({o.verdict})"


def _sign_verify(state: dict[str, Any], home: Path) -> str:
    import pydicom

    from .provenance.records import keys
    from .provenance.records.signing import sign_image
    from .provenance.records.verify import verify_image

    copy = home / "sample.dcm"
    shutil.copy(state["dicom"], copy)
    info = keys.generate_key("selftest passphrase", label="selftest")
    sign_image(copy, keys.load_private_key(info.fingerprint, "selftest passphrase"))
    good = verify_image(copy)
    if not good.ok:
        raise RuntimeError(f"the signed copy did not verify: {good.summary}")
    ds = pydicom.dcmread(copy)
    arr = ds.pixel_array.copy()
    arr.flat[0] += 1
    ds.PixelData = arr.tobytes()
    ds.save_as(copy)
    bad = verify_image(copy)
    if bad.ok:
        raise RuntimeError("a changed pixel was not detected")
    return f"intact: {good.verdict}; one pixel changed: {bad.verdict}"


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="workbench selftest", description=__doc__.split("\n")[0])
    p.add_argument("--no-torch", action="store_true", help="skip the model steps")
    args = p.parse_args(argv)
    return run_selftest(torch_steps=not args.no_torch)
