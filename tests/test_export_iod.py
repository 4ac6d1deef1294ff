"""Adversarial DICOM exports are valid objects of their source's IOD: dicom3tools'
dciodvfy finds no error in the export that the source did not already have (CT, MR,
Enhanced MR, CR, US, a BINARY Segmentation), and a big-endian source exports (it crashed)
with its values. Every readable file of the shared corpus either exports to a copy the
loader reads back with its frames, its shape and the changed pixel, or is refused with a
reason (an unreadable copy was written for 1-bit Segmentations, the frames of a
multi-frame palette image were dropped)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import SHARED_DATA, pydicom_test_file

from workbench.imaging.display import render
from workbench.imaging.errors import ImageLoadError
from workbench.imaging.export import ExportError, save_derived
from workbench.imaging.loader import is_dicom_file, load_image
from workbench.imaging.model_input import ValueMapping, channels_last, to_model_input

SOURCES = {
    "CT": ("pydicom", "CT_small.dcm"),
    "MR": ("pydicom", "MR_small.dcm"),
    "Enhanced MR": ("shared", "pydicom-data/emri_small.dcm"),
    "Enhanced MR, big endian": ("shared", "pydicom-data/emri_small_big_endian.dcm"),
    "CR": ("shared", "pydicom-data/RG1_J2KR.dcm"),
    "US": ("shared", "pydicom-data/US1_J2KR.dcm"),
    "Segmentation, BINARY": ("shared", "pydicom-data/liver.dcm"),
    "Segmentation, BINARY, one frame": ("pydicom", "liver_1frame.dcm"),
}
NO_DCIODVFY = "dicom3tools is not installed (apt-get install dicom3tools): no IOD validation"


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


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason=NO_DCIODVFY)
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


# --- 1-bit segmentations ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["Segmentation, BINARY", "Segmentation, BINARY, one frame"])
def test_a_binary_segmentation_is_written_packed_and_reads_back(request, tmp_path, name):
    image = load_image(_source(request, *SOURCES[name]))
    last = image.n_frames - 1
    x, mapping = to_model_input(image, last)
    x = x.copy()
    x[0, 0, 0] = 1.0 - x[0, 0, 0]  # one voxel in, or out, of the segment
    out = save_derived(image, x, mapping, tmp_path / "seg.dcm", "test: one voxel flipped",
                       last)
    written, copy = pydicom.dcmread(out), load_image(out)
    assert written.BitsAllocated == 1 and written.SegmentationType == "BINARY"
    n = image.n_frames * image.rows * image.columns
    assert len(written.PixelData) == (n + 7) // 8 + ((n + 7) // 8) % 2  # 1 bit a pixel
    assert copy.pixels.shape == image.pixels.shape
    assert np.array_equal(copy.frame(last), mapping.to_stored(x)[0])
    for i in range(last):
        assert np.array_equal(copy.frame(i), image.frame(i))


def test_a_binary_segmentation_given_other_values_is_refused(request, tmp_path):
    src = _source(request, *SOURCES["Segmentation, BINARY"])
    image = load_image(src)
    x, _ = to_model_input(image, 0)
    x = x.copy()
    x[0, 0, 0] = 1.0
    to_two = ValueMapping(0.0, 2.0, False, "|u1", 1)  # 1.0 -> stored 2: not a 0/1 voxel
    with pytest.raises(ExportError) as refused:
        save_derived(image, x, to_two, tmp_path / "seg.dcm", "test: a value of 2")
    assert str(src) in str(refused.value) and "Bits Allocated 1" in str(refused.value)
    assert not list(tmp_path.iterdir())  # nothing misleading was left behind


@pytest.mark.parametrize("big_endian", [False, True], ids=["little endian", "big endian"])
def test_float_pixel_data_stays_float_pixel_data(tmp_path, big_endian):
    from pydicom.filewriter import dcmwrite

    ds = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    values = ds.pixel_array.astype(np.float32) * 0.5 - 3.25
    del ds.PixelData
    for kw in ("BitsStored", "HighBit", "PixelRepresentation", "RescaleSlope",
               "RescaleIntercept", "SmallestImagePixelValue", "LargestImagePixelValue"):
        if kw in ds:
            delattr(ds, kw)
    ds.BitsAllocated = 32
    ds.FloatPixelData = values.astype(">f4" if big_endian else "<f4").tobytes()
    if big_endian:  # (its Float Pixel Data was swapped twice: once too many)
        for _ in ds.iterall():
            pass
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.2"
    dcmwrite(tmp_path / "float.dcm", ds, little_endian=not big_endian, implicit_vr=False,
             force_encoding=True)
    image = load_image(tmp_path / "float.dcm")
    assert np.array_equal(image.pixels, values)
    x, mapping = to_model_input(image, 0)
    out = save_derived(image, x, mapping, tmp_path / "export.dcm", "test: float")
    written = pydicom.dcmread(out)
    assert "FloatPixelData" in written and "PixelData" not in written  # it had both
    assert np.array_equal(load_image(out).pixels, mapping.to_stored(x)[0])


# --- every readable file of the shared corpus --------------------------------------------
def _corpus() -> list[Path]:
    root = SHARED_DATA / "dicom"
    return sorted(p for p in root.rglob("*") if p.is_file() and is_dicom_file(p)) \
        if root.is_dir() else []


CORPUS = _corpus()


def _corpus_param(path: Path | None) -> object:
    name = path.relative_to(SHARED_DATA / "dicom").as_posix() if path else "no-shared-data"
    return pytest.param(path, id=name)


CORPUS_PARAMS = [_corpus_param(p) for p in CORPUS] or [_corpus_param(None)]


@pytest.fixture(scope="module")
def corpus_exports(tmp_path_factory):
    """One export a corpus file, shared by the read-back and IOD tests: the last frame
    (frame indexing is tested on multi-frame files) with its first pixel set to the
    far end of the frame's range (a real change for every kind of image)."""
    made: dict[Path, tuple] = {}

    def export(src: Path) -> tuple:
        if src not in made:
            try:
                image = load_image(src)
            except ImageLoadError as exc:
                pytest.skip(f"the loader cannot read the source itself: {exc}")
            frame = image.n_frames - 1
            x, mapping = to_model_input(image, frame)
            x = x.copy()
            x[:, 0, 0] = 0.0 if float(x[:, 0, 0].mean()) >= 0.5 else 1.0
            out = tmp_path_factory.mktemp("corpus") / "export.dcm"
            try:
                out = save_derived(image, x, mapping, out, "test export: one pixel changed",
                                   frame)
            except ExportError as exc:
                out = exc
            made[src] = (image, frame, channels_last(mapping.to_stored(x)), out)
        return made[src]

    return export


