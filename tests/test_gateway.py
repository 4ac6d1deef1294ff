"""The signing gateway between a real modality (DCMTK's storescu) and a real PACS
(DCMTK's storescp here; Orthanc is the next step), all on loopback ports the tests pick:
instances signed before they are acknowledged, forwarded untouched, queued through a PACS
outage, and refused for a calling AE not on the list or a malformed instance."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
from conftest import pydicom_test_file

pytest.importorskip("pynetdicom", reason="the gateway needs pynetdicom")


def _dcmtk(name: str) -> str | None:
    """DCMTK's own program: pip's pynetdicom installs Python apps of the same names
    (storescu, storescp) that can come first on PATH."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            run = subprocess.run([str(candidate), "--version"], capture_output=True,
                                 text=True, timeout=30)
            if "dcmtk" in (run.stdout + run.stderr).lower():
                return str(candidate)
    return None


STORESCU, STORESCP = _dcmtk("storescu"), _dcmtk("storescp")
if STORESCU is None or STORESCP is None:
    pytest.skip("DCMTK is not installed (apt-get install dcmtk)", allow_module_level=True)

FILES = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm"]
PROPOSE = {"1.2.840.10008.1.2.4.90": "-xv", "1.2.840.10008.1.2.4.91": "-xw",
           "1.2.840.10008.1.2.5": "-xr", "1.2.840.10008.1.2.4.70": "-xs",
           "1.2.840.10008.1.2.4.50": "-xy", "1.2.840.10008.1.2.4.51": "-xx",
           "1.2.840.10008.1.2.1.99": "-xd"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(condition, timeout: float = 60.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Site:
    """A gateway (the real CLI in a child process) and, when started, a PACS."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.env = {**os.environ, "WORKBENCH_HOME": str(tmp / "home"),
                    "WORKBENCH_KEY_PASSPHRASE": "gateway test"}
        subprocess.run([sys.executable, "-m", "workbench", "keys", "new"], env=self.env,
                       check=True, capture_output=True, timeout=120)
        self.port, self.pacs_port = _free_port(), _free_port()
        self.pacs_dir = tmp / "pacs"
        self.pacs_dir.mkdir()
        self.pacs: subprocess.Popen | None = None
        self.log = open(tmp / "gateway.log", "a+")  # noqa: SIM115 (closed in stop)
        self.start_gateway()

    def start_gateway(self) -> None:
        self.gateway = subprocess.Popen(
            [sys.executable, "-m", "workbench", "gateway", "--port", str(self.port),
             "--pacs", f"PACS@127.0.0.1:{self.pacs_port}", "--allow", "MODALITY",
             "--spool", str(self.tmp / "spool"), "--ledger", str(self.tmp / "ledger.db"),
             "--retry", "0.5"], env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        _wait(lambda: _listening(self.port), what="the gateway to listen")

    def start_orthanc(self) -> None:
        """Orthanc (Debian's package) as the PACS: a generated configuration, its own
        storage folder, loopback DICOM and HTTP ports."""
        import json

        orthanc = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
        if not Path(orthanc).is_file():
            pytest.skip("Orthanc is not installed (apt-get install orthanc)")
        self.http = _free_port()
        db = self.tmp / "orthanc-db"
        config = {"Name": "workbench-test", "StorageDirectory": str(db),
                  "IndexDirectory": str(db), "DicomAet": "PACS",
                  "DicomPort": self.pacs_port, "HttpPort": self.http,
                  "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
                  "DicomCheckCalledAet": False, "Plugins": [], "DicomModalities": {},
                  "UnknownSopClassAccepted": True}
        cfg = self.tmp / "orthanc.json"
        cfg.write_text(json.dumps(config))
        self.pacs = subprocess.Popen([orthanc, str(cfg)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        _wait(lambda: _listening(self.pacs_port) and _listening(self.http),
              what="Orthanc to listen")

    def orthanc_instances(self) -> dict[str, bytes]:
        """SOP Instance UID -> the file Orthanc stores, through its REST API."""
        import json
        import urllib.request

        base = f"http://127.0.0.1:{self.http}"
        out = {}
        with urllib.request.urlopen(f"{base}/instances", timeout=10) as r:
            ids = json.loads(r.read())
        for i in ids:
            with urllib.request.urlopen(f"{base}/instances/{i}/file", timeout=10) as r:
                data = r.read()
            import io

            uid = str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)
            out[uid] = data
        return out

    def start_pacs(self) -> None:
        self.pacs = subprocess.Popen([STORESCP, "+xa", "-aet", "PACS", "-od", str(self.pacs_dir),
                                      str(self.pacs_port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        _wait(lambda: _listening(self.pacs_port), what="storescp to listen")

    def send(self, files: list[Path], calling: str = "MODALITY") -> subprocess.CompletedProcess:
        """storescu as a modality sends: one association per transfer syntax, each
        proposing that syntax (storescu never transcodes a compressed file)."""
        by_flag: dict[str, list[str]] = {}
        for f in files:
            syntax = str(pydicom.dcmread(f, stop_before_pixels=True).file_meta.TransferSyntaxUID)
            by_flag.setdefault(PROPOSE.get(syntax, "-x="), []).append(str(f))
        runs = [subprocess.run([STORESCU, flag, "-R", "-aet", calling, "-aec", "WB_GATEWAY",
                                "127.0.0.1", str(self.port), *group],
                               capture_output=True, text=True, timeout=120)
                for flag, group in by_flag.items()]
        return subprocess.CompletedProcess(
            "storescu", max(r.returncode for r in runs),
            "".join(r.stdout for r in runs), "".join(r.stderr for r in runs))

    def text(self) -> str:
        self.log.flush()
        return (self.tmp / "gateway.log").read_text()

    def stop(self) -> None:
        for p in (self.gateway, self.pacs):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.log.close()


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
    in the ledger, and reaches the PACS exactly once."""
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
    assert kills == 10 and len(acknowledged) == 100
    _wait(lambda: set(site.orthanc_instances()) >= acknowledged, timeout=120,
          what="the PACS to hold every acknowledged instance")
    assert not list((site.tmp / "spool" / "outbox").glob("*.dcm"))
    ledger = Ledger(site.tmp / "ledger.db")
    try:
        missing = [u for u in acknowledged if not ledger.find(sop_instance_uid=u)]
    finally:
        ledger.close()
    assert missing == []
    assert len(site.orthanc_instances()) == 100  # one copy each in the PACS
    logged = [ln.split("\t")[0] for ln in
              (site.tmp / "spool" / "forwarded.log").read_text().splitlines()]
    from workbench.gateway.spool import Spool

    assert {Spool.name_for(u) for u in acknowledged} <= set(logged)
    # a kill between the PACS's answer and the log line can only repeat a send, of the
    # same bytes under the same UID (docs/gateway.md); it never loses one
    assert len(logged) - len(set(logged)) <= kills
    restarts = site.text().count("listening on") - 1
    assert restarts >= kills
