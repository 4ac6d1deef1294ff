"""Shared test set-up: offscreen Qt, a private WORKBENCH_HOME, and the real test data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Must be set before any Qt import: CI has no display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Under pytest-xdist each worker is one of two processes on two cores: torch's default of
# one OpenMP thread per core would put four busy threads on two cores, and its spinning
# threads then wait on each other (the model tests took 195 s instead of 104 s). Set
# before torch is imported; subprocesses the tests start inherit it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("WORKBENCH_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _private_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own WORKBENCH_HOME: no test reads or writes the user's state."""
    home = tmp_path_factory.mktemp("workbench_home")
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test images not found at {SHARED_DATA} (../shared/data beside the "
                    "checkout, or set WORKBENCH_SHARED_DATA)")
    return SHARED_DATA


def pydicom_test_file(name: str) -> Path:
    """A real DICOM file bundled in pydicom's wheel (never downloaded)."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom's bundled test file {name} is not installed")
    return Path(path)


def pydicom_test_dir() -> Path:
    import pydicom

    return Path(pydicom.__file__).parent / "data" / "test_files"


@pytest.fixture
def window(qtbot):
    """A real, shown main window (offscreen), closed after the test."""
    from workbench.gui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


def altered_ct(folder: Path, *, new_uid: bool = False) -> tuple[Path, Path, object]:
    """pydicom's CT_small saved as an "original" and as a copy with a 10 x 15 square
    (rows 40-49, columns 60-74) raised by 200: (original, copy, the copy's dataset)."""
    import pydicom

    original = folder / "CT_small.dcm"
    ds = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    ds.save_as(original)
    arr = ds.pixel_array.copy()
    arr[40:50, 60:75] += 200
    ds.PixelData = arr.tobytes()
    if new_uid:
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
    copy = folder / "CT_small_altered.dcm"
    ds.save_as(copy)
    return original, copy, ds