@pytest.mark.parametrize("src", CORPUS_PARAMS)
def test_every_corpus_file_exports_readably_or_is_refused(request, corpus_exports, src):
    if src is None:
        request.getfixturevalue("shared_data")  # skips, saying where the data should be
        pytest.skip(f"no DICOM files under {SHARED_DATA / 'dicom'}")
    image, frame, saved, out = corpus_exports(src)
    if isinstance(out, ExportError):  # refused: it must say which file, and why
        assert str(src) in str(out) and len(out.reason) > 20, out
        return
    copy = load_image(out)  # an ImageLoadError here is the bug: an export we cannot open
    palette = image.is_palette  # becomes RGB, every frame rendered through the palette
    assert copy.n_frames == image.n_frames
    assert copy.pixels.shape == image.pixels.shape + ((3,) if palette else ())
    assert copy.pixels.dtype == (np.uint8 if palette else image.pixels.dtype.newbyteorder("="))
    assert np.array_equal(copy.frame(frame), saved)
    assert not np.array_equal(saved, render(image, frame, oriented=False) if palette
                              else image.frame(frame))  # the change is there
    for i in range(image.n_frames - 1):  # the frames not attacked, unchanged
        want = render(image, i, oriented=False) if palette else image.frame(i)
        assert np.array_equal(copy.frame(i), want), f"frame {i}"


def _comparable_errors(image, tmp: Path) -> set[str]:
    """The source's errors as dciodvfy reports them. A deflated source is inflated first:
    dciodvfy cannot read Deflated Explicit VR Little Endian and would report none."""
    src = image.path
    if image.transfer_syntax == "1.2.840.10008.1.2.1.99":
        ds = pydicom.dcmread(src)
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
        src = tmp / "inflated.dcm"
        ds.save_as(src)
    return _errors(src)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason=NO_DCIODVFY)
@pytest.mark.parametrize("src", CORPUS_PARAMS)
def test_every_corpus_export_adds_no_iod_error(request, tmp_path, corpus_exports, src):
    if src is None:
        request.getfixturevalue("shared_data")
        pytest.skip(f"no DICOM files under {SHARED_DATA / 'dicom'}")
    image, _, _, out = corpus_exports(src)
    if isinstance(out, ExportError):
        pytest.skip(f"refused: {out}")
    # The copy references its source by SOP Instance UID: a source whose own UID is
    # invalid has that error again, in the reference. It is the source's, not ours.
    uid = str(image.metadata.get("SOPInstanceUID", "")) or None
    new = {e for e in _errors(out) - _comparable_errors(image, tmp_path)
           if uid is None or uid not in e}
    assert not new, sorted(new)
