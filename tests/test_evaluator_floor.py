"""The evaluator near its floor: images are decoded and resized once per run and reused
by every condition, and each condition's model time is reported beside its floor (the
images each model was run on, priced at a forward or a forward and backward)."""

from __future__ import annotations

import json

import pytest


def test_images_are_decoded_once_and_the_floor_is_reported(shared_data, tmp_path):
    from workbench.evaluation import units
    from workbench.evaluation.runner import EvalSpec, evaluate
    from workbench.evaluation.summary import markdown

    units._IMAGES.clear()
    units._IMAGES_BYTES[0] = 0
    before = units._decodes[0]
    out = tmp_path / "run"
    evaluate(EvalSpec(model="demo", data=str(shared_data / "dermoscopy" / "isic"),
                      out=str(out), image_size=48, batch_size=2, split="test", limit=2,
                      attacks=[{"name": "pgd", "params": {"steps": 3, "early_stop": False}},
                               {"name": "colour-balance",
                                "params": {"popsize": 4, "generations": 1}}]))
    summary = json.loads((out / "summary.json").read_text())
    n = summary["n_images"]
    assert n >= 2
    # three conditions (clean, pgd/white, colour-balance/query), each image decoded once
    assert units._decodes[0] - before == n
    timing = summary["timing"]
    assert set(timing) == {"clean", "pgd/white", "colour-balance/query"}
    assert timing["clean"]["images_forward_backward"] == 0
    assert timing["clean"]["images_forward"] == n  # the clean forward, nothing else
    assert timing["pgd/white"]["images_forward_backward"] >= 3 * n  # a gradient a step
    assert timing["colour-balance/query"]["images_forward_backward"] == 0  # queries only
    assert timing["colour-balance/query"]["images_forward"] > 4 * n
    for t in timing.values():
        assert t["floor_seconds"] > 0 and t["ratio"] == pytest.approx(
            t["model_seconds"] / t["floor_seconds"])
    text = (out / "summary.md").read_text()
    assert "## Time against the floor" in text and "| pgd/white |" in text
    # a second run reads the cache: nothing decoded again, the rows unchanged
    again = tmp_path / "again"
    evaluate(EvalSpec(model="demo", data=str(shared_data / "dermoscopy" / "isic"),
                      out=str(again), image_size=48, batch_size=2, split="test", limit=2,
                      attacks=[{"name": "pgd", "params": {"steps": 3, "early_stop": False}},
                               {"name": "colour-balance",
                                "params": {"popsize": 4, "generations": 1}}]))
    assert units._decodes[0] - before == n
    assert (again / "per_image.csv").read_text() == (out / "per_image.csv").read_text()
    # results written before timing was recorded still summarise, without the table
    old = {k: v for k, v in summary.items() if k != "timing"}
    assert "Time against the floor" not in markdown(old)


def test_cached_and_uncached_batches_are_identical(shared_data):
    from workbench.evaluation import units

    photos = sorted((shared_data / "dermoscopy" / "isic" / "images").glob("*.jpg"))[:3]
    if not photos:
        pytest.skip("no ISIC photos in ../shared/data")
    paths = [str(p) for p in photos]
    units._IMAGES.clear()
    units._IMAGES_BYTES[0] = 0
    first = units.load_batch(paths, 64)
    first.add_(0.5)  # an attack writing into its batch must not reach the cache
    second = units.load_batch(paths, 64)
    units._IMAGES.clear()
    units._IMAGES_BYTES[0] = 0
    fresh = units.load_batch(paths, 64)
    assert (second == fresh).all() and not (first == fresh).all()
    # the pictures every row describes are 8-bit: whole steps of 1/255
    assert (fresh * 255 - (fresh * 255).round()).abs().max() < 1e-4
