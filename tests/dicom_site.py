"""A small hospital on loopback for the network tests: DCMTK's storescu as the modality,
the signing gateway (the real CLI in a child process), and a PACS, either DCMTK's storescp
into a folder or Orthanc (Debian's package) with its DICOMweb plugin, each on ports the
tests pick and stopped by them."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pydicom
import pytest

ORTHANC_DICOMWEB = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


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

    def __init__(self, tmp: Path, *, gateway: bool = True) -> None:
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
        self.gateway: subprocess.Popen | None = None
        if gateway:
            self.start_gateway()

    def start_gateway(self, config: Path | None = None) -> None:
        """The gateway on ``self.port``, set by options; with ``config``, by that file
        alone (``--config FILE``), which must name ``self.port``."""
        options = ["--config", str(config)] if config is not None else [
            "--port", str(self.port), "--pacs", f"PACS@127.0.0.1:{self.pacs_port}",
            "--allow", "MODALITY", "--spool", str(self.tmp / "spool"),
            "--ledger", str(self.tmp / "ledger.db"), "--retry", "0.5"]
        self.gateway = subprocess.Popen(
            [sys.executable, "-m", "workbench", "gateway", *options], env=self.env,
            stdout=self.log, stderr=subprocess.STDOUT)
        gateway = self.gateway
        _wait(lambda: _listening(self.port) or gateway.poll() is not None,
              what="the gateway to listen")
        if gateway.poll() is not None:  # it refused to start: say why, now
            raise AssertionError(f"the gateway exited with {gateway.returncode}: "
                                 f"{self.text()[-2000:]}")

    def start_orthanc(self, *, same_ports: bool = False) -> None:
        """Orthanc (Debian's package) as the PACS: a generated configuration, its own
        storage folder, loopback DICOM and HTTP ports, and DICOMweb when its plugin is
        installed (orthanc-dicomweb)."""
        orthanc = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
        if not Path(orthanc).is_file():
            pytest.skip("Orthanc is not installed (apt-get install orthanc)")
        if not same_ports:  # a restart keeps its ports and storage: the same PACS back
            self.http = _free_port()
        db = self.tmp / "orthanc-db"
        config = {"Name": "workbench-test", "StorageDirectory": str(db),
                  "IndexDirectory": str(db), "DicomAet": "PACS",
                  "DicomPort": self.pacs_port, "HttpPort": self.http,
                  "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
                  "DicomCheckCalledAet": False, "DicomModalities": {},
                  "UnknownSopClassAccepted": True,
                  "Plugins": [str(ORTHANC_DICOMWEB)] if ORTHANC_DICOMWEB.is_file() else [],
                  "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
        cfg = self.tmp / "orthanc.json"
        cfg.write_text(json.dumps(config))
        if getattr(self, "orthanc_log", None) is not None:
            self.orthanc_log.close()  # a restart: one log file, one handle
        self.orthanc_log = open(self.tmp / "orthanc.log", "a")  # noqa: SIM115 (closed in stop)
        self.pacs = subprocess.Popen([orthanc, str(cfg)], stdout=self.orthanc_log,
                                     stderr=subprocess.STDOUT)
        _wait(lambda: _listening(self.pacs_port) and _listening(self.http),
              what="Orthanc to listen")

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    @property
    def dicomweb(self) -> str:
        """The DICOMweb root; skips the test when the plugin is not installed."""
        if not ORTHANC_DICOMWEB.is_file():
            pytest.skip("Orthanc's DICOMweb plugin is not installed "
                        "(apt-get install orthanc-dicomweb)")
        return f"{self.rest}/dicom-web"

    def _get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"{self.rest}{path}", timeout=30) as r:
            return r.read()

    def orthanc_instances(self) -> dict[str, bytes]:
        """SOP Instance UID -> the file Orthanc stores, through its REST API."""
        out = {}
        for i in json.loads(self._get("/instances")):
            data = self._get(f"/instances/{i}/file")
            uid = str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)
            out[uid] = data
        return out

    def upload(self, data: bytes) -> str:
        """Store a file through Orthanc's REST API, as another application could."""
        req = urllib.request.Request(f"{self.rest}/instances", data=data, method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())["ID"]

    def replace(self, data: bytes) -> None:
        """Put ``data`` in place of the stored instance with the same UIDs (Orthanc keeps
        the first copy of a UID unless the old one is deleted first)."""
        uid = str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)
        for i in json.loads(self._get("/instances")):
            tags = json.loads(self._get(f"/instances/{i}/simplified-tags"))
            if tags.get("SOPInstanceUID") == uid:
                req = urllib.request.Request(f"{self.rest}/instances/{i}", method="DELETE")
                urllib.request.urlopen(req, timeout=30).close()
        self.upload(data)

    def start_pacs(self, *, compressed: bool = True) -> None:
        """storescp into a folder; ``compressed=False``: a PACS that takes uncompressed
        transfer syntaxes only (storescp's default)."""
        self.pacs = subprocess.Popen([STORESCP, *(["+xa"] if compressed else []), "-aet",
                                      "PACS", "-od", str(self.pacs_dir), str(self.pacs_port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: _listening(self.pacs_port), what="storescp to listen")

    def send(self, files: list[Path], calling: str = "MODALITY") -> subprocess.CompletedProcess:
        """storescu as a modality sends every file as it is (storescu never transcodes a
        compressed file): one association per 100 (SOP class, transfer syntax) pairs, each
        pair its own presentation context, from a generated DCMTK association profile."""
        pairs: dict[tuple[str, str], list[str]] = {}
        for f in files:
            meta = pydicom.dcmread(f, stop_before_pixels=True)
            key = (str(meta.SOPClassUID), str(meta.file_meta.TransferSyntaxUID))
            pairs.setdefault(key, []).append(str(f))
        keys = list(pairs)
        runs = []
        for start in range(0, len(keys), 100):
            group = keys[start:start + 100]
            syntaxes = sorted({ts for _, ts in group})
            lines = ["[[TransferSyntaxes]]"]
            for i, ts in enumerate(syntaxes):
                lines += [f"[TS{i}]", f"TransferSyntax1 = {ts}"]
            lines.append("[[PresentationContexts]]")
            lines.append("[Contexts]")
            for n, (sop, ts) in enumerate(group, 1):
                lines.append(f"PresentationContext{n} = {sop}\\TS{syntaxes.index(ts)}")
            lines += ["[[Profiles]]", "[Modality]", "PresentationContexts = Contexts"]
            cfg = self.tmp / f"storescu-{start}.cfg"
            cfg.write_text("\n".join(lines) + "\n")
            sent = [f for k in group for f in pairs[k]]
            runs.append(subprocess.run(
                [STORESCU, "--config-file", str(cfg), "Modality", "-aet", calling,
                 "-aec", "WB_GATEWAY", "127.0.0.1", str(self.port), *sent],
                capture_output=True, text=True, timeout=600))
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
        if getattr(self, "orthanc_log", None) is not None:
            self.orthanc_log.close()




def orthanc_archive(tmp: Path, files: list[Path]) -> Site:
    """Orthanc alone (no gateway) holding ``files``, stored through its REST API, with
    DICOMweb (the test skips without the plugin). The caller stops it."""
    site = Site(tmp, gateway=False)
    site.start_orthanc()
    try:
        site.dicomweb  # noqa: B018 (skips here, before the uploads, without the plugin)
        for f in files:
            site.upload(Path(f).read_bytes())
    except BaseException:
        site.stop()
        raise
    return site
