"""The comparison view: an original and its altered copy side by side, overlays, opacity,
statistics, and zoom/pan/window-level that move together."""

from __future__ import annotations

import pytest
from conftest import altered_ct
from PySide6.QtCore import QPointF

TIMEOUT = 60_000


def test_compare_original_and_altered_copy(qtbot, window, tmp_path):
    w = window
    original, copy, _ds = altered_ct(tmp_path)  # a 10 x 15 square changed
    w.open_paths([original, copy])
    for p in (original, copy):
        w.study_list.select_path(str(p))
        qtbot.waitUntil(lambda p=p: (c := w.study.current) is not None and c.path == str(p)
                        and c.image is not None,
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
    # where the images are identical the overlay is clear: black drawn there at 60%
    # dimmed the suspect alone, which read as the two images differing in contrast
    changed = cv.right.image_to_widget(QPointF(67, 45))  # inside the changed square
    same = cv.right.image_to_widget(QPointF(20, 100))
    assert with_overlay.pixel(changed.toPoint()) != before.pixel(changed.toPoint())
    assert with_overlay.pixel(same.toPoint()) == before.pixel(same.toPoint())
    # the colour bar says what full colour means, in stored values and display levels
    scale = cv.colour_bar.scale
    assert (scale.low, scale.high) == (0.0, 200.0) and not scale.saturates
    assert "stored values" in scale.unit
    width = cv.right.window.width
    assert f"{200 * 255 / width:.3g} display levels" in scale.note
    cv.right.set_window(type(cv.right.window)(40, 400, "custom"))
    assert f"{200 * 255 / 400:.3g} display levels of 255 at W 400" in cv.colour_bar.text()
    cv.opacity.setValue(100)
    assert cv.right.overlay_opacity == 1.0 and cv.right.grab().toImage() != with_overlay
    cv.overlay_box.setCurrentText("signed difference")
    cv.overlay_box.setCurrentText("1 − SSIM (bright = dissimilar)")
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


def _open_pair(qtbot, w, reference, suspect) -> None:
    w.open_paths([reference, suspect])
    for p in (reference, suspect):
        w.study_list.select_path(str(p))
        qtbot.waitUntil(lambda p=p: (c := w.study.current) is not None and c.path == str(p)
                        and c.image is not None,
                        timeout=TIMEOUT)
    assert w.compare_current(str(reference))


def test_overlays_land_on_the_changed_pixels_of_an_exif_rotated_photo(qtbot, window, tmp_path):
    """Maps are computed on the stored grid; a photo shown upright by its EXIF orientation
    must get its overlay turned the same way."""
    import numpy as np
    from PIL import Image

    w = window
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 200, (40, 60, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[274] = 6  # stored sideways, shown rotated 90 degrees clockwise
    Image.fromarray(rgb).save(tmp_path / "upright.png", exif=exif)
    changed = rgb.copy()
    changed[5:10, 10:20] += 50  # stored rows 5-9, columns 10-19
    Image.fromarray(changed).save(tmp_path / "upright_changed.png", exif=exif)
    _open_pair(qtbot, w, tmp_path / "upright.png", tmp_path / "upright_changed.png")
    cv = w.comparison
    qtbot.waitUntil(lambda: cv.stats() is not None, timeout=TIMEOUT)
    assert cv.stats()["bounding_box"] == {"row": 5, "col": 10, "rows": 5, "cols": 10}
    cv.overlay_box.setCurrentText("absolute difference")
    over = cv.right._overlay
    assert (over.height(), over.width()) == cv.right.display_shape() == (60, 40)
    hot = np.array([[over.pixelColor(x, y).red() > 0 or over.pixelColor(x, y).green() > 0
                     for x in range(over.width())] for y in range(over.height())])
    rows, cols = np.nonzero(hot)
    # orientation 6: stored (r, c) is shown at (c, 39 - r)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (10, 19, 30, 34)


def test_saliency_on_both_sides_and_detector_evidence_in_compare(qtbot, window, shared_data,
                                                                 tmp_path):
    import cv2

    w = window
    w.models.load_model("demo")
    qtbot.waitUntil(lambda: w.study.model is not None, timeout=TIMEOUT * 4)
    original = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000001.jpg"
    bgr = cv2.imread(str(original))
    bgr[300:420, 400:520] = (40, 200, 240)  # a pasted square, lossless copy
    suspect = tmp_path / "ISIC_0000001_patched.png"
    cv2.imwrite(str(suspect), bgr)
    _open_pair(qtbot, w, original, suspect)
    cv = w.comparison
    qtbot.waitUntil(lambda: cv.stats() is not None, timeout=TIMEOUT)
    assert cv.stats()["bounding_box"] == {"row": 300, "col": 400, "rows": 120, "cols": 120}

    cv.side_box.setCurrentText("both")
    cv.overlay_box.setCurrentText("saliency: Grad-CAM")
    qtbot.waitUntil(lambda: cv.left._overlay is not None and cv.right._overlay is not None,
                    timeout=TIMEOUT * 4)
    assert "Grad-CAM of demo" in cv.overlay_label.text()
    assert "explains" in cv.overlay_label.text()
    cv.side_box.setCurrentText("reference")
    assert cv.left._overlay is not None and cv.right._overlay is None

    # detectors run on the suspect; a row with a map, clicked while comparing, shows the
    # map in the Compare tab over the suspect
    assert w.run_detectors()
    qtbot.waitUntil(lambda: w.detect_task is None, timeout=TIMEOUT * 4)
    assert cv.overlay_box.findText("evidence: patch-localisation") >= 0
    table = w.detectors.table
    row = next(table.topLevelItem(i) for i in range(table.topLevelItemCount())
               if table.topLevelItem(i).text(0).startswith("patch-localisation"))
    w.tabs.setCurrentWidget(cv)
    table.itemClicked.emit(row, 0)
    assert w.tabs.currentWidget() is cv
    assert cv.overlay_box.currentText() == "evidence: patch-localisation"
    assert cv.side_box.currentText() == "suspect"
    assert cv.right._overlay is not None and cv.left._overlay is None


def test_a_multiframe_pair_is_compared_frame_by_frame_and_says_which_differ(
        qtbot, window, tmp_path, shared_data):
    """A 10-frame MR whose frame 7 only was altered. The tab opens on frame 1, which is
    identical: its statistics say so, and that frame 7 differs. Stepping either side
    steps both, and the maps and statistics are then of frame 7."""
    import pydicom

    w = window
    src = shared_data / "dicom" / "pydicom-data" / "emri_small.dcm"
    original, copy = tmp_path / "emri.dcm", tmp_path / "emri_frame7.dcm"
    ds = pydicom.dcmread(src)
    ds.save_as(original)
    frames = ds.pixel_array.copy()
    frames[6, 20:30, 10:16] += 50
    ds.PixelData = frames.tobytes()
    ds.save_as(copy)
    w.open_paths([original, copy])
    for p in (original, copy):
        w.study_list.select_path(str(p))
        qtbot.waitUntil(lambda p=p: (c := w.study.current) is not None and c.path == str(p)
                        and c.image is not None, timeout=TIMEOUT)
    assert w.compare_current(str(original))
    cv = w.comparison
    qtbot.waitUntil(lambda: cv.stats() is not None, timeout=TIMEOUT)
    assert cv.stats()["changed_pixels"] == 0
    assert cv.stats()["changed_per_frame"] == [0] * 6 + [60] + [0] * 3
    text = cv.stats_label.text()
    assert text.startswith("Frame 1: ") and "changed pixels 0" in text
    assert "1 of 10 frames differ (frame 7); frame 1 is identical" in text

    cv.overlay_box.setCurrentText("absolute difference")
    cv.right.set_frame(6)  # as the wheel over the suspect does
    assert cv.left.frame == 6  # the reference follows
    qtbot.waitUntil(lambda: cv.stats() is not None, timeout=TIMEOUT)
    stats = cv.stats()
    assert stats["frame"] == 6 and stats["changed_pixels"] == 60
    assert stats["bounding_box"] == {"row": 20, "col": 10, "rows": 10, "cols": 6}
    assert cv.stats_label.text().startswith("Frame 7: ")
    assert cv.colour_bar.scale.high == 50.0  # the overlay is frame 7's map
    cv.left.set_frame(0)
    assert cv.right.frame == 0
    qtbot.waitUntil(lambda: cv.stats() is not None and cv.stats()["frame"] == 0,
                    timeout=TIMEOUT)
    assert cv.colour_bar.scale is None or cv.colour_bar.scale.high != 50.0
    for frame in range(10):  # stepping through every frame keeps a few frames' maps only
        cv.right.set_frame(frame)
        qtbot.waitUntil(lambda f=frame: cv.stats() is not None and cv.stats()["frame"] == f,
                        timeout=TIMEOUT)
    kept = [k for k in cv.cache if len(k) == 3 and k[:2] == cv.key]
    assert len(kept) == 4 and kept[-1][2] == 9
