"""One home for state, and the built-in demo study."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from workbench import demo
from workbench.home import (
    keys_dir,
    ledger_file,
    settings_file,
    trust_store_dir,
    user_plugins_dir,
    workbench_home,
)
from workbench.imaging import load_image


def test_all_state_lives_under_workbench_home(tmp_path, monkeypatch):
    home = tmp_path / "state"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    assert workbench_home() == home and home.is_dir()
    for p in (settings_file(), keys_dir(), trust_store_dir(), ledger_file(), user_plugins_dir()):
        assert home in p.parents
    # the private keys' folder is neither group- nor world-readable
    assert keys_dir().stat().st_mode & 0o077 == 0


def test_default_home_is_the_platform_data_dir(monkeypatch):
    import platformdirs

    monkeypatch.delenv("WORKBENCH_HOME")
    expected = Path(platformdirs.user_data_dir("workbench", appauthor=False))
    assert workbench_home(create=False) == expected


def test_gui_settings_are_written_under_workbench_home(qtbot, _private_home):
    from workbench.gui.settings import add_recent_path, recent_paths

    add_recent_path("/some/study.dcm")
    assert recent_paths() == ["/some/study.dcm"]
    assert (Path(_private_home) / "settings.ini").is_file()


def test_demo_files_are_real_and_load(shared_data):
    files = demo.demo_files()
    names = {f.name for f in files}
    assert {"CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "RG1_J2KR.dcm"} <= names
    photos = [f for f in files if f.suffix == ".jpg"]
    assert len(photos) >= 2 and all(shared_data in f.parents for f in photos)
    assert not any(f.name == demo.SYNTHETIC_NAME for f in files)
    for f in files:
        assert load_image(f).rows > 0


def test_demo_without_shared_data_uses_a_labelled_synthetic_photo(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_SHARED_DATA", str(tmp_path / "absent"))
    files = demo.demo_files()
    synthetic = [f for f in files if f.name == demo.SYNTHETIC_NAME]
    assert len(synthetic) == 1
    image = load_image(synthetic[0])
    assert image.kind == "photo" and image.photometric == "RGB"
    rgb = image.pixels.astype(int)
    # a brown lesion darker than the surrounding skin, inside a dark dermoscope rim
    h, w = rgb.shape[:2]
    centre = rgb[h // 2 - 20: h // 2 + 20, w // 2 - 20: w // 2 + 20].mean(axis=(0, 1))
    skin = rgb[h // 2 - 10: h // 2 + 10, int(w * 0.85): int(w * 0.88)].mean(axis=(0, 1))
    corner = rgb[:20, :20].mean()
    assert centre.sum() < skin.sum() - 150 and corner < 20
    assert skin[0] > skin[2]  # skin is reddish, not blue
    # the SYNTHETIC label is burned into the pixels (white text near the bottom)
    bottom = cv2.cvtColor(np.ascontiguousarray(image.pixels), cv2.COLOR_RGB2GRAY)[int(h * 0.9):]
    assert (bottom > 240).sum() > 200
