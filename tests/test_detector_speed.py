"""The detectors' faster paths give the same numbers as the straightforward ones they
replaced (shipped calibrations hold thresholds fitted on those scores): each fast piece
against the old formula on a real ISIC photo, and the model-free scores pinned to the
values the old code gave on it. Model scores are not pinned (oneDNN's float sums differ
between CPUs); their model batches are compared with the old construction instead."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from scipy.ndimage import median_filter

from plugins import (
    detect_ela,
    detect_feature_squeezing,
    detect_noise_residual,
    detect_transform_instability,
)
from workbench import api
from workbench.engine.detector_runner import run_detector
from workbench.imaging import load_image
from workbench.imaging.model_input import to_model_input

PHOTO = "ISIC_0000000.jpg"  # 1022 x 767, the latency benchmark's photo
# What the detectors scored on PHOTO before the fast paths (and still do, exactly).
PINNED = {"ela": 2.6463414634146343, "noise-residual": 0.5413986444473267}


@pytest.fixture(scope="module")
def photo(shared_data):
    path = shared_data / "dermoscopy" / "isic" / "images" / PHOTO
    if not path.is_file():
        pytest.skip(f"{path} not found: the ISIC photos are not beside this checkout")
    return load_image(path)


def test_working_tensor_is_the_reduction_made_once_and_copies_are_fresh(photo):
    x = torch.from_numpy(to_model_input(photo)[0])[None]
    a = api.image_tensor(photo)
    assert torch.equal(a, x)
    a.fill_(0.0)  # a caller writing into its tensor must not change the next one's
    assert torch.equal(api.image_tensor(photo), x)
    h, w = x.shape[-2:]
    s = 512 / max(h, w)
    old = F.interpolate(x, size=(round(h * s), round(w * s)), mode="area")
    assert torch.equal(api.working_tensor(photo, 512), old)
    assert torch.equal(api.working_tensor(photo, 4096), x)  # fits: unchanged


def test_ela_fast_level_and_blocks_equal_the_float_formula(photo):
    src = np.asarray(photo.frame(0))
    bgr = np.ascontiguousarray(src[..., 2::-1])
    _, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    resaved = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    old = np.abs(bgr.astype(np.int16) - resaved.astype(np.int16)).astype(np.float32).max(axis=2)
    level = detect_ela.error_level(bgr, resaved)
    assert level.dtype == np.float32 and np.array_equal(level, old) and old.max() > 0
    hb, wb = level.shape[0] // 8, level.shape[1] // 8
    blocks = old[: hb * 8, : wb * 8].reshape(hb, 8, wb, 8).mean(axis=(1, 3))
    fast = detect_ela.block_means(level, hb, wb)
    assert fast.dtype == np.float32 and np.array_equal(fast, blocks)


def test_median_2x2_is_scipys_rank_filter(photo):
    rng = np.random.default_rng(0)
    cases = [rng.random((3, h, w), dtype=np.float32) for h, w in ((1, 1), (2, 7), (9, 4))]
    cases.append(api.working_tensor(photo, 512)[0].numpy())  # real data, many ties
    for arr in cases:
        old = np.stack([median_filter(c, size=2, mode="reflect") for c in arr])
        assert np.array_equal(detect_feature_squeezing.median_2x2(arr), old)


def test_central_moments_agree_with_numpy(photo):
    x = api.image_tensor(photo)[0, 0].numpy().ravel()
    d = x - x.mean()
    mean, var, m4 = detect_noise_residual.central_moments(x)
    assert mean == float(x.mean()) and var == float(x.var())  # numpy's own algorithm
    assert m4 == pytest.approx(float((d ** 4).mean()), rel=1e-6)
    # the RMS the details give, from the moments instead of a squared copy
    rms = float(np.sqrt((x ** 2).mean()))
    assert np.sqrt(var + mean * mean) == pytest.approx(rms, rel=1e-6)


def test_transform_variants_batch_equals_the_old_construction(photo):
    """The old code: every variant clipped and converted to float32, stacked, transposed
    and copied into the batch; the JPEG input made per variant."""
    det = detect_transform_instability
    p = api.make_params(det.TransformInstability.Params, {})
    hwc = np.ascontiguousarray(api.working_tensor(photo, p.working_size)[0].numpy()
                               .transpose(1, 2, 0))
    kinds = [det.KINDS[i % len(det.KINDS)] for i in range(p.variants)]
    rng, old_variants = np.random.default_rng(p.seed), []
    for kind in kinds:
        if kind == "jpeg":
            quality = int(rng.integers(p.min_quality, 96))
            u8 = (np.clip(hwc, 0, 1) * 255).round().astype(np.uint8)
            _, data = cv2.imencode(".jpg", np.ascontiguousarray(u8[..., ::-1]),
                                   [cv2.IMWRITE_JPEG_QUALITY, quality])
            out = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)[..., ::-1].astype(np.float32) / 255
        else:
            out = det.transform(hwc, kind, rng, p)
        old_variants.append(np.clip(out, 0.0, 1.0).astype(np.float32))
    old = np.stack([hwc, *old_variants]).transpose(0, 3, 1, 2).copy()
    rng, stored = np.random.default_rng(p.seed), det._as_jpeg_input(hwc)
    new = [hwc.transpose(2, 0, 1)] + [det.transform(hwc, k, rng, p, stored).transpose(2, 0, 1)
                                      for k in kinds]
    assert np.array_equal(np.stack(new), old)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_model_free_scores_are_pinned(name, photo):
    from workbench.engine.plugins import PluginRegistry, discover_plugins

    det = PluginRegistry(discover_plugins(user_dir=False, entry_points=False)).create(name)
    out = run_detector(det, photo)
    assert out.score == pytest.approx(PINNED[name], rel=1e-9)
    assert out.evidence.shape == (photo.rows, photo.columns)
