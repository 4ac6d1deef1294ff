"""The signing gateway between a real modality (DCMTK's storescu) and a real PACS
(DCMTK's storescp or Orthanc), all on loopback ports the tests pick: instances signed
before they are acknowledged, forwarded untouched, queued through a PACS outage, and
refused for a calling AE not on the list or a malformed instance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from conftest import pydicom_test_file

pytest.importorskip("pynetdicom", reason="the gateway needs pynetdicom")

from dicom_site import FILES, Site, _wait  # noqa: E402 (after the skip: it needs DCMTK)


@pytest.fixture
def site(tmp_path: Path):
    s = Site(tmp_path)
    yield s
    s.stop()


def _received(site: Site) -> dict[str, Path]:
    out = {}
    for p in site.pacs_dir.iterdir():
        try:
            out[str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)] = p
        except Exception:  # still being written
            continue
    return out


def test_instances_are_signed_then_forwarded_untouched_and_verify(site: Site) -> None:
    site.start_pacs()
    files = [pydicom_test_file(n) for n in FILES]
    run = site.send(files)
    assert run.returncode == 0, run.stdout + run.stderr
    want = {str(pydicom.dcmread(f).SOPInstanceUID): f for f in files}
    _wait(lambda: set(_received(site)) == set(want), what="the PACS to hold every instance")
    got = _received(site)
    for uid, original in want.items():
        a, b = pydicom.dcmread(original), pydicom.dcmread(got[uid])
        assert a.PixelData == b.PixelData and a.PatientName == b.PatientName  # untouched
    # every acknowledged instance has its record: the PACS's copies verify by the ledger
    run = subprocess.run([sys.executable, "-m", "workbench", "verify", "--ledger",
                          str(site.tmp / "ledger.db"), "--json", *map(str, got.values())],
                         env=site.env, capture_output=True, text=True, timeout=300)
    import json

    results = [json.loads(ln) for ln in run.stdout.splitlines() if ln.startswith("{")]
    assert len(results) == len(FILES)
    assert all(r["verdict"] in ("intact", "re-encoded") for r in results), results
    _wait(lambda: "forwarded 4" in site.text(), what="the status line")
    assert "received 4, signed 4" in site.text()


def test_a_pacs_outage_queues_and_nothing_is_lost(site: Site) -> None:
    files = [pydicom_test_file(n) for n in FILES[:2]]
    run = site.send(files)  # no PACS yet: the gateway still takes them
    assert run.returncode == 0, run.stdout + run.stderr
    outbox = site.tmp / "spool" / "outbox"
    assert len(list(outbox.glob("*.dcm"))) == 2
    assert len(list(outbox.glob("*.wbsig.json"))) == 2  # signed before acknowledged
    site.start_pacs()
    _wait(lambda: len(_received(site)) == 2, what="the queue to drain")
    _wait(lambda: not list(outbox.glob("*.dcm")), what="the outbox to empty")
    assert len((site.tmp / "spool" / "forwarded.log").read_text().splitlines()) == 2
    assert len(list((site.tmp / "spool" / "records").glob("*.wbsig.json"))) == 2


def test_orthanc_stopped_during_sending_then_back_nothing_lost(site: Site) -> None:
    """The PACS (Orthanc) goes down between two sends: the second batch is queued, and
    once Orthanc is back (same storage, same ports) every instance is in it, once."""
    site.start_orthanc()
    files = [pydicom_test_file(n) for n in FILES]
    assert site.send(files[:2]).returncode == 0
    _wait(lambda: len(site.orthanc_instances()) == 2, what="the first two in Orthanc")
    site.pacs.terminate()
    site.pacs.wait(timeout=30)
    assert site.send(files[2:]).returncode == 0  # the gateway still takes them
    outbox = site.tmp / "spool" / "outbox"
    _wait(lambda: "unreachable" in site.text(), what="the outage in the log")
    assert len(list(outbox.glob("*.dcm"))) == 2
    site.start_orthanc(same_ports=True)
    want = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}
    _wait(lambda: set(site.orthanc_instances()) == want, timeout=120,
          what="the queued instances after Orthanc came back")
    _wait(lambda: not list(outbox.glob("*.dcm")), what="the outbox to empty")


def test_a_stranger_and_a_malformed_instance_are_refused_and_it_keeps_serving(
        site: Site, tmp_path: Path) -> None:
    site.start_pacs()
    run = site.send([pydicom_test_file("CT_small.dcm")], calling="INTRUDER")
    assert run.returncode != 0  # the association is rejected
    _wait(lambda: "association from INTRUDER refused" in site.text(), what="the log line")
    assert not list((site.tmp / "spool" / "outbox").glob("*.dcm"))
    bad = tmp_path / "bad.dcm"
    ds = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    ds.PixelData = ds.PixelData[:1000]  # declares 128x128, holds far less
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(bad)
    run = site.send([bad])
    _wait(lambda: "refused" in site.text() and ds.SOPInstanceUID in site.text(),
          what="the refusal's log line")
    assert run.returncode != 0  # the modality is told the store failed (status C000)
    run = site.send([pydicom_test_file("MR_small.dcm")])  # still serving
    assert run.returncode == 0
    _wait(lambda: len(_received(site)) == 1, what="the good instance")


def test_an_instance_the_pacs_refuses_is_held_and_the_rest_go_on(site: Site) -> None:
    """A PACS that takes no JPEG 2000: that instance is never transcoded to fit, nor
    retried in front of the others forever; it is held in the spool with the reason, and
    put back in the queue when the gateway starts again."""
    site.start_pacs(compressed=False)
    files = [pydicom_test_file(n) for n in ("JPEG2000.dcm", "CT_small.dcm", "MR_small.dcm")]
    assert site.send(files).returncode == 0  # acknowledged: signed and queued
    _wait(lambda: len(_received(site)) == 2, what="the uncompressed instances")
    held = site.tmp / "spool" / "held"
    _wait(lambda: len(list(held.glob("*.dcm"))) == 1, what="the JPEG 2000 one to be held")
    reason = next(held.glob("*.reason.txt")).read_text()
    assert "JPEG 2000" in reason and "no presentation context" in reason
    assert len(list(held.glob("*.wbsig.json"))) == 1  # its record stays with it
    _wait(lambda: "held 1" in site.text(), what="the status line")
    site.gateway.terminate()
    site.gateway.wait(timeout=20)
    site.start_gateway()  # back in the queue, tried again, held again
    _wait(lambda: site.text().count("held in") == 2, what="the second try")
    assert len(list(held.glob("*.dcm"))) == 1


def test_orthanc_as_the_pacs_holds_each_instance_once_with_its_data_unchanged(
        site: Site) -> None:
    import io

    site.start_orthanc()
    files = [pydicom_test_file(n) for n in FILES]
    assert site.send(files).returncode == 0
    assert site.send(files[:1]).returncode == 0  # the modality sends one again
    want = {str(pydicom.dcmread(f).SOPInstanceUID): f for f in files}
    _wait(lambda: set(site.orthanc_instances()) == set(want), what="Orthanc to hold them")
    stored = site.orthanc_instances()
    assert len(stored) == len(FILES)  # one instance per SOP Instance UID
    for uid, original in want.items():
        a, b = pydicom.dcmread(original), pydicom.dcmread(io.BytesIO(stored[uid]))
        assert a.PixelData == b.PixelData and a.StudyInstanceUID == b.StudyInstanceUID


def test_killed_at_random_moments_nothing_acknowledged_is_lost(site: Site, tmp_path: Path
                                                               ) -> None:
    """SIGKILL the gateway ten times while a modality sends 100 instances (resending what
    was not acknowledged, as a modality does): every acknowledged instance has its record
    in the ledger, and reaches the PACS exactly once. (100, not 200: the kills are what
    is tested, and the instances between them were most of the suite's longest test.)"""
    import random

    from workbench.provenance.ledger.store import Ledger

    site.start_orthanc()
    source = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    files = []
    for i in range(100):
        source.SOPInstanceUID = pydicom.uid.generate_uid(prefix="1.2.826.0.1.3680043.10.99.")
        files.append(tmp_path / f"i{i:03d}.dcm")
        source.save_as(files[-1])
    rng = random.Random(20261202)
    kill_at = sorted(rng.sample(range(5, 95), 10))
    acknowledged: set[str] = set()
    kills = 0
    for i, f in enumerate(files):
        if kills < len(kill_at) and i == kill_at[kills]:
            # at a random moment within this instance's store: before, during or after
            # the record is written
            delay = rng.uniform(0.0, 0.15)
            victim = site.gateway
            killer = subprocess.Popen(["bash", "-c", f"sleep {delay}; kill -9 {victim.pid}"])
            kills += 1
        else:
            killer = None
        while True:
            if site.send([f]).returncode == 0:
                acknowledged.add(str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID))
                break
            if site.gateway.poll() is not None:  # dead: restart it, then resend
                site.start_gateway()
        if killer is not None:
            killer.wait()
            victim.wait(timeout=10)  # the kill may land after the store was acknowledged
            if site.gateway is victim:  # not restarted by a failed send: restart it now
                site.start_gateway()
    assert kills == 10 and len(acknowledged) == len(files)
    _wait(lambda: set(site.orthanc_instances()) >= acknowledged, timeout=120,
          what="the PACS to hold every acknowledged instance")
    assert not list((site.tmp / "spool" / "outbox").glob("*.dcm"))
    ledger = Ledger(site.tmp / "ledger.db")
    try:
        missing = [u for u in acknowledged if not ledger.find(sop_instance_uid=u)]
    finally:
        ledger.close()
    assert missing == []
    assert len(site.orthanc_instances()) == len(files)  # one copy each in the PACS
    logged = [ln.split("\t")[0] for ln in
              (site.tmp / "spool" / "forwarded.log").read_text().splitlines()]
    from workbench.gateway.spool import Spool

    uids = [Spool.uid_of(n) for n in logged]
    assert {Spool.uid_of(Spool.name_for(u, b"")) for u in acknowledged} <= set(uids)
    # a kill between the PACS's answer and the log line can only repeat a send, of the
    # same bytes under the same UID (docs/gateway.md); it never loses one
    assert len(uids) - len(set(uids)) <= kills
    restarts = site.text().count("listening on") - 1
    assert restarts >= kills


