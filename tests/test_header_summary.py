"""Study-list facts from headers alone: real DICOM files (single and multi-frame), a real
photo, and files whose header cannot say (None, never an exception)."""

from __future__ import annotations

from conftest import pydicom_test_file

from workbench.imaging.loader import load_image
from workbench.imaging.summary import HeaderSummary, header_summary


def test_headers_agree_with_the_decoded_images(shared_data):
    for path in (pydicom_test_file("CT_small.dcm"), pydicom_test_file("examples_ybr_color.dcm"),
                 shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000002.jpg"):
        image = load_image(path)
        modality = "XC" if image.kind == "photo" else image.modality
        assert header_summary(path) == HeaderSummary(modality, image.columns, image.rows,
                                                     image.n_frames), path


def test_a_header_that_cannot_say_gives_none(tmp_path):
    text = tmp_path / "notes.dcm"
    text.write_text("not DICOM at all")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(b"\xff\xd8\xff")
    assert header_summary(text) is None and header_summary(truncated) is None
    assert header_summary(tmp_path / "missing.dcm") is None
