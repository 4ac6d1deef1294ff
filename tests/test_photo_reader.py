"""The photo reader on the real ISIC dermoscopy photographs and lossless re-encodings."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from workbench.imaging import ImageTooLargeError, load_image
from workbench.imaging.display import render

ISIC = Path("dermoscopy") / "isic"
SAMPLE = "images/ISIC_0000000.jpg"  # 1022x767, EXIF orientation 1


def _labels(shared: Path) -> list[dict[str, str]]:
    with (shared / ISIC / "labels.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def sample_rgb(shared_data: Path) -> np.ndarray:
    """One real photo, as the reader decodes it (RGB, uint8)."""
    return load_image(shared_data / ISIC / SAMPLE).pixels


def test_all_isic_photos_load_at_full_resolution(shared_data: Path) -> None:
    rows = _labels(shared_data)
    assert len(rows) == 200
    failures = []
    for row in rows:
        path = shared_data / ISIC / row["image"]
        image = load_image(path)
        got = {
            "size": (image.columns, image.rows),
            "shape": image.pixels.shape,
            "dtype": image.pixels.dtype,
            "samples": image.samples_per_pixel,
            "photometric": image.photometric,
            "modality": image.modality,
            "kind": image.kind,
            "writeable": image.pixels.flags.writeable,
        }
        width, height = int(row["width"]), int(row["height"])
        want = {
            "size": (width, height),
            "shape": (height, width, 3),
            "dtype": np.dtype(np.uint8),
            "samples": 3,
            "photometric": "RGB",
            "modality": "XC",
            "kind": "photo",
            "writeable": False,
        }
        if got != want:
            failures.append(f"{row['image']}: {got} != {want}")
    assert not failures, "\n".join(failures)


def test_pixels_are_in_rgb_order(shared_data: Path, sample_rgb: np.ndarray) -> None:
    path = shared_data / ISIC / SAMPLE
    expected = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert sample_rgb.shape == expected.shape
    assert np.array_equal(sample_rgb, expected)
    # Red and blue really differ in this photo, so a swapped order could not pass.
    assert not np.array_equal(sample_rgb[..., 0], sample_rgb[..., 2])


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp"])
def test_lossless_formats_round_trip_pixel_identical(
    tmp_path: Path, sample_rgb: np.ndarray, suffix: str
) -> None:
    path = tmp_path / f"photo{suffix}"
    assert cv2.imwrite(str(path), cv2.cvtColor(sample_rgb, cv2.COLOR_RGB2BGR))
    image = load_image(path)
    assert image.kind == "photo"
    assert image.photometric == "RGB"
    assert image.samples_per_pixel == 3
    assert image.pixels.dtype == np.uint8
    assert image.pixels.shape == sample_rgb.shape
    assert np.array_equal(image.pixels, sample_rgb)
    assert image.transfer_syntax == {".png": "PNG", ".tif": "TIFF", ".bmp": "BMP"}[suffix]


def test_16_bit_grayscale_png_keeps_uint16(tmp_path: Path, sample_rgb: np.ndarray) -> None:
    gray8 = cv2.cvtColor(sample_rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16)
    # Spread the real 8-bit values over 16 bits and use the low byte too.
    gray16 = (gray8 * 257 + (np.arange(gray8.size, dtype=np.uint16) % 251).reshape(gray8.shape))
    path = tmp_path / "gray16.png"
    assert cv2.imwrite(str(path), gray16)
    image = load_image(path)
    assert image.pixels.dtype == np.uint16
    assert image.pixels.shape == gray16.shape
    assert image.samples_per_pixel == 1
    assert image.photometric == "MONOCHROME2"
    assert image.bits_stored == 16
    assert np.array_equal(image.pixels, gray16)
    assert int(image.pixels.max()) > 255


# EXIF orientation -> the PIL transpose that shows the photo upright.
PIL_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@pytest.fixture(scope="module")
def small_photo(shared_data: Path) -> Image.Image:
    with Image.open(shared_data / ISIC / SAMPLE) as im:
        # Odd, unequal sides catch any mix-up between rows and columns.
        return im.convert("RGB").resize((255, 191))


@pytest.mark.parametrize("orientation", range(2, 9))
def test_exif_orientation_is_applied_for_display_only(
    tmp_path: Path, small_photo: Image.Image, orientation: int
) -> None:
    w, h = small_photo.size
    path = tmp_path / f"orientation{orientation}.jpg"
    exif = Image.Exif()
    exif[274] = orientation
    small_photo.save(path, exif=exif, quality=95)
    plain = tmp_path / "orientation1.jpg"
    small_photo.save(plain, quality=95)

    image = load_image(path)
    assert image.orientation == orientation
    assert image.metadata["Orientation (EXIF)"] == orientation
    assert image.metadata["EXIF Orientation"] == orientation
    assert image.pixels.shape == (h, w, 3)  # stored as the camera wrote it
    # Same JPEG data as the upright file: the tag changes nothing in storage.
    assert np.array_equal(image.pixels, load_image(plain).pixels)

    shown = render(image)
    assert shown.shape == ((w, h, 3) if orientation >= 5 else (h, w, 3))
    assert render(image, oriented=False).shape == (h, w, 3)

    # Equal to the orientation-1 rendering transposed as EXIF says ...
    upright = render(load_image(plain))
    expected = np.asarray(Image.fromarray(upright).transpose(PIL_TRANSPOSE[orientation]))
    assert np.array_equal(shown, expected)

    # ... and to what Pillow shows for the same file (decoders may differ slightly).
    with Image.open(path) as im:
        pil = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    assert shown.shape == pil.shape
    assert np.abs(shown.astype(np.int16) - pil.astype(np.int16)).mean() < 2.0

    # Orientation must not be a no-op for this asymmetric photo.
    assert not np.array_equal(shown[: min(h, w), : min(h, w)], upright[: min(h, w), : min(h, w)])


# Regression: Pillow's getexif() decodes a whole PNG; the size must be checked first.
def test_png_size_limit_is_checked_before_any_pixel_is_decoded(
    tmp_path: Path, sample_rgb: np.ndarray
) -> None:
    path = tmp_path / "photo.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(sample_rgb, cv2.COLOR_RGB2BGR))
    data = bytearray(path.read_bytes())
    # Damage the compressed pixel data only (the IHDR header stays valid): a reader that
    # checks the size from the header first must refuse on size without touching it.
    idat = data.find(b"IDAT")
    for offset in range(idat + 200, idat + 4000, 97):
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(ImageTooLargeError):
        load_image(path, max_bytes=1000)


def test_48_bit_rgb_png_keeps_16_bits_per_sample(tmp_path: Path, sample_rgb: np.ndarray) -> None:
    rgb16 = sample_rgb[:200, :300].astype(np.uint16) * 257
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    image = load_image(path)
    assert image.pixels.dtype == np.uint16
    assert image.photometric == "RGB"
    assert np.array_equal(image.pixels, rgb16)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_size_limit_counts_16_bit_rgb_samples(
    tmp_path: Path, sample_rgb: np.ndarray, suffix: str
) -> None:
    rgb16 = sample_rgb[:200, :300].astype(np.uint16) * 257
    path = tmp_path / f"rgb16{suffix}"
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    decoded_bytes = rgb16.nbytes  # 200 * 300 * 3 samples * 2 bytes
    with pytest.raises(ImageTooLargeError):
        load_image(path, max_bytes=decoded_bytes - 1)
