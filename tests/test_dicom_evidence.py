"""Evidence back as DICOM (``workbench evidence``): the Parametric Map, Segmentation and
Encapsulated PDF made from a signed original and a suspect are valid objects (dicom3tools'
dciodvfy finds no error), open in DCMTK, hold exactly the difference and the changed
pixels, reference the suspect in its study, and reach a PACS (DCMTK's storescp) intact.

The suspects are the workbench's own adversarial exports (workbench.imaging.export) of
pydicom's bundled CT, MR and RGB Secondary Capture files, with a 10x10 patch brightened.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import REPO_ROOT, SHARED_DATA, pydicom_test_file

from workbench import __version__
from workbench.cli import main
from workbench.imaging.export import save_derived
from workbench.imaging.loader import load_image
from workbench.imaging.model_input import to_model_input
from workbench.report.dicom_evidence import (
    PDF_NAME,
    PM_NAME,
    SEG_NAME,
    encapsulated_pdf,
    load_pair,
    pdf_bytes,
    write_evidence,
)

SOURCES = {"CT": "CT_small.dcm", "MR": "MR_small.dcm", "RGB": "SC_rgb_rle.dcm"}
PATCH = (slice(10, 20), slice(10, 20))
# a PDF of odd length, so that the even-length pad and Encapsulated Document Length count
TINY_PDF = (b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n"
            b"%%EOF\n")
assert len(TINY_PDF) % 2 == 1


def _suspect(source: Path, out: Path) -> Path:
    """The workbench's adversarial export of ``source`` with a 10x10 patch brightened."""
    image = load_image(source)
    x, mapping = to_model_input(image, 0)
    x = x.copy()
    x[:, PATCH[0], PATCH[1]] = np.clip(x[:, PATCH[0], PATCH[1]] + 0.05, 0.0, 1.0)
    return save_derived(image, x, mapping, out, "test suspect: a 10x10 patch brightened")


def _expected(original: Path, suspect: Path) -> np.ndarray:
    """SUSPECT - ORIGINAL as the loader gives them, computed here independently: output
    values (modality transform applied) for greyscale, max |stored difference| over the
    channels for colour."""
    a, b = load_image(original), load_image(suspect)
    if a.is_color:
        d = b.frame(0).astype(np.int64) - a.frame(0).astype(np.int64)
        return np.abs(d).max(axis=2).astype(np.float32)
    return (b.value_transform(0).apply(b.frame(0))
            - a.value_transform(0).apply(a.frame(0))).astype(np.float32)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "-m", "workbench", "evidence", *args],
                          capture_output=True, text=True, timeout=180, cwd=REPO_ROOT,
                          env=env, check=False)


@pytest.fixture(scope="module", params=list(SOURCES))
def made(request, tmp_path_factory) -> dict:
    """One kind's original, suspect and the three objects (the PDF a tiny one)."""
    tmp = tmp_path_factory.mktemp(f"evidence_{request.param}")
    original = pydicom_test_file(SOURCES[request.param])
    suspect = _suspect(original, tmp / "suspect.dcm")
    pair = load_pair(original, suspect)
    result = write_evidence(pair, tmp / "out", report_pdf=TINY_PDF)
    return {"kind": request.param, "original": original, "suspect": suspect,
            "dir": tmp / "out", "result": result,
            "original_ds": pydicom.dcmread(original), "suspect_ds": pydicom.dcmread(suspect)}


def _dciodvfy(path: Path) -> tuple[list[str], str]:
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True,
                         timeout=120, check=False)
    text = run.stdout + run.stderr
    return [line for line in text.splitlines() if line.startswith("Error")], text


# --- validity --------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("dciodvfy") is None,
                    reason="dicom3tools is not installed (apt-get install dicom3tools): "
                           "no IOD validation of the evidence objects")
@pytest.mark.parametrize("name", [PM_NAME, SEG_NAME, PDF_NAME])
def test_each_object_passes_dciodvfy(made: dict, name: str) -> None:
    errors, text = _dciodvfy(made["dir"] / name)
    print(f"dciodvfy on the {made['kind']} {name}:\n{text}")  # warnings shown on failure
    assert not errors, f"dciodvfy on the {made['kind']} {name}:\n{text}"


@pytest.mark.skipif(shutil.which("dcmdump") is None or shutil.which("dcm2pnm") is None,
                    reason="DCMTK is not installed (apt-get install dcmtk)")
