"""Sign and verify real images: every check is named, and tampering is caught at the
right check while lossless re-encodings raise no alarm."""

from __future__ import annotations

import base64
import io
import random
import shutil
from pathlib import Path

import pydicom
import pytest
from conftest import pydicom_test_file
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

from workbench.provenance.records import keys
from workbench.provenance.records.canonical_json import canonical_json
from workbench.provenance.records.record import read_record, sidecar_path
from workbench.provenance.records.signing import (
    REFUSED,
    SIGNED,
    SKIPPED,
    sign_image,
    sign_paths,
)
from workbench.provenance.records.verify import verify_image

PASSPHRASE = "test passphrase"


@pytest.fixture
def signer():
    info = keys.generate_key(PASSPHRASE, label="test site")
    return keys.load_private_key(info.fingerprint, PASSPHRASE)


@pytest.fixture
def signed_ct(tmp_path, signer):
    path = tmp_path / "CT_small.dcm"
    shutil.copy(pydicom_test_file("CT_small.dcm"), path)
    sign_image(path, signer, ledger=None)
    return path


def statuses(result):
    return {c.name: c.status for c in result.checks}


def test_signed_image_verifies_intact(signed_ct):
    r = verify_image(signed_ct, ledger=False)
    assert r.verdict == "intact" and r.ok
    assert statuses(r) == {"record": "pass", "signature": "pass", "signer": "pass",
                           "pixels": "pass", "metadata": "pass", "header": "pass", "file": "pass",
                           "ledger": "skip"}
    assert "sidecar CT_small.dcm.wbsig.json" in r.record_source
    assert r.to_json()["checks"]["pixels"]["status"] == "pass"


def test_original_is_not_modified_by_signing(tmp_path, signer):
    src = pydicom_test_file("MR_small.dcm")
    path = tmp_path / "MR_small.dcm"
    shutil.copy(src, path)
    before = path.read_bytes()
    sign_image(path, signer)
    assert path.read_bytes() == before
    assert sidecar_path(path).is_file()


def _reencode(src, dst, syntax):
    ds = pydicom.dcmread(src)
    if syntax in (RLELossless, JPEG2000Lossless):
        ds.compress(syntax, generate_instance_uid=False)
        ds.save_as(dst)
    else:
        ds.file_meta.TransferSyntaxUID = syntax
        ds.save_as(dst, enforce_file_format=True)


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
                                    RLELossless, JPEG2000Lossless], ids=lambda s: s.name)
def test_lossless_reencode_is_reported_as_reencoded_not_tampered(signed_ct, tmp_path, syntax):
    out = tmp_path / "reencoded" / "CT_small.dcm"
    out.parent.mkdir()
    _reencode(signed_ct, out, syntax)
    shutil.copy(sidecar_path(signed_ct), sidecar_path(out))
    r = verify_image(out, ledger=False)
    assert r.verdict == "re-encoded" and r.ok
    assert r.summary == "re-encoded, pixels and header intact"
    assert statuses(r)["pixels"] == "pass" and statuses(r)["metadata"] == "pass"
    assert statuses(r)["header"] == "pass"
    assert statuses(r)["file"] == "warn"


def _rewrite_file_meta(src, dst, *, implementation: str = "1.2.826.0.1.3680043.9999.1",
                       source_ae: str = "PACS") -> bytes:
    """What a PACS does when it stores an instance: a new preamble and file meta group
    (its own implementation UID, the sender's AE title), the data set bytes as received."""
    from pydicom.filewriter import write_file_meta_info

    from workbench.provenance.records.fingerprint import dataset_offset

    raw = Path(src).read_bytes()
    with open(src, "rb") as fh:
        offset = dataset_offset(fh)
    meta = pydicom.dcmread(src, stop_before_pixels=True).file_meta
    meta.ImplementationClassUID = implementation
    meta.SourceApplicationEntityTitle = source_ae
    buf = io.BytesIO()
    buf.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buf, meta, enforce_standard=True)
    Path(dst).write_bytes(buf.getvalue() + raw[offset:])
    return raw[offset:]


