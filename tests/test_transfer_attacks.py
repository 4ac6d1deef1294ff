"""MI-DI-TI-FGSM, the transfer attack built to carry over to a victim it never queries;
ensembles of surrogates; and the commands choosing the chest model for chest X-rays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import pydicom_test_file

from workbench.models.card import ModelCard, ModelLoadError
from workbench.models.zoo import resolve_card


@pytest.fixture(scope="module")
def cxr_batch(shared_data: Path):
    import torch

    from workbench.training.cxr_data import cxr_folder, load_grey, read_cxr_samples
    from workbench.training.metrics import to_unit_tensor

    folder = cxr_folder(shared_data)
    if not (folder / "labels.csv").is_file():
        pytest.skip(f"the chest X-ray data is not at {folder}")
    samples = {s.image_id: s for s in read_cxr_samples(folder)}
    test = ModelCard.load(resolve_card("cxr")).split["test_ids"]
    picked = [test[i] for i in np.random.default_rng(5).choice(len(test), 12, replace=False)]
    x = torch.cat([to_unit_tensor(load_grey(samples[i].path)) for i in picked])
    return x, torch.tensor([samples[i].label for i in picked]), [samples[i].path for i in picked]


def test_mi_di_fgsm_stays_in_its_ball_repeats_with_its_seed_and_breaks_its_surrogate(
        cxr_batch) -> None:
    from workbench.engine.attack_runner import run_attack
    from workbench.engine.plugins import PluginRegistry
    from workbench.models.classifier import predict_proba
    from workbench.models.zoo import load_model

    x, y, _ = cxr_batch
    victim, surrogate = load_model("cxr"), load_model("cxr-surrogate")
    registry = PluginRegistry()
    runs = [run_attack(registry.create("mi-di-fgsm"), victim, x, labels=y, surrogate=surrogate,
                       seed=7, params={"eps": 0.01, "steps": 20}) for _ in range(2)]
    a, b = (r.adversarial for r in runs)
    assert float(runs[0].linf.max()) <= 0.01 + 1e-6
    assert bool((a == b).all())  # the random resizes and pads come from the run's seed
    clean = (predict_proba(surrogate, x).argmax(1) == y).float().mean()
    after = (predict_proba(surrogate, a).argmax(1) == y).float().mean()
    assert after <= 0.5 < clean, (float(clean), float(after))
    assert runs[0].success is not None  # judged on the victim, which was never queried


def test_an_ensemble_card_averages_its_members_logits(tmp_path: Path, cxr_batch) -> None:
    import torch

    from workbench.models.classifier import load_classifier

    members = [str(resolve_card("cxr")), str(resolve_card("cxr-surrogate"))]
    card = {"name": "pair", "architecture": "ensemble", "weights": "", "members": members,
            "class_names": ["normal", "viral_pneumonia"], "positive_class": "viral_pneumonia"}
    (tmp_path / "pair.json").write_text(json.dumps(card))
    ensemble = load_classifier(tmp_path / "pair.json")
    x = cxr_batch[0][:4]
    with torch.no_grad():
        want = (load_classifier(members[0])(x) + load_classifier(members[1])(x)) / 2
        assert torch.allclose(ensemble(x), want, atol=1e-5)
    card["members"] = [members[0], str(resolve_card("demo"))]
    (tmp_path / "mixed.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="demo_melanoma.json has classes"):
        load_classifier(tmp_path / "mixed.json")


def test_predict_and_detect_pick_the_model_that_fits_each_image(cxr_batch, capsys) -> None:
    from workbench.cli import main

    paths = [str(p) for p in cxr_batch[2][:2]]
    assert main(["predict", *paths, "--json"]) == 0
    rows = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert [r["model"] for r in rows] == ["cxr_pneumonia"] * 2
    assert all("does not say what it shows" in r["caveat"] for r in rows)

    ct = str(pydicom_test_file("CT_small.dcm"))
    main(["detect", ct, paths[0], "--detectors", "feature-squeezing,noise-residual", "--json"])
    rows = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    squeeze = {Path(r["file"]).name: r for r in rows if r.get("detector") == "feature-squeezing"}
    ct_row = squeeze["CT_small.dcm"]  # no shipped model reads a CT
    assert ct_row["verdict"] == "inconclusive" and ct_row["score"] is None
    assert "not run: no shipped model fits" in ct_row["explanation"]
    assert squeeze[Path(paths[0]).name]["score"] is not None  # the chest model did
