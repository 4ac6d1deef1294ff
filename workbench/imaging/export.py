"""Write adversarial or derived images as *new* files; originals are never touched.

DICOM exports keep their source's IOD and stay valid for it (checked with dicom3tools'
dciodvfy on CT, MR, Enhanced MR, CR and US): a new SOP Instance UID and Series Instance
UID, Image Type DERIVED with the source's other values kept (value 3, e.g. AXIAL, is
required for CT and MR), a Derivation Description saying they are adversarial research
images (which plugin, which parameters) and a reference to the source image. Enhanced
(multi-frame functional group) objects carry that reference where their IOD wants it, in
a Derivation Image functional group, with Frame Type DERIVED and without the MR Pulse
Sequence attributes that only an ORIGINAL image may have. Pixels are stored uncompressed
in Explicit VR Little Endian, whatever the source's byte order, in the pixel data element
the source used (Float Pixel Data stays float) and packed 1 bit per pixel when Bits
Allocated is 1 (a BINARY Segmentation). Every frame is kept, the attacked one replaced; a
palette colour image becomes RGB, every frame rendered through its palette.

What cannot be written faithfully is refused with an :class:`ExportError` naming the
source and why: values its Bits Stored cannot hold (a BINARY segmentation given anything
but 0 and 1 among them; a reader would mask them to other values), or a frame of another
shape than the image's. A written copy is always one the workbench's loader reads back.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from .medical_image import MedicalImage
from .model_input import ValueMapping, channels_last

ADVERSARIAL_SERIES_DESCRIPTION = "ADVERSARIAL RESEARCH IMAGE - NOT FOR CLINICAL USE"
# The pixel data element a source may carry its image in, and its VR on disk.
_PIXEL_ELEMENTS = {"FloatPixelData": "OF", "DoubleFloatPixelData": "OD"}
_PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)  # Float, Double Float, Pixel Data


class ExportError(ValueError):
    """An image save_derived will not write. ``str(err)`` is "<file>: <reason>"."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"{self.path}: {reason}")


def save_derived(original: MedicalImage, x01: np.ndarray, mapping: ValueMapping,
                 out_path: str | Path, description: str, frame: int = 0) -> Path:
    """Save ``x01`` (C x H x W in [0, 1], the attacked ``frame``) as a new file: PNG for
    photos, DICOM for DICOM. Refuses to overwrite the original."""
    out = Path(out_path)
    if out.exists() and out.resolve() == Path(original.path).resolve():
        raise ExportError(out, "refusing to overwrite the original image")
    out.parent.mkdir(parents=True, exist_ok=True)
    stored = channels_last(mapping.to_stored(x01)) if x01.ndim == 3 else mapping.to_stored(x01)
    if original.kind == "photo":
        return _save_png(stored, out)
    return _save_dicom(original, stored, mapping, out, description, frame)


def _save_png(stored: np.ndarray, out: Path) -> Path:
    import cv2

    arr = stored if stored.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(stored),
                                                       cv2.COLOR_RGB2BGR)
    if out.suffix.lower() != ".png":
        out = out.with_suffix(".png")  # lossless: a JPEG would re-quantise the perturbation
    if not cv2.imwrite(str(out), arr):
        raise OSError(f"{out}: cannot write PNG")
    return out


