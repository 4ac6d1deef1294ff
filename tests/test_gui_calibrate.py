"""Tools > Calibrate Detectors on real photos: two model-free detectors calibrated through
the dialog (files saved in WORKBENCH_HOME, thresholds shown, and then used by
threshold_for), an empty folder refused with a message, and Cancel saving nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

DETECTORS = ["ela", "noise-residual"]  # the fastest calibratable ones; they need no model


@pytest.fixture
def clean_folder(shared_data: Path, tmp_path: Path) -> Path:
    """Six real ISIC photos, downscaled to 256 px so that the detectors are quick."""
    cv2 = pytest.importorskip("cv2")
    src = shared_data / "dermoscopy" / "isic" / "images"
    photos = sorted(src.glob("*.jpg"))[:6]
    if len(photos) < 6:
        pytest.skip(f"fewer than 6 ISIC photos in {src}")
    out = tmp_path / "clean"
    out.mkdir()
    for p in photos:
        im = cv2.imread(str(p))
        h, w = im.shape[:2]
        f = 256 / max(h, w)
        small = cv2.resize(im, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out / p.name), small, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return out


def _open(window):
    window.calibrate_action.trigger()  # the Tools menu item, as a user would
    dialog = window.calibration_dialog
    assert dialog.isVisible() and not dialog.isModal()
    names = [dialog.detector_list.item(r).text() for r in range(dialog.detector_list.count())]
    assert set(DETECTORS) <= set(names), names
    return dialog


def _rows(table) -> list[list[str]]:
    return [[table.item(r, c).text() for c in range(table.columnCount())]
            for r in range(table.rowCount())]


def test_calibrate_two_detectors_saves_and_is_used(window, qtbot, clean_folder: Path,
                                                    _private_home: Path):
    from workbench import api
    from workbench.engine.calibration import calibration_file, load_calibration, threshold_for
    from workbench.imaging.loader import load_image

    dialog = _open(window)
    assert all(dialog.detector_list.item(r).checkState() == Qt.CheckState.Checked
               for r in range(dialog.detector_list.count())
               if dialog.detector_list.item(r).flags() & Qt.ItemFlag.ItemIsEnabled)
    assert dialog.fpr_spin.value() == 5.0
    assert "clean" in dialog.note.text() and "20" in dialog.note.text()
    dialog.folder_edit.setText(str(clean_folder))
    dialog.fpr_spin.setValue(20.0)
    dialog.set_checked(DETECTORS)
    assert [i.name for i in dialog.checked()] == DETECTORS
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert dialog.is_running() and not dialog.start_button.isEnabled()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=60_000)

    rows = _rows(dialog.table)
    assert [r[0] for r in rows] == DETECTORS, (rows, dialog.status_label.text())
    assert "New verdicts use these thresholds" in dialog.status_label.text()
    image = load_image(next(clean_folder.iterdir()))
    infos = {i.name: i for i in window.registry.detectors()}
    for name, threshold, used, skipped, saved in rows:
        path = calibration_file(name)
        assert Path(saved) == path and path.is_file()
        assert path.is_relative_to(_private_home)  # the user's folder, not the shipped one
        cal = load_calibration(name)
        assert f"{cal.threshold:.6g}" == threshold
        assert cal.fpr == pytest.approx(0.20) and cal.n == int(used) == 6
        assert int(skipped) == 0 and cal.modalities == ["XC"]
        det = infos[name].create()
        found, note = threshold_for(name, det, api.make_params(det.Params, {}), None,
                                    image=image)
        assert found is not None and found.threshold == cal.threshold, note
        assert found.fingerprints[0]["path"].startswith(str(clean_folder))


def test_empty_folder_gives_a_message_and_no_file(window, qtbot, tmp_path: Path):
    from workbench.engine.calibration import calibration_file

    dialog = _open(window)
    empty = tmp_path / "empty"
    empty.mkdir()
    dialog.set_checked(DETECTORS)
    for text, expected in (("", "Choose a folder"), (str(empty), "no images found"),
                           (str(tmp_path / "missing"), "no such folder")):
        dialog.folder_edit.setText(text)
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
        assert not dialog.is_running()
        assert expected in dialog.status_label.text(), dialog.status_label.text()
    assert dialog.table.rowCount() == 0
    assert not any(calibration_file(n).exists() for n in DETECTORS)


def test_cancel_stops_and_saves_nothing(window, qtbot, clean_folder: Path, monkeypatch):
    """The worker is held after its first image until Cancel has been clicked, so that the
    cancel lands mid-detector however fast the machine is."""
    from workbench.engine.calibration import calibration_file
    from workbench.session.jobs import Job

    reached, release = threading.Event(), threading.Event()
    original = Job.progress

    def held_progress(job, fraction, message=""):
        original(job, fraction, message)
        if "image 1 of" in message and not reached.is_set():
            reached.set()
            release.wait(30)

    monkeypatch.setattr(Job, "progress", held_progress)
    dialog = _open(window)
    dialog.folder_edit.setText(str(clean_folder))
    dialog.set_checked(DETECTORS)
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(reached.is_set, timeout=30_000)
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    release.set()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=30_000)
    assert "Cancelled" in dialog.status_label.text(), dialog.status_label.text()
    assert dialog.table.rowCount() == 0
    assert not any(calibration_file(n).exists() for n in DETECTORS)
    assert dialog.start_button.isEnabled()  # ready to start again
