"""The window shows one image's results and nothing else: findings, evidence, attack
result and prediction follow the current image, name it, and come back without
recomputing when the reviewer returns to an image."""

from __future__ import annotations

from conftest import pydicom_test_file

TIMEOUT = 240_000


def _open(qtbot, w, path):
    w.open_paths([path])
    qtbot.waitUntil(lambda: w.study.current is not None and w.study.current.path == str(path)
                    and w.view.image is not None and str(w.view.image.path) == str(path),
                    timeout=TIMEOUT)


def _select(qtbot, w, path):
    w.study_list.select_path(str(path))
    qtbot.waitUntil(lambda: w.view.image is not None and str(w.view.image.path) == str(path),
                    timeout=TIMEOUT)


def test_results_follow_the_current_image_and_come_back_without_a_model_call(
        qtbot, window, shared_data):
    w = window
    w.models.load_model("demo")
    qtbot.waitUntil(lambda: w.study.model is not None, timeout=TIMEOUT)
    calls = {"n": 0}
    w.study.model.register_forward_pre_hook(lambda *_a: calls.__setitem__("n", calls["n"] + 1))
    photo = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000002.jpg"
    ct = pydicom_test_file("CT_small.dcm")
    _open(qtbot, w, photo)
    w.open_paths([ct])  # the photo stays current; the CT joins the study
    _select(qtbot, w, photo)
    qtbot.waitUntil(lambda: w.models.prediction.topLevelItemCount() == 2, timeout=TIMEOUT)

    # detectors and a PGD attack on the photo
    assert w.run_detectors()
    qtbot.waitUntil(lambda: w.detect_task is None, timeout=TIMEOUT)
    photo_rows = w.detectors.rows()
    assert len(photo_rows) >= 7 and "ISIC_0000002.jpg" in w.detectors.header.text()
    photo_banner = w.verdict_banner.banner.text()
    assert photo_banner.startswith("ISIC_0000002.jpg — ") and "No verdict yet" not in photo_banner
    item = next(w.detectors.table.topLevelItem(i)
                for i in range(w.detectors.table.topLevelItemCount())
                if w.detectors.table.topLevelItem(i).text(0).endswith("▣"))
    w.detectors.table.itemClicked.emit(item, 0)
    assert w.evidence_view.array is not None
    assert "ISIC_0000002.jpg" in w.evidence_view.header.text()
    ap = w.attacks
    ap.plugin_box.setCurrentIndex(ap.plugin_box.findData("pgd"))
    ap.form.set_value("eps", 0.03)
    ap.form.set_value("steps", 5)
    ap.run_current.click()
    qtbot.waitUntil(lambda: w.attacks.job is None, timeout=TIMEOUT)
    photo_attack = w.study.get(str(photo)).attack
    assert photo_attack is not None and w.result_view.result is photo_attack
    photo_prediction = [w.models.prediction.topLevelItem(i).text(1) for i in range(2)]

    # switch to the CT: nothing of the photo's is shown, and every panel names the CT
    _select(qtbot, w, ct)
    assert w.detectors.rows() == []
    assert "CT_small.dcm" in w.detectors.header.text()
    assert "not run yet" in w.detectors.header.text()
    assert w.evidence_view.array is None and "CT_small.dcm" in w.evidence_view.header.text()
    assert w.result_view.result is None and w.result_view.adversarial.array is None
    assert "CT_small.dcm" in w.result_view.header.text()
    assert "No attack has been run on CT_small.dcm" in w.result_view.verdict.text()
    assert "CT_small.dcm" in w.provenance.header.text()
    qtbot.waitUntil(lambda: "no capture record" in w.verdict_banner.banner.text())
    assert w.verdict_banner.banner.text().startswith("CT_small.dcm — No verdict yet")
    assert "ISIC" not in w.models.header.text()
    # the skin model gives the CT no diagnosis: a warning instead (models.fit)
    assert "CT_small.dcm: no diagnosis" in w.models.header.text()
    assert w.models.mismatch.isVisibleTo(w) and "this image is a CT" in w.models.mismatch.text()
    assert w.models.prediction.topLevelItemCount() == 0

    # switch back: the photo's findings, evidence, attack and prediction, no model call
    before = calls["n"]
    _select(qtbot, w, photo)
    qtbot.wait(300)  # give any (wrongly) started job time to call the model
    assert calls["n"] == before
    assert w.detectors.rows() == photo_rows
    assert "ISIC_0000002.jpg" in w.detectors.header.text()
    assert w.result_view.result is photo_attack
    assert "ISIC_0000002.jpg" in w.result_view.header.text()
    assert w.evidence_view.array is not None
    assert [w.models.prediction.topLevelItem(i).text(1) for i in range(2)] == photo_prediction
    assert "ISIC_0000002.jpg" in w.models.header.text()
    assert w.verdict_banner.banner.text() == photo_banner


def test_an_unreadable_entry_shows_its_error_not_the_previous_image(qtbot, window, tmp_path):
    w = window
    ct = pydicom_test_file("CT_small.dcm")
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"DICM but not really" * 10)
    _open(qtbot, w, ct)
    w.open_paths([bad])
    qtbot.waitUntil(lambda: w.study.get(str(bad)).load_error is not None, timeout=TIMEOUT)
    assert w.view.image is None  # the CT is not shown under the broken file's name
    assert "broken.dcm" in w.error_box.text()
    assert "broken.dcm" in w.windowTitle()
    assert w.detectors.rows() == [] and "broken.dcm" in w.detectors.header.text()


def test_a_chest_x_ray_gets_a_warning_not_a_skin_diagnosis(qtbot, window, shared_data):
    w = window
    # the Model box never names a model that is not loaded
    assert w.models.model_box.currentText() == "(choose a model)" and w.study.model is None
    assert "No model loaded" in w.models.status.text()
    w.models.load_model("demo")
    assert w.models.model_box.currentText() == "demo"
    qtbot.waitUntil(lambda: w.study.model is not None, timeout=TIMEOUT)
    calls = {"n": 0}
    w.study.model.register_forward_pre_hook(lambda *_a: calls.__setitem__("n", calls["n"] + 1))
    cr = shared_data / "dicom" / "pydicom-data" / "RG1_J2KR.dcm"
    _open(qtbot, w, cr)
    qtbot.wait(300)
    text = w.models.mismatch.text()
    assert w.models.mismatch.isVisibleTo(w)
    assert "dermoscopy photographs" in text and "chest X-ray (CR)" in text
    assert "not a diagnosis" in text
    assert w.models.prediction.topLevelItemCount() == 0 and w.models.predicted_class() == ""
    assert calls["n"] == 0  # not even asked
