"""The pixel, file and metadata fingerprints on real DICOM files and photos."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pydicom
import pytest
from conftest import pydicom_test_file
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

from workbench.imaging import load_image
from workbench.provenance.records.fingerprint import (
    DICOM_IDENTITY_ATTRIBUTES,
    compressed_frame_hashes,
    file_sha256,
    hamming_distance,
    metadata_fingerprint,
    perceptual_hash,
    pixel_fingerprint,
)

EMRI = ["emri_small.dcm", "emri_small_RLE.dcm", "emri_small_big_endian.dcm",
        "emri_small_jpeg_2k_lossless.dcm", "emri_small_jpeg_ls_lossless.dcm"]
MR_SMALL = ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
            "MR_small_expb.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
            "MR_small_padded.dcm"]


def test_emri_small_in_five_transfer_syntaxes_shares_one_fingerprint(shared_data):
    folder = shared_data / "dicom" / "pydicom-data"
    prints = {n: pixel_fingerprint(load_image(folder / n)) for n in EMRI}
    assert len({p.sha256 for p in prints.values()}) == 1
    assert len({p.frame_sha256 for p in prints.values()}) == 1
    assert len(next(iter(prints.values())).frame_sha256) == 10
    assert len({file_sha256(folder / n) for n in EMRI}) == 5  # the files differ


def test_mr_small_family_shares_one_fingerprint():
    shas = {n: pixel_fingerprint(load_image(pydicom_test_file(n))).sha256 for n in MR_SMALL}
    assert len(set(shas.values())) == 1, shas


def _reencode(src, dst, syntax):
    ds = pydicom.dcmread(src)
    if syntax in (RLELossless, JPEG2000Lossless):
        ds.compress(syntax, generate_instance_uid=False)  # keep the identity: same image
        ds.save_as(dst)
    else:
        ds.file_meta.TransferSyntaxUID = syntax
        ds.save_as(dst, enforce_file_format=True)
    return dst


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
                                    RLELossless, JPEG2000Lossless], ids=lambda s: s.name)
def test_lossless_reencode_keeps_pixels_and_metadata_but_not_file_bytes(tmp_path, syntax):
    src = pydicom_test_file("CT_small.dcm")
    dst = _reencode(src, tmp_path / "ct.dcm", syntax)
    a, b = load_image(src), load_image(dst)
    assert b.transfer_syntax == syntax
    assert pixel_fingerprint(a).sha256 == pixel_fingerprint(b).sha256
    salt = b"0123456789abcdef"
    assert metadata_fingerprint(a, salt) == metadata_fingerprint(b, salt)
    assert file_sha256(src) != file_sha256(dst)


def test_one_pixel_changed_by_one_breaks_the_fingerprint(tmp_path):
    src = pydicom_test_file("CT_small.dcm")
    ds = pydicom.dcmread(src)
    arr = ds.pixel_array.copy()
    arr[64, 70] += 1
    ds.PixelData = arr.tobytes()
    ds.save_as(tmp_path / "ct.dcm")
    assert pixel_fingerprint(load_image(src)).sha256 != \
        pixel_fingerprint(load_image(tmp_path / "ct.dcm")).sha256


def test_frame_hashes_locate_the_changed_frame(shared_data, tmp_path):
    src = shared_data / "dicom" / "pydicom-data" / "emri_small.dcm"
    ds = pydicom.dcmread(src)
    arr = ds.pixel_array.copy()
    arr[6, 10, 10] ^= 1
    ds.PixelData = arr.tobytes()
    ds.save_as(tmp_path / "emri.dcm")
    a = pixel_fingerprint(load_image(src))
    b = pixel_fingerprint(load_image(tmp_path / "emri.dcm"))
    assert [i for i in range(10) if a.frame_sha256[i] != b.frame_sha256[i]] == [6]


def test_fingerprint_matches_the_documented_recipe():
    """docs/fingerprint.md's hand recipe, written independently of our code."""
    for name in ("CT_small.dcm", "MR_small_bigendian.dcm", "SC_rgb_rle_2frame.dcm"):
        path = pydicom_test_file(name)
        ds = pydicom.dcmread(path)
        a = ds.pixel_array
        image = load_image(path)
        hdr = {"format": "workbench-pixels", "version": 1,
               "dtype": a.dtype.newbyteorder("<").str, "shape": list(a.shape),
               "frames": int(ds.get("NumberOfFrames", 1)),
               "samples_per_pixel": int(ds.SamplesPerPixel),
               "bits_allocated": int(ds.BitsAllocated), "bits_stored": int(ds.BitsStored),
               "pixel_representation": int(ds.PixelRepresentation),
               "photometric": image.photometric}
        h = json.dumps(hdr, sort_keys=True, separators=(",", ":")).encode()
        le = a.astype(a.dtype.newbyteorder("<"))
        expected = hashlib.sha256(len(h).to_bytes(8, "big") + h + le.tobytes()).hexdigest()
        assert pixel_fingerprint(image).sha256 == expected, name


