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


def spaced_window_ct(path: Path) -> Path:
    """CT_small saved with multi-valued strings that have a space before the backslash,
    as some writers pad each value: pydicom converts b"40 \\400" to ['40', '400'] and
    writes it back as b"40\\400", so the stored and the converted forms differ. The
    window's elements are read by the reader itself to show the image; the Series
    Description only by whoever lists the tags."""
    import pydicom
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    ds = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    for tag, vr, value in ((0x00281050, "DS", b"40 \\400 "), (0x00281051, "DS", b"400\\2000"),
                           (0x00281055, "LO", b"SOFT \\BONE  "),
                           (0x0008103E, "LO", b"AXIAL \\HEAD ")):
        ds[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)
    ds.save_as(path)
    return path


# The files that take longest, longest first (seconds on a quiet 2-core machine, measured
# 2026-12-03 with --durations). With one file per worker (--dist loadfile) xdist hands
# out files in collection order; by default it reorders them by their number of tests,
# which put the few-test, long files (harden, the frozen app) last, and one core then
# ran them alone for minutes while the other idled. pyproject's addopts turn that
# reordering off (--no-loadscope-reorder) and this puts the long files first: the
# shortest-last order that makes two workers finish together.
SLOW_FILES = (
    "test_harden.py",  # 190: adversarial fine-tune, then two evaluations
    "test_installer.py",  # 100: PyInstaller build and smoke test
    "test_gateway.py",  # 95: ten SIGKILLs of the gateway under load
    "test_dicom_signature_corpus.py",  # 85: dcmsign over the corpus
    "test_evaluate.py",  # 80
    "test_sweep.py",  # 75
    "test_cli_attack.py",  # 65
    "test_pacs.py",  # 60
    "test_ray_engine.py",  # 50
    "test_attacks_demo.py",  # 40
    "test_patch_attacks.py",  # 35
    "test_detectors.py",
    "test_transfer_attacks.py",
    "test_report.py",
    "test_verify.py",
    "test_gui_patch.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest
