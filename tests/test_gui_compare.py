"""The comparison view: an original and its altered copy side by side, overlays, opacity,
statistics, and zoom/pan/window-level that move together."""

from __future__ import annotations

import pydicom
import pytest
from conftest import pydicom_test_file
from PySide6.QtCore import QPointF

TIMEOUT = 60_000


def test_compare_original_and_altered_copy(qtbot, window, tmp_path):
    w = window
    original = tmp_path / "CT_small.dcm"
    ds = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    ds.save_as(original)
    arr = ds.pixel_array.copy()
    arr[40:50, 60:75] += 200  # a 10 x 15 square changed
    ds.PixelData = arr.tobytes()
    copy = tmp_path / "CT_small_altered.dcm"
    ds.save_as(copy)
    w.open_paths([original, copy])
    for p in (original, copy):
        w.study_list.select_path(str(p))
        qtbot.waitUntil(lambda p=p: str(p) in w.images and w.current_path == str(p),
                        timeout=TIMEOUT)
    assert w.compare_current(str(original))
    cv = w.comparison
    qtbot.waitUntil(lambda: cv.stats() is not None, timeout=TIMEOUT)
    stats = cv.stats()
    assert stats["changed_pixels"] == 150
    assert stats["bounding_box"] == {"row": 40, "col": 60, "rows": 10, "cols": 15}
    assert "changed pixels 150" in cv.stats_label.text()

    # overlays switch, and the opacity slider changes what is drawn
    before = cv.right.grab().toImage()
    cv.overlay_box.setCurrentText("absolute difference")
    with_overlay = cv.right.grab().toImage()
    assert with_overlay != before
    cv.opacity.setValue(100)
    assert cv.right.overlay_opacity == 1.0 and cv.right.grab().toImage() != with_overlay
    cv.overlay_box.setCurrentText("signed difference")
    cv.overlay_box.setCurrentText("SSIM (dark = dissimilar)")
    assert cv.right._overlay is not None

    # zoom one side: the other follows; pan too; window/level too
    cv.left.set_zoom(3.0, anchor=QPointF(100, 100))
    assert cv.right.zoom == pytest.approx(3.0)
    assert (cv.right._center.x(), cv.right._center.y()) == pytest.approx(
        (cv.left._center.x(), cv.left._center.y()))
    cv.right.set_zoom(1.5)
    assert cv.left.zoom == pytest.approx(1.5)
    from workbench.imaging import Window

    cv.left.set_window(Window(-600, 1500, "lung"))
    assert (cv.right.window.center, cv.right.window.width) == (-600, 1500)
