"""``workbench detect`` and ``workbench calibrate`` on real images (in-process)."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from conftest import pydicom_test_file

from workbench import __version__
from workbench.cli import main
from workbench.engine.calibration import (
    calibration_file,
    load_calibration,
    shipped_calibration_dir,
)
from workbench.engine.detector_runner import VERDICTS
from workbench.imaging import load_image
from workbench.imaging.export import describe_attack, save_derived
from workbench.imaging.model_input import to_model_input

IDS = ("ISIC_0000000", "ISIC_0000001", "ISIC_0000002", "ISIC_0000003", "ISIC_0000004",
       "ISIC_0000011")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Several torch threads on a busy 2-core machine wait on each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def photos(shared_data, tmp_path):
    """Small PNG copies of ISIC photos in ``clean/``, and one of them with strong noise."""
    folder = tmp_path / "clean"
    folder.mkdir()
    src = shared_data / "dermoscopy" / "isic" / "images"
    for isic_id in IDS:
        bgr = cv2.resize(cv2.imread(str(src / f"{isic_id}.jpg")), (128, 128),
                         interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"{isic_id}.png"), bgr)
    noisy = tmp_path / "noisy.png"
    rng = np.random.default_rng(0)
    img = cv2.imread(str(folder / f"{IDS[0]}.png")).astype(np.int16)
    cv2.imwrite(str(noisy), np.clip(img + rng.integers(-12, 13, img.shape), 0, 255)
                .astype(np.uint8))
    return folder, noisy


def rows(text: str) -> list[dict]:
    return [r for r in (json.loads(line) for line in text.splitlines() if line.strip())
            if "detector" in r]


def cases(text: str) -> dict[str, dict]:
    """file -> its case verdict line (one per image, after its detector rows)."""
    return {r["file"]: r for r in (json.loads(line) for line in text.splitlines()
                                   if line.strip()) if "case_verdict" in r}


def test_detect_json_lines_and_exit_codes(shared_data, photos, tmp_path, capsys):
    folder, _ = photos
    png = folder / f"{IDS[0]}.png"
    jpeg = shared_data / "dermoscopy" / "isic" / "images" / f"{IDS[0]}.jpg"
    ct = tmp_path / "CT_small.dcm"
    shutil.copy(pydicom_test_file("CT_small.dcm"), ct)
    # an empty calibration folder: only it is asked, so the shipped thresholds stay out
    none = str(tmp_path / "no calibrations")
    code = main(["detect", "--json", "--calibration", none, "--detectors",
                 "noise-residual,ela,dicom-header", str(png), str(jpeg), str(ct)])
    text = capsys.readouterr().out
    out = rows(text)
    assert code == 0  # nothing flagged: uncalibrated, inconclusive or clean
    assert len(out) == 9
    # one case verdict per image: no calibrated detector ran, so none can say anything
    verdicts = cases(text)
    assert set(verdicts) == {str(png), str(jpeg), str(ct)}
    assert {v["case_verdict"] for v in verdicts.values()} == {"inconclusive"}
    by = {(r["file"], r["detector"]): r for r in out}
    assert all(r["verdict"] in VERDICTS for r in out)
    assert by[(str(png), "ela")]["verdict"] == "inconclusive"
    assert by[(str(png), "ela")]["explanation"] == "ELA applies to JPEG images only (this is PNG)"
    assert by[(str(jpeg), "ela")]["verdict"] == "uncalibrated"
    assert by[(str(ct), "dicom-header")]["verdict"] == "clean"
    nr = by[(str(png), "noise-residual")]
    assert nr["threshold"] is None and nr["score"] > 0 and nr["evidence"]["shape"] == [128, 128]

    # an adversarial DICOM written by the attack engine's exporter is flagged: exit 1
    image = load_image(ct)
    x, mapping = to_model_input(image)
    rng = np.random.default_rng(0)
    x_adv = np.clip(x + 0.01 * rng.choice([-1.0, 1.0], x.shape), 0, 1)
    adv = save_derived(image, x_adv, mapping, tmp_path / "adv.dcm",
                       describe_attack("pgd", "1", {"eps": 0.01}, __version__))
    code = main(["detect", "--detectors", "dicom-header", str(ct), str(adv)])
    table = capsys.readouterr().out
    assert code == 1
    lines = table.splitlines()
    assert lines[0].split() == ["file", "detector", "score", "threshold", "verdict",
                                "explanation"]
    assert any("adv.dcm" in line and "suspicious" in line for line in lines)
    assert any("CT_small.dcm" in line and " clean " in line for line in lines)

    # usage errors: exit 2, one line
    assert main(["detect", "--detectors", "no-such-detector", str(png)]) == 2
    assert "no detector named 'no-such-detector'" in capsys.readouterr().err
    assert main(["detect", str(tmp_path / "missing.png")]) == 2


def test_model_detectors_from_the_cli(photos, capsys, tmp_path):
    folder, _ = photos
    png = folder / f"{IDS[1]}.png"
    code = main(["detect", "--json", "--device", "cpu", "--calibration", str(tmp_path),
                 "--detectors", "feature-squeezing,transform-instability", str(png)])
    out = rows(capsys.readouterr().out)
    assert code == 0 and [r["verdict"] for r in out] == ["uncalibrated"] * 2
    assert all(r["score"] >= 0 for r in out)
    code = main(["detect", "--json", "--model", "none", "--calibration", str(tmp_path),
                 "--detectors", "feature-squeezing", str(png)])
    (row,) = rows(capsys.readouterr().out)
    assert code == 0 and row["verdict"] == "inconclusive" and row["explanation"] == \
        "needs a model"


def test_calibrate_then_detect_uses_the_saved_threshold(photos, capsys):
    folder, noisy = photos
    code = main(["calibrate", "--detector", "noise-residual", "--clean", str(folder),
                 "--fpr", "0.2"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    cal = load_calibration("noise-residual")
    assert cal is not None and (cal.n, cal.fpr) == (len(IDS), 0.2)
    assert calibration_file("noise-residual").is_file()
    assert f"saved to {calibration_file('noise-residual')}" in printed
    code = main(["detect", "--json", "--detectors", "noise-residual", str(folder), str(noisy)])
    out = {r["file"]: r for r in rows(capsys.readouterr().out)}
    assert all(r["calibrated"] and r["threshold"] == round(cal.threshold, 6)
               for r in out.values())
    assert out[str(noisy)]["verdict"] == "suspicious"  # +/-12 levels of noise
    assert sum(r["verdict"] == "suspicious" for r in out.values()) <= 2  # the FPR at work
    assert code == 1
    # a decisive detector has nothing to calibrate
    assert main(["calibrate", "--detector", "dicom-header", "--clean", str(folder)]) == 2
    assert "not calibratable" in capsys.readouterr().err


def test_shipped_thresholds_judge_photos_but_not_a_ct(shared_data, tmp_path, capsys):
    """A fresh install (no calibration step) judges a dermoscopy photo with the shipped
    thresholds; a CT is not judged by thresholds measured on photos."""
    jpeg = shared_data / "dermoscopy" / "isic" / "images" / f"{IDS[0]}.jpg"
    ct = tmp_path / "CT_small.dcm"
    shutil.copy(pydicom_test_file("CT_small.dcm"), ct)
    code = main(["detect", "--json", "--detectors", "noise-residual", str(jpeg), str(ct)])
    photo_row, ct_row = rows(capsys.readouterr().out)
    assert code in (0, 1)
    assert photo_row["calibrated"] and photo_row["threshold"] is not None
    assert photo_row["verdict"] in ("clean", "suspicious")
    assert ct_row["verdict"] == "uncalibrated" and ct_row["threshold"] is None
    assert "calibrated on XC images, not CT" in ct_row["explanation"]


def test_a_users_calibration_with_other_params_is_set_aside_out_loud(shared_data, photos,
                                                                     capsys):
    """The user calibrated a detector with params that are no longer what it runs with
    (a changed default does this): the shipped threshold judges the row, and the row says
    that the user's calibration was not used, and why, rather than switching silently."""
    folder, _ = photos
    assert main(["calibrate", "--detector", "noise-residual", "--clean", str(folder),
                 "--param", "denoiser=nlm"]) == 0
    capsys.readouterr()
    users = load_calibration("noise-residual")
    assert users is not None and users.params["denoiser"] == "nlm"
    jpeg = shared_data / "dermoscopy" / "isic" / "images" / f"{IDS[0]}.jpg"
    main(["detect", "--json", "--detectors", "noise-residual", str(jpeg)])
    (row,) = rows(capsys.readouterr().out)
    shipped = load_calibration("noise-residual", shipped_calibration_dir())
    assert row["calibrated"] and row["threshold"] == round(shipped.threshold, 6)
    assert row["threshold"] != round(users.threshold, 6)
    assert "your calibration was not used" in row["explanation"]
    assert "denoiser" in row["explanation"]  # the reason: the params differ
