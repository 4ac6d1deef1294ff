"""The DICOM reader on real files: every file in the shared data and in pydicom's wheel
either loads consistently with its header or fails with a typed error naming the file."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import SHARED_DATA, pydicom_test_dir, pydicom_test_file

from workbench.imaging import (
    ImageLoadError,
    ImageTooLargeError,
    MedicalImage,
    NoPixelDataError,
    TruncatedFileError,
    UnsupportedEncodingError,
    load_image,
)
from workbench.imaging.dicom_reader import LoadCancelled
from workbench.imaging.display import render
from workbench.imaging.limits import ENV_VAR

SKIP_SUFFIXES = {".csv", ".txt", ".md"}


def _shared_dicom_files() -> list[str]:
    root = SHARED_DATA / "dicom"
    if not root.is_dir():
        return []
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() not in SKIP_SUFFIXES
    )


def _pydicom_files() -> list[str]:
    root = pydicom_test_dir()
    if not root.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _read_header(path: Path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, force=True, stop_before_pixels=True)


def _inventory(shared: Path, folder: str) -> dict[str, dict[str, str]]:
    with (shared / "dicom" / folder / "inventory.csv").open(newline="") as fh:
        return {row["file"]: row for row in csv.DictReader(fh)}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_loaded_or_typed_error(path: Path) -> None:
    """Either the image matches its own header, or the error is typed and names the file."""
    try:
        image = load_image(path)
    except ImageLoadError as err:
        assert path.name in str(err), f"error does not name the file: {err}"
        assert err.path == path
        return

    ds = _read_header(path)
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    expected = ((frames,) if frames > 1 else ()) + (rows, cols) + ((spp,) if spp > 1 else ())

    assert image.kind == "dicom"
    assert image.pixels.shape == expected
    assert image.n_frames == frames
    assert image.samples_per_pixel == spp
    assert (image.rows, image.columns) == (rows, cols)
    assert image.frame(image.n_frames - 1).shape == (expected[1:] if frames > 1 else expected)

    bits_allocated = int(ds.BitsAllocated)
    if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
        assert image.pixels.dtype.kind == "f"
    else:
        # pydicom unpacks 1-bit data to one byte per pixel.
        assert image.pixels.dtype.itemsize == max(1, bits_allocated // 8)
        signed = bits_allocated > 1 and int(ds.get("PixelRepresentation", 0) or 0) == 1
        assert image.pixels.dtype.kind == ("i" if signed else "u")
    assert image.bits_allocated == bits_allocated

    assert image.pixels.flags.writeable is False
    with pytest.raises(ValueError):
        image.pixels.flat[0] = 0


@pytest.mark.parametrize("rel", _shared_dicom_files())
def test_every_shared_dicom_file_loads_or_fails_cleanly(shared_data: Path, rel: str) -> None:
    _check_loaded_or_typed_error(shared_data / "dicom" / rel)


@pytest.mark.parametrize("rel", _pydicom_files())
def test_every_pydicom_bundled_file_loads_or_fails_cleanly(rel: str) -> None:
    _check_loaded_or_typed_error(pydicom_test_dir() / rel)


# --- named files -------------------------------------------------------------------------
def test_rg1_chest_cr_is_monochrome1_15_bit(shared_data: Path) -> None:
    inv = _inventory(shared_data, "pydicom-data")["RG1_J2KR.dcm"]
    assert (inv["rows"], inv["cols"]) == ("1955", "1841")
    image = load_image(shared_data / "dicom" / "pydicom-data" / "RG1_J2KR.dcm")
    assert image.modality == "CR"
    assert image.photometric == image.stored_photometric == "MONOCHROME1"
    assert image.rows == 1955
    assert image.columns == 1841
    assert image.pixels.shape == (1955, 1841)
    assert image.pixels.dtype == np.uint16
    assert image.bits_stored == 15
    assert image.inverted is True
    # 15 bits stored: nothing above bit 14 is set.
    assert int(image.pixels.max()) < 2**15


def test_emri_small_is_10_frame_enhanced_mr(shared_data: Path) -> None:
    image = load_image(shared_data / "dicom" / "pydicom-data" / "emri_small.dcm")
    assert image.modality == "MR"
    assert image.metadata.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4.1"  # Enhanced MR
    assert image.n_frames == 10
    assert image.pixels.shape == (10, 64, 64)
    assert image.pixels.dtype == np.uint16


@pytest.mark.parametrize("rel", ["sfm-benign-0/1-130.dcm", "sfm-malign-0/1-282.dcm"])
def test_mammograms_are_16_bit_mg(shared_data: Path, rel: str) -> None:
    inv = _inventory(shared_data, "mammography")[rel]
    image = load_image(shared_data / "dicom" / "mammography" / rel)
    assert image.modality == inv["modality"] == "MG"
    assert image.bits_stored == int(inv["bits_stored"]) == 16
    assert image.pixels.dtype == np.uint16
    assert image.pixels.shape == (int(inv["rows"]), int(inv["cols"]))
    assert image.transfer_syntax == inv["transfer_syntax_uid"]


def test_file_without_transfer_syntax_uid_loads_with_inferred_syntax(shared_data: Path) -> None:
    path = shared_data / "dicom" / "orthanc" / "TransferSyntaxes" / "1.2.840.10008.1.2.dcm"
    before = _sha256(path)
    ds = _read_header(path)
    # The premise of this test: the file's meta really has no Transfer Syntax UID.
    assert "TransferSyntaxUID" not in getattr(ds, "file_meta", {})

    image = load_image(path)
    assert "inferred" in image.transfer_syntax_name
    assert image.transfer_syntax == pydicom.uid.ImplicitVRLittleEndian
    assert image.pixels.shape == (int(ds.Rows), int(ds.Columns))
    assert image.pixels.any()
    assert _sha256(path) == before  # the UID is set in memory only


@pytest.mark.skipif(importlib.util.find_spec("gdcm") is not None,
                    reason="python-gdcm is installed and decodes 12-bit JPEG")
def test_12_bit_jpeg_extended_needs_gdcm(shared_data: Path) -> None:
    path = shared_data / "dicom" / "orthanc" / "TransferSyntaxes" / "1.2.840.10008.1.2.4.51.dcm"
    with pytest.raises(UnsupportedEncodingError) as info:
        load_image(path)
    assert "GDCM" in str(info.value)
    assert path.name in str(info.value)


def test_truncated_pixel_data_is_typed() -> None:
    path = pydicom_test_file("MR_truncated.dcm")
    with pytest.raises(TruncatedFileError) as info:
        load_image(path)
    assert path.name in str(info.value)


def test_rt_plan_has_no_pixel_data() -> None:
    path = pydicom_test_file("rtplan.dcm")
    with pytest.raises(NoPixelDataError) as info:
        load_image(path)
    assert path.name in str(info.value)
    assert "RT Plan" in str(info.value)


def test_ct_small_is_in_hounsfield_units() -> None:
    image = load_image(pydicom_test_file("CT_small.dcm"))
    ds = _read_header(pydicom_test_file("CT_small.dcm"))
    vt = image.value_transform(0)
    assert vt.unit == "HU"
    assert vt.slope == float(ds.RescaleSlope)
    assert vt.intercept == float(ds.RescaleIntercept)
    assert not vt.is_identity


def test_palette_colour_two_frames(shared_data: Path) -> None:
    image = load_image(shared_data / "dicom" / "pydicom-data" / "OBXXXX1A_2frame.dcm")
    assert image.photometric == "PALETTE COLOR"
    assert image.is_palette
    assert image.n_frames == 2
    assert image.pixels.shape == (2, 600, 800)
    assert image.samples_per_pixel == 1


# --- lossless transfer syntaxes decode to the same values ---------------------------------
EMRI_VARIANTS = ["emri_small_RLE.dcm", "emri_small_big_endian.dcm",
                 "emri_small_jpeg_2k_lossless.dcm", "emri_small_jpeg_ls_lossless.dcm"]


@pytest.mark.parametrize("name", EMRI_VARIANTS)
def test_emri_small_lossless_syntaxes_are_identical(shared_data: Path, name: str) -> None:
    folder = shared_data / "dicom" / "pydicom-data"
    ref = load_image(folder / "emri_small.dcm")
    other = load_image(folder / name)
    assert other.transfer_syntax != ref.transfer_syntax
    assert other.pixels.shape == ref.pixels.shape
    # Values, not bytes: the big-endian file decodes to a '>u2' array.
    assert np.array_equal(other.pixels, ref.pixels)


MR_SMALL_VARIANTS = ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm",
                     "MR_small_jpeg_ls_lossless.dcm", "MR_small_implicit.dcm",
                     "MR_small_bigendian.dcm"]


@pytest.mark.parametrize("name", MR_SMALL_VARIANTS)
def test_mr_small_lossless_syntaxes_are_identical(name: str) -> None:
    ref = load_image(pydicom_test_file("MR_small.dcm"))
    other = load_image(pydicom_test_file(name))
    assert other.transfer_syntax != ref.transfer_syntax
    assert other.pixels.shape == ref.pixels.shape == (64, 64)
    assert np.array_equal(other.pixels, ref.pixels)


def test_big_endian_keeps_its_byte_order() -> None:
    image = load_image(pydicom_test_file("MR_small_bigendian.dcm"))
    assert image.pixels.dtype.byteorder == ">"


def test_orthanc_nm_series_lossless_syntaxes_are_identical(shared_data: Path) -> None:
    # The NM whole-body image in the orthanc matrix (JPEG-LS lossless, JPEG 2000 lossless,
    # RLE) and pydicom-data's JPEG-LL.dcm (JPEG lossless SV1) carry the same 1024x256
    # int16 pixels: checked against the data, they are bit-for-bit the same image.
    # (orthanc's 1.2.840.10008.1.2.4.70.dcm is a different CT image, and pydicom's own
    # JPEG2000.dcm is the same scan but JPEG 2000 *lossy*, so neither is compared here.)
    ts = shared_data / "dicom" / "orthanc" / "TransferSyntaxes"
    paths = [ts / "1.2.840.10008.1.2.4.80.dcm", ts / "1.2.840.10008.1.2.4.90.dcm",
             ts / "1.2.840.10008.1.2.5.dcm", shared_data / "dicom" / "pydicom-data" / "JPEG-LL.dcm"]
    images = [load_image(p) for p in paths]
    assert len({im.transfer_syntax for im in images}) == 4
    ref = images[0]
    assert ref.pixels.shape == (1024, 256)
    assert ref.pixels.dtype == np.int16
    for path, image in zip(paths[1:], images[1:], strict=True):
        assert np.array_equal(image.pixels, ref.pixels), path.name


# --- Enhanced multi-frame functional groups ----------------------------------------------
def _functional_group(ds: pydicom.Dataset, frame: int, sequence: str) -> pydicom.Dataset:
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and sequence in per_frame[frame]:
        return per_frame[frame][sequence][0]
    return ds.SharedFunctionalGroupsSequence[0][sequence][0]


def test_enhanced_ct_rescale_and_window_from_functional_groups(shared_data: Path) -> None:
    path = shared_data / "dicom" / "pydicom-data" / "eCT_Supplemental.dcm"
    ds = _read_header(path)
    assert "RescaleIntercept" not in ds and "WindowCenter" not in ds  # only in the groups
    image = load_image(path)
    assert image.n_frames == int(ds.NumberOfFrames) == 2
    for frame in range(image.n_frames):
        item = _functional_group(ds, frame, "PixelValueTransformationSequence")
        vt = image.value_transform(frame)
        assert vt.slope == float(item.RescaleSlope)
        assert vt.intercept == float(item.RescaleIntercept)
        voi = _functional_group(ds, frame, "FrameVOILUTSequence")
        windows = image.windows(frame)
        assert windows, "the file's window was not found"
        assert windows[0].center == float(voi.WindowCenter)
        assert windows[0].width == float(voi.WindowWidth)
    assert image.value_transform(0).intercept == -1024.0
    assert image.default_window(0).center == float(
        _functional_group(ds, 0, "FrameVOILUTSequence").WindowCenter)


# --- the original file is never modified --------------------------------------------------
def _original_files() -> list[tuple[str, str]]:
    return [("pydicom", "CT_small.dcm"), ("pydicom", "MR_small_RLE.dcm"),
            ("pydicom", "JPEG2000.dcm"), ("pydicom", "ExplVR_BigEnd.dcm"),
            ("shared", "orthanc/TransferSyntaxes/1.2.840.10008.1.2.dcm"),
            ("shared", "pydicom-data/OBXXXX1A_2frame.dcm"),
            ("shared", "pydicom-data/RG3_J2KI.dcm")]


@pytest.mark.parametrize(("where", "rel"), _original_files(),
                         ids=[f"{w}/{r}" for w, r in _original_files()])
def test_loading_and_rendering_never_modify_the_file(
    request: pytest.FixtureRequest, tmp_path: Path, where: str, rel: str
) -> None:
    if where == "shared":
        src = request.getfixturevalue("shared_data") / "dicom" / rel
    else:
        src = pydicom_test_file(rel)
    path = tmp_path / src.name
    shutil.copy2(src, path)
    before = _sha256(path)
    mtime = path.stat().st_mtime_ns
    image = load_image(path)
    assert _sha256(path) == before
    for frame in range(image.n_frames):
        render(image, frame)
    render(image, window=image.default_window(), use_voi_lut=True, step=3, gray=True)
    assert _sha256(path) == before
    assert path.stat().st_mtime_ns == mtime
    assert _sha256(src) == before


# --- multi-frame progress and cancel -------------------------------------------------------
@pytest.fixture(scope="module")
def color3d(shared_data: Path) -> tuple[MedicalImage, list[float], list[str]]:
    """The 120-frame JPEG cine, loaded once with a progress callback (it takes a second)."""
    fractions: list[float] = []
    messages: list[str] = []

    def progress(fraction: float, message: str) -> None:
        fractions.append(fraction)
        messages.append(message)

    image = load_image(shared_data / "dicom" / "pydicom-data" / "color3d_jpeg_baseline.dcm",
                       progress=progress)
    return image, fractions, messages


def test_color3d_jpeg_baseline_is_120_frame_rgb(color3d) -> None:
    image = color3d[0]
    assert image.n_frames == 120
    assert image.is_multiframe
    assert image.pixels.shape == (120, 480, 640, 3)
    assert image.pixels.dtype == np.uint8
    assert image.photometric == "RGB"
    assert image.stored_photometric == "YBR_FULL_422"
    assert image.is_color
    # Frames are really different pictures (a cine), not one frame repeated.
    assert not np.array_equal(image.frame(0), image.frame(119))


def test_multiframe_progress_is_monotonic_and_complete(color3d) -> None:
    image, fractions, messages = color3d
    assert image.n_frames == 120
    assert len(fractions) >= 120
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert all(b >= a for a, b in zip(fractions, fractions[1:], strict=False))
    assert fractions[-1] == 1.0
    assert all(isinstance(m, str) and m for m in messages)


def test_multiframe_cancel_raises_load_cancelled(shared_data: Path) -> None:
    path = shared_data / "dicom" / "pydicom-data" / "color3d_jpeg_baseline.dcm"
    with pytest.raises(LoadCancelled) as info:
        load_image(path, cancelled=lambda: True)
    assert isinstance(info.value, ImageLoadError)
    assert path.name in str(info.value)


def test_multiframe_cancel_midway_stops_decoding(shared_data: Path) -> None:
    path = shared_data / "dicom" / "pydicom-data" / "color3d_jpeg_baseline.dcm"
    fractions: list[float] = []
    with pytest.raises(LoadCancelled):
        load_image(path, progress=lambda f, _m: fractions.append(f),
                   cancelled=lambda: len(fractions) >= 5)
    assert len(fractions) == 5
    assert fractions[-1] < 1.0


# --- decompression-bomb guard --------------------------------------------------------------
MAMMOGRAM = "mammography/sfm-benign-0/1-130.dcm"


def test_size_limit_argument(shared_data: Path) -> None:
    path = shared_data / "dicom" / MAMMOGRAM
    with pytest.raises(ImageTooLargeError) as info:
        load_image(path, max_bytes=1_000_000)
    text = str(info.value)
    assert path.name in text
    assert "976.6 KiB" in text  # 1_000_000 bytes, the limit in force


def test_size_limit_environment_variable(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = shared_data / "dicom" / MAMMOGRAM
    monkeypatch.setenv(ENV_VAR, "1000000")
    with pytest.raises(ImageTooLargeError) as info:
        load_image(path)
    assert path.name in str(info.value)
    assert "976.6 KiB" in str(info.value)
    assert ENV_VAR in str(info.value)
    # An explicit argument takes precedence over the environment.
    image = load_image(path, max_bytes=10**9)
    assert image.pixels.shape == (4432, 2864)
