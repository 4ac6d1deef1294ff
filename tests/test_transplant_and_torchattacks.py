"""Semantic attacks (lesion transplant, generator hook) and the torchattacks adapter, on real
ISIC dermoscopy photos (resized to 128 x 128 or smaller for speed) and the shipped demo
model."""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from workbench import api
from workbench.engine.attack_runner import AttackCancelled, AttackFailed, run_attack
from workbench.engine.plugins import (
    PluginRegistry,
    builtin_plugin_dir,
    discover_plugins,
    load_plugin_file,
)
from workbench.models.zoo import load_model

SIZE = 128


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """These tests run many small forward passes. On the shared 2-core CI machine a second
    intra-op thread makes each one far slower under load (demo model, 3 images: 1.2 s with
    2 threads vs 0.034 s with 1, measured); the setting is restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def plugins():
    return discover_plugins(user_dir=False, entry_points=False)


@pytest.fixture(scope="module")
def registry(plugins):
    return PluginRegistry(plugins)


@pytest.fixture(scope="module")
def victim():
    return load_model("demo")


@pytest.fixture(scope="module")
def isic(shared_data) -> dict[str, list[Path]]:
    """Image files by diagnosis, in the labels file's order."""
    root = shared_data / "dermoscopy" / "isic"
    out: dict[str, list[Path]] = {}
    with open(root / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["diagnosis"], []).append(root / "images" / f"{row['isic_id']}.jpg")
    return out


def rgb(path: Path, size: int = SIZE) -> np.ndarray:
    bgr = cv2.imread(str(path))
    return cv2.cvtColor(cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA),
                        cv2.COLOR_BGR2RGB)


def batch(paths: list[Path], size: int = SIZE) -> torch.Tensor:
    arr = np.stack([rgb(p, size) for p in paths])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255.0


