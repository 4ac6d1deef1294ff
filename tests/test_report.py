"""Case reports: HTML with verdicts and inline pictures, PDF with pages, fingerprinted and
signed."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys

from conftest import pydicom_test_file
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from workbench.provenance.records.canonical_json import canonical_json


def wb(*args, env=None):
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, timeout=600, env=env or dict(os.environ))


def test_html_and_pdf_reports(shared_data, tmp_path, _private_home):
    env = dict(os.environ, WORKBENCH_HOME=str(_private_home), WORKBENCH_KEY_PASSPHRASE="pw")
    photo = tmp_path / "ISIC_0000002.jpg"
    shutil.copy(shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000002.jpg", photo)
    ct = tmp_path / "CT_small.dcm"
    shutil.copy(pydicom_test_file("CT_small.dcm"), ct)
    assert wb("keys", "new", env=env).returncode == 0
    assert wb("sign", str(photo), env=env).returncode == 0

    html_out = tmp_path / "report.html"
    out = wb("report", str(photo), str(ct), "--out", str(html_out), "--sign", env=env)
    assert out.returncode == 0, out.stderr
    text = html_out.read_text()
    assert "Provenance: intact" in text and "Provenance: unsigned" in text
    for detector in ("feature-squeezing", "noise-residual", "dicom-header", "capture-record"):
        assert detector in text
    assert "Model <b>demo</b>" in text
    # each detector row says what ran: its version and parameters
    assert "<small>v1, denoiser=median, nlm_strength=5.0</small>" in text
    assert len(re.findall(r"src='data:image/png;base64,", text)) >= 4  # images and maps inline
    import hashlib

    digest = hashlib.sha256(html_out.read_bytes()).hexdigest()
    assert (tmp_path / "report.html.sha256").read_text().split()[0] == digest
    stamp = json.loads((tmp_path / "report.html.wbsig.json").read_text())
    assert stamp["sha256"] == digest
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(stamp["signer"]["public_key"]))
    unsigned = {k: v for k, v in stamp.items() if k != "signature"}
    public.verify(base64.b64decode(stamp["signature"]), canonical_json(unsigned))  # raises if bad

    pdf_out = tmp_path / "report.pdf"
    out = wb("report", str(photo), "--out", str(pdf_out), "--detectors", "ela,noise-residual",
             env=env)
    assert out.returncode == 0, out.stderr
    data = pdf_out.read_bytes()
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", data)) >= 1
    assert b"/Subtype /Image" in data or b"/Subtype/Image" in data  # pictures made it in


def test_report_of_a_missing_file_is_a_one_line_error(tmp_path):
    out = wb("report", str(tmp_path / "nope.dcm"), "--out", str(tmp_path / "r.html"))
    assert out.returncode == 2 and "no such file" in out.stderr and "Traceback" not in out.stderr


def test_report_gives_no_diagnosis_from_a_model_that_does_not_fit(shared_data):
    """The dermoscopy model on a chest CR: the case says why there is no diagnosis and
    carries no class probabilities."""
    from workbench.models.zoo import load_model
    from workbench.report.case_report import build_case, render_html

    cr = shared_data / "dicom" / "pydicom-data" / "RG1_J2KR.dcm"
    case = build_case(cr, model=load_model("demo"), model_name="demo")
    assert "probabilities" not in case["prediction"]
    assert "chest X-ray (CR)" in case["prediction"]["not_fit"]
    html = render_html([case])
    assert "no diagnosis" in html and "melanoma 0." not in html and "nevus 0." not in html


def test_report_pictures_are_turned_as_the_window_shows_the_photo(shared_data, tmp_path):
    """A photo whose EXIF says "rotate 90°": the window shows it upright, so the report's
    picture and the evidence map over it are turned the same way (the detectors ran on
    the stored grid, and the map stays on the pixels it describes)."""
    import cv2
    import numpy as np
    from PIL import Image

    from workbench.imaging import load_image
    from workbench.imaging.display import render
    from workbench.report.case_report import build_case

    with Image.open(shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000000.jpg") as im:
        photo = im.convert("RGB").resize((255, 191))  # odd, unequal sides
    exif = Image.Exif()
    exif[274] = 6
    path = tmp_path / "rotated.jpg"
    photo.save(path, exif=exif, quality=95)

    def picture(uri: str) -> np.ndarray:
        data = base64.b64decode(uri.split(",", 1)[1])
        return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR),
                            cv2.COLOR_BGR2RGB)

    from workbench.engine.plugins import PluginRegistry

    noise = next(p for p in PluginRegistry().plugins if p.name == "noise-residual")
    case = build_case(path, detectors=[noise.create()])
    shown = picture(case["picture"])
    upright = render(load_image(path))
    assert upright.shape[:2] == (255, 191)  # rows and columns swapped by the EXIF turn
    assert shown.shape[:2] == (255, 191)
    assert np.abs(shown.astype(int) - upright.astype(int)).mean() < 3  # PNG of the same
    evidence = [f for f in case["findings"] if f.get("picture")]
    assert evidence and all(picture(f["picture"]).shape[:2] == (255, 191) for f in evidence)
