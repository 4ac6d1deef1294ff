"""A hostile-input trial: hundreds of mutants of the shared corpus (truncations, bit
flips, absurd Rows/Columns/BitsAllocated/NumberOfFrames, missing Pixel Data, a wrong
transfer syntax, palette and deflate bombs, a FIFO, a symlink loop, a non-UTF-8 name)
through ``info``, ``verify``, ``sign`` and ``detect`` as an auditor runs them, in child
processes with time limits: no traceback, no hang, no run over 2 GB resident, every
failure on a line that names its file, and the good files of the folder still done."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import pydicom_test_file

DICOM_SOURCES = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm",
                 "SC_rgb_rle_2frame.dcm", "SC_rgb_jpeg_dcmtk.dcm", "examples_palette.dcm",
                 "rtdose.dcm", "MR_small_bigendian.dcm", "examples_overlay.dcm",
                 "SC_rgb_small_odd.dcm"]
PHOTOS = ["ISIC_0000000.jpg", "ISIC_0000001.jpg"]
MAX_RSS_KB = 2 * 1024 * 1024


def _header_mutants(src: Path, out: Path, stem: str) -> list[Path]:
    made = []
    edits = {
        "rows0": ("Rows", 0), "cols1": ("Columns", 1), "rows65535": ("Rows", 65535),
        "bits0": ("BitsAllocated", 0), "bits7": ("BitsAllocated", 7),
        "bits64": ("BitsAllocated", 64), "frames0": ("NumberOfFrames", 0),
        "frames2": ("NumberOfFrames", 2), "framesmany": ("NumberOfFrames", 1_000_000),
        "spp4": ("SamplesPerPixel", 4), "stored20": ("BitsStored", 20),
    }
    for tag, (kw, value) in edits.items():
        ds = pydicom.dcmread(src)
        setattr(ds, kw, value)
        path = out / f"{stem}_{tag}.dcm"
        ds.save_as(path)
        made.append(path)
    ds = pydicom.dcmread(src)
    del ds.PixelData
    ds.save_as(out / f"{stem}_nopixels.dcm")
    made.append(out / f"{stem}_nopixels.dcm")
    data = src.read_bytes()
    native = b"1.2.840.10008.1.2.1\0"
    if native in data[:600]:  # says RLE, is not (same length: the file stays parseable)
        wrong = data[:600].replace(native, b"1.2.840.10008.1.2.5\0", 1) + data[600:]
        (out / f"{stem}_wrongts.dcm").write_bytes(wrong)
        made.append(out / f"{stem}_wrongts.dcm")
    return made


def _byte_mutants(data: bytes, out: Path, stem: str, suffix: str) -> list[Path]:
    made = []
    for k, frac in enumerate((0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 0.99)):
        path = out / f"{stem}_cut{k}{suffix}"
        path.write_bytes(data[:int(len(data) * frac)])
        made.append(path)
    for seed in range(30):
        rnd, flipped = random.Random(seed), bytearray(data)
        for _ in range(1 + seed % 5):
            i = rnd.randrange(len(flipped))
            flipped[i] ^= 1 << rnd.randrange(8)
        path = out / f"{stem}_flip{seed}{suffix}"
        path.write_bytes(bytes(flipped))
        made.append(path)
    return made


def _specials(out: Path) -> list[Path]:
    import struct
    import zlib

    os.mkfifo(out / "fifo.dcm")
    (out / "loop_a.dcm").symlink_to(out / "loop_b.dcm")
    (out / "loop_b.dcm").symlink_to(out / "loop_a.dcm")
    latin1 = os.path.join(os.fsencode(out), b"r\xe9sum\xe9.dcm")
    with open(latin1, "wb") as fh:
        fh.write(pydicom_test_file("CT_small.dcm").read_bytes())

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    z = zlib.compressobj(9)
    side = 12_000
    body = b"".join(z.compress(b"\0" * (side + 1)) for _ in range(side)) + z.flush()
    (out / "palette_bomb.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 3, 0,
                                                          0, 0))
        + chunk(b"PLTE", b"\0\0\0\xff\xff\xff") + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    ds = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    ds.Rows = ds.Columns = 9000
    ds.PixelData = np.zeros((9000, 9000), np.int16).tobytes()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    ds.save_as(out / "deflate_bomb.dcm", enforce_file_format=True)
    return [out / n for n in ("fifo.dcm", "loop_a.dcm", "palette_bomb.png",
                              "deflate_bomb.dcm")]


@pytest.fixture(scope="module")
def mutants(tmp_path_factory: pytest.TempPathFactory, request) -> Path:
    shared = request.getfixturevalue("shared_data")
    out = tmp_path_factory.mktemp("hostile")
    for name in DICOM_SOURCES:
        src = pydicom_test_file(name)
        stem = Path(name).stem
        _header_mutants(src, out, stem)
        _byte_mutants(src.read_bytes(), out, stem, ".dcm")
    for name in PHOTOS:
        src = shared / "dermoscopy" / "isic" / "images" / name
        _byte_mutants(src.read_bytes(), out, Path(name).stem, ".jpg")
    _specials(out)
    (out / "good.dcm").write_bytes(pydicom_test_file("MR_small.dcm").read_bytes())
    return out


# The command runs in a child that reports its own peak resident size on exit (the
# parent's RUSAGE_CHILDREN is the peak of every child this test process ever had).
# The peak is reset first: Linux carries the forking parent's peak into the child until
# exec, and the parent here is a pytest process that may hold gigabytes.
_CHILD = ("import re, resource, sys\n"
          "try:\n"
          "    open('/proc/self/clear_refs', 'w').write('5')\n"
          "except OSError:\n"
          "    pass\n"
          "from workbench.cli import main\n"
          "try:\n"
          "    code = main(sys.argv[2:])\n"
          "finally:\n"
          "    try:\n"
          "        hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1]\n"
          "    except (OSError, TypeError):\n"
          "        hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
          "    with open(sys.argv[1], 'w') as fh:\n"
          "        fh.write(str(hwm))\n"
          "sys.exit(code)\n")


def _run(args: list[str], env: dict, timeout: float) -> tuple[subprocess.CompletedProcess, int]:
    import tempfile

    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        run = subprocess.run([sys.executable, "-c", _CHILD, rss.name, *args],
                             capture_output=True, env=env, timeout=timeout,
                             stdin=subprocess.DEVNULL, check=False)
        text = Path(rss.name).read_text().strip()
    return run, int(text) if text else 0


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("hostile_home")
    e = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_KEY_PASSPHRASE": "hostile"}
    subprocess.run([sys.executable, "-m", "workbench", "keys", "new"], env=e, check=True,
                   capture_output=True, timeout=120)
    return e


def _text(run: subprocess.CompletedProcess) -> str:
    return (run.stdout + run.stderr).decode("utf-8", "backslashreplace")


def test_there_are_at_least_600_mutants(mutants: Path) -> None:
    assert len(list(mutants.iterdir())) >= 600


@pytest.mark.parametrize("command", ["verify", "sign"])
def test_a_folder_of_mutants_is_processed_without_traceback_hang_or_bloat(
        mutants: Path, env: dict, command: str) -> None:
    run, rss_kb = _run([command, *(["--json"] if command == "verify" else []), str(mutants)],
                       env, timeout=900)
    text = _text(run)
    assert "Traceback" not in text, text[text.find("Traceback"):][:2000]
    assert run.returncode in (0, 1), text[-2000:]
    assert 0 < rss_kb < MAX_RSS_KB, f"{rss_kb / 1024:.0f} MB resident"
    if command == "verify":
        results = [json.loads(line) for line in run.stdout.decode().splitlines()
                   if line.startswith("{")]
        by_name = {Path(r["path"]).name: r for r in results}
        assert by_name["good.dcm"]["verdict"] == "unsigned"  # the good file still done
        assert "is a FIFO" in by_name["fifo.dcm"]["summary"]
        errors = [r for r in results if r["verdict"] == "error"]
        assert errors and all(Path(r["path"]).name in r["summary"] for r in errors)
    else:
        assert "failed:" in text and "signed" in text
        for line in text.splitlines():
            if line.startswith("failed: "):
                assert str(mutants) in line  # each failure names its file
        said = run.stderr.decode("utf-8", "backslashreplace").splitlines()
        stray = [ln for ln in said if ln.strip() and not ln.startswith(
            ("signing ", "error: ", "failed: ", "note: "))]
        assert stray == [], stray[:5]  # library warnings are notes naming their file
        assert all(str(mutants) in ln for ln in said if ln.startswith("note: "))


def test_info_names_every_file_it_cannot_read(mutants: Path, env: dict) -> None:
    files = sorted(str(p) for p in mutants.iterdir())
    run, rss_kb = _run(["info", "--json", *files], env, timeout=900)
    text = _text(run)
    assert "Traceback" not in text and run.returncode == 1
    assert 0 < rss_kb < MAX_RSS_KB, f"{rss_kb / 1024:.0f} MB resident"
    read = {Path(json.loads(ln)["file"]).name for ln in run.stdout.decode().splitlines()
            if ln.startswith("{")}
    errors = [ln for ln in run.stderr.decode("utf-8", "backslashreplace").splitlines()
              if ln.startswith("error: ")]
    named = {Path(ln[len("error: "):].split(": ")[0]).name for ln in errors}
    # every file is either described or named in an error line
    def shown(name: str) -> str:  # how a name that is not UTF-8 is printed (escaped)
        return name.encode("utf-8", "backslashreplace").decode("utf-8")

    missing = [Path(f).name for f in files
               if shown(Path(f).name) not in {shown(n) for n in read} | named]
    assert missing == [], missing[:10]
    stray = [ln for ln in run.stderr.decode("utf-8", "backslashreplace").splitlines()
             if ln.strip() and not ln.startswith("error: ")]
    assert stray == [], stray[:5]  # a decoder's own stderr is a note on its file


def test_detect_on_a_sample_of_mutants(mutants: Path, env: dict) -> None:
    sample = sorted(str(p) for p in mutants.iterdir() if "flip" in p.name or "cut" in p.name
                    or "bomb" in p.name)[::8]
    run, rss_kb = _run(["detect", "--model", "none", "--detectors",
                        "ela,noise-residual,dicom-header", *sample], env, timeout=900)
    text = _text(run)
    assert "Traceback" not in text, text[text.find("Traceback"):][:2000]
    assert run.returncode in (0, 1) and 0 < rss_kb < MAX_RSS_KB
    stray = [ln for ln in run.stderr.decode("utf-8", "backslashreplace").splitlines()
             if ln.strip() and not ln.startswith(("error: ", "note: "))
             and " image(s): " not in ln]  # the closing count
    assert stray == [], stray[:5]


def test_the_verify_table_and_its_stderr_name_their_files(mutants: Path, env: dict) -> None:
    """The table's column of names (a symlink loop crashed it) and no stray library
    warning without a file: readers' warnings are notes under the file's row."""
    run, _rss = _run(["verify", str(mutants)], env, timeout=900)
    text = _text(run)
    assert "Traceback" not in text and run.returncode == 1
    stray = [ln for ln in run.stderr.decode("utf-8", "backslashreplace").splitlines()
             if ln.strip() and not ln.startswith("verifying")]
    assert stray == [], stray[:5]
    assert "loop_a.dcm" in run.stdout.decode("utf-8", "backslashreplace")
