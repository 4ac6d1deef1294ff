"""X.509 certificates for the standard signatures: local CA, signers, import, trust."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs12,
)
from cryptography.x509.oid import ExtendedKeyUsageOID

from workbench.cli import main
from workbench.provenance.standards import certificates as c


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch):
    monkeypatch.setenv("WORKBENCH_KEY_PASSPHRASE", "site passphrase")


def test_local_pki_signer_has_what_dicom_and_c2pa_validators_check():
    ident = c.create_local_pki("CR room 3", "site passphrase", organisation="Test Hospital")
    cert, ca = ident.chain
    assert cert.issuer == ca.subject and ca.issuer == ca.subject
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    eku = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    assert x509.ObjectIdentifier(c.DOCUMENT_SIGNING) in eku
    assert ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku
    assert ident.key.key_size == 2048  # RSA: the DICOM RSA profiles need it
    cert.verify_directly_issued_by(ca)
    assert c.verify_chain(list(ident.chain)) == (
        True, f"issued by trusted {ca.subject.rfc4514_string()}")
    # stored encrypted; the wrong passphrase is refused with the file named
    loaded = c.load_identity("CR room 3", "site passphrase")
    assert loaded.certificate == cert
    with pytest.raises(c.CertificateError, match=r"key\.pem: wrong passphrase"):
        c.load_identity("CR room 3", "guess")
    mode = (c.identity_folder("CR room 3") / "key.pem").stat().st_mode & 0o777
    assert mode == 0o600


def test_chains_to_other_cas_or_with_a_forged_link_are_not_trusted():
    ident = c.create_local_pki("a", "pw")
    other_key, other_ca = c.create_ca("someone else")
    ok, why = c.verify_chain(list(ident.chain), anchors=[other_ca])
    assert not ok and "is not a trusted CA" in why
    # a certificate claiming our CA as issuer but signed by another key
    forged_key, forged = c.issue_signer(other_key, ident.chain[1], "impostor")
    ok, why = c.verify_chain([forged, ident.chain[1]])
    assert not ok and "is not signed by" in why
    # expired
    now = dt.datetime.now(dt.UTC)
    expired = (x509.CertificateBuilder().subject_name(ident.certificate.subject)
               .issuer_name(ident.chain[1].subject).public_key(ident.key.public_key())
               .serial_number(7).not_valid_before(now - dt.timedelta(days=10))
               .not_valid_after(now - dt.timedelta(days=1))
               .sign(c.load_identity("local-ca", "pw").key, hashes.SHA256()))
    ok, why = c.verify_chain([expired, ident.chain[1]])
    assert not ok and "is not valid now" in why
    assert c.verify_chain([])[0] is False


def test_certs_command_new_list_export_trust_and_import(tmp_path, capsys):
    assert main(["certs", "new", "CR room 3", "--org", "Test Hospital"]) == 0
    assert main(["certs", "new", "Derm cam"]) == 0  # same local CA, made once
    capsys.readouterr()
    assert main(["certs", "list"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("trusted chain") == 3 and "(trusted CA)" in listing
    assert main(["certs", "export", "Derm cam"]) == 0
    pem = capsys.readouterr().out
    chain = x509.load_pem_x509_certificates(pem.encode())
    assert chain[0].subject.rfc4514_string() == "CN=Derm cam" and len(chain) == 2

    # a PKCS#12 from elsewhere, and its CA trusted explicitly
    ca_key, ca = c.create_ca("Radiology PKI")
    key, cert = c.issue_signer(ca_key, ca, "MR scanner")
    p12 = tmp_path / "mr.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"mr", key, cert, [ca], BestAvailableEncryption(b"p12 secret")))
    assert main(["certs", "import", "mr", "--pkcs12", str(p12), "--password", "p12 secret"]) == 0
    assert c.verify_chain(list(c.load_identity("mr", "site passphrase").chain))[0] is False
    ca_pem = tmp_path / "ca.pem"
    ca_pem.write_bytes(ca.public_bytes(Encoding.PEM))
    assert main(["certs", "trust", str(ca_pem), "--label", "radiology"]) == 0
    assert c.verify_chain(list(c.load_identity("mr", "site passphrase").chain))[0] is True
    # PEM import too
    key_pem = tmp_path / "k.pem"
    key_pem.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    chain_pem = tmp_path / "chain.pem"
    chain_pem.write_bytes(cert.public_bytes(Encoding.PEM) + ca.public_bytes(Encoding.PEM))
    assert main(["certs", "import", "mr2", "--cert", str(chain_pem), "--key",
                 str(key_pem)]) == 0
    capsys.readouterr()


def test_certs_bad_input_is_one_line(tmp_path, capsys):
    assert main(["certs", "export", "nobody"]) == 2
    assert "no certificate named 'nobody'" in capsys.readouterr().err
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    assert main(["certs", "trust", str(junk), "--label", "x"]) == 2
    assert f"{junk}: not an X.509 certificate" in capsys.readouterr().err
    assert main(["certs", "import", "x", "--pkcs12", str(junk)]) == 2
    assert "cannot read the PKCS#12 file" in capsys.readouterr().err
