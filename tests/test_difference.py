"""Difference maps and statistics on real images, against scikit-image and OpenCV."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import pydicom_test_file

from workbench.analysis.difference import abs_difference, difference_stats, signed_difference
from workbench.imaging import load_image


def test_one_pixel_and_one_square_are_exactly_where_the_change_is(shared_data):
    mammo = load_image(shared_data / "dicom" / "mammography" / "sfm-malign-0" / "1-282.dcm")
    a = np.asarray(mammo.pixels)
    b = a.copy()
    b[1000, 700] = 65535 - b[1000, 700]  # uint16: a wrap-around would hide this
    diff = abs_difference(a, b)
    assert np.argwhere(diff > 0).tolist() == [[1000, 700]]
    assert diff[1000, 700] == abs(int(b[1000, 700]) - int(a[1000, 700]))
    c = a.copy()
    c[200:230, 300:340] += 7
    stats = difference_stats(a, c, data_range=65535)
    assert stats["changed_pixels"] == 30 * 40
    assert stats["bounding_box"] == {"row": 200, "col": 300, "rows": 30, "cols": 40}
    assert stats["linf"] == 7
    assert signed_difference(a, c)[210, 310] == 7


def test_psnr_and_ssim_match_reference_implementations(shared_data):
    skimage_metrics = pytest.importorskip("skimage.metrics")
    photo = load_image(shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000002.jpg")
    a = np.asarray(photo.pixels)[:300, :400]
    ok, enc = cv2.imencode(".jpg", cv2.cvtColor(a, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 60])
    b = cv2.cvtColor(cv2.imdecode(enc, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    stats = difference_stats(a, b, data_range=255)
    assert stats["psnr"] == pytest.approx(cv2.PSNR(a, b), abs=1e-3)
    ref = skimage_metrics.structural_similarity(a, b, channel_axis=2, data_range=255,
                                                gaussian_weights=True, sigma=1.5,
                                                use_sample_covariance=False)
    assert stats["ssim"] == pytest.approx(ref, abs=1e-3)
    ct = load_image(pydicom_test_file("CT_small.dcm"))
    x = np.asarray(ct.pixels).astype(np.float64)
    y = x + np.random.default_rng(0).normal(0, 20, x.shape)
    ref = skimage_metrics.structural_similarity(x, y, data_range=float(x.max() - x.min()),
                                                gaussian_weights=True, sigma=1.5,
                                                use_sample_covariance=False)
    assert difference_stats(x, y, float(x.max() - x.min()))["ssim"] == pytest.approx(ref,
                                                                                     abs=1e-3)


def test_display_renderings_round_each_value_once_on_a_real_photo_and_mammogram(shared_data):
    """to_rgb8 (what the attack result shows): every channel is round(255 * clip(v)),
    a grey image's three channels equal, on real pixels with values just off [0, 1]."""
    from workbench.analysis.perturbation import to_rgb8

    photo = load_image(shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000002.jpg")
    rgb = np.asarray(photo.pixels, dtype=np.float32).transpose(2, 0, 1) / 255.0
    rgb[0, :5, :5] = 1.02  # an attack's overshoot before its projection: shown white
    out = to_rgb8(rgb)
    assert out.shape == (*rgb.shape[1:], 3) and out.dtype == np.uint8
    want = np.asarray(photo.pixels).copy()  # 8-bit values / 255 * 255 come back exactly
    want[:5, :5, 0] = 255
    assert np.array_equal(out, want)
    mammo = load_image(shared_data / "dicom" / "mammography" / "sfm-malign-0" / "1-282.dcm")
    grey = np.asarray(mammo.pixels, dtype=np.float32)[None] / 65535.0
    shown = to_rgb8(grey)
    want = np.rint(grey[0] * 255).astype(np.uint8)
    assert shown.shape == (*grey.shape[1:], 3)
    assert all(np.array_equal(shown[..., c], want) for c in range(3))
