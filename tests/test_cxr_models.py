"""The shipped chest X-ray victim and surrogate: their cards (modality, body part, input
channels, licence, a split by patient), their recorded held-out numbers reproduced on
the real held-out chest X-rays, the images they fit (and those they do not), and a
white-box PGD that flips them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import pydicom_test_file

from workbench.models.card import ModelCard
from workbench.models.classifier import load_classifier
from workbench.models.fit import fit_caveat, fit_problem
from workbench.models.zoo import fitting_model, load_model, resolve_card
from workbench.training.cxr_data import CXR_CLASSES, cxr_folder, load_grey, read_cxr_samples
from workbench.training.metrics import evaluate

VICTIM, SURROGATE = resolve_card("cxr"), resolve_card("cxr-surrogate")
CARDS = [VICTIM, SURROGATE]


@pytest.fixture(scope="module")
def samples(shared_data: Path) -> dict[str, Any]:
    folder = cxr_folder(shared_data)
    if not (folder / "labels.csv").is_file():
        pytest.skip(f"the chest X-ray data is not at {folder}")
    return {s.image_id: s for s in read_cxr_samples(folder)}


@pytest.mark.parametrize("card_path", CARDS, ids=lambda p: p.stem)
def test_the_card_says_what_the_model_is_for(card_path: Path) -> None:
    card = ModelCard.load(card_path)
    assert card.fits.modalities == ("CR", "DX") and card.fits.body_parts == ("CHEST",)
    assert card.fits.colour is False and card.fits.greyscale_photos
    assert card.class_names == CXR_CLASSES and card.positive_class == "viral_pneumonia"
    assert "CC BY 4.0" in card.training_data and "Kermany" in card.training_data
    assert "one grey channel" in card.notes
    lo, hi = card.metrics["auroc_95ci"]
    assert lo <= card.metrics["auroc"] <= hi
    assert card.split["by"] == "patient"
    assert (card_path.parent / card.weights).stat().st_size < 30e6


def test_the_victim_and_the_surrogate_differ_and_no_patient_is_on_two_sides(
        samples: dict[str, Any]) -> None:
    victim, surrogate = ModelCard.load(VICTIM), ModelCard.load(SURROGATE)
    # the seed's black-box setting: the same architecture, trained apart from shared
    # public weights (here a base network of half the training patients, not ImageNet)
    assert victim.architecture == surrogate.architecture
    assert victim.metrics["init_seed"] != surrogate.metrics["init_seed"]
    assert victim.metrics["init"] == surrogate.metrics["init"]
    assert "half" in victim.metrics["init"]["base"] and "shared base" in victim.notes
    v, s = victim.split, surrogate.split
    train, val, test = (set(v[k]) for k in ("train_patients", "validation_patients",
                                            "test_patients"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert set(s["test_patients"]) == test and set(s["validation_patients"]) == val
    assert set(s["train_patients"]) < train  # another patient split of the training data
    # the image lists follow the patients: every image of a test patient, and no other
    patient_of = {i: x.patient for i, x in samples.items()}
    assert {patient_of[i] for i in v["test_ids"]} == test
    assert {i for i, p in patient_of.items() if p in test} == set(v["test_ids"])
    assert {patient_of[i] for i in v["train_ids"]} == train
    assert {patient_of[i] for i in s["train_ids"]} == set(s["train_patients"])


@pytest.mark.parametrize("card_path", CARDS, ids=lambda p: p.stem)
def test_recorded_held_out_numbers_are_reproduced(card_path: Path,
                                                  samples: dict[str, Any]) -> None:
    card = ModelCard.load(card_path)
    ids = card.split["test_ids"]
    images = [load_grey(samples[i].path) for i in ids]
    labels = [samples[i].label for i in ids]
    measured = evaluate(load_classifier(card_path), images, labels)
    assert measured["n_test"] == card.metrics["n_test"] == len(ids) > 500
    assert abs(measured["accuracy"] - card.metrics["accuracy"]) <= 2 / len(ids)
    assert abs(measured["auroc"] - card.metrics["auroc"]) <= 1e-3
    if card_path == VICTIM:
        assert measured["auroc"] >= 0.95  # the floor, above Finlayson's 0.937


def test_chest_x_rays_get_the_chest_model_and_nothing_else(shared_data: Path,
                                                           samples: dict[str, Any]) -> None:
    from workbench.imaging.loader import load_image

    victim, derm = ModelCard.load(VICTIM), ModelCard.load(resolve_card("demo"))
    jpeg = load_image(next(iter(samples.values())).path)  # an RGB JPEG, channels equal
    chest_cr = shared_data / "dicom" / "pydicom-data" / "RG1_J2KR.dcm"  # MONOCHROME1
    if not chest_cr.is_file():
        pytest.skip(f"{chest_cr} is missing")
    cr = load_image(chest_cr)  # an adult's chest CR, MONOCHROME1
    assert cr.inverted and cr.modality == "CR"
    assert fit_problem(victim, jpeg) is None and fitting_model(jpeg) == "cxr"
    for image in (jpeg, cr):
        assert "not a diagnosis" in fit_problem(derm, image)  # never a skin diagnosis
    assert "greyscale" in fit_problem(derm, jpeg)
    assert "does not say what it shows" in fit_caveat(victim, jpeg)
    assert "chest X-rays of children" in fit_caveat(victim, jpeg)
    # the paediatric model on a 64-year-old: the header's dates say it is out of range
    assert "64 years old" in fit_problem(victim, cr) and fitting_model(cr) is None
    child = load_image(chest_cr)
    child.metadata.PatientBirthDate = "20020101"  # in memory only: a 2-year-old's study
    assert fit_problem(victim, child) is None and fit_caveat(victim, child) is None
    child.metadata.PatientAge = "007Y"
    assert "7 years old" in fit_problem(victim, child)
    photo = load_image(shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000000.jpg")
    assert fitting_model(photo) == "demo"
    assert "colour photograph" in fit_problem(victim, photo)
    ct = load_image(pydicom_test_file("CT_small.dcm"))
    assert fitting_model(ct) is None and "CT" in fit_problem(victim, ct)


def test_predictions_on_real_chest_x_rays_of_both_kinds(shared_data: Path,
                                                        samples: dict[str, Any]) -> None:
    import torch

    from workbench.api import image_tensor
    from workbench.imaging.loader import load_image
    from workbench.models.classifier import predict_proba

    model = load_model("cxr")
    test = ModelCard.load(VICTIM).split["test_ids"]
    picked = [i for i in test if samples[i].label == 0][:4] + \
        [i for i in test if samples[i].label == 1][:4]
    x = torch.cat([image_tensor(load_image(samples[i].path)) for i in picked])
    # the JPEGs store three equal channels: the model (and any attack) sees one
    assert x.shape[1] == 1
    pred = predict_proba(model, x).argmax(1).tolist()
    assert sum(p == samples[i].label for p, i in zip(pred, picked, strict=True)) >= 7
    cr = load_image(shared_data / "dicom" / "pydicom-data" / "RG1_J2KR.dcm")
    cr_input = image_tensor(cr)  # MONOCHROME1: inverted to display polarity, one channel
    assert cr_input.shape[1] == 1
    assert float(cr_input[0, 0, 5:50, 5:50].mean()) < 0.5  # the air outside is dark
    p = predict_proba(model, cr_input)[0]
    assert abs(float(p.sum()) - 1) < 1e-5


def test_a_short_white_box_pgd_flips_at_least_90_percent(samples: dict[str, Any]) -> None:
    import torch

    from workbench.engine.attack_runner import run_attack
    from workbench.engine.plugins import PluginRegistry
    from workbench.models.classifier import predict_proba
    from workbench.training.metrics import to_unit_tensor

    model = load_model("cxr")
    test = ModelCard.load(VICTIM).split["test_ids"]
    rng = np.random.default_rng(3)
    picked = [test[i] for i in rng.choice(len(test), 24, replace=False)]
    x = torch.cat([to_unit_tensor(load_grey(samples[i].path)) for i in picked])
    labels = torch.tensor([samples[i].label for i in picked])
    right = predict_proba(model, x).argmax(1) == labels
    x, labels = x[right], labels[right]
    out = run_attack(PluginRegistry().create("pgd"), model, x, labels=labels,
                     params={"eps": 0.01, "steps": 10})  # the seed's budget, half its steps
    assert float(out.linf.max()) <= 0.01 + 1e-6
    flipped = predict_proba(model, out.adversarial).argmax(1) != labels
    assert len(labels) >= 20
    assert flipped.float().mean() >= 0.9, f"{int(flipped.sum())} of {len(labels)} flipped"


def test_a_grey_picture_saved_as_rgb_is_one_channel_to_attacks_and_three_on_disk(
        samples: dict[str, Any]) -> None:
    from workbench.imaging.loader import load_image
    from workbench.imaging.model_input import to_model_input

    image = load_image(next(iter(samples.values())).path)
    assert image.samples_per_pixel == 3
    x, mapping = to_model_input(image)
    assert x.shape[0] == 1 and mapping.channels == 1
    stored = mapping.to_stored(np.clip(x + 0.004, 0, 1))
    assert stored.shape == (3, *x.shape[1:])  # written back in the file's own layout
    assert (stored[0] == stored[1]).all() and (stored[1] == stored[2]).all()
    back = mapping.to_stored(x)
    assert (back.transpose(1, 2, 0) == image.pixels).all()  # lossless round trip


def test_shipped_calibrations_judge_only_the_images_they_were_made_on(
        shared_data: Path, samples: dict[str, Any]) -> None:
    """The chest model's thresholds (its validation patients, grey pictures) and the
    dermoscopy demo's (colour photos) are both modality XC: colour and model decide."""
    from workbench.engine.calibration import threshold_for
    from workbench.engine.plugins import PluginRegistry
    from workbench.imaging.loader import load_image

    victim = ModelCard.load(VICTIM)
    validation = set(victim.split["validation_ids"])
    registry = PluginRegistry()
    jpeg = load_image(next(s.path for i, s in samples.items() if i in validation))
    photo = load_image(shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000000.jpg")
    cxr, demo = load_model("cxr"), load_model("demo")
    for name in ("ela", "noise-residual"):  # no model: what the images were decides
        det = registry.create(name)
        params = det.Params()
        on_cxr, _ = threshold_for(name, det, params, None, image=jpeg)
        on_photo, _ = threshold_for(name, det, params, None, image=photo)
        assert on_cxr.colour is False and on_photo.colour is True
        assert on_cxr.n == len(validation) and on_cxr.threshold != on_photo.threshold
    det = registry.create("feature-squeezing")
    cal, _ = threshold_for("feature-squeezing", det, det.Params(), cxr, image=jpeg)
    assert cal.model == "cxr_pneumonia"
    cal, note = threshold_for("feature-squeezing", det, det.Params(), demo, image=jpeg)
    assert cal is None and "greyscale" in note  # a dermoscopy threshold never judges it


def test_an_evaluation_of_the_chest_model_is_set_beside_the_seed_s_chest_column(
        shared_data: Path, tmp_path: Path, samples: dict[str, Any]) -> None:
    from workbench.evaluation.runner import EvalSpec, evaluate
    from workbench.evaluation.summary import PAPER_CHEST_XRAY, markdown, two_domain_markdown

    spec = EvalSpec(model="cxr", surrogate="cxr-surrogate", data=str(cxr_folder(shared_data)),
                    out=str(tmp_path / "run"), split="test", limit=2, batch_size=4,
                    attacks=[{"name": "pgd", "params": {"eps": 0.01, "steps": 2}}])
    summary = evaluate(spec)
    assert summary["paper_domain"] == "chest X-ray" and summary["n_images"] == 4
    assert tuple(summary["conditions"]["pgd/black"]["paper"]) == PAPER_CHEST_XRAY["pgd/black"]
    assert "Paper (chest X-ray)" in markdown(summary) and "15.10% / 0.014" in markdown(summary)
    both = two_domain_markdown({"chest X-ray": summary})
    assert "| clean | " in both and "94.90% / 0.937" in both
