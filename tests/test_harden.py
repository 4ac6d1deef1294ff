"""Defences measured: a short PGD adversarial fine-tune of the demo model on its card's
training split raises its accuracy under the project's PGD at ε = 0.01 on the test
split, and the hardened card names its defence and its parent (by weights' hash)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def hardened(shared_data, tmp_path_factory):
    from workbench.training.harden import harden

    out = tmp_path_factory.mktemp("hardened")
    # 3 epochs at 2e-3: PGD accuracy 1/60 -> 9/60 in 67 s (6 epochs at 1e-3: 8/60 in 116 s)
    return harden("demo", "pgd", out, shared_data / "dermoscopy" / "isic", epochs=3,
                  lr=2e-3, seed=0)


def test_adversarial_training_raises_pgd_accuracy(hardened) -> None:
    before, after = hardened.before, hardened.after
    assert before["n"] == after["n"] == 60  # the card's test split, both measured alike
    assert after["pgd_accuracy"] > before["pgd_accuracy"], (before, after)
    # what it cost is reported, not hidden: clean accuracy of both, on the same images
    assert 0.0 <= after["clean_accuracy"] <= 1.0 and before["clean_accuracy"] > 0.5


def test_the_hardened_card_names_its_defence_and_parent(hardened) -> None:
    from workbench.models.zoo import load_model, resolve_card

    card = json.loads(hardened.card_path.read_text())
    assert card["name"] == "demo_melanoma_pgd"
    assert card["defence"]["name"] == "pgd-adversarial-training"
    assert card["defence"]["eps"] == 0.01 and card["defence"]["train_images"] == 140
    parent = Path(resolve_card("demo"))
    parent_weights = parent.parent / json.loads(parent.read_text())["weights"]
    assert card["defence"]["parent"]["weights_sha256"] == hashlib.sha256(
        parent_weights.read_bytes()).hexdigest()
    assert card["metrics"]["hardening"]["after"] == hardened.after
    model = load_model(hardened.card_path)  # a model like any other
    assert model.class_names == ("nevus", "melanoma")


def test_harden_cli_augment_and_errors(shared_data, tmp_path) -> None:
    run = subprocess.run([sys.executable, "-m", "workbench", "harden", "--model", "demo",
                          "--defence", "augment", "--epochs", "1", "--limit", "16", "--data",
                          str(shared_data / "dermoscopy" / "isic"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "clean accuracy" in run.stdout and "PGD accuracy" in run.stdout
    card = json.loads((tmp_path / "demo_melanoma_augment.json").read_text())
    assert card["defence"]["name"] == "colour-rotation-augmentation"
    bad = subprocess.run([sys.executable, "-m", "workbench", "harden", "--model", "cxr",
                          "--defence", "pgd", "--data", str(shared_data / "dermoscopy" / "isic"),
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "dermoscopy" in bad.stderr


def test_the_evaluator_puts_parent_and_hardened_side_by_side(hardened, shared_data,
                                                              tmp_path) -> None:
    """Table 1 of the parent and of the hardened model on the same images, and the
    comparison the evaluator writes from them: the changes are the two runs' own."""
    isic = str(shared_data / "dermoscopy" / "isic")

    def evaluate(model: str, out: Path, limit: str, *extra: str):
        return subprocess.run([sys.executable, "-m", "workbench", "evaluate", "--model", model,
                               "--data", isic, "--split", "test", "--limit", limit,
                               "--attacks", "pgd", "--param", "pgd.eps=0.01",
                               # the comparison is tested, not the attack's strength
                               "--param", "pgd.steps=5", "--out",
                               str(out), "--quiet", *extra],
                              capture_output=True, text=True, timeout=900)

    parent, child = tmp_path / "parent", tmp_path / "child"
    assert evaluate("demo", parent, "16").returncode == 0
    run = evaluate(str(hardened.card_path), child, "16", "--baseline", str(parent))
    assert run.returncode == 0, run.stderr[-2000:]
    c = json.loads((child / "comparison.json").read_text())
    s0 = json.loads((parent / "summary.json").read_text())["conditions"]
    s1 = json.loads((child / "summary.json").read_text())["conditions"]
    rows = {r["condition"]: r for r in c["rows"]}
    assert set(rows) == {"clean", "pgd/white"}
    for cond, r in rows.items():
        assert r["accuracy_change"] == pytest.approx(
            s1[cond]["accuracy"]["value"] - s0[cond]["accuracy"]["value"])
    assert rows["pgd/white"]["success_rate_before"] == s0["pgd/white"]["success_rate"]
    text = (child / "comparison.md").read_text()
    assert "demo_melanoma_pgd" in text and "Clean accuracy" in text
    other = evaluate(str(hardened.card_path), tmp_path / "other", "8", "--baseline",
                     str(parent))  # other images: not comparable, and said so
    assert other.returncode == 2 and "same images" in other.stderr
