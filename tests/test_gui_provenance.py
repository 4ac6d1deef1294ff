"""Provenance in the real window: sign, verify, alter a copy on disk, see it named."""

from __future__ import annotations

import shutil

import pydicom
import pytest
from conftest import pydicom_test_file
from PySide6.QtWidgets import QMessageBox

from workbench.provenance.records import keys
from workbench.provenance.records.record import sidecar_path

TIMEOUT = 30_000


@pytest.fixture
def window(window, monkeypatch):
    """The shared main window, with a signing key whose passphrase is in the environment."""
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "gui test passphrase")
    keys.generate_key("gui test passphrase", label="reading room")
    return window


def open_and_wait_verified(qtbot, w, path):
    w.open_paths([path])
    qtbot.waitUntil(lambda: str(path) in w.verifications, timeout=TIMEOUT)
    return w.verifications[str(path)]


def test_sign_verify_then_tamper_a_copy_shows_pixels_changed(qtbot, window, tmp_path):
    w = window
    path = tmp_path / "CT_small.dcm"
    shutil.copy(pydicom_test_file("CT_small.dcm"), path)
    result = open_and_wait_verified(qtbot, w, path)
    assert result.verdict == "unsigned"
    assert w.study_list.badge(str(path)) == "unsigned"

    w.sign_current()
    qtbot.waitUntil(lambda: w.verifications[str(path)].verdict == "intact", timeout=TIMEOUT)
    assert sidecar_path(path).is_file()
    assert w.study_list.badge(str(path)) == "✔ signed, intact"
    assert w.provenance.verdict_label.text() == "✔ signed, intact"
    rows = {r[1]: r for r in w.provenance.check_rows()}
    assert rows["Pixels"][0] == "✔" and rows["Signature"][0] == "✔"
    assert rows["Ledger"][0] == "✔"  # signing appended the record to the ledger
    # the case verdict: the signed record decides, before any detector has run
    assert w.verdict_banner.banner.text() == ("CT_small.dcm — Authentic: the image matches "
                                              "its signed capture record")

    # signing it again asks first (the CLI skips it unless --force); No leaves it alone
    from workbench.home import ledger_file
    from workbench.provenance.ledger.store import Ledger

    def entries() -> int:
        ledger = Ledger(ledger_file())
        try:
            return len(ledger)
        finally:
            ledger.close()

    assert entries() == 1
    w.sign_current()
    qtbot.waitUntil(lambda: getattr(w.signing, "force_box", None) is not None
                    and w.signing.force_box.isVisible(), timeout=TIMEOUT)
    assert "Sign it again?" in w.signing.force_box.text()
    assert "CT_small.dcm" in w.signing.force_box.text()  # the policy's reason names the file
    w.signing.force_box.button(QMessageBox.StandardButton.No).click()
    qtbot.wait(200)
    assert entries() == 1
    w.sign_current()
    qtbot.waitUntil(lambda: w.signing.force_box.isVisible(), timeout=TIMEOUT)
    w.signing.force_box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: entries() == 2, timeout=TIMEOUT)

    # a copy of the image and its sidecar, with one pixel altered on disk
    copy = tmp_path / "copy" / "CT_small.dcm"
    copy.parent.mkdir()
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array.copy()
    arr[40, 40] += 50
    ds.PixelData = arr.tobytes()
    ds.save_as(copy)
    shutil.copy(sidecar_path(path), sidecar_path(copy))
    result = open_and_wait_verified(qtbot, w, copy)
    assert result.verdict == "tampered"
    qtbot.waitUntil(lambda: w.view.image is not None and str(w.view.image.path) == str(copy),
                    timeout=TIMEOUT)
    assert w.study_list.badge(str(copy)) == "✖ tampered"
    assert w.provenance.verdict_label.text() == "✖ tampered"
    rows = {r[1]: r for r in w.provenance.check_rows()}
    assert rows["Pixels"][0] == "✖" and rows["Pixels"][2] == "pixels changed"
    assert "pixels changed" in w.provenance.summary_label.text()
    assert "Tampered" in w.verdict_banner.banner.text()
    assert "pixels" in w.verdict_banner.reasons.text()


