"""The display pipeline: VOI functions against DICOM PS3.3 C.11.2.1.2, the LUT fast path
against a direct computation, presentation (MONOCHROME1, palette) and EXIF orientation."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import pydicom_test_dir, pydicom_test_file
from PIL import Image

from workbench.imaging import MedicalImage, Window, load_image
from workbench.imaging.display import (
    apply_window,
    display_to_stored,
    orient,
    oriented_shape,
    render,
)
from workbench.imaging.medical_image import ValueTransform
from workbench.imaging.presets import PRESETS_CT


# --- reference VOI functions, written from the standard's pseudo-code ---------------------
def ref_linear(x: np.ndarray, c: float, w: float) -> np.ndarray:
    """C.11.2.1.2.1: LINEAR (ymin 0, ymax 255)."""
    x = np.asarray(x, dtype=np.float64)
    low = c - 0.5 - (w - 1) / 2
    high = c - 0.5 + (w - 1) / 2
    mid = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255 if w > 1 else np.zeros_like(x)
    return np.where(x <= low, 0.0, np.where(x > high, 255.0, mid))


def ref_linear_exact(x: np.ndarray, c: float, w: float) -> np.ndarray:
    """C.11.2.1.3.2: LINEAR_EXACT."""
    x = np.asarray(x, dtype=np.float64)
    mid = ((x - c) / w + 0.5) * 255
    return np.where(x <= c - w / 2, 0.0, np.where(x > c + w / 2, 255.0, mid))


def ref_sigmoid(x: np.ndarray, c: float, w: float) -> np.ndarray:
    """C.11.2.1.3.1: SIGMOID."""
    x = np.asarray(x, dtype=np.float64)
    return 255.0 / (1.0 + np.exp(-4.0 * (x - c) / w))


REFERENCE = {"LINEAR": ref_linear, "LINEAR_EXACT": ref_linear_exact, "SIGMOID": ref_sigmoid}

# (function, value, expected 8-bit output) for centre 40, width 400; worked out by hand.
HAND_POINTS = [
    ("LINEAR", -1000, 0), ("LINEAR", -160.5, 0), ("LINEAR", -160, 0),
    ("LINEAR", -159, 1),  # (-198.5/399 + 0.5) * 255 = 0.64
    ("LINEAR", -60, 64),  # 63.91
    ("LINEAR", 40, 128),  # 127.82
    ("LINEAR", 139, 191),  # 191.09
    ("LINEAR", 238, 254),  # 254.36
    ("LINEAR", 239, 255), ("LINEAR", 239.5, 255), ("LINEAR", 1000, 255),
    ("LINEAR_EXACT", -1000, 0), ("LINEAR_EXACT", -160, 0),
    ("LINEAR_EXACT", -159, 1),  # 0.64
    ("LINEAR_EXACT", -100, 38),  # 38.25
    ("LINEAR_EXACT", 0, 102),  # 102.0
    ("LINEAR_EXACT", 140, 191),  # 191.25
    ("LINEAR_EXACT", 239, 254),  # 254.36
    ("LINEAR_EXACT", 240, 255), ("LINEAR_EXACT", 1000, 255),
    ("SIGMOID", -360, 5),  # 255 / (1 + e^4) = 4.59
    ("SIGMOID", -60, 69),  # 255 / (1 + e) = 68.58
    ("SIGMOID", 140, 186),  # 255 / (1 + e^-1) = 186.42
    ("SIGMOID", 440, 250),  # 250.41
    ("SIGMOID", 5000, 255), ("SIGMOID", -5000, 0),
]


@pytest.mark.parametrize(("function", "value", "expected"), HAND_POINTS,
                         ids=[f"{f}-{v}" for f, v, _ in HAND_POINTS])
def test_apply_window_hand_computed_points(function: str, value: float, expected: int) -> None:
    out = apply_window(np.array([value]), Window(40, 400, function=function))
    assert out.dtype == np.uint8
    assert int(out[0]) == expected


def test_apply_window_linear_width_one_is_a_threshold() -> None:
    out = apply_window(np.array([-5.0, 99.49, 99.5, 99.51, 100.0, 300.0]), Window(100, 1))
    assert out.tolist() == [0, 0, 0, 255, 255, 255]


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize(("center", "width"), [(40, 400), (-600, 1500), (0.5, 2), (1000, 3.5),
                                               (2047.5, 4096)])
def test_apply_window_follows_the_standard(function: str, center: float, width: float) -> None:
    x = np.linspace(center - 2 * width - 10, center + 2 * width + 10, 20001)
    x = np.concatenate([x, np.arange(np.floor(x[0]), np.ceil(x[-1]) + 1)])  # integers too
    got = apply_window(x, Window(center, width, function=function)).astype(np.float64)
    ref = REFERENCE[function](x, center, width)
    assert np.max(np.abs(got - ref)) <= 0.5 + 1e-9
    assert got.min() == 0 and got.max() == 255  # two widths either side saturate


# --- rendering real files ---------------------------------------------------------------------
def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def ct_small() -> MedicalImage:
    return load_image(pydicom_test_file("CT_small.dcm"))


def test_different_windows_render_differently(ct_small: MedicalImage) -> None:
    soft = render(ct_small, window=Window(40, 400))
    lung = render(ct_small, window=Window(-600, 1500))
    assert soft.shape == lung.shape == (128, 128, 3)
    assert soft.dtype == lung.dtype == np.uint8
    assert not np.array_equal(soft, lung)
    # Monochrome data renders grey: the three channels are equal.
    assert np.array_equal(soft[..., 0], soft[..., 1])
    assert np.array_equal(soft[..., 0], soft[..., 2])


WINDOWS = [*PRESETS_CT, Window(100, 50, function="LINEAR_EXACT"),
           Window(0, 1000, function="SIGMOID"), Window(-1024.5, 1)]


def _synthetic_int16(dtype: str) -> MedicalImage:
    pixels = np.arange(-32768, 32768, dtype=np.int64).reshape(256, 256).astype(dtype)
    return MedicalImage(
        path=Path("synthetic.dcm"), kind="dicom", pixels=pixels, n_frames=1,
        samples_per_pixel=1, photometric="MONOCHROME2", stored_photometric="MONOCHROME2",
        modality="CT", metadata=None, bits_allocated=16, bits_stored=16,
        pixel_representation=1,
        value_transforms=(ValueTransform(slope=0.5, intercept=-100.0, unit="HU"),),
    )


def _int16_images() -> list[tuple[str, object]]:
    return [
        ("CT_small", lambda: load_image(pydicom_test_file("CT_small.dcm"))),
        ("MR_small_bigendian", lambda: load_image(pydicom_test_file("MR_small_bigendian.dcm"))),
        ("synthetic_int16", lambda: _synthetic_int16("<i2")),
        ("synthetic_int16_big_endian", lambda: _synthetic_int16(">i2")),
    ]


@pytest.mark.parametrize("make", [m for _, m in _int16_images()],
                         ids=[n for n, _ in _int16_images()])
@pytest.mark.parametrize("window", WINDOWS, ids=[f"{w.function}-{w.center}-{w.width}"
                                                  for w in WINDOWS])
def test_int16_lut_path_equals_direct_computation(make, window: Window) -> None:
    image = make()
    assert image.pixels.dtype.kind == "i" and image.pixels.dtype.itemsize == 2
    vt = image.value_transform(0)
    values = image.pixels.astype(np.float64) * vt.slope + vt.intercept
    expected = apply_window(values, window)
    got = render(image, window=window)
    assert got.shape == (*image.pixels.shape, 3)
    assert np.array_equal(got[..., 0], expected)
    assert np.array_equal(render(image, window=window, gray=True), expected)
    # And against the standard directly, not only against apply_window.
    ref = REFERENCE[window.function](values, window.center, window.width)
    assert np.max(np.abs(got[..., 0] - ref)) <= 0.5 + 1e-9


def _monochrome1_files() -> list[str]:
    return ["pydicom:dicomdirtests/77654033/CR1/6154", "shared:pydicom-data/RG3_J2KI.dcm",
            "shared:orthanc/Issue44/Monochrome1-Jpeg.dcm"]


def _resolve(request: pytest.FixtureRequest, spec: str) -> Path:
    where, rel = spec.split(":", 1)
    if where == "pydicom":
        return pydicom_test_dir() / rel
    return request.getfixturevalue("shared_data") / "dicom" / rel


@pytest.mark.parametrize("spec", _monochrome1_files())
def test_monochrome1_renders_inverted(request: pytest.FixtureRequest, spec: str) -> None:
    image = load_image(_resolve(request, spec))
    assert image.photometric == "MONOCHROME1"
    as_mono2 = replace(image, photometric="MONOCHROME2", display_cache={})
    assert not as_mono2.inverted
    for window in (None, image.default_window(), Window(image.value_range()[0] + 10, 50)):
        inverted = render(image, window=window)
        plain = render(as_mono2, window=window)
        assert np.array_equal(inverted.astype(np.int16), 255 - plain.astype(np.int16))
        assert np.array_equal(render(image, window=window, gray=True),
                              255 - render(as_mono2, window=window, gray=True))
    # The stored values are never inverted.
    assert np.shares_memory(as_mono2.pixels, image.pixels)


def _render_files() -> list[str]:
    return ["pydicom:CT_small.dcm", "pydicom:MR_small_bigendian.dcm", "pydicom:SC_rgb_rle.dcm",
            "pydicom:examples_palette.dcm", "pydicom:rtdose_1frame.dcm",
            "pydicom:SC_rgb_rle_32bit.dcm", "shared:pydicom-data/OBXXXX1A_2frame.dcm",
            "shared:pydicom-data/emri_small_big_endian.dcm", "shared:pydicom-data/US1_J2KR.dcm"]


@pytest.mark.parametrize("spec", _render_files())
def test_render_never_modifies_the_pixels(request: pytest.FixtureRequest, spec: str) -> None:
    image = load_image(_resolve(request, spec))
    before = _sha(image.pixels)
    dtype = image.pixels.dtype
    outputs = []
    for frame in range(image.n_frames):
        outputs.append(render(image, frame))
    outputs.append(render(image, window=Window(10, 20)))
    outputs.append(render(image, window=Window(10, 20, function="SIGMOID"), gray=True, step=3))
    outputs.append(render(image, use_voi_lut=True))
    assert _sha(image.pixels) == before
    assert image.pixels.dtype == dtype
    assert image.pixels.flags.writeable is False
    for out in outputs:
        assert out.dtype == np.uint8
        assert not np.shares_memory(out, image.pixels)


@pytest.mark.parametrize("spec", ["pydicom:CT_small.dcm", "pydicom:MR_small_bigendian.dcm",
                                  "shared:pydicom-data/RG3_J2KI.dcm",
                                  "shared:pydicom-data/emri_small.dcm"])
def test_gray_is_channel_zero_of_rgb(request: pytest.FixtureRequest, spec: str) -> None:
    image = load_image(_resolve(request, spec))
    for window in (None, Window(100, 300), Window(100, 300, function="SIGMOID")):
        rgb = render(image, window=window)
        gray = render(image, window=window, gray=True)
        assert gray.ndim == 2
        assert gray.shape == rgb.shape[:2]
        assert np.array_equal(gray, rgb[..., 0])


@pytest.mark.parametrize("spec", ["pydicom:CT_small.dcm", "pydicom:SC_rgb_rle.dcm",
                                  "pydicom:examples_palette.dcm", "pydicom:rtdose_1frame.dcm",
                                  "shared:pydicom-data/RG3_J2KI.dcm",
                                  "shared:pydicom-data/OBXXXX1A_2frame.dcm"])
def test_step_is_every_nth_pixel(request: pytest.FixtureRequest, spec: str) -> None:
    image = load_image(_resolve(request, spec))
    for step in (2, 4, 7):
        full = render(image)
        assert np.array_equal(render(image, step=step), full[::step, ::step])
        assert np.array_equal(render(image, step=step, gray=True),
                              render(image, gray=True)[::step, ::step])


def _oriented_photo(tmp_path: Path, orientation: int, shared: Path) -> MedicalImage:
    with Image.open(shared / "dermoscopy" / "isic" / "images" / "ISIC_0000000.jpg") as im:
        small = im.convert("RGB").resize((255, 191))
    exif = Image.Exif()
    exif[274] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    small.save(path, exif=exif, quality=95)
    return load_image(path)


def test_step_on_an_upright_photo(tmp_path: Path, shared_data: Path) -> None:
    image = _oriented_photo(tmp_path, 1, shared_data)
    assert np.array_equal(render(image, step=4), render(image)[::4, ::4])


def test_step_on_a_rotated_photo(tmp_path: Path, shared_data: Path) -> None:
    image = _oriented_photo(tmp_path, 6, shared_data)
    assert np.array_equal(render(image, step=4), render(image)[::4, ::4])


# --- EXIF orientation helpers -------------------------------------------------------------
PIL_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}


@pytest.mark.parametrize(("rows", "cols"), [(5, 7), (6, 6), (1, 4)])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_and_display_to_stored_are_inverses(rows: int, cols: int,
                                                   orientation: int) -> None:
    a = np.arange(rows * cols).reshape(rows, cols)
    shown = orient(a, orientation)
    assert shown.shape == oriented_shape(rows, cols, orientation)
    seen = set()
    for r in range(shown.shape[0]):
        for c in range(shown.shape[1]):
            sr, sc = display_to_stored(r, c, rows, cols, orientation)
            assert 0 <= sr < rows and 0 <= sc < cols
            assert shown[r, c] == a[sr, sc]
            seen.add((sr, sc))
    assert len(seen) == rows * cols  # a bijection
    # And orient() agrees with EXIF as Pillow implements it.
    if orientation != 1:
        pil = np.asarray(Image.fromarray(a.astype(np.uint8)).transpose(PIL_TRANSPOSE[orientation]))
        assert np.array_equal(shown, pil)


def test_orient_returns_a_view() -> None:
    a = np.arange(12).reshape(3, 4)
    for orientation in range(1, 9):
        assert np.shares_memory(orient(a, orientation), a)


# --- palette colour -----------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["shared:pydicom-data/OBXXXX1A_2frame.dcm",
                                  "shared:pydicom-data/OBXXXX1A_rle_2frame.dcm",
                                  "shared:pydicom-data/gdcm-US-ALOKA-16.dcm",
                                  "pydicom:examples_palette.dcm"])
def test_palette_colour_matches_pydicom(request: pytest.FixtureRequest, spec: str) -> None:
    from pydicom.pixels import apply_color_lut

    image = load_image(_resolve(request, spec))
    assert image.is_palette
    for frame in range(image.n_frames):
        rgb = render(image, frame)
        assert rgb.shape == (*image.frame(frame).shape, 3)
        assert rgb.dtype == np.uint8
        # Not grey: the channels differ somewhere.
        assert (rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 1] != rgb[..., 2]).any()
        expected = apply_color_lut(np.asarray(image.frame(frame)), image.metadata)
        if expected.dtype != np.uint8:  # 16-bit LUT entries: scale 0..65535 to 0..255
            assert expected.max() <= 65535
            expected = np.rint(expected.astype(np.float64) / 257.0).astype(np.uint8)
        assert np.array_equal(rgb, expected)