def _save_dicom(original: MedicalImage, stored: np.ndarray, mapping: ValueMapping, out: Path,
                description: str, frame: int) -> Path:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = copy.deepcopy(original.metadata)
    if original.is_palette or (mapping.channels == 3 and original.samples_per_pixel < 3):
        # the attacked rendering replaces the image: RGB, the other frames rendered too
        pixels = _rendered_frames(original, stored, frame)
        for kw in ("RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
                   "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
                   "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData",
                   "SmallestImagePixelValue", "LargestImagePixelValue"):
            if kw in ds:
                delattr(ds, kw)  # they describe palette indices, not RGB
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
    else:
        _check_frame(original, stored, frame)
        pixels = np.array(original.pixels, copy=True)
        pixels = pixels.astype(pixels.dtype.newbyteorder("="))
        if original.n_frames > 1:
            pixels[frame] = stored
        else:
            pixels = stored
    _check_storable(original, ds, stored)
    if pixels.ndim >= 3 and pixels.shape[-1] == 3:
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"  # decoded YBR was converted to RGB
        ds.PlanarConfiguration = 0
    source = Dataset()
    source.ReferencedSOPClassUID = ds.get("SOPClassUID", "")
    source.ReferencedSOPInstanceUID = ds.get("SOPInstanceUID", "")
    if _is_enhanced(ds):
        description = _mark_enhanced_derived(ds, source, description)
    else:
        ds.SourceImageSequence = Sequence([source])
        kept = list(_values(ds.get("ImageType")))[2:]
        ds.ImageType = ["DERIVED", "SECONDARY", *kept]
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesDescription = ADVERSARIAL_SERIES_DESCRIPTION
    ds.DerivationDescription = description[:1024]
    for kw in ("DigitalSignaturesSequence", "MACParametersSequence"):
        if kw in ds:
            delattr(ds, kw)  # signatures of the original do not cover this image
    _set_pixel_data(ds, pixels)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    _as_little_endian(ds)
    _resolve_vrs(ds)
    if out.suffix.lower() != ".dcm":
        out = out.with_suffix(".dcm")
    ds.save_as(out, enforce_file_format=True)
    return out


def _rendered_frames(original: MedicalImage, stored: np.ndarray, frame: int) -> np.ndarray:
    """Every frame as the 8-bit RGB the attack saw, ``stored`` as the attacked one."""
    from .display import render

    want = (original.rows, original.columns, 3)
    if stored.shape != want or stored.dtype != np.uint8:
        raise ExportError(original.path, f"the attacked frame is {stored.dtype} "
                          f"{stored.shape}, not the image's RGB rendering {want}: not written")
    if original.n_frames == 1:
        return stored
    return np.stack([stored if i == frame else render(original, i, oriented=False)
                     for i in range(original.n_frames)])


def _check_frame(original: MedicalImage, stored: np.ndarray, frame: int) -> None:
    """The attacked frame must be a frame of the image: written as one of another size,
    the header would describe pixels the file does not have."""
    want = original.frame(frame).shape
    if stored.shape != want:
        raise ExportError(original.path, f"the attacked frame has shape {stored.shape}, "
                          f"but frame {frame} of the image has {want}: not written")


def _check_storable(original: MedicalImage, ds: Any, stored: np.ndarray) -> None:
    """The attacked values must fit the image's Bits Stored (and sign): a reader masks
    the bits above them away (PS3.5 8.1.1), so the copy would show other values than the
    ones saved. A 1-bit BINARY segmentation holds nothing but 0 and 1."""
    if stored.dtype.kind not in "ui" or stored.size == 0:
        return
    allocated = int(ds.get("BitsAllocated", 8) or 8)
    bits = int(ds.get("BitsStored", allocated) or allocated)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    low, high = int(stored.min()), int(stored.max())
    if low >= lo and high <= hi:
        return
    n = int(np.count_nonzero((stored < lo) | (stored > hi)))
    what = (f"a {ds.get('SegmentationType', '') or '1-bit'} segmentation with Bits "
            "Allocated 1 (values 0 and 1 only)" if allocated == 1
            else f"{bits}-bit {'signed' if signed else 'unsigned'} stored values ({lo}..{hi})")
    raise ExportError(original.path, f"cannot be exported faithfully: {n} attacked pixel "
                      f"value(s) in {low}..{high} do not fit {what}; a reader would see "
                      "other values than the ones saved, so no file was written")


