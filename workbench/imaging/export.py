"""Write adversarial or derived images as *new* files; originals are never touched.

DICOM exports get a new SOP Instance UID and Series Instance UID, Image Type
DERIVED\\SECONDARY, a Derivation Description saying they are adversarial research images
(which plugin, which parameters) and a reference to the source image; pixels are stored
uncompressed (Explicit VR Little Endian) in the original's stored dtype.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from .medical_image import MedicalImage
from .model_input import ValueMapping, channels_last

ADVERSARIAL_SERIES_DESCRIPTION = "ADVERSARIAL RESEARCH IMAGE - NOT FOR CLINICAL USE"


def save_derived(original: MedicalImage, x01: np.ndarray, mapping: ValueMapping,
                 out_path: str | Path, description: str, frame: int = 0) -> Path:
    """Save ``x01`` (C x H x W in [0, 1], the attacked ``frame``) as a new file: PNG for
    photos, DICOM for DICOM. Refuses to overwrite the original."""
    out = Path(out_path)
    if out.exists() and out.resolve() == Path(original.path).resolve():
        raise ValueError(f"{out}: refusing to overwrite the original image")
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
    pixels = np.array(original.pixels, copy=True)
    if original.is_palette or (mapping.channels == 3 and original.samples_per_pixel < 3):
        pixels = None  # the attacked rendering replaces the image: RGB, one frame
    if pixels is not None:
        pixels = pixels.astype(pixels.dtype.newbyteorder("="))
        if original.n_frames > 1:
            pixels[frame] = stored
        else:
            pixels = stored
    else:
        pixels = stored
        if "NumberOfFrames" in ds:
            ds.NumberOfFrames = 1
        for kw in ("RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
                   "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
                   "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData"):
            if kw in ds:
                delattr(ds, kw)
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
    if pixels.ndim >= 3 and pixels.shape[-1] == 3:
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"  # decoded YBR was converted to RGB
        ds.PlanarConfiguration = 0
    source = Dataset()
    source.ReferencedSOPClassUID = ds.get("SOPClassUID", "")
    source.ReferencedSOPInstanceUID = ds.get("SOPInstanceUID", "")
    ds.SourceImageSequence = Sequence([source])
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesDescription = ADVERSARIAL_SERIES_DESCRIPTION
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = description[:1024]
    for kw in ("DigitalSignaturesSequence", "MACParametersSequence"):
        if kw in ds:
            delattr(ds, kw)  # signatures of the original do not cover this image
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds["PixelData"].VR = "OB" if ds.BitsAllocated <= 8 else "OW"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if out.suffix.lower() != ".dcm":
        out = out.with_suffix(".dcm")
    ds.save_as(out, enforce_file_format=True)
    return out


def describe_attack(plugin: str, version: str, params: dict[str, Any], tool_version: str) -> str:
    """The Derivation Description of an adversarial image."""
    settings = ", ".join(f"{k}={v}" for k, v in params.items())
    return (f"Adversarial research image, not for clinical use: made by workbench "
            f"{tool_version} attack plugin {plugin} v{version} ({settings})")
