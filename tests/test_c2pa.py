"""C2PA Content Credentials: real dermoscopy photos, real X.509 keys, the real c2pa library.

Offline throughout: no time-stamp authority, no OCSP, trust only in the local CA that
create_local_pki stores (each test has its own WORKBENCH_HOME, so its own CA).
"""

from __future__ import annotations

import hashlib
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("c2pa", reason="c2pa-python is not installed (the optional C2PA "
                                   "support: pip install 'workbench[c2pa]')")

import cv2  # noqa: E402
from PIL import Image  # noqa: E402

from workbench import __version__  # noqa: E402
from workbench.provenance.standards.c2pa_manifest import (  # noqa: E402
    C2paError,
    c2pa_available,
    sidecar_for,
    verify_c2pa,
)
from workbench.provenance.standards.c2pa_signing import sign_c2pa  # noqa: E402
from workbench.provenance.standards.certificates import create_ca, create_local_pki  # noqa: E402

ATTACK = {"action": "c2pa.edited", "softwareAgent": "workbench",
          "parameters": {"description": "pgd attack eps=0.01"}}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def identity():
    return create_local_pki("derm-camera-1", "correct horse", organisation="Test Clinic")


@pytest.fixture
def photo(shared_data: Path, tmp_path: Path) -> Path:
    src = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000000.jpg"
    if not src.is_file():
        pytest.skip(f"{src} is not in the shared data")
    dst = tmp_path / "ISIC_0000000.jpg"
    shutil.copyfile(src, dst)
    return dst


@pytest.fixture
def attacked_png(photo: Path, tmp_path: Path) -> Path:
    """An exported 'attacked' image: the photo with a small perturbation, as PNG."""
    img = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    noise = np.random.default_rng(0).integers(-3, 4, img.shape)
    out = tmp_path / "ISIC_0000000_pgd.png"
    assert cv2.imwrite(str(out), np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8))
    return out


