"""Instances per second through the signing gateway, against DCMTK's storescu sending the
same files straight into Orthanc in the same run, and the gateway's peak resident memory.

    python3 benchmarks/gateway.py [--n 1000]

Each side gets a fresh Orthanc (its own storage), on loopback ports. "Acknowledged" is
when storescu has been told every instance is stored: for the gateway, each one is
fsynced, signed and in the ledger by then. "Forwarded" is when Orthanc holds them all.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _up(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(cond, timeout: float = 600) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit("timed out")
        time.sleep(0.05)


def _dcmtk(name: str) -> str:
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        p = Path(folder) / name
        if p.is_file() and "dcmtk" in subprocess.run([str(p), "--version"],
                                                     capture_output=True, text=True).stdout.lower():
            return str(p)
    raise SystemExit(f"DCMTK's {name} is not installed")


def _orthanc(tmp: Path) -> tuple[subprocess.Popen, int, int]:
    dicom, http = _port(), _port()
    cfg = tmp / "orthanc.json"
    cfg.write_text(json.dumps({"Name": "bench", "StorageDirectory": str(tmp / "db"),
                               "IndexDirectory": str(tmp / "db"), "DicomAet": "PACS",
                               "DicomPort": dicom, "HttpPort": http, "Plugins": [],
                               "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
                               "DicomCheckCalledAet": False}))
    proc = subprocess.Popen(["/usr/sbin/Orthanc", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _wait(lambda: _up(dicom) and _up(http), 60)
    return proc, dicom, http


def _count(http: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/statistics", timeout=10) as r:
        return int(json.loads(r.read())["CountInstances"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    import pydicom
    from pydicom.data import get_testdata_file

    storescu = _dcmtk("storescu")
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as t:
        tmp = Path(t)
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        files = []
        (tmp / "in").mkdir()
        for i in range(args.n):
            ds.SOPInstanceUID = pydicom.uid.generate_uid()
            files.append(str(tmp / "in" / f"{i:05d}.dcm"))
            ds.save_as(files[-1])
        # peer: storescu straight into Orthanc
        (tmp / "a").mkdir()
        orthanc, dicom, http = _orthanc(tmp / "a")
        start = time.perf_counter()
        subprocess.run([storescu, "-aec", "PACS", "127.0.0.1", str(dicom), *files],
                       check=True, capture_output=True)
        _wait(lambda: _count(http) == args.n)
        direct = time.perf_counter() - start
        orthanc.terminate()
        orthanc.wait()
        # ours: storescu -> gateway (sign, ledger, spool) -> Orthanc
        (tmp / "b").mkdir()
        orthanc, dicom, http = _orthanc(tmp / "b")
        env = {**os.environ, "WORKBENCH_HOME": str(tmp / "home"),
               "WORKBENCH_KEY_PASSPHRASE": "bench"}
        subprocess.run([sys.executable, "-m", "workbench", "keys", "new"], env=env, check=True,
                       capture_output=True)
        port = _port()
        gw = subprocess.Popen([sys.executable, "-m", "workbench", "gateway", "--port", str(port),
                               "--pacs", f"PACS@127.0.0.1:{dicom}", "--allow", "BENCH",
                               "--retry", "0.2"], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(tmp / "gateway.log", "w"), cwd=ROOT)  # noqa: SIM115
        _wait(lambda: _up(port), 120)
        start = time.perf_counter()
        run = subprocess.run([storescu, "-aet", "BENCH", "-aec", "WB_GATEWAY", "127.0.0.1",
                              str(port), *files], capture_output=True, text=True)
        if run.returncode:
            print(run.stderr[-800:], (tmp / "gateway.log").read_text()[-1500:])
            raise SystemExit("storescu into the gateway failed")
        acknowledged = time.perf_counter() - start
        _wait(lambda: _count(http) == args.n)
        forwarded = time.perf_counter() - start
        status = Path(f"/proc/{gw.pid}/status").read_text()
        peak = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmHWM"))
        gw.terminate()
        gw.wait()
        orthanc.terminate()
        orthanc.wait()
    n = args.n
    print(f"{n} CT instances (39 KB each), loopback, this machine")
    print(f"  storescu -> Orthanc:             {n / direct:7.1f} instances/s ({direct:.1f} s)")
    print(f"  storescu -> gateway, acknowledged: {n / acknowledged:7.1f} instances/s "
          f"({acknowledged:.1f} s; each signed and in the ledger)  ratio "
          f"{direct / acknowledged:.2f}x")
    print(f"  ... all in Orthanc:               {n / forwarded:7.1f} instances/s "
          f"({forwarded:.1f} s)  ratio {direct / forwarded:.2f}x")
    print(f"  gateway peak resident memory: {peak / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
