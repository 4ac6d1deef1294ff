"""DICOM digital signatures (PS3.15) against a real peer, DCMTK's dcmsign, both ways.

Real files only: pydicom's bundled CT and MR (native pixels) and, with ../shared/data, a
chest CR (JPEG 2000 lossless) and a mammogram (RLE lossless): encapsulated pixel data.
Every file is signed by us and verified by ``dcmsign --verify``, signed by ``dcmsign
--sign`` and verified by us, re-encoded by ``dcmconv`` (implicit VR, big endian) and
verified by both, and tampered with (one pixel byte, one PatientName byte), which both
must reject.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from conftest import SHARED_DATA, pydicom_test_file
from cryptography.hazmat.primitives.serialization import Encoding

from workbench.provenance.standards.certificates import SignerIdentity, create_ca, issue_signer
from workbench.provenance.standards.dicom_signature.parser import DicomSignatureError
from workbench.provenance.standards.dicom_signature.sign import sign_dicom
from workbench.provenance.standards.dicom_signature.verify import verify_dicom_signatures

SAMPLES = {
    "ct": ("pydicom", "CT_small.dcm"),
    "mr": ("pydicom", "MR_small.dcm"),
    "chest-cr": ("shared", "pydicom-data/RG1_J2KR.dcm"),  # JPEG 2000 lossless
    "mammogram": ("shared", "mammography/sfm-benign-0/1-130.dcm"),  # RLE lossless
}
NATIVE = ["ct", "mr"]  # dcmconv cannot re-encode compressed pixel data without decoding
OK_LINE = re.compile(r"Signature Verification\s*:\s*OK\s*$", re.MULTILINE)
SUMMARY = re.compile(r"(\d+) signatures verified in dataset, (\d+) corrupted")

DCMTK_MISSING = (
    "!!! DCMTK IS NOT INSTALLED (no 'dcmsign'/'dcmconv' on PATH): the DICOM signature "
    "INTEROPERABILITY tests against DCMTK are SKIPPED. Install it (apt-get install dcmtk) "
    "to run them. !!!")


@pytest.fixture(scope="module")
def dcmtk() -> None:
    if shutil.which("dcmsign") is None or shutil.which("dcmconv") is None:
        pytest.skip(DCMTK_MISSING)


@dataclass
class Pki:
    identity: SignerIdentity
    ca: object
    key_pem: Path
    cert_pem: Path
    ca_pem: Path


def _pki(folder: Path, name: str) -> Pki:
    # Not create_local_pki: it stores into WORKBENCH_HOME, which is per test; these keys
    # are shared by the module (RSA key generation is the slow part).
    ca_key, ca_cert = create_ca(f"{name} test CA", "Workbench tests")
    key, cert = issue_signer(ca_key, ca_cert, f"{name} signer", "Workbench tests")
    folder.mkdir(parents=True, exist_ok=True)
    identity = SignerIdentity(name, key, cert, (cert, ca_cert))
    (folder / "key.pem").write_bytes(identity.key_pem())
    (folder / "cert.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    (folder / "ca.pem").write_bytes(ca_cert.public_bytes(Encoding.PEM))
    return Pki(identity, ca_cert, folder / "key.pem", folder / "cert.pem", folder / "ca.pem")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return _pki(tmp_path_factory.mktemp("pki"), "hospital")


@pytest.fixture(scope="module")
def rogue(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return _pki(tmp_path_factory.mktemp("rogue"), "rogue")


def _source(request: pytest.FixtureRequest, name: str) -> Path:
    kind, rel = SAMPLES[name]
    if kind == "pydicom":
        return pydicom_test_file(rel)
    return request.getfixturevalue("shared_data") / "dicom" / rel


@pytest.fixture(params=list(SAMPLES))
def sample(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    copy = tmp_path / f"{request.param}.dcm"
    shutil.copyfile(_source(request, request.param), copy)
    return copy


@pytest.fixture(params=NATIVE)
def native(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    copy = tmp_path / f"{request.param}.dcm"
    shutil.copyfile(_source(request, request.param), copy)
    return copy


def _run(*args: str | Path) -> tuple[int, str]:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=300, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def _dcmsign_verify(path: Path, ca_pem: Path, *extra: str) -> tuple[int, str, tuple[int, int]]:
    """dcmsign's exit code, output and (signatures verified, corrupted)."""
    rc, out = _run("dcmsign", "--verify", "-v", "+cf", ca_pem, *extra, path)
    m = SUMMARY.search(out)
    return rc, out, (int(m[1]), int(m[2])) if m else (0, 0)


