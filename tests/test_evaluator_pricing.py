"""The evaluator's floor prices: measured only for the pass a call made, at few batch sizes,
without touching the run's random numbers; and results written before (or without) the
timing fields still summarise."""

from __future__ import annotations

import pytest

CLASSES_SPEC = dict(model="demo", image_size=48, batch_size=2, split="test", limit=1)


def test_batch_sizes_are_priced_at_the_next_power_of_two():
    from workbench.evaluation.units import _bucket

    assert [_bucket(n) for n in (1, 2, 3, 8, 60, 64, 65, 480)] == \
        [1, 2, 4, 8, 64, 64, 128, 512]


def test_pricing_leaves_the_global_rng_and_prices_only_what_was_asked():
    import torch

    from workbench.evaluation import units
    from workbench.models.zoo import resolve_card

    model = units._model(str(resolve_card("demo")), "cpu")
    key = "pricing-test:cpu"
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    cost = units._per_image_cost(model, key, False, (2, 3, 32, 32))
    assert torch.equal(torch.rand(4), expected)  # the run's RNG stream is untouched
    assert cost > 0
    assert f"cost:{key}:False:(2, 3, 32, 32)" in units._CACHE
    assert f"cost:{key}:True:(2, 3, 32, 32)" not in units._CACHE  # no backward priced


@pytest.fixture(scope="module")
def clean_results(shared_data, tmp_path_factory):
    from workbench.evaluation import units
    from workbench.evaluation.runner import EvalSpec, prepare

    spec = EvalSpec(data=str(shared_data / "dermoscopy" / "isic"),
                    out=str(tmp_path_factory.mktemp("r")), device="cpu", **CLASSES_SPEC)
    config, plan, record = prepare(spec)
    results = [units.compute_unit(config, u.to_json()) for u in plan]
    return config, record, results


def test_results_without_timing_still_summarise(clean_results):
    from workbench.evaluation.summary import markdown, summarise

    config, record, results = clean_results
    assert all("timing" in r for r in results)
    with_timing = summarise(config, record, results)
    assert with_timing["timing"]["clean"]["floor_seconds"] > 0
    assert "## Time against the floor" in markdown(with_timing)
    # a run directory from before the floor was recorded: no timing in its units
    old = [{k: v for k, v in r.items() if k != "timing"} for r in results]
    summary = summarise(config, record, old)
    assert summary["timing"] == {}
    assert summary["conditions"] == with_timing["conditions"]
    assert "Time against the floor" not in markdown(summary)
    # … and one whose timing predates the pricing column
    older = [dict(r, timing={k: v for k, v in r["timing"].items()
                             if k != "pricing_seconds"}) for r in results]
    text = markdown(summarise(config, record, older))
    assert "| clean |" in text.split("## Time against the floor")[1]
