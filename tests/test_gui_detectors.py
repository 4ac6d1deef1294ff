"""The detectors dock in the real window: run every detector on a real photo, read the
table, click a row and see its evidence map over the image."""

from __future__ import annotations

import pytest

TIMEOUT = 240_000


def test_run_detectors_and_show_evidence(qtbot, window, shared_data):
    w = window
    w.models.load_model("demo")
    qtbot.waitUntil(lambda: w.study.model is not None, timeout=TIMEOUT)
    photo = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000001.jpg"
    w.open_paths([photo])
    qtbot.waitUntil(lambda: w.view.image is not None, timeout=TIMEOUT)
    assert w.run_detectors()
    qtbot.waitUntil(lambda: w.detect_task is None, timeout=TIMEOUT)
    rows = {r[0].replace("  ▣", ""): r for r in w.detectors.rows()}
    for name in ("capture-record", "feature-squeezing", "transform-instability", "ela",
                 "dicom-header", "noise-residual", "patch-localisation"):
        assert name in rows, rows.keys()
    assert rows["capture-record"][3] == "inconclusive"  # unsigned: no record to compare with
    # a fresh install judges with the shipped thresholds (made on the card's training
    # images): calibrated, with the threshold shown
    assert rows["feature-squeezing"][3] in ("clean", "suspicious")
    assert rows["feature-squeezing"][2] != "-"
    assert rows["dicom-header"][3] == "inconclusive"  # a photo, not DICOM
    # hovering anywhere on a row shows its explanation, often off the dock's right edge
    top = w.detectors.table.topLevelItem(0)
    assert top.text(5) and all(top.toolTip(c) == top.text(5) for c in range(6))
    # each row says how long it took; no-model detectors ran first (they answer soonest)
    first = w.detectors.rows()
    assert all(r[4].endswith(" s") for r in first)
    needs_model = [rows[n][0] for n in ("feature-squeezing", "transform-instability")]
    assert [r[0] for r in first].index(needs_model[0]) > [r[0] for r in first].index(
        rows["noise-residual"][0])
    # the next run goes fastest first, by the times just measured
    measured = {o.name: o.seconds for o in w.study.current.findings.outcomes.values()}
    assert w.run_detectors()
    qtbot.waitUntil(lambda: w.detect_task is None, timeout=TIMEOUT)
    order = [r[0].replace("  ▣", "") for r in w.detectors.rows()]
    assert order == sorted(measured, key=lambda n: (measured[n], n))
    with_map = [i for i in range(w.detectors.table.topLevelItemCount())
                if w.detectors.table.topLevelItem(i).text(0).endswith("▣")]
    assert with_map
    item = w.detectors.table.topLevelItem(with_map[0])
    w.detectors.table.itemClicked.emit(item, 0)
    assert w.tabs.currentWidget() is w.evidence_view
    shown = w.evidence_view.array
    assert shown is not None and shown.shape[:2] == (767, 1022)


def test_evidence_of_a_multiframe_image_is_drawn_over_the_frame_it_was_made_on(
        qtbot, window, shared_data):
    """Detectors examine frame 1. Viewing frame 7 in the Image tab and clicking a row
    drew frame 1's map over frame 7; now over frame 1, and every place says so."""
    import numpy as np

    from workbench.imaging.display import render

    w = window
    mr = shared_data / "dicom" / "pydicom-data" / "emri_small.dcm"  # 10 frames, no model fits
    w.open_paths([mr])
    qtbot.waitUntil(lambda: w.view.image is not None, timeout=TIMEOUT)
    w.view.set_frame(6)
    assert w.run_detectors()
    qtbot.waitUntil(lambda: w.detect_task is None, timeout=TIMEOUT)
    assert ", frame 1 of 10" in w.detectors.header.text()
    qtbot.waitUntil(lambda: "examined frame 1 of 10 only" in w.verdict_banner.banner.text(),
                    timeout=TIMEOUT)
    with_map = [i for i in range(w.detectors.table.topLevelItemCount())
                if w.detectors.table.topLevelItem(i).text(0).endswith("▣")]
    assert with_map
    w.detectors.table.itemClicked.emit(w.detectors.table.topLevelItem(with_map[0]), 0)
    qtbot.waitUntil(lambda: w.evidence_view.array is not None, timeout=TIMEOUT)
    assert "frame 1 of 10" in w.evidence_view.header.text()
    image = w.study.current.image
    assert np.array_equal(w.evidence_view.array, render(image, 0))
    assert not np.array_equal(render(image, 0), render(image, 6))  # it could have failed


@pytest.mark.parametrize("suffix", [".html", ".pdf"])
def test_export_report_from_the_window(qtbot, window, shared_data, tmp_path, suffix):
    w = window
    photo = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000003.jpg"
    w.open_paths([photo])
    qtbot.waitUntil(lambda: w.view.image is not None, timeout=TIMEOUT)
    target = tmp_path / f"case{suffix}"
    assert w.export_report(str(target))
    qtbot.waitUntil(lambda: w.report_task is None and target.is_file(), timeout=TIMEOUT)
    data = target.read_bytes()
    if suffix == ".html":
        assert b"Provenance: unsigned" in data and b"data:image/png;base64," in data
    else:
        assert data.startswith(b"%PDF")
    assert (tmp_path / f"case{suffix}.sha256").is_file()
    assert "Report written" in w.statusBar().currentMessage()