def test_each_object_opens_in_dcmtk(made: dict, tmp_path: Path) -> None:
    for name in (PM_NAME, SEG_NAME, PDF_NAME):
        run = subprocess.run(["dcmdump", str(made["dir"] / name)], capture_output=True,
                             text=True, timeout=60, check=False)
        assert run.returncode == 0, f"dcmdump {name}: {run.stderr}"
    png = tmp_path / "seg.png"
    run = subprocess.run(["dcm2pnm", "+on", str(made["dir"] / SEG_NAME), str(png)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0 and png.is_file(), run.stderr
    import cv2

    rendered = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(rendered > 0, _expected(made["original"], made["suspect"]) != 0)
    # DCMTK 3.6.7's dcm2pnm does not render Float Pixel Data (7FE0,0008): on the
    # Parametric Map it says "no pixel data found in DICOM dataset" and exits 1 (checked
    # by hand). Should a later DCMTK render it, the PNG must then exist.
    run = subprocess.run(["dcm2pnm", "+on", "+Wm", str(made["dir"] / PM_NAME),
                          str(tmp_path / "pm.png")],
                         capture_output=True, text=True, timeout=60, check=False)
    if run.returncode == 0:
        assert (tmp_path / "pm.png").is_file()
    else:
        assert "no pixel data" in (run.stdout + run.stderr).lower(), run.stderr


# --- content ---------------------------------------------------------------------------
def test_the_map_holds_exactly_suspect_minus_original(made: dict) -> None:
    pm = pydicom.dcmread(made["dir"] / PM_NAME)
    assert "FloatPixelData" in pm and pm.BitsAllocated == 32
    values = pm.pixel_array
    want = _expected(made["original"], made["suspect"])
    assert values.dtype == np.float32 and np.array_equal(values, want)
    assert np.count_nonzero(want[PATCH]) > 0 and np.count_nonzero(want) == \
        np.count_nonzero(want[PATCH])  # the patch changed, nothing else did
    mapping = pm.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    unit = mapping.MeasurementUnitsCodeSequence[0]
    assert unit.CodingSchemeDesignator == "UCUM"
    assert unit.CodeValue == ("[hnsf'U]" if made["kind"] == "CT" else "1")
    assert (mapping.RealWorldValueSlope, mapping.RealWorldValueIntercept) == (1.0, 0.0)
    if made["kind"] == "RGB":
        assert "max |suspect - original| over RGB channels" in pm.ContentDescription
        assert values.min() >= 0
    else:
        assert "suspect - original" in pm.ContentDescription


def test_the_segmentation_is_exactly_the_changed_pixels(made: dict) -> None:
    seg = pydicom.dcmread(made["dir"] / SEG_NAME)
    assert seg.SegmentationType == "BINARY" and len(seg.SegmentSequence) == 1
    mask = seg.pixel_array.astype(bool)
    changed = _expected(made["original"], made["suspect"]) != 0
    assert np.array_equal(mask, changed) and mask.sum() == 100
    segment = seg.SegmentSequence[0]
    assert segment.SegmentLabel == "Pixels changed from the signed original"
    assert segment.SegmentAlgorithmType == "AUTOMATIC"
    algorithm = segment.SegmentationAlgorithmIdentificationSequence[0]
    assert (segment.SegmentAlgorithmName, algorithm.AlgorithmName, algorithm.AlgorithmVersion) \
        == ("workbench", "workbench", __version__)
    assert made["result"].changed_pixels == 100


def test_the_pdf_read_back_is_the_pdf_written(made: dict) -> None:
    doc = pydicom.dcmread(made["dir"] / PDF_NAME)
    assert doc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.1"
    assert doc.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert len(doc.EncapsulatedDocument) % 2 == 0
    assert doc.EncapsulatedDocumentLength == len(TINY_PDF)
    assert pdf_bytes(doc) == TINY_PDF and pdf_bytes(doc).startswith(b"%PDF")
    assert (doc.ConversionType, doc.BurnedInAnnotation, doc.Modality) == ("WSD", "YES", "DOC")
    assert "ConceptNameCodeSequence" in doc and doc.DocumentTitle


def test_references_identity_and_new_uids(made: dict) -> None:
    original, suspect = made["original_ds"], made["suspect_ds"]
    old_uids = {original.SOPInstanceUID, suspect.SOPInstanceUID,
                original.SeriesInstanceUID, suspect.SeriesInstanceUID}
    seen = set()
    for name in (PM_NAME, SEG_NAME, PDF_NAME):
        ds = pydicom.dcmread(made["dir"] / name)
        assert ds.StudyInstanceUID == suspect.StudyInstanceUID, name
        assert (ds.PatientID, str(ds.PatientName)) == (suspect.PatientID,
                                                       str(suspect.PatientName)), name
        assert ds.SOPInstanceUID not in old_uids and ds.SeriesInstanceUID not in old_uids
        seen |= {ds.SOPInstanceUID, ds.SeriesInstanceUID}
        assert ds.Manufacturer == "workbench", name
        assert "workbench" in ds.SeriesDescription, name
        if name == PDF_NAME:
            refs = [r.ReferencedSOPInstanceUID for r in ds.SourceInstanceSequence]
            assert refs == [suspect.SOPInstanceUID, original.SOPInstanceUID]
            continue
        series = {s.SeriesInstanceUID: [r.ReferencedSOPInstanceUID
                                        for r in s.ReferencedInstanceSequence]
                  for s in ds.ReferencedSeriesSequence}
        assert series[suspect.SeriesInstanceUID] == [suspect.SOPInstanceUID], name
        assert series[original.SeriesInstanceUID] == [original.SOPInstanceUID], name
        derivation = ds.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0]
        sources = [s.ReferencedSOPInstanceUID for s in derivation.SourceImageSequence]
        assert sources[0] == suspect.SOPInstanceUID, name
        assert "made by workbench" in derivation.DerivationDescription, name
        assert suspect.SOPInstanceUID in derivation.DerivationDescription, name
    assert len(seen) == 6  # three objects, each in a series of its own


def test_a_source_without_geometry_gets_one_shared_frame_of_reference(made: dict) -> None:
    pm = pydicom.dcmread(made["dir"] / PM_NAME)
    seg = pydicom.dcmread(made["dir"] / SEG_NAME)
    source_frame = made["suspect_ds"].get("FrameOfReferenceUID")
    if made["kind"] == "RGB":  # a Secondary Capture: no Frame of Reference at all
        assert source_frame is None and pm.FrameOfReferenceUID == seg.FrameOfReferenceUID
        assert any("no patient geometry" in n for n in made["result"].notes)
    else:
        assert pm.FrameOfReferenceUID == seg.FrameOfReferenceUID == source_frame
        assert not made["result"].notes


def _by_source_frame(path: Path) -> dict[int, np.ndarray]:
    """The object's frames by the source frame each derives from (highdicom orders the
    frames by plane position, which need not be the source's order)."""
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array if int(ds.NumberOfFrames) > 1 else ds.pixel_array[None]
    out = {}
    for frame, group in zip(frames, ds.PerFrameFunctionalGroupsSequence, strict=True):
        source = group.DerivationImageSequence[0].SourceImageSequence[0]
        out[int(source.get("ReferencedFrameNumber", 1))] = frame
    return out


def test_a_multiframe_enhanced_ct_is_mapped_frame_by_frame(shared_data: Path,
                                                           tmp_path: Path) -> None:
    original = shared_data / "dicom" / "pydicom-data" / "eCT_Supplemental.dcm"
    if not original.is_file():
        pytest.skip(f"{original} is not in the shared data")
    suspect = _suspect(original, tmp_path / "suspect.dcm")  # frame 1 attacked, 2 not
    result = write_evidence(load_pair(original, suspect), tmp_path / "ev")
    a, b = load_image(original), load_image(suspect)
    pm, seg = _by_source_frame(tmp_path / "ev" / PM_NAME), \
        _by_source_frame(tmp_path / "ev" / SEG_NAME)
    assert sorted(pm) == sorted(seg) == [1, 2]
    for i in range(a.n_frames):
        want = (b.value_transform(i).apply(b.frame(i))
                - a.value_transform(i).apply(a.frame(i))).astype(np.float32)
        assert np.array_equal(pm[i + 1], want), f"frame {i + 1}"
        assert np.array_equal(seg[i + 1].astype(bool), want != 0), f"frame {i + 1}"
    assert result.changed_pixels == 100 and not seg[2].any()
    if shutil.which("dciodvfy"):
        for name in (PM_NAME, SEG_NAME):
            errors, text = _dciodvfy(tmp_path / "ev" / name)
            assert not errors, text


# --- the command -------------------------------------------------------------------------
def test_cli_end_to_end_with_the_report_and_the_sources_untouched(tmp_path: Path) -> None:
    original = pydicom_test_file("CT_small.dcm")
    suspect = _suspect(original, tmp_path / "suspect.dcm")
    before = _sha256(original), _sha256(suspect)
    start = time.monotonic()
    run = _run_cli(str(original), str(suspect), "--out", str(tmp_path / "ev"), "--report")
    took = time.monotonic() - start
    assert run.returncode == 0, run.stdout + run.stderr
    assert "100 pixel(s) differ" in run.stdout and "Traceback" not in run.stderr
    for name in (PM_NAME, SEG_NAME, PDF_NAME):
        assert (tmp_path / "ev" / name).is_file(), name
    assert (_sha256(original), _sha256(suspect)) == before  # only read, never written
    doc = pydicom.dcmread(tmp_path / "ev" / PDF_NAME)
    pdf = pdf_bytes(doc)
    assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF")
    assert doc.EncapsulatedDocumentLength == len(pdf) > 1000  # Qt's report, not a stub
    if shutil.which("dciodvfy"):
        errors, text = _dciodvfy(tmp_path / "ev" / PDF_NAME)
        assert not errors, text
    assert took < 120, f"the CLI with --report took {took:.1f} s"


def _a_photo(tmp_path: Path) -> Path:
    found = sorted((SHARED_DATA / "dermoscopy" / "isic").rglob("*.jpg"))
    if found:
        return found[0]
    import cv2

    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), np.full((32, 32, 3), 128, np.uint8))
    return photo