def flip_jpeg_scan_byte(path: Path) -> None:
    """Flip one bit well inside the entropy-coded scan data (after SOS), not the manifest."""
    data = bytearray(path.read_bytes())
    sos = data.find(b"\xff\xda")
    assert sos > 0 and data.find(b"\xff\xeb") < sos  # the manifest (APP11) is before SOS
    i = sos + (len(data) - sos) // 2
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def flip_png_idat_byte(path: Path) -> None:
    """Flip one bit in the middle of the first IDAT chunk's payload."""
    data = bytearray(path.read_bytes())
    pos = 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            data[pos + 8 + length // 2] ^= 0x01
            path.write_bytes(bytes(data))
            return
        pos += 12 + length
    raise AssertionError(f"{path} has no IDAT chunk")


def test_available():
    assert c2pa_available()


def test_signed_jpeg_is_trusted_with_our_ca_and_only_valid_without_it(identity, photo,
                                                                      tmp_path):
    before = sha256(photo)
    out = tmp_path / "signed.jpg"
    info = sign_c2pa(photo, out, identity, title="ISIC_0000000 capture")
    assert sha256(photo) == before  # the original is never modified
    assert info["algorithm"] == "PS256" and info["output"] == str(out)
    assert "CN=derm-camera-1" in info["signer"] and info["sidecar"] is None
    assert info["manifest_label"].startswith("urn:c2pa:")

    report = verify_c2pa(out)  # default anchors: the CA create_local_pki trusted
    assert report["state"] == "Trusted", report
    assert report["failure_codes"] == []
    assert report["manifest_label"] == info["manifest_label"]
    assert report["signer"] == "derm-camera-1, Test Clinic"
    assert report["claim_generator"] == f"workbench/{__version__}"
    assert report["title"] == "ISIC_0000000 capture" and report["source"] == "embedded"
    assert report["actions"] == [{
        "action": "c2pa.created",
        "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"}]
    # The manifest rides in its own segment: the pixels are exactly the original's.
    assert np.array_equal(cv2.imread(str(out)), cv2.imread(str(photo)))

    # Nobody trusted: intact, but the signer is not trusted.
    untrusted = verify_c2pa(out, anchors_pem=b"")
    assert untrusted["state"] == "Valid"
    assert untrusted["failure_codes"] == ["signingCredential.untrusted"]
    assert "not trusted" in untrusted["reason"]

    # Another CA trusted, not ours: the same.
    from cryptography.hazmat.primitives.serialization import Encoding

    _, other_ca = create_ca("someone else's CA", "Elsewhere")
    other = verify_c2pa(out, anchors_pem=other_ca.public_bytes(Encoding.PEM))
    assert other["state"] == "Valid"
    assert "signingCredential.untrusted" in other["failure_codes"]


def test_exported_attacked_png_records_the_attack_and_its_parent(identity, photo,
                                                                 attacked_png, tmp_path):
    out = tmp_path / "exported.png"
    info = sign_c2pa(attacked_png, out, identity, actions=[ATTACK], parent=photo)
    assert info["format"] == "image/png" and info["parent_sha256"] == sha256(photo)

    report = verify_c2pa(out)
    assert report["state"] == "Trusted", report
    names = [a["action"] for a in report["actions"]]
    assert names == ["c2pa.opened", "c2pa.edited"]  # C2PA 2.x: opened first, then the edit
    edit = report["actions"][1]
    assert edit["parameters"]["description"] == "pgd attack eps=0.01"
    assert edit["softwareAgent"] == "workbench"
    assert report["ingredients"] == [{
        "title": photo.name, "relationship": "parentOf",
        "description": f"sha256:{sha256(photo)}", "active_manifest": None}]


def test_attacked_png_without_parent_starts_with_created(identity, attacked_png, tmp_path):
    out = tmp_path / "exported.png"
    sign_c2pa(attacked_png, out, identity, actions=[ATTACK])
    report = verify_c2pa(out)
    assert report["state"] == "Trusted"
    assert [a["action"] for a in report["actions"]] == ["c2pa.created", "c2pa.edited"]


def test_export_of_a_signed_capture_carries_the_capture_manifest(identity, photo,
                                                                 attacked_png, tmp_path):
    capture = tmp_path / "capture.jpg"
    first = sign_c2pa(photo, capture, identity)
    out = tmp_path / "exported.png"
    sign_c2pa(attacked_png, out, identity, actions=[ATTACK], parent=capture)
    report = verify_c2pa(out)
    assert report["state"] == "Trusted"
    assert report["ingredients"][0]["active_manifest"] == first["manifest_label"]


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_one_flipped_image_byte_is_a_data_hash_mismatch(identity, photo, attacked_png,
                                                        tmp_path, kind):
    src, out = (photo, tmp_path / "s.jpg") if kind == "jpeg" else (attacked_png,
                                                                   tmp_path / "s.png")
    sign_c2pa(src, out, identity)
    assert verify_c2pa(out)["state"] == "Trusted"
    (flip_jpeg_scan_byte if kind == "jpeg" else flip_png_idat_byte)(out)
    report = verify_c2pa(out)
    assert report["state"] == "Invalid"
    assert "assertion.dataHash.mismatch" in report["failure_codes"]
    assert report["reason"].startswith("tampered")


def test_forged_signer_name_in_the_manifest_is_invalid(identity, photo, tmp_path):
    """Rename the signer inside the embedded certificate (same length): the claim signature
    no longer verifies."""
    out = tmp_path / "s.jpg"
    sign_c2pa(photo, out, identity)
    data = out.read_bytes()
    assert data.count(b"derm-camera-1") >= 1
    out.write_bytes(data.replace(b"derm-camera-1", b"derm-camera-9"))
    report = verify_c2pa(out)
    assert report["state"] == "Invalid", report
    assert report["failure_codes"]


@pytest.mark.parametrize("encoder", ["pillow-jpeg", "cv2-png"])
def test_a_re_encoded_copy_has_no_manifest(identity, photo, tmp_path, encoder):
    out = tmp_path / "s.jpg"
    sign_c2pa(photo, out, identity)
    if encoder == "pillow-jpeg":
        copy = tmp_path / "resaved.jpg"
        with Image.open(out) as im:
            im.save(copy, quality=95)
    else:
        copy = tmp_path / "resaved.png"
        assert cv2.imwrite(str(copy), cv2.imread(str(out)))
    report = verify_c2pa(copy)
    assert report["state"] == "missing"  # never "Valid"
    assert report["failure_codes"] == [] and report["manifest_label"] is None
    assert "no C2PA manifest" in report["reason"]


def test_unsigned_original_is_missing(photo):
    assert verify_c2pa(photo)["state"] == "missing"


def test_sidecar_round_trip_leaves_the_image_bytes_unchanged(identity, photo, tmp_path):
    before = sha256(photo)
    out = tmp_path / "copy.jpg"
    info = sign_c2pa(photo, out, identity, sidecar=True, actions=[ATTACK])
    side = sidecar_for(out)
    assert info["sidecar"] == str(side) and side.is_file()
    assert sha256(photo) == before and sha256(out) == before  # a byte-identical copy
    assert not sidecar_for(photo).exists()

    report = verify_c2pa(out)
    assert report["state"] == "Trusted" and report["source"] == "sidecar"
    assert report["sidecar"] == str(side)
    assert [a["action"] for a in report["actions"]] == ["c2pa.created", "c2pa.edited"]

    flip_jpeg_scan_byte(out)
    tampered = verify_c2pa(out)
    assert tampered["state"] == "Invalid"
    assert "assertion.dataHash.mismatch" in tampered["failure_codes"]

    side.unlink()
    assert verify_c2pa(out)["state"] == "missing"


def test_sidecar_beside_the_original_needs_no_copy(identity, photo):
    before = sha256(photo)
    info = sign_c2pa(photo, photo, identity, sidecar=True)
    assert sha256(photo) == before
    assert info["output"] == str(photo) and Path(info["sidecar"]) == sidecar_for(photo)
    assert verify_c2pa(photo)["state"] == "Trusted"


def test_embedded_manifest_wins_over_a_leftover_sidecar(identity, photo, tmp_path):
    out = tmp_path / "s.jpg"
    sidecar_info = sign_c2pa(photo, out, identity, sidecar=True)
    embedded = sign_c2pa(photo, out, identity)  # now embedded; the old sidecar stays
    assert sidecar_for(out).exists()
    report = verify_c2pa(out)
    assert report["source"] == "embedded" and report["state"] == "Trusted"
    assert report["manifest_label"] == embedded["manifest_label"]
    assert report["manifest_label"] != sidecar_info["manifest_label"]
    # And a sidecar is refused for an image that already carries a manifest.
    with pytest.raises(C2paError, match="already carries an embedded C2PA manifest"):
        sign_c2pa(out, tmp_path / "again.jpg", identity, sidecar=True)


def test_c2patool_style_sidecar_is_found(identity, photo, tmp_path):
    out = tmp_path / "copy.jpg"
    sign_c2pa(photo, out, identity, sidecar=True)
    sidecar_for(out).rename(tmp_path / "copy.c2pa")  # c2patool's name: extension replaced
    report = verify_c2pa(out)
    assert report["state"] == "Trusted" and report["sidecar"] == str(tmp_path / "copy.c2pa")


def test_damaged_sidecar_is_invalid_not_missing(identity, photo, tmp_path):
    out = tmp_path / "copy.jpg"
    sign_c2pa(photo, out, identity, sidecar=True)
    side = sidecar_for(out)
    side.write_bytes(side.read_bytes()[:200])
    report = verify_c2pa(out)
    assert report["state"] == "Invalid" and report["failure_codes"] == ["general.error"]
    assert report["source"] == "sidecar" and "damaged" in report["reason"]


def test_bad_anchors_are_an_error_about_the_anchors(identity, photo, tmp_path):
    out = tmp_path / "s.jpg"
    sign_c2pa(photo, out, identity)
    with pytest.raises(C2paError, match="trust anchors are not PEM"):
        verify_c2pa(out, anchors_pem=b"-----BEGIN CERTIFICATE-----\ngarbage\n")


def test_the_output_must_not_be_the_input(identity, photo):
    before = sha256(photo)
    with pytest.raises(C2paError, match="must not be the input") as exc:
        sign_c2pa(photo, photo, identity)
    assert str(photo) in str(exc.value)
    assert sha256(photo) == before and not sidecar_for(photo).exists()


def test_non_image_input_is_a_clear_error_naming_the_file(identity, tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("not an image\n" * 20)
    with pytest.raises(C2paError, match="not a JPEG or PNG") as exc:
        sign_c2pa(fake, tmp_path / "out.jpg", identity)
    assert str(fake) in str(exc.value)
    assert not (tmp_path / "out.jpg").exists()
    with pytest.raises(C2paError, match="notes.jpg"):
        verify_c2pa(fake)
    with pytest.raises(C2paError, match="no such file"):
        verify_c2pa(tmp_path / "absent.jpg")


def test_truncated_jpeg_is_refused(identity, photo, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photo.read_bytes()[:5000])
    with pytest.raises(C2paError, match="not a complete JPEG") as exc:
        sign_c2pa(broken, tmp_path / "out.jpg", identity)
    assert str(broken) in str(exc.value)


def test_output_name_must_match_the_format(identity, photo, tmp_path):
    with pytest.raises(C2paError, match=r"is a JPEG image.*\.jpg"):
        sign_c2pa(photo, tmp_path / "out.png", identity)


def test_corrupt_signed_jpeg_is_a_clear_error(identity, photo, tmp_path):
    out = tmp_path / "s.jpg"
    sign_c2pa(photo, out, identity)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(out.read_bytes()[:3000])  # ends inside the manifest segment
    with pytest.raises(C2paError, match="cut.jpg"):
        verify_c2pa(cut)


def test_signatures_expire_with_the_certificate_without_a_time_stamp(photo, tmp_path):
    """Offline there is no time stamp, so c2pa judges the certificate at verification time:
    a file signed while the certificate was valid is Invalid once it has expired."""
    import datetime as dt
    import time

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID, ObjectIdentifier

    from workbench.provenance.standards.certificates import (
        DOCUMENT_SIGNING,
        EMAIL_PROTECTION,
        SignerIdentity,
    )

    ca_key, ca = create_ca("short-lived test CA")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    expires = now + dt.timedelta(seconds=3)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "short-lived")]))
        .issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(expires)
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
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256()))
    out = tmp_path / "s.jpg"
    sign_c2pa(photo, out, SignerIdentity("short-lived", key, cert, (cert, ca)))
    anchors = ca.public_bytes(Encoding.PEM)
    if dt.datetime.now(dt.UTC) < expires:  # a loaded machine may already be past it
        assert verify_c2pa(out, anchors_pem=anchors)["state"] == "Trusted"
    time.sleep(max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds()) + 1.5)
    report = verify_c2pa(out, anchors_pem=anchors)
    assert report["state"] == "Invalid"
    assert "signingCredential.expired" in report["failure_codes"]
    assert "expired" in report["reason"]
