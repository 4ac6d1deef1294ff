"""Read DICOM files into :class:`MedicalImage`, with typed errors for every failure.

Decoding goes through pydicom's pixel decoders (with the pylibjpeg plugins for JPEG,
JPEG-LS, JPEG 2000 and RLE). The decoder options are pinned here because the
fingerprint of an image (provenance) depends on them: pydicom 3 converts YBR to RGB by
default, and we keep that default and record the photometric interpretation the
decoder reports, beside the one written in the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .deflate_guard import check_deflated_dataset
from .errors import (
    CorruptImageError,
    FileUnreadableError,
    ImageLoadError,
    ImageTooLargeError,
    NoPixelDataError,
    NotAnImageError,
    TruncatedFileError,
    UnsupportedEncodingError,
)
from .limits import check_decoded_size
from .medical_image import MedicalImage, ValueTransform, Window
from .native_stderr import captured_native_stderr
from .stored_dataset import stored_view
from .warning_notes import unique_texts

ProgressFn = Callable[[float, str], None]
CancelledFn = Callable[[], bool]

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# The fixed options every decode uses (see module docstring).
DECODE_OPTIONS: dict[str, Any] = {"as_rgb": True}


class LoadCancelled(ImageLoadError):
    """The user cancelled a decode in progress."""


# Exceptions that must never be turned into a load error.
_NOT_OURS = (KeyboardInterrupt, SystemExit, GeneratorExit)


def read_dicom_header(path: Path) -> tuple[Any, list[str]]:
    """Read the dataset (pixel data bytes included, not decoded) and the warnings pydicom
    gave while parsing it, or raise ImageLoadError."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    check_deflated_dataset(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ds = pydicom.dcmread(path)
            except InvalidDicomError:
                # No preamble/"DICM": old ACR-NEMA style or a raw dataset. Only accept it if
                # what we read looks like a dataset rather than bytes that parsed by chance.
                ds = pydicom.dcmread(path, force=True)
                if not _looks_like_dataset(ds):
                    raise NotAnImageError(
                        path, "not a DICOM file or a supported photo (JPEG, PNG, TIFF, BMP)"
                    ) from None
    except ImageLoadError:
        raise
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise FileUnreadableError(path, exc.strerror or str(exc)) from None
    except (EOFError, OSError) as exc:
        raise TruncatedFileError(path, f"the DICOM header ends early ({exc})") from None
    except _NOT_OURS:
        raise
    except BaseException as exc:  # pydicom raises many types for malformed headers
        raise CorruptImageError(path, f"unreadable DICOM header: {_one_line(exc)}") from None
    return ds, unique_texts(caught)


def _looks_like_dataset(ds: Any) -> bool:
    try:
        tags = list(ds.keys())
    except Exception:
        return False
    if not tags:
        return False
    known = sum(1 for t in tags if t.group in (0x0008, 0x0010, 0x0018, 0x0020, 0x0028, 0x7FE0))
    # Random bytes give a handful of garbage tags in odd groups; a real dataset is
    # dominated by the standard groups and carries its SOP class or an image.
    return known >= max(3, len(tags) // 2) and (
        "SOPClassUID" in ds or any(k in ds for k in PIXEL_KEYWORDS)
    )


