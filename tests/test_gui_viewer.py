"""Viewer basics on real radiographs: invert (display only), the percentile auto-window
that projection images get, and a window that cannot be dragged past the data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

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
    assert names == ["Study", "Model", "Provenance", "Detectors", "Attack", "Metadata"]
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


def test_the_image_takes_most_of_the_first_window(qtbot, window):
    w = window
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    qtbot.wait(50)
    assert w.tabs.width() > 0.5 * w.width()
    assert w.view.isVisible()
    # the docks that are tabbed behind another still come forward with one click
    tabbed = {d.windowTitle() for d in w.docks if w.tabifiedDockWidgets(d)}
    assert tabbed == {"Detectors", "Attack", "Metadata"}


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


def _open(qtbot, w, path):
    w.open_paths([path])
    qtbot.waitUntil(lambda: w.view.image is not None
                    and Path(w.view.image.path).resolve() == Path(path).resolve(),
                    timeout=TIMEOUT)
    w.view.resize(800, 600)
    return w.view.image


def test_rotate_and_flip_turn_the_display_only(qtbot, window, shared_data):
    w = window
    image = _open(qtbot, w, shared_data / "dicom" / "orthanc" / "Issue44" / "Monochrome1-Jpeg.dcm")
    pixels = image.pixels.copy()
    w.view.set_zoom(0.25)  # one decimation step for every rendering compared
    w.view.grab()
    before = w.view.rendered_array().copy()
    w.rotate_right_action.trigger()
    w.view.set_zoom(0.25)  # one decimation step for every rendering compared
    w.view.grab()
    assert np.array_equal(w.view.rendered_array(), np.rot90(before, -1))
    assert w.view.display_shape() == (image.columns, image.rows)
    # the read-out names the same stored pixel wherever it is on the screen: the shown
    # image's top-left corner is the stored bottom-left after a right turn
    assert w.view.describe_point(QPointF(0.5, 0.5)).startswith(f"x 0  y {image.rows - 1} ")
    w.flip_h_action.trigger()
    w.view.set_zoom(0.25)  # one decimation step for every rendering compared
    w.view.grab()
    assert np.array_equal(w.view.rendered_array(), np.rot90(before, -1)[:, ::-1])
    w.flip_v_action.trigger()
    # right turn, flip h, flip v = three right turns (the flips make a half turn)
    assert w.view.transform.rotation == 270 and not w.view.transform.hflip
    w.rotate_right_action.trigger()
    w.view.set_zoom(0.25)  # one decimation step for every rendering compared
    w.view.grab()
    assert w.view.transform.is_identity
    assert np.array_equal(w.view.rendered_array(), before)
    assert np.array_equal(image.pixels, pixels)


def test_distance_in_mm_follows_the_pixel_spacing_tag(qtbot, window, shared_data):
    """Measured by mouse on a CR with PixelSpacing 0.175\\0.175: the length is the tag
    arithmetic on the stored pixels under the two points, whatever the rotation."""
    import pydicom

    w = window
    path = shared_data / "dicom" / "orthanc" / "Issue44" / "Monochrome1-Jpeg.dcm"
    _open(qtbot, w, path)
    row_mm, col_mm = (float(v) for v in pydicom.dcmread(path, stop_before_pixels=True)
                      .PixelSpacing)
    view = w.view
    view.set_zoom(0.25)
    a, b = QPoint(200, 150), QPoint(500, 450)
    window_before = view.window
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, a)
    qtbot.mouseMove(view, b)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, b)
    assert len(view.measurements) == 1
    m = view.measurements[0]
    pa, pb = view.widget_to_image(QPointF(a)), view.widget_to_image(QPointF(b))
    dx, dy = (pb.x() - pa.x()), (pb.y() - pa.y())  # stored pixels (no turn yet)
    assert m.mm == pytest.approx(np.hypot(dx * col_mm, dy * row_mm), rel=1e-9)
    assert m.mm == pytest.approx(np.hypot(300, 300) / 0.25 * 0.175, rel=1e-6)
    assert m.label.endswith(" mm")
    assert view.window == window_before  # a measuring drag is not a window/level drag
    # after a turn the same stored points give the same length
    view.rotate(90)
    turned = view.measure(view.stored_to_view(*m.start), view.stored_to_view(*m.end))
    assert turned.mm == pytest.approx(m.mm, rel=1e-9)
    # the scale bar is a round length at this zoom, drawn from the same spacing
    assert view.mm_per_screen_pixel() == pytest.approx(row_mm / view.zoom)


def test_no_pixel_spacing_means_no_mm(qtbot, window, shared_data):
    w = window
    _open(qtbot, w, shared_data / "dicom" / "mammography" / "sfm-malign-0" / "1-282.dcm")
    view = w.view
    assert view.spacing is None and view.mm_per_screen_pixel() is None
    m = view.add_measurement(QPointF(10, 10), QPointF(310, 410))
    assert m.mm is None and m.label == "500.0 px (no pixel spacing)"


def test_corner_text_names_patient_and_study_and_hides_identifiers(qtbot, window,
                                                                    shared_data):
    w = window
    _open(qtbot, w, shared_data / "dicom" / "mammography" / "sfm-malign-0" / "1-282.dcm")
    corners = w.view.corner_lines()
    assert corners["top-left"][:2] == ["Mass-Test_P_00820_RIGHT_CC",
                                       "ID Mass-Test_P_00820_RIGHT_CC"]
    assert "study 2016-10-04" in corners["top-right"]
    assert corners["bottom-right"][0] == "R"  # Laterality
    assert any(line.startswith("W ") for line in corners["bottom-left"])
    w.privacy_action.trigger()
    hidden = w.view.corner_lines()
    text = " ".join(line for lines in hidden.values() for line in lines)
    assert "Mass-Test" not in text and "patient identifiers hidden" in text
    w.view.grab()  # paints without error with the switch on


def test_the_model_chosen_last_time_is_loaded_at_start(qtbot):
    """Chosen once, the model is loaded again on every start (in the background, with
    progress), so the box never names a model that is not there."""
    from workbench.gui.docks.model import NO_MODEL
    from workbench.gui.main_window import MainWindow
    from workbench.gui.settings import last_model

    first = MainWindow()
    qtbot.addWidget(first)
    first.show()
    assert first.models.model_box.currentText() == NO_MODEL and last_model() == ""
    first.models.load_model("demo")
    qtbot.waitUntil(lambda: first.study.model is not None, timeout=TIMEOUT)
    assert last_model() == "demo"
    first.close()

    second = MainWindow()
    qtbot.addWidget(second)
    second.show()
    qtbot.waitExposed(second)
    qtbot.waitUntil(lambda: second.study.model is not None, timeout=TIMEOUT)
    assert second.study.model_name == "demo"
    assert second.models.model_box.currentText() == "demo"
    assert "demo_melanoma" in second.models.status.text()
    second.close()


def test_the_decode_worker_leaves_the_window_figures_ready(shared_data):
    """The open job (a worker) computes the value range and the percentile window, so
    showing a mammogram-sized radiograph does not compute them on the GUI thread; the
    figures are the ones the data give."""
    from workbench.imaging.auto_window import auto_window
    from workbench.session.actions import open_image
    from workbench.session.study import Study

    study = Study()
    path = str(shared_data / "dicom" / "pydicom-data" / "RG1_J2KR.dcm")
    session = study.open(path)
    image = open_image(study, session).work()  # the work alone, as the worker runs it
    assert image._value_range is not None and ("auto_window", 0) in image.display_cache
    values = image.value_transform(0).apply(np.asarray(image.frame(0))[::4, ::4])
    lo, hi = np.percentile(values, [0.5, 99.5])
    cached = image.display_cache[("auto_window", 0)]
    assert cached is auto_window(image, 0)  # the GUI's call finds it: no second pass
    assert cached.center == pytest.approx((lo + hi) / 2) and cached.width == pytest.approx(hi - lo)
    full = image.value_transform(0).apply(np.asarray(image.frame(0)))
    assert image.value_range() == (float(full.min()), float(full.max()))


def test_a_folder_of_many_files_is_listed_and_every_entry_gets_its_badge(qtbot, window,
                                                                        tmp_path):
    """Two series folders of 40 files each, named alike (IM0000 in both, as modalities
    name them): every row names its folder, and every entry is verified in the
    background, the badges started a slice at a time (more than one slice here)."""
    import os

    from conftest import pydicom_test_file

    w = window
    ct = pydicom_test_file("CT_small.dcm")
    for series in ("series1", "series2"):
        (tmp_path / series).mkdir()
        for i in range(40):
            os.link(ct, tmp_path / series / f"IM{i:04d}")  # no suffix: found by its magic
    added = w.open_paths([tmp_path])
    assert len(added) == 80
    rows = w.study_list
    assert {rows.item_for(p).text(0) for p in added} == {
        f"{s}/IM{i:04d}" for s in ("series1", "series2") for i in range(40)}
    qtbot.waitUntil(lambda: all(rows.badge(p) == "unsigned" for p in added),
                    timeout=TIMEOUT)