def _dcmsign_sign(pki: Pki, src: Path, dst: Path, *extra: str) -> None:
    rc, out = _run("dcmsign", "--sign", pki.key_pem, pki.cert_pem, "-pw", *extra, src, dst)
    assert rc == 0, out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _poke(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _flip_one_pixel(path: Path) -> None:
    """Change one byte of Pixel Data in place: one pixel of native data, one byte of the
    compressed stream of encapsulated data. Nothing else in the file changes."""
    raw = pydicom.dcmread(path).get_item(0x7FE00010)
    _poke(path, raw.value_tell + len(raw.value) // 2 + 1)


def _change_patient_name(path: Path) -> None:
    """One letter of PatientName, in place (same length: no re-encoding)."""
    raw = pydicom.dcmread(path).get_item(0x00100010)
    assert raw.value, "the sample needs a PatientName"
    _poke(path, raw.value_tell)


# --- 1. ours -> dcmsign ------------------------------------------------------------------


@pytest.mark.usefixtures("dcmtk")
@pytest.mark.parametrize("profile", ["creator", "base"])
def test_our_signature_verifies_with_dcmsign(sample: Path, pki: Pki, tmp_path: Path,
                                             profile: str) -> None:
    before = _sha256(sample)
    out = tmp_path / "signed.dcm"
    info = sign_dicom(sample, out, pki.identity, profile=profile)
    assert _sha256(sample) == before == info["source_sha256"]
    assert info["elements_signed"] > 10 and info["mac_algorithm"] == "SHA256"

    # +rc: dcmsign also checks the Creator RSA profile's attribute rules.
    extra = ("+rc",) if profile == "creator" else ()
    rc, output, (n, bad) = _dcmsign_verify(out, pki.ca_pem, *extra)
    assert rc == 0, output
    assert OK_LINE.search(output), output
    assert (n, bad) == (1, 0), output
    assert info["uid"] in output

    [ours] = verify_dicom_signatures(out, anchors=[pki.ca])
    assert ours["valid"] and ours["trusted"], ours["reason"]
    # "creator": every attribute the Creator RSA profile wants is signed (base signs
    # every eligible attribute too, so it qualifies).
    assert ours["uid"] == info["uid"] and ours["profile"] == "creator"
    assert ours["purpose"] == ("Source Signature (14)" if profile == "creator" else None)


# --- 2. dcmsign -> ours ------------------------------------------------------------------


@pytest.mark.usefixtures("dcmtk")
def test_dcmsign_signature_verifies_with_ours(sample: Path, pki: Pki, tmp_path: Path) -> None:
    out = tmp_path / "dcmsign.dcm"
    _dcmsign_sign(pki, sample, out, "--profile-creator", "--mac-sha256")
    [result] = verify_dicom_signatures(out, anchors=[pki.ca])
    assert result["valid"] and result["trusted"], result["reason"]
    assert result["mac_algorithm"] == "SHA256"
    assert result["signer"] == pki.identity.certificate.subject.rfc4514_string()
    signed = pydicom.dcmread(out)[0x4FFE0001][0][0x04000020].value
    assert result["elements_signed"] == len(signed)
    assert result["unsigned_elements"] == []


@pytest.mark.usefixtures("dcmtk")
def test_dcmsign_default_mac_ripemd160_and_nested_item_signature(pki: Pki,
                                                                tmp_path: Path) -> None:
    """dcmsign's defaults (RIPEMD-160, no profile) and a signature inside a sequence item
    (dcmsign --sign-item) are verified too."""
    ct = pydicom_test_file("CT_small.dcm")
    plain, nested = tmp_path / "ripemd.dcm", tmp_path / "nested.dcm"
    _dcmsign_sign(pki, ct, plain)
    rc, out = _run("dcmsign", "--sign-item", pki.key_pem, pki.cert_pem,
                   "OtherPatientIDsSequence[1]", "-pw", "--mac-sha256", ct, nested)
    assert rc == 0, out

    [result] = verify_dicom_signatures(plain, anchors=[pki.ca])
    assert result["mac_algorithm"] == "RIPEMD160"
    try:
        hashlib.new("ripemd160")
    except ValueError:
        assert not result["valid"] and "RIPEMD-160" in result["reason"]
    else:
        assert result["valid"] and result["trusted"], result["reason"]

    [item_sig] = verify_dicom_signatures(nested, anchors=[pki.ca])
    assert item_sig["valid"] and item_sig["trusted"], item_sig["reason"]
    assert "OtherPatientIDsSequence[1]" in item_sig["location"]
    assert item_sig["elements_signed"] == 2  # PatientID, TypeOfPatientID of that item


# --- 3. re-encoded by dcmconv --------------------------------------------------------------


@pytest.mark.usefixtures("dcmtk")
@pytest.mark.parametrize("conversion", ["+ti", "+tb"])
def test_reencoded_copies_verify_in_both(native: Path, pki: Pki, tmp_path: Path,
                                         conversion: str) -> None:
    """Implicit VR LE and explicit VR BE copies: the MAC is over a canonical encoding,
    so both kinds of signature (dcmsign's and ours, in one file) survive."""
    theirs, both = tmp_path / "theirs.dcm", tmp_path / "both.dcm"
    _dcmsign_sign(pki, native, theirs, "--profile-creator", "--mac-sha256")
    sign_dicom(theirs, both, pki.identity)
    converted = tmp_path / f"converted{conversion[1:]}.dcm"
    rc, out = _run("dcmconv", conversion, both, converted)
    assert rc == 0, out
    expected_ts = {"+ti": "1.2.840.10008.1.2", "+tb": "1.2.840.10008.1.2.2"}[conversion]
    assert pydicom.dcmread(converted).file_meta.TransferSyntaxUID == expected_ts

    rc, output, counts = _dcmsign_verify(converted, pki.ca_pem)
    assert rc == 0 and counts == (2, 0), output
    assert len(OK_LINE.findall(output)) == 2, output

    results = verify_dicom_signatures(converted, anchors=[pki.ca])
    assert len(results) == 2
    assert all(r["valid"] and r["trusted"] for r in results), [r["reason"] for r in results]


@pytest.mark.usefixtures("dcmtk")
@pytest.mark.parametrize("conversion", ["+ti", "+tb", "+td"])
def test_we_sign_implicit_big_endian_and_deflated_files(pki: Pki, tmp_path: Path,
                                                        conversion: str) -> None:
    """Our new elements are written in the file's own transfer syntax."""
    source = tmp_path / "source.dcm"
    rc, out = _run("dcmconv", conversion, pydicom_test_file("CT_small.dcm"), source)
    assert rc == 0, out
    signed = tmp_path / "signed.dcm"
    info = sign_dicom(source, signed, pki.identity)
    assert info["transfer_syntax"] == pydicom.dcmread(source).file_meta.TransferSyntaxUID
    rc, output, counts = _dcmsign_verify(signed, pki.ca_pem, "+rc")
    assert rc == 0 and counts == (1, 0), output


# --- 4. tampering ------------------------------------------------------------------------


@pytest.mark.usefixtures("dcmtk")
@pytest.mark.parametrize("tamper", [_flip_one_pixel, _change_patient_name],
                         ids=["one-pixel", "patient-name"])
def test_tampering_fails_in_both(sample: Path, pki: Pki, tmp_path: Path, tamper) -> None:
    theirs, both = tmp_path / "theirs.dcm", tmp_path / "both.dcm"
    _dcmsign_sign(pki, sample, theirs, "--profile-creator", "--mac-sha256")
    sign_dicom(theirs, both, pki.identity)
    tamper(both)

    rc, output, counts = _dcmsign_verify(both, pki.ca_pem)
    assert rc != 0, output
    assert counts == (2, 2), output
    assert output.count("signature is invalid (document corrupted)") == 2, output

    results = verify_dicom_signatures(both, anchors=[pki.ca])
    assert len(results) == 2
    for r in results:
        assert not r["valid"] and not r["trusted"]
        assert "MAC mismatch (data changed after signing)" in r["reason"]
        assert r["uid"] in r["reason"]


def test_signature_attributes_are_protected(pki: Pki, rogue: Pki, tmp_path: Path) -> None:
    """The signing time is inside the MAC; a swapped certificate does not match."""
    signed = tmp_path / "signed.dcm"
    sign_dicom(pydicom_test_file("MR_small.dcm"), signed, pki.identity)

    ds = pydicom.dcmread(signed)
    ds[0xFFFAFFFA][0].DigitalSignatureDateTime = "20000101120000.000000+0000"
    ds.save_as(tmp_path / "backdated.dcm")
    [r] = verify_dicom_signatures(tmp_path / "backdated.dcm", anchors=[pki.ca])
    assert not r["valid"] and "MAC mismatch" in r["reason"]

    ds = pydicom.dcmread(signed)
    ds[0xFFFAFFFA][0].CertificateOfSigner = rogue.identity.certificate.public_bytes(
        Encoding.DER)
    ds.save_as(tmp_path / "swapped.dcm")
    [r] = verify_dicom_signatures(tmp_path / "swapped.dcm", anchors=[pki.ca, rogue.ca])
    assert not r["valid"] and "does not match the certificate's key" in r["reason"]


def test_added_attribute_is_reported_as_not_covered(pki: Pki, tmp_path: Path) -> None:
    signed, edited = tmp_path / "signed.dcm", tmp_path / "edited.dcm"
    sign_dicom(pydicom_test_file("CT_small.dcm"), signed, pki.identity)
    ds = pydicom.dcmread(signed)
    ds.PatientComments = "added after signing"
    ds.save_as(edited)  # pydicom re-writes everything: the signed values survive that
    [r] = verify_dicom_signatures(edited, anchors=[pki.ca])
    assert r["valid"] and r["trusted"], r["reason"]
    assert r["unsigned_elements"] == ["(0010,4000) PatientComments"]
    assert "not covered by this signature: (0010,4000) PatientComments" in r["reason"]
    # A pydicom Dataset can be verified too (pydicom re-encodes it first).
    [from_dataset] = verify_dicom_signatures(ds, anchors=[pki.ca])
    assert from_dataset["valid"]


# --- 5. trust, the source, errors --------------------------------------------------------


def test_untrusted_ca_is_valid_but_not_trusted(pki: Pki, rogue: Pki, tmp_path: Path) -> None:
    signed = tmp_path / "rogue.dcm"
    sign_dicom(pydicom_test_file("CT_small.dcm"), signed, rogue.identity)

    [r] = verify_dicom_signatures(signed, anchors=[pki.ca])
    assert r["valid"] and not r["trusted"]
    assert "certificate not trusted" in r["reason"] and "rogue test CA" in r["reason"]
    # anchors=None: the explicit trust store (this test's empty WORKBENCH_HOME).
    [r] = verify_dicom_signatures(signed)
    assert r["valid"] and not r["trusted"] and "no trust anchors" in r["reason"]
    [r] = verify_dicom_signatures(signed, anchors=[rogue.ca])
    assert r["valid"] and r["trusted"]


@pytest.mark.usefixtures("dcmtk")
def test_dcmsign_also_refuses_the_untrusted_ca(pki: Pki, rogue: Pki, tmp_path: Path) -> None:
    signed = tmp_path / "rogue.dcm"
    sign_dicom(pydicom_test_file("CT_small.dcm"), signed, rogue.identity)
    rc, output, _ = _dcmsign_verify(signed, pki.ca_pem)
    assert rc != 0
    assert "signature is OK but certificate verification failed" in output, output


def test_signing_never_modifies_the_source(request: pytest.FixtureRequest, pki: Pki,
                                           tmp_path: Path) -> None:
    names = ["ct", "mr"]
    if SHARED_DATA.is_dir():
        names.append("chest-cr")
    for name in names:
        src = _source(request, name)
        before = _sha256(src)
        info = sign_dicom(src, tmp_path / f"{name}.dcm", pki.identity)
        assert _sha256(src) == before == info["source_sha256"]
        # The copy keeps every source attribute as it was.
        original, signed = pydicom.dcmread(src), pydicom.dcmread(tmp_path / f"{name}.dcm")
        for elem in original:
            assert signed[elem.tag].value == elem.value, elem.tag
        assert set(signed.keys()) - set(original.keys()) == {0x4FFE0001, 0xFFFAFFFA}
        assert verify_dicom_signatures(src) == []
    with pytest.raises(ValueError, match="must not replace the source"):
        sign_dicom(tmp_path / "ct.dcm", tmp_path / "ct.dcm", pki.identity)
    # Another existing destination is replaced.
    again = sign_dicom(tmp_path / "ct.dcm", tmp_path / "mr.dcm", pki.identity)
    assert len(verify_dicom_signatures(again["path"], anchors=[pki.ca])) == 2


def test_signature_structure(pki: Pki, tmp_path: Path) -> None:
    signed = tmp_path / "signed.dcm"
    info = sign_dicom(pydicom_test_file("CT_small.dcm"), signed, pki.identity)
    info2 = sign_dicom(signed, tmp_path / "twice.dcm", pki.identity, profile="base",
                       mac_algorithm="SHA512")
    ds = pydicom.dcmread(tmp_path / "twice.dcm")
    macs, sigs = ds[0x4FFE0001].value, ds[0xFFFAFFFA].value
    assert [m.MACIDNumber for m in macs] == [s.MACIDNumber for s in sigs] == [0, 1]
    assert macs[0].MACCalculationTransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert [m.MACAlgorithm for m in macs] == ["SHA256", "SHA512"]
    tags = [int(t) for t in macs[0].DataElementsSigned]
    assert tags == sorted(tags) and len(tags) == info["elements_signed"]
    assert {0x00080016, 0x00080018, 0x0020000D, 0x0020000E, 0x7FE00010} <= set(tags)
    assert not {0xFFFCFFFC, 0xFFFAFFFA, 0x4FFE0001} & set(tags)
    assert all(t >> 16 >= 8 and t & 0xFFFF for t in tags)
    first = sigs[0]
    assert first.CertificateType == "X509_1993_SIG"
    assert first.DigitalSignatureUID == info["uid"] and len(first.Signature) == 256
    assert first.DigitalSignaturePurposeCodeSequence[0].CodeValue == "14"
    assert "DigitalSignaturePurposeCodeSequence" not in sigs[1]
    results = verify_dicom_signatures(tmp_path / "twice.dcm", anchors=[pki.ca])
    assert [r["uid"] for r in results] == [info["uid"], info2["uid"]]
    assert all(r["valid"] for r in results)


def test_encapsulated_pixel_data_uses_its_own_transfer_syntax(shared_data: Path, pki: Pki,
                                                              tmp_path: Path) -> None:
    """As dcmsign does: the compressed transfer syntax as MAC Calculation Transfer Syntax
    (the bytes hashed are those of explicit VR LE; see docs/dicom-signatures.md)."""
    src = shared_data / "dicom" / "pydicom-data" / "RG1_J2KR.dcm"
    info = sign_dicom(src, tmp_path / "cr.dcm", pki.identity)
    assert info["mac_transfer_syntax"] == info["transfer_syntax"] == "1.2.840.10008.1.2.4.90"


def test_refusals(pki: Pki, tmp_path: Path) -> None:
    ct = pydicom_test_file("CT_small.dcm")
    with pytest.raises(ValueError, match="profile"):
        sign_dicom(ct, tmp_path / "x.dcm", pki.identity, profile="auth")
    with pytest.raises(ValueError, match="MAC algorithm"):
        sign_dicom(ct, tmp_path / "x.dcm", pki.identity, mac_algorithm="MD5")
    ds = pydicom.dcmread(ct)
    del ds.StudyInstanceUID
    ds.save_as(tmp_path / "no-study.dcm")
    with pytest.raises(DicomSignatureError, match="StudyInstanceUID"):
        sign_dicom(tmp_path / "no-study.dcm", tmp_path / "x.dcm", pki.identity)
    sign_dicom(tmp_path / "no-study.dcm", tmp_path / "x.dcm", pki.identity, profile="base")
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
    (tmp_path / "junk.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
    with pytest.raises(DicomSignatureError):
        sign_dicom(tmp_path / "junk.dcm", tmp_path / "y.dcm", pki.identity)


@pytest.mark.usefixtures("dcmtk")
def test_dcmsign_ecdsa_signature_verifies_with_ours(pki: Pki, tmp_path: Path) -> None:
    """dcmsign also signs with EC keys (DER signatures, padded to even length)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_key = pki.identity.key  # any issuer will do: only `valid` is checked here
    key = ec.generate_private_key(ec.SECP384R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec signer")]))
            .issuer_name(pki.identity.certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(ca_key, hashes.SHA256()))
    (tmp_path / "ec.pem").write_bytes(key.private_bytes(
        ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()))
    (tmp_path / "ec-cert.pem").write_bytes(cert.public_bytes(ser.Encoding.PEM))
    for mac in ("--mac-sha256", "--mac-sha384", "--mac-sha512"):
        out = tmp_path / f"ec{mac}.dcm"
        rc, output = _run("dcmsign", "--sign", tmp_path / "ec.pem", tmp_path / "ec-cert.pem",
                          "-pw", mac, pydicom_test_file("CT_small.dcm"), out)
        assert rc == 0, output
        [r] = verify_dicom_signatures(out, anchors=[pki.ca])
        assert r["valid"], r["reason"]
        assert r["profile"] is None  # the RSA profiles do not apply
