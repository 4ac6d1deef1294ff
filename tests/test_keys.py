"""Signing keys and the trust store, with real Ed25519 keys on disk."""

from __future__ import annotations

import logging
import stat

import pytest
from cryptography.hazmat.primitives import serialization

from workbench.home import keys_dir
from workbench.provenance.records import keys


def test_new_key_is_encrypted_private_0600_and_trusted():
    info = keys.generate_key("correct horse", label="CR room 3")
    path = keys_dir() / f"{info.fingerprint}.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pem = path.read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in pem
    with pytest.raises(TypeError):  # not loadable without the passphrase
        serialization.load_pem_private_key(pem, password=None)
    key = keys.load_private_key(info.fingerprint, "correct horse")
    assert keys.fingerprint_of(keys.raw_public_key(key.public_key())) == info.fingerprint
    assert keys.resolve_key().fingerprint == info.fingerprint  # the first key is the default
    assert [k.fingerprint for k in keys.trusted_keys()] == [info.fingerprint]
    assert keys.list_keys()[0].has_private_key and keys.list_keys()[0].trusted


def test_wrong_passphrase_is_a_clear_error():
    info = keys.generate_key("right")
    with pytest.raises(keys.KeyStoreError, match="wrong passphrase for key " + info.short):
        keys.load_private_key(info.fingerprint, "wrong")


def test_empty_passphrase_is_refused():
    with pytest.raises(keys.KeyStoreError, match="passphrase is required"):
        keys.generate_key("")


def test_no_private_key_material_in_logs(caplog):
    caplog.set_level(logging.DEBUG)
    info = keys.generate_key("s3cret-pass", label="site A")
    key = keys.load_private_key(info.fingerprint, "s3cret-pass")
    with pytest.raises(keys.KeyStoreError):
        keys.load_private_key(info.fingerprint, "nope")
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    pem = (keys_dir() / f"{info.fingerprint}.key").read_text()
    text = caplog.text
    assert raw.hex() not in text and raw.hex().upper() not in text
    assert pem.splitlines()[1] not in text
    assert "s3cret-pass" not in text


def test_trust_untrust_and_export(tmp_path):
    other = keys.generate_key("x", label="device B")
    pem = keys.export_public_key_pem(other.fingerprint)
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    keys.untrust_key(other.fingerprint[:10])
    assert keys.trusted_key(other.fingerprint) is None
    f = tmp_path / "b.pem"
    f.write_bytes(pem)
    info = keys.trust_key(f, "device B (scanner)")
    assert info.fingerprint == other.fingerprint
    assert keys.trusted_key(other.fingerprint).label == "device B (scanner)"
    with pytest.raises(keys.KeyStoreError, match="not an Ed25519 public key"):
        keys.trust_key(b"garbage", "x")


def test_passphrase_from_file_strips_only_the_newline(tmp_path, monkeypatch):
    f = tmp_path / "pass.txt"
    f.write_text(" spaced pass \n")
    assert keys.passphrase_from_env_or_file(str(f)) == " spaced pass "
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "from-env")
    assert keys.passphrase_from_env_or_file(None) == "from-env"
