"""X.509 certificates for the standard signatures (DICOM PS3.15 and C2PA).

Both standards sign with an X.509 certificate, not a bare key: a hospital or a publisher
decides trust by certificate chains. This module makes a small local CA and signer
certificates with what both standards' validators check, or imports existing ones.

- Local CA: RSA 3072, self-signed, basicConstraints CA:TRUE (pathlen 0), keyUsage
  keyCertSign + cRLSign, subject key identifier.
- Signer: RSA 2048 (the DICOM Base and Creator RSA profiles need RSA; C2PA signs with it
  as PS256), issued by the CA, basicConstraints CA:FALSE, keyUsage digitalSignature +
  contentCommitment (non-repudiation), extendedKeyUsage emailProtection and
  documentSigning (C2PA's trust list accepts these and refuses anyExtendedKeyUsage),
  authority and subject key identifiers.

Storage (under WORKBENCH_HOME): ``x509/<name>/`` holds ``cert.pem``, ``chain.pem`` (the
signer then its CA) and ``key.pem`` (PKCS#8, encrypted with the passphrase, mode 0600).
Trust anchors are explicit: ``trust/x509/*.pem`` holds the CA certificates the user chose
to trust; nothing is trusted because it was found on the system.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...home import workbench_home

EMAIL_PROTECTION = "1.3.6.1.5.5.7.3.4"
DOCUMENT_SIGNING = "1.3.6.1.5.5.7.3.36"


class CertificateError(Exception):
    """A certificate problem the user can act on; the message names the file."""


@dataclass(frozen=True)
class SignerIdentity:
    """A signer as both standards need it: its key, its certificate and the chain."""

    name: str
    key: Any  # cryptography RSAPrivateKey
    certificate: Any  # cryptography x509.Certificate
    chain: tuple[Any, ...]  # signer first, then issuers

    def chain_pem(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding

        return b"".join(c.public_bytes(Encoding.PEM) for c in self.chain)

    def key_pem(self) -> bytes:
        """The private key unencrypted, PKCS#8 PEM (for signers that want PEM in memory)."""
        from cryptography.hazmat.primitives import serialization as s

        return self.key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8,
                                      s.NoEncryption())


def x509_dir() -> Path:
    d = workbench_home() / "x509"
    d.mkdir(parents=True, exist_ok=True)
    return d


def trust_anchor_dir() -> Path:
    d = workbench_home() / "trust" / "x509"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _safe(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")
    if not safe:
        raise CertificateError(f"{name!r} is not a usable name for a certificate")
    return safe


def _name(common_name: str, organisation: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organisation:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(attrs)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def identity_folder(name: str) -> Path:
    """Where a stored signer (or CA) called ``name`` lives."""
    return x509_dir() / _safe(name)


def create_ca(common_name: str = "workbench local CA", organisation: str = "",
              days: int = 3650) -> tuple[Any, Any]:
    """A self-signed CA (key, certificate)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = _name(common_name, organisation)
    now = _now()
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256()))
    return key, cert


def issue_signer(ca_key: Any, ca_cert: Any, common_name: str, organisation: str = "",
                 days: int = 825) -> tuple[Any, Any]:
    """A signer (key, certificate) issued by the CA, usable for DICOM and C2PA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ObjectIdentifier

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = _now()
    cert = (
        x509.CertificateBuilder().subject_name(_name(common_name, organisation))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ObjectIdentifier(EMAIL_PROTECTION),
                                              ObjectIdentifier(DOCUMENT_SIGNING)]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_cert.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256()))
    return key, cert


def save_identity(name: str, key: Any, chain: list[Any], passphrase: str) -> Path:
    """Store a signer (or a CA) under ``x509/<name>/``; the key encrypted, mode 0600."""
    from cryptography.hazmat.primitives import serialization as s

    if not passphrase:
        raise CertificateError("a passphrase is needed to store a private key")
    folder = x509_dir() / _safe(name)
    folder.mkdir(parents=True, exist_ok=True)
    pem = b"".join(c.public_bytes(s.Encoding.PEM) for c in chain)
    (folder / "cert.pem").write_bytes(chain[0].public_bytes(s.Encoding.PEM))
    (folder / "chain.pem").write_bytes(pem)
    key_path = folder / "key.pem"
    data = key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8,
                             s.BestAvailableEncryption(passphrase.encode()))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return folder


def load_identity(name: str, passphrase: str) -> SignerIdentity:
    """A stored signer, its key decrypted with ``passphrase``."""
    from cryptography.hazmat.primitives import serialization as s

    folder = identity_folder(name)
    if not (folder / "key.pem").is_file():
        known = ", ".join(sorted(p.name for p in x509_dir().iterdir() if p.is_dir()))
        raise CertificateError(f"no certificate named {name!r} (known: {known or 'none'}; "
                               "create one with 'workbench certs new')")
    try:
        key = s.load_pem_private_key((folder / "key.pem").read_bytes(), passphrase.encode())
    except (ValueError, TypeError):
        raise CertificateError(f"{folder / 'key.pem'}: wrong passphrase or not a "
                               "private key") from None
    chain = tuple(read_certificates(folder / "chain.pem"))
    return SignerIdentity(name, key, chain[0], chain)