def _config_site(tmp_path: Path, allow: list[str]) -> tuple[Site, Path]:
    """A site whose gateway is set by a configuration file alone: relative spool, ledger
    and passphrase file (taken from the file's folder), and no passphrase in the
    environment, so the key opens only through the file's passphrase_file."""
    site = Site(tmp_path, gateway=False)
    etc = tmp_path / "etc"
    etc.mkdir()
    secret = etc / "passphrase"
    secret.write_text(site.env.pop("WORKBENCH_KEY_PASSPHRASE") + "\n")
    secret.chmod(0o600)
    config = etc / "gateway.toml"
    config.write_text(f"""\
[gateway]
ae_title = "WB_GATEWAY"
host = "127.0.0.1"
port = {site.port}
spool = "spool"
ledger = "ledger.db"
retry_seconds = 0.5
allow = {allow!r}

[pacs]
ae_title = "PACS"
host = "127.0.0.1"
port = {site.pacs_port}

[key]
passphrase_file = "passphrase"
""".replace("'", '"'))
    return site, config


def test_a_gateway_set_by_its_configuration_file_alone_signs_and_forwards(
        tmp_path: Path) -> None:
    site, config = _config_site(tmp_path, ["CT_SCANNER", "MODALITY"])
    try:
        site.start_pacs()
        site.start_gateway(config)
        assert f"configuration: {config}" in site.text()  # the start-up line says whence
        assert "from the command line" not in site.text()
        files = [pydicom_test_file(n) for n in FILES[:2]]
        run = site.send(files, calling="CT_SCANNER")
        assert run.returncode == 0, run.stdout + run.stderr
        want = {str(pydicom.dcmread(f).SOPInstanceUID) for f in files}
        _wait(lambda: set(_received(site)) == want, what="the PACS to hold both instances")
        spool = tmp_path / "etc" / "spool"  # relative to the file, not the working folder
        _wait(lambda: len(list((spool / "records").glob("*.wbsig.json"))) == 2,
              what="the records in the file's spool")
        assert (tmp_path / "etc" / "ledger.db").is_file()
        assert not (tmp_path / "spool").exists()
    finally:
        site.stop()


def test_a_calling_ae_not_in_the_files_allow_list_is_refused(tmp_path: Path) -> None:
    site, config = _config_site(tmp_path, ["CT_SCANNER"])
    try:
        site.start_pacs()
        site.start_gateway(config)
        run = site.send([pydicom_test_file("CT_small.dcm")])  # as MODALITY: not listed
        assert run.returncode != 0
        _wait(lambda: "association from MODALITY refused" in site.text(), what="the log")
        assert not list((tmp_path / "etc" / "spool" / "outbox").glob("*.dcm"))
        assert site.send([pydicom_test_file("CT_small.dcm")],
                         calling="CT_SCANNER").returncode == 0
        _wait(lambda: len(_received(site)) == 1, what="the listed caller's instance")
    finally:
        site.stop()
