"""Modality and VOI LUT sequences, checked against pydicom's reference implementations."""

from __future__ import annotations

import numpy as np
import pydicom
from conftest import pydicom_test_file
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.sequence import Sequence

from workbench.imaging import load_image
from workbench.imaging.display import render


def _with_voi_lut(tmp_path):
    """A real MR file given a VOI LUT (a gamma curve) instead of its window."""
    ds = pydicom.dcmread(pydicom_test_file("MR_small.dcm"))
    arr = ds.pixel_array
    first, n = int(arr.min()), int(arr.max() - arr.min() + 1)
    item = Dataset()
    item.LUTDescriptor = [n, first, 12]
    item.LUTData = [int(4095 * (i / (n - 1)) ** 0.5) for i in range(n)]
    item["LUTData"].VR = "US"
    ds.VOILUTSequence = Sequence([item])
    del ds.WindowCenter, ds.WindowWidth
    path = tmp_path / "MR_small_voi_lut.dcm"
    ds.save_as(path)
    return path


def test_voi_lut_rendering_matches_pydicom(tmp_path):
    path = _with_voi_lut(tmp_path)
    image = load_image(path)
    assert image.has_voi_lut and not image.windows(0)
    ours = render(image, use_voi_lut=True, gray=True)
    ds = pydicom.dcmread(path)
    ref = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds, prefer_lut=True)
    expected = np.rint(ref.astype(np.float64) / max(ds.VOILUTSequence[0].LUTData) * 255)
    np.testing.assert_array_equal(ours, expected.astype(np.uint8))
    # and it is not just the linear window over the data range
    assert not np.array_equal(ours, render(image, gray=True))


def test_gui_starts_with_the_files_voi_lut(qtbot, tmp_path):
    from workbench.gui.main_window import MainWindow

    path = _with_voi_lut(tmp_path)
    w = MainWindow()
    qtbot.addWidget(w)
    w.open_paths([path])
    qtbot.waitUntil(lambda: w.view.image is not None, timeout=30_000)
    assert w.view.use_voi_lut
    assert w.preset_box.currentText() == "From file: VOI LUT"


def test_modality_lut_matches_pydicom(shared_data):
    path = shared_data / "dicom" / "orthanc" / "KarstenHilbertRF.dcm"
    image = load_image(path)
    vt = image.value_transform(0)
    assert vt.lut is not None
    ds = pydicom.dcmread(path)
    np.testing.assert_array_equal(vt.apply(image.pixels), apply_modality_lut(ds.pixel_array, ds))
