"""A real PACS (Orthanc with its DICOMweb plugin, on loopback ports the test picks) seen
through ``workbench pacs find|get`` and ``workbench verify --pacs``: searches by patient,
date and modality, instances retrieved as the archive's own bytes, and a whole archive
verified where it lives, a changed pixel inside the PACS included."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pydicom
import pytest
from conftest import pydicom_test_file

pytest.importorskip("dicomweb_client", reason="the PACS client needs dicomweb-client")
pytest.importorskip("pynetdicom", reason="the gateway needs pynetdicom")

from dicom_site import Site, _wait, orthanc_archive  # noqa: E402 (after the skips: it needs DCMTK)

FILES = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm"]


def _workbench(site: Site, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], env=site.env,
                          capture_output=True, text=True, timeout=timeout)


def _lines(run: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(ln) for ln in run.stdout.splitlines() if ln.startswith("{")]


@pytest.fixture
def archive(tmp_path: Path):
    """Orthanc holding four of pydicom's files, stored through its REST API."""
    site = orthanc_archive(tmp_path, [pydicom_test_file(n) for n in FILES])
    yield site, site.dicomweb
    site.stop()


def test_find_by_patient_date_and_modality(archive) -> None:
    site, url = archive
    heads = {n: pydicom.dcmread(pydicom_test_file(n), stop_before_pixels=True) for n in FILES}
    run = _workbench(site, "pacs", "find", "--url", url, "--json")
    assert run.returncode == 0, run.stderr
    studies = {r["study_uid"]: r for r in _lines(run)}
    assert set(studies) == {str(d.StudyInstanceUID) for d in heads.values()}
    ct = heads["CT_small.dcm"]
    row = studies[str(ct.StudyInstanceUID)]
    assert row["patient_id"] == ct.PatientID and row["date"] == ct.StudyDate
    assert row["modalities"] == "CT" and row["instances"] == 1
    by_patient = _lines(_workbench(site, "pacs", "find", "--url", url, "--json",
                                   "--patient", str(ct.PatientID)))
    assert [r["study_uid"] for r in by_patient] == [str(ct.StudyInstanceUID)]
    mr = heads["MR_small.dcm"]
    by_modality = _lines(_workbench(site, "pacs", "find", "--url", url, "--json",
                                    "--modality", "MR"))
    assert str(mr.StudyInstanceUID) in {r["study_uid"] for r in by_modality}
    assert str(ct.StudyInstanceUID) not in {r["study_uid"] for r in by_modality}
    day = str(ct.StudyDate)
    by_date = _lines(_workbench(site, "pacs", "find", "--url", url, "--json",
                                "--date", f"{day}-{day}"))
    assert {r["date"] for r in by_date} == {day}
    series = _lines(_workbench(site, "pacs", "find", "--url", url, "--json",
                               "--study", str(ct.StudyInstanceUID)))
    assert [s["series_uid"] for s in series] == [str(ct.SeriesInstanceUID)]
    table = _workbench(site, "pacs", "find", "--url", url)
    assert str(ct.StudyInstanceUID) in table.stdout and "4 studies" in table.stdout


def test_get_writes_the_archive_bytes_and_errors_are_one_line(archive, tmp_path) -> None:
    site, url = archive
    source = pydicom_test_file("JPEG2000.dcm")  # compressed: no transcoding on the way
    ds = pydicom.dcmread(source, stop_before_pixels=True)
    out = tmp_path / "retrieved"
    run = _workbench(site, "pacs", "get", "--url", url, "--study", str(ds.StudyInstanceUID),
                     "--out", str(out))
    assert run.returncode == 0, run.stderr
    got = out / str(ds.StudyInstanceUID) / str(ds.SeriesInstanceUID) / f"{ds.SOPInstanceUID}.dcm"
    assert got.read_bytes() == source.read_bytes()
    assert not list(out.rglob("*.part"))
    for args, says in [
        (["find", "--url", "http://127.0.0.1:9/dicom-web"], "cannot reach the PACS"),
        (["find", "--url", "ftp://example/dicom-web"], "starts with http"),
        (["get", "--url", url, "--out", str(out)], "--study"),
        (["get", "--url", url, "--study", "1.2.3.4", "--out", str(out)], "no instances"),
        (["get", "--url", url, "--study", "../../etc", "--out", str(out)], ""),
    ]:
        bad = _workbench(site, "pacs", *args)
        assert bad.returncode in (1, 2), (args, bad.stdout, bad.stderr)
        assert "Traceback" not in bad.stderr and says in bad.stderr + bad.stdout, args


def _storescu_can_send(f: Path) -> bool:
    """DCMTK's storescu needs the SOP Class and Instance UIDs as UI elements; a file whose
    every element is UN (explicit_VR-UN.dcm) is one no DCMTK modality could send."""
    import shutil

    dump = subprocess.run([shutil.which("dcmdump") or "dcmdump", "-q", "+P", "0008,0016",
                           "+P", "0008,0018", str(f)], capture_output=True, text=True,
                          timeout=60)
    return dump.stdout.count(") UI ") == 2


