"""Batch evaluation on real ISIC images with the demo model and its surrogate: datasets,
metrics, the Table 1 summary, the detector matrix, run.json, resume after a kill, and the
command line's errors."""

from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT

from workbench.cli import main
from workbench.evaluation.dataset import DatasetError, load_dataset
from workbench.evaluation.metrics import auroc, bootstrap_ci

CLASSES = ("nevus", "melanoma")


# --- metrics -----------------------------------------------------------------------------
def pairwise_auroc(scores, positive) -> float:
    """The definition: P(positive scores higher) + half P(tie), over all pairs."""
    s, y = np.asarray(scores, float), np.asarray(positive, bool)
    total = sum((a > b) + 0.5 * (a == b) for a, b in itertools.product(s[y], s[~y]))
    return total / (y.sum() * (~y).sum())


@pytest.mark.parametrize("seed", range(5))
def test_auroc_equals_the_pairwise_definition_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, 40).astype(float)  # many ties
    positive = rng.random(40) > 0.4
    assert auroc(scores, positive) == pytest.approx(pairwise_auroc(scores, positive))
    assert np.isnan(auroc(scores, np.ones(40, bool)))


def test_the_plotted_roc_curve_has_the_reported_area():
    from workbench.evaluation.metrics import roc_curve

    rng = np.random.default_rng(7)
    scores, positive = rng.integers(0, 8, 60).astype(float), rng.random(60) > 0.5
    fpr, tpr = roc_curve(scores, positive)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auroc(scores, positive))


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate():
    values = np.r_[np.ones(30), np.zeros(10)]
    stat = lambda i: float(values[i].mean())  # noqa: E731
    lo, hi = bootstrap_ci(stat, len(values), seed=3)
    assert (lo, hi) == bootstrap_ci(stat, len(values), seed=3)
    assert lo < 0.75 < hi and lo > 0.55 and hi < 0.92


# --- datasets ----------------------------------------------------------------------------
def test_isic_labels_csv_and_the_model_card_split(shared_data):
    isic = shared_data / "dermoscopy" / "isic"
    data = load_dataset(isic, CLASSES)
    assert len(data.items) == 200 and data.counts() == {"nevus": 100, "melanoma": 100}
    card = json.loads((REPO_ROOT / "resources" / "models" / "demo_melanoma.json").read_text())
    test = load_dataset(isic, CLASSES, ids=set(card["split"]["test_ids"]))
    assert len(test.items) == 60 and test.counts() == {"nevus": 30, "melanoma": 30}
    small = load_dataset(isic, CLASSES, limit=3)
    assert small.counts() == {"nevus": 3, "melanoma": 3}
    assert small.fingerprint() == load_dataset(isic, CLASSES, limit=3).fingerprint()


def test_class_folders_and_bad_csvs(shared_data, tmp_path):
    images = sorted((shared_data / "dermoscopy" / "isic" / "images").glob("*.jpg"))[:4]
    for i, p in enumerate(images):
        d = tmp_path / "folders" / CLASSES[i % 2]
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, d / p.name)
    data = load_dataset(tmp_path / "folders", CLASSES)
    assert data.counts() == {"nevus": 2, "melanoma": 2}

    bad = tmp_path / "bad" / "labels.csv"
    bad.parent.mkdir()
    bad.write_text("image,diagnosis\nimages/x.jpg,keratosis\n")
    with pytest.raises(DatasetError, match=r"labels\.csv.*no column holds the model's classes"):
        load_dataset(bad.parent, CLASSES)
    bad.write_text("picture,diagnosis\nx.jpg,nevus\n")
    with pytest.raises(DatasetError, match="no image column"):
        load_dataset(bad, CLASSES)
    mixed = tmp_path / "mixed.csv"
    shutil.copy(images[0], tmp_path / "a.jpg")
    mixed.write_text("image,diagnosis\na.jpg,nevus\nmissing.jpg,nevus\na.jpg,keratosis\n")
    data = load_dataset(mixed, CLASSES)
    assert len(data.items) == 1
    assert data.skipped == {"image file missing": 1,
                            "label 'keratosis' is not a model class": 1}


# --- a whole evaluation ------------------------------------------------------------------
def _args(shared_data, out, *extra):
    return ["evaluate", "--data", str(shared_data / "dermoscopy" / "isic"), "--split", "test",
            "--limit", "2", "--image-size", "48", "--batch-size", "2", "--quiet",
            "--out", str(out), *extra]