def _set_pixel_data(ds: Any, pixels: np.ndarray) -> None:
    """The pixels in the element the source used (Pixel Data, Float Pixel Data or Double
    Float Pixel Data), little endian; packed 1 bit per pixel, frames contiguous (PS3.5
    8.1.1), when Bits Allocated is 1. Min/max attributes are made to say the truth."""
    from pydicom.pixels import pack_bits

    keyword = next((k for k in _PIXEL_ELEMENTS if k in ds), "PixelData")
    for other in ("PixelData", *_PIXEL_ELEMENTS):
        if other != keyword and other in ds:
            delattr(ds, other)
    pixels = np.ascontiguousarray(pixels)
    if keyword == "PixelData" and int(ds.BitsAllocated) == 1:
        data = pack_bits(pixels.astype(np.uint8).ravel(), pad=True)
    else:
        data = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    setattr(ds, keyword, data)
    ds[keyword].VR = _PIXEL_ELEMENTS.get(keyword) or ("OB" if ds.BitsAllocated <= 8 else "OW")
    if pixels.dtype.kind in "ui" and pixels.size:
        for kw, value in (("SmallestImagePixelValue", pixels.min()),
                          ("LargestImagePixelValue", pixels.max())):
            if kw in ds:
                setattr(ds, kw, int(value))


def _resolve_vrs(ds: Any) -> None:
    """Elements read without their VR (a file that says explicit VR but is encoded
    implicit: pydicom reads it and keeps VR None) get it from the dictionary; the writer
    cannot write an explicit VR it does not know."""
    for _ in ds.iterall():  # converts each raw element, resolving its VR
        pass