def _one_line(exc: BaseException) -> str:
    """The exception as one line: decoder plugins report one reason per line."""
    text = " ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
    if isinstance(exc, AttributeError) and "has no attribute" in text:
        text = text.rsplit("attribute", 1)[-1].strip(" '") + " is missing"
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_dicom(
    path: Path,
    *,
    max_bytes: int | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> MedicalImage:
    """Decode a DICOM file. Raises :class:`ImageLoadError` (or a subclass) on any failure."""
    ds, notes = read_dicom_header(path)
    stored = stored_view(ds)  # first: every attribute read below converts its element
    if not any(k in ds for k in PIXEL_KEYWORDS):
        raise _missing_pixels_error(path, ds, notes)
    present = [k for k in PIXEL_KEYWORDS if k in ds]
    if all(not (ds.get_item(k).value if ds.get_item(k) is not None else b"") for k in present):
        raise TruncatedFileError(path, f"{present[0]} is empty (0 bytes): the image's "
                                 "pixels are missing")

    tsuid, ts_inferred = _transfer_syntax(ds)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid values are reported by the error below
            rows, cols = int(ds.Rows), int(ds.Columns)
            frames = int(ds.get("NumberOfFrames", 1) or 1)
            spp = int(ds.get("SamplesPerPixel", 1) or 1)
            bits_allocated = int(ds.BitsAllocated)
    except Exception as exc:
        raise CorruptImageError(path, f"image pixel module incomplete: {_one_line(exc)}") from None
    if rows <= 0 or cols <= 0 or frames <= 0:
        raise CorruptImageError(path, f"invalid image size {cols}x{rows}, {frames} frame(s)")
    if str(ds.get("PhotometricInterpretation", "")).strip() == "PALETTE COLOR" and not all(
            f"{c}PaletteColorLookupTableDescriptor" in ds for c in ("Red", "Green", "Blue")):
        # its stored values are indices into a table the file does not have: no colour
        # (and no picture) could honestly be shown
        raise CorruptImageError(path, "PALETTE COLOR image without its Palette Color Lookup "
                                "Table: its colours are not in the file")
    check_decoded_size(path, rows * cols * frames * spp * max(1, (bits_allocated + 7) // 8),
                       max_bytes, f"{cols}x{rows}x{frames} frames")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # kept as load notes, not shown as stray warnings
        pixels, decoded_photometric = _decode(path, ds, tsuid, frames, progress, cancelled)
        _check_shape(path, pixels, frames, rows, cols, spp)
        stored_photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
        pixels_spp = 1 if pixels.ndim == (3 if frames > 1 else 2) else int(pixels.shape[-1])
        image = MedicalImage(
            path=Path(path),
            kind="dicom",
            pixels=pixels,
            n_frames=frames,
            samples_per_pixel=pixels_spp,
            photometric=decoded_photometric or stored_photometric,
            stored_photometric=stored_photometric,
            modality=str(ds.get("Modality", "OT") or "OT"),
            metadata=ds,
            stored_metadata=stored,
            transfer_syntax=str(tsuid),
            transfer_syntax_name=tsuid.name
            + (" (inferred: no Transfer Syntax UID)" if ts_inferred else ""),
            bits_allocated=bits_allocated,
            bits_stored=int(ds.get("BitsStored", bits_allocated) or bits_allocated),
            pixel_representation=int(ds.get("PixelRepresentation", 0) or 0),
            value_transforms=_value_transforms(ds, frames),
            file_windows=_file_windows(ds, frames),
            voi_lut=_lut(ds, "VOILUTSequence"),
        )
    notes += [m for m in unique_texts(caught) if m not in notes]
    if ts_inferred:
        notes.insert(0, f"no Transfer Syntax UID in the file meta; read as {tsuid.name}")
    image.load_notes = tuple(notes)
    return image


def _check_shape(path: Path, pixels: Any, frames: int, rows: int, cols: int,
                 spp: int) -> None:
    """The decoded array must be what the header declares: a decoder that reshapes to
    make the bytes fit (Columns 1, NumberOfFrames 0) would otherwise hand on a picture
    of another geometry under the header's name."""
    want = ((frames,) if frames > 1 else ()) + (rows, cols) + ((spp,) if spp > 1 else ())
    if tuple(pixels.shape) != want:
        raise CorruptImageError(
            path, f"the pixel data decodes to shape {tuple(pixels.shape)}, but the header "
            f"declares {cols}x{rows}, {frames} frame(s), {spp} sample(s) per pixel")


def _missing_pixels_error(path: Path, ds: Any, notes: list[str]) -> ImageLoadError:
    """No pixel data: a cut-short file, or an object that never had an image."""
    sop = _sop_class_name(ds)
    if any("end of file" in n.lower() for n in notes):
        return TruncatedFileError(
            path, f"the file ends before its pixel data is complete ({notes[0]})")
    if "Image Storage" in sop:
        return TruncatedFileError(
            path, f"no pixel data although a {sop} object carries an image: the file is "
            "probably cut short")
    return NoPixelDataError(path, f"no pixel data in this DICOM object ({sop})")


def _sop_class_name(ds: Any) -> str:
    uid = ds.get("SOPClassUID")
    if uid is None:
        return "no SOP Class UID"
    return getattr(uid, "name", str(uid))


def _transfer_syntax(ds: Any) -> tuple[Any, bool]:
    """The transfer syntax, inferring it from how the dataset was read when the meta lacks it.

    Files without a Transfer Syntax UID in their meta header exist in the wild (the
    orthanc test matrix has one). We set it on our in-memory copy only; the file on
    disk is never touched.
    """
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return UID(meta.TransferSyntaxUID), False
    implicit, little = ds.original_encoding
    if implicit in (None, True) and little in (None, True):
        uid = ImplicitVRLittleEndian
    elif little is False:
        uid = ExplicitVRBigEndian
    else:
        uid = ExplicitVRLittleEndian
    if meta is None:
        ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid
    return uid, True


def _decode(
    path: Path,
    ds: Any,
    tsuid: Any,
    frames: int,
    progress: ProgressFn | None,
    cancelled: CancelledFn | None,
) -> tuple[np.ndarray, str]:
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(tsuid)
    except Exception:
        raise UnsupportedEncodingError(
            path, f"no decoder for transfer syntax {tsuid.name} ({tsuid})"
        ) from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "a decoding plugin"
        raise UnsupportedEncodingError(
            path, f"cannot decode {tsuid.name}: install {missing}"
        ) from None

    try:
        with captured_native_stderr() as decoder_said:
            if frames == 1:
                if progress:
                    progress(0.0, f"decoding {tsuid.name}")
                arr, meta = decoder.as_array(ds, **DECODE_OPTIONS)
            else:
                arr, meta = _decode_frames(decoder, ds, frames, progress, cancelled)
    except (ImageLoadError, *_NOT_OURS):
        raise
    except MemoryError:
        raise ImageTooLargeError(path, "not enough memory to decode the pixel data") from None
    except _MissingFrames as exc:
        raise TruncatedFileError(path, f"frames are missing: {exc}") from None
    except BaseException as exc:  # Rust decoders panic with a BaseException (pyo3)
        raise _classify_decode_error(path, ds, tsuid, exc) from None
    if progress:
        progress(1.0, "decoded")
    for line in decoder_said:  # a C decoder's complaint, on the file it is about
        warnings.warn(f"the {tsuid.name} decoder reported: {line}", stacklevel=2)
    return arr, str(meta.get("photometric_interpretation", ""))


def _decode_frames(
    decoder: Any,
    ds: Any,
    frames: int,
    progress: ProgressFn | None,
    cancelled: CancelledFn | None,
) -> tuple[np.ndarray, dict]:
    """Decode frame by frame into one preallocated array, reporting progress and honouring
    cancel (a 120-frame JPEG cine takes seconds)."""
    out: np.ndarray | None = None
    meta: dict = {}
    for i, (frame, frame_meta) in enumerate(decoder.iter_array(ds, **DECODE_OPTIONS)):
        meta = frame_meta
        if cancelled and cancelled():
            raise LoadCancelled(ds.filename or "<dataset>", "cancelled by the user")
        if out is None:
            out = np.empty((frames, *frame.shape), dtype=frame.dtype)
        out[i] = frame
        if progress:
            progress((i + 1) / frames, f"decoding frame {i + 1}/{frames}")
    decoded = 0 if out is None else i + 1
    if decoded < frames:
        # np.empty leaves the frames the file does not hold as whatever memory held
        # before: shown or hashed, they would be a picture nobody captured
        raise _MissingFrames(decoded, frames)
    return out, meta


class _MissingFrames(ValueError):
    def __init__(self, decoded: int, declared: int) -> None:
        super().__init__(f"the header declares {declared} frames (NumberOfFrames) but the "
                         f"pixel data holds {decoded}")


def _classify_decode_error(path: Path, ds: Any, tsuid: Any,
                           exc: BaseException) -> ImageLoadError:
    text = str(exc)
    lowered = text.lower()
    bits = int(ds.get("BitsStored", 8) or 8)
    if tsuid == "1.2.840.10008.1.2.4.51" and bits > 8:
        return UnsupportedEncodingError(
            path,
            f"{bits}-bit JPEG Extended (Process 2 and 4) needs the GDCM decoder "
            "(pip install python-gdcm)",
        )
    if any(s in lowered for s in ("less than expected", "doesn't match the expected",
                                  "does not match the expected", "insufficient data",
                                  "not enough data", "end of", "truncat", "too short")):
        return TruncatedFileError(path, f"the pixel data is incomplete ({_one_line(exc)})")
    return CorruptImageError(path, f"cannot decode {tsuid.name} pixel data: {_one_line(exc)}")


# --- value transforms and windows (top level, or Enhanced multi-frame functional groups) ---
def _functional_group_item(ds: Any, frame: int, sequence: str) -> Any | None:
    for container, index in (("PerFrameFunctionalGroupsSequence", frame),
                             ("SharedFunctionalGroupsSequence", 0)):
        groups = ds.get(container)
        if groups and len(groups) > index:
            seq = groups[index].get(sequence)
            if seq:
                return seq[0]
    return None


def _has_per_frame(ds: Any, sequence: str) -> bool:
    groups = ds.get("PerFrameFunctionalGroupsSequence")
    return bool(groups) and sequence in groups[0]


def _value_transform_from(item: Any, modality: str) -> ValueTransform:
    slope = float(item.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(item.get("RescaleIntercept", 0.0) or 0.0)
    unit = str(item.get("RescaleType", "") or "")
    if modality == "CT" and unit in ("", "HU"):
        unit = "HU"
    return ValueTransform(slope=slope, intercept=intercept, unit=unit)


def _lut(ds: Any, sequence: str) -> ValueTransform | None:
    """The first item of a Modality or VOI LUT Sequence (PS3.3 C.11.1 / C.11.2) as a
    lookup transform; None when absent or unreadable."""
    seq = ds.get(sequence)
    if not seq:
        return None
    item = seq[0]
    try:
        n, first, bits = (int(v) for v in item.LUTDescriptor)
        raw = item.LUTData
        if isinstance(raw, bytes):  # OW data pydicom leaves as bytes
            raw = np.frombuffer(raw, dtype="<u2" if bits > 8 else np.uint8)
        data = np.asarray(raw, dtype=np.float64).ravel()[: n or 65536]
    except Exception:
        return None
    if data.size == 0:
        return None
    unit = str(item.get("ModalityLUTType", "") or "")
    return ValueTransform(unit="" if unit == "US" else unit, lut_first=first, lut=data)


def _modality_lut(ds: Any) -> ValueTransform | None:
    return _lut(ds, "ModalityLUTSequence")


def _value_transforms(ds: Any, frames: int) -> tuple[ValueTransform, ...]:
    modality = str(ds.get("Modality", ""))
    if "RescaleSlope" not in ds and (lut := _modality_lut(ds)) is not None:
        return (lut,)
    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        return (_value_transform_from(ds, modality),)
    seq = "PixelValueTransformationSequence"
    if _has_per_frame(ds, seq):
        return tuple(
            _value_transform_from(_functional_group_item(ds, i, seq) or ds, modality)
            for i in range(frames)
        )
    item = _functional_group_item(ds, 0, seq)
    return (_value_transform_from(item if item is not None else ds, modality),)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def _windows_from(item: Any) -> tuple[Window, ...]:
    centers = _as_list(item.get("WindowCenter"))
    widths = _as_list(item.get("WindowWidth"))
    names = _as_list(item.get("WindowCenterWidthExplanation"))
    function = str(item.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
    out = []
    for i, (c, w) in enumerate(zip(centers, widths, strict=False)):
        try:
            c, w = float(c), float(w)
        except (TypeError, ValueError):
            continue
        if w <= 0:
            continue
        name = str(names[i]) if i < len(names) else ""
        out.append(Window(center=c, width=w, name=name or "from file", function=function))
    return tuple(out)


def _file_windows(ds: Any, frames: int) -> tuple[tuple[Window, ...], ...]:
    if "WindowCenter" in ds:
        return (_windows_from(ds),)
    seq = "FrameVOILUTSequence"
    if _has_per_frame(ds, seq):
        return tuple(
            _windows_from(_functional_group_item(ds, i, seq) or ds) for i in range(frames)
        )
    item = _functional_group_item(ds, 0, seq)
    return (_windows_from(item) if item is not None else (),)
