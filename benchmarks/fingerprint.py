"""Fingerprint and signing throughput, each as a ratio to a named peer in the same run.

1. Pixel fingerprint of the 4688x2592 16-bit CBIS-DDSM mammogram (whole-image hash and
   per-frame hash) vs plain hashlib SHA-256 over the same pixel bytes (goal >= 0.8).
2. Sign + append to the ledger: capture records per second for a small real DICOM
   (decode, fingerprints, Ed25519 signature, sidecar write, durable ledger append). Peers:
   what no signer can skip, decode + SHA-256 (pydicom's `dcmread(...).pixel_array` and
   hashlib over the file's bytes), and the ledger's fsync'd append alone. Where the rest
   goes is printed stage by stage, so Python overhead shows up as a stage, not a guess.
   Then the same for an uncompressed 484x484 MR slice (shared data), where the bytes to
   hash and decode are 30 times those of the small CT.

Run: python3 benchmarks/fingerprint.py [--runs N]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from timing import median_time

REPO = Path(__file__).resolve().parents[1]
SHARED_DICOM = REPO.parent / "shared" / "data" / "dicom"
MAMMOGRAM = SHARED_DICOM / "mammography" / "sfm-malign-0" / "1-282.dcm"
MR_SLICE = SHARED_DICOM / "pydicom-data" / "MR-SIEMENS-DICOM-WithOverlays.dcm"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--records", type=int, default=200)
    args = ap.parse_args()
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="wb_bench_"))

    from workbench.imaging import load_image
    from workbench.provenance.records.fingerprint import pixel_fingerprint

    if MAMMOGRAM.is_file():
        image = load_image(MAMMOGRAM)
        raw = image.pixels.tobytes()  # the peer hashes bytes it already has
        mb = len(raw) / 1e6
        peer = median_time(lambda: hashlib.sha256(raw).hexdigest(), args.runs)
        ours = median_time(lambda: pixel_fingerprint(image), args.runs)
        print(f"pixel fingerprint of {MAMMOGRAM.name} ({image.columns}x{image.rows}, "
              f"{mb:.1f} MB), median of {args.runs}:")
        print(f"  hashlib sha256 over the bytes      {peer * 1000:7.1f} ms  {mb / peer:7.0f} MB/s")
        print(f"  workbench pixel_fingerprint        {ours * 1000:7.1f} ms  {mb / ours:7.0f} MB/s")
        print(f"  throughput ratio workbench/hashlib {peer / ours:7.2f}   (goal >= 0.8)")
    else:
        print(f"mammogram not found at {MAMMOGRAM}: pixel figures skipped")

    from pydicom.data import get_testdata_file

    from workbench.provenance.records import keys

    info = keys.generate_key("bench")
    key = keys.load_private_key(info.fingerprint, "bench")
    sign_rates(Path(get_testdata_file("CT_small.dcm", download=False)), args.records, key,
               stages=True)
    if MR_SLICE.is_file():  # an uncompressed 484x484 slice, as an MR archive holds them
        sign_rates(MR_SLICE, args.records, key, stages=False)


def sign_rates(src: Path, n: int, key: object, *, stages: bool) -> None:
    """Sign + append of ``n`` copies of ``src``, one by one and as a folder, against
    decode + SHA-256 of the same files; with ``stages``, where the time goes."""
    import pydicom

    from workbench.imaging import load_image
    from workbench.provenance.ledger.store import Ledger
    from workbench.provenance.records.record import build_record, sign_record
    from workbench.provenance.records.signing import sign_image
    from workbench.session.batch_signing import sign_files

    work = Path(tempfile.mkdtemp(prefix="wb_sign_"))
    files = []
    for i in range(n):
        f = work / f"img_{i:04d}.dcm"
        shutil.copy(src, f)
        files.append(f)
    ledger = Ledger(work / "ledger.sqlite")
    sign_image(files[0], key, ledger=ledger)  # warm-up: lazy imports, the key's first use
    t = time.perf_counter()
    for f in files[1:]:
        sign_image(f, key, ledger=ledger)
    sign_rate = (len(files) - 1) / (time.perf_counter() - t)

    # a folder as `workbench sign` signs it: workers prepare, one commit per batch
    folder = work / "folder"
    folder.mkdir()
    batch_files = []
    for i in range(n):
        f = folder / f"img_{i:04d}.dcm"
        shutil.copy(src, f)
        batch_files.append(f)
    ledger3 = Ledger(work / "ledger3.sqlite")
    t = time.perf_counter()
    sign_files(batch_files, key, ledger=ledger3)
    batch_rate = len(batch_files) / (time.perf_counter() - t)
    ledger3.close()

    def decode_and_hash(f: Path) -> None:
        pydicom.dcmread(f).pixel_array  # noqa: B018 (the decode is the point)
        hashlib.sha256(f.read_bytes()).digest()

    t = time.perf_counter()
    for f in files:
        decode_and_hash(f)
    floor_rate = len(files) / (time.perf_counter() - t)
    # The peer: durable appends alone, of records built beforehand.
    image = load_image(src)
    records = [sign_record(build_record(image), key) for _ in range(n)]
    ledger2 = Ledger(work / "ledger2.sqlite")
    t = time.perf_counter()
    for r in records:
        ledger2.append(r)
    append_rate = len(records) / (time.perf_counter() - t)
    print(f"sign + append ({src.name}, {image.columns}x{image.rows}, "
          f"{src.stat().st_size // 1024} KB, {n} files):")
    print(f"  decode + SHA-256 alone (pydicom, hashlib)  {floor_rate:8.0f} records/s")
    print(f"  ledger append alone (fsync each)           {append_rate:8.0f} records/s")
    print(f"  workbench sign_image + append              {sign_rate:8.0f} records/s")
    print(f"  workbench sign (a folder: {os.cpu_count()} cores, batched)   {batch_rate:8.0f} "
          "records/s (worker start-up included)")
    print(f"  ratio sign / (decode + SHA-256)            {sign_rate / floor_rate:8.2f}")
    print(f"  ratio folder sign / (decode + SHA-256)     {batch_rate / floor_rate:8.2f}")
    print(f"  ratio sign / append                        {sign_rate / append_rate:8.2f}")
    if stages:
        print_stages(files[:50], key)
    ledger.close()
    ledger2.close()
    shutil.rmtree(work, ignore_errors=True)


def print_stages(files: list[Path], key: object) -> None:
    """Each stage of a record, per record, on the same files (their sidecars do not
    matter to these)."""
    from workbench.imaging import load_image
    from workbench.provenance.records.fingerprint import (
        file_sha256,
        metadata_fingerprint,
        perceptual_hash,
        pixel_fingerprint,
        stored_header,
    )
    from workbench.provenance.records.header import header_fingerprint
    from workbench.provenance.records.record import build_record, sign_record

    images = [load_image(f) for f in files]
    stages = {
        "decode (load_image)": lambda i, f: load_image(f),
        "header fingerprint": lambda i, f: header_fingerprint(stored_header(i), b"0" * 16),
        "pixel fingerprint": lambda i, f: pixel_fingerprint(i),
        "file SHA-256": lambda i, f: file_sha256(f),
        "metadata fingerprint": lambda i, f: metadata_fingerprint(i, b"0" * 16),
        "perceptual hash": lambda i, f: perceptual_hash(i),
        "build + Ed25519 sign": lambda i, f: sign_record(build_record(i), key),
    }
    print("  stages, per record (build + sign includes the fingerprints above):")
    for label, fn in stages.items():
        t = time.perf_counter()
        for i, f in zip(images, files, strict=True):
            fn(i, f)
        print(f"    {label:<30} {(time.perf_counter() - t) / len(images) * 1000:7.2f} ms")

if __name__ == "__main__":
    main()
