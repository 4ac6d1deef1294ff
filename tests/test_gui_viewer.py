"""Viewer basics on real radiographs: invert (display only), the percentile auto-window
that projection images get, and a window that cannot be dragged past the data."""

from __future__ import annotations

import numpy as np

TIMEOUT = 60_000


def _open_cr(qtbot, w, shared_data):
    cr = shared_data / "dicom" / "pydicom-data" / "RG1_J2KR.dcm"  # CR chest, JPEG 2000
    w.open_paths([cr])
    qtbot.waitUntil(lambda: w.view.image is not None, timeout=TIMEOUT)
    return w.view.image


def test_invert_flips_the_display_and_leaves_the_image_alone(qtbot, window, shared_data):
    w = window
    image = _open_cr(qtbot, w, shared_data)
    pixels = image.pixels.copy()
    w.view.grab()  # paint: renders what is shown
    before = w.view._rendered.copy()
    w.invert_action.trigger()
    w.view.grab()
    assert np.array_equal(w.view._rendered, 255 - before)
    assert np.array_equal(image.pixels, pixels)  # display only
    w.invert_action.trigger()
    w.view.grab()
    assert np.array_equal(w.view._rendered, before)


def test_projection_radiographs_get_a_percentile_window(qtbot, window, shared_data):
    w = window
    image = _open_cr(qtbot, w, shared_data)
    box = w.preset_box
    labels = [box.itemText(i) for i in range(box.count())]
    auto = next(i for i, t in enumerate(labels) if t.startswith("Auto: 0.5–99.5 percentile"))
    box.setCurrentIndex(auto)
    box.activated.emit(auto)
    win = w.view.window
    values = image.value_transform(0).apply(np.asarray(image.frame(0)))
    low, high = win.center - win.width / 2, win.center + win.width / 2
    inside = np.mean((values >= low) & (values <= high))
    assert 0.98 <= inside <= 1.0  # about 99% of the pixels, measured on every pixel
    assert win.width < values.max() - values.min()  # narrower than the full range


def test_window_width_stops_at_the_data_range(qtbot, window, shared_data):
    w = window
    image = _open_cr(qtbot, w, shared_data)
    lo, hi = image.value_range()
    w.view._drag_window(1e6, 1e6)  # a drag far past the ends
    assert w.view.window.width <= hi - lo and lo <= w.view.window.center <= hi


def test_help_pages_and_docks_come_back_from_the_view_menu(qtbot, window):
    w = window
    names = [a.text() for a in w.docks_menu.actions()]
    assert names == ["Study", "Model", "Attack", "Provenance", "Metadata", "Detectors"]
    detectors_dock = next(d for d in w.docks if d.windowTitle() == "Detectors")
    detectors_dock.close()
    assert not detectors_dock.isVisible()
    next(a for a in w.docks_menu.actions() if a.text() == "Detectors").trigger()
    assert detectors_dock.isVisible()
    w.help_actions["first steps"].trigger()
    assert "Run the detectors" in w.help_box.text()
    w.help_box.accept()
    w.help_actions["mouse and keys"].trigger()
    assert "window / level" in w.help_box.text()
    w.help_box.accept()
    w.help_actions["about"].trigger()
    about = w.help_box.text()
    assert "<b>demo</b>" in about and "fits dermoscopy photographs" in about
    w.help_box.accept()


def test_study_rows_describe_images_before_they_are_opened(qtbot, window, shared_data,
                                                           tmp_path):
    import shutil

    from conftest import pydicom_test_file

    w = window
    ct, mr = pydicom_test_file("CT_small.dcm"), pydicom_test_file("MR_small.dcm")
    photo = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000002.jpg"
    twin = tmp_path / "copy" / "CT_small.dcm"  # the same name in another folder
    twin.parent.mkdir()
    shutil.copy(ct, twin)
    w.open_paths([ct, mr, photo, twin])
    rows = w.study_list
    qtbot.waitUntil(lambda: rows.item_for(str(mr)).text(1) == "MR", timeout=TIMEOUT)
    qtbot.waitUntil(lambda: rows.item_for(str(photo)).text(2) == "1022×767", timeout=TIMEOUT)
    assert w.study.get(str(mr)).image is None  # from the header: not decoded
    mr_row = rows.item_for(str(mr))
    assert (mr_row.text(2), mr_row.text(3)) == ("64×64", "1")
    assert rows.item_for(str(photo)).text(1) == "XC"
    # two files called CT_small.dcm: each row names its folder
    assert rows.item_for(str(twin)).text(0) == "copy/CT_small.dcm"
    assert rows.item_for(str(ct)).text(0) == f"{ct.parent.name}/CT_small.dcm"
