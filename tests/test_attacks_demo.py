"""Attacks on the real shipped demo model and real ISIC test images (the card's split)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pydicom
import pytest
import torch
from conftest import pydicom_test_file

from workbench import __version__
from workbench.engine.attack_runner import run_attack
from workbench.engine.plugins import PluginRegistry, discover_plugins
from workbench.imaging import load_image
from workbench.imaging.export import describe_attack, save_derived
from workbench.imaging.model_input import to_model_input
from workbench.models.classifier import predict_proba
from workbench.models.zoo import load_model, resolve_card

N_IMAGES = 16  # the issue asks for at least this many; we use all 60 test images


@pytest.fixture(scope="module")
def registry():
    return PluginRegistry(discover_plugins(user_dir=False, entry_points=False))


@pytest.fixture(scope="module")
def victim():
    return load_model("demo")


@pytest.fixture(scope="module")
def surrogate():
    return load_model("demo-surrogate")


@pytest.fixture(scope="module")
def test_batch(shared_data):
    """Every test image of the card's split, resized to 256 x 256 (INTER_AREA) so they form
    one batch; the model resizes to its own input size inside anyway."""
    card = json.loads(resolve_card("demo").read_text())
    ids = card["split"]["test_ids"]
    labels_csv = (shared_data / "dermoscopy" / "isic" / "labels.csv").read_text().splitlines()
    header = labels_csv[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in labels_csv[1:]]
    label_of = {r["isic_id"]: int(r["diagnosis"] == "melanoma") for r in rows}
    images, labels = [], []
    for isic_id in ids:
        bgr = cv2.imread(str(shared_data / "dermoscopy" / "isic" / "images" / f"{isic_id}.jpg"))
        small = cv2.resize(bgr, (256, 256), interpolation=cv2.INTER_AREA)
        images.append(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
        labels.append(label_of[isic_id])
    assert len(images) >= N_IMAGES
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    return x, torch.tensor(labels)


def accuracy(model, x, y) -> float:
    return float((predict_proba(model, x).argmax(1) == y).float().mean())


def test_white_box_pgd_at_the_seed_defaults_collapses_accuracy(victim, registry, test_batch):
    x, y = test_batch
    clean = accuracy(victim, x, y)
    out = run_attack(registry.create("pgd"), victim, x, labels=y)  # eps 0.01, 20 steps
    adv_acc = float((out.adv_probs.argmax(1) == y).float().mean())
    print(f"\nwhite-box PGD (eps 0.01, 20 steps) on {len(y)} test images: "
          f"accuracy {clean:.3f} -> {adv_acc:.3f}")
    assert adv_acc <= 0.05
    assert float(out.linf.max()) <= 0.01 + 1e-7


def test_fgsm_lowers_accuracy_within_its_ball(victim, registry, test_batch):
    x, y = test_batch
    out = run_attack(registry.create("fgsm"), victim, x, labels=y)
    assert float(out.linf.max()) <= 0.01 + 1e-7
    assert out.adversarial.min() >= 0 and out.adversarial.max() <= 1
    assert float((out.adv_probs.argmax(1) == y).float().mean()) < accuracy(victim, x, y)


def test_targeted_pgd_reaches_the_other_class(victim, registry, test_batch):
    x, y = test_batch
    out = run_attack(registry.create("pgd"), victim, x, labels=y, targeted=True)
    assert torch.equal(out.targets, 1 - y)
    reached = float((out.adv_probs.argmax(1) == out.targets).float().mean())
    assert reached >= 0.95


def test_transfer_from_the_surrogate_lowers_the_victims_accuracy(victim, surrogate, registry,
                                                                 test_batch):
    """Two from-scratch models trained on 140 images share few features, so transfer is
    weak: at the seed budget (0.01) the victim's accuracy does not move. At 0.1 the
    surrogate's adversarial images lower it, and by more than random sign noise of the
    same L∞ budget does, so what transfers is the attack, not the noise."""
    x, y = test_batch
    eps = 0.1
    out = run_attack(registry.create("transfer-pgd"), victim, x, labels=y, surrogate=surrogate,
                     params={"eps": eps}, plugin_lookup=registry.create)
    clean = accuracy(victim, x, y)
    transferred = float((out.adv_probs.argmax(1) == y).float().mean())
    noise = []
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        signs = torch.randint(0, 2, x.shape, generator=g).float() * 2 - 1
        noise.append(accuracy(victim, (x + eps * signs).clamp(0, 1), y))
    print(f"\nblack-box transfer (surrogate PGD eps {eps}): victim accuracy {clean:.3f} -> "
          f"{transferred:.3f}; random sign noise of the same budget: {np.mean(noise):.3f}")
    assert transferred < clean
    assert transferred < float(np.mean(noise))
    assert float(out.linf.max()) <= eps + 1e-7


def test_saved_adversarial_dicom_is_a_new_derived_image(victim, registry, tmp_path):
    src = pydicom_test_file("CT_small.dcm")
    image = load_image(src)
    x, mapping = to_model_input(image)
    out = run_attack(registry.create("pgd"), victim, torch.from_numpy(x)[None],
                     params={"eps": 0.03, "steps": 30})
    desc = describe_attack("pgd", "1", out.params, __version__)
    saved = save_derived(image, out.adversarial[0].numpy(), mapping, tmp_path / "adv.dcm", desc)
    ds, orig = pydicom.dcmread(saved), pydicom.dcmread(src)
    assert ds.SOPInstanceUID != orig.SOPInstanceUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]  # value 3 kept (CT IOD)
    assert "Adversarial research image" in ds.DerivationDescription and "pgd" in \
        ds.DerivationDescription
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == orig.SOPInstanceUID
    assert ds.pixel_array.dtype == orig.pixel_array.dtype
    assert src.read_bytes() == pydicom_test_file("CT_small.dcm").read_bytes()
    # Quantisation back to int16 moves each value by at most half a stored step.
    reloaded, _ = to_model_input(load_image(saved), value_range=(mapping.lo, mapping.hi))
    step = 1.0 / (mapping.hi - mapping.lo)
    assert np.abs(reloaded - out.adversarial[0].numpy()).max() <= 0.5 * step + 1e-6
    after = predict_proba(victim, torch.from_numpy(reloaded)[None]).argmax(1)
    if bool(out.success[0]):
        assert int(after) == int(out.adv_probs.argmax(1)[0])  # the flip survives saving