def test_cli_refuses_a_photo_in_one_line(tmp_path: Path) -> None:
    photo = _a_photo(tmp_path)
    run = _run_cli(str(pydicom_test_file("CT_small.dcm")), str(photo),
                   "--out", str(tmp_path / "ev"))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and str(photo) in lines[0] and "is a photo" in lines[0], lines
    assert not (tmp_path / "ev").exists()


def _main_lines(capsys, *args: str) -> tuple[int, list[str], list[str]]:
    code = main(["evidence", *args])
    out, err = capsys.readouterr()
    return code, out.strip().splitlines(), err.strip().splitlines()


def test_cli_one_line_errors_for_other_sizes_and_unreadable_files(tmp_path: Path,
                                                                   capsys) -> None:
    ct, mr = pydicom_test_file("CT_small.dcm"), pydicom_test_file("MR_small.dcm")
    code, _, err = _main_lines(capsys, str(ct), str(mr), "--out", str(tmp_path / "a"))
    assert code == 2 and len(err) == 1 and str(mr) in err[0] and "128x128" in err[0], err
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not a DICOM file at all" * 10)
    code, _, err = _main_lines(capsys, str(ct), str(junk), "--out", str(tmp_path / "b"))
    assert code == 2 and len(err) == 1 and str(junk) in err[0], err
    code, _, err = _main_lines(capsys, str(tmp_path / "missing.dcm"), str(ct),
                               "--out", str(tmp_path / "c"))
    assert code == 2 and len(err) == 1 and "missing.dcm" in err[0], err
    # a legacy multi-frame image without geometry is beyond highdicom: said, not raised
    two = pydicom_test_file("SC_rgb_rle_2frame.dcm")
    code, _, err = _main_lines(capsys, str(two), str(_suspect(two, tmp_path / "s2.dcm")),
                               "--out", str(tmp_path / "d"))
    assert code == 2 and len(err) == 1 and "cannot make a Parametric Map" in err[0], err


