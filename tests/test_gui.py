"""The real main window, driven offscreen with pytest-qt on real DICOM files and photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import pydicom_test_file
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from workbench.gui.main_window import MainWindow
from workbench.gui.settings import recent_paths

LOAD_TIMEOUT_MS = 30_000


def open_and_wait(qtbot, window: MainWindow, path: Path) -> None:
    window.open_paths([path])
    qtbot.waitUntil(
        lambda: window.view.image is not None and window.view.image.path == Path(path),
        timeout=LOAD_TIMEOUT_MS,
    )


def view_pixels(window: MainWindow) -> np.ndarray:
    """What the view widget actually shows on screen, as an array."""
    qimg = window.view.grab().toImage().convertToFormat(
        window.view.grab().toImage().Format.Format_RGB888)
    ptr = qimg.constBits()
    arr = np.frombuffer(ptr, np.uint8, qimg.sizeInBytes())
    return arr.reshape(qimg.height(), qimg.bytesPerLine())[:, : qimg.width() * 3].copy()


def drag(widget, button: Qt.MouseButton, start: QPointF, delta: QPointF, steps: int = 5) -> None:
    """A real press-move-release sequence with the button held during the moves."""
    def send(kind, pos, btn, btns):
        ev = QMouseEvent(kind, pos, widget.mapToGlobal(pos), btn, btns,
                         Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(widget, ev)

    send(QEvent.Type.MouseButtonPress, start, button, button)
    for i in range(1, steps + 1):
        pos = start + delta * (i / steps)
        send(QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, button)
    send(QEvent.Type.MouseButtonRelease, start + delta, button, Qt.MouseButton.NoButton)


def wheel(widget, pos: QPointF, clicks: int, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    ev = QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(), QPoint(0, 120 * clicks),
                     Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, ev)


def test_open_dicom_shows_image_metadata_and_study_entry(qtbot, window):
    path = pydicom_test_file("CT_small.dcm")
    open_and_wait(qtbot, window, path)
    assert window.view.image.modality == "CT"
    item = window.study_list.item_for(str(path))
    assert item.text(1) == "CT" and item.text(2) == "128×128"
    rows = window.metadata.visible_rows()
    assert any(r[0] == "(0008,0060)" and r[3] == "CT" for r in rows)
    assert "CT_small.dcm" in window.windowTitle()
    # the view shows something other than the empty background
    assert view_pixels(window).std() > 5


def test_left_drag_changes_window_level_and_rendered_pixels(qtbot, window):
    open_and_wait(qtbot, window, pydicom_test_file("CT_small.dcm"))
    view = window.view
    before_window = view.window
    before = view_pixels(window)
    centre = QPointF(view.width() / 2, view.height() / 2)
    # CT_small opens on its full data range, the widest window there is: drag narrower
    drag(view, Qt.MouseButton.LeftButton, centre, QPointF(-120, 60))
    after_window = view.window
    assert after_window.width < before_window.width  # horizontal drag: width
    assert after_window.center > before_window.center  # vertical drag: centre
    assert window.window_label.text() == f"C {after_window.center:.6g} / W {after_window.width:.6g}"
    after = view_pixels(window)
    assert np.abs(after.astype(int) - before.astype(int)).mean() > 1.0
    assert window.preset_box.currentText() == "Custom"


def test_ct_presets_apply_standard_windows(qtbot, window):
    open_and_wait(qtbot, window, pydicom_test_file("CT_small.dcm"))
    box = window.preset_box
    lung = next(i for i in range(box.count()) if box.itemText(i).startswith("CT lung"))
    before = view_pixels(window)
    box.setCurrentIndex(lung)
    box.activated.emit(lung)
    assert (window.view.window.center, window.view.window.width) == (-600, 1500)
    assert not np.array_equal(before, view_pixels(window))


def test_middle_drag_pans_and_right_drag_zooms(qtbot, window):
    open_and_wait(qtbot, window, pydicom_test_file("MR_small.dcm"))
    view = window.view
    centre = QPointF(view.width() / 2, view.height() / 2)
    rect0 = view.image_rect()
    drag(view, Qt.MouseButton.MiddleButton, centre, QPointF(50, 30))
    rect1 = view.image_rect()
    assert rect1.x() == pytest.approx(rect0.x() + 50, abs=1)
    assert rect1.y() == pytest.approx(rect0.y() + 30, abs=1)
    zoom0 = view.zoom
    drag(view, Qt.MouseButton.RightButton, centre, QPointF(0, -100))  # drag up: zoom in
    assert view.zoom > zoom0 * 1.5
    zoom_before = view.zoom
    wheel(view, centre, -2, Qt.KeyboardModifier.ControlModifier)  # ctrl+wheel back: zoom out
    assert view.zoom == pytest.approx(zoom_before / 1.25**2)
    anchor_image_point = view.widget_to_image(centre)
    wheel(view, centre, 1, Qt.KeyboardModifier.ControlModifier)
    assert view.zoom == pytest.approx(zoom_before / 1.25)
    # zooming keeps the point under the cursor in place
    after = view.widget_to_image(centre)
    assert (after.x(), after.y()) == pytest.approx((anchor_image_point.x(), anchor_image_point.y()))


def test_wheel_and_slider_step_through_frames(qtbot, window):
    path = pydicom_test_file("examples_ybr_color.dcm")  # 30-frame ultrasound
    open_and_wait(qtbot, window, path)
    view = window.view
    assert window.image_page.frame_bar.isVisibleTo(window)
    assert window.image_page.frame_slider.maximum() == 29
    first = view_pixels(window)
    centre = QPointF(view.width() / 2, view.height() / 2)
    wheel(view, centre, -1)
    assert view.frame == 1
    assert window.image_page.frame_slider.value() == 1
    window.image_page.frame_slider.setValue(20)
    assert view.frame == 20
    assert window.image_page.frame_label.text() == "21 / 30"
    assert not np.array_equal(first, view_pixels(window))
    wheel(view, centre, +1)
    assert view.frame == 19


def test_cursor_shows_stored_value_and_hounsfield_units(qtbot, window):
    path = pydicom_test_file("CT_small.dcm")
    open_and_wait(qtbot, window, path)
    view = window.view
    pos = QPointF(view.width() / 2 + 7, view.height() / 2 - 11)
    ev = QMouseEvent(QEvent.Type.MouseMove, pos, view.mapToGlobal(pos), Qt.MouseButton.NoButton,
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view, ev)
    text = window.cursor_label.text()
    p = view.widget_to_image(pos)
    row, col = int(p.y()), int(p.x())
    image = view.image
    stored = int(image.pixels[row, col])
    vt = image.value_transform(0)
    assert f"x {col}  y {row}" in text
    assert f"stored {stored}" in text
    assert f"{stored * vt.slope + vt.intercept:.6g} HU" in text


def test_tag_search_filters_tree_and_reveals_sequence_items(qtbot, window):
    path = pydicom_test_file("examples_ybr_color.dcm")
    open_and_wait(qtbot, window, path)
    panel = window.metadata
    total = len(panel.visible_rows())
    panel.search.setText("patient's name")  # typing in the real search box
    rows = panel.visible_rows()
    assert 1 <= len(rows) < total
    assert any(r[0] == "(0010,0010)" for r in rows)
    panel.search.setText("")
    assert len(panel.visible_rows()) == total


def test_sequences_are_collapsible_nodes(qtbot, window):
    path = pydicom_test_file("CT_small.dcm")
    ds_has_sequence = False
    open_and_wait(qtbot, window, path)
    tree = window.metadata.tree
    for i in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(i)
        if item.text(2) == "SQ":
            ds_has_sequence = True
            assert item.childCount() >= 1 and item.child(0).text(1).startswith("Item")
    meta = tree.topLevelItem(0)
    assert meta.text(1) == "File Meta Information" and meta.childCount() > 0
    assert ds_has_sequence or tree.topLevelItemCount() > 10


def test_corrupt_file_shows_error_dialog_and_window_keeps_working(qtbot, window, tmp_path):
    good = pydicom_test_file("MR_small.dcm")
    bad = tmp_path / "truncated_CT.dcm"
    data = pydicom_test_file("CT_small.dcm").read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    window.open_paths([bad])
    qtbot.waitUntil(lambda: window.error_box is not None, timeout=LOAD_TIMEOUT_MS)
    box = window.error_box
    assert box.isVisible()
    assert "truncated_CT.dcm" in box.text()
    assert window.study_list.item_for(str(bad)).text(1) == "error"
    box.accept()
    qtbot.waitUntil(lambda: window.error_box is None)
    open_and_wait(qtbot, window, good)
    assert window.view.image.modality == "MR"


def test_drop_files_and_folders_opens_them(qtbot, window, tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(pydicom_test_file(name), folder / name)
    (folder / "notes.txt").write_text("not an image")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    pos = QPoint(300, 300)
    enter = QDragEnterEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    assert sorted(Path(p).name for p in window.study_list.paths()) == ["CT_small.dcm",
                                                                       "MR_small.dcm"]
    qtbot.waitUntil(lambda: window.view.image is not None, timeout=LOAD_TIMEOUT_MS)
    assert str(folder) in recent_paths()


def test_selecting_another_study_entry_shows_it(qtbot, window):
    ct, mr = pydicom_test_file("CT_small.dcm"), pydicom_test_file("MR_small.dcm")
    window.open_paths([ct, mr])
    qtbot.waitUntil(lambda: window.view.image is not None, timeout=LOAD_TIMEOUT_MS)
    window.study_list.select_path(str(mr))
    qtbot.waitUntil(lambda: window.view.image is not None and window.view.image.path == mr,
                    timeout=LOAD_TIMEOUT_MS)
    assert window.view.image.modality == "MR"


def test_demo_study_opens(qtbot, window):
    added = window.open_demo()
    assert len(added) >= 5
    qtbot.waitUntil(lambda: window.view.image is not None, timeout=LOAD_TIMEOUT_MS)
    assert window.view.image.path == Path(added[0])


def test_dermoscopy_photo_shows_exif_properties(qtbot, window, shared_data):
    photo = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000002.jpg"
    open_and_wait(qtbot, window, photo)
    rows = window.metadata.visible_rows()
    assert ("", "Format", "", "JPEG") in rows
    assert window.view.image.kind == "photo"
    assert view_pixels(window).std() > 5


def test_cancel_multiframe_decode_leaves_window_usable(qtbot, window, shared_data):
    cine = shared_data / "dicom" / "pydicom-data" / "color3d_jpeg_baseline.dcm"
    window.open_paths([cine])
    window.cancel_loading()
    qtbot.waitUntil(lambda: not window.opener.tasks, timeout=LOAD_TIMEOUT_MS)
    assert window.error_box is None  # a cancel is not an error
    open_and_wait(qtbot, window, pydicom_test_file("CT_small.dcm"))
