"""The header fingerprint hashes each element's stored bytes, whatever else has read the
data set: browsing the tags (the metadata panel converts every element) between signing
and verifying must not turn a valid signature into "header changed"."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from conftest import spaced_window_ct

from workbench.imaging import load_image
from workbench.provenance.records import keys
from workbench.provenance.records.header import element_values, header_fingerprint
from workbench.provenance.records.record import build_record, sign_record, write_sidecar
from workbench.provenance.records.signing import sign_image
from workbench.provenance.records.verify import verify_image

PASSPHRASE = "test passphrase"
WINDOW_CENTER, WINDOW_EXPLANATION, STUDY_DESCRIPTION = 0x00281050, 0x00281055, 0x00081030


@pytest.fixture
def signer():
    info = keys.generate_key(PASSPHRASE, label="test site")
    return keys.load_private_key(info.fingerprint, PASSPHRASE)


def _browse(image) -> None:
    """What the metadata panel does to the data set it shows: every element converted."""
    for _ in image.metadata.iterall():
        pass


@pytest.fixture
def spaced_ct(tmp_path: Path) -> Path:
    return spaced_window_ct(tmp_path / "spaced.dcm")


def test_the_stored_and_the_converted_forms_differ_here(spaced_ct):
    """The premise of the tests below: on this file, hashing the loaded data set (the
    form before stored views) and hashing the stored bytes give different values."""
    image = load_image(spaced_ct)
    stored, loaded = element_values(image.stored_metadata), element_values(image.metadata)
    assert stored[WINDOW_CENTER] == b"40 \\400" and loaded[WINDOW_CENTER] == b"40\\400"
    assert stored[WINDOW_EXPLANATION] != loaded[WINDOW_EXPLANATION]
    assert image.default_window(0).center == 40.0  # the reader did read them


def test_browsing_before_signing_or_before_verifying_keeps_the_signature_valid(
        spaced_ct, tmp_path, signer):
    copy = tmp_path / "browsed-first.dcm"
    shutil.copy(spaced_ct, copy)
    browsed = load_image(copy)
    _browse(browsed)
    sign_image(copy, signer, image=browsed)  # as the GUI signs the image it shows
    assert verify_image(copy, ledger=False).verdict == "intact"

    sign_image(spaced_ct, signer)  # as `workbench sign` does
    shown = load_image(spaced_ct)
    _browse(shown)
    r = verify_image(spaced_ct, image=shown, ledger=False)  # as the GUI verifies
    assert r.verdict == "intact", r.summary
    assert r.check("header").status == "pass"


def test_hashing_a_header_twice_gives_the_same_digest(shared_data):
    """Hashing must not convert what it hashes: an implicit VR file's private elements
    once had their VR resolved by converting them, so a second pass hashed other bytes."""
    path = shared_data / "dicom" / "pydicom-data" / "MR-SIEMENS-DICOM-WithOverlays.dcm"
    image = load_image(path)
    first = header_fingerprint(image.stored_metadata, bytes(16))
    _browse(image)
    assert header_fingerprint(image.stored_metadata, bytes(16)) == first
    assert header_fingerprint(load_image(path).stored_metadata, bytes(16)) == first


def test_a_record_hashed_from_the_loaded_data_set_still_verifies(spaced_ct, signer):
    """Records made before the stored view hashed the data set as the reader left it.
    They stay valid, and a real edit is still named, without the window elements whose
    two forms differ being named with it."""
    image = load_image(spaced_ct)
    record = build_record(image)
    record["header"] = header_fingerprint(image.metadata,
                                          bytes.fromhex(record["header"]["salt"]))
    assert record["header"]["sha256"] != header_fingerprint(
        image.stored_metadata, bytes(16))["sha256"]
    write_sidecar(sign_record(record, signer), spaced_ct)

    r = verify_image(spaced_ct, ledger=False)
    assert r.verdict == "intact", r.summary

    ds = pydicom.dcmread(spaced_ct)
    ds.StudyDescription = "edited"
    ds.save_as(spaced_ct)
    r = verify_image(spaced_ct, ledger=False)
    assert r.verdict == "tampered"
    message = r.check("header").message
    assert "StudyDescription" in message and "Window" not in message, message
