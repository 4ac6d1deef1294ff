"""Evidence back as DICOM: what a suspect image changed, in objects a PACS keeps.

From a signed ORIGINAL instance and the SUSPECT instance a classifier saw (same grid),
:func:`write_evidence` writes three new objects of the SUSPECT's patient and study:

- ``perturbation_pm.dcm``, a Parametric Map (float32): SUSPECT - ORIGINAL per pixel in the
  loader's output units (the modality transform applied: HU for CT). Colour images have
  no signed difference of one value, so there it is the largest |difference| over the
  channels, and the Content Description says so.
- ``changed_seg.dcm``, a binary Segmentation with one segment: the pixels that differ.
- ``report_pdf.dcm`` (when PDF bytes are given), the case report as Encapsulated PDF
  (built in workbench.report.dicom_pdf).

Each gets new SOP Instance and Series UIDs, references SUSPECT as its source (and
ORIGINAL too, where the IOD and the study allow), and says that the workbench made it.
The source files are only read. Sending the objects to a PACS (C-STORE) is
:func:`store_instances`. Nothing here imports Qt: the PDF is made by the caller.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .dicom_pdf import MANUFACTURER, encapsulated_pdf, pdf_bytes

__all__ = ["EvidenceError", "EvidencePair", "Perturbation", "changed_segmentation",
           "encapsulated_pdf", "evidence_source", "load_pair", "parametric_map", "pdf_bytes",
           "perturbation", "store_instances", "write_evidence"]

PM_NAME, SEG_NAME, PDF_NAME = "perturbation_pm.dcm", "changed_seg.dcm", "report_pdf.dcm"
# Series numbers of the evidence series: high, so that they sort after the acquisition's
# own series in a viewer and are easy to tell apart (IS allows up to 12 digits).
PM_SERIES, SEG_SERIES, PDF_SERIES = 9901, 9902, 9903
# The software has no serial number; highdicom requires a value (General Equipment is
# written with it), and an honest "none" is better than an invented one.
DEVICE_SERIAL = "none"
_SUCCESS_CATEGORIES = ("Success", "Warning")  # a C-STORE warning still stored the object


class EvidenceError(Exception):
    """An input the evidence cannot be made from. ``str(err)`` names the file."""


@dataclass(frozen=True)
class EvidencePair:
    """The two loaded images and their headers (pydicom datasets without pixel data)."""

    original: Any  # MedicalImage
    suspect: Any  # MedicalImage
    original_ds: Any
    suspect_ds: Any


@dataclass(frozen=True)
class Perturbation:
    """SUSPECT against ORIGINAL, frame by frame: (frames, rows, cols) arrays."""

    values: np.ndarray  # float32: suspect - original, or max |difference| for colour
    changed: np.ndarray  # bool: the pixels whose stored or output value differs
    signed: bool  # False for colour (a magnitude, never negative)
    unit: tuple[str, str, str]  # UCUM code value, scheme, meaning
    unit_name: str  # in words: the loader's unit ("HU"), "stored values", ...

    @property
    def changed_pixels(self) -> int:
        return int(self.changed.sum())


@dataclass
class EvidenceResult:
    files: list[Path]
    changed_pixels: int
    notes: list[str] = field(default_factory=list)


# --- loading -----------------------------------------------------------------------------
def load_pair(original: str | os.PathLike[str], suspect: str | os.PathLike[str]
              ) -> EvidencePair:
    """Load both instances with the project's reader and check that they can be compared.
    Raises ImageLoadError (unreadable) or EvidenceError (a photo, different grids)."""
    from ..imaging.loader import load_image

    images = []
    for path in (original, suspect):
        image = load_image(path)
        if image.kind != "dicom":
            raise EvidenceError(f"evidence as DICOM needs DICOM instances; {path} is a photo")
        images.append(image)
    a, b = images
    if _grid(a) != _grid(b):
        raise EvidenceError(f"{suspect}: {_describe_grid(b)}, but the original {original} is "
                            f"{_describe_grid(a)}; evidence needs the same pixel grid")
    return EvidencePair(a, b, _header(a.path), _header(b.path))


def _grid(image: Any) -> tuple[int, int, int, bool]:
    # a palette image is compared through its palette, as RGB: the workbench's own
    # adversarial export of one is the RGB rendering the classifier saw
    return image.rows, image.columns, image.n_frames, _is_colour(image)


def _is_colour(image: Any) -> bool:
    return bool(image.is_color or image.is_palette)


def _describe_grid(image: Any) -> str:
    colour = "colour" if _is_colour(image) else "greyscale"
    return f"{image.columns}x{image.rows}, {image.n_frames} frame(s), {colour}"


def _header(path: Path) -> Any:
    """The instance's attributes without its pixel data: a dataset of our own that
    highdicom and the PDF builder may read (and we may copy) without touching the file.
    The loader has already read this file, so a read error here is not expected."""
    import pydicom

    return pydicom.dcmread(path, stop_before_pixels=True, force=True)


# --- the difference ----------------------------------------------------------------------
def perturbation(original: Any, suspect: Any) -> Perturbation:
    """SUSPECT - ORIGINAL per pixel (the difference functions of workbench.analysis).

    Greyscale values are compared after each file's own modality transform, so a change
    of Rescale Slope/Intercept shows as well as a change of stored values; the result is
    in the loader's output units. Colour (and palette, through its palette) is compared
    as stored RGB, and the map is the largest |difference| over the channels."""
    from ..analysis.difference import abs_difference, signed_difference

    colour = _is_colour(original)
    values, changed = [], []
    for i in range(original.n_frames):
        a, b = _comparable(original, i), _comparable(suspect, i)
        if colour:
            values.append(abs_difference(a, b))
        else:
            values.append(signed_difference(a, b))
        changed.append(values[-1] != 0)
        stored_a, stored_b = original.frame(i), suspect.frame(i)
        if stored_a.shape == stored_b.shape and original.is_palette == suspect.is_palette:
            # a stored change that the modality LUT maps to the same output still is one
            changed[-1] |= abs_difference(stored_a, stored_b) > 0
    vt = original.value_transform(0)
    unit = "" if colour else vt.unit
    if unit:
        unit_name = unit
    elif colour or vt.is_identity:
        unit_name = "stored values"
    else:
        unit_name = "modality values"  # rescaled, with no Rescale Type to name the unit
    return Perturbation(values=np.stack(values).astype(np.float32),
                        changed=np.stack(changed), signed=not colour,
                        unit=_ucum(unit), unit_name=unit_name)


def _comparable(image: Any, frame: int) -> np.ndarray:
    if image.is_palette:
        from ..imaging.display import render

        return render(image, frame, oriented=False)
    if image.is_color:
        return image.frame(frame)[..., :3]
    return image.value_transform(frame).apply(image.frame(frame))


def _ucum(unit: str) -> tuple[str, str, str]:
    """The UCUM code of a loader unit; anything but HU is written as unit-less ("1")."""
    if unit == "HU":
        return "[hnsf'U]", "UCUM", "Hounsfield unit"
    return "1", "UCUM", "no units"


# --- the objects -------------------------------------------------------------------------
def parametric_map(p: Perturbation, suspect_ds: Any, original_ds: Any | None = None) -> Any:
    """A Parametric Map of ``p.values`` derived from SUSPECT (ORIGINAL as a further source
    when it is of the same study)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    source = evidence_source(suspect_ds)
    lo, hi = float(p.values.min()), float(p.values.max())
    unit = p.unit_name
    if p.signed:
        label, explanation = "SUSPECT-ORIG", f"suspect minus signed original ({unit})"
        description = f"suspect - original per pixel, {unit}; by workbench"
        centre, width = 0.0, max(2.0 * max(abs(lo), abs(hi)), 1.0)
    else:
        label, explanation = "MAX ABS DIFF", "max |suspect - original| over RGB channels"
        description = "max |suspect - original| over RGB channels; by workbench"
        centre, width = max(hi, 1.0) / 2.0, max(hi, 1.0)
    mapping = hd.pm.RealWorldValueMapping(
        lut_label=label, lut_explanation=explanation,
        unit=hd.sr.CodedConcept(*p.unit), value_range=(lo, hi), slope=1.0, intercept=0.0)
    pm = _highdicom(
        "Parametric Map", suspect_ds, hd.pm.ParametricMap,
        **_new_image(p.values, source, original_ds, PM_SERIES),
        contains_recognizable_visual_features=False, real_world_value_mappings=[mapping],
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=centre,
                                                          window_width=width)],
        content_label="PERTURBATION", content_description=description,
        derived_pixel_contrast="SUBTRACTION", derivation=codes.DCM.PixelByPixelSubtraction)
    # dciodvfy requires General Series Laterality (Type 2C) of a Parametric Map, which has
    # no Image or Frame Laterality to stand in for it; empty means "unknown", which it is
    # unless the suspect says otherwise.
    pm.Laterality = suspect_ds.get("Laterality", "")
    _mark(pm, "perturbation map", _derivation_note(
        f"suspect minus signed original, {unit}" if p.signed
        else f"largest |suspect - original| over the RGB channels, {unit}",
        suspect_ds, original_ds))
    return pm


