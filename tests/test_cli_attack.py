"""plugins / predict / attack from the command line, with the shipped demo models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pydicom
from conftest import pydicom_test_file


def wb(*args):
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, timeout=600, env=env)


def test_plugins_lists_the_builtins():
    out = wb("plugins")
    assert out.returncode == 0, out.stdout + out.stderr
    for name in ("fgsm", "pgd", "transfer-pgd"):
        assert any(line.startswith(name) and " ok " in line for line in out.stdout.splitlines())


def test_predict_json(shared_data):
    photo = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000000.jpg"
    out = wb("predict", "--model", "demo", "--json", str(photo))
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert record["input"] == str(photo)
    probs = record["probabilities"]
    assert set(probs) == {"nevus", "melanoma"} and abs(sum(probs.values()) - 1) < 1e-4
    assert record["class"] == max(probs, key=probs.get)


def test_predict_gives_no_diagnosis_from_a_model_trained_on_other_images(shared_data):
    """The dermoscopy model on a chest CR: the command fails with the reason, prints no
    class, and with --allow-mismatch labels its output as not a diagnosis."""
    cr = shared_data / "dicom" / "pydicom-data" / "RG1_J2KR.dcm"  # CR, BodyPartExamined CHEST
    out = wb("predict", "--model", "demo", str(cr))
    assert out.returncode == 1
    assert "RG1_J2KR.dcm" in out.stderr and "chest X-ray (CR)" in out.stderr
    assert "dermoscopy" in out.stderr and "not a diagnosis" in out.stderr
    assert "melanoma" not in out.stdout and "nevus" not in out.stdout
    out = wb("predict", "--model", "demo", "--allow-mismatch", "--json", str(cr))
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert "chest X-ray" in record["not_a_diagnosis"]
    auto = wb("predict", "--model", "auto", str(cr))
    assert auto.returncode == 1 and "no shipped model fits a chest X-ray (CR)" in auto.stderr
    # one answer for a 10-frame MR: it says which frame it is of
    mr = shared_data / "dicom" / "pydicom-data" / "emri_small.dcm"
    out = wb("predict", "--model", "demo", "--allow-mismatch", str(mr))
    assert out.returncode == 0 and out.stdout.startswith("emri_small.dcm (frame 1 of 10): ")
    out = wb("predict", "--model", "demo", "--allow-mismatch", "--json", str(mr))
    assert json.loads(out.stdout)["frame"] == "1 of 10"


def test_predict_refuses_a_mismatch_from_the_card_before_loading_torch(shared_data):
    """The card alone says the skin model does not fit a chest CR: the refusal comes
    without importing torch or loading the weights (it took 8.6 s, now about 1.6 s)."""
    cr = shared_data / "dicom" / "pydicom-data" / "RG1_J2KR.dcm"
    code = ("import sys\nfrom workbench.cli import main\n"
            f"rc = main(['predict', '--model', 'demo', {str(cr)!r}])\n"
            "print('exit', rc, 'torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert "exit 1 False" in run.stdout, run.stdout + run.stderr
    assert "not a diagnosis" in run.stderr and "RG1_J2KR.dcm" in run.stderr


def test_predict_auto_picks_the_model_that_fits(shared_data):
    photo = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000000.jpg"
    out = wb("predict", "--model", "auto", "--json", str(photo))
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert record["model"] == "demo_melanoma" and "not_a_diagnosis" not in record


def test_attack_writes_new_files_and_results(shared_data, tmp_path):
    photo = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000002.jpg"
    dicom = pydicom_test_file("CT_small.dcm")
    out_dir = tmp_path / "out"
    out = wb("attack", "--plugin", "pgd", "--model", "demo", "--param", "eps=0.03",
             "--param", "steps=10", str(photo), str(dicom), "--out", str(out_dir))
    assert out.returncode == 0, out.stderr
    assert "attack pgd [" in out.stderr  # progress bar
    results = json.loads((out_dir / "results.json").read_text())
    assert results["params"]["eps"] == 0.03 and results["params"]["steps"] == 10
    by_input = {Path(r["input"]).name: r for r in results["images"]}
    for r in by_input.values():
        assert Path(r["output"]).is_file() and Path(r["output"]).parent == out_dir
        assert r["linf"] <= 0.03 + 1e-6
        for key in ("clean_class", "adversarial_class", "clean_probabilities",
                    "adversarial_probabilities", "success", "l2", "iterations",
                    "saved_class", "success_after_saving", "notes", "l0"):
            assert key in r
        assert r["l0"] > 0  # pixels changed: PGD with a random start touches many
    assert by_input["ISIC_0000002.jpg"]["output"].endswith(".png")
    assert by_input["ISIC_0000002.jpg"]["l0"] <= 1022 * 767
    ds = pydicom.dcmread(by_input["CT_small.dcm"]["output"])
    assert "DERIVED" in ds.ImageType and "pgd" in ds.DerivationDescription


def test_attack_usage_errors(shared_data, tmp_path):
    photo = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000002.jpg"
    bad = wb("attack", "--plugin", "pgd", "--param", "eps=5", str(photo), "--out", str(tmp_path))
    assert bad.returncode == 2 and "eps: 5.0 is above the maximum 1.0" in bad.stderr
    missing = wb("predict", "--model", str(tmp_path / "nope.json"), str(photo))
    assert missing.returncode == 2 and "no such model" in missing.stderr
    unknown = wb("attack", "--plugin", "nope", str(photo), "--out", str(tmp_path))
    assert unknown.returncode == 2 and "no attack named 'nope'" in unknown.stderr
    needs = wb("attack", "--plugin", "transfer-pgd", str(photo), "--out", str(tmp_path))
    assert needs.returncode == 2 and "--surrogate" in needs.stderr


def test_an_attack_whose_file_fails_to_import_is_named_with_its_error(tmp_path, capsys):
    """'attack --plugin bad-import' said 'no attack named' when the plugin's file raised
    at import: the user must see the import error."""
    from workbench.cli import main
    from workbench.home import user_plugins_dir

    folder = user_plugins_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bad_import.py").write_text(
        "from workbench.api import Attack\nimport module_that_does_not_exist\n"
        "class BadImport(Attack):\n    name = 'bad-import'\n")
    ct = tmp_path / "ct.dcm"
    ct.write_bytes(pydicom_test_file("CT_small.dcm").read_bytes())
    code = main(["attack", "--plugin", "bad-import", "--model", "demo",
                 "--out", str(tmp_path / "out"), str(ct)])
    err = capsys.readouterr().err
    assert code == 2 and "broken" in err and "module_that_does_not_exist" in err
    assert "no attack named" not in err


def test_predict_says_at_once_that_it_loads_the_model_on_a_terminal(shared_data, tmp_path):
    """On a terminal the seconds of importing torch and the model are announced before
    they start; in a pipe or log stderr stays clean (results and one-line errors). A
    photo the model fits: on a CT it now refuses from the card, loading nothing."""
    import pty

    image = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000000.jpg"
    args = [sys.executable, "-m", "workbench", "predict", "--model", "demo", str(image)]
    leader, follower = pty.openpty()
    try:
        run = subprocess.run(args, stdout=subprocess.PIPE, stderr=follower, text=True,
                             timeout=300)
        os.close(follower)
        follower = -1
        said = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            said += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert "loading the model demo" in said.decode(errors="replace")
    piped = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert "loading the model" not in piped.stderr
    assert run.returncode == piped.returncode