def _values(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    return [str(v) for v in value] if not isinstance(value, str) else [value]


# MR Pulse Sequence Module attributes that are conditional on Image Type value 1 ORIGINAL
# or MIXED (PS3.3 C.8.13.4); dciodvfy rejects them on a DERIVED Enhanced MR image.
_ORIGINAL_ONLY = (
    "PulseSequenceName", "MRAcquisitionType", "EchoPulseSequence", "MultipleSpinEcho",
    "MultiPlanarExcitation", "PhaseContrast", "VelocityEncodingAcquisitionSequence",
    "TimeOfFlightContrast", "Spoiling", "SteadyStatePulseSequence", "EchoPlanarPulseSequence",
    "TaggingDelay", "TagAngleFirstAxis", "MagnetizationTransfer", "T2Preparation",
    "BloodSignalNulling", "SaturationRecovery", "SpectrallySelectedSuppression",
    "SpectrallySelectedExcitation", "SpatialPresaturation", "Tagging", "OversamplingPhase",
    "GeometryOfKSpaceTraversal", "RectilinearPhaseEncodeReordering", "SegmentedKSpaceTraversal",
    "CoverageOfKSpace", "NumberOfKSpaceTrajectories", "BulkMotionCompensationTechnique",
    "BulkMotionSignalSource",
)
# A local code (PS3.16 8.2: "99" designators are private): no standard code says
# "adversarial perturbation", and a borrowed one would say something false.
_DERIVATION_CODE = ("ADVERSARIAL", "99WORKBENCH", "Adversarial perturbation")
_PURPOSE_CODE = ("121322", "DCM", "Source image for image processing operation")


def _code(value: str, scheme: str, meaning: str) -> Any:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _is_enhanced(ds: Any) -> bool:
    """An Enhanced (functional group) IOD, by its groups or its SOP Class."""
    if "SharedFunctionalGroupsSequence" in ds or "PerFrameFunctionalGroupsSequence" in ds:
        return True
    sop = ds.get("SOPClassUID")
    return sop is not None and "Enhanced" in getattr(sop, "name", "")


def _mark_enhanced_derived(ds: Any, source: Any, description: str) -> str:
    """An Enhanced object's derivation as its IOD wants it: Image Type (as many values as
    the source had: four for Enhanced CT/MR, two for a Segmentation; value 2 PRIMARY or
    MIXED as the source had), each Frame Type DERIVED, the source referenced from a
    Derivation Image functional group, no top-level Source Image Sequence."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    values = _values(ds.get("ImageType"))
    count = len(values) if len(values) >= 2 else 4
    values += ["NONE"] * 4
    ds.ImageType = ["DERIVED", values[1] if values[1] in ("PRIMARY", "MIXED") else "PRIMARY",
                    *values[2:count]]
    for groups in (ds.get("SharedFunctionalGroupsSequence") or [],
                   ds.get("PerFrameFunctionalGroupsSequence") or []):
        for group in groups:
            for elem in group:
                if elem.VR == "SQ" and elem.keyword.endswith("FrameTypeSequence"):
                    for item in elem.value:
                        if "FrameType" in item:
                            item.FrameType = ["DERIVED", *_values(item.FrameType)[1:]]
            if "DerivationImageSequence" in group:
                del group.DerivationImageSequence  # the source's own derivation
    for kw in _ORIGINAL_ONLY:
        if kw in ds:
            delattr(ds, kw)
    if "SourceImageSequence" in ds:
        del ds.SourceImageSequence
    source.PurposeOfReferenceCodeSequence = Sequence([_code(*_PURPOSE_CODE)])
    derivation = Dataset()
    derivation.DerivationDescription = description[:1024]
    derivation.DerivationCodeSequence = Sequence([_code(*_DERIVATION_CODE)])
    derivation.SourceImageSequence = Sequence([source])
    # The reference goes in a Derivation Image functional group, with the instance-level
    # Source Image Evidence Sequence the IOD then requires (PS3.3 C.8.13.1). A source
    # without functional groups (a stripped test object) is not made to look as if it had
    # them: its Derivation Description names the source instead.
    if ds.get("SharedFunctionalGroupsSequence"):
        ds.SharedFunctionalGroupsSequence[0].DerivationImageSequence = Sequence([derivation])
        instance = Dataset()
        instance.ReferencedSOPClassUID = source.ReferencedSOPClassUID
        instance.ReferencedSOPInstanceUID = source.ReferencedSOPInstanceUID
        series = Dataset()
        series.SeriesInstanceUID = ds.get("SeriesInstanceUID", "")
        series.ReferencedSOPSequence = Sequence([instance])
        evidence = Dataset()
        evidence.StudyInstanceUID = ds.get("StudyInstanceUID", "")
        evidence.ReferencedSeriesSequence = Sequence([series])
        ds.SourceImageEvidenceSequence = Sequence([evidence])
    else:
        description = f"{description}; source SOP Instance {source.ReferencedSOPInstanceUID}"
    return description


def _as_little_endian(ds: Any) -> None:
    """A big-endian source written as little endian: every element converted to its value
    first (pydicom keeps stored bytes otherwise), binary words swapped, then the dataset
    told its encoding is little endian (pydicom refuses to convert in save_as)."""
    if getattr(ds, "original_encoding", (False, True))[1] is not False:
        return
    from .dicom_vr import swapped

    for elem in ds.iterall():  # converts each element from its stored bytes
        # pydicom converts numbers but keeps O* values as the stored (big-endian) bytes
        if elem.VR in ("OW", "OL", "OF", "OD", "OV") and isinstance(elem.value, bytes) \
                and elem.tag not in _PIXEL_TAGS:  # written little endian already
            elem.value = swapped(elem.value, elem.VR, False, True)
    ds.set_original_encoding(False, True, ds.get("SpecificCharacterSet") or None)


def describe_attack(plugin: str, version: str, params: dict[str, Any], tool_version: str) -> str:
    """The Derivation Description of an adversarial image."""
    settings = ", ".join(f"{k}={v}" for k, v in params.items())
    return (f"Adversarial research image, not for clinical use: made by workbench "
            f"{tool_version} attack plugin {plugin} v{version} ({settings})")