def changed_segmentation(p: Perturbation, suspect_ds: Any, original_ds: Any | None = None
                         ) -> Any:
    """A binary Segmentation, one segment: the pixels ``p`` found changed."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algorithm = hd.AlgorithmIdentificationSequence(
        name="workbench", family=codes.DCM.PixelByPixelSubtraction, version=__version__,
        parameters={"changed": "|suspect - original| > 0"})
    segment = hd.seg.SegmentDescription(
        segment_number=1, segment_label="Pixels changed from the signed original",
        # no standard concept says "changed by an attack"; an image artifact in the
        # spatial sense is the closest true one (CID 7150 category, DCM 111207 type)
        segmented_property_category=codes.SCT.SpatialAndRelationalConcept,
        segmented_property_type=codes.DCM.ImageArtifacts,
        algorithm_type="AUTOMATIC", algorithm_identification=algorithm)
    segment.SegmentDescription = ("Pixels whose value in the suspect instance differs from "
                                  "the signed original (workbench)")
    seg = _highdicom(
        "Segmentation", suspect_ds, hd.seg.Segmentation,
        **_new_image(p.changed.astype(np.uint8), evidence_source(suspect_ds), original_ds,
                     SEG_SERIES),
        segmentation_type="BINARY", segment_descriptions=[segment],
        content_description="pixels changed from the signed original; by workbench",
        # every frame is kept, empty ones too: "nothing changed here" is evidence as well
        omit_empty_frames=False)
    _mark(seg, "changed pixels", _derivation_note("pixels where |suspect - original| > 0",
                                                 suspect_ds, original_ds))
    return seg


# --- the whole evidence ----------------------------------------------------------------
def write_evidence(pair: EvidencePair, out_dir: str | os.PathLike[str], *,
                   report_pdf: bytes | None = None) -> EvidenceResult:
    """Write the Parametric Map, the Segmentation and (with ``report_pdf``) the
    Encapsulated PDF into ``out_dir``. Never writes over ORIGINAL or SUSPECT."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [PM_NAME, SEG_NAME] + ([PDF_NAME] if report_pdf is not None else [])
    sources = {Path(pair.original.path).resolve(), Path(pair.suspect.path).resolve()}
    for name in names:
        if (out / name).resolve() in sources:
            raise EvidenceError(f"{out / name}: refusing to overwrite a source instance")
    p = perturbation(pair.original, pair.suspect)
    notes = []
    if not _has_patient_geometry(pair.suspect_ds):
        notes.append(f"{pair.suspect.path} has no patient geometry: the map and the "
                     "segmentation have a Frame of Reference of their own, the pixel grid")
    if why := _why_not_further(pair.original_ds, pair.suspect_ds):
        notes.append(f"{pair.original.path}: {why}, so the objects reference only the "
                     "suspect as their source (the original is named in their derivation "
                     "note)")
    # one source for both images, so that a source without geometry gives them one
    # shared Frame of Reference: the map and the segment overlay each other
    source = evidence_source(pair.suspect_ds)
    objects = [(PM_NAME, parametric_map(p, source, pair.original_ds)),
               (SEG_NAME, changed_segmentation(p, source, pair.original_ds))]
    if report_pdf is not None:
        title = f"workbench case report: {Path(pair.suspect.path).name}"
        try:
            objects.append((PDF_NAME, encapsulated_pdf(
                report_pdf, pair.suspect_ds, title=title, references=[pair.original_ds],
                series_number=PDF_SERIES)))
        except ValueError as exc:
            raise EvidenceError(str(exc)) from None
    files = []
    for name, ds in objects:
        path = out / name
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return EvidenceResult(files=files, changed_pixels=p.changed_pixels, notes=notes)