def test_ybr_is_fingerprinted_as_decoded_rgb():
    fp = pixel_fingerprint(load_image(pydicom_test_file("SC_ybr_full_422_uncompressed.dcm")))
    assert fp.header["photometric"] == "RGB"


def test_metadata_hmacs_name_the_changed_attribute(tmp_path):
    src = pydicom_test_file("CT_small.dcm")
    ds = pydicom.dcmread(src)
    ds.PatientID = ds.PatientID + "X"
    ds.save_as(tmp_path / "ct.dcm")
    salt = bytes(range(16))
    a = metadata_fingerprint(load_image(src), salt)
    b = metadata_fingerprint(load_image(tmp_path / "ct.dcm"), salt)
    assert a["attributes"] == list(DICOM_IDENTITY_ATTRIBUTES)
    assert a["sha256"] != b["sha256"]
    changed = [k for k in a["attributes"] if a["attribute_hmacs"][k] != b["attribute_hmacs"][k]]
    assert changed == ["PatientID"]
    # no identifier in clear
    assert str(ds.PatientID)[:-1] not in json.dumps(a)


def test_lossy_dicom_records_its_compressed_frames(shared_data):
    image = load_image(shared_data / "dicom" / "pydicom-data" / "color3d_jpeg_baseline.dcm")
    hashes = compressed_frame_hashes(image)
    assert hashes is not None and len(hashes) == 120 and len(set(hashes)) > 100
    assert compressed_frame_hashes(load_image(pydicom_test_file("CT_small.dcm"))) is None


def test_perceptual_hash_finds_a_recompressed_copy_and_separates_other_images(shared_data,
                                                                              tmp_path):
    import cv2

    photos = sorted((shared_data / "dermoscopy" / "isic" / "images").glob("*.jpg"))[:6]
    original = load_image(photos[0])
    copy = tmp_path / "copy.jpg"
    bgr = cv2.cvtColor(np.ascontiguousarray(original.pixels), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(copy), cv2.resize(bgr, None, fx=0.5, fy=0.5),
                [cv2.IMWRITE_JPEG_QUALITY, 70])
    h0 = perceptual_hash(original)
    assert len(h0) == 16
    assert hamming_distance(h0, perceptual_hash(load_image(copy))) <= 6
    others = [hamming_distance(h0, perceptual_hash(load_image(p))) for p in photos[1:]]
    assert min(others) > 10