def read_certificates(path: str | os.PathLike[str]) -> list[Any]:
    """Every certificate in a PEM file (or one DER certificate)."""
    from cryptography import x509

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CertificateError(f"{p}: {exc.strerror or exc}") from None
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return list(x509.load_pem_x509_certificates(data))
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise CertificateError(f"{p}: not an X.509 certificate ({exc})") from None


def import_pkcs12(name: str, path: str | os.PathLike[str], password: str,
                  store_passphrase: str) -> Path:
    """Import a signer from a PKCS#12 (.p12/.pfx) file."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    p = Path(path)
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(p.read_bytes(),
                                                            password.encode() or None)
    except (OSError, ValueError) as exc:
        raise CertificateError(f"{p}: cannot read the PKCS#12 file ({exc})") from None
    if key is None or cert is None:
        raise CertificateError(f"{p}: the PKCS#12 file holds no key and certificate pair")
    return save_identity(name, key, [cert, *(extra or [])], store_passphrase)


def import_pem(name: str, cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str],
               key_password: str, store_passphrase: str) -> Path:
    """Import a signer from PEM files (certificate chain, private key)."""
    from cryptography.hazmat.primitives import serialization as s

    chain = read_certificates(cert_path)
    try:
        key = s.load_pem_private_key(Path(key_path).read_bytes(),
                                     key_password.encode() or None)
    except (OSError, ValueError, TypeError) as exc:
        raise CertificateError(f"{key_path}: cannot read the private key ({exc})") from None
    return save_identity(name, key, chain, store_passphrase)


def trust_anchor(cert: Any, label: str) -> Path:
    """Trust a CA certificate explicitly (written to ``trust/x509/<label>.pem``)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    path = trust_anchor_dir() / f"{_safe(label)}.pem"
    path.write_bytes(cert.public_bytes(Encoding.PEM))
    return path


def trust_anchors() -> list[Any]:
    """The explicitly trusted CA certificates."""
    out = []
    for f in sorted(trust_anchor_dir().glob("*.pem")):
        out.extend(read_certificates(f))
    return out


def trust_anchors_pem() -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return b"".join(c.public_bytes(Encoding.PEM) for c in trust_anchors())


def create_local_pki(signer_name: str, passphrase: str, *, organisation: str = "",
                     ca_name: str = "local-ca") -> SignerIdentity:
    """A local CA (stored and trusted) and a signer it issued (stored): the one-step set-up
    for sites without a PKI of their own."""
    ca_key, ca_cert = create_ca(f"{organisation or 'workbench'} local CA", organisation)
    save_identity(ca_name, ca_key, [ca_cert], passphrase)
    trust_anchor(ca_cert, ca_name)
    key, cert = issue_signer(ca_key, ca_cert, signer_name, organisation)
    save_identity(signer_name, key, [cert, ca_cert], passphrase)
    return SignerIdentity(signer_name, key, cert, (cert, ca_cert))


def verify_chain(chain: list[Any], anchors: list[Any] | None = None) -> tuple[bool, str]:
    """Whether ``chain`` (signer first) leads to an explicitly trusted CA: each
    certificate is signed by the next (``verify_directly_issued_by``), every issuer is a
    CA, every certificate is within its validity period now, and the last one is issued
    by (or is) a trust anchor. Returns (trusted, reason). Revocation is not checked (no
    network: a site's CRL would have to be imported)."""
    from cryptography import x509

    anchors = trust_anchors() if anchors is None else anchors
    if not chain:
        return False, "no certificate"
    if not anchors:
        return False, "no trust anchors (trust a CA with 'workbench certs trust CA.pem')"
    now = _now()
    for c in chain:
        if not c.not_valid_before_utc <= now <= c.not_valid_after_utc:
            return False, (f"{c.subject.rfc4514_string()} is not valid now (valid "
                           f"{c.not_valid_before_utc:%Y-%m-%d} to "
                           f"{c.not_valid_after_utc:%Y-%m-%d})")
    path = list(chain)
    for child, issuer in zip(path, path[1:], strict=False):
        try:
            bc = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            bc = None
        if bc is None or not bc.ca:
            return False, f"{issuer.subject.rfc4514_string()} is not a CA certificate"
        try:
            child.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, Exception) as exc:  # InvalidSignature included
            return False, (f"{child.subject.rfc4514_string()} is not signed by "
                           f"{issuer.subject.rfc4514_string()} ({type(exc).__name__})")
    last = path[-1]
    for anchor in anchors:
        if last == anchor:
            return True, f"issued by trusted {anchor.subject.rfc4514_string()}"
        try:
            last.verify_directly_issued_by(anchor)
        except Exception:  # noqa: BLE001 - not this anchor; try the next
            continue
        return True, f"issued by trusted {anchor.subject.rfc4514_string()}"
    return False, (f"{last.issuer.rfc4514_string()} is not a trusted CA (trust it with "
                   "'workbench certs trust')")
