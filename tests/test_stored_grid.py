"""What an attack reports is what is saved: the engine puts the adversarial image on the
stored grid (ValueMapping.levels) before it measures it, within the L∞ budget.

Without this, the GUI reported the probabilities of an unrounded float tensor, while the
file Export wrote was rounded to whole stored values: an "attack succeeded" that the
saved photo need not reproduce, and an 8-bit photo at eps 0.01 (2.55 steps) saved 3 steps
away from the original.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import pydicom_test_file

torch = pytest.importorskip("torch")


def _attack_and_save(path, tmp_path, eps):
    from workbench import __version__
    from workbench.engine.plugins import PluginRegistry
    from workbench.imaging import load_image
    from workbench.imaging.export import describe_attack, save_derived
    from workbench.imaging.model_input import to_model_input
    from workbench.models.classifier import predict_proba
    from workbench.models.zoo import load_model
    from workbench.session import ImageSession, actions

    model = load_model("demo")
    session = ImageSession(path)
    session.set_image(load_image(path))
    pgd = PluginRegistry().create("pgd")
    params = {"eps": eps, "steps": 5, "early_stop": False}
    actions.attack([(session, 0)], pgd, model, "demo", params, targeted=False).run()
    run = session.attack
    assert run is not None and run.mapping.levels is not None
    saved = save_derived(run.image, run.outcome.adversarial[0].numpy(), run.mapping,
                         tmp_path / f"adv{path.suffix}",
                         describe_attack("pgd", pgd.version, params, __version__))
    back, _ = to_model_input(load_image(saved), 0, value_range=(run.mapping.lo,
                                                                 run.mapping.hi))
    probs = predict_proba(model, torch.from_numpy(back)[None])[0]
    return run, back, probs


def test_photo_attack_reports_the_saved_8_bit_file(shared_data, tmp_path):
    photo = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000004.jpg"
    if not photo.is_file():
        pytest.skip(f"{photo} is not in ../shared/data")
    run, back, probs = _attack_and_save(photo, tmp_path, eps=0.01)
    adv = run.outcome.adversarial[0].numpy()
    assert run.mapping.levels == 255
    assert np.abs(adv * 255 - np.rint(adv * 255)).max() < 1e-3  # on the grid
    # the PNG read back holds exactly the reported image ...
    assert np.abs(back - adv).max() < 1e-6
    # ... within the budget in whole stored steps: floor(2.55) = 2, never 3
    steps = np.abs(np.rint(back * 255) - np.rint(run.x * 255)).max()
    assert 1 <= steps <= 2
    # and the probabilities shown are those of the saved file
    assert torch.allclose(probs, run.outcome.adv_probs[0], atol=1e-5)
    assert float(run.outcome.linf[0]) <= 0.01 + 1e-7


def test_dicom_attack_reports_the_saved_stored_values(tmp_path):
    ct = pydicom_test_file("CT_small.dcm")
    run, back, probs = _attack_and_save(ct, tmp_path, eps=0.01)
    levels = run.mapping.levels
    assert levels == int(run.mapping.hi - run.mapping.lo) > 255  # a 16-bit range
    adv = run.outcome.adversarial[0].numpy()
    assert np.abs(back - adv).max() < 0.5 / levels
    assert torch.allclose(probs, run.outcome.adv_probs[0], atol=1e-5)
    budget = np.floor(0.01 * levels + 1e-3)
    assert np.abs(np.rint(back * levels) - np.rint(run.x * levels)).max() <= budget


def test_on_stored_grid_keeps_whole_steps_and_the_budget():
    from workbench.engine.attack_runner import on_stored_grid

    x = torch.round(torch.tensor([[[[0.0, 10 / 255, 1.0, 0.5]]]]) * 255) / 255
    adv = (x + torch.tensor([[[[2.9, -2.9, -1.2, 0.4]]]]) / 255).clamp(0, 1)
    out = on_stored_grid(adv, x, 255)
    steps = torch.round(out * 255) - torch.round(x * 255)
    # L∞ of adv is 2.9 steps: rounding gives 3, the budget keeps 2
    assert steps.flatten().tolist() == [2.0, -2.0, -1.0, 0.0]
    assert torch.equal(on_stored_grid(adv, x, [None]), adv)  # no grid: untouched