def test_copy_without_sidecar_is_found_in_the_ledger(qtbot, window, tmp_path):
    w = window
    path = tmp_path / "MR_small.dcm"
    shutil.copy(pydicom_test_file("MR_small.dcm"), path)
    open_and_wait_verified(qtbot, w, path)
    w.sign_current()
    qtbot.waitUntil(lambda: w.verifications[str(path)].verdict == "intact", timeout=TIMEOUT)
    stray = tmp_path / "elsewhere" / "renamed.dcm"
    stray.parent.mkdir()
    shutil.copy(path, stray)  # no sidecar travels with it
    result = open_and_wait_verified(qtbot, w, stray)
    assert result.verdict == "intact"
    assert "by SOP Instance UID" in result.record_source


def test_an_image_signed_elsewhere_reads_intact_with_its_tags_shown(qtbot, window, tmp_path):
    """The metadata dock converts every element it lists before the window verifies the
    image; on a file whose stored strings pydicom does not write back byte for byte, a
    valid signature made by `workbench sign` once read "header changed" here."""
    from conftest import spaced_window_ct

    from workbench.provenance.records.signing import sign_image

    w = window
    path = spaced_window_ct(tmp_path / "spaced.dcm")
    sign_image(path, keys.load_private_key(keys.list_keys()[0].fingerprint,
                                           "gui test passphrase"))
    result = open_and_wait_verified(qtbot, w, path)
    assert w.metadata.apply_filter("(0008,103E)") == 1  # it was listed
    assert result.verdict == "intact", result.summary
    assert w.provenance.verdict_label.text() == "✔ signed, intact"


def test_a_look_alike_of_a_signed_image_is_badged_as_one_not_as_tampered(qtbot, window,
                                                                          tmp_path):
    from conftest import altered_ct

    w = window
    original, copy, _ = altered_ct(tmp_path, new_uid=True)  # another UID, no sidecar
    open_and_wait_verified(qtbot, w, original)
    w.sign_current()
    qtbot.waitUntil(lambda: w.verifications[str(original)].verdict == "intact",
                    timeout=TIMEOUT)
    result = open_and_wait_verified(qtbot, w, copy)
    assert result.verdict == "look-alike", result.summary
    assert w.study_list.badge(str(copy)) == "! look-alike, unsigned"
    assert "Tampered" not in w.verdict_banner.banner.text()
    assert "resembles a signed image" in w.verdict_banner.banner.text()
    qtbot.waitUntil(lambda: "Changed region: 150 pixel(s)" in w.provenance.region_label.text(),
                    timeout=TIMEOUT)  # located against the open original, named as what it is
    assert "the signed image it resembles" in w.provenance.region_label.text()


def test_wrong_passphrase_from_environment_reports_and_does_not_sign(qtbot, window, tmp_path,
                                                                      monkeypatch):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    w = window
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "not the passphrase")
    path = tmp_path / "CT_small.dcm"
    shutil.copy(pydicom_test_file("CT_small.dcm"), path)
    open_and_wait_verified(qtbot, w, path)
    seen = []

    def close_box():
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            box.accept()

    QTimer.singleShot(200, close_box)
    w.sign_current()
    assert seen and "wrong passphrase" in seen[0]
    assert not sidecar_path(path).exists()


def test_key_manager_creates_trusts_and_untrusts_keys(qtbot, tmp_path):
    from workbench.gui.dialogs.key_manager import KeyManagerDialog, NewKeyDialog

    dialog = KeyManagerDialog()
    qtbot.addWidget(dialog)
    assert dialog.own.topLevelItemCount() == 0
    new = NewKeyDialog(dialog)
    new.label.setText("US cart 2")
    new.passphrase.setText("one")
    new.repeat.setText("two")
    new._accept()
    assert "differ" in new.problem.text() and new.created is None
    new.repeat.setText("one")
    new._accept()
    assert new.created is not None
    dialog.refresh()
    assert dialog.own.topLevelItem(0).text(1) == "US cart 2"
    assert dialog.own.topLevelItem(0).text(0) == "★"  # first key becomes the default
    assert dialog.trusted.topLevelItemCount() == 1
    dialog.trusted.setCurrentItem(dialog.trusted.topLevelItem(0))
    dialog.untrust_key()
    assert dialog.trusted.topLevelItemCount() == 0
    assert keys.trusted_keys() == []