def ellipse(cx: float, cy: float, ax: float, ay: float, size: int = SIZE) -> np.ndarray:
    """Boolean mask of an axis-aligned ellipse (centre and semi-axes in pixels)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    return ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1.0


# --- lesion transplant -----------------------------------------------------------------------
def test_insert_changes_only_the_blended_region(registry, victim, isic, tmp_path):
    donor = tmp_path / "donor.png"  # a melanoma, at the targets' size: scale 1 keeps pixels
    cv2.imwrite(str(donor), cv2.cvtColor(rgb(isic["melanoma"][0]), cv2.COLOR_RGB2BGR))
    x = batch(isic["nevus"][:2])
    p = {"donor_file": str(donor), "cx": 0.5, "cy": 0.5, "rx": 0.2, "ry": 0.15,
         "target_cx": 0.35, "target_cy": 0.6, "scale": 1.0, "blend_margin": 0.25}
    out = run_attack(registry.create("lesion-transplant"), victim, x, params=p)
    adv = out.adversarial
    assert adv.shape == x.shape and adv.min() >= 0 and adv.max() <= 1
    ax, ay = 0.2 * SIZE, 0.15 * SIZE
    cx, cy = 0.35 * SIZE, 0.6 * SIZE
    reach = 0.25 * np.sqrt(ax * ay) + 3  # the documented blending margin, plus rounding slack
    outside = ~ellipse(cx, cy, ax + reach, ay + reach)
    core = ellipse(cx, cy, 0.7 * ax, 0.7 * ay)
    diff = (adv - x).abs().amax(dim=1).numpy()  # N x H x W
    assert (diff[:, outside] == 0).all(), "pixels outside the blending zone changed"
    assert (diff[:, core].mean(axis=1) > 0.02).all(), "the region was not changed"
    # Poisson blending keeps the donor's gradients: the inserted texture is the donor's
    # (found at the placement to within the pixel the placement rounds to).
    donor_core = ellipse(0.5 * SIZE, 0.5 * SIZE, 0.7 * ax, 0.7 * ay)
    donor_lap = laplacian(rgb(donor).astype(np.float32) / 255)[donor_core]
    offset = (round(cy - 0.5 * SIZE), round(cx - 0.5 * SIZE))
    for i in range(len(x)):
        after = best_match(laplacian(adv[i].permute(1, 2, 0).numpy()), donor_lap, donor_core,
                           offset)
        before = best_match(laplacian(x[i].permute(1, 2, 0).numpy()), donor_lap, donor_core,
                            offset)
        assert after > 0.8 and before < 0.5, (after, before)


def laplacian(img: np.ndarray) -> np.ndarray:
    return cv2.Laplacian(img.mean(axis=2), cv2.CV_32F)


def best_match(lap: np.ndarray, ref: np.ndarray, where: np.ndarray,
               offset: tuple[int, int]) -> float:
    """Highest correlation of ``lap`` at ``where`` + offset (±2 px) with ``ref``."""
    best = -1.0
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            moved = np.roll(lap, (-offset[0] - dy, -offset[1] - dx), axis=(0, 1))[where]
            best = max(best, float(np.corrcoef(moved, ref)[0, 1]))
    return best


def test_remove_inpaints_the_region_from_its_surroundings(registry, victim, isic):
    x = batch(isic["melanoma"][:2])
    r = 0.35
    out = run_attack(registry.create("lesion-transplant"), victim, x,
                     params={"mode": "remove", "rx": r, "ry": r, "radius": 5})
    adv = out.adversarial
    c = SIZE / 2
    # The ellipse exactly as drawn (OpenCV rounds the axes to whole pixels).
    region = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(region, (round(c), round(c)), (round(r * SIZE),) * 2, 0, 0, 360, 255, -1)
    region = region > 0
    ring = ellipse(c, c, 1.25 * r * SIZE, 1.25 * r * SIZE) & ~ellipse(c, c, 1.05 * r * SIZE,
                                                                        1.05 * r * SIZE)
    diff = (adv - x).abs().amax(dim=1).numpy()
    assert (diff[:, ~region] == 0).all(), "inpainting changed pixels outside the region"
    for i in range(len(x)):
        before, after = x[i].numpy(), adv[i].numpy()
        ring_mean = before[:, ring].mean(axis=1)
        gap_before = np.abs(before[:, region].mean(axis=1) - ring_mean).sum()
        gap_after = np.abs(after[:, region].mean(axis=1) - ring_mean).sum()
        assert diff[i][region].mean() > 0.02
        assert gap_after < 0.5 * gap_before, (gap_before, gap_after)


def test_transplant_reports_missing_files(registry, victim, isic, tmp_path):
    x = batch(isic["nevus"][:1], 64)
    plugin = registry.create("lesion-transplant")
    missing = tmp_path / "no_such_donor.png"
    with pytest.raises(AttackFailed, match="no_such_donor.png"):
        run_attack(plugin, victim, x, params={"donor_file": str(missing)})
    with pytest.raises(AttackFailed, match="donor_file"):
        run_attack(plugin, victim, x, params={})
    (tmp_path / "garbage.png").write_bytes(b"not an image")
    with pytest.raises(AttackFailed, match="garbage.png is not a readable image"):
        run_attack(plugin, victim, x, params={"donor_file": str(tmp_path / "garbage.png")})
    with pytest.raises(AttackFailed, match="no_mask.png"):
        run_attack(plugin, victim, x, params={"mode": "remove",
                                              "mask_file": str(tmp_path / "no_mask.png")})


def test_remove_with_a_mask_file(registry, victim, isic, tmp_path):
    """A PNG mask (white = region) of another size is scaled to the image."""
    mask = np.zeros((256, 256), np.uint8)
    mask[64:128, 96:192] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    x = batch(isic["melanoma"][:1], 64)
    out = run_attack(registry.create("lesion-transplant"), victim, x,
                     params={"mode": "remove", "mask_file": str(tmp_path / "mask.png")})
    changed = (out.adversarial - x).abs().amax(dim=1)[0].numpy() > 0
    inside = np.zeros((64, 64), bool)
    inside[16:32, 24:48] = True
    assert changed.any() and not changed[~inside].any()


# --- generator hook --------------------------------------------------------------------------
class HalfGain(torch.nn.Module):
    """A fixed 3x3 convolution that halves every value (its centre tap is 0.5 per channel)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            for ch in range(3):
                self.conv.weight[ch, ch, 1, 1] = 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@pytest.mark.parametrize(("value_range", "expected"), [
    ("0,1", lambda x: 0.5 * x),  # halves: darker
    ("-1,1", lambda x: (0.5 * (2 * x - 1) + 1) / 2),  # halves around 0 = mid-grey: 0.5x + 0.25
])
def test_generator_runs_a_torchscript_model_in_its_value_range(registry, victim, isic, tmp_path,
                                                               value_range, expected):
    path = tmp_path / "half_gain.pt"
    torch.jit.script(HalfGain()).save(str(path))
    x = batch(isic["nevus"][:3], 64)
    out = run_attack(registry.create("generator"), victim, x,
                     params={"model_file": str(path), "value_range": value_range,
                             "batch_size": 2})
    torch.testing.assert_close(out.adversarial, expected(x), atol=1e-6, rtol=0)
    if value_range == "0,1":
        assert float(out.adversarial.mean()) < float(x.mean())


