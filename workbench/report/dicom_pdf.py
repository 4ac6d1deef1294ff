"""DICOM Encapsulated PDF (PS3.3 A.45.1) of a report: the PDF bytes in an instance of
the source image's patient and study, made with pydicom (highdicom has no class for it).
Qt-free: the PDF itself is made by the caller (the case report through Qt's writer)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .. import __version__

ENCAPSULATED_PDF_STORAGE = "1.2.840.10008.5.1.4.1.1.104.1"
MANUFACTURER = "workbench"


def encapsulated_pdf(pdf: bytes, source: Any, *, title: str,
                     references: Sequence[Any] = (), series_number: int = 9903) -> Any:
    """The PDF as an Encapsulated PDF instance of ``source``'s patient and study, in a new
    series, with every Type 1 and 2 attribute of its IOD (PS3.3 A.45.1). ``references``
    (datasets) go in the Source Instance Sequence; ``source`` is referenced first."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence as DicomSequence
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

    pdf = bytes(pdf)
    if not pdf.startswith(b"%PDF"):
        raise ValueError("the report is not a PDF (it does not start with %PDF)")
    now = datetime.now().astimezone()
    ds = Dataset()
    # SOP Common. UTF-8: the patient's name is written from its decoded value, whatever
    # character set the source used, and file names in the title may be any language.
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = ENCAPSULATED_PDF_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.InstanceCreationDate, ds.InstanceCreationTime = now.strftime("%Y%m%d"), \
        now.strftime("%H%M%S")
    # Patient and General Study: the source's identity, Type 2 empty where it has none
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
               "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
               "AccessionNumber"):
        setattr(ds, kw, source.get(kw, ""))
    for kw in ("IssuerOfPatientID", "StudyDescription"):  # Type 3: only what it has
        if kw in source:
            setattr(ds, kw, source.get(kw))
    ds.StudyInstanceUID = source.StudyInstanceUID
    # Encapsulated Document Series
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = "workbench evidence: case report (PDF)"
    # General Equipment and SC Equipment: WSD, a workstation made this document
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = MANUFACTURER
    ds.SoftwareVersions = __version__
    ds.ConversionType = "WSD"
    ds.SecondaryCaptureDeviceManufacturer = MANUFACTURER
    ds.SecondaryCaptureDeviceManufacturerModelName = MANUFACTURER
    ds.SecondaryCaptureDeviceSoftwareVersions = __version__
    # Encapsulated Document
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = ds.InstanceCreationDate, ds.InstanceCreationTime
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S%z")
    ds.BurnedInAnnotation = "YES"  # the report prints the file's identity in its text
    ds.DocumentTitle = title[:64] if title else "workbench case report"
    ds.ConceptNameCodeSequence = DicomSequence([])  # Type 2: no standard title code fits
    ds.SourceInstanceSequence = DicomSequence(sop_references([source, *references]))
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    # OB values have even length: an odd PDF gets one NUL, and the length says where the
    # document itself ends so that a reader can strip the pad
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"WORKBENCH_{__version__}"[:16]
    ds.file_meta = meta
    return ds


def pdf_bytes(ds: Any) -> bytes:
    """The PDF of an Encapsulated PDF dataset, without the even-length pad."""
    data = bytes(ds.EncapsulatedDocument)
    n = ds.get("EncapsulatedDocumentLength")
    return data[:int(n)] if n is not None else data


def sop_references(datasets: Sequence[Any]) -> list[Any]:
    """SOP Instance Reference items, each instance once; one without UIDs (a data set
    written without its SOP Common attributes) cannot be referenced and is left out."""
    from pydicom.dataset import Dataset

    items: dict[str, Any] = {}
    for ds in datasets:
        sop_class, sop_instance = ds.get("SOPClassUID"), ds.get("SOPInstanceUID")
        if sop_class and sop_instance and str(sop_instance) not in items:
            item = Dataset()
            item.ReferencedSOPClassUID = sop_class
            item.ReferencedSOPInstanceUID = sop_instance
            items[str(sop_instance)] = item
    return list(items.values())
