"""File > Open from PACS against a real archive (Orthanc with its DICOMweb plugin, on
loopback ports the test picks): search, choose a study and a series, retrieve with
progress, and the study list holds the archive's very instance; a dead archive is a
message in the dialog, never a frozen or crashed window."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from conftest import altered_ct, pydicom_test_file

pytest.importorskip("dicomweb_client", reason="Open from PACS needs dicomweb-client")
pytest.importorskip("pynetdicom", reason="the test site needs pynetdicom")

from dicom_site import Site, orthanc_archive  # noqa: E402 (after the skips: it needs DCMTK)

FILES = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm"]


@pytest.fixture
def archive(tmp_path: Path):
    site = orthanc_archive(tmp_path, [pydicom_test_file(n) for n in FILES])
    yield site.dicomweb
    site.stop()


def test_open_a_study_from_the_pacs_into_the_study_list(window, qtbot, archive) -> None:
    source = pydicom_test_file("MR_small.dcm")
    want = pydicom.dcmread(source, stop_before_pixels=True)
    window.open_pacs_action.trigger()
    dialog = window.pacs_dialog
    qtbot.waitExposed(dialog)
    dialog.url.setText(archive)
    dialog.modality.setCurrentText("MR")  # the search is by modality
    qtbot.mouseClick(dialog.search_button, qtbot_button())
    qtbot.waitUntil(lambda: dialog.study_table.rowCount() >= 1 and dialog.job is None,
                    timeout=30000)
    uids = [s.study_uid for s in dialog.studies]
    assert str(want.StudyInstanceUID) in uids
    assert all("MR" in s.modalities for s in dialog.studies)
    dialog.study_table.selectRow(uids.index(str(want.StudyInstanceUID)))
    qtbot.waitUntil(lambda: dialog.series_table.rowCount() == 1 and dialog.job is None,
                    timeout=30000)
    dialog.series_table.selectRow(0)
    assert dialog.retrieve_button.isEnabled()
    qtbot.mouseClick(dialog.retrieve_button, qtbot_button())
    qtbot.waitUntil(lambda: bool(dialog.opened_paths), timeout=60000)
    (path,) = dialog.opened_paths
    assert Path(path).read_bytes() == source.read_bytes()  # the archive's bytes, as stored
    qtbot.waitUntil(lambda: window.study.current is not None
                    and window.study.current.path == path and
                    window.study.current.image is not None, timeout=30000)
    image = window.study.current.image
    assert str(image.metadata.SOPInstanceUID) == str(want.SOPInstanceUID)
    assert "1 instance(s) retrieved and opened" in dialog.status.text()
    assert not dialog.progress.isVisible()


def test_a_dead_archive_is_a_message_in_the_dialog(window, qtbot) -> None:
    dialog = window.open_from_pacs()
    dialog.url.setText("http://127.0.0.1:9/dicom-web")
    qtbot.mouseClick(dialog.search_button, qtbot_button())
    qtbot.waitUntil(lambda: "cannot reach the PACS" in dialog.status.text(), timeout=30000)
    assert dialog.search_button.isEnabled() and dialog.study_table.rowCount() == 0
    dialog.url.setText("ftp://nowhere")
    qtbot.mouseClick(dialog.search_button, qtbot_button())
    qtbot.waitUntil(lambda: "http://" in dialog.status.text()
                    and dialog.job is None, timeout=30000)
    assert window.isVisible()


def qtbot_button():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_evidence_of_the_compared_pair_goes_to_the_pacs(window, qtbot, tmp_path) -> None:
    """File > Export Evidence as DICOM on the pair in the Compare tab: the map and the
    segmentation are written, stored to Orthanc, and name the suspect as their source."""
    import io
    import json

    (tmp_path / "site").mkdir()
    site = Site(tmp_path / "site", gateway=False)
    site.start_orthanc()
    try:
        original, suspect, ds = altered_ct(tmp_path, new_uid=True)  # 10 x 15 changed
        window.open_paths([original, suspect])
        for p in (original, suspect):
            window.study_list.select_path(str(p))
            qtbot.waitUntil(lambda p=p: (c := window.study.current) is not None
                            and c.path == str(p) and c.image is not None, timeout=30000)
        assert window.compare_current(str(original))
        out = tmp_path / "evidence"
        job = window.export_evidence(str(out), f"PACS@127.0.0.1:{site.pacs_port}", ask=False)
        assert job is not None
        qtbot.waitUntil(lambda: getattr(window, "last_evidence", None) is not None,
                        timeout=60000)
        result = window.last_evidence["result"]
        assert result.changed_pixels == 150
        assert sorted(p.name for p in result.files) == ["changed_seg.dcm",
                                                        "perturbation_pm.dcm"]
        assert all(s.ok for s in window.last_evidence["stored"])
        stored = site.orthanc_instances()
        for f in result.files:
            written = pydicom.dcmread(f)
            held = pydicom.dcmread(io.BytesIO(stored[str(written.SOPInstanceUID)]))
            assert held.StudyInstanceUID == ds.StudyInstanceUID
            refs = [r.ReferencedSOPInstanceUID for s in held.ReferencedSeriesSequence
                    for r in s.ReferencedInstanceSequence]
            assert str(ds.SOPInstanceUID) in refs  # the suspect it describes
        assert "stored to PACS@" in window.statusBar().currentMessage()
        assert json.loads(site._get("/statistics"))["CountInstances"] == 2
    finally:
        site.stop()