def test_a_pacs_copy_with_its_own_file_meta_is_intact(signed_ct, tmp_path):
    """A PACS writes its own file meta header for every instance it stores; the data set
    bytes are the modality's. That copy is the captured instance, not a re-encoding."""
    out = tmp_path / "pacs" / "CT_small.dcm"
    out.parent.mkdir()
    dataset = _rewrite_file_meta(signed_ct, out)
    assert out.read_bytes() != Path(signed_ct).read_bytes()
    assert out.read_bytes().endswith(dataset)
    shutil.copy(sidecar_path(signed_ct), sidecar_path(out))
    r = verify_image(out, ledger=False)
    assert r.verdict == "intact", r.summary
    assert statuses(r)["file"] == "pass"
    assert "data set bytes identical" in r.check("file").message
    # and one changed byte of the data set (a private-free, non-identifying one: the
    # Series Number) behind the same new file meta is still caught
    ds = pydicom.dcmread(signed_ct)
    ds.SeriesNumber = int(ds.get("SeriesNumber", 1) or 1) + 1
    changed = tmp_path / "changed.dcm"
    ds.save_as(changed)
    out2 = tmp_path / "pacs" / "CT_changed.dcm"
    _rewrite_file_meta(changed, out2)
    shutil.copy(sidecar_path(signed_ct), sidecar_path(out2))
    r2 = verify_image(out2, ledger=False)
    assert r2.verdict == "tampered" and statuses(r2)["header"] == "fail", r2.summary


@pytest.mark.parametrize(("edit", "named"), [
    (lambda ds: setattr(ds, "PatientName", "Someone^Else"), "changed: PatientName"),
    (lambda ds: setattr(ds, "StudyDate", "19990101"), "changed: StudyDate"),
    (lambda ds: setattr(ds, "InstitutionName", "Elsewhere"), "changed: InstitutionName"),
    (lambda ds: setattr(ds, "WindowCenter", 40), "added: WindowCenter"),
    (lambda ds: delattr(ds, "StudyDescription"), "removed: StudyDescription"),
    (lambda ds: ds.__setitem__(0x00191013, ds[0x00191013].__class__(
        0x00191013, ds[0x00191013].VR, 7)), "changed: (0019,1013)"),
])
def test_any_header_edit_is_tampering_and_named(signed_ct, edit, named):
    """Not only the 24 identifying attributes: every element of the header (a window,
    the patient's name, a private tag) is covered, and the one that changed is named."""
    ds = pydicom.dcmread(signed_ct)
    edit(ds)
    ds.save_as(signed_ct)
    r = verify_image(signed_ct, ledger=False)
    assert r.verdict == "tampered" and not r.ok
    assert statuses(r)["header"] == "fail" and statuses(r)["pixels"] == "pass"
    assert named in r.check("header").message
    assert named in r.summary


def test_dcmtk_reencodings_keep_the_header(signed_ct, tmp_path):
    """dcmconv to implicit VR and big endian: a lossless re-encoding, private tags included
    (CT_small is a GE CT with dozens of them). Group lengths added in the same transfer
    syntax change only the byte layout: the same instance, as a PACS copy is."""
    if shutil.which("dcmconv") is None:
        pytest.skip("DCMTK is not installed (apt-get install dcmtk)")
    import subprocess

    for flags in (["+ti"], ["+tb"], ["+g"], ["+ti", "+g"]):
        out = tmp_path / "".join(flags) / "CT_small.dcm"
        out.parent.mkdir()
        subprocess.run(["dcmconv", *flags, str(signed_ct), str(out)], check=True)
        shutil.copy(sidecar_path(signed_ct), sidecar_path(out))
        r = verify_image(out, ledger=False)
        same_syntax = flags == ["+g"]
        assert r.verdict == ("intact" if same_syntax else "re-encoded"), (flags, r.summary)
        assert statuses(r)["header"] == "pass", (flags, r.check("header").message)
        if same_syntax:
            assert "only the byte layout differs" in r.check("file").message


