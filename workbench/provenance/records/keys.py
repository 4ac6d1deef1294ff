"""Signing keys (Ed25519) and the trust store.

Private keys are stored under ``WORKBENCH_HOME/keys`` as PKCS#8 PEM encrypted with the
user's passphrase (``BestAvailableEncryption``), created with mode 0600 and never
logged. A key is named by its fingerprint: SHA-256 of the raw 32-byte public key, in hex.
Trust is explicit: ``WORKBENCH_HOME/trust`` holds the public keys the user chose to trust,
each with a label (device, site). A key made here is trusted by its maker.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ...home import keys_dir, trust_store_dir

PASSPHRASE_ENV = "WORKBENCH_KEY_PASSPHRASE"
ALGORITHM = "Ed25519"


class KeyStoreError(Exception):
    """A key problem the user can act on (wrong passphrase, unknown key, bad file)."""


@dataclass(frozen=True)
class KeyInfo:
    fingerprint: str
    label: str
    created: str
    public_key_b64: str
    has_private_key: bool = False
    trusted: bool = False

    @property
    def short(self) -> str:
        return self.fingerprint[:16]


def fingerprint_of(public_key_raw: bytes) -> str:
    return hashlib.sha256(public_key_raw).hexdigest()


def raw_public_key(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_from_b64(b64: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64, validate=True))


def _write_private(path: Path, data: bytes) -> None:
    """Create the file with mode 0600 from the start (no window where it is readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_key(passphrase: str, label: str = "") -> KeyInfo:
    """Make a new Ed25519 key pair, store it encrypted, and trust its public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not passphrase:
        raise KeyStoreError("a passphrase is required to protect the new private key")
    private = Ed25519PrivateKey.generate()
    raw = raw_public_key(private.public_key())
    fp = fingerprint_of(raw)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode("utf-8")))
    folder = keys_dir()
    _write_private(folder / f"{fp}.key", pem)
    info = {"fingerprint": fp, "label": label, "created": _utc_now(), "algorithm": ALGORITHM,
            "public_key": base64.b64encode(raw).decode()}
    (folder / f"{fp}.json").write_text(json.dumps(info, indent=2))
    if default_key_fingerprint() is None:
        set_default_key(fp)
    trust_key(info["public_key"], label or "own key")
    return KeyInfo(fp, label, info["created"], info["public_key"], True, True)


def list_keys() -> list[KeyInfo]:
    """Own keys (with a private key here), newest first."""
    trusted = {k.fingerprint for k in trusted_keys()}
    out = []
    for meta in keys_dir().glob("*.json"):
        info = json.loads(meta.read_text())
        fp = info["fingerprint"]
        out.append(KeyInfo(fp, info.get("label", ""), info.get("created", ""),
                           info["public_key"], (meta.parent / f"{fp}.key").is_file(),
                           fp in trusted))
    return sorted(out, key=lambda k: k.created, reverse=True)


def resolve_key(prefix: str | None = None) -> KeyInfo:
    """An own key by fingerprint prefix, or the default one."""
    keys = list_keys()
    if not keys:
        raise KeyStoreError("no signing key yet: create one with 'workbench keys new'")
    if prefix is None:
        default = default_key_fingerprint()
        prefix = default if default else keys[0].fingerprint
    matches = [k for k in keys if k.fingerprint.startswith(prefix.lower())]
    if not matches:
        raise KeyStoreError(f"no own key with fingerprint {prefix}")
    if len(matches) > 1:
        raise KeyStoreError(f"fingerprint prefix {prefix} is ambiguous ({len(matches)} keys)")
    return matches[0]


def load_private_key(fingerprint: str, passphrase: str) -> Any:
    """Decrypt an own private key. A wrong passphrase raises KeyStoreError saying so."""
    from cryptography.hazmat.primitives import serialization

    path = keys_dir() / f"{fingerprint}.key"
    if not path.is_file():
        raise KeyStoreError(f"no private key for {fingerprint[:16]} in {path.parent}")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(),
                                                 password=passphrase.encode("utf-8"))
    except (ValueError, TypeError):
        # cryptography says "Bad decrypt. Incorrect password?"; never echo key material.
        # A damaged file (cut short, edited) must not read as a wrong passphrase: the user
        # would retype a right one for ever. Without a password an intact encrypted key
        # fails with TypeError ("password was not given"), a damaged one with ValueError.
        try:
            serialization.load_pem_private_key(path.read_bytes(), password=None)
        except TypeError:
            raise KeyStoreError(f"wrong passphrase for key {fingerprint[:16]}") from None
        except ValueError:
            raise KeyStoreError(f"the key file {path} is damaged (not a complete PEM private "
                                "key): restore it from your backup") from None
        raise KeyStoreError(f"the key file {path} is not encrypted: refusing it") from None
    if fingerprint_of(raw_public_key(key.public_key())) != fingerprint:
        raise KeyStoreError(f"key file {path.name} does not hold the key its name says")
    return key


def default_key_fingerprint() -> str | None:
    path = keys_dir() / "default"
    return path.read_text().strip() if path.is_file() else None


def set_default_key(fingerprint: str) -> None:
    (keys_dir() / "default").write_text(fingerprint + "\n")


def passphrase_from_env_or_file(passphrase_file: str | None = None) -> str | None:
    """Scripts pass the passphrase through a file or the environment, never argv."""
    if passphrase_file:
        text = Path(passphrase_file).read_text(encoding="utf-8")
        return text.rstrip("\r\n")
    return os.environ.get(PASSPHRASE_ENV)


# --- trust store ----------------------------------------------------------------------------
def trust_key(public_key: str | bytes | Path, label: str) -> KeyInfo:
    """Trust a public key: raw base64, a PEM file or PEM bytes. Returns its info."""
    raw = _public_key_raw(public_key)
    fp = fingerprint_of(raw)
    info = {"fingerprint": fp, "label": label, "added": _utc_now(), "algorithm": ALGORITHM,
            "public_key": base64.b64encode(raw).decode()}
    (trust_store_dir() / f"{fp}.json").write_text(json.dumps(info, indent=2))
    return KeyInfo(fp, label, info["added"], info["public_key"], False, True)


def untrust_key(prefix: str) -> KeyInfo:
    matches = [k for k in trusted_keys() if k.fingerprint.startswith(prefix.lower())]
    if len(matches) != 1:
        how_many = "no" if not matches else "more than one"
        raise KeyStoreError(f"{how_many} trusted key matches {prefix}")
    (trust_store_dir() / f"{matches[0].fingerprint}.json").unlink()
    return matches[0]


def trusted_keys() -> list[KeyInfo]:
    out = []
    for meta in trust_store_dir().glob("*.json"):
        info = json.loads(meta.read_text())
        out.append(KeyInfo(info["fingerprint"], info.get("label", ""), info.get("added", ""),
                           info["public_key"], False, True))
    return sorted(out, key=lambda k: k.label)


def trusted_key(fingerprint: str) -> KeyInfo | None:
    path = trust_store_dir() / f"{fingerprint}.json"
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    return KeyInfo(info["fingerprint"], info.get("label", ""), info.get("added", ""),
                   info["public_key"], False, True)


def export_public_key_pem(fingerprint: str) -> bytes:
    from cryptography.hazmat.primitives import serialization

    info = next((k for k in list_keys() + trusted_keys() if k.fingerprint == fingerprint), None)
    if info is None:
        raise KeyStoreError(f"unknown key {fingerprint[:16]}")
    return public_key_from_b64(info.public_key_b64).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _public_key_raw(public_key: str | bytes | Path) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data: bytes
    if isinstance(public_key, Path):
        data = public_key.read_bytes()
    elif isinstance(public_key, str):
        data = public_key.encode()
    else:
        data = public_key
    try:
        if b"BEGIN PUBLIC KEY" in data:
            key = serialization.load_pem_public_key(data)
            if not isinstance(key, Ed25519PublicKey):
                raise KeyStoreError("only Ed25519 public keys can be trusted")
            return raw_public_key(key)
        raw = base64.b64decode(data.strip(), validate=True)
        Ed25519PublicKey.from_public_bytes(raw)
        return raw
    except KeyStoreError:
        raise
    except Exception:
        raise KeyStoreError(
            "not an Ed25519 public key (PEM or base64 of the 32 raw bytes)") from None
