"""Fingerprints of an image: decoded pixels, file bytes, identifying metadata, compressed
frames (lossy syntaxes) and a perceptual hash for lookup. Specified in docs/fingerprint.md.

The pixel fingerprint is over the *decoded stored values*, so a lossless re-encoding
(another transfer syntax, RLE, JPEG-LS or J2K lossless, deflate, big endian) keeps it,
while any change to any pixel breaks it. It depends on the decoder options, which are
pinned in ``workbench.imaging.dicom_reader.DECODE_OPTIONS`` (YBR is converted to RGB,
as pydicom 3 does by default) and recorded through the photometric interpretation "as
decoded" in the header.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...imaging.medical_image import MedicalImage
from .canonical_json import canonical_json

PIXEL_ALGORITHM = "workbench-pixels-v1"
PERCEPTUAL_ALGORITHM = "phash-64-v1"
METADATA_ALGORITHM = "workbench-metadata-v1"

# Identifying attributes hashed into the metadata fingerprint (the list is also stored in
# every record, so a later version can change it without breaking old records).
DICOM_IDENTITY_ATTRIBUTES: tuple[str, ...] = (
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "PatientID",
    "Modality", "Manufacturer", "ManufacturerModelName", "DeviceSerialNumber",
    "AcquisitionDate", "AcquisitionTime", "AcquisitionDateTime", "ContentDate", "ContentTime",
    "Rows", "Columns", "PixelSpacing", "ImagerPixelSpacing", "RescaleSlope", "RescaleIntercept",
    "PhotometricInterpretation", "Laterality", "ImageLaterality", "BodyPartExamined",
)
# For photos: EXIF tags (Pillow's names) and the decoded size.
PHOTO_IDENTITY_ATTRIBUTES: tuple[str, ...] = (
    "Make", "Model", "BodySerialNumber", "LensModel", "DateTimeOriginal", "DateTime",
    "ImageUniqueID", "Width", "Height", "Orientation",
)

# Transfer syntaxes whose decoded pixels may legitimately differ between decoders.
LOSSY_TRANSFER_SYNTAXES = frozenset({
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.203",
    *(f"1.2.840.10008.1.2.4.{n}" for n in range(100, 109)),
})


@dataclass(frozen=True)
class PixelFingerprint:
    algorithm: str
    sha256: str
    frame_sha256: tuple[str, ...]
    header: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "sha256": self.sha256,
                "frames_sha256": list(self.frame_sha256), "header": self.header}


def pixel_header(image: MedicalImage) -> dict[str, Any]:
    """The canonical header hashed before the pixel values."""
    return {
        "format": "workbench-pixels",
        "version": 1,
        "dtype": image.pixels.dtype.newbyteorder("<").str,
        "shape": [int(s) for s in image.pixels.shape],
        "frames": int(image.n_frames),
        "samples_per_pixel": int(image.samples_per_pixel),
        "bits_allocated": int(image.bits_allocated),
        "bits_stored": int(image.bits_stored),
        "pixel_representation": int(image.pixel_representation),
        "photometric": image.photometric,
    }


def _little_endian_frames(image: MedicalImage) -> list[memoryview]:
    """Each frame's values as little-endian C-order bytes: a view when already so
    (the usual case), a converted copy for big-endian data."""
    import numpy as np

    out = []
    for i in range(image.n_frames):
        frame = image.frame(i)
        if frame.dtype.str.startswith(">"):  # dtype.str always spells the byte order out
            frame = frame.astype(frame.dtype.newbyteorder("<"))
        out.append(memoryview(np.ascontiguousarray(frame)).cast("B"))
    return out


# Below this many bytes a second thread costs more than it saves: starting one takes
# ~0.3 ms, what SHA-256 takes over ~300 KB (measured on 2 cores: even at 468 KB, the
# thread 0.25 ms ahead at 1 MB; when a folder is signed both cores are busy anyway).
# A CT slice (512x512, 16 bit) is under it, a mammogram far over.
_THREADED_FROM = 1 << 20


def pixel_fingerprint(image: MedicalImage) -> PixelFingerprint:
    """SHA-256 over len(header) (8 bytes, big-endian) || canonical header || every frame's
    values, plus one SHA-256 per frame.

    For a large image the per-frame hashes are computed on a second thread while the
    main one computes the whole-image hash: hashlib releases the GIL on large buffers, so
    both passes over the data cost about the wall time of one.
    """
    header = pixel_header(image)
    header_bytes = canonical_json(header)
    frames = _little_endian_frames(image)
    total = hashlib.sha256(len(header_bytes).to_bytes(8, "big") + header_bytes)
    if sum(f.nbytes for f in frames) < _THREADED_FROM:
        for f in frames:
            total.update(f)
        frame_hashes = [hashlib.sha256(f).hexdigest() for f in frames]
        return PixelFingerprint(PIXEL_ALGORITHM, total.hexdigest(), tuple(frame_hashes),
                                header)
    with ThreadPoolExecutor(max_workers=1) as pool:
        per_frame = pool.submit(lambda: [hashlib.sha256(f).hexdigest() for f in frames])
        for f in frames:
            total.update(f)
        frame_hashes = per_frame.result()
    return PixelFingerprint(PIXEL_ALGORITHM, total.hexdigest(), tuple(frame_hashes), header)


def unused_bits(image: MedicalImage) -> dict[str, Any] | None:
    """The bits of native DICOM pixel words outside Bits Stored (above the High Bit, or
    below its stored range), which decoders mask off: old files keep overlays there, and
    a change to them leaves the decoded values, and so the pixel fingerprint, intact.
    None when there are none to keep (compressed data carries only the stored bits)."""
    import numpy as np

    if image.kind != "dicom" or image.bits_allocated not in (16, 32) \
            or image.bits_stored >= image.bits_allocated:
        return None
    ds = image.metadata
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None or syntax.is_compressed or "PixelData" not in ds:
        return None
    order = ">" if str(syntax) == "1.2.840.10008.1.2.2" else "<"
    words = np.frombuffer(ds.PixelData, dtype=f"{order}u{image.bits_allocated // 8}")
    high = int(ds.get("HighBit", image.bits_stored - 1))
    low = high - image.bits_stored + 1
    kept = ((1 << image.bits_stored) - 1) << low
    outside = (words & np.array(~kept & ((1 << image.bits_allocated) - 1),
                                dtype=words.dtype)).astype(f"<u{image.bits_allocated // 8}")
    return {"sha256": hashlib.sha256(outside.tobytes()).hexdigest(),
            "nonzero_words": int(np.count_nonzero(outside))}


def file_sha256(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# VRs whose explicit-VR length field is 4 bytes after 2 reserved ones (PS3.5 7.1.2)
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}


def dataset_offset(fh: Any) -> int | None:
    """Where a DICOM file's data set begins, after its preamble and file meta group;
    None when the file has no ``DICM`` preamble. The file meta (group 0002, always
    explicit VR little endian) is written anew by every application that stores the
    instance (a PACS names itself in it), so it is not part of what the modality sent."""
    fh.seek(0)
    head = fh.read(132)
    if len(head) < 132 or head[128:132] != b"DICM":
        return None
    offset = 132
    while True:
        fh.seek(offset)
        element = fh.read(12)
        if len(element) < 8 or element[:2] != b"\x02\x00":  # group 0002, little endian
            return offset
        vr = element[4:6]
        if vr in _LONG_VRS:
            if len(element) < 12:
                return offset
            offset += 12 + int.from_bytes(element[8:12], "little")
        else:
            offset += 8 + int.from_bytes(element[6:8], "little")


def dataset_sha256(path: str | os.PathLike[str]) -> str | None:
    """SHA-256 of a DICOM file's data set bytes (everything after the file meta group):
    equal for the same instance stored by another application. None if not DICOM."""
    with open(path, "rb") as fh:
        offset = dataset_offset(fh)
        if offset is None:
            return None
        fh.seek(offset)
        return hashlib.file_digest(fh, "sha256").hexdigest()


# --- identifying metadata ----------------------------------------------------------------
def identity_values(image: MedicalImage,
                    attributes: tuple[str, ...] | list[str] | None = None) -> dict[str, str | None]:
    """The identifying attributes as canonical strings (None when absent)."""
    if image.kind == "dicom":
        attributes = attributes or DICOM_IDENTITY_ATTRIBUTES
        return {kw: _dicom_value(image.metadata, kw) for kw in attributes}
    attributes = attributes or PHOTO_IDENTITY_ATTRIBUTES
    meta = image.metadata or {}
    out: dict[str, str | None] = {}
    for name in attributes:
        if name in ("Width", "Height"):
            value = meta.get(name)
        elif name == "Orientation":
            value = meta.get("Orientation (EXIF)")
        else:
            value = meta.get(f"EXIF {name}")
        out[name] = None if value is None else str(value)
    return out


def _dicom_value(ds: Any, keyword: str) -> str | None:
    elem = ds.get(keyword) if ds is not None else None
    if elem is None or elem == "":
        return None
    if type(elem).__name__ == "MultiValue" or isinstance(elem, list | tuple):
        return "\\".join(str(v) for v in elem)
    return str(elem)


def metadata_fingerprint(image: MedicalImage, salt: bytes | None = None,
                         attributes: tuple[str, ...] | list[str] | None = None) -> dict[str, Any]:
    """The metadata part of a record.

    ``sha256`` covers all values together (high-entropy UIDs make it unguessable).
    ``attribute_hmacs`` are one HMAC per attribute, keyed with a per-record random salt, so
    verification can name the attribute that changed without the record carrying patient
    identifiers in clear.
    """
    values = identity_values(image, attributes)
    salt = salt if salt is not None else os.urandom(16)
    return {
        "algorithm": METADATA_ALGORITHM,
        "attributes": list(values),
        "sha256": hashlib.sha256(canonical_json(values)).hexdigest(),
        "salt": salt.hex(),
        "attribute_hmacs": {k: attribute_hmac(salt, k, v) for k, v in values.items()},
    }


def attribute_hmac(salt: bytes, keyword: str, value: str | None) -> str | None:
    if value is None:
        return None
    return hmac.new(salt, canonical_json([keyword, value]), hashlib.sha256).hexdigest()


# --- compressed frames (lossy syntaxes) ---------------------------------------------------
def is_lossy(image: MedicalImage) -> bool:
    if image.kind != "dicom":
        return image.transfer_syntax == "JPEG"
    lossy_flag = str(image.metadata.get("LossyImageCompression", "") or "") == "01"
    return image.transfer_syntax in LOSSY_TRANSFER_SYNTAXES or lossy_flag


def compressed_frame_hashes(image: MedicalImage) -> list[str] | None:
    """SHA-256 of each encapsulated frame's bytes, for lossy DICOM syntaxes: decoders of
    lossy codecs may differ in the last bit, the compressed bytes do not."""
    if image.kind != "dicom" or not is_lossy(image):
        return None
    ds = image.metadata
    if not getattr(ds.file_meta, "TransferSyntaxUID", None) or \
            not ds.file_meta.TransferSyntaxUID.is_compressed:
        return None
    from pydicom.encaps import generate_frames

    return [hashlib.sha256(f).hexdigest()
            for f in generate_frames(ds.PixelData, number_of_frames=image.n_frames)]


# --- perceptual hash (lookup only) ---------------------------------------------------------
def perceptual_hash(image: MedicalImage) -> str:
    """pHash (imagehash, 8x8 DCT bits, 16 hex digits) of a defined 8-bit rendering: frame 0,
    the image's default window, oriented for display, decimated to at most ~1024 pixels on
    the long side. For finding a record of a suspect copy, never for proving anything."""
    from PIL import Image

    from ...imaging.display import render

    step = max(1, max(image.rows, image.columns) // 1024)
    # grey for a monochrome image: the same hash as of its RGB rendering (PIL's RGB -> L
    # weights sum to exactly 1 in its fixed point, so R = G = B = v gives v back), without
    # building and converting three channels (two thirds of the time on a 484x484 MR)
    picture = render(image, 0, image.default_window(0), step=step, gray=True)
    return phash_hex(Image.fromarray(picture))


_PHASH_BITS, _PHASH_SIDE = 8, 32  # imagehash.phash: hash_size 8, highfreq_factor 4
_PHASH_ROWS: Any = None


def phash_hex(picture: Any) -> str:
    """``str(imagehash.phash(picture, hash_size=8))``, bit for bit, without the import of
    scipy.fftpack that imagehash makes for its DCT (a third of a second: a third of the
    start of each worker that signs a folder). The same steps: grey, 32x32 Lanczos, the
    unnormalised DCT-II (FFTPACK's, 2·Σ x·cos) of the rows and columns, the 8x8 lowest
    frequencies against their median. Only those 8 frequencies are computed, as two
    products with the cosine rows; rounded to 1e-6, so that a coefficient that is exactly
    zero in FFTPACK's result (every AC term of a blank frame) is zero here too instead of
    rounding noise that would decide its bit."""
    global _PHASH_ROWS
    import numpy as np
    from imagehash import ImageHash
    from PIL import Image

    if _PHASH_ROWS is None:
        n = np.arange(_PHASH_SIDE)
        _PHASH_ROWS = 2.0 * np.cos(np.pi * np.arange(_PHASH_BITS)[:, None]
                                   * (2 * n[None, :] + 1) / (2 * _PHASH_SIDE))
    grey = np.asarray(picture.convert("L").resize((_PHASH_SIDE, _PHASH_SIDE),
                                                  Image.LANCZOS), dtype=np.float64)
    low = np.round(_PHASH_ROWS @ grey @ _PHASH_ROWS.T, 6)
    return str(ImageHash(low > np.median(low)))


def hamming_distance(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def _file_fingerprint(image: MedicalImage) -> dict[str, Any]:
    out: dict[str, Any] = {"sha256": file_sha256(image.path),
                           "size": Path(image.path).stat().st_size}
    if image.kind == "dicom" and (ds := dataset_sha256(image.path)) is not None:
        out["dataset_sha256"] = ds
        # which encoding the bytes were in: a copy in another one is a re-encoding, a copy
        # in the same one with the same elements is the same instance laid out anew
        out["transfer_syntax"] = image.transfer_syntax
    return out


def stored_header(image: MedicalImage) -> Any:
    """The data set the header fingerprint hashes: its elements as read from the file
    (a data set built in memory has no stored form and is hashed as it is)."""
    return image.stored_metadata if image.stored_metadata is not None else image.metadata


def fingerprints(image: MedicalImage, *, salt: bytes | None = None) -> dict[str, Any]:
    """Everything a capture record holds about one image (the record adds identity,
    time, signer and signature)."""
    header = None
    if image.kind == "dicom" and image.metadata is not None:
        from .header import header_fingerprint

        header = header_fingerprint(stored_header(image), salt if salt is not None
                                    else os.urandom(16))
    pixels = pixel_fingerprint(image).to_json()
    outside = unused_bits(image)
    if outside is not None:
        pixels["unused_bits"] = outside
    return {
        "pixels": pixels,
        "file": _file_fingerprint(image),
        "metadata": metadata_fingerprint(image, salt),
        "header": header,
        "compressed": (None if (h := compressed_frame_hashes(image)) is None else
                       {"transfer_syntax": image.transfer_syntax, "frames_sha256": h}),
        "perceptual": {"algorithm": PERCEPTUAL_ALGORITHM, "hash": perceptual_hash(image)},
    }