def test_one_pixel_plus_one_is_named(signed_ct):
    ds = pydicom.dcmread(signed_ct)
    arr = ds.pixel_array.copy()
    arr[10, 20] += 1
    ds.PixelData = arr.tobytes()
    ds.save_as(signed_ct)
    r = verify_image(signed_ct, ledger=False)
    assert r.verdict == "tampered" and not r.ok
    assert statuses(r)["pixels"] == "fail" and statuses(r)["metadata"] == "pass"
    assert statuses(r)["signature"] == "pass"
    assert "pixels changed" in r.summary


def test_listed_metadata_change_is_named(signed_ct):
    ds = pydicom.dcmread(signed_ct)
    ds.StudyInstanceUID = ds.StudyInstanceUID + "1"
    ds.save_as(signed_ct)
    r = verify_image(signed_ct, ledger=False)
    assert r.verdict == "tampered"
    assert statuses(r)["pixels"] == "pass"
    assert r.check("metadata").message == "identifying attributes changed: StudyInstanceUID"


def test_untrusted_signer(signed_ct, signer):
    keys.untrust_key(keys.resolve_key().fingerprint)
    r = verify_image(signed_ct, ledger=False)
    assert r.verdict == "untrusted" and not r.ok
    assert statuses(r)["signer"] == "fail" and statuses(r)["signature"] == "pass"


def test_unsigned_file(tmp_path):
    path = tmp_path / "x.dcm"
    shutil.copy(pydicom_test_file("CT_small.dcm"), path)
    r = verify_image(path, ledger=False)
    assert r.verdict == "unsigned" and not r.ok


def test_edited_record_fails_the_signature(signed_ct):
    record = read_record(sidecar_path(signed_ct))
    record["subject"]["file_name"] = "other.dcm"
    sidecar_path(signed_ct).write_bytes(canonical_json(record))
    r = verify_image(signed_ct, ledger=False)
    assert r.verdict == "tampered" and statuses(r)["signature"] == "fail"


def test_sign_paths_is_resumable_and_never_blesses_a_changed_file(tmp_path, signer):
    folder = tmp_path / "archive"
    (folder / "sub").mkdir(parents=True)
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(pydicom_test_file(name), folder / name)
    shutil.copy(pydicom_test_file("JPEG2000.dcm"), folder / "sub" / "JPEG2000.dcm")
    first = sign_paths([folder], signer)
    assert first.count(SIGNED) == 3
    again = sign_paths([folder], signer)
    assert again.count(SKIPPED) == 3
    ds = pydicom.dcmread(folder / "MR_small.dcm")
    ds.PatientName = "Someone Else"
    ds.save_as(folder / "MR_small.dcm")
    third = sign_paths([folder], signer)
    refused = [o for o in third.outcomes if o.status == REFUSED]
    assert [o.path for o in refused] == [str(folder / "MR_small.dcm")]
    assert "changed since it was signed" in refused[0].message


# --- tamper property test: >= 1000 seeded random cases ------------------------------------
def _pixel_offset(path):
    data = path.read_bytes()
    pixels = pydicom.dcmread(path).PixelData
    offset = data.find(pixels)
    assert offset > 0 and data.count(pixels) == 1
    return data, offset, len(pixels)