def test_generator_errors_name_the_file(registry, victim, isic, tmp_path):
    x = batch(isic["nevus"][:1], 32)
    with pytest.raises(AttackFailed, match="missing_gen.pt"):
        run_attack(registry.create("generator"), victim, x,
                   params={"model_file": str(tmp_path / "missing_gen.pt")})
    (tmp_path / "not_a_model.pt").write_bytes(b"nope")
    with pytest.raises(AttackFailed, match="not_a_model.pt is not a TorchScript model"):
        run_attack(registry.create("generator"), victim, x,
                   params={"model_file": str(tmp_path / "not_a_model.pt")})


# --- torchattacks adapter --------------------------------------------------------------------
def test_discovery_lists_the_torchattacks_attacks(plugins):
    ta = {p.name: p for p in plugins if p.name.startswith("ta-")}
    assert all(p.ok for p in ta.values()), [(p.name, p.error) for p in ta.values() if not p.ok]
    assert len(ta) >= 30
    for name in ("ta-pgd", "ta-cw", "ta-square", "ta-fgsm", "ta-apgd", "ta-fab", "ta-deepfool",
                 "ta-onepixel", "ta-pixle", "ta-autoattack"):
        assert name in ta
    for skipped in ("ta-lgv", "ta-multiattack", "ta-vanila"):
        assert skipped not in ta
    assert ta["ta-square"].threat == "score-based black-box"
    assert ta["ta-onepixel"].threat == "score-based black-box"
    assert ta["ta-pgd"].threat == "white-box gradient"
    assert "fails on two-class models" in ta["ta-autoattack"].summary
    module = sys.modules[ta["ta-pgd"].cls.__module__]
    assert set(module.SKIPPED) == {"LGV", "MultiAttack", "VANILA"}
    assert all(module.SKIPPED.values())


def test_generated_params_follow_the_constructor_defaults(registry):
    pgd = {s.name: s for s in api.param_specs(registry.get("ta-pgd").cls.Params)}
    assert list(pgd) == ["eps", "alpha", "steps", "random_start"]
    assert pgd["eps"].default == 8 / 255 and pgd["eps"].type is float and pgd["eps"].min == 0
    assert pgd["alpha"].default == 2 / 255 and pgd["steps"].default == 10
    assert pgd["random_start"].type is bool and pgd["random_start"].default is True
    assert "torchattacks PGD: eps" in pgd["eps"].help
    cw = {s.name: s for s in api.param_specs(registry.get("ta-cw").cls.Params)}
    assert cw["c"].type is float and cw["c"].default == 1.0  # an int default of a real constant
    assert cw["steps"].default == 50 and cw["lr"].default == 0.01
    square = {s.name: s for s in api.param_specs(registry.get("ta-square").cls.Params)}
    assert square["norm"].choices == ("Linf", "L2") and square["n_queries"].default == 5000
    for info in registry.attacks():
        if info.name.startswith("ta-"):
            names = {f.name for f in api.param_specs(info.cls.Params)}
            assert not names & {"model", "seed", "verbose", "n_classes"}, info.name
    assert api.make_params(registry.get("ta-pgd").cls.Params, {"steps": "3"}).steps == 3