def test_dicom_signature_and_its_failure_show_in_the_provenance_dock(qtbot, window, tmp_path):
    """A hospital's PS3.15 signature (no record of ours) vouches for the image; a changed
    signed attribute turns it into tampering, named in the dock."""
    from workbench.provenance.standards.certificates import create_local_pki
    from workbench.provenance.standards.dicom_signature.sign import sign_dicom

    w = window
    identity = create_local_pki("CT room", "gui test passphrase", organisation="Hospital")
    signed = tmp_path / "CT_signed.dcm"
    sign_dicom(pydicom_test_file("CT_small.dcm"), signed, identity)
    result = open_and_wait_verified(qtbot, w, signed)
    assert result.verdict == "intact"
    rows = {r[1]: r for r in w.provenance.check_rows()}
    assert rows["DICOM signature"][0] == "✔" and "CN=CT room" in rows["DICOM signature"][2]
    assert "DICOM signature" in w.provenance.summary_label.text()

    changed = tmp_path / "CT_changed.dcm"
    ds = pydicom.dcmread(signed)
    ds.PatientID = "other"
    ds.save_as(changed)
    result = open_and_wait_verified(qtbot, w, changed)
    assert result.verdict == "tampered"
    qtbot.waitUntil(lambda: w.provenance.verdict_label.text() == "✖ tampered", timeout=TIMEOUT)
    rows = {r[1]: r for r in w.provenance.check_rows()}
    assert rows["DICOM signature"][0] == "✖" and "MAC mismatch" in rows["DICOM signature"][2]


def test_changed_region_names_the_pasted_square_and_opens_compare_there(qtbot, window,
                                                                        tmp_path, shared_data):
    """A signed photo and a copy with a 60x60 square pasted in (its sidecar copied along,
    as in a copied archive): the dock says exactly where, and Compare opens zoomed there."""
    import numpy as np
    from PIL import Image

    w = window
    rgb = np.asarray(Image.open(shared_data / "dermoscopy" / "isic" / "images"
                                / "ISIC_0000003.jpg").convert("RGB"))
    original = tmp_path / "lesion.png"
    Image.fromarray(rgb).save(original)
    open_and_wait_verified(qtbot, w, original)
    w.sign_current()
    qtbot.waitUntil(lambda: w.verifications[str(original)].verdict == "intact",
                    timeout=TIMEOUT)
    pasted = rgb.copy()
    pasted[40:100, 100:160] = 255 - pasted[40:100, 100:160]  # every pixel of it changes
    copy = tmp_path / "archive" / "lesion.png"
    copy.parent.mkdir()
    Image.fromarray(pasted).save(copy)
    shutil.copy(sidecar_path(original), sidecar_path(copy))
    assert open_and_wait_verified(qtbot, w, copy).verdict == "tampered"
    qtbot.waitUntil(lambda: w.study.current is not None and w.study.current.path == str(copy)
                    and w.study.current.changed_region is not None, timeout=TIMEOUT)
    region = w.study.current.changed_region
    assert (region.row, region.col, region.rows, region.cols) == (40, 100, 60, 60)
    assert region.pixels == 3600 and region.original == str(original)
    text = w.provenance.region_label.text()
    assert "3,600 pixel(s) changed in a 60×60 box at x 100–159, y 40–99" in text
    assert "lesion.png, the signed original" in text
    assert w.provenance.region_button.isVisible()

    w.provenance.region_button.click()
    assert w.tabs.currentWidget() is w.comparison
    cv = w.comparison
    assert cv.paths == {cv.left: str(original), cv.right: str(copy)}
    assert (cv.right._center.x(), cv.right._center.y()) == pytest.approx((130, 70))
    assert cv.right.zoom > 1.0  # zoomed in on the square, not the whole photo
    assert cv.left.zoom == pytest.approx(cv.right.zoom)  # the reference follows


def test_changed_region_without_the_original_says_it_cannot_locate(qtbot, window, tmp_path):
    from workbench.cli import main

    w = window
    path = tmp_path / "CT_small.dcm"
    shutil.copy(pydicom_test_file("CT_small.dcm"), path)
    assert main(["sign", str(path)]) == 0  # signed at capture; the original is not opened
    copy = tmp_path / "copy" / "CT_small.dcm"
    copy.parent.mkdir()
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array.copy()
    arr[10, 20] += 5
    ds.PixelData = arr.tobytes()
    ds.save_as(copy)
    shutil.copy(sidecar_path(path), sidecar_path(copy))
    assert open_and_wait_verified(qtbot, w, copy).verdict == "tampered"
    qtbot.waitUntil(lambda: w.study.current is not None and w.study.current.path == str(copy)
                    and w.provenance.region_label.text() != "", timeout=TIMEOUT)
    assert w.study.current.changed_region is None
    assert "not located" in w.provenance.region_label.text()
    assert "open the signed original" in w.provenance.region_label.text()
    assert not w.provenance.region_button.isVisible()