def test_perceptual_hash_is_imagehash_phash_bit_for_bit(shared_data):
    """phash_hex computes imagehash.phash without scipy (docs/fingerprint.md names
    imagehash's): the same 64 bits on real renderings of every kind (photos, X-rays,
    CT, MR, mammography, colour and palette DICOM), and on the degenerate pictures where
    a rounding difference would decide bits: blank frames, a checkerboard, ramps."""
    import imagehash
    from PIL import Image

    from workbench.imaging.display import render
    from workbench.provenance.records.fingerprint import phash_hex

    folders = [shared_data / "dermoscopy" / "isic" / "images",
               shared_data / "cxr-pneumonia", shared_data / "dicom"]
    files = []
    for folder in folders:
        found = sorted(p for p in folder.rglob("*") if p.is_file()
                       and p.suffix.lower() in (".jpg", ".jpeg", ".png", ".dcm", "")
                       and p.stat().st_size < 2_000_000)  # the size is not what is tested
        files += found[:: max(1, len(found) // 25)]
    pictures = []
    for f in files:
        try:
            image = load_image(f)
        except Exception:
            continue  # the corpus holds files made to be refused
        step = max(1, max(image.rows, image.columns) // 1024)
        pictures.append((f.name, Image.fromarray(render(image, 0, image.default_window(0),
                                                        step=step))))
    assert len(pictures) >= 50
    ramp = np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))
    degenerate = [np.full((50, 70), v, np.uint8) for v in (0, 1, 128, 200, 255)] + [
        ramp, ramp.T.copy(), (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8),
        np.full((40, 40, 3), (10, 200, 30), np.uint8)]
    pictures += [(f"degenerate {i}", Image.fromarray(a)) for i, a in enumerate(degenerate)]
    for name, picture in pictures:
        assert phash_hex(picture) == str(imagehash.phash(picture, hash_size=8)), name


def test_a_record_recomputes_from_the_document_alone(tmp_path, shared_data):
    """docs/fingerprint.md, sections 1-5, implemented here from the text (pydicom, numpy,
    OpenCV, PIL and imagehash only): the record's pixel, file, header and perceptual
    hashes of a CT (a window in the file), a CR (MONOCHROME1, window from the data), an
    8-bit photo with no EXIF orientation (the "1" and "|u1" cases) and a preamble-less
    data set (force=True) come out the same."""
    import cv2
    import imagehash
    from PIL import Image

    from workbench.provenance.records.canonical_json import canonical_json
    from workbench.provenance.records.fingerprint import fingerprints

    bare = tmp_path / "bare.dcm"  # the data set without preamble and file meta
    ds = pydicom.dcmread(pydicom_test_file("MR_small.dcm"))
    pydicom.dcmwrite(bare, ds, enforce_file_format=False, implicit_vr=False,
                     little_endian=True)
    data = bare.read_bytes()
    if data[128:132] == b"DICM":
        data = data[132:]
    bare.write_bytes(data)
    assert bare.read_bytes()[128:132] != b"DICM"  # really without a preamble

    def window_y(x, c, w):
        w = max(w, 1.0)
        if w == 1.0:
            return np.where(x <= c - 0.5, 0.0, 255.0)
        return np.clip((x - (c - 0.5)) / (w - 1.0) + 0.5, 0.0, 1.0) * 255.0

    cases = [pydicom_test_file("CT_small.dcm"), bare,
             shared_data / "dicom" / "orthanc" / "Issue44" / "Monochrome1-Jpeg.dcm",
             shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000000.jpg"]
    for path in cases:
        record = fingerprints(load_image(path), salt=bytes(16))
        if path.suffix == ".jpg":
            data = np.frombuffer(path.read_bytes(), np.uint8)
            bgr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
            a = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            hdr = {"format": "workbench-pixels", "version": 1, "dtype": "|u1",
                   "shape": list(a.shape), "frames": 1, "samples_per_pixel": 3,
                   "bits_allocated": 8, "bits_stored": 8, "pixel_representation": 0,
                   "photometric": "RGB"}
            assert a.dtype.newbyteorder("<").str == "|u1"
            from workbench.provenance.records.fingerprint import attribute_hmac

            assert record["metadata"]["attributes"][-1] == "Orientation"
            assert record["metadata"]["attribute_hmacs"]["Orientation"] == attribute_hmac(
                bytes(16), "Orientation", "1")  # no EXIF orientation: "1", not null
            step = max(1, max(a.shape[:2]) // 1024)
            rgb = a[::step, ::step]  # no EXIF orientation: shown as stored
        else:
            raw = path.read_bytes()
            ds = pydicom.dcmread(path, force=raw[128:132] != b"DICM")
            a = ds.pixel_array
            hdr = {"format": "workbench-pixels", "version": 1,
                   "dtype": a.dtype.newbyteorder("<").str, "shape": list(a.shape),
                   "frames": int(ds.get("NumberOfFrames", 1) or 1),
                   "samples_per_pixel": int(ds.SamplesPerPixel),
                   "bits_allocated": int(ds.BitsAllocated),
                   "bits_stored": int(ds.BitsStored),
                   "pixel_representation": int(ds.PixelRepresentation),
                   "photometric": str(ds.PhotometricInterpretation)}
            x = a.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(
                ds.get("RescaleIntercept", 0))
            if "WindowCenter" in ds:
                c, w = (float(v[0]) if isinstance(v, pydicom.multival.MultiValue)
                        else float(v) for v in (ds.WindowCenter, ds.WindowWidth))
            else:
                lo, hi = float(x.min()), float(x.max())
                w = max(hi - lo, 1.0)
                c = lo + w / 2.0
            step = max(1, max(a.shape[:2]) // 1024)
            y = np.rint(window_y(x[::step, ::step], c, w)).astype(np.uint8)
            if ds.PhotometricInterpretation == "MONOCHROME1":
                y = 255 - y
            rgb = np.repeat(y[..., None], 3, axis=-1)
        h = canonical_json(hdr)
        le = a.astype(a.dtype.newbyteorder("<"))
        assert record["pixels"]["sha256"] == hashlib.sha256(
            len(h).to_bytes(8, "big") + h + le.tobytes()).hexdigest(), path.name
        # one frame each: its hash is of the values alone (the small ones are hashed on
        # one thread, the photo's 2.3 MB on two)
        assert record["pixels"]["frames_sha256"] == [hashlib.sha256(le.tobytes()).hexdigest()]
        assert record["file"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert record["perceptual"]["hash"] == str(imagehash.phash(Image.fromarray(rgb),
                                                                   hash_size=8)), path.name


def test_canonical_json_refuses_what_it_cannot_write_exactly_and_names_where():
    """The fast validity pass must refuse exactly what the full check refuses, and the
    message must still name the offending value's place in the record."""
    from enum import IntEnum

    from workbench.provenance.records.canonical_json import canonical_json

    class Level(IntEnum):
        ONE = 1

    big = 2 ** 53
    cases = {
        "$.pixels.frames[1]": ({"pixels": {"frames": [1, 0.5]}}, TypeError),
        "$.header": ({"header": {3: "x"}}, TypeError),
        "$.n[0]": ({"n": [big]}, ValueError),
        "$.when": ({"when": object()}, TypeError),
    }
    for where, (value, error) in cases.items():
        with pytest.raises(error, match=re.escape(where)):
            canonical_json(value)
    # at the limit, bools, None, tuples and int subclasses are written as before
    assert canonical_json({"b": [True, None, (big - 1, -(big - 1))], "l": Level.ONE}) == \
        b'{"b":[true,null,[9007199254740991,-9007199254740991]],"l":1}'