def test_catalogue_from_source_matches_torchattacks_itself(registry):
    """Discovery reads torchattacks' source (no torch import); the result must be what the
    imported package says."""
    module = sys.modules[registry.get("ta-pgd").cls.__module__]
    import importlib.util

    origin = Path(importlib.util.find_spec("torchattacks").origin)
    assert module._catalogue_from_source(origin) == module._catalogue_from_import()


def test_cached_catalogue_equals_the_parsed_one_and_a_bad_cache_is_rebuilt(registry):
    """Start-up reads the catalogue from the cache; it must be what parsing gives, and an
    unreadable cache file is parsed and written again, never trusted."""
    module = sys.modules[registry.get("ta-pgd").cls.__module__]
    import importlib.util

    origin = Path(importlib.util.find_spec("torchattacks").origin)
    parsed = module._catalogue_from_source(origin)
    assert module._cached_catalogue(origin) == parsed  # writes the cache (or reads it)
    cached = list(Path(api.cache_dir()).glob("torchattacks-catalogue-*.txt"))
    assert len(cached) == 1 and module._cached_catalogue(origin) == parsed
    cached[0].write_text("[('truncated'", encoding="utf-8")
    assert module._cached_catalogue(origin) == parsed
    assert cached[0].read_text(encoding="utf-8").startswith("[(")


def test_missing_torchattacks_declares_nothing(tmp_path, monkeypatch):
    copy = tmp_path / "torchattacks_adapter.py"  # a separate module name for this import
    shutil.copy(builtin_plugin_dir() / "torchattacks_adapter.py", copy)
    monkeypatch.setitem(sys.modules, "torchattacks", None)  # import torchattacks now fails
    assert load_plugin_file(copy) == []


@pytest.fixture(scope="module")
def small_batch(isic) -> torch.Tensor:
    return batch(isic["nevus"][:2] + isic["melanoma"][:1], 64)


def test_ta_pgd_runs_within_eps_and_targets(registry, victim, small_batch):
    x = small_batch
    out = run_attack(registry.create("ta-pgd"), victim, x, params={"steps": 5})
    assert out.adversarial.shape == x.shape
    assert out.adversarial.min() >= 0 and out.adversarial.max() <= 1
    assert float(out.linf.max()) <= 8 / 255 + 1e-6
    assert out.model_calls >= 5
    out = run_attack(registry.create("ta-pgd"), victim, x, targeted=True, params={"steps": 5})
    t = out.targets
    idx = torch.arange(len(t))
    assert (out.adv_probs[idx, t] > out.clean_probs[idx, t]).all()  # pushed towards the target
    assert float(out.linf.max()) <= 8 / 255 + 1e-6


def test_ta_cw_and_ta_square_return_valid_images(registry, victim, small_batch):
    x = small_batch
    cw = run_attack(registry.create("ta-cw"), victim, x, params={"steps": 5})
    assert cw.adversarial.shape == x.shape
    assert cw.adversarial.min() >= 0 and cw.adversarial.max() <= 1
    rng = torch.get_rng_state()
    sq = [run_attack(registry.create("ta-square"), victim, x, params={"n_queries": 20}, seed=3)
          for _ in range(2)]
    assert torch.equal(torch.get_rng_state(), rng)  # the run's seeding leaves no trace
    assert torch.equal(sq[0].adversarial, sq[1].adversarial)  # and makes runs repeatable
    assert sq[0].adversarial.shape == x.shape
    assert float(sq[0].linf.max()) <= 8 / 255 + 1e-6


def test_ta_dlr_attacks_refuse_two_class_models_and_cancel_works(registry, victim, small_batch):
    x = small_batch[:1]
    with pytest.raises(AttackFailed, match="fails on 2-class models"):
        run_attack(registry.create("ta-apgdt"), victim, x)
    with pytest.raises(AttackFailed, match="fails on 2-class models"):
        run_attack(registry.create("ta-apgd"), victim, x, params={"loss": "dlr"})
    with pytest.raises(AttackCancelled):
        run_attack(registry.create("ta-pgd"), victim, x, cancelled=lambda: True)