@pytest.fixture(scope="module")
def table1_run(shared_data, tmp_path_factory):
    """The seed paper's conditions on the demo model and surrogate, small."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    os.environ["WORKBENCH_HOME"] = str(tmp_path_factory.mktemp("home"))
    out = tmp_path_factory.mktemp("run")
    code = main(_args(shared_data, out, "--surrogate", "demo-surrogate",
                      "--attacks", "pgd,universal-patch,natural-patch,colour-balance",
                      "--param", "pgd.steps=4", "--param", "universal-patch.steps=6",
                      "--param", "universal-patch.patch_size=16",
                      "--param", "natural-patch.patch_size=16",
                      "--param", "colour-balance.popsize=4",
                      "--param", "colour-balance.generations=1",
                      "--detectors", "feature-squeezing"))
    torch.set_num_threads(threads)
    assert code == 0
    return out


ROWS = ("clean", "pgd/white", "pgd/black", "universal-patch/white", "universal-patch/black",
        "natural-patch/white", "natural-patch/black", "colour-balance/query")


def test_summary_has_every_table1_row_in_range(table1_run):
    summary = json.loads((table1_run / "summary.json").read_text())
    assert list(summary["conditions"]) == list(ROWS)
    for cond, m in summary["conditions"].items():
        assert m["n"] == 4
        for key in ("accuracy", "auroc", "mean_confidence"):
            v = m[key]
            assert 0.0 <= v["value"] <= 1.0, (cond, key, v)
            assert v["ci_low"] <= v["value"] <= v["ci_high"], (cond, key, v)
        assert m["mean_confidence"]["value"] >= 0.5  # binary: argmax probability >= 0.5
        if cond != "clean":
            assert m["mean_linf"] > 0 and m["mean_l2"] >= m["mean_linf"]
            assert 0.0 <= m["success_rate"] <= 1.0
    pgd = summary["conditions"]["pgd/white"]
    assert 0 < pgd["mean_l0"] <= 48 * 48  # pixels changed, at most all of them
    # the default L-inf budget, 0.01, is 2.55 steps of 8 bits: the rows describe the 8-bit
    # picture that a saved copy would be, which keeps 2 steps (never 3, outside the budget)
    assert pgd["mean_linf"] == pytest.approx(2 / 255, abs=1e-6)
    assert any("8-bit picture at 48 px" in n for n in summary["notes"])
    for cond, m in summary["conditions"].items():  # the unrounded tensors' figure beside
        assert (m.get("accuracy_unrounded") is None) == (cond == "clean")
        if cond != "clean":
            assert 0.0 <= m["accuracy_unrounded"] <= 1.0
    assert summary["conditions"]["colour-balance/query"]["mean_queries"] > 0
    assert summary["conditions"]["clean"]["paper_dermoscopy"] == [0.876, 0.858, 0.941]
    fs = summary["detectors"]["feature-squeezing"]
    assert fs["threshold"] is not None and 0 <= fs["fpr_clean"] <= 1
    assert set(fs["conditions"]) == set(ROWS) - {"clean"}
    # patches learn on the model's training split, are pasted on the test images
    assert any("learned their patches on the model's 140 training images" in n
               for n in summary["notes"])
    md = (table1_run / "summary.md").read_text()
    assert "| pgd/black | 4 |" in md and "feature-squeezing" in md
    # the figures name the models they are of, weights included (a hardened copy keeps
    # its parent's card name)
    record = json.loads((table1_run / "run.json").read_text())
    victim, surrogate = record["models"]["victim"], record["models"]["surrogate"]
    assert summary["models"] == {
        "victim": f"{victim['card_name']} (weights {victim['weights_sha256'][:12]})",
        "surrogate": f"{surrogate['card_name']} (weights {surrogate['weights_sha256'][:12]})"}
    assert f"Figures of model {summary['models']['victim']}, surrogate " in md
    for plot in ("roc.png", "confidence.png", "detector_matrix.png"):
        assert (table1_run / plot).read_bytes().startswith(b"\x89PNG")


def test_summary_agrees_with_the_per_image_csv(table1_run):
    summary = json.loads((table1_run / "summary.json").read_text())
    with open(table1_run / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * len(ROWS)
    for cond in ROWS:
        rs = [r for r in rows if r["condition"] == cond]
        acc = np.mean([r["pred"] == r["label"] for r in rs])
        assert summary["conditions"][cond]["accuracy"]["value"] == pytest.approx(acc)
        assert np.mean([r["correct"] == "True" for r in rs]) == pytest.approx(acc)
        auc = pairwise_auroc([float(r["p_positive"]) for r in rs],
                             [r["label"] == "melanoma" for r in rs])
        assert summary["conditions"][cond]["auroc"]["value"] == pytest.approx(auc)
        assert all(r["score:feature-squeezing"] != "" for r in rs)
        if cond != "clean":
            before = np.mean([r["correct_unrounded"] == "True" for r in rs])
            assert summary["conditions"][cond]["accuracy_unrounded"] == pytest.approx(before)
            undone = sum(r["correct_unrounded"] == "False" and r["correct"] == "True"
                         for r in rs)
            assert summary["conditions"][cond]["undone_by_rounding"] == undone
    # the attacks start from the clean images: their clean columns are the clean row's
    clean = {r["id"]: r["pred"] for r in rows if r["condition"] == "clean"}
    assert all(r["clean_pred"] == clean[r["id"]] for r in rows)


def test_run_json_makes_the_run_reproducible(table1_run):
    run = json.loads((table1_run / "run.json").read_text())
    assert run["seed"] == 0 and run["finished"]
    assert len(run["models"]["victim"]["weights_sha256"]) == 64
    assert run["models"]["surrogate"]["card_name"] == "demo_surrogate"
    assert len(run["data"]["fingerprint"]) == 64 and run["data"]["n"] == 4
    assert run["plugins"]["pgd"]["params"]["steps"] == 4
    assert run["plugins"]["pgd"]["version"]
    assert run["plugins"]["feature-squeezing"]["kind"] == "detector"
    log = (table1_run / "computed.log").read_text().split("\n")
    ids = [line.split("\t")[0] for line in log if line]
    assert sorted(ids) == sorted(run["units"]) and len(set(ids)) == len(ids)


def test_a_second_run_in_the_same_folder_recomputes_nothing(table1_run, shared_data, capsys):
    before = (table1_run / "computed.log").read_text()
    summary = (table1_run / "summary.json").read_text()
    code = main(_args(shared_data, table1_run, "--surrogate", "demo-surrogate",
                      "--attacks", "pgd,universal-patch,natural-patch,colour-balance",
                      "--param", "pgd.steps=4", "--param", "universal-patch.steps=6",
                      "--param", "universal-patch.patch_size=16",
                      "--param", "natural-patch.patch_size=16",
                      "--param", "colour-balance.popsize=4",
                      "--param", "colour-balance.generations=1",
                      "--detectors", "feature-squeezing"))
    assert code == 0
    assert (table1_run / "computed.log").read_text() == before
    assert json.loads((table1_run / "summary.json").read_text())["conditions"] == \
        json.loads(summary)["conditions"]
    # other settings in the same folder are refused, not mixed in
    assert main(_args(shared_data, table1_run, "--attacks", "pgd")) == 2
    assert "holds a different run" in capsys.readouterr().err


def test_resume_after_a_kill_equals_an_uninterrupted_run(shared_data, tmp_path):
    args = _args(shared_data, "OUT", "--attacks", "pgd", "--param", "pgd.steps=8",
                 "--batch-size", "1", "--limit", "3")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")

    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "workbench",
                *[str(out) if a == "OUT" else a for a in args]]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(command(killed), env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((killed / "units").glob("*.json"))) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {p.name for p in (killed / "units").glob("*.json")}
    total = len(json.loads((killed / "run.json").read_text())["units"])
    assert 3 <= len(done_before) < total
    assert not (killed / "summary.json").exists()

    resumed = subprocess.run(command(killed), env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    straight = tmp_path / "straight"
    clean_run = subprocess.run(command(straight), env=env, cwd=tmp_path, capture_output=True,
                               text=True, timeout=600)
    assert clean_run.returncode == 0, clean_run.stderr

    log = [line.split("\t")[0] for line in (killed / "computed.log").read_text().splitlines()]
    assert len(log) == len(set(log)) == total  # no unit computed twice
    assert (killed / "per_image.csv").read_text() == (straight / "per_image.csv").read_text()
    a = json.loads((killed / "summary.json").read_text())
    b = json.loads((straight / "summary.json").read_text())
    assert a["conditions"] == b["conditions"]


def test_bad_input_gets_one_clear_line(shared_data, tmp_path, capsys):
    assert main(["evaluate", "--data", str(tmp_path / "nowhere"), "--out",
                 str(tmp_path / "r")]) == 2
    assert f"{tmp_path / 'nowhere'}: no such file or folder" in capsys.readouterr().err
    assert main(_args(shared_data, tmp_path / "r2", "--attacks", "nonsense")) == 2
    err = capsys.readouterr().err
    assert "no attack named 'nonsense'" in err and "pgd" in err
    assert main(_args(shared_data, tmp_path / "r3", "--attacks", "pgd",
                      "--param", "pgd.steps=-4")) == 2
    assert "pgd" in capsys.readouterr().err
    assert main(_args(shared_data, tmp_path / "r4", "--attacks", "transfer-pgd")) == 2
    assert "needs a surrogate" in capsys.readouterr().err
    assert main(_args(shared_data, tmp_path / "r5", "--param", "fgsm.eps=0.1")) == 2
    assert "not in --attacks or --detectors" in capsys.readouterr().err