@pytest.mark.filterwarnings("ignore:Invalid value for VR:UserWarning")  # flipped values, on purpose
def test_tampering_is_caught_at_the_right_check(signed_ct, tmp_path):
    rng = random.Random(20261122)
    original = signed_ct.read_bytes()
    side = sidecar_path(signed_ct)
    side_bytes = side.read_bytes()
    data, offset, length = _pixel_offset(signed_ct)
    cases = 0

    # 1. any single bit of the pixel data -> pixels fail, signature and metadata pass
    for _ in range(400):
        buf = bytearray(original)
        buf[offset + rng.randrange(length)] ^= 1 << rng.randrange(8)
        signed_ct.write_bytes(bytes(buf))
        s = statuses(verify_image(signed_ct, ledger=False))
        assert (s["pixels"], s["signature"], s["metadata"]) == ("fail", "pass", "pass")
        cases += 1
    signed_ct.write_bytes(original)

    # 2. any single bit of the record JSON -> the record or its signature fails
    for _ in range(250):
        buf = bytearray(side_bytes)
        buf[rng.randrange(len(buf) - 1)] ^= 1 << rng.randrange(8)  # not the final newline
        side.write_bytes(bytes(buf))
        r = verify_image(signed_ct, ledger=False)
        s = statuses(r)
        assert not r.ok and (s.get("record") == "fail" or s.get("signature") == "fail"), r
        cases += 1

    # 3. any single bit of the signature -> the signature fails
    record = read_record_bytes(side_bytes)
    sig = bytearray(base64.b64decode(record["signature"]))
    for _ in range(250):
        bad = bytearray(sig)
        bad[rng.randrange(len(bad))] ^= 1 << rng.randrange(8)
        side.write_bytes(canonical_json({**record, "signature": base64.b64encode(bad).decode()}))
        s = statuses(verify_image(signed_ct, ledger=False))
        assert s["signature"] == "fail" and s["pixels"] == "pass"
        cases += 1
    side.write_bytes(side_bytes)

    # 4. any single bit of a listed metadata value -> metadata fails, naming it
    ds0 = pydicom.dcmread(signed_ct)
    listed = [kw for kw in ("PatientID", "SOPInstanceUID", "StudyInstanceUID",
                            "SeriesInstanceUID", "Manufacturer", "Modality", "ContentDate",
                            "BodyPartExamined") if kw in ds0 and str(ds0.get(kw))]
    assert len(listed) >= 5
    done = 0
    while done < 150:
        kw = rng.choice(listed)
        value = str(ds0.get(kw))
        i = rng.randrange(len(value))
        flipped = chr(ord(value[i]) ^ (1 << rng.randrange(7)))
        if not (flipped.isprintable() and flipped not in " \\" and flipped.isascii()):
            continue  # keep the value a valid, distinct DICOM string
        ds = pydicom.dcmread(signed_ct)
        setattr(ds, kw, value[:i] + flipped + value[i + 1:])
        out = tmp_path / "meta.dcm"
        ds.save_as(out)
        shutil.copy(side, sidecar_path(out))
        r = verify_image(out, ledger=False)
        s = statuses(r)
        assert s["metadata"] == "fail" and s["pixels"] == "pass", (kw, r)
        assert kw in r.check("metadata").message
        done += 1
        cases += 1

    # 5. zero false alarms over the lossless re-encodings
    for syntax in (ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, RLELossless,
                   JPEG2000Lossless):
        out = tmp_path / f"re_{syntax.name[:8]}.dcm".replace(" ", "_")
        _reencode(signed_ct, out, syntax)
        shutil.copy(side, sidecar_path(out))
        assert verify_image(out, ledger=False).ok
        cases += 1
    assert cases >= 1000


def read_record_bytes(data: bytes) -> dict:
    from workbench.provenance.records.canonical_json import parse_json

    return parse_json(data)


