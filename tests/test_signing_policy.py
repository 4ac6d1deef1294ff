"""The one signing policy (CLI and GUI): sign an unsigned file, skip one already signed and
unchanged, refuse one changed since it was signed, and sign anything with force. Real
files (pydicom's CT_small.dcm), real keys from the key store, a real ledger."""

from __future__ import annotations

import shutil

import pydicom
import pytest
from conftest import pydicom_test_file

from workbench.imaging import load_image
from workbench.provenance.ledger.store import Ledger
from workbench.provenance.records import keys
from workbench.provenance.records.record import read_record, record_id, sidecar_path
from workbench.provenance.records.verify import verify_image
from workbench.session.signing_policy import (
    REFUSE,
    SIGN,
    SKIP,
    SigningDecision,
    decide_signing,
    sign_as_decided,
)

PASSPHRASE = "policy test passphrase"


@pytest.fixture
def private_key():
    info = keys.generate_key(PASSPHRASE, label="policy test")
    return keys.load_private_key(info.fingerprint, PASSPHRASE)


@pytest.fixture
def ct(tmp_path):
    path = tmp_path / "CT_small.dcm"
    shutil.copy(pydicom_test_file("CT_small.dcm"), path)
    return path


def test_unsigned_file_is_signed_with_sidecar_and_ledger_entry(ct, private_key, tmp_path):
    decision = decide_signing(ct)
    assert decision.action == SIGN and decision.signs
    assert str(ct) in decision.reason and "not signed yet" in decision.reason
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        record = sign_as_decided(decision, private_key, ledger=ledger)
        assert len(ledger) == 1
        assert [e.record_id for e in ledger.find(record_id=record_id(record))] == [
            record_id(record)]
    finally:
        ledger.close()
    assert read_record(sidecar_path(ct)) == record
    assert verify_image(ct, ledger=False).ok


def test_signed_and_unchanged_file_is_skipped(ct, private_key):
    sign_as_decided(decide_signing(ct), private_key)
    decision = decide_signing(ct)
    assert decision.action == SKIP and not decision.signs
    assert str(ct) in decision.reason and "valid record" in decision.reason
    with pytest.raises(ValueError, match="valid record"):
        sign_as_decided(decision, private_key)


def test_file_changed_after_signing_is_refused_and_its_sidecar_kept(ct, private_key, tmp_path):
    original = sign_as_decided(decide_signing(ct), private_key)
    ds = pydicom.dcmread(ct)
    pixels = ds.pixel_array.copy()
    pixels[0, 0] += 1  # one pixel
    ds.PixelData = pixels.tobytes()
    ds.save_as(ct)
    decision = decide_signing(ct)
    assert decision.action == REFUSE and not decision.signs
    assert str(ct) in decision.reason and "changed since it was signed" in decision.reason
    with pytest.raises(ValueError, match="changed since it was signed"):
        sign_as_decided(decision, private_key)
    assert read_record(sidecar_path(ct)) == original  # the evidence stays


def test_force_signs_a_changed_file_and_a_signed_one(ct, private_key):
    first = sign_as_decided(decide_signing(ct), private_key)
    assert decide_signing(ct, force=True).action == SIGN  # signed and unchanged
    ds = pydicom.dcmread(ct)
    pixels = ds.pixel_array.copy()
    pixels[5, 7] -= 1
    ds.PixelData = pixels.tobytes()
    ds.save_as(ct)
    decision = decide_signing(ct, force=True)
    assert decision.action == SIGN and "force" in decision.reason
    second = sign_as_decided(decision, private_key)
    assert second != first
    assert verify_image(ct, ledger=False).ok


def test_decoded_image_is_signed_without_decoding_again(ct, private_key):
    image = load_image(ct)
    decision = decide_signing(ct, image)
    assert decision.image is image
    assert decision == SigningDecision(ct, SIGN, decision.reason)  # the image is not compared
    sign_as_decided(decision, private_key)
    assert decide_signing(ct, image).action == SKIP


def test_unreadable_sidecar_is_refused(ct):
    sidecar_path(ct).write_text("{ not a record")
    decision = decide_signing(ct)
    assert decision.action == REFUSE and str(ct) in decision.reason
