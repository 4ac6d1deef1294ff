"""Adversarial DICOM exports are valid objects of their source's IOD: dicom3tools'
dciodvfy finds no error in the export that the source did not already have (CT, MR,
Enhanced MR, CR, US), and a big-endian source exports (it crashed) with its values."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import pydicom_test_file

from workbench.imaging.export import save_derived
from workbench.imaging.loader import load_image
from workbench.imaging.model_input import to_model_input

SOURCES = {
    "CT": ("pydicom", "CT_small.dcm"),
    "MR": ("pydicom", "MR_small.dcm"),
    "Enhanced MR": ("shared", "pydicom-data/emri_small.dcm"),
    "Enhanced MR, big endian": ("shared", "pydicom-data/emri_small_big_endian.dcm"),
    "CR": ("shared", "pydicom-data/RG1_J2KR.dcm"),
    "US": ("shared", "pydicom-data/US1_J2KR.dcm"),
}


def _source(request, kind: str, rel: str) -> Path:
    if kind == "pydicom":
        return pydicom_test_file(rel)
    return request.getfixturevalue("shared_data") / "dicom" / rel


def _errors(path: Path) -> set[str]:
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True,
                         timeout=120, check=False)
    return {line for line in (run.stdout + run.stderr).splitlines()
            if line.startswith("Error")}


def _export(src: Path, out: Path) -> Path:
    image = load_image(src)
    x, mapping = to_model_input(image, 0)
    return save_derived(image, x, mapping, out, "test export: identity perturbation")


@pytest.mark.skipif(shutil.which("dciodvfy") is None,
                    reason="dicom3tools is not installed (apt-get install dicom3tools): "
                           "no IOD validation of the exports")
@pytest.mark.parametrize("name", list(SOURCES))
def test_exports_add_no_iod_error(request, tmp_path, name):
    src = _source(request, *SOURCES[name])
    out = _export(src, tmp_path / "export.dcm")
    new = _errors(out) - _errors(src)
    assert not new, sorted(new)


def test_a_big_endian_source_exports_with_its_values(request, tmp_path):
    src = _source(request, *SOURCES["Enhanced MR, big endian"])
    little = _source(request, *SOURCES["Enhanced MR"])  # the same object, little endian
    out = _export(src, tmp_path / "export.dcm")
    written, original = pydicom.dcmread(out), pydicom.dcmread(little)
    assert written.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert np.array_equal(written.pixel_array, original.pixel_array)
    for kw in ("Rows", "Columns", "PatientName", "EchoTime", "PixelSpacing"):
        assert written.get(kw) == original.get(kw), kw
    assert written.ImageType[0] == "DERIVED" and written.SOPInstanceUID != original.SOPInstanceUID


def test_classic_exports_keep_image_type_value_3(tmp_path):
    out = _export(pydicom_test_file("CT_small.dcm"), tmp_path / "ct.dcm")
    assert list(pydicom.dcmread(out).ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]