def test_suspect_copy_without_sidecar_is_found_by_perceptual_hash(shared_data, tmp_path, signer):
    """A dermoscopy photo is signed; a resized, recompressed copy turns up with no sidecar
    and another name. The ledger finds its record by appearance and says how."""
    import cv2

    from workbench.provenance.ledger.store import Ledger

    photo = tmp_path / "ISIC_0000002.jpg"
    shutil.copy(shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000002.jpg", photo)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    sign_image(photo, signer, ledger=ledger)
    suspect = tmp_path / "inbox" / "lesion_upload.jpg"
    suspect.parent.mkdir()
    img = cv2.imread(str(photo))
    cv2.imwrite(str(suspect), cv2.resize(img, None, fx=0.75, fy=0.75),
                [cv2.IMWRITE_JPEG_QUALITY, 80])
    r = verify_image(suspect, ledger=ledger)
    assert "by perceptual hash (distance" in r.record_source
    # a look-alike, not "tampered": appearance alone cannot say it is that image
    assert r.verdict == "look-alike" and not r.ok and statuses(r)["pixels"] == "fail"
    assert statuses(r)["record"] == "warn" and "ISIC_0000002.jpg" in r.summary
    assert statuses(r)["ledger"] == "pass"
    ledger.close()


def test_the_next_slice_of_a_signed_series_is_not_called_tampered(shared_data, tmp_path,
                                                                  signer):
    """Slice 0 of an MR series is signed; slices 1-3 are not, and look like it (perceptual
    distance 4-10 of 64 bits). Each is another instance (its own SOP Instance UID), not
    a changed copy of slice 0: "look-alike", never "tampered"; the far ones "unsigned"."""
    import copy

    from pydicom.uid import generate_uid

    from workbench.provenance.ledger.store import Ledger

    series = pydicom.dcmread(shared_data / "dicom" / "pydicom-data" / "emri_small.dcm")
    frames = series.pixel_array
    slices = []
    for i in range(4):
        ds = copy.deepcopy(series)
        ds.NumberOfFrames, ds.PixelData = 1, frames[i].tobytes()
        ds.SOPInstanceUID = generate_uid()
        slices.append(tmp_path / f"slice{i}.dcm")
        ds.save_as(slices[-1])
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        sign_image(slices[0], signer, ledger=ledger)
        results = [verify_image(s, ledger=ledger) for s in slices[1:]]
    assert [r.verdict for r in results] == ["look-alike"] * 3, [r.summary for r in results]
    for r in results:
        assert "by perceptual hash" in r.record_source and "slice0.dcm" in r.summary
        assert "another image like it" in r.summary and "tampered" not in r.summary


def test_copy_found_by_uid_then_pixel_hash(tmp_path, signer):
    from workbench.provenance.ledger.store import Ledger

    ledger = Ledger(tmp_path / "ledger.sqlite")
    path = tmp_path / "CT_small.dcm"
    shutil.copy(pydicom_test_file("CT_small.dcm"), path)
    sign_image(path, signer, ledger=ledger)
    copy = tmp_path / "copy.dcm"
    shutil.copy(path, copy)
    r = verify_image(copy, ledger=ledger)
    assert r.verdict == "intact" and "by SOP Instance UID" in r.record_source
    # same pixels, new identity (e.g. Dataset.compress() with a new SOP Instance UID)
    ds = pydicom.dcmread(path)
    ds.compress(RLELossless)  # generate_instance_uid=True by default
    ds.save_as(copy)
    r = verify_image(copy, ledger=ledger)
    assert "by pixel fingerprint" in r.record_source
    assert statuses(r)["pixels"] == "pass"
    assert r.check("metadata").message == "identifying attributes changed: SOPInstanceUID"
    ledger.close()


@pytest.mark.parametrize("damage", [b"", b'{"schema": "workbench.capture-record/1", "pi'],
                         ids=["empty", "cut short"])
def test_a_sidecar_a_crash_damaged_is_not_called_tampering(tmp_path, signer, damage,
                                                             capsys):
    """The sidecar is a copy of the record beside the image; the ledger's fsynced entry
    is the durable one. A crash can leave the sidecar empty or cut short: with the ledger
    at hand the image is judged by its record there, and the damaged sidecar is named.
    A changed image is still tampered, and with no ledger nothing stands in for it."""
    from workbench.provenance.ledger.store import Ledger

    ledger = Ledger(tmp_path / "ledger.sqlite")
    path = tmp_path / "CT_small.dcm"
    shutil.copy(pydicom_test_file("CT_small.dcm"), path)
    sign_image(path, signer, ledger=ledger)
    sidecar_path(path).write_bytes(damage)
    r = verify_image(path, ledger=ledger)
    assert r.verdict == "intact", r.summary
    assert "the sidecar beside it is unreadable" in r.summary
    assert r.check("sidecar").status == "warn"
    assert sidecar_path(path).name in r.check("sidecar").message
    assert "ledger entry" in r.record_source
    from workbench.cli.provenance import _print_table

    _print_table([r])  # the command line's table says it under the intact row
    assert "the sidecar beside it is unreadable" in capsys.readouterr().out
    # the same damage on a changed image: tampered, named where it changed
    ds = pydicom.dcmread(path)
    ds.PatientName = "Someone Else"
    ds.save_as(path)
    r = verify_image(path, ledger=ledger)
    assert r.verdict == "tampered" and "PatientName" in r.summary, r.summary
    # no ledger: the damaged sidecar is all there is, and it is not a valid record
    r = verify_image(path, ledger=False)
    assert r.verdict == "tampered" and r.summary == "record unreadable"
    ledger.close()


def test_a_change_above_bits_stored_is_tampering_not_a_reencoding(tmp_path, signer):
    """Decoders mask bits outside Bits Stored, so the pixel values stay the same; old
    files keep overlays there. Such an edit read 're-encoded, pixels intact'."""
    path = tmp_path / "overlay.dcm"
    shutil.copy(pydicom_test_file("examples_overlay.dcm"), path)  # 12 of 16 bits stored
    sign_image(path, signer, ledger=None)
    assert verify_image(path, ledger=False).verdict == "intact"
    ds = pydicom.dcmread(path)
    raw = bytearray(ds.PixelData)
    raw[1] ^= 0x80  # bit 15 of the first word
    ds.PixelData = bytes(raw)
    ds.save_as(path)
    r = verify_image(path, ledger=False)
    assert r.verdict == "tampered" and not r.ok
    assert "outside Bits Stored" in r.check("pixels").message


def test_a_signature_in_non_canonical_base64_is_not_intact(signed_ct):
    """The last base64 digit of a 64-byte signature carries 4 unused bits: changing them
    leaves the decoded bytes (and a lenient decoder's verdict) the same, but the record
    on disk is not the one signed."""
    import json as _json

    side = sidecar_path(signed_ct)
    record = _json.loads(side.read_text())
    sig = record["signature"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = sig.rstrip("=")[-1]
    twin = alphabet[alphabet.index(last) ^ 1]  # differs only in an unused low bit
    record["signature"] = sig.rstrip("=")[:-1] + twin + "=" * (len(sig) - len(sig.rstrip("=")))
    import base64

    assert base64.b64decode(record["signature"]) == base64.b64decode(sig)
    side.write_text(_json.dumps(record))
    r = verify_image(signed_ct, ledger=False)
    assert r.verdict == "tampered" and "canonical base64" in r.summary


def test_a_signed_file_that_no_longer_decodes_is_tampered_not_an_error(signed_ct):
    """It decoded when it was signed: cut short since, it was altered. The bytes it was
    signed as, undecodable on this machine, would stay an error."""
    data = signed_ct.read_bytes()
    signed_ct.write_bytes(data[:-3000])
    r = verify_image(signed_ct, ledger=False)
    assert r.verdict == "tampered" and not r.ok, r.summary
    assert "no longer decodes" in r.summary
    s = statuses(r)
    assert (s["signature"], s["pixels"], s["file"]) == ("pass", "fail", "fail")

    ds = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    ds.Rows = 130  # the stored bytes no longer fill the declared image
    ds.save_as(signed_ct)
    r = verify_image(signed_ct, ledger=False)
    assert r.verdict == "tampered" and "changed: Rows" in r.summary, r.summary
