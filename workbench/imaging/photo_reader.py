"""Read photographs (dermoscopy) into :class:`MedicalImage`.

OpenCV decodes at full resolution; Pillow only reads the header (to check the size
before decoding) and the EXIF tags. Pixels are kept as decoded, in RGB order; the EXIF
orientation is recorded and applied for display only, so the stored array is the
camera's own pixel grid.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CorruptImageError, ImageLoadError, NotAnImageError, TruncatedFileError
from .limits import check_decoded_size
from .medical_image import MedicalImage
from .native_stderr import captured_native_stderr

# Magic numbers of the photo formats we accept.
PHOTO_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)
EXIF_ORIENTATION_TAG = 274


def sniff_photo_format(head: bytes) -> str | None:
    """The photo format named by the file's first bytes, or None."""
    for magic, name in PHOTO_SIGNATURES:
        if head.startswith(magic):
            return name
    return None


def read_photo(path: Path, *, max_bytes: int | None = None) -> MedicalImage:
    """Decode a JPEG, PNG, TIFF or BMP photo. Raises :class:`ImageLoadError` on failure."""
    data = path.read_bytes()
    fmt = sniff_photo_format(data[:16])
    if fmt is None:
        raise NotAnImageError(path, "not a JPEG, PNG, TIFF or BMP image")
    _check_complete(path, fmt, data)
    header = _read_header(path, fmt, max_bytes)
    width, height = header["width"], header["height"]

    import cv2

    flags = cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        decoded, decoder_said = _decode(data, flags, capture=fmt == "JPEG")
    except cv2.error as exc:
        raise CorruptImageError(path, f"cannot decode {fmt}: {str(exc).strip()}") from None
    notes = tuple(f"the JPEG data is damaged ({line}): libjpeg decoded what it could, "
                  "so some pixels may be made up" for line in decoder_said)
    if notes and os.environ.get(STRICT_ENV, "") not in ("", "0"):
        raise CorruptImageError(path, f"damaged JPEG data ({decoder_said[0]}); refused "
                                f"because {STRICT_ENV} is set")
    if decoded is None:
        raise CorruptImageError(path, f"cannot decode the {fmt} data (corrupt or unsupported)")
    pixels, photometric = _to_rgb_order(decoded)
    if pixels.shape[0] != height or pixels.shape[1] != width:
        # The header and the decoded data disagree: something is wrong with the file.
        raise CorruptImageError(
            path, f"header says {width}x{height} but {pixels.shape[1]}x{pixels.shape[0]} decoded"
        )
    bits = 8 * pixels.dtype.itemsize
    metadata = {"Format": fmt, "Width": width, "Height": height, "File size": len(data),
                **header["properties"]}
    return MedicalImage(
        path=Path(path),
        kind="photo",
        pixels=pixels,
        n_frames=1,
        samples_per_pixel=1 if pixels.ndim == 2 else int(pixels.shape[2]),
        photometric=photometric,
        stored_photometric=photometric,
        modality="XC",  # DICOM's term for external-camera photography (dermoscopy)
        metadata=metadata,
        transfer_syntax=fmt,
        transfer_syntax_name=fmt,
        bits_allocated=bits,
        bits_stored=bits,
        pixel_representation=0,
        orientation=header["orientation"],
        load_notes=notes,
    )


STRICT_ENV = "WORKBENCH_STRICT_DECODE"


def _decode(data: bytes, flags: int, *, capture: bool) -> tuple[Any, list[str]]:
    """cv2.imdecode, and (``capture``) what libjpeg wrote to stderr meanwhile: its
    "Corrupt JPEG data" warnings go to file descriptor 2 and nowhere else."""
    import cv2

    buf = np.frombuffer(data, dtype=np.uint8)
    if not capture:
        return cv2.imdecode(buf, flags), []
    with captured_native_stderr() as lines:
        decoded = cv2.imdecode(buf, flags)
    return decoded, [ln for ln in lines if "JPEG" in ln or "marker" in ln or "Premature" in ln]