def test_identical_images_still_give_the_objects_and_say_so(tmp_path: Path,
                                                            capsys) -> None:
    original = pydicom_test_file("MR_small.dcm")
    same = pydicom.dcmread(original)
    same.SOPInstanceUID = pydicom.uid.generate_uid()
    same.save_as(tmp_path / "same.dcm")
    code, out, err = _main_lines(capsys, str(original), str(tmp_path / "same.dcm"),
                                 "--out", str(tmp_path / "ev"))
    assert code == 0, err
    assert any("no pixel differs" in line for line in out), out
    assert not pydicom.dcmread(tmp_path / "ev" / SEG_NAME).pixel_array.any()
    assert not pydicom.dcmread(tmp_path / "ev" / PM_NAME).pixel_array.any()


def test_the_builder_refuses_bytes_that_are_not_a_pdf() -> None:
    with pytest.raises(ValueError, match="not a PDF"):
        encapsulated_pdf(b"<html></html>", pydicom.dcmread(pydicom_test_file("CT_small.dcm")),
                         title="x")


# --- sending -------------------------------------------------------------------------------
def _dcmtk_storescp() -> str | None:
    """DCMTK's storescp: pip's pynetdicom installs a Python app of that name too, which
    may come first on PATH, so each candidate is asked for its version."""
    candidates = (shutil.which("storescp", path=d) for d in os.get_exec_path())
    for exe in dict.fromkeys(c for c in candidates if c):
        answer = subprocess.run([exe, "--version"], capture_output=True, text=True,
                                timeout=30, check=False)
        if "dcmtk" in (answer.stdout + answer.stderr).lower():
            return exe
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def test_send_stores_the_three_objects_intact_in_dcmtk_storescp(tmp_path: Path) -> None:
    storescp = _dcmtk_storescp()
    if storescp is None:
        pytest.skip("DCMTK's storescp is not installed (apt-get install dcmtk)")
    inbox = tmp_path / "pacs"
    inbox.mkdir()
    port = _free_port()
    # +xa: every transfer syntax; no -pm needed, DCMTK 3.6.7 knows the three SOP classes
    pacs = subprocess.Popen([storescp, "+xa", "-aet", "PACS", "-od", str(inbox), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert _listening(port), "storescp did not start"
        original = pydicom_test_file("CT_small.dcm")
        suspect = _suspect(original, tmp_path / "suspect.dcm")
        run = _run_cli(str(original), str(suspect), "--out", str(tmp_path / "ev"),
                       "--report", "--send", f"PACS@127.0.0.1:{port}",
                       "--calling-ae", "WB_TEST")
        assert run.returncode == 0, run.stdout + run.stderr
        stored = [line for line in run.stdout.splitlines() if line.startswith("stored ")]
        assert len(stored) == 3 and all("status 0x0000 (Success)" in s for s in stored)
        end = time.monotonic() + 20
        while len(list(inbox.iterdir())) < 3 and time.monotonic() < end:
            time.sleep(0.1)
    finally:
        pacs.terminate()
        pacs.wait(timeout=10)
    received = {str(ds.SOPInstanceUID): ds
                for ds in (pydicom.dcmread(p) for p in inbox.iterdir())}
    assert len(received) == 3
    for name in (PM_NAME, SEG_NAME, PDF_NAME):
        sent = pydicom.dcmread(tmp_path / "ev" / name)
        got = received[str(sent.SOPInstanceUID)]
        assert got == sent, name  # every element of the data set, pixel data included
        for kw in ("FloatPixelData", "PixelData", "EncapsulatedDocument"):
            if kw in sent:
                assert got[kw].value == sent[kw].value, name


def test_a_refused_store_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    """A PACS that answers "out of resources" (A700) for the Segmentation, and one that
    is not there: exit 2, one line, the stores that worked still printed."""
    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt

    def handle(event):
        refused = event.request.AffectedSOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
        return 0xA700 if refused else 0x0000

    scp = AE(ae_title="PICKY")
    for context in AllStoragePresentationContexts:
        scp.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    port = _free_port()
    server = scp.start_server(("127.0.0.1", port), block=False,
                              evt_handlers=[(evt.EVT_C_STORE, handle)])
    try:
        original = pydicom_test_file("MR_small.dcm")
        suspect = _suspect(original, tmp_path / "suspect.dcm")
        code, out, err = _main_lines(capsys, str(original), str(suspect), "--out",
                                     str(tmp_path / "ev"), "--send", f"PICKY@127.0.0.1:{port}")
    finally:
        server.shutdown()
    assert code == 2, (out, err)
    assert len(err) == 1 and "did not store changed_seg.dcm" in err[0], err
    assert any("perturbation_pm.dcm" in line and "0x0000" in line for line in out), out
    assert any("changed_seg.dcm" in line and "0xA700" in line for line in out), out
    code, _, err = _main_lines(capsys, str(original), str(suspect), "--out",
                               str(tmp_path / "ev2"), "--send", f"NONE@127.0.0.1:{_free_port()}")
    assert code == 2 and len(err) == 1 and "unreachable" in err[0], err
