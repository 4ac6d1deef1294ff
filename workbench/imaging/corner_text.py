"""What a viewer writes in the corners of an image, as radiologists expect it (patient,
study, modality, laterality and view), with a privacy switch that hides the patient's
identifiers for screenshots and teaching. The view adds its own state (window, zoom)."""

from __future__ import annotations

from typing import Any

#: attributes that identify the patient: hidden by the privacy switch
IDENTIFIERS = ("PatientName", "PatientID", "PatientBirthDate", "OtherPatientIDs",
               "InstitutionName", "AccessionNumber")


def _text(ds: Any, keyword: str) -> str:
    value = ds.get(keyword, "") if ds is not None else ""
    if isinstance(value, (list, tuple)) or getattr(value, "VM", 1) > 1:
        value = "\\".join(str(v) for v in value)
    return str(value or "").strip()


def _date(value: str) -> str:
    """DICOM DA (YYYYMMDD) as YYYY-MM-DD; anything else as written."""
    v = value.strip()
    return f"{v[:4]}-{v[4:6]}-{v[6:8]}" if len(v) == 8 and v.isdigit() else v


def _laterality_and_view(ds: Any) -> str:
    lat = _text(ds, "ImageLaterality") or _text(ds, "Laterality")
    view = _text(ds, "ViewPosition")
    if not view:  # mammography often codes the view only in ViewCodeSequence
        try:
            view = str(ds.ViewCodeSequence[0].CodeMeaning)
        except (AttributeError, IndexError, KeyError):
            view = ""
    return " ".join(p for p in (lat, view) if p)


def corner_text(image: Any, *, hide_identifiers: bool = False) -> dict[str, list[str]]:
    """Lines for the corners ``top-left`` (patient), ``top-right`` (study) and
    ``bottom-right`` (laterality, view, size). Photos have no patient header: their
    corners name the file kind and size only."""
    ds = image.metadata if getattr(image, "kind", "") == "dicom" else None
    size = f"{image.columns}×{image.rows}"
    if ds is None:
        return {"top-left": [], "top-right": [f"{image.modality or 'photo'}"],
                "bottom-right": [size]}
    if hide_identifiers:
        patient = ["patient identifiers hidden"]
    else:
        name = _text(ds, "PatientName").replace("^", " ").strip()
        pid = _text(ds, "PatientID")
        born = _date(_text(ds, "PatientBirthDate"))
        sex = _text(ds, "PatientSex")
        patient = [line for line in (
            name or "(no patient name)",
            f"ID {pid}" if pid else "",
            " ".join(p for p in (f"born {born}" if born else "", sex) if p),
        ) if line]
    date = _date(_text(ds, "StudyDate") or _text(ds, "AcquisitionDate")
                 or _text(ds, "ContentDate"))
    study = [line for line in (
        " ".join(p for p in (image.modality, _text(ds, "BodyPartExamined")) if p),
        f"study {date}" if date else "",
        _text(ds, "StudyDescription") or _text(ds, "SeriesDescription"),
    ) if line]
    bottom = [line for line in (_laterality_and_view(ds), size) if line]
    return {"top-left": patient, "top-right": study, "bottom-right": bottom}