def _check_complete(path: Path, fmt: str, data: bytes) -> None:
    """Refuse truncated files that decoders would otherwise pad silently with grey.

    libjpeg decodes a JPEG cut short and fills the rest; in a forensic tool a partial
    image must never pass for the real one.
    """
    if fmt == "JPEG":
        sos = data.rfind(b"\xff\xda")
        if sos == -1 or data.find(b"\xff\xd9", sos) == -1:
            raise TruncatedFileError(path, "the JPEG data ends before its end-of-image marker")
    elif fmt == "PNG" and b"IEND" not in data[-64:]:
        raise TruncatedFileError(path, "the PNG data ends before its IEND chunk")
    elif fmt == "BMP" and len(data) >= 6:
        declared = int.from_bytes(data[2:6], "little")
        if declared > len(data):
            raise TruncatedFileError(
                path, f"the BMP header declares {declared} bytes but the file has {len(data)}"
            )


def _read_header(path: Path, fmt: str, max_bytes: int | None) -> dict[str, Any]:
    """Size, mode and EXIF from the header, refusing oversized images before any pixel
    is decoded."""
    from PIL import ExifTags, Image

    old_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # we enforce our own limit (check_decoded_size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                width, height = im.size
                mode = im.mode
                bytes_per_sample = _bytes_per_sample(im, fmt, path)
                # a palette image is decoded to indices, then converted to RGB(A): both
                # are in memory at once
                bands = {"P": 1 + 3, "PA": 2 + 4}.get(im.mode, len(im.getbands()))
                check_decoded_size(path, width * height * bands * bytes_per_sample,
                                   max_bytes, f"{width}x{height} {im.mode}")
                exif = _exif_without_decoding(im)
                info = dict(im.info)
    except ImageLoadError:
        raise
    except Exception as exc:
        raise CorruptImageError(path, f"unreadable {fmt} header: {exc}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit
    properties: dict[str, Any] = {"Mode": mode}
    if "dpi" in info:
        properties["DPI"] = tuple(round(float(v), 2) for v in info["dpi"])
    if info.get("icc_profile"):
        properties["ICC profile"] = f"{len(info['icc_profile'])} bytes"
    orientation = 1
    for tag, value in exif.items():
        name = ExifTags.TAGS.get(tag, f"Tag 0x{tag:04X}")
        properties[f"EXIF {name}"] = _printable(value)
        if tag == EXIF_ORIENTATION_TAG:
            try:
                orientation = int(value) if 1 <= int(value) <= 8 else 1
            except (TypeError, ValueError):
                orientation = 1
    properties["Orientation (EXIF)"] = orientation
    return {"width": width, "height": height, "orientation": orientation,
            "properties": properties}


def _bytes_per_sample(im: Any, fmt: str, path: Path) -> int:
    """Bytes per decoded sample as OpenCV will produce them. Pillow reports 16-bit RGB
    PNG/TIFF as mode 'RGB', so the bit depth is read from the header itself."""
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        return 2 if im.mode.startswith("I;16") else 4
    if fmt == "PNG":
        with path.open("rb") as fh:
            ihdr = fh.read(25)
        return 2 if len(ihdr) == 25 and ihdr[24] == 16 else 1
    if fmt == "TIFF":
        bits = im.tag_v2.get(258, (8,))  # BitsPerSample
        bits = max(bits) if isinstance(bits, tuple | list) else int(bits)
        return max(1, (int(bits) + 7) // 8)
    return 1


def _exif_without_decoding(im: Any) -> Any:
    """EXIF tags without decoding pixels: Pillow's PNG getexif() loads the whole image,
    so for PNG the eXIf chunk is parsed from the header info instead."""
    from PIL import Image

    if im.format == "PNG":
        exif = Image.Exif()
        raw = im.info.get("exif")
        if raw:
            exif.load(raw)
        return exif
    return im.getexif()


def _printable(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, int | float | str):
        return value
    return str(value)


def _to_rgb_order(decoded: np.ndarray) -> tuple[np.ndarray, str]:
    import cv2

    if decoded.ndim == 2:
        return decoded, "MONOCHROME2"
    channels = decoded.shape[2]
    if channels == 1:
        return decoded[:, :, 0], "MONOCHROME2"
    if channels == 3:
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), "RGB"
    if channels == 4:
        return cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGBA), "RGBA"
    raise ValueError(f"unexpected channel count {channels}")
