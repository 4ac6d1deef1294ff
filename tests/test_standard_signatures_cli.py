"""``workbench sign --c2pa / --dicom-signature`` and ``workbench verify`` reporting the
standard signatures beside our own record, with real certificates and real files."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from conftest import pydicom_test_file

from workbench.cli import main


@pytest.fixture(autouse=True)
def _signer(monkeypatch):
    monkeypatch.setenv("WORKBENCH_KEY_PASSPHRASE", "site passphrase")
    assert main(["certs", "new", "site signer", "--org", "Test Hospital"]) == 0


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _verify_json(capsys, path) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["verify", "--json", "--no-ledger", str(path)])
    return code, json.loads(capsys.readouterr().out.splitlines()[0])


def test_c2pa_signed_photo_verifies_and_a_flipped_byte_is_tampering(shared_data, tmp_path,
                                                                    capsys):
    pytest.importorskip("c2pa", reason="C2PA needs c2pa-python (pip install "
                        "'workbench[c2pa]')")
    src = tmp_path / "ISIC_0000000.jpg"
    shutil.copy(shared_data / "dermoscopy" / "isic" / "images" / src.name, src)
    before = _sha(src)
    assert main(["sign", "--c2pa", "site signer", "--out", str(tmp_path / "signed"),
                 str(src)]) == 0
    assert _sha(src) == before  # the original is never changed
    signed = tmp_path / "signed" / src.name
    code, result = _verify_json(capsys, signed)
    assert code == 0 and result["verdict"] == "intact"
    assert result["checks"]["C2PA manifest"]["status"] == "pass"
    assert "C2PA manifest" in result["summary"]
    # one flipped byte in the entropy-coded data
    data = bytearray(signed.read_bytes())
    data[data.rfind(b"\xff\xda") + 400] ^= 0x01
    signed.write_bytes(bytes(data))
    code, result = _verify_json(capsys, signed)
    assert code == 1 and result["verdict"] == "tampered"
    assert "assertion.dataHash.mismatch" in result["checks"]["C2PA manifest"]["message"]
    # the unsigned original: no manifest is "unsigned", never valid
    code, result = _verify_json(capsys, src)
    assert code == 1 and result["verdict"] == "unsigned" and "C2PA manifest" not in \
        result["checks"]


def test_sign_standard_bad_input(tmp_path, capsys):
    ct = tmp_path / "ct.dcm"
    shutil.copy(pydicom_test_file("CT_small.dcm"), ct)
    assert main(["sign", "--c2pa", "site signer", str(ct)]) == 2
    assert "give --out DIR" in capsys.readouterr().err
    assert main(["sign", "--c2pa", "nobody", "--out", str(tmp_path / "o"), str(ct)]) == 2
    assert "no certificate named 'nobody'" in capsys.readouterr().err
    assert main(["sign", "--c2pa", "site signer", "--out", str(tmp_path), str(ct)]) == 2
    assert "must not be the folder of the originals" in capsys.readouterr().err
    # a DICOM is skipped by --c2pa, with the count said
    assert main(["sign", "--c2pa", "site signer", "--out", str(tmp_path / "o"), str(ct)]) == 0
    assert "1 skipped (not JPEG/PNG)" in capsys.readouterr().out


def test_dicom_signature_from_the_command_line_beside_our_own_record(tmp_path, capsys):
    import pydicom

    src = tmp_path / "CT_small.dcm"
    shutil.copy(pydicom_test_file("CT_small.dcm"), src)
    before = _sha(src)
    assert main(["sign", "--dicom-signature", "site signer", "--profile", "creator",
                 "--out", str(tmp_path / "signed"), str(src)]) == 0
    assert _sha(src) == before
    signed = tmp_path / "signed" / src.name
    code, result = _verify_json(capsys, signed)
    assert code == 0 and result["verdict"] == "intact"
    assert result["checks"]["DICOM signature"]["status"] == "pass"
    assert "Test Hospital" in result["checks"]["DICOM signature"]["message"]

    # our own capture record too: both are reported, our record decides
    assert main(["keys", "new", "--label", "CT room"]) == 0
    assert main(["sign", "--no-ledger", str(signed)]) == 0
    code, result = _verify_json(capsys, signed)
    assert code == 0 and result["verdict"] == "intact"
    assert result["checks"]["pixels"]["status"] == "pass"
    assert result["checks"]["DICOM signature"]["status"] == "pass"

    # a signed attribute changed: the DICOM signature fails -> tampered
    ds = pydicom.dcmread(signed)
    ds.PatientName = "Someone^Else"
    ds.save_as(signed)
    code, result = _verify_json(capsys, signed)
    assert code == 1 and result["verdict"] == "tampered"
    assert "MAC mismatch" in result["checks"]["DICOM signature"]["message"]
    capsys.readouterr()
    assert main(["verify", "--no-ledger", str(signed)]) == 1
    assert "DICOM FAIL" in capsys.readouterr().out


def test_attacked_export_is_signed_with_what_was_done(shared_data, tmp_path, capsys):
    pytest.importorskip("c2pa", reason="C2PA needs c2pa-python (pip install "
                        "'workbench[c2pa]')")
    photo = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000001.jpg"
    assert main(["attack", "--plugin", "fgsm", "--c2pa", "site signer", "--out",
                 str(tmp_path / "out"), str(photo)]) == 0
    exported = next((tmp_path / "out").glob("*.png"))
    code, result = _verify_json(capsys, exported)
    assert code == 0 and result["verdict"] == "intact"
    message = result["checks"]["C2PA manifest"]["message"]
    assert "declared edits" in message and "attack plugin fgsm" in message


@pytest.mark.parametrize("name", ["test-SR.dcm", "rtplan.dcm", "waveform_ecg.dcm"])
def test_objects_that_are_not_images_are_signed_and_verified(tmp_path, capsys, name):
    """A structured report, an RT plan and an ECG: no pixels, so no capture record of
    ours, but their DICOM signatures are made and checked like an image's."""
    import pydicom

    src = tmp_path / name
    shutil.copy(pydicom_test_file(name), src)
    code, result = _verify_json(capsys, src)
    assert code == 1 and result["verdict"] == "unsigned"  # not "error :: no pixel data"
    assert "not an image" in result["checks"]["image"]["message"]
    assert main(["sign", "--dicom-signature", "site signer", "--out",
                 str(tmp_path / "signed"), str(src)]) == 0
    signed = tmp_path / "signed" / name
    code, result = _verify_json(capsys, signed)
    assert code == 0 and result["verdict"] == "intact", result
    assert result["checks"]["DICOM signature"]["status"] == "pass"
    ds = pydicom.dcmread(signed)
    ds.PatientID = "changed"
    ds.save_as(signed)
    code, result = _verify_json(capsys, signed)
    assert code == 1 and result["verdict"] == "tampered"
    assert "MAC mismatch" in result["checks"]["DICOM signature"]["message"]


def test_a_look_alike_with_a_valid_dicom_signature_of_its_own_is_intact(tmp_path, capsys):
    """CT_small is in the ledger; another image like it (a square changed, a new UID)
    carries the hospital's own valid DICOM signature. The ledger's record is a look-
    alike's, not this image's: its own signature decides, as for an image with no
    record of ours."""
    from conftest import altered_ct

    original, other, _ = altered_ct(tmp_path, new_uid=True)
    assert main(["keys", "new", "--label", "CT room"]) == 0
    assert main(["sign", str(original)]) == 0  # a sidecar and the default ledger
    assert main(["sign", "--dicom-signature", "site signer", "--profile", "creator",
                 "--out", str(tmp_path / "signed"), str(other)]) == 0
    capsys.readouterr()
    code = main(["verify", "--json", str(tmp_path / "signed" / other.name)])
    result = json.loads(capsys.readouterr().out.splitlines()[0])
    assert "by perceptual hash" in result["checks"]["record"]["message"]
    assert code == 0 and result["verdict"] == "intact", result["summary"]
    assert result["summary"].startswith("intact by its DICOM signature")