# --- sending -----------------------------------------------------------------------------
@dataclass(frozen=True)
class StoreResult:
    path: Path
    status: int | None  # None: no answer (the association went away)
    category: str  # Success, Warning, Failure, ...

    @property
    def ok(self) -> bool:
        return self.category in _SUCCESS_CATEGORIES


def store_instances(paths: Sequence[str | os.PathLike[str]], *, ae_title: str, host: str,
                    port: int, calling_ae: str = "WORKBENCH",
                    timeout: float = 30.0) -> list[StoreResult]:
    """C-STORE each file to the PACS, in one association, as it is written (Explicit VR
    Little Endian). Raises EvidenceError when no association is made."""
    import pydicom
    from pynetdicom import AE
    from pynetdicom.status import code_to_category

    datasets = [(Path(p), pydicom.dcmread(p)) for p in paths]
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    for sop_class, syntax in dict.fromkeys(
            (str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for _, ds in datasets):
        ae.add_requested_context(sop_class, [syntax])
    assoc = ae.associate(host, port, ae_title=ae_title)
    if not assoc.is_established:
        why = "refused the association" if assoc.is_rejected else "is unreachable"
        raise EvidenceError(f"PACS {ae_title}@{host}:{port} {why}")
    results = []
    try:
        for path, ds in datasets:
            status = assoc.send_c_store(ds)
            code = getattr(status, "Status", None)
            category = "No answer" if code is None else code_to_category(int(code))
            results.append(StoreResult(path, None if code is None else int(code), category))
            if code is None:
                break
    finally:
        if assoc.is_established:
            assoc.release()
    return results


# --- helpers -----------------------------------------------------------------------------
def _new_image(frames: np.ndarray, source: Any, original_ds: Any | None, series_number: int
               ) -> dict[str, Any]:
    """What the Parametric Map and the Segmentation share: their pixels (one frame as a
    2-D array), sources, new UIDs, and the workbench as the equipment."""
    from pydicom.uid import generate_uid

    return {"source_images": [source], "pixel_array": frames if len(frames) > 1 else frames[0],
            "further_source_images": _further(original_ds, source),
            "series_instance_uid": generate_uid(), "series_number": series_number,
            "sop_instance_uid": generate_uid(), "instance_number": 1,
            "manufacturer": MANUFACTURER, "manufacturer_model_name": MANUFACTURER,
            "software_versions": __version__, "device_serial_number": DEVICE_SERIAL}


def _highdicom(what: str, suspect_ds: Any, cls: Any, **kwargs: Any) -> Any:
    """``cls(**kwargs)``, with highdicom's refusals as one line naming the suspect."""
    try:
        return cls(**kwargs)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RuntimeError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        name = getattr(suspect_ds, "filename", None) or suspect_ds.get("SOPInstanceUID", "")
        raise EvidenceError(f"{name}: cannot make a {what} of this instance "
                            f"({detail[:200]})") from None


def _has_patient_geometry(ds: Any) -> bool:
    """Whether highdicom finds a patient (or slide) coordinate system in ``ds``: a Frame
    of Reference with plane position and orientation."""
    from highdicom.spatial import get_image_coordinate_system

    return get_image_coordinate_system(ds) is not None


def evidence_source(ds: Any) -> Any:
    """``ds`` as the source of the evidence images.

    The Parametric Map IOD requires a Frame of Reference with plane position and
    orientation, which a Secondary Capture (or another image without patient geometry)
    does not have, and highdicom 0.28.2 fails on such a source: it writes a Frame Label
    dimension without values and then rejects its own object. Its Segmentation of a
    source with a Frame of Reference but no positions lacks the Slice Thickness dciodvfy
    then requires. So a *copy* gets a new Frame of Reference UID, one that belongs to no
    acquisition, with the identity geometry of the pixel grid (origin 0, rows and columns
    along x and y, the file's pixel spacing if it has a real one, else 1 mm): the map is
    then in the source's pixel coordinates, which is all it claims. The Segmentation is
    made from the same copy, so that the two share that frame and overlay each other. A
    source Frame of Reference without positions is replaced in the copy, not kept:
    invented positions in the acquisition's own frame would place the map somewhere in
    the patient. The file itself is untouched."""
    if _has_patient_geometry(ds):
        return ds
    from pydicom.uid import generate_uid

    fixed = copy.deepcopy(ds)
    fixed.FrameOfReferenceUID = generate_uid()
    fixed.PositionReferenceIndicator = ""
    fixed.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    fixed.ImagePositionPatient = [0, 0, 0]
    fixed.PixelSpacing = _spacing(ds)
    if not _positive(ds.get("SliceThickness")):
        fixed.SliceThickness = 1
    return fixed


def _spacing(ds: Any) -> list[float]:
    """The file's Pixel Spacing (or Imager Pixel Spacing) where it has a real one; 1 mm
    where it has none or zeros (some CR files say 0\\0, which no IOD allows)."""
    for kw in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(kw)
        if value is not None and len(value) == 2 and all(_positive(v) for v in value):
            return [float(v) for v in value]
    return [1.0, 1.0]


def _positive(value: Any) -> bool:
    try:
        return value is not None and value != "" and float(value) > 0
    except (TypeError, ValueError):
        return False


def _further(original_ds: Any | None, suspect_ds: Any) -> list[Any] | None:
    """ORIGINAL as a further source image, or None where it cannot be one."""
    if _why_not_further(original_ds, suspect_ds):
        return None
    if "FrameOfReferenceUID" not in original_ds:
        # highdicom 0.28.2 reads the further sources' Frame of Reference UID without a
        # default, to match their planes with the object's. A copy with a fresh UID,
        # shared with nothing, is referenced and never matched plane by plane.
        from pydicom.uid import generate_uid

        original_ds = copy.deepcopy(original_ds)
        original_ds.FrameOfReferenceUID = generate_uid()
    return [original_ds]


def _why_not_further(original_ds: Any | None, suspect_ds: Any) -> str:
    """Why ORIGINAL cannot be a further source ("" when it can): highdicom (and the
    IODs' Common Instance Reference module) want every source in the object's study."""
    if original_ds is None:
        return "no original"
    if original_ds.get("StudyInstanceUID") != suspect_ds.get("StudyInstanceUID"):
        return "it is of another study"
    if original_ds.get("SOPInstanceUID") == suspect_ds.get("SOPInstanceUID"):
        return "it has the suspect's SOP Instance UID"  # a copy that kept its UID
    return ""


def _derivation_note(what: str, suspect_ds: Any, original_ds: Any | None) -> str:
    original = "" if original_ds is None else (
        f" against the signed original {original_ds.get('SOPInstanceUID', '?')}")
    return (f"Forensic evidence made by workbench {__version__}: {what}, of suspect "
            f"{suspect_ds.get('SOPInstanceUID', '?')}{original}. Not for diagnosis.")


def _mark(ds: Any, what: str, note: str) -> None:
    """Say on the object what it is and who made it: Series Description, and a
    Derivation Description in each Derivation Image item (ST, 1024 characters)."""
    ds.SeriesDescription = f"workbench evidence: {what}"[:64]
    for groups in (ds.get("SharedFunctionalGroupsSequence") or [],
                   ds.get("PerFrameFunctionalGroupsSequence") or []):
        for group in groups:
            for item in group.get("DerivationImageSequence") or []:
                item.DerivationDescription = note[:1024]