def _corpus(shared: Path) -> list[Path]:
    """Every DICOM file of the shared corpus the workbench can read (and storescu can
    send)."""
    from workbench.imaging.loader import load_image

    readable = []
    for f in sorted((shared / "dicom").rglob("*")):
        if not f.is_file() or f.suffix.lower() in (".txt", ".csv", ".md", ".json"):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                load_image(f)
                # a PS3.10 file (a modality sends its data set with the meta's syntax)
                pydicom.dcmread(f, stop_before_pixels=True)
            except Exception:  # not one the workbench reads: not one the test sends
                continue
        if _storescu_can_send(f):
            readable.append(f)
    return readable


def test_capture_to_archive_then_verify_where_it_lives(tmp_path: Path,
                                                       shared_data: Path) -> None:
    """The shared corpus through storescu -> gateway (signs) -> Orthanc; then every
    instance in the PACS verifies intact against the gateway's ledger. A pixel changed
    inside the PACS (a copy stored under the same UIDs) is reported tampered, by pixels."""
    files = _corpus(shared_data)
    assert len(files) >= 30
    site = Site(tmp_path)
    try:
        site.start_orthanc()
        url = site.dicomweb
        run = site.send(files)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        uids = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}
        _wait(lambda: "queued 0" in site.text().splitlines()[-1]
              and f"forwarded {len(files)}" in site.text(), timeout=300,
              what="the gateway to forward everything")
        assert f"received {len(files)}, signed {len(files)}" in site.text()
        ledger = str(site.tmp / "ledger.db")
        run = _workbench(site, "verify", "--pacs", url, "--ledger", ledger, "--json")
        results = _lines(run)
        assert run.returncode == 0, [(r["path"], r["summary"]) for r in results if not r["ok"]]
        assert len(results) == len(uids)  # one per instance the PACS holds
        assert {r["path"].rsplit("/", 1)[-1] for r in results} == uids
        assert all(r["verdict"] == "intact" for r in results), [
            (r["path"].rsplit("/", 1)[-1], r["summary"], r["checks"]["file"]["message"],
             r["record_source"]) for r in results if r["verdict"] != "intact"]
        assert all(r["path"].startswith(url + "/studies/") for r in results)

        # one instance changed inside the PACS: same UIDs, one pixel different
        victim = next(f for f in files if pydicom.dcmread(f, stop_before_pixels=True)
                      .file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian)
        ds = pydicom.dcmread(victim)
        pixels = ds.pixel_array.copy()
        pixels.flat[pixels.size // 2] ^= 1
        ds.PixelData = pixels.tobytes()
        changed = tmp_path / "changed.dcm"
        ds.save_as(changed)
        site.replace(changed.read_bytes())
        run = _workbench(site, "verify", "--pacs", url, "--ledger", ledger, "--json",
                         "--study", str(ds.StudyInstanceUID))
        assert run.returncode == 1
        results = {r["path"].rsplit("/", 1)[-1]: r for r in _lines(run)}
        hit = results[str(ds.SOPInstanceUID)]
        assert hit["verdict"] == "tampered" and hit["checks"]["pixels"]["status"] == "fail"
        assert all(r["verdict"] == "intact" for u, r in results.items()
                   if u != str(ds.SOPInstanceUID))
        table = _workbench(site, "verify", "--pacs", url, "--ledger", ledger,
                           "--study", str(ds.StudyInstanceUID))
        assert str(ds.SOPInstanceUID) in table.stdout and "tampered" in table.stdout
    finally:
        site.stop()


def test_verify_pacs_on_ray_gives_the_in_process_results(archive) -> None:
    """The same archive verified by both engines: the same instances, verdicts and
    messages, named by their WADO-RS address (the temporary copies never show)."""
    pytest.importorskip("ray", reason="the Ray engine needs ray (pip install ray)")
    site, url = archive
    runs = [_workbench(site, "verify", "--pacs", url, "--no-ledger", "--json",
                       *engine) for engine in ([], ["--engine", "ray", "--workers", "2"])]
    here, ray = ([(r["path"], r["verdict"], r["summary"]) for r in _lines(run)] for run in runs)
    assert len(here) == len(FILES) and here == ray
    assert all(p.startswith(url + "/studies/") and v == "unsigned" for p, v, _s in here)
    assert all("workbench-pacs-" not in s for _p, _v, s in here)


def test_verify_pacs_since_a_date_takes_only_the_later_studies(archive) -> None:
    site, url = archive
    dates = {str(pydicom.dcmread(pydicom_test_file(n), stop_before_pixels=True).StudyDate)
             for n in FILES}
    cut = max(dates)  # the latest study date: only that study (or those) and later
    want = sum(str(pydicom.dcmread(pydicom_test_file(n), stop_before_pixels=True).StudyDate)
               >= cut for n in FILES)
    run = _workbench(site, "verify", "--pacs", url, "--no-ledger", "--json", "--since",
                     f"{cut[:4]}-{cut[4:6]}-{cut[6:]}")
    assert len(_lines(run)) == want < len(FILES)
    bad = _workbench(site, "verify", "--pacs", url, "--since", "yesterday")
    assert bad.returncode == 2 and "--since yesterday" in bad.stderr
    both = _workbench(site, "verify", "--pacs", url, "--since", "20000101", "--study", "1.2")
    assert both.returncode == 2 and "not both" in both.stderr
